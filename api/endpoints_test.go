package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/api/client"
	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/deploy"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/model"
	"github.com/kiln-ml/kiln/registry"
	"github.com/kiln-ml/kiln/store"
	"github.com/kiln-ml/kiln/store/storetest"
	"github.com/kiln-ml/kiln/tracking"

	_ "github.com/kiln-ml/kiln/runtime/onnx"
)

// epEnv is the API over a real deploy.Manager: a registry on a real
// database whose model versions are ONNX fixtures in a file:// bucket.
type epEnv struct {
	srv *httptest.Server
	c   *client.Client
	m   *deploy.Manager
	trk *tracking.Store
	reg *registry.Store
	b   *blob.Bucket
}

func newEndpointsEnv(t testing.TB, db *store.DB) *epEnv {
	t.Helper()
	ctx := context.Background()
	b, err := blob.Open(ctx, "file://"+filepath.Join(t.TempDir(), "artifacts"), blob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	e := &epEnv{trk: tracking.New(db, tracking.Options{}), b: b}
	e.reg = registry.New(db, e.trk)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e.m, err = deploy.NewManager(db, e.reg, model.NewStoreResolver(e.trk, e.reg, b, t.TempDir()), deploy.ManagerOptions{Logger: log, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.m.Close() })
	mux := http.NewServeMux()
	api.New(api.Deps{Endpoints: e.m, Logger: log}).Register(mux)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	if e.c, err = client.New(e.srv.URL, nil); err != nil {
		t.Fatal(err)
	}
	return e
}

// register logs an ONNX fixture of runtime/onnx as an MLflow model and
// registers it as the next version of name.
func (e *epEnv) register(t testing.TB, name, fixture string) int64 {
	t.Helper()
	ctx := context.Background()
	if _, err := e.reg.GetRegisteredModel(ctx, name); errors.Is(err, errdefs.ErrNotFound) {
		if _, err := e.reg.CreateRegisteredModel(ctx, name, "", nil); err != nil {
			t.Fatal(err)
		}
	}
	run, err := e.trk.CreateRun(ctx, tracking.CreateRunInput{ExperimentID: "0"})
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimPrefix(run.Info.ArtifactURI, "mlflow-artifacts:/") + "/model"
	onnx, err := os.ReadFile(filepath.Join("../runtime/onnx/testdata/models", fixture, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	for n, data := range map[string][]byte{
		"MLmodel":    []byte("flavors:\n  onnx:\n    data: model.onnx\n    onnx_version: 1.17.0\nmlflow_version: 3.6.0\n"),
		"model.onnx": onnx,
	} {
		if _, err := e.b.Put(ctx, key+"/"+n, bytes.NewReader(data), ""); err != nil {
			t.Fatal(err)
		}
	}
	v, err := e.reg.CreateModelVersion(ctx, registry.CreateModelVersionInput{Name: name, Source: "runs:/" + run.Info.RunID + "/model", RunID: run.Info.RunID})
	if err != nil {
		t.Fatal(err)
	}
	return v.Version
}

// do sends a request with an optional actor and returns the status, the
// error body and the raw body.
func (e *epEnv) do(t testing.TB, method, path, actor, body string) (int, api.ErrorBody, []byte) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+"/api/v1"+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if actor != "" {
		req.Header.Set(api.ActorHeader, actor)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var eb api.ErrorBody
	json.Unmarshal(data, &eb)
	return resp.StatusCode, eb, data
}

func decode[T any](t testing.TB, data []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("%v: %s", err, data)
	}
	return v
}

const irisV1 = `{"apiVersion":"kiln.dev/v1","kind":"Endpoint","metadata":{"name":"iris"},"spec":{"model":"clf","routes":[{"name":"main","version":"1","weight":100}]}}`

func TestEndpointsAPI(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		e := newEndpointsEnv(t, db)
		e.register(t, "clf", "skl_svc_rbf_multi")
		e.register(t, "clf", "skl_svc_rbf_multi")

		// A dry run of a new endpoint: the whole document is added,
		// nothing is stored.
		code, _, body := e.do(t, "PUT", "/endpoints/iris?dry_run=true", "alice", irisV1)
		dry := decode[api.ApplyEndpointResponse](t, body)
		wantNew := "--- /dev/null\n+++ endpoint/iris\n@@ -0,0 +1,10 @@\n+apiVersion: kiln.dev/v1\n+kind: Endpoint\n+metadata:\n+  name: iris\n+spec:\n+  model: clf\n+  routes:\n+    - name: main\n+      version: \"1\"\n+      weight: 100\n"
		if code != 200 || !dry.Created || !dry.Changed || !dry.DryRun || dry.State != nil || dry.Diff != wantNew {
			t.Fatalf("dry run: %d %+v\n%s", code, dry, dry.Diff)
		}
		if code, eb, _ := e.do(t, "GET", "/endpoints/iris", "", ""); code != 404 || eb.Error.Code != api.CodeNotFound {
			t.Fatalf("after a dry run: %d %+v", code, eb)
		}

		// Created (201), with who and why.
		code, _, body = e.do(t, "PUT", "/endpoints/iris?reason=first+release", "alice", irisV1)
		res := decode[api.ApplyEndpointResponse](t, body)
		if code != 201 || !res.Created || !res.Changed || res.State == nil || res.State.Status.UpdatedBy != "alice" || res.Diff != wantNew {
			t.Fatalf("create: %d %+v", code, res)
		}
		if r := res.State.Status.Routes; len(r) != 1 || r[0].Version != 1 || r[0].State != deploy.RouteReady {
			t.Fatalf("live routes %+v", r)
		}

		// The same document again: nothing changes, no event.
		code, _, body = e.do(t, "PUT", "/endpoints/iris", "bob", irisV1)
		res = decode[api.ApplyEndpointResponse](t, body)
		if code != 200 || res.Created || res.Changed || res.Diff != "" || res.State.Status.UpdatedBy != "alice" {
			t.Fatalf("re-apply: %d %+v", code, res)
		}
		evs, err := e.c.EndpointEvents(context.Background(), "iris", 0)
		if err != nil || len(evs) != 1 || evs[0].Action != deploy.ActionCreate || evs[0].Actor != "alice" || evs[0].Reason != "first release" {
			t.Fatalf("events after re-apply: %v %+v", err, evs)
		}

		// A change: dry run first (nothing moves), then for real.
		v2 := strings.Replace(irisV1, `"version":"1"`, `"version":"2"`, 1)
		wantChange := "--- endpoint/iris (live)\n+++ endpoint/iris (applied)\n@@ -6,5 +6,5 @@\n   model: clf\n   routes:\n     - name: main\n-      version: \"1\"\n+      version: \"2\"\n       weight: 100\n"
		code, _, body = e.do(t, "PUT", "/endpoints/iris?dry_run=1", "", v2)
		dry = decode[api.ApplyEndpointResponse](t, body)
		if code != 200 || dry.Created || !dry.Changed || dry.Diff != wantChange || dry.State.Status.Routes[0].Version != 1 {
			t.Fatalf("dry change: %d %+v\n%s", code, dry, dry.Diff)
		}
		if st, _ := e.c.GetEndpoint(context.Background(), "iris"); st.Endpoint.Spec.Routes[0].Version != "1" {
			t.Fatalf("a dry run changed the spec: %+v", st.Endpoint.Spec)
		}
		code, _, body = e.do(t, "PUT", "/endpoints/iris", "carol", v2)
		res = decode[api.ApplyEndpointResponse](t, body)
		if code != 200 || res.Created || !res.Changed || res.Diff != wantChange || res.State.Status.Routes[0].Version != 2 {
			t.Fatalf("change: %d %+v", code, res)
		}
		// metadata.name may be left out: the URL names the endpoint.
		code, _, body = e.do(t, "PUT", "/endpoints/iris", "", strings.Replace(v2, `"metadata":{"name":"iris"}`, `"metadata":{}`, 1))
		if res = decode[api.ApplyEndpointResponse](t, body); code != 200 || res.Changed {
			t.Fatalf("without metadata.name: %d %s", code, body)
		}

		// Listing, events (newest first), stats.
		list, err := e.c.ListEndpoints(context.Background())
		if err != nil || len(list) != 1 || list[0].Endpoint.Metadata.Name != "iris" {
			t.Fatalf("list: %v %+v", err, list)
		}
		evs, err = e.c.EndpointEvents(context.Background(), "iris", 10)
		if err != nil || len(evs) != 2 || evs[0].Action != deploy.ActionUpdate || evs[0].Actor != "carol" {
			t.Fatalf("events: %v %+v", err, evs)
		}
		if evs, err := e.c.EndpointEvents(context.Background(), "iris", 1); err != nil || len(evs) != 1 {
			t.Fatalf("events limit 1: %v %d", err, len(evs))
		}
		stats, err := e.c.EndpointStats(context.Background(), "iris")
		if err != nil || len(stats) < 2 || stats[0].Kind != deploy.StatsEndpoint || stats[1].Name != "main" {
			t.Fatalf("stats: %v %+v", err, stats)
		}

		// Rollout actions on an endpoint without a rollout are refused in
		// the error format; unknown actions are unknown.
		if code, eb, _ := e.do(t, "POST", "/endpoints/iris/rollout/promote", "", `{"reason":"go"}`); code != 409 || eb.Error.Code != api.CodeInvalidState {
			t.Fatalf("promote without rollout: %d %+v", code, eb)
		}
		if code, eb, _ := e.do(t, "POST", "/endpoints/iris/rollout/jump", "", ""); code != 404 || !strings.Contains(eb.Error.Message, "promote, pause, resume, rollback") {
			t.Fatalf("unknown action: %d %+v", code, eb)
		}

		// Delete: gone, events stay.
		if code, _, _ := e.do(t, "DELETE", "/endpoints/iris?reason=retired", "dave", ""); code != 200 {
			t.Fatalf("delete: %d", code)
		}
		if code, _, _ := e.do(t, "GET", "/endpoints/iris", "", ""); code != 404 {
			t.Fatalf("get after delete: %d", code)
		}
		if code, eb, _ := e.do(t, "DELETE", "/endpoints/iris", "", ""); code != 404 || eb.Error.Code != api.CodeNotFound {
			t.Fatalf("delete again: %d %+v", code, eb)
		}
		if list, _ := e.c.ListEndpoints(context.Background()); len(list) != 0 {
			t.Fatalf("list after delete: %+v", list)
		}
	})
}

func TestEndpointErrors(t *testing.T) {
	e := newEndpointsEnv(t, storetest.TestDatabases(t)["sqlite"](t))
	e.register(t, "clf", "skl_svc_rbf_multi")
	negative := strings.Replace(irisV1, `"weight":100`, `"weight":-5`, 1)
	for _, tc := range []struct {
		name, method, path, actor, body string
		status                          int
		code                            string
		msg                             string
		details                         []api.FieldDetail
	}{
		{"invalid document", "PUT", "/endpoints/iris", "", negative, 400, api.CodeInvalidArgument,
			"Invalid endpoint 'iris': spec.routes[0].weight: must not be negative; spec.routes: the weights sum to 0: no route would get traffic",
			[]api.FieldDetail{{Path: "spec.routes[0].weight", Message: "must not be negative"}, {Path: "spec.routes", Message: "the weights sum to 0: no route would get traffic"}}},
		{"invalid document, dry run", "PUT", "/endpoints/iris?dry_run=true", "", negative, 400, api.CodeInvalidArgument, "",
			[]api.FieldDetail{{Path: "spec.routes[0].weight", Message: "must not be negative"}, {Path: "spec.routes", Message: "the weights sum to 0: no route would get traffic"}}},
		{"name differs from the URL", "PUT", "/endpoints/other", "", irisV1, 400, api.CodeInvalidArgument,
			`Invalid endpoint 'other': metadata.name: is "iris", but the URL names endpoint "other"`,
			[]api.FieldDetail{{Path: "metadata.name", Message: `is "iris", but the URL names endpoint "other"`}}},
		{"unknown field", "PUT", "/endpoints/iris", "", `{"metadata":{"name":"iris"},"spec":{"routes":[{"wieght":1}]}}`, 400, api.CodeInvalidArgument,
			`Invalid JSON body: json: unknown field "wieght"`, nil},
		{"no body", "PUT", "/endpoints/iris", "", "", 400, api.CodeInvalidArgument, "The request needs a JSON body", nil},
		{"bad name", "GET", "/endpoints/Iris_1", "", "", 400, api.CodeInvalidArgument,
			"Invalid endpoint name 'Iris_1': want a DNS label (lower-case letters, digits and '-', 1-63 characters)", nil},
		{"bad dry_run", "PUT", "/endpoints/iris?dry_run=maybe", "", irisV1, 400, api.CodeInvalidArgument, "Invalid dry_run 'maybe': want true or false", nil},
		{"actor with control characters", "PUT", "/endpoints/iris", "\xffalice", irisV1, 400, api.CodeInvalidArgument, "X-Kiln-Actor holds control characters or invalid UTF-8", nil},
		{"unknown model version", "PUT", "/endpoints/iris", "", strings.Replace(irisV1, `"version":"1"`, `"version":"9"`, 1), 400, api.CodeInvalidArgument,
			"spec.routes[0].version: Model Version (name=clf, version=9) not found", nil},
		{"actor too long", "PUT", "/endpoints/iris", strings.Repeat("a", 300), irisV1, 400, api.CodeInvalidArgument, "X-Kiln-Actor is longer than 256 bytes", nil},
		{"unknown endpoint", "GET", "/endpoints/nope", "", "", 404, api.CodeNotFound, "", nil},
		{"events of an unknown endpoint", "GET", "/endpoints/nope/events", "", "", 404, api.CodeNotFound, "", nil},
		{"stats of an unknown endpoint", "GET", "/endpoints/nope/stats", "", "", 404, api.CodeNotFound, "", nil},
		{"bad limit", "GET", "/endpoints/nope/events?limit=5000", "", "", 400, api.CodeInvalidArgument, "Invalid limit 5000: want 1 to 1000", nil},
		{"rollout body not JSON", "POST", "/endpoints/nope/rollout/pause", "", "reason", 400, api.CodeInvalidArgument, "", nil},
		{"rollout of an unknown endpoint", "POST", "/endpoints/nope/rollout/pause", "", "", 404, api.CodeNotFound, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, eb, body := e.do(t, tc.method, tc.path, tc.actor, tc.body)
			if code != tc.status || eb.Error.Code != tc.code {
				t.Fatalf("%d %s, want %d %s", code, body, tc.status, tc.code)
			}
			if tc.msg != "" && eb.Error.Message != tc.msg {
				t.Errorf("message %q\nwant    %q", eb.Error.Message, tc.msg)
			}
			if tc.details != nil && fmt.Sprint(eb.Error.Details) != fmt.Sprint(tc.details) {
				t.Errorf("details %+v, want %+v", eb.Error.Details, tc.details)
			}
			if tc.details == nil && bytes.Contains(body, []byte(`"details"`)) {
				t.Errorf("details in %s", body)
			}
		})
	}
	// The client gives the field errors back.
	var doc deploy.Endpoint
	json.Unmarshal([]byte(negative), &doc)
	_, err := e.c.ApplyEndpoint(context.Background(), &doc, client.ChangeOptions{})
	var fes deploy.FieldErrors
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !errors.As(err, &fes) || len(fes) != 2 || fes[0].Path != "spec.routes[0].weight" {
		t.Fatalf("client error %v (%+v)", err, fes)
	}
	if _, err := e.c.GetEndpoint(context.Background(), "nope"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("client not found: %v", err)
	}
}

func TestEndpointRolloutAPI(t *testing.T) {
	e := newEndpointsEnv(t, storetest.TestDatabases(t)["sqlite"](t))
	e.register(t, "clf", "skl_svc_rbf_multi")
	e.register(t, "clf", "skl_svc_rbf_multi")
	ctx := context.Background()
	canary := func(version string) *deploy.Endpoint {
		return &deploy.Endpoint{Metadata: deploy.Metadata{Name: "iris"}, Spec: deploy.EndpointSpec{Model: "clf",
			Routes:  []deploy.Route{{Name: "main", ModelRef: deploy.ModelRef{Version: version}, Weight: 100}},
			Rollout: &deploy.Rollout{Strategy: deploy.StrategyCanary, Steps: []deploy.Step{{Weight: 10, Interval: deploy.Duration(3600e9)}, {Weight: 50, Interval: deploy.Duration(3600e9)}}}}}
	}
	as := client.ChangeOptions{Actor: "ops", Reason: "release 2"}
	if _, err := e.c.ApplyEndpoint(ctx, canary("1"), as); err != nil {
		t.Fatal(err)
	}
	res, err := e.c.ApplyEndpoint(ctx, canary("2"), as)
	if err != nil {
		t.Fatal(err)
	}
	ro := res.State.Status.Rollout
	if ro == nil || ro.Phase != deploy.PhaseProgressing || ro.Step != 0 || ro.Candidate.Version != 2 || ro.Stable.Version != 1 {
		t.Fatalf("rollout after the change: %+v", ro)
	}
	for _, step := range []struct {
		action, phase string
		routes        string
	}{
		{"pause", deploy.PhasePaused, "main=1:90 canary=2:10"},
		{"resume", deploy.PhaseProgressing, "main=1:90 canary=2:10"},
		{"promote", deploy.PhaseSucceeded, "main=2:100"},
		{"rollback", deploy.PhaseRolledBack, "main=1:100"},
	} {
		st, err := e.c.Rollout(ctx, "iris", step.action, client.ChangeOptions{Actor: "ops", Reason: step.action + " by hand"})
		if err != nil {
			t.Fatalf("%s: %v", step.action, err)
		}
		var routes []string
		for _, r := range st.Status.Routes {
			if r.Weight > 0 {
				routes = append(routes, r.Name+"="+strconv.FormatInt(r.Version, 10)+":"+strconv.FormatFloat(r.Weight, 'f', -1, 64))
			}
		}
		if st.Status.Rollout.Phase != step.phase || strings.Join(routes, " ") != step.routes {
			t.Fatalf("after %s: phase %s, routes %v; want %s, %s", step.action, st.Status.Rollout.Phase, routes, step.phase, step.routes)
		}
	}
	evs, err := e.c.EndpointEvents(ctx, "iris", 0)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, ev := range evs {
		if ev.Actor == "ops" && strings.HasSuffix(ev.Reason, "by hand") {
			actions = append(actions, ev.Action)
		}
	}
	if strings.Join(actions, ",") != "rollback,promote,resume,pause" {
		t.Fatalf("recorded actions %v (all: %+v)", actions, evs)
	}
}

// TestEndpointPendingAlias: between an alias move and the controller's
// tick (not running here), GET says what is pending, so that a watcher
// does not take the old routes as final.
func TestEndpointPendingAlias(t *testing.T) {
	e := newEndpointsEnv(t, storetest.TestDatabases(t)["sqlite"](t))
	v1 := e.register(t, "clf", "skl_svc_rbf_multi")
	v2 := e.register(t, "clf", "skl_svc_rbf_multi")
	ctx := context.Background()
	if err := e.reg.SetAlias(ctx, "clf", "champion", v1); err != nil {
		t.Fatal(err)
	}
	doc := &deploy.Endpoint{Metadata: deploy.Metadata{Name: "iris"}, Spec: deploy.EndpointSpec{Model: "clf",
		Routes: []deploy.Route{{Name: "main", ModelRef: deploy.ModelRef{Alias: "champion"}, Weight: 100}}}}
	if _, err := e.c.ApplyEndpoint(ctx, doc, client.ChangeOptions{Actor: "ops"}); err != nil {
		t.Fatal(err)
	}
	if st, err := e.c.GetEndpoint(ctx, "iris"); err != nil || st.Status.Pending != "" {
		t.Fatalf("before the move: pending %q, %v", st.Status.Pending, err)
	}
	if err := e.reg.SetAlias(ctx, "clf", "champion", v2); err != nil {
		t.Fatal(err)
	}
	st, err := e.c.GetEndpoint(ctx, "iris")
	if want := fmt.Sprintf("alias clf@champion moved to version %d (route main served %d)", v2, v1); err != nil || st.Status.Pending != want {
		t.Fatalf("after the move: pending %q (want %q), %v", st.Status.Pending, want, err)
	}
}

func TestEndpointsNotServed(t *testing.T) {
	mux := http.NewServeMux()
	api.New(api.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	code, eb, _ := rawRequest(t, "GET", srv.URL+"/api/v1/endpoints", "", nil)
	if code != 501 || eb.Error.Code != api.CodeNotImplemented {
		t.Fatalf("%d %+v", code, eb)
	}
}

// applyPatch applies a unified diff to a, checking every context and
// removed line, and returns the result.
func applyPatch(t *testing.T, a, diff string) string {
	t.Helper()
	al := strings.Split(strings.TrimSuffix(a, "\n"), "\n")
	if a == "" {
		al = nil
	}
	lines := strings.Split(strings.TrimSuffix(diff, "\n"), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "--- ") || !strings.HasPrefix(lines[1], "+++ ") {
		t.Fatalf("no header in\n%s", diff)
	}
	var out []string
	next := 0 // next line of a to copy
	for i := 2; i < len(lines); {
		var as, an, bs, bn int
		h := lines[i]
		if _, err := fmt.Sscanf(strings.NewReplacer(",", " ", "-", "", "+", "").Replace(h), "@@ %d %d %d %d @@", &as, &an, &bs, &bn); err != nil {
			// single-line ranges omit the count
			parts := strings.Fields(h)
			as, an = parseRange(t, parts[1][1:])
			bs, bn = parseRange(t, parts[2][1:])
		}
		start := as - 1
		if an == 0 {
			start = as
		}
		if start < next {
			t.Fatalf("hunks overlap at %q", h)
		}
		out = append(out, al[next:start]...)
		next = start
		i++
		gotA, gotB := 0, 0
		for ; i < len(lines) && !strings.HasPrefix(lines[i], "@@"); i++ {
			l := lines[i]
			switch l[0] {
			case ' ', '-':
				if next >= len(al) || al[next] != l[1:] {
					t.Fatalf("line %d of a is not %q", next+1, l[1:])
				}
				next++
				gotA++
				if l[0] == ' ' {
					out = append(out, l[1:])
					gotB++
				}
			case '+':
				out = append(out, l[1:])
				gotB++
			default:
				t.Fatalf("bad line %q", l)
			}
		}
		if gotA != an || gotB != bn {
			t.Fatalf("hunk %q has %d/%d lines", h, gotA, gotB)
		}
	}
	out = append(out, al[next:]...)
	if len(out) == 0 {
		return ""
	}
	return strings.Join(out, "\n") + "\n"
}

func parseRange(t *testing.T, s string) (int, int) {
	a, b, ok := strings.Cut(s, ",")
	start, err := strconv.Atoi(a)
	if err != nil {
		t.Fatalf("range %q", s)
	}
	if !ok {
		return start, 1
	}
	n, _ := strconv.Atoi(b)
	return start, n
}

func TestUnifiedDiff(t *testing.T) {
	for _, tc := range []struct{ a, b, want string }{
		{"x\n", "x\n", ""},
		{"", "a\nb\n", "--- a\n+++ b\n@@ -0,0 +1,2 @@\n+a\n+b\n"},
		{"a\nb\n", "", "--- a\n+++ b\n@@ -1,2 +0,0 @@\n-a\n-b\n"},
		{"1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\n15\n16\n", "1\n2\n3\nfour\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\nfifteen\n16\n",
			"--- a\n+++ b\n@@ -1,7 +1,7 @@\n 1\n 2\n 3\n-4\n+four\n 5\n 6\n 7\n@@ -12,5 +12,5 @@\n 12\n 13\n 14\n-15\n+fifteen\n 16\n"},
		{"1\n2\n3\n4\n5\n6\n7\n8\n9\n", "1\n2\nthree\n4\n5\n6\n7\n8\nnine\n", "--- a\n+++ b\n@@ -1,9 +1,9 @@\n 1\n 2\n-3\n+three\n 4\n 5\n 6\n 7\n 8\n-9\n+nine\n"},
	} {
		if got := api.UnifiedDiff("a", "b", tc.a, tc.b); got != tc.want {
			t.Errorf("UnifiedDiff(%q, %q) =\n%s\nwant\n%s", tc.a, tc.b, got, tc.want)
		}
	}
	// Random edits: the diff turns a into b.
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		var a []string
		for range rng.IntN(30) {
			a = append(a, strconv.Itoa(rng.IntN(8)))
		}
		b := append([]string(nil), a...)
		for range rng.IntN(6) {
			switch p := rng.IntN(len(b) + 1); rng.IntN(3) {
			case 0:
				b = append(b[:p], append([]string{"new" + strconv.Itoa(i)}, b[p:]...)...)
			case 1:
				if p < len(b) {
					b = append(b[:p], b[p+1:]...)
				}
			default:
				if p < len(b) {
					b[p] = "changed"
				}
			}
		}
		as, bs := join(a), join(b)
		d := api.UnifiedDiff("a", "b", as, bs)
		if (d == "") != (as == bs) {
			t.Fatalf("diff of %q and %q: %q", as, bs, d)
		}
		if d != "" {
			if got := applyPatch(t, as, d); got != bs {
				t.Fatalf("patch of %q with\n%s\ngives %q, want %q", as, d, got, bs)
			}
		}
	}
}

func join(l []string) string {
	if len(l) == 0 {
		return ""
	}
	return strings.Join(l, "\n") + "\n"
}

// FuzzEndpointDocument sends arbitrary bodies as endpoint documents (as
// dry runs, over a real Manager): every answer is a success or an error
// in the API's format, never a 500 or a panic.
func FuzzEndpointDocument(f *testing.F) {
	db, err := store.Open(context.Background(), "sqlite://"+filepath.Join(f.TempDir(), "kiln.db"))
	if err != nil {
		f.Fatal(err)
	}
	defer db.Close()
	e := newEndpointsEnv(f, db)
	f.Add(irisV1, "iris")
	f.Add(strings.Replace(irisV1, "100", "-1", 1), "iris")
	f.Add(`{"metadata":{"name":"x"},"spec":{"routes":[],"rollout":{"strategy":"canary","steps":[{"weight":200,"interval":"5x"}]}}}`, "x")
	f.Add(`{"spec":{"routes":[{"version":"1","weight":1e400}]}}`, "a")
	f.Add(`[1,2]`, "a")
	f.Fuzz(func(t *testing.T, body, name string) {
		req, err := http.NewRequest("PUT", e.srv.URL+"/api/v1/endpoints/"+url(name)+"?dry_run=true", strings.NewReader(body))
		if err != nil {
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode >= 500 {
			t.Fatalf("%d %s", resp.StatusCode, data)
		}
		if resp.StatusCode != 200 {
			var eb api.ErrorBody
			if json.Unmarshal(data, &eb) != nil || eb.Error.Code == "" {
				t.Fatalf("%d: not an error body: %s", resp.StatusCode, data)
			}
		}
	})
}

func url(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	if b.Len() == 0 {
		return "x"
	}
	return b.String()
}
