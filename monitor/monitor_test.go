package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/dataset/profile"
	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/deploy"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/monitor/alert"
	"github.com/kiln-ml/kiln/monitor/drift"
	"github.com/kiln-ml/kiln/monitor/report"
	"github.com/kiln-ml/kiln/store/storetest"
)

func TestParseMonitor(t *testing.T) {
	cases := []struct {
		name, doc string
		path      string // the field error expected; "" = valid
	}{
		{"minimal", `{apiVersion: kiln.dev/v1, kind: Monitor, metadata: {name: m}, spec: {endpoint: churn}}`, ""},
		{"no kind filled", `{metadata: {name: m}, spec: {endpoint: churn}}`, ""},
		{"full", `
apiVersion: kiln.dev/v1
kind: Monitor
metadata: {name: churn-drift}
spec:
  endpoint: churn
  reference: {window: {last: 7d, offset: 1d}}
  window: 1h
  schedule: {every: 5m}
  features: [a, b]
  drift: {method: psi, threshold: 0.2, drift_share: 0.3, predictions: true, per_feature: {a: {method: ks}}}
  outliers: {quantile: 0.01}
  performance: {metrics: [accuracy, roc_auc], slice_by: [region], min_labels: 10}
  alerts:
    - {name: drift, expr: "drift_share >= 0.5", for: 10m}
`, ""},
		{"dataset ref", `{metadata: {name: m}, spec: {endpoint: e, reference: {dataset: "train@3"}}}`, ""},
		{"fixed window", `{metadata: {name: m}, spec: {endpoint: e, reference: {window: {start: "2026-01-01T00:00:00Z", end: "2026-01-02T00:00:00Z"}}}}`, ""},
		{"bad name", `{metadata: {name: Bad_Name}, spec: {endpoint: e}}`, "metadata.name"},
		{"no endpoint", `{metadata: {name: m}, spec: {}}`, "spec.endpoint"},
		{"two references", `{metadata: {name: m}, spec: {endpoint: e, reference: {dataset: x, lineage: true}}}`, "spec.reference"},
		{"empty reference", `{metadata: {name: m}, spec: {endpoint: e, reference: {}}}`, "spec.reference"},
		{"bad dataset", `{metadata: {name: m}, spec: {endpoint: e, reference: {dataset: "x@zero"}}}`, "spec.reference.dataset"},
		{"window end before start", `{metadata: {name: m}, spec: {endpoint: e, reference: {window: {start: "2026-01-02T00:00:00Z", end: "2026-01-01T00:00:00Z"}}}}`, "spec.reference.window.end"},
		{"window both", `{metadata: {name: m}, spec: {endpoint: e, reference: {window: {start: "2026-01-02T00:00:00Z", end: "2026-01-03T00:00:00Z", last: 1d}}}}`, "spec.reference.window"},
		{"schedule too fast", `{metadata: {name: m}, spec: {endpoint: e, schedule: {every: 1s}}}`, "spec.schedule.every"},
		{"negative window", `{metadata: {name: m}, spec: {endpoint: e, window: -1h}}`, "spec.window"},
		{"bad method", `{metadata: {name: m}, spec: {endpoint: e, drift: {method: magic}}}`, "spec.drift.method"},
		{"bad share", `{metadata: {name: m}, spec: {endpoint: e, drift: {drift_share: 2}}}`, "spec.drift.drift_share"},
		{"bad quantile", `{metadata: {name: m}, spec: {endpoint: e, outliers: {quantile: 0.7}}}`, "spec.outliers.quantile"},
		{"bad metric", `{metadata: {name: m}, spec: {endpoint: e, performance: {metrics: [goodness]}}}`, "spec.performance.metrics[0]"},
		{"mixed tasks", `{metadata: {name: m}, spec: {endpoint: e, performance: {metrics: [accuracy, mae]}}}`, "spec.performance.metrics[1]"},
		{"bad rule", `{metadata: {name: m}, spec: {endpoint: e, alerts: [{name: r, expr: "drift_share >>> 1"}]}}`, "spec.alerts[0]"},
		{"duplicate rule", `{metadata: {name: m}, spec: {endpoint: e, alerts: [{name: r, expr: "requests < 1"}, {name: r, expr: "requests < 2"}]}}`, "spec.alerts[1].name"},
		{"duplicate feature", `{metadata: {name: m}, spec: {endpoint: e, features: [a, a]}}`, "spec.features[1]"},
		{"wrong kind", `{kind: Endpoint, metadata: {name: m}, spec: {endpoint: e}}`, "kind"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := ParseMonitor([]byte(c.doc), "")
			if c.path == "" {
				if err != nil {
					t.Fatalf("ParseMonitor: %v", err)
				}
				if m.Kind != KindMonitor || m.APIVersion != APIVersion {
					t.Fatalf("not normalized: %+v", m)
				}
				return
			}
			var fes FieldErrors
			if !errors.As(err, &fes) || !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("want field errors, got %v", err)
			}
			for _, fe := range fes {
				if fe.Path == c.path {
					return
				}
			}
			t.Fatalf("no error at %s: %v", c.path, err)
		})
	}
}

func TestParseMonitorDocumentErrors(t *testing.T) {
	for _, doc := range []string{``, `{metadata: {name: m}, spec: {endpoint: e, unknown: 1}}`, "a: 1\n---\nb: 2\n", "\xff"} {
		if _, err := ParseMonitor([]byte(doc), ""); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%q: want an invalid-argument error, got %v", doc, err)
		}
	}
	if _, err := ParseMonitor([]byte(`{metadata: {name: a}, spec: {endpoint: e}}`), "b"); err == nil {
		t.Error("a name other than the URL's was accepted")
	}
	m, err := ParseMonitor([]byte(`{spec: {endpoint: e}}`), "b")
	if err != nil || m.Metadata.Name != "b" {
		t.Fatalf("the URL's name was not used: %v %+v", err, m)
	}
}

func TestDuration(t *testing.T) {
	for s, want := range map[string]time.Duration{"7d": 7 * 24 * time.Hour, "1d12h": 36 * time.Hour, "90s": 90 * time.Second} {
		got, err := ParseDuration(s)
		if err != nil || got != want {
			t.Errorf("%s: %v %v", s, got, err)
		}
	}
	for _, s := range []string{"", "d", "1x", "1d-1h"} {
		if _, err := ParseDuration(s); err == nil {
			t.Errorf("%q parsed", s)
		}
	}
	if Duration(48*time.Hour).String() != "2d" || Duration(90*time.Minute).String() != "1h30m0s" {
		t.Error("String")
	}
}

func FuzzParseMonitor(f *testing.F) {
	f.Add([]byte(`{metadata: {name: m}, spec: {endpoint: e, reference: {window: {last: 7d}}, alerts: [{name: r, expr: "drift_share > 0.5"}]}}`))
	f.Add([]byte(`{"apiVersion":"kiln.dev/v1","kind":"Monitor","metadata":{"name":"x"},"spec":{"endpoint":"e","window":3600}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMonitor(data, "")
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) && !errors.Is(err, errdefs.ErrTooLarge) {
				t.Fatalf("not a domain error: %v", err)
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("parsed but invalid: %v", err)
		}
	})
}

func TestAlertReceiverDocument(t *testing.T) {
	r, err := ParseAlertReceiver([]byte(`{metadata: {name: oncall}, spec: {type: webhook, url: "http://127.0.0.1:9/x", secret: s3, headers: {Authorization: t}}}`), "")
	if err != nil {
		t.Fatal(err)
	}
	rc := r.Receiver()
	d := ReceiverDocument(rc)
	if d.Spec.Secret != Masked || d.Spec.Headers["Authorization"] != Masked {
		t.Fatalf("secrets shown: %+v", d.Spec)
	}
	back := d.Receiver()
	Unmask(&back, rc)
	if back.Secret != "s3" || back.Headers["Authorization"] != "t" {
		t.Fatalf("unmask: %+v", back)
	}
	if _, err := ParseAlertReceiver([]byte(`{metadata: {name: x}, spec: {type: carrier-pigeon, url: "http://a"}}`), ""); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("bad type accepted: %v", err)
	}
}

func mustMonitor(t testing.TB, doc string) *Monitor {
	t.Helper()
	m, err := ParseMonitor([]byte(doc), "")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestStore(t *testing.T) {
	ctx := context.Background()
	for name, open := range storetest.TestDatabases(t) {
		t.Run(name, func(t *testing.T) {
			s := NewStore(open(t))
			now := time.UnixMilli(1_700_000_000_000)
			m := mustMonitor(t, `{metadata: {name: m1}, spec: {endpoint: e1}}`)
			sm, created, changed, err := s.Put(ctx, m, "ann", now)
			if err != nil || !created || !changed || sm.Generation != 1 || sm.UpdatedBy != "ann" || sm.NextRun != now.UnixMilli() {
				t.Fatalf("create: %+v %v %v %v", sm, created, changed, err)
			}
			if _, created, changed, _ = s.Put(ctx, m, "ann", now); created || changed {
				t.Fatal("the same document changed something")
			}
			m2 := mustMonitor(t, `{metadata: {name: m1}, spec: {endpoint: e1, window: 2h}}`)
			if sm, _, changed, _ = s.Put(ctx, m2, "bob", now); !changed || sm.Generation != 2 || sm.UpdatedBy != "bob" {
				t.Fatalf("change: %+v", sm)
			}
			s.Put(ctx, mustMonitor(t, `{metadata: {name: m0}, spec: {endpoint: e2}}`), "", now)
			all, _ := s.List(ctx, "")
			if len(all) != 2 || all[0].Monitor.Metadata.Name != "m0" {
				t.Fatalf("list: %d", len(all))
			}
			if mine, _ := s.List(ctx, "e1"); len(mine) != 1 {
				t.Fatalf("list by endpoint: %d", len(mine))
			}
			for i := range 3 {
				r := &Result{Monitor: "m1", Endpoint: "e1", Status: StatusOK, Time: now.Add(time.Duration(i) * time.Minute)}
				if err := s.AddResult(ctx, r); err != nil || r.ID == "" {
					t.Fatal(err)
				}
			}
			rs, err := s.Results(ctx, "m1", now.Add(time.Minute), time.Time{}, 0)
			if err != nil || len(rs) != 2 || !rs[0].Time.Before(rs[1].Time) {
				t.Fatalf("results: %v %v", rs, err)
			}
			if rs, _ := s.Results(ctx, "m1", time.Time{}, time.Time{}, 1); len(rs) != 1 || !rs[0].Time.Equal(now.Add(2*time.Minute)) {
				t.Fatalf("limit keeps the newest: %v", rs)
			}
			if l, _ := s.Latest(ctx, "m0"); l != nil {
				t.Fatal("latest of a monitor without results")
			}
			if err := s.Delete(ctx, "m1"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Get(ctx, "m1"); !errors.Is(err, errdefs.ErrNotFound) {
				t.Fatalf("get deleted: %v", err)
			}
			if rs, _ := s.Results(ctx, "m1", time.Time{}, time.Time{}, 0); len(rs) != 0 {
				t.Fatal("results outlived their monitor")
			}
			if err := s.Delete(ctx, "m1"); !errors.Is(err, errdefs.ErrNotFound) {
				t.Fatalf("delete twice: %v", err)
			}
		})
	}
}

// TestLease: two services on one database evaluate a due monitor once.
func TestLease(t *testing.T) {
	ctx := context.Background()
	for name, open := range storetest.TestDatabases(t) {
		t.Run(name, func(t *testing.T) {
			db := open(t)
			now := time.Now()
			var mu sync.Mutex
			calls := 0
			idx := summarizerFunc(func(ctx context.Context, endpoint string, from, to time.Time) (*Window, error) {
				mu.Lock()
				calls++
				mu.Unlock()
				return &Window{}, nil
			})
			mk := func(replica string) *Service {
				s, err := NewService(ServiceOptions{DB: db, Index: idx, Replica: replica, Now: func() time.Time { return now }})
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			a, b := mk("a"), mk("b")
			if _, _, _, err := a.Put(ctx, mustMonitor(t, `{metadata: {name: m}, spec: {endpoint: e, schedule: {every: 1h}}}`), ""); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			ns := make([]int, 2)
			for i, s := range []*Service{a, b} {
				wg.Add(1)
				go func() { defer wg.Done(); ns[i] = s.RunDue(ctx) }()
			}
			wg.Wait()
			if ns[0]+ns[1] != 1 || calls != 1 {
				t.Fatalf("evaluated %v times (summaries %d), want once", ns, calls)
			}
			sm, _ := a.Get(ctx, "m")
			if sm.NextRun != now.Add(time.Hour).UnixMilli() {
				t.Fatalf("next run %d", sm.NextRun)
			}
			if n := b.RunDue(ctx); n != 0 {
				t.Fatal("a monitor that is not due was evaluated")
			}
			rs, _ := a.Results(ctx, "m", time.Time{}, time.Time{}, 0)
			if len(rs) != 1 || rs[0].Status != StatusNoData {
				t.Fatalf("results: %+v", rs)
			}
		})
	}
}

type summarizerFunc func(ctx context.Context, endpoint string, from, to time.Time) (*Window, error)

func (f summarizerFunc) Summarize(ctx context.Context, endpoint string, from, to time.Time) (*Window, error) {
	return f(ctx, endpoint, from, to)
}

// numbers returns n draws of N(mean, 1).
func numbers(seed uint64, n int, mean float64) []float64 {
	r := rand.New(rand.NewPCG(seed, 1))
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = mean + r.NormFloat64()
	}
	return xs
}

func profileOf(t testing.TB, cols map[string][]float64) *profile.Profile {
	t.Helper()
	var s table.Schema
	b := &table.Batch{}
	for _, name := range sortedKeys(cols) {
		s.Fields = append(s.Fields, table.Field{Name: name, Type: table.Float64})
		b.Columns = append(b.Columns, table.Column{Type: table.Float64, Floats: cols[name]})
		b.Len = len(cols[name])
	}
	p := profile.New(s, profile.Options{})
	if err := p.Add(b); err != nil {
		t.Fatal(err)
	}
	p.Refresh()
	return p
}

type fakeDatasets struct {
	versions map[string]*dataset.Version
	uses     []dataset.VersionUse
}

func (f *fakeDatasets) GetVersion(ctx context.Context, ref dataset.VersionRef) (*dataset.Version, error) {
	if v, ok := f.versions[ref.String()]; ok {
		return v, nil
	}
	return nil, errdefs.NotFound("no version %s", ref)
}

func (f *fakeDatasets) VersionsOfModel(ctx context.Context, name string, v int64) ([]dataset.VersionUse, error) {
	return f.uses, nil
}

func (f *fakeDatasets) VersionsOfRun(ctx context.Context, runID string) ([]dataset.RunLink, error) {
	return nil, nil
}

type fakeEndpoints struct{}

func (fakeEndpoints) Get(ctx context.Context, name string) (*deploy.State, error) {
	return &deploy.State{Status: deploy.Status{Routes: []deploy.LiveRoute{{Name: "old", Model: "m", Version: 1, Weight: 10}, {Name: "main", Model: "m", Version: 2, Weight: 90}}}}, nil
}

type fakeAlerts struct {
	AlertEngine
	samples []alert.Sample
	rules   []alert.Rule
}

func (f *fakeAlerts) Evaluate(ctx context.Context, monitor string, rules []alert.Rule, samples []alert.Sample, at time.Time) ([]alert.Transition, error) {
	f.rules, f.samples = rules, samples
	return nil, nil
}

func TestEvaluate(t *testing.T) {
	ctx := context.Background()
	db := storetest.TestDatabases(t)["sqlite"](t)
	ref := profileOf(t, map[string][]float64{"x": numbers(1, 2000, 0), "y": numbers(2, 2000, 0), "label": numbers(3, 2000, 0)})
	refJSON, err := json.Marshal(ref)
	if err != nil {
		t.Fatal(err)
	}
	ds := &fakeDatasets{versions: map[string]*dataset.Version{
		"train@latest": {Dataset: "train", Version: 2, Profile: refJSON},
		"train@2":      {Dataset: "train", Version: 2, Profile: refJSON},
	}, uses: []dataset.VersionUse{{Version: dataset.VersionRef{Dataset: "train", Version: 2}, Via: "link"}}}
	var current *Window
	idx := summarizerFunc(func(ctx context.Context, endpoint string, from, to time.Time) (*Window, error) {
		if current == nil {
			return &Window{}, nil
		}
		return current, nil
	})
	window := func(shift float64) *Window {
		return &Window{Requests: 100, Rows: 1000, Errors: 2,
			Profile:  profileOf(t, map[string][]float64{"inputs.x": numbers(4, 1000, shift), "inputs.y": numbers(5, 1000, shift), "outputs.p": numbers(6, 1000, 0)}),
			Outliers: map[string]int64{"x": 10}, OutlierRows: 10,
			Latency: func(q float64) float64 { return q / 10 }}
	}
	al := &fakeAlerts{}
	reg := prometheus.NewRegistry()
	s, err := NewService(ServiceOptions{DB: db, Index: idx, Datasets: ds, Endpoints: fakeEndpoints{}, Alerts: al, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range []string{
		`{metadata: {name: lin}, spec: {endpoint: e, alerts: [{name: d, expr: "drift_share >= 0.5"}]}}`,
		`{metadata: {name: ds}, spec: {endpoint: e, reference: {dataset: train}, drift: {predictions: true}}}`,
	} {
		if _, _, _, err := s.Put(ctx, mustMonitor(t, doc), ""); err != nil {
			t.Fatal(err)
		}
	}
	if b := s.Bounds("e"); b["x"].Hi != *ref.Columns[1].Max {
		t.Fatalf("bounds of x: %+v", b)
	}

	r, err := s.RunNow(ctx, "lin")
	if err != nil || r.Status != StatusNoData {
		t.Fatalf("no data: %+v %v", r, err)
	}

	current = window(0)
	r, err = s.RunNow(ctx, "lin")
	if err != nil || r.Status != StatusOK || r.Drift == nil || r.Drift.Total != 2 || r.Drift.DatasetDrift {
		t.Fatalf("same distribution: %+v %v", r, err)
	}
	if r.Reference.Kind != "lineage" || r.Reference.Dataset != "train@2" || r.Reference.Model != "m/2" {
		t.Fatalf("lineage reference: %+v", r.Reference)
	}
	if r.Traffic.ErrorRate != 0.02 || r.Traffic.LatencyP99 != 0.099 || r.Outliers.Features["x"].Share != 0.01 {
		t.Fatalf("traffic and outliers: %+v %+v", r.Traffic, r.Outliers)
	}
	if len(al.rules) != 1 || sampleValue(al.samples, "drift_share", nil) != 0 {
		t.Fatalf("samples: %+v", al.samples)
	}

	current = window(3)
	r, err = s.RunNow(ctx, "lin")
	if err != nil || r.Status != StatusDrift || !r.Drift.DatasetDrift || r.Drift.Drifted != 2 {
		t.Fatalf("shifted: %+v %v", r, err)
	}
	if v := sampleValue(al.samples, "feature_drift", map[string]string{"feature": "x"}); v != 1 {
		t.Fatalf("feature_drift{x} = %v", v)
	}
	if v := sampleValue(al.samples, "drift_share", map[string]string{"monitor": "lin", "endpoint": "e"}); v != 1 {
		t.Fatalf("drift_share = %v", v)
	}
	if got := testutil.ToFloat64(s.metrics.driftShare.WithLabelValues("lin", "e")); got != 1 {
		t.Fatalf("gauge %v", got)
	}

	r, err = s.RunNow(ctx, "ds")
	if err != nil || r.PredictionDrift == nil || r.Reference.Predictions != "previous_window" {
		t.Fatalf("prediction drift against the previous window: %+v %v", r, err)
	}
	rs, _ := s.Results(ctx, "lin", time.Time{}, time.Time{}, 0)
	if len(rs) != 3 || rs[2].Status != StatusDrift {
		t.Fatalf("history: %d", len(rs))
	}
	if err := s.Delete(ctx, "lin"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(s.metrics.featureScore, "kiln_monitor_feature_drift_score"); n != 0 {
		// ds has no status drift on inputs... its series stay; lin's must go.
		for _, l := range []string{"x", "y"} {
			if testutil.ToFloat64(s.metrics.featureDetected.WithLabelValues("lin", "e", l)) != 0 {
				t.Fatal("series of a deleted monitor")
			}
		}
	}
}

func sampleValue(ss []alert.Sample, metric string, labels map[string]string) float64 {
	for _, s := range ss {
		if s.Metric != metric {
			continue
		}
		ok := true
		for k, v := range labels {
			ok = ok && s.Labels[k] == v
		}
		if ok {
			return s.Value
		}
	}
	return -1
}

func TestSamplesNoData(t *testing.T) {
	ss := Samples(&Result{Monitor: "m", Endpoint: "e", Status: StatusNoData})
	names := []string{}
	for _, s := range ss {
		names = append(names, s.Metric)
	}
	if strings.Join(names, ",") != "requests,rps" {
		t.Fatalf("no-data samples: %v", names)
	}
}

func TestReportData(t *testing.T) {
	sm := &StoredMonitor{Monitor: mustMonitor(t, `{metadata: {name: m}, spec: {endpoint: e, reference: {dataset: t@1}}}`)}
	now := time.Now()
	rs := []*Result{
		{Monitor: "m", Endpoint: "e", Time: now.Add(-time.Hour), Status: StatusNoData},
		{Monitor: "m", Endpoint: "e", Time: now, Status: StatusDrift, Traffic: Traffic{Requests: 5, Rows: 10},
			Reference: &ReferenceInfo{Kind: "dataset", Dataset: "t@1"},
			Drift:     &drift.Report{Features: []drift.FeatureResult{{Name: "x", Kind: "numerical", Method: "ks", Score: 0.001, Threshold: 0.05, Drift: true}}, Drifted: 1, Total: 1, Share: 1, DriftShare: 0.5, DatasetDrift: true},
			Outliers:  &Outliers{Rows: 2, Share: 0.2, Features: map[string]FeatureOutliers{"x": {Count: 2, Share: 0.2}}}},
	}
	d := ReportData(sm, rs, []alert.State{{Rule: "r", State: alert.StateFiring}}, nil, now)
	if d.Status != "alerting" || d.Dataset == nil || !d.Dataset.Drift || len(d.Features) != 1 || d.Features[0].Kind != "numeric" || d.Features[0].Outliers != 2 || len(d.DriftShare) != 1 || d.Reference != "dataset t@1" {
		t.Fatalf("%+v", d)
	}
	var b strings.Builder
	if err := report.Render(&b, d); err != nil || !strings.Contains(b.String(), "<svg") {
		t.Fatalf("render: %v", err)
	}
}
