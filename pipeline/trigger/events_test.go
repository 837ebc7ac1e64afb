package trigger

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/monitor/alert"
	"github.com/kiln-ml/kiln/pipeline"
	"github.com/kiln-ml/kiln/registry"
	"github.com/kiln-ml/kiln/store"
)

func addDatasetVersion(t *testing.T, ds *dataset.Store, name, content string) *dataset.Version {
	t.Helper()
	m, err := dataset.NewManifest(dataset.KindFile, []dataset.Entry{{Path: "data.csv", Size: int64(len(content)), Digest: dataset.Sum([]byte(content))}})
	if err != nil {
		t.Fatal(err)
	}
	v, created, err := ds.CreateVersion(ctx, dataset.NewVersion{Dataset: name, Manifest: m})
	if err != nil || !created {
		t.Fatalf("create version: %v, created %v", err, created)
	}
	return v
}

func versionsOf(runs []pipeline.Run) []string {
	var out []string
	for _, r := range runs {
		out = append(out, r.Cause.Event["version"])
	}
	return out
}

func TestDatasetTrigger(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		ds := dataset.NewStore(db)
		addDatasetVersion(t, ds, "churn", "1")
		addDatasetVersion(t, ds, "churn", "2")
		tr := pipeline.Trigger{Name: "fresh", Dataset: "churn", Parameters: map[string]string{"data": "{{trigger.ref}}"}}
		r := newFakeRunner(stored("p", nil, []pipeline.Trigger{tr, {Name: "later", Dataset: "not-yet"}}))
		clk := newClock(time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC))
		s := newTestService(t, db, r, clk, func(o *Options) { o.Datasets = ds })
		s.pollOnce(ctx)
		step(s, clk, 3*time.Second, time.Second)
		if runs := r.started("p"); len(runs) != 0 {
			t.Fatalf("history fired: %+v", runs)
		}
		if st := state(t, s, "p", "fresh"); st.Cursor != "2" || st.Type != TypeDataset {
			t.Fatalf("state %+v, want cursor 2", st)
		}
		v3 := addDatasetVersion(t, ds, "churn", "3")
		step(s, clk, 3*time.Second, time.Second)
		runs := r.started("p")
		if len(runs) != 1 || runs[0].Parameters["data"] != "churn@3" || runs[0].Cause.Type != "trigger" || runs[0].Cause.Name != "fresh" ||
			runs[0].Cause.Event["digest"] != v3.Digest.String() || runs[0].CreatedBy != "trigger/fresh" {
			t.Fatalf("runs after version 3: %+v", runs)
		}
		addDatasetVersion(t, ds, "churn", "4")
		addDatasetVersion(t, ds, "churn", "5")
		addDatasetVersion(t, ds, "not-yet", "a") // made after the trigger was first seen: new
		step(s, clk, 3*time.Second, time.Second)
		if got := versionsOf(r.started("p")); !slices.Equal(got, []string{"3", "4", "5", "1"}) {
			t.Fatalf("versions fired %v", got)
		}
		for _, v := range []string{"3", "4", "5"} {
			if n := r.callsFor("p", "dataset/churn/"+v); n != 1 {
				t.Errorf("version %s: %d StartRun calls", v, n)
			}
		}
		if st := state(t, s, "p", "fresh"); st.Cursor != "5" || st.LastRunID != r.started("p")[2].ID {
			t.Errorf("state %+v", st)
		}
		// Changing the dataset the trigger watches starts from its newest version.
		addDatasetVersion(t, ds, "other", "x")
		tr.Dataset = "other"
		r.put(stored("p", nil, []pipeline.Trigger{tr}))
		step(s, clk, 3*time.Second, time.Second)
		if st := state(t, s, "p", "fresh"); st.Cursor != "1" || len(r.started("p")) != 4 {
			t.Errorf("after switching datasets: state %+v, %d runs", st, len(r.started("p")))
		}
	})
}

func TestModelTrigger(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		reg := registry.New(db, nil)
		newModelVersion := func(name string) *registry.ModelVersion {
			t.Helper()
			v, err := reg.CreateModelVersion(ctx, registry.CreateModelVersionInput{Name: name, Source: "s3://bucket/" + name})
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		for _, name := range []string{"churn", "it's"} {
			if _, err := reg.CreateRegisteredModel(ctx, name, "", nil); err != nil {
				t.Fatal(err)
			}
		}
		newModelVersion("churn")
		newModelVersion("it's")
		r := newFakeRunner(stored("p", nil, []pipeline.Trigger{
			{Name: "new-model", Model: "churn", Parameters: map[string]string{"model": "{{trigger.uri}}"}},
			{Name: "quoted", Model: "it's"},
		}))
		clk := newClock(time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC))
		s := newTestService(t, db, r, clk, func(o *Options) { o.Registry = reg })
		s.pollOnce(ctx)
		step(s, clk, 2*time.Second, time.Second)
		if runs := r.started("p"); len(runs) != 0 {
			t.Fatalf("history fired: %+v", runs)
		}
		newModelVersion("churn")
		newModelVersion("churn")
		newModelVersion("it's")
		step(s, clk, 2*time.Second, time.Second)
		runs := r.started("p")
		var got []string
		for _, run := range runs {
			got = append(got, run.Cause.Name+":"+run.Cause.Event["model"]+"/"+run.Cause.Event["version"]+":"+run.Parameters["model"])
		}
		want := []string{"new-model:churn/2:models:/churn/2", "new-model:churn/3:models:/churn/3", "quoted:it's/2:"}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("runs %v, want %v", got, want)
		}
		step(s, clk, 2*time.Second, time.Second)
		if n := len(r.started("p")); n != 3 {
			t.Errorf("%d runs after polling again", n)
		}
		if st := state(t, s, "p", "new-model"); st.Cursor != "3" || st.Type != TypeModel {
			t.Errorf("state %+v", st)
		}
	})
}

func TestAlertHook(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		r := newFakeRunner(
			stored("by-rule", nil, []pipeline.Trigger{{Name: "drift", Alert: &pipeline.AlertTrigger{Monitor: "churn", Rule: "data-drift"},
				Parameters: map[string]string{"why": "{{trigger.rule}} on {{trigger.endpoint}} = {{trigger.value}} ({{trigger.label_feature}})"}}}),
			stored("any-rule", nil, []pipeline.Trigger{
				{Name: "one", Alert: &pipeline.AlertTrigger{Monitor: "churn"}, Parameters: map[string]string{"n": "1"}},
				{Name: "two", Alert: &pipeline.AlertTrigger{Monitor: "churn"}, Parameters: map[string]string{"n": "2"}}}),
			stored("other-monitor", nil, []pipeline.Trigger{{Name: "x", Alert: &pipeline.AlertTrigger{Monitor: "fraud"}}}),
			stored("other-rule", nil, []pipeline.Trigger{{Name: "x", Alert: &pipeline.AlertTrigger{Monitor: "churn", Rule: "latency"}}}),
			stored("named", nil, nil),
		)
		clk := newClock(time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC))
		s := newTestService(t, db, r, clk)
		a := alert.Alert{EventID: "ev1", Monitor: "churn", Rule: "data-drift", Status: alert.StateFiring, Severity: "warning", Fingerprint: "f00d",
			Value: 0.25, Labels: map[string]string{"endpoint": "churn-api", "feature": "tenure"},
			Trigger: &alert.Trigger{Pipeline: "named", Parameters: map[string]string{"sev": "{{trigger.severity}}"}}}
		for range 2 { // the same event twice: one run each
			if err := s.AlertFiring(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		check := func(name string, n int) []pipeline.Run {
			t.Helper()
			runs := r.started(name)
			if len(runs) != n {
				t.Fatalf("pipeline %s: %d runs, want %d", name, len(runs), n)
			}
			return runs
		}
		if run := check("by-rule", 1)[0]; run.Parameters["why"] != "data-drift on churn-api = 0.25 (tenure)" || run.Cause.Event["fingerprint"] != "f00d" ||
			run.Cause.Event["severity"] != "warning" || run.Cause.Event["monitor"] != "churn" || run.Cause.Name != "drift" {
			t.Errorf("by-rule run %+v", run)
		}
		if run := check("any-rule", 1)[0]; run.Parameters["n"] != "1" {
			t.Errorf("any-rule ran with %v, want the first matching trigger's parameters", run.Parameters)
		}
		check("other-monitor", 0)
		check("other-rule", 0)
		if run := check("named", 1)[0]; run.Parameters["sev"] != "warning" || run.Cause.Event["rule"] != "data-drift" {
			t.Errorf("named run %+v", run)
		}
		if n := r.callsFor("by-rule", "alert/ev1/by-rule"); n != 2 {
			t.Errorf("%d StartRun calls for the repeated event, want 2 (the second deduplicated)", n)
		}
		if st := state(t, s, "by-rule", "drift"); st.Type != TypeAlert || st.LastRunID != check("by-rule", 1)[0].ID || st.LastFire == 0 {
			t.Errorf("state %+v", st)
		}
		// A rule naming a pipeline that also has a matching trigger: one run.
		a2 := a
		a2.EventID, a2.Trigger = "ev2", &alert.Trigger{Pipeline: "by-rule"}
		if err := s.AlertFiring(ctx, a2); err != nil {
			t.Fatal(err)
		}
		check("by-rule", 2)
		// Resolved alerts start nothing; a rule naming a missing pipeline is an error.
		a3 := a
		a3.EventID, a3.Status = "ev3", alert.StateResolved
		if err := s.AlertFiring(ctx, a3); err != nil {
			t.Fatal(err)
		}
		check("by-rule", 2)
		a4 := a
		a4.EventID, a4.Monitor, a4.Trigger = "ev4", "nobody", &alert.Trigger{Pipeline: "gone"}
		if err := s.AlertFiring(ctx, a4); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("alert naming a missing pipeline: %v", err)
		}
	})
}

func TestWebhook(t *testing.T) {
	secret := "s3cr3t"
	env := func(k string) string {
		if k == "HOOK_SECRET" {
			return secret
		}
		return ""
	}
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	body := []byte(`{"ref": "main", "n": 3, "ok": true, "skip": null, "nested": {"a": 1}}`)
	good := Sign([]byte(secret), body)
	tests := []struct {
		name    string
		trigger string
		body    []byte
		h       http.Header
		wantErr error
		want    map[string]string // parameters
	}{
		{name: "unsigned trigger", trigger: "open", body: body, h: hdr(), want: map[string]string{"ref": "main"}},
		{name: "empty body", trigger: "open", body: nil, h: hdr(), wantErr: errdefs.ErrInvalidArgument}, // {{trigger.ref}} has no value
		{name: "good signature", trigger: "signed", body: body, h: hdr(SignatureHeader, good), want: map[string]string{"ref": "main", "n": "3", "ok": "true"}},
		{name: "missing signature", trigger: "signed", body: body, h: hdr(), wantErr: errdefs.ErrUnauthenticated},
		{name: "wrong signature", trigger: "signed", body: body, h: hdr(SignatureHeader, Sign([]byte("guess"), body)), wantErr: errdefs.ErrPermission},
		{name: "signature of another body", trigger: "signed", body: []byte(`{"ref":"evil"}`), h: hdr(SignatureHeader, good), wantErr: errdefs.ErrPermission},
		{name: "malformed signature", trigger: "signed", body: body, h: hdr(SignatureHeader, "sha1=abcd"), wantErr: errdefs.ErrPermission},
		{name: "short signature", trigger: "signed", body: body, h: hdr(SignatureHeader, good[:20]), wantErr: errdefs.ErrPermission},
		{name: "secret not on the server", trigger: "unset", body: body, h: hdr(SignatureHeader, good), wantErr: errdefs.ErrPermission},
		{name: "not an object", trigger: "open", body: []byte(`["main"]`), h: hdr(), wantErr: errdefs.ErrInvalidArgument},
		{name: "trailing data", trigger: "open", body: []byte(`{"ref":"a"} {"ref":"b"}`), h: hdr(), wantErr: errdefs.ErrInvalidArgument},
		{name: "too large", trigger: "open", body: []byte(`{"ref":"` + strings.Repeat("x", MaxWebhookBody) + `"}`), h: hdr(), wantErr: errdefs.ErrTooLarge},
		{name: "unknown trigger", trigger: "nope", body: body, h: hdr(), wantErr: errdefs.ErrNotFound},
		{name: "not a webhook trigger", trigger: "data", body: body, h: hdr(), wantErr: errdefs.ErrNotFound},
		{name: "bad delivery id", trigger: "open", body: body, h: hdr(DeliveryHeader, "a\x01b"), wantErr: errdefs.ErrInvalidArgument},
	}
	forEachDB(t, func(t *testing.T, db *store.DB) {
		p := stored("p", nil, []pipeline.Trigger{
			{Name: "open", Webhook: &pipeline.WebhookTrigger{}, Parameters: map[string]string{"ref": "{{trigger.ref}}"}},
			{Name: "signed", Webhook: &pipeline.WebhookTrigger{SecretEnv: "HOOK_SECRET"},
				Parameters: map[string]string{"ref": "{{trigger.ref}}", "n": "{{trigger.n}}", "ok": "{{ trigger.ok }}"}},
			{Name: "unset", Webhook: &pipeline.WebhookTrigger{SecretEnv: "NOT_SET"}},
			{Name: "data", Dataset: "d"},
		})
		r := newFakeRunner(p)
		clk := newClock(time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC))
		s := newTestService(t, db, r, clk, func(o *Options) { o.Env = env })
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before := len(r.started("p"))
				run, created, err := s.Webhook(ctx, "p", tt.trigger, tt.body, tt.h)
				if tt.wantErr != nil {
					if !errors.Is(err, tt.wantErr) || run != nil {
						t.Fatalf("got %v, %v; want error %v", run, err, tt.wantErr)
					}
					if n := len(r.started("p")); n != before {
						t.Errorf("a refused request started a run")
					}
					return
				}
				if err != nil || !created {
					t.Fatalf("got %v, %v, %v", run, created, err)
				}
				for k, v := range tt.want {
					if run.Parameters[k] != v {
						t.Errorf("parameter %s = %q, want %q (all: %v)", k, run.Parameters[k], v, run.Parameters)
					}
				}
				if _, ok := run.Cause.Event["nested"]; ok || run.Cause.Event["ref"] != "main" {
					t.Errorf("payload %v: want top-level scalars only", run.Cause.Event)
				}
			})
		}
		t.Run("delivery dedup", func(t *testing.T) {
			h := hdr(DeliveryHeader, "d-123")
			first, created, err := s.Webhook(ctx, "p", "open", body, h)
			if err != nil || !created {
				t.Fatal(created, err)
			}
			again, created, err := s.Webhook(ctx, "p", "open", body, h)
			if err != nil || created || again.ID != first.ID {
				t.Fatalf("again: %v, created %v, %v; want the first run %s", again, created, err, first.ID)
			}
			if st := state(t, s, "p", "open"); st.LastRunID != first.ID || st.Type != TypeWebhook {
				t.Errorf("state %+v", st)
			}
		})
		t.Run("forbid while active", func(t *testing.T) {
			p2 := stored("p2", nil, []pipeline.Trigger{{Name: "hook", Webhook: &pipeline.WebhookTrigger{}, Concurrency: pipeline.ConcurrencyForbid}})
			r.put(p2)
			if _, _, err := s.Webhook(ctx, "p2", "hook", nil, hdr()); err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.Webhook(ctx, "p2", "hook", nil, hdr()); !errors.Is(err, errdefs.ErrInvalidState) {
				t.Fatalf("second webhook under forbid: %v", err)
			}
		})
	})
}

func TestSignature(t *testing.T) {
	// The signature is the hex HMAC-SHA256 of the body (a known vector:
	// RFC 4231 test case 2).
	if got := Sign([]byte("Jefe"), []byte("what do ya want for nothing?")); got != "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" {
		t.Errorf("Sign = %s", got)
	}
	if sha256.Size != 32 {
		t.Fatal("sha256")
	}
}

func TestParsePayload(t *testing.T) {
	tests := []struct {
		body    string
		want    map[string]string
		wantErr bool
	}{
		{body: ``, want: map[string]string{}},
		{body: ` {} `, want: map[string]string{}},
		{body: `{"a":"x","b":1.50,"c":false,"d":null,"e":[1],"f":{"g":1},"h":-2e3}`, want: map[string]string{"a": "x", "b": "1.50", "c": "false", "h": "-2e3"}},
		{body: `{"a":"\u00e9\n"}`, want: map[string]string{"a": "é\n"}},
		{body: `null`, wantErr: true},
		{body: `"x"`, wantErr: true},
		{body: `{"a":1`, wantErr: true},
		{body: `{"a":"\u0000"}`, wantErr: true},
		{body: `{"\u0000":"a"}`, wantErr: true},
		{body: `{} x`, wantErr: true},
	}
	for _, tt := range tests {
		got, err := parsePayload([]byte(tt.body))
		if (err != nil) != tt.wantErr || (err == nil && fmt.Sprint(got) != fmt.Sprint(tt.want)) {
			t.Errorf("parsePayload(%q) = %v, %v; want %v (error %v)", tt.body, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("parsePayload(%q): error %v is not invalid-argument", tt.body, err)
		}
	}
}
