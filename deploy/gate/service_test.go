package gate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/mlflowapi"
	"github.com/kiln-ml/kiln/model"
	"github.com/kiln-ml/kiln/registry"
	"github.com/kiln-ml/kiln/store"
	"github.com/kiln-ml/kiln/store/storetest"
	"github.com/kiln-ml/kiln/tracking"
)

// env is a registry with the fixture models as versions 1 (good) and 2
// (bad) of "churn", the fixture data as dataset version eval@1, a gate
// service guarding the registry's aliases, and the MLflow REST API over
// it all.
type env struct {
	db  *store.DB
	reg *registry.Store
	svc *Service
	srv *httptest.Server
}

func putDir(t *testing.T, b *blob.Bucket, dir, prefix string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		_, err = b.Put(context.Background(), prefix+"/"+e.Name(), f, "")
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
}

func newEnv(t *testing.T, db *store.DB) *env {
	t.Helper()
	ctx := context.Background()
	trk := tracking.New(db, tracking.Options{})
	reg := registry.New(db, trk)
	bucket, err := blob.Open(ctx, "file://"+filepath.Join(t.TempDir(), "artifacts"), blob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bucket.Close() })
	putDir(t, bucket, "testdata/good", "models/good")
	putDir(t, bucket, "testdata/bad", "models/bad")
	if _, err := reg.CreateRegisteredModel(ctx, "churn", "", nil); err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{"mlflow-artifacts:/models/good", "mlflow-artifacts:/models/bad"} {
		if _, err := reg.CreateModelVersion(ctx, registry.CreateModelVersionInput{Name: "churn", Source: src}); err != nil {
			t.Fatal(err)
		}
	}
	ds := dataset.NewStore(db)
	content := dataset.NewBucketRemote(bucket)
	src, err := dataset.NewLocalSource("testdata/eval.csv")
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := dataset.Hash(ctx, src, dataset.HashOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dataset.Push(ctx, src, m, content, dataset.TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ds.CreateDataset(ctx, "eval", "", nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ds.CreateVersion(ctx, dataset.NewVersion{Dataset: "eval", Manifest: m}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := NewService(ServiceOptions{
		Store: NewStore(db), Registry: reg, Resolver: model.NewStoreResolver(trk, reg, bucket, t.TempDir()),
		Datasets: ds, Content: content, Artifacts: bucket, TempDir: t.TempDir(), Logger: log,
	})
	reg.SetAliasGuard(svc)
	mux := http.NewServeMux()
	mlflowapi.New(mlflowapi.Deps{Tracking: trk, Registry: reg, Artifacts: bucket, Logger: log}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &env{db: db, reg: reg, svc: svc, srv: srv}
}

const servicePolicy = `apiVersion: kiln.dev/v1
kind: GatePolicy
metadata: {name: churn-quality}
spec:
  model: churn
  data: eval@1/eval.csv
  label: y
  features: [x1, x2, x3, x4]
  metrics:
    - name: roc_auc
      threshold: {min: 0.75}
      change: {max_worsening: 0.01}
  protect_aliases: [champion]
  protect_endpoints: [churn-prod]
`

// setAlias calls MLflow's set-alias endpoint and returns the status and
// the error body.
func (e *env) setAlias(t *testing.T, alias, version string) (int, map[string]string) {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"name": "churn", "alias": alias, "version": version})
	resp, err := http.Post(e.srv.URL+"/api/2.0/mlflow/registered-models/alias", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]string
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func tags(t *testing.T, reg *registry.Store, version int64) map[string]string {
	t.Helper()
	v, err := reg.GetModelVersion(context.Background(), "churn", version)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, kv := range v.Tags {
		out[kv.Key] = kv.Value
	}
	return out
}

func TestServiceEnforcement(t *testing.T) {
	ctx := context.Background()
	for name, open := range storetest.TestDatabases(t) {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, open(t))
			p := mustPolicy(t, servicePolicy)
			sp, changed, err := e.svc.PutPolicy(ctx, p, "alice")
			if err != nil || !changed || sp.Generation != 1 || sp.UpdatedBy != "alice" {
				t.Fatalf("put: %+v %v %v", sp, changed, err)
			}

			// No result yet: the MLflow client's set-alias is refused.
			status, body := e.setAlias(t, "champion", "1")
			if status != http.StatusBadRequest || body["error_code"] != "INVALID_STATE" ||
				!strings.Contains(body["message"], "churn-quality") || !strings.Contains(body["message"], "no result") {
				t.Fatalf("set alias without a result: %d %v", status, body)
			}
			if err := e.svc.AllowAlias(ctx, "churn", "champion", 1); !errors.Is(err, ErrGateRequired) || !errors.Is(err, errdefs.ErrInvalidState) {
				t.Fatalf("AllowAlias: %v", err)
			}
			// Unprotected aliases move freely.
			if status, body := e.setAlias(t, "challenger", "2"); status != http.StatusOK {
				t.Fatalf("unprotected alias: %d %v", status, body)
			}

			// v1 with no champion: a rubber stamp on the value threshold.
			r1, err := e.svc.Evaluate(ctx, "churn-quality", 1, "ci")
			if err != nil {
				t.Fatal(err)
			}
			if !r1.Passed || !r1.RubberStamp || r1.ID == "" || r1.Actor != "ci" || r1.Data.Ref != "eval@1/eval.csv" || r1.Candidate.Version != 1 {
				t.Fatalf("v1: %+v", r1)
			}
			if tg := tags(t, e.reg, 1); tg["kiln.gate.churn-quality"] != "passed" || tg["kiln.gate.churn-quality.result_id"] != r1.ID {
				t.Fatalf("v1 tags %v", tg)
			}
			if status, body := e.setAlias(t, "champion", "1"); status != http.StatusOK {
				t.Fatalf("set alias after a pass: %d %v", status, body)
			}

			// v2 against the champion v1: fails, and cannot become champion.
			r2, err := e.svc.Evaluate(ctx, "churn-quality", 2, "ci")
			if err != nil {
				t.Fatal(err)
			}
			if r2.Passed || r2.RubberStamp || r2.Baseline == nil || r2.Baseline.Version != 1 || r2.BaselineAlias != "champion" {
				t.Fatalf("v2: %+v", r2)
			}
			if tg := tags(t, e.reg, 2); tg["kiln.gate.churn-quality"] != "failed" {
				t.Fatalf("v2 tags %v", tg)
			}
			status, body = e.setAlias(t, "champion", "2")
			if status != http.StatusBadRequest || body["error_code"] != "INVALID_STATE" ||
				!strings.Contains(body["message"], "failed") || !strings.Contains(body["message"], "roc_auc") || !strings.Contains(body["message"], r2.ID) {
				t.Fatalf("set alias to a failed version: %d %v", status, body)
			}
			if v, err := e.reg.GetVersionByAlias(ctx, "churn", "champion"); err != nil || v.Version != 1 {
				t.Fatalf("champion moved: %v %v", v, err)
			}

			// Endpoints.
			routes := []struct {
				endpoint, model string
				version         int64
				want            error
			}{
				{"churn-prod", "churn", 1, nil},
				{"churn-prod", "churn", 2, ErrGateFailed},
				{"churn-staging", "churn", 2, nil},
				{"churn-prod", "fraud", 1, ErrGateRequired},
			}
			for _, rt := range routes {
				err := e.svc.AllowRoute(ctx, rt.endpoint, rt.model, rt.version)
				if (rt.want == nil) != (err == nil) || rt.want != nil && !errors.Is(err, rt.want) {
					t.Errorf("AllowRoute(%s, %s, %d) = %v, want %v", rt.endpoint, rt.model, rt.version, err, rt.want)
				}
			}

			// Results, newest first.
			rs, err := e.svc.Results(ctx, "churn", 2, "")
			if err != nil || len(rs) != 1 || rs[0].ID != r2.ID || rs[0].Passed {
				t.Fatalf("results of v2: %+v %v", rs, err)
			}
			if _, err := e.svc.Results(ctx, "churn", 9, ""); !errors.Is(err, errdefs.ErrNotFound) {
				t.Fatalf("results of a missing version: %v", err)
			}

			// The same document again changes nothing; a new spec needs
			// new results.
			if sp, changed, err := e.svc.PutPolicy(ctx, p, "bob"); err != nil || changed || sp.Generation != 1 {
				t.Fatalf("idempotent put: %+v %v %v", sp, changed, err)
			}
			p2 := mustPolicy(t, strings.Replace(servicePolicy, "min: 0.75", "min: 0.7", 1))
			if sp, changed, err := e.svc.PutPolicy(ctx, p2, "bob"); err != nil || !changed || sp.Generation != 2 {
				t.Fatalf("changed put: %+v %v %v", sp, changed, err)
			}
			if err := e.svc.AllowAlias(ctx, "churn", "champion", 1); !errors.Is(err, ErrGateRequired) {
				t.Fatalf("a result of an old spec still counts: %v", err)
			}

			// A deleted policy protects nothing.
			if err := e.svc.DeletePolicy(ctx, "churn-quality", "alice"); err != nil {
				t.Fatal(err)
			}
			if status, body := e.setAlias(t, "champion", "2"); status != http.StatusOK {
				t.Fatalf("set alias after the policy is gone: %d %v", status, body)
			}
			if _, err := e.svc.Evaluate(ctx, "churn-quality", 1, ""); !errors.Is(err, errdefs.ErrNotFound) {
				t.Fatalf("evaluate a deleted policy: %v", err)
			}
		})
	}
}

func TestServiceErrors(t *testing.T) {
	ctx := context.Background()
	for name, open := range storetest.TestDatabases(t) {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, open(t))
			tests := []struct {
				name    string
				doc     string
				version int64
				kind    error
				msg     string
			}{
				{"missing version", servicePolicy, 7, errdefs.ErrNotFound, "version=7"},
				{"no version", servicePolicy, 0, errdefs.ErrInvalidArgument, "A version to evaluate is required"},
				{"local data on a server", strings.Replace(servicePolicy, "eval@1/eval.csv", "testdata/eval.csv", 1), 1, errdefs.ErrInvalidArgument, "does not read its own files"},
				{"missing dataset", strings.Replace(servicePolicy, "eval@1/eval.csv", "nope@1", 1), 1, errdefs.ErrNotFound, "nope"},
				{"missing file in the version", strings.Replace(servicePolicy, "eval@1/eval.csv", "eval@1/x.csv", 1), 1, errdefs.ErrNotFound, "has no file 'x.csv'"},
				{"disallowed scheme", strings.Replace(servicePolicy, "eval@1/eval.csv", "s3://b/eval.csv", 1), 1, errdefs.ErrInvalidArgument, `scheme "s3"`},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					if _, _, err := e.svc.PutPolicy(ctx, mustPolicy(t, tt.doc), ""); err != nil {
						t.Fatal(err)
					}
					_, err := e.svc.Evaluate(ctx, "churn-quality", tt.version, "")
					if !errors.Is(err, tt.kind) || !strings.Contains(errdefs.Message(err), tt.msg) {
						t.Fatalf("error %v, want %v with %q", err, tt.kind, tt.msg)
					}
				})
			}
		})
	}
}

func TestStore(t *testing.T) {
	ctx := context.Background()
	for name, open := range storetest.TestDatabases(t) {
		t.Run(name, func(t *testing.T) {
			db := open(t)
			e := newEnv(t, db)
			s := e.svc.Store()
			if _, err := s.GetPolicy(ctx, "nope"); !errors.Is(err, errdefs.ErrNotFound) {
				t.Fatalf("get missing: %v", err)
			}
			if err := s.DeletePolicy(ctx, "nope"); !errors.Is(err, errdefs.ErrNotFound) {
				t.Fatalf("delete missing: %v", err)
			}
			bad := mustPolicy(t, servicePolicy)
			bad.Spec.Label = ""
			if _, _, err := s.PutPolicy(ctx, bad, ""); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("put invalid: %v", err)
			}
			for _, n := range []string{"b-policy", "a-policy"} {
				p := mustPolicy(t, strings.Replace(servicePolicy, "churn-quality", n, 1))
				if _, _, err := s.PutPolicy(ctx, p, ""); err != nil {
					t.Fatal(err)
				}
			}
			other := mustPolicy(t, strings.Replace(strings.Replace(servicePolicy, "churn-quality", "c-policy", 1), "model: churn", "model: fraud", 1))
			if _, _, err := s.PutPolicy(ctx, other, ""); err != nil {
				t.Fatal(err)
			}
			all, err := s.ListPolicies(ctx, "")
			if err != nil || len(all) != 3 || all[0].Policy.Metadata.Name != "a-policy" || all[2].Policy.Spec.Model != "fraud" {
				t.Fatalf("list: %v %v", all, err)
			}
			churn, err := s.ListPolicies(ctx, "churn")
			if err != nil || len(churn) != 2 {
				t.Fatalf("list churn: %v %v", churn, err)
			}

			// Results: stored whole, listed newest first, immutable.
			var ids []string
			for i, passed := range []bool{false, true, false} {
				r := &Result{Policy: "a-policy", PolicyDigest: "d", Passed: passed, Candidate: ModelRef{URI: "models:/churn/1", Name: "churn", Version: 1},
					Data: DataInfo{Ref: "eval@1", Digest: "x", Rows: int64(10 + i)}, Checks: []Check{{Metric: "accuracy", Kind: CheckMin, Passed: passed}}}
				if err := s.AddResult(ctx, r); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, r.ID)
			}
			if !(ids[0] < ids[1] && ids[1] < ids[2]) {
				t.Fatalf("ids do not increase: %v", ids)
			}
			rs, err := s.ListResults(ctx, "churn", 1, "", 0)
			if err != nil || len(rs) != 3 || rs[0].ID != ids[2] || rs[2].Data.Rows != 10 {
				t.Fatalf("list results: %+v %v", rs, err)
			}
			latest, err := s.LatestResult(ctx, "a-policy", "d", "churn", 1)
			if err != nil || latest.ID != ids[2] || latest.Passed {
				t.Fatalf("latest: %+v %v", latest, err)
			}
			if r, err := s.LatestResult(ctx, "a-policy", "other-digest", "churn", 1); r != nil || err != nil {
				t.Fatalf("latest of another digest: %+v %v", r, err)
			}
			got, err := s.GetResult(ctx, ids[1])
			if err != nil || !got.Passed || len(got.Checks) != 1 {
				t.Fatalf("get result: %+v %v", got, err)
			}
			if _, err := db.W.ExecContext(ctx, db.Rebind(`UPDATE gate_results SET passed = ? WHERE result_id = ?`), true, ids[0]); err == nil {
				t.Fatal("a stored result was updated")
			}
			if err := s.AddResult(ctx, &Result{Policy: "a-policy", Candidate: ModelRef{Name: "churn", Version: 99}}); !errors.Is(err, errdefs.ErrNotFound) {
				t.Fatalf("result of a missing version: %v", err)
			}
			// A registered model's rename carries its results along.
			if _, err := e.reg.RenameRegisteredModel(ctx, "churn", "churn2"); err != nil {
				t.Fatal(err)
			}
			if rs, err := s.ListResults(ctx, "churn2", 1, "a-policy", 0); err != nil || len(rs) != 3 {
				t.Fatalf("results after a rename: %d %v", len(rs), err)
			}
		})
	}
}
