package alert

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"gopkg.in/yaml.v3"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/kiln-ml/kiln/store"
	"github.com/kiln-ml/kiln/store/storetest"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newEngine(t *testing.T, db *store.DB, opts EngineOptions) *Engine {
	t.Helper()
	opts.DB = db
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.RetryBase == 0 {
		opts.RetryBase = time.Millisecond
	}
	if opts.Poll == 0 {
		opts.Poll = 20 * time.Millisecond
	}
	e := NewEngine(opts)
	t.Cleanup(e.Close)
	return e
}

func sample(metric string, v float64, kv ...string) Sample {
	return Sample{Metric: metric, Labels: l(append([]string{"monitor", "m", "endpoint", "e"}, kv...)...), Value: v}
}

// TestStateMachine drives one rule through a sequence of evaluations, one
// per minute; a nil value is a missing series.
func TestStateMachine(t *testing.T) {
	v := func(f float64) *float64 { return &f }
	tests := []struct {
		name   string
		forDur time.Duration
		values []*float64 // drift_share at t0+i minutes; rule: drift_share > 0.5
		states []string   // state after each evaluation ("" = no alert row)
		trans  []string   // transitions of each evaluation, "from>to"
	}{
		{"for 0 fires at once and resolves", 0,
			[]*float64{v(0.1), v(0.6), v(0.7), v(0.2)},
			[]string{"", "firing", "firing", "resolved"},
			[]string{"", "inactive>firing", "", "firing>resolved"}},
		{"for 2m: pending then firing", 2 * time.Minute,
			[]*float64{v(0.6), v(0.6), v(0.6), v(0.6), v(0.1)},
			[]string{"pending", "pending", "firing", "firing", "resolved"},
			[]string{"inactive>pending", "", "pending>firing", "", "firing>resolved"}},
		{"pending that stops holding becomes inactive", 5 * time.Minute,
			[]*float64{v(0.6), v(0.6), v(0.1), v(0.1)},
			[]string{"pending", "pending", "inactive", "inactive"},
			[]string{"inactive>pending", "", "pending>inactive", ""}},
		{"flapping never fires and restarts the clock", 2 * time.Minute,
			[]*float64{v(0.6), v(0.1), v(0.6), v(0.1), v(0.6), v(0.6), v(0.6)},
			[]string{"pending", "inactive", "pending", "inactive", "pending", "pending", "firing"},
			[]string{"inactive>pending", "pending>inactive", "inactive>pending", "pending>inactive", "inactive>pending", "", "pending>firing"}},
		{"flapping after firing resolves and fires again", 0,
			[]*float64{v(0.6), v(0.1), v(0.6), v(0.1)},
			[]string{"firing", "resolved", "firing", "resolved"},
			[]string{"inactive>firing", "firing>resolved", "resolved>firing", "firing>resolved"}},
		{"missing series resolves at the first evaluation without it", 0,
			[]*float64{v(0.6), nil, nil, v(0.6)},
			[]string{"firing", "resolved", "resolved", "firing"},
			[]string{"inactive>firing", "firing>resolved", "", "resolved>firing"}},
		{"missing pending series becomes inactive", time.Hour,
			[]*float64{v(0.6), nil},
			[]string{"pending", "inactive"},
			[]string{"inactive>pending", "pending>inactive"}},
		{"NaN is no data", 0,
			[]*float64{v(0.6), v(nanValue())},
			[]string{"firing", "resolved"},
			[]string{"inactive>firing", "firing>resolved"}},
	}
	for dbName, open := range storetest.TestDatabases(t) {
		t.Run(dbName, func(t *testing.T) {
			db := open(t)
			e := newEngine(t, db, EngineOptions{})
			ctx := context.Background()
			for ti, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					monitor := fmt.Sprintf("m%d", ti)
					rules := []Rule{{Name: "drift", Expr: "drift_share > 0.5", For: Duration(tt.forDur), Severity: "critical"}}
					for i, val := range tt.values {
						at := t0.Add(time.Duration(i) * time.Minute)
						var samples []Sample
						if val != nil {
							samples = []Sample{sample("drift_share", *val)}
						}
						trs, err := e.Evaluate(ctx, monitor, rules, samples, at)
						if err != nil {
							t.Fatalf("step %d: %v", i, err)
						}
						var got []string
						for _, tr := range trs {
							got = append(got, tr.From+">"+tr.To)
							if !tr.At.Equal(at) || tr.Rule != "drift" || tr.Labels[LabelAlertName] != "drift" || tr.Labels[LabelMonitor] != monitor || tr.Labels[LabelSeverity] != "critical" || tr.Labels["endpoint"] != "e" {
								t.Fatalf("step %d: transition %+v", i, tr)
							}
						}
						if g := strings.Join(got, ","); g != tt.trans[i] {
							t.Fatalf("step %d: transitions %q, want %q", i, g, tt.trans[i])
						}
						// Evaluating the same time again changes nothing.
						again, err := e.Evaluate(ctx, monitor, rules, samples, at)
						if err != nil || len(again) != 0 {
							t.Fatalf("step %d: re-evaluation gave %v, %v", i, again, err)
						}
						st := stateOf(t, db, monitor)
						if st != tt.states[i] {
							t.Fatalf("step %d: state %q, want %q", i, st, tt.states[i])
						}
					}
					// The history has every transition, newest first.
					var want []string
					for i := len(tt.trans) - 1; i >= 0; i-- {
						if tt.trans[i] != "" {
							want = append(want, tt.trans[i])
						}
					}
					evs, err := e.History(ctx, HistoryQuery{Monitor: monitor})
					if err != nil {
						t.Fatal(err)
					}
					var got []string
					for _, ev := range evs {
						got = append(got, ev.From+">"+ev.State)
					}
					if strings.Join(got, ",") != strings.Join(want, ",") {
						t.Fatalf("history %q, want %q", got, want)
					}
				})
			}
		})
	}
}

func nanValue() float64 { var z float64; return z / z }

func stateOf(t *testing.T, db *store.DB, monitor string) string {
	t.Helper()
	var s string
	err := db.R.QueryRow(db.Rebind(`SELECT state FROM alert_states WHERE monitor = ?`), monitor).Scan(&s)
	if err != nil && !strings.Contains(err.Error(), "no rows") {
		t.Fatal(err)
	}
	return s
}

func TestEvaluateSeriesAndQueries(t *testing.T) {
	for dbName, open := range storetest.TestDatabases(t) {
		t.Run(dbName, func(t *testing.T) {
			db := open(t)
			reg := prometheus.NewRegistry()
			e := newEngine(t, db, EngineOptions{Registerer: reg})
			ctx := context.Background()
			rules := []Rule{{
				Name: "feature_drift", Expr: `feature_drift_score{method="psi"} > 0.2`, For: Duration(time.Minute),
				Labels:      map[string]string{"team": "risk"},
				Annotations: map[string]string{"summary": `{{ .Labels.feature }} drifted ({{ printf "%.2f" .Value }}) on {{ .Rule }}`, "broken": `{{ index .Labels 1 }}`},
			}}
			samples := []Sample{
				sample("feature_drift_score", 0.3, "feature", "age", "method", "psi"),
				sample("feature_drift_score", 0.5, "feature", "income", "method", "psi"),
				sample("feature_drift_score", 0.1, "feature", "zip", "method", "psi"),
				sample("feature_drift_score", 0.9, "feature", "zip", "method", "ks"),
			}
			trs, err := e.Evaluate(ctx, "m", rules, samples, t0)
			if err != nil || len(trs) != 2 {
				t.Fatalf("evaluate: %v %v", trs, err)
			}
			act, err := e.Active(ctx, "m")
			if err != nil || len(act) != 2 {
				t.Fatalf("active: %v %v", act, err)
			}
			for _, a := range act {
				if a.State != StatePending || a.Labels["team"] != "risk" || a.Severity != "warning" || !a.ActiveSince.Equal(t0) {
					t.Fatalf("active %+v", a)
				}
				want := a.Labels["feature"] + " drifted (" + formatValue(a.Value)[:3] + "0) on feature_drift"
				if a.Annotations["summary"] != want {
					t.Fatalf("summary %q, want %q", a.Annotations["summary"], want)
				}
				// A template that fails keeps its text; the alert is kept.
				if a.Annotations["broken"] != `{{ index .Labels 1 }}` {
					t.Fatalf("broken annotation %q", a.Annotations["broken"])
				}
			}
			evs, _ := e.History(ctx, HistoryQuery{Monitor: "m"})
			if len(evs) != 2 || evs[0].Detail["render_errors"] == nil {
				t.Fatalf("events %+v", evs)
			}
			// One minute later: both fire; "age" then drops out.
			if trs, err = e.Evaluate(ctx, "m", rules, samples, t0.Add(time.Minute)); err != nil || len(trs) != 2 || trs[0].To != StateFiring {
				t.Fatalf("second evaluation: %v %v", trs, err)
			}
			if n := testutil.ToFloat64(e.m.transitions.WithLabelValues(StateFiring)); n != 2 {
				t.Fatalf("kiln_alert_transitions_total{state=firing} = %v", n)
			}
			if trs, err = e.Evaluate(ctx, "m", rules, samples[1:], t0.Add(2*time.Minute)); err != nil || len(trs) != 1 || trs[0].To != StateResolved || trs[0].Labels["feature"] != "age" {
				t.Fatalf("third evaluation: %v %v", trs, err)
			}
			evs, _ = e.History(ctx, HistoryQuery{Monitor: "m"})
			if evs[0].Detail["reason"] != "missing" {
				t.Fatalf("missing series event: %+v", evs[0])
			}
			const wantGauge = `
# HELP kiln_alerts Alerts by monitor, rule, severity and state (pending, firing): the number of label sets in each state.
# TYPE kiln_alerts gauge
kiln_alerts{monitor="m",rule="feature_drift",severity="warning",state="firing"} 1
kiln_alerts{monitor="m",rule="feature_drift",severity="warning",state="pending"} 0
`
			if err := testutil.GatherAndCompare(reg, strings.NewReader(wantGauge), "kiln_alerts"); err != nil {
				t.Fatal(err)
			}
			// History filters.
			all, _ := e.History(ctx, HistoryQuery{})
			if len(all) != 5 {
				t.Fatalf("history of all: %d events", len(all))
			}
			win, _ := e.History(ctx, HistoryQuery{Monitor: "m", Rule: "feature_drift", From: t0.Add(time.Minute), To: t0.Add(2 * time.Minute)})
			if len(win) != 2 || win[0].State != StateFiring {
				t.Fatalf("history window: %+v", win)
			}
			lim, _ := e.History(ctx, HistoryQuery{Limit: 1})
			if len(lim) != 1 || lim[0].State != StateResolved {
				t.Fatalf("history limit 1: %+v", lim)
			}
			none, _ := e.History(ctx, HistoryQuery{Rule: "other"})
			if len(none) != 0 {
				t.Fatalf("history of another rule: %+v", none)
			}
			// A rule that is removed resolves its alerts.
			trs, err = e.Evaluate(ctx, "m", nil, samples, t0.Add(3*time.Minute))
			if err != nil || len(trs) != 1 || trs[0].To != StateResolved {
				t.Fatalf("rule removed: %v %v", trs, err)
			}
			if act, _ := e.Active(ctx, ""); len(act) != 0 {
				t.Fatalf("still active: %+v", act)
			}
			// Bad input.
			if _, err := e.Evaluate(ctx, "m", []Rule{{Name: "x", Expr: "a >"}}, nil, t0); err == nil {
				t.Fatal("a bad rule was evaluated")
			}
			if _, err := e.Evaluate(ctx, "", nil, nil, t0); err == nil {
				t.Fatal("an empty monitor was evaluated")
			}
		})
	}
}

// TestEvaluateRace: replicas evaluating the same monitor at the same time
// make each transition once.
func TestEvaluateRace(t *testing.T) {
	for dbName, open := range storetest.TestDatabases(t) {
		t.Run(dbName, func(t *testing.T) {
			db := open(t)
			engines := []*Engine{newEngine(t, db, EngineOptions{NoDelivery: true}), newEngine(t, db, EngineOptions{NoDelivery: true}), newEngine(t, db, EngineOptions{NoDelivery: true})}
			rules := []Rule{{Name: "r", Expr: "error_rate > 0.1"}}
			var samples []Sample
			for i := range 20 {
				samples = append(samples, sample("error_rate", 0.5, "route", fmt.Sprint(i)))
			}
			for step := range 3 {
				at := t0.Add(time.Duration(step) * time.Minute)
				if step == 2 {
					samples = nil
				}
				var wg sync.WaitGroup
				var mu sync.Mutex
				total := 0
				for _, e := range engines {
					for range 2 {
						wg.Add(1)
						go func() {
							defer wg.Done()
							trs, err := e.Evaluate(context.Background(), "m", rules, samples, at)
							if err != nil {
								t.Error(err)
							}
							mu.Lock()
							total += len(trs)
							mu.Unlock()
						}()
					}
				}
				wg.Wait()
				want := []int{20, 0, 20}[step]
				if total != want {
					t.Fatalf("step %d: %d transitions, want %d", step, total, want)
				}
			}
			evs, _ := engines[0].History(context.Background(), HistoryQuery{Limit: 1000})
			if len(evs) != 40 {
				t.Fatalf("%d events, want 40", len(evs))
			}
		})
	}
}

func TestRuleValidate(t *testing.T) {
	ok := Rule{Name: "drift", Expr: "drift_share > 0.5"}
	tests := []struct {
		name string
		edit func(r *Rule)
		want string
	}{
		{"valid", func(r *Rule) {}, ""},
		{"full", func(r *Rule) {
			r.For, r.Severity, r.Labels, r.Annotations = Duration(time.Minute), "critical", map[string]string{"team": "x"}, map[string]string{"summary": "{{ .Value }}"}
			r.Receivers, r.Trigger = []string{"ops"}, &Trigger{Pipeline: "retrain"}
		}, ""},
		{"no name", func(r *Rule) { r.Name = "" }, "name"},
		{"bad name", func(r *Rule) { r.Name = "a b" }, "name"},
		{"no expr", func(r *Rule) { r.Expr = " " }, "expr is required"},
		{"bad expr", func(r *Rule) { r.Expr = "a > " }, "column 5"},
		{"negative for", func(r *Rule) { r.For = Duration(-time.Second) }, "for must be"},
		{"severity", func(r *Rule) { r.Severity = "page" }, "severity"},
		{"reserved label", func(r *Rule) { r.Labels = map[string]string{"alertname": "x"} }, "set by Kiln"},
		{"bad label", func(r *Rule) { r.Labels = map[string]string{"a-b": "x"} }, "label name"},
		{"bad template", func(r *Rule) { r.Annotations = map[string]string{"s": "{{ .Value"} }, "annotation"},
		{"empty receiver", func(r *Rule) { r.Receivers = []string{""} }, "receivers[0]"},
		{"duplicate receiver", func(r *Rule) { r.Receivers = []string{"a", "a"} }, "twice"},
		{"trigger without pipeline", func(r *Rule) { r.Trigger = &Trigger{} }, "trigger.pipeline"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ok
			tt.edit(&r)
			err := r.Validate()
			if (err == nil) != (tt.want == "") || err != nil && !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
	if err := ValidateRules([]Rule{ok, ok}); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("duplicate rules: %v", err)
	}
}

func TestRuleYAML(t *testing.T) {
	const doc = `
name: drift
expr: drift_share > 0.5
for: 10m
severity: critical
labels: {team: growth}
annotations: {summary: "{{ .Value }}"}
receivers: [oncall]
trigger: {pipeline: retrain, parameters: {reason: drift}}
`
	for name, unmarshal := range map[string]func([]byte, any) error{"yaml.v3": yaml.Unmarshal, "sigs.k8s.io/yaml": func(b []byte, v any) error { return sigsyaml.Unmarshal(b, v) }} {
		var r Rule
		if err := unmarshal([]byte(doc), &r); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if r.For.D() != 10*time.Minute || r.Severity != "critical" || r.Labels["team"] != "growth" || r.Receivers[0] != "oncall" || r.Trigger.Parameters["reason"] != "drift" || r.Validate() != nil {
			t.Fatalf("%s: %+v", name, r)
		}
	}
}

// TestEventsAppendOnly: the database refuses to change or delete an event
// (only its detail may change, where the hook's outcome goes).
func TestEventsAppendOnly(t *testing.T) {
	for dbName, open := range storetest.TestDatabases(t) {
		t.Run(dbName, func(t *testing.T) {
			db := open(t)
			e := newEngine(t, db, EngineOptions{NoDelivery: true})
			trs, err := e.Evaluate(context.Background(), "m", []Rule{{Name: "r", Expr: "error_rate > 0.1"}}, []Sample{sample("error_rate", 1)}, t0)
			if err != nil || len(trs) != 1 {
				t.Fatal(trs, err)
			}
			id := trs[0].EventID
			if _, err := db.W.Exec(db.Rebind(`UPDATE alert_events SET state = 'resolved' WHERE event_id = ?`), id); err == nil {
				t.Fatal("an event's state was changed")
			}
			if _, err := db.W.Exec(db.Rebind(`DELETE FROM alert_events WHERE event_id = ?`), id); err == nil {
				t.Fatal("an event was deleted")
			}
			if _, err := db.W.Exec(db.Rebind(`UPDATE alert_events SET detail = '{"hook":{"ok":true}}' WHERE event_id = ?`), id); err != nil {
				t.Fatalf("detail update refused: %v", err)
			}
		})
	}
}
