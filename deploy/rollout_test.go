package deploy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kiln-ml/kiln/errdefs"
)

// canaryDoc is an endpoint following clf@champion through a two-step
// canary.
func canaryDoc(t *testing.T, analysis string) *Endpoint {
	return parseDoc(t, `{"metadata":{"name":"churn"},"spec":{"model":"clf",
		"routes":[{"name":"main","alias":"champion","weight":100}],
		"rollout":{"strategy":"canary","steps":[{"weight":10,"interval":"1ms"},{"weight":50,"interval":"1ms"}],
		"analysis":`+analysis+`, "keep_previous":"1h"}}}`)
}

func actions(t *testing.T, m *Manager, name string) []string {
	t.Helper()
	evs, err := m.Events(bg, name, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(evs) - 1; i >= 0; i-- {
		out = append(out, evs[i].Action)
	}
	return out
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func TestCanaryFollowsAliasAndSucceeds(t *testing.T) {
	f := newFixture(t, openSQLite(t))
	v1 := f.register(t, "clf", "skl_svc_rbf_multi")
	v2 := f.register(t, "clf", "skl_svc_rbf_proba")
	if err := f.reg.SetAlias(bg, "clf", "champion", v1); err != nil {
		t.Fatal(err)
	}
	m := f.manager(t, ManagerOptions{})
	hs := serve(t, m, prometheus.NewRegistry())
	if _, err := m.Apply(bg, canaryDoc(t, `{"max_error_rate":0.05,"min_requests":5}`), "alice", "deploy churn"); err != nil {
		t.Fatal(err)
	}
	tc := loadCase(t, "skl_svc_rbf_multi")
	versions := map[string]int{}
	send := func(n int) {
		for i := 0; i < n; i++ {
			code, out, _ := infer(t, http.DefaultClient, hs.URL+"/v2/models/churn/infer", tc.body, nil)
			if code != 200 {
				t.Fatalf("infer: %d %s", code, out.Error)
			}
			versions[out.ModelVersion]++
		}
	}
	send(3)
	if s, _ := m.Get(bg, "churn"); m.Pending(bg, s) != "" {
		t.Fatalf("pending %q before the alias moved", m.Pending(bg, s))
	}
	if err := f.reg.SetAlias(bg, "clf", "champion", v2); err != nil {
		t.Fatal(err)
	}
	// Until the controller's tick the move is pending, so that a watcher
	// (kiln rollout status --watch) does not take the old state as final.
	s, _ := m.Get(bg, "churn")
	if want, got := fmt.Sprintf("alias clf@champion moved to version %d (route main served %d)", v2, v1), m.Pending(bg, s); got != want || s.Status.Rollout != nil {
		t.Fatalf("before the tick: pending %q (want %q), rollout %+v", got, want, s.Status.Rollout)
	}
	m.tickOnce(bg)
	s, _ = m.Get(bg, "churn")
	if got := m.Pending(bg, s); got != "" {
		t.Errorf("pending %q after the tick", got)
	}
	ro := s.Status.Rollout
	if ro == nil || ro.Phase != PhaseProgressing || ro.Candidate.Version != v2 || ro.Stable.Version != v1 {
		t.Fatalf("after the alias moved: rollout %+v", ro)
	}
	if len(s.Status.Routes) != 2 || s.Status.Routes[1].Name != "canary" || s.Status.Routes[1].Weight != 10 || s.Status.Routes[1].State != RouteReady {
		t.Fatalf("canary routes %+v", s.Status.Routes)
	}
	waitFor(t, "the canary to succeed", func() { send(20); m.tickOnce(bg) }, func() bool {
		s, _ := m.Get(bg, "churn")
		return s.Status.Rollout.Phase == PhaseSucceeded
	})
	s, _ = m.Get(bg, "churn")
	if r := s.Status.Routes; len(r) != 2 || r[0].Version != v2 || r[0].Weight != 100 || r[1].Name != "previous" || r[1].Version != v1 || r[1].Weight != 0 {
		t.Fatalf("after the canary: routes %+v", r)
	}
	if versions["2"] == 0 {
		t.Errorf("the candidate never answered: %v", versions)
	}
	acts := actions(t, m, "churn")
	for _, want := range []string{ActionCreate, ActionAliasMoved, ActionStep, ActionRolloutSucceed} {
		if !contains(acts, want) {
			t.Errorf("events %v lack %s", acts, want)
		}
	}
	// All traffic is on v2 now, which answers its own reference.
	rf := loadCase(t, "skl_svc_rbf_proba")
	code, out, _ := infer(t, http.DefaultClient, hs.URL+"/v2/models/churn/infer", rf.body, nil)
	if code != 200 || out.ModelVersion != "2" || !equalLabels(labelsOf(out), rf.labels) {
		t.Fatalf("after the rollout: %d %s %v", code, out.ModelVersion, out.Error)
	}
	// An instant rollback goes back to v1 (kept loaded as "previous").
	s, err := m.Rollback(bg, "churn", "bob", "bad numbers")
	if err != nil {
		t.Fatal(err)
	}
	if s.Status.Rollout.Phase != PhaseRolledBack || s.Status.Routes[0].Version != v1 || s.Status.Routes[0].State != RouteReady {
		t.Fatalf("after rollback: %+v %+v", s.Status.Rollout, s.Status.Routes)
	}
	// The controller does not roll forward again by itself.
	m.tickOnce(bg)
	if s, _ := m.Get(bg, "churn"); s.Status.Routes[0].Version != v1 {
		t.Fatalf("the controller rolled forward after a manual rollback: %+v", s.Status.Routes)
	}
	evs, _ := m.Events(bg, "churn", 1)
	if evs[0].Action != ActionRollback || evs[0].Actor != "bob" || evs[0].Reason != "bad numbers" {
		t.Errorf("newest event %+v", evs[0])
	}
	// Promote switches forward again.
	if s, err := m.Promote(bg, "churn", "bob", "fixed"); err != nil || s.Status.Routes[0].Version != v2 {
		t.Fatalf("promote: %v %+v", err, s)
	}
}

func TestCanaryRollsBackAutomatically(t *testing.T) {
	tests := []struct {
		name, analysis, candidate, reason string
	}{
		// The candidate takes 6 features: the stable route's requests get
		// 400s from it, counted as errors of the candidate.
		{"signature mismatch", `{"max_error_rate":0.05,"min_requests":5}`, "skl_dtree_clf", "error rate"},
		{"latency", `{"max_p99_latency":"1ns","min_requests":5}`, "skl_svc_rbf_proba", "p99 latency"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, openSQLite(t))
			v1 := f.register(t, "clf", "skl_svc_rbf_multi")
			if err := f.reg.SetAlias(bg, "clf", "champion", v1); err != nil {
				t.Fatal(err)
			}
			m := f.manager(t, ManagerOptions{})
			hs := serve(t, m, prometheus.NewRegistry())
			doc := canaryDoc(t, tt.analysis)
			if _, err := m.Apply(bg, doc, "alice", ""); err != nil {
				t.Fatal(err)
			}
			v2 := f.register(t, "clf", tt.candidate)
			f.reg.SetAlias(bg, "clf", "champion", v2)
			m.tickOnce(bg)
			tc := loadCase(t, "skl_svc_rbf_multi")
			waitFor(t, "the automatic rollback", func() {
				for i := 0; i < 20; i++ {
					infer(t, http.DefaultClient, hs.URL+"/v2/models/churn/infer", tc.body, nil)
				}
				m.tickOnce(bg)
			}, func() bool {
				s, _ := m.Get(bg, "churn")
				return s.Status.Rollout != nil && s.Status.Rollout.Phase != PhaseProgressing
			})
			s, _ := m.Get(bg, "churn")
			ro := s.Status.Rollout
			if ro.Phase != PhaseRolledBack || ro.Analysis == nil || ro.Analysis.Passed || !containsStr(ro.Message, tt.reason) {
				t.Fatalf("rollout %+v analysis %+v", ro, ro.Analysis)
			}
			if r := s.Status.Routes; len(r) != 1 || r[0].Version != v1 || r[0].Weight != 100 {
				t.Fatalf("routes after the rollback %+v", r)
			}
			evs, _ := m.Events(bg, "churn", 1)
			if evs[0].Action != ActionAutoRollback || evs[0].Actor != systemActor || len(evs[0].Detail) == 0 {
				t.Errorf("event %+v", evs[0])
			}
			for i := 0; i < 5; i++ {
				if code, out, _ := infer(t, http.DefaultClient, hs.URL+"/v2/models/churn/infer", tc.body, nil); code != 200 || out.ModelVersion != "1" {
					t.Fatalf("after the rollback: %d %s", code, out.ModelVersion)
				}
			}
		})
	}
}

func containsStr(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && indexStr(s, sub) >= 0)
}

func indexStr(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

// guard refuses some versions.
type guard struct{ refuse map[int64]bool }

func (g guard) AllowRoute(_ context.Context, endpoint, model string, version int64) error {
	if g.refuse[version] {
		return fmt.Errorf("no passing gate result for %s version %d", model, version)
	}
	return nil
}

func TestGuardRefusal(t *testing.T) {
	f := newFixture(t, openSQLite(t))
	f.register(t, "clf", "skl_svc_rbf_multi")
	f.register(t, "clf", "skl_svc_rbf_proba")
	m := f.manager(t, ManagerOptions{Guard: guard{refuse: map[int64]bool{2: true}}})
	doc := func(v string, strategy string) *Endpoint {
		ro := ""
		if strategy != "" {
			ro = `,"rollout":{"strategy":"` + strategy + `"` + map[bool]string{true: `,"steps":[{"weight":10,"interval":"1m"}]`}[strategy == StrategyCanary] + `}`
		}
		return parseDoc(t, `{"metadata":{"name":"e"},"spec":{"model":"clf","routes":[{"name":"main","version":"`+v+`","weight":1}]`+ro+`}}`)
	}
	if _, err := m.Apply(bg, doc("2", ""), "a", ""); !errors.Is(err, ErrRefused) || !errors.Is(err, errdefs.ErrInvalidState) {
		t.Fatalf("creating on a refused version: %v", err)
	}
	if _, err := m.Get(bg, "e"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("a refused endpoint exists: %v", err)
	}
	for _, strategy := range []string{"", StrategyCanary, StrategyBlueGreen} {
		t.Run("strategy="+strategy, func(t *testing.T) {
			if _, err := m.Apply(bg, doc("1", strategy), "a", ""); err != nil {
				t.Fatal(err)
			}
			_, err := m.Apply(bg, doc("2", strategy), "a", "")
			if !errors.Is(err, ErrRefused) {
				t.Fatalf("moving to a refused version: %v", err)
			}
			s, _ := m.Get(bg, "e")
			if len(s.Status.Routes) != 1 || s.Status.Routes[0].Version != 1 || s.Status.Routes[0].Weight == 0 {
				t.Fatalf("after the refusal the routes are %+v", s.Status.Routes)
			}
		})
	}
}

// Removing the rollout strategy during a canary moves the routes to the
// desired version at once instead of leaving them split.
func TestRolloutRemovedDuringCanary(t *testing.T) {
	f := newFixture(t, openSQLite(t))
	f.register(t, "clf", "skl_svc_rbf_multi")
	f.register(t, "clf", "skl_svc_rbf_proba")
	m := f.manager(t, ManagerOptions{})
	doc := func(v int, rollout bool) *Endpoint {
		ro := ""
		if rollout {
			ro = `,"rollout":{"strategy":"canary","steps":[{"weight":10,"interval":"1h"}]}`
		}
		return parseDoc(t, fmt.Sprintf(`{"metadata":{"name":"c"},"spec":{"model":"clf","routes":[{"name":"main","version":"%d","weight":100}]%s}}`, v, ro))
	}
	for _, d := range []*Endpoint{doc(1, true), doc(2, true)} {
		if _, err := m.Apply(bg, d, "a", ""); err != nil {
			t.Fatal(err)
		}
	}
	if s, _ := m.Get(bg, "c"); len(s.Status.Routes) != 2 || s.Status.Rollout.Phase != PhaseProgressing {
		t.Fatalf("canary: %+v", s.Status)
	}
	if _, err := m.Pause(bg, "c", "a", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Pause(bg, "c", "a", ""); !errors.Is(err, errdefs.ErrInvalidState) {
		t.Fatalf("second pause: %v", err)
	}
	res, err := m.Apply(bg, doc(2, false), "a", "")
	if err != nil {
		t.Fatal(err)
	}
	if r := res.State.Status.Routes; len(r) != 1 || r[0].Version != 2 || r[0].Weight != 100 {
		t.Fatalf("after removing the strategy: %+v", r)
	}
	if _, err := m.Promote(bg, "c", "a", ""); !errors.Is(err, errdefs.ErrInvalidState) {
		t.Fatalf("promote without a candidate: %v", err)
	}
}
