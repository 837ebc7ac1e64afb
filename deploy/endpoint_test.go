package deploy

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/metadata"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/serving"
	"github.com/kiln-ml/kiln/store/storetest"
)

// TestStorage runs the stored life of an endpoint on SQLite and
// PostgreSQL: create, idempotent and changing applies, events with who
// and why, append-only events, a second Manager (a restart, another
// replica) adopting the stored endpoints, deletion.
func TestStorage(t *testing.T) {
	for name, open := range storetest.TestDatabases(t) {
		t.Run(name, func(t *testing.T) {
			db := open(t)
			f := newFixture(t, db)
			f.register(t, "clf", "skl_svc_rbf_multi")
			f.register(t, "clf", "skl_svc_rbf_proba")
			m := f.manager(t, ManagerOptions{})
			doc := func(v string, w float64) *Endpoint {
				return parseDoc(t, fmt.Sprintf(`{"metadata":{"name":"e1","labels":{"env":"prod"}},"spec":{"model":"clf",
					"routes":[{"name":"a","version":"1","weight":%g},{"name":"b","version":"%s","weight":10}]}}`, 100-w, v))
			}
			res, err := m.Apply(bg, doc("1", 10), "alice", "create")
			if err != nil || !res.Created || !res.Changed || res.State.Status.Revision != 1 {
				t.Fatalf("create: %+v %v", res, err)
			}
			res, err = m.Apply(bg, doc("1", 10), "alice", "again")
			if err != nil || res.Created || res.Changed || res.State.Status.Revision != 1 {
				t.Fatalf("unchanged apply: %+v %v", res, err)
			}
			res, err = m.Apply(bg, doc("2", 20), "bob", "try v2 on b")
			if err != nil || !res.Changed || res.State.Status.Revision != 2 || res.State.Status.UpdatedBy != "bob" {
				t.Fatalf("update: %+v %v", res, err)
			}
			if r := res.State.Status.Routes; len(r) != 2 || r[1].Version != 2 || r[0].Weight != 80 || r[1].State != RouteReady {
				t.Fatalf("routes %+v", r)
			}
			if p := res.State.Status.Previous; len(p) != 2 || p[1].Version != 1 {
				t.Fatalf("previous routes %+v", p)
			}
			evs, err := m.Events(bg, "e1", 0)
			if err != nil || len(evs) != 2 || evs[0].Action != ActionUpdate || evs[0].Actor != "bob" || evs[0].Reason != "try v2 on b" ||
				evs[1].Action != ActionCreate || evs[0].Time < evs[1].Time || evs[0].ID <= evs[1].ID {
				t.Fatalf("events %+v %v", evs, err)
			}
			if _, err := db.W.ExecContext(bg, `UPDATE endpoint_events SET actor = 'mallory'`); err == nil {
				t.Fatal("an event was rewritten")
			}
			if _, err := db.W.ExecContext(bg, `DELETE FROM endpoint_events`); err == nil {
				t.Fatal("events were deleted")
			}
			// Invalid documents and unknown versions name the field.
			var fe FieldErrors
			if _, err := m.Apply(bg, doc("9", 20), "bob", ""); !errors.As(err, &fe) || fe[0].Path != "spec.routes[1].version" || !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("unknown version: %v", err)
			}

			// A second Manager on the same database serves what is stored.
			m2 := f.manager(t, ManagerOptions{})
			if err := m2.sync(bg, true); err != nil {
				t.Fatal(err)
			}
			s, err := m2.Get(bg, "e1")
			if err != nil || s.Status.Revision != 2 || s.Endpoint.Metadata.Labels["env"] != "prod" {
				t.Fatalf("adopted %+v %v", s, err)
			}
			hs := serve(t, m2, prometheus.NewRegistry())
			tc := loadCase(t, "skl_svc_rbf_multi")
			if code, out, _ := infer(t, http.DefaultClient, hs.URL+"/v2/models/e1/versions/1/infer", tc.body, nil); code != 200 || !equalLabels(labelsOf(out), tc.labels) {
				t.Fatalf("the second manager answers %d %s", code, out.Error)
			}
			// A write from a stale copy loses: m2 changes, m retries on
			// the fresh row.
			if _, err := m2.Apply(bg, doc("2", 50), "carol", ""); err != nil {
				t.Fatal(err)
			}
			res, err = m.Apply(bg, doc("1", 30), "dave", "")
			if err != nil || res.State.Status.Revision != 4 {
				t.Fatalf("apply over another replica's change: %+v %v", res, err)
			}
			if db.Dialect == "postgres" {
				got1, err1 := m.lease(bg, "e1")
				got2, err2 := m2.lease(bg, "e1")
				if err1 != nil || err2 != nil || !got1 || got2 {
					t.Fatalf("leases: first %v %v, second %v %v (want only the first)", got1, err1, got2, err2)
				}
			}
			// Delete: gone from serving and listing, its events stay.
			if err := m.Delete(bg, "e1", "erin", "retired"); err != nil {
				t.Fatal(err)
			}
			if _, err := m.Get(bg, "e1"); !errors.Is(err, errdefs.ErrNotFound) {
				t.Fatalf("get after delete: %v", err)
			}
			if _, err := m.Model(bg, "e1", ""); !errors.Is(err, serving.ErrModelNotFound) {
				t.Fatalf("model after delete: %v", err)
			}
			if err := m.Delete(bg, "e1", "erin", ""); !errors.Is(err, errdefs.ErrNotFound) {
				t.Fatalf("second delete: %v", err)
			}
			evs, _ = m.Events(bg, "e1", 0)
			if evs[0].Action != ActionDelete || evs[0].Actor != "erin" {
				t.Fatalf("events after delete %+v", evs[0])
			}
			if err := m2.sync(bg, false); err != nil {
				t.Fatal(err)
			}
			if l, _ := m2.List(bg); len(l) != 0 {
				t.Fatalf("the other replica still lists %d endpoints", len(l))
			}
		})
	}
}

func TestBlueGreen(t *testing.T) {
	f := newFixture(t, openSQLite(t))
	v1 := f.register(t, "clf", "skl_svc_rbf_multi")
	v2 := f.register(t, "clf", "skl_svc_rbf_proba")
	m := f.manager(t, ManagerOptions{})
	hs := serve(t, m, prometheus.NewRegistry())
	doc := func(v int64) *Endpoint {
		return parseDoc(t, fmt.Sprintf(`{"metadata":{"name":"bg"},"spec":{"model":"clf","routes":[{"name":"live","version":"%d","weight":100}],
			"rollout":{"strategy":"blue-green","keep_previous":"1h"}}}`, v))
	}
	if _, err := m.Apply(bg, doc(v1), "a", ""); err != nil {
		t.Fatal(err)
	}
	s, err := m.Apply(bg, doc(v2), "a", "switch")
	if err != nil {
		t.Fatal(err)
	}
	st := s.State.Status
	if st.Rollout.Phase != PhaseSucceeded || st.Routes[0].Version != v2 || st.Routes[0].Weight != 100 ||
		st.Routes[1].Version != v1 || st.Routes[1].State != RouteReady {
		t.Fatalf("after the switch: %+v %+v", st.Rollout, st.Routes)
	}
	tc := loadCase(t, "skl_svc_rbf_proba")
	if code, out, _ := infer(t, http.DefaultClient, hs.URL+"/v2/models/bg/infer", tc.body, nil); code != 200 || out.ModelVersion != "2" || !equalLabels(labelsOf(out), tc.labels) {
		t.Fatalf("after the switch: %d %s", code, out.ModelVersion)
	}
	if s, err := m.Rollback(bg, "bg", "a", ""); err != nil || s.Status.Routes[0].Version != v1 {
		t.Fatalf("rollback: %v %+v", err, s)
	}
	if code, out, _ := infer(t, http.DefaultClient, hs.URL+"/v2/models/bg/infer", tc.body, nil); code != 200 || out.ModelVersion != "1" {
		t.Fatalf("after the rollback: %d %s", code, out.ModelVersion)
	}
	if _, err := m.Rollback(bg, "bg", "a", ""); !errors.Is(err, errdefs.ErrInvalidState) {
		t.Fatalf("second rollback: %v", err)
	}
	if s, err := m.Promote(bg, "bg", "a", ""); err != nil || s.Status.Routes[0].Version != v2 {
		t.Fatalf("promote: %v %+v", err, s)
	}
	// After keep_previous, the controller releases the previous version.
	m.mu.Lock()
	ep := m.known["bg"]
	m.mu.Unlock()
	ep.mu.Lock()
	ep.status.Rollout.FinishedAt -= 2 * 3600 * 1000
	ep.mu.Unlock()
	m.tickOnce(bg)
	if s, _ := m.Get(bg, "bg"); len(s.Status.Routes) != 1 || s.Status.Routes[0].Version != v2 {
		t.Fatalf("after keep_previous: %+v", s.Status.Routes)
	}
	if acts := actions(t, m, "bg"); acts[len(acts)-1] != ActionPreviousRelease {
		t.Fatalf("events %v", acts)
	}
}

// A blue-green candidate must answer its input example (through the
// serving stack's /invocations) before it gets traffic.
func TestBlueGreenVerifies(t *testing.T) {
	f := newFixture(t, openSQLite(t))
	example := `{"inputs": [[5.1, 3.5, 1.4, 0.2]]}`
	f.registerWithExample(t, "clf", "skl_svc_rbf_multi", example)
	f.registerWithExample(t, "clf", "skl_svc_rbf_proba", example)
	f.registerWithExample(t, "clf", "skl_logreg_binary_nozipmap", example) // takes 5 features
	m := f.manager(t, ManagerOptions{})
	serve(t, m, prometheus.NewRegistry())
	doc := func(v int) *Endpoint {
		return parseDoc(t, fmt.Sprintf(`{"metadata":{"name":"bg"},"spec":{"model":"clf","routes":[{"name":"live","version":"%d","weight":100}],
			"rollout":{"strategy":"blue-green"}}}`, v))
	}
	if _, err := m.Apply(bg, doc(1), "a", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Apply(bg, doc(2), "a", ""); err != nil {
		t.Fatalf("a candidate that answers its example: %v", err)
	}
	_, err := m.Apply(bg, doc(3), "a", "")
	var fe FieldErrors
	if !errors.As(err, &fe) || !containsStr(err.Error(), "does not answer") {
		t.Fatalf("a candidate that fails its example: %v", err)
	}
	if s, _ := m.Get(bg, "bg"); s.Status.Routes[0].Version != 2 {
		t.Fatalf("after the failed verification the endpoint serves %+v", s.Status.Routes)
	}
}

func TestWeightsAndStickyVariants(t *testing.T) {
	f := newFixture(t, openSQLite(t))
	f.register(t, "clf", "skl_svc_rbf_multi")
	f.register(t, "clf", "skl_svc_rbf_proba")
	m := f.manager(t, ManagerOptions{})
	if _, err := m.Apply(bg, parseDoc(t, `{"metadata":{"name":"ab"},"spec":{"model":"clf",
		"routes":[{"name":"control","version":"1","weight":90},{"name":"treatment","version":"2","weight":10}],
		"experiment":{"key_header":"X-User"}}}`), "a", ""); err != nil {
		t.Fatal(err)
	}
	// Without the key header: random by weight.
	counts := map[string]int{}
	const n = 20000
	for i := 0; i < n; i++ {
		sm, err := m.Model(bg, "ab", "")
		if err != nil {
			t.Fatal(err)
		}
		counts[sm.Route]++
	}
	if c := counts["treatment"]; c < n/10-600 || c > n/10+600 { // ~8.5 standard deviations
		t.Fatalf("treatment got %d of %d requests, want about 10%%", c, n)
	}
	// With it: the same user always gets the same variant; users spread.
	variant := func(user string) string {
		ctx := metadata.NewIncomingContext(bg, metadata.Pairs("x-user", user))
		sm, err := m.Model(ctx, "ab", "")
		if err != nil {
			t.Fatal(err)
		}
		return sm.Route
	}
	seen := map[string]int{}
	for u := 0; u < 2000; u++ {
		user := fmt.Sprintf("user-%d", u)
		v := variant(user)
		for i := 0; i < 3; i++ {
			if again := variant(user); again != v {
				t.Fatalf("%s got %s then %s", user, v, again)
			}
		}
		seen[v]++
	}
	if seen["treatment"] < 100 || seen["treatment"] > 320 {
		t.Fatalf("sticky assignment %v, want about 10%% treatment", seen)
	}
	stats, err := m.Stats("ab")
	if err != nil || len(stats) != 3 || stats[1].Kind != StatsVariant || stats[1].Weight != 90 {
		t.Fatalf("stats %+v %v", stats, err)
	}
}

func TestShadow(t *testing.T) {
	tests := []struct {
		name      string
		shadow    string // fixture of the shadow version
		agreement func(float64) bool
	}{
		{"same model", "skl_svc_rbf_multi", func(a float64) bool { return a == 1 }},
		{"other model", "skl_svc_rbf_proba", func(a float64) bool { return a >= 0 && a <= 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, openSQLite(t))
			f.register(t, "clf", "skl_svc_rbf_multi")
			f.register(t, "clf", tt.shadow)
			reg := prometheus.NewRegistry()
			m := f.manager(t, ManagerOptions{Registerer: reg})
			hs := serve(t, m, prometheus.NewRegistry())
			if _, err := m.Apply(bg, parseDoc(t, `{"metadata":{"name":"sh"},"spec":{"model":"clf",
				"routes":[{"name":"main","version":"1","weight":100}],"shadow":{"version":"2","percent":100}}}`), "a", ""); err != nil {
				t.Fatal(err)
			}
			tc := loadCase(t, "skl_svc_rbf_multi")
			for i := 0; i < 20; i++ {
				code, out, _ := infer(t, http.DefaultClient, hs.URL+"/v2/models/sh/infer", tc.body, nil)
				if code != 200 || out.ModelVersion != "1" || !equalLabels(labelsOf(out), tc.labels) {
					t.Fatalf("the primary answered %d %s %s", code, out.ModelVersion, out.Error)
				}
			}
			var sh *ShadowStats
			waitFor(t, "the shadow copies", nil, func() bool {
				st, _ := m.Stats("sh")
				sh = st[len(st)-1].Shadow
				return sh != nil && sh.Mirrored+sh.Dropped == 20
			})
			st, _ := m.Stats("sh")
			last := st[len(st)-1]
			if last.Kind != StatsShadow || last.Total.Requests != sh.Mirrored || sh.Compared != sh.Mirrored || !tt.agreement(sh.Agreement) {
				t.Fatalf("shadow stats %+v %+v", last, sh)
			}
			if got := testutil.ToFloat64(m.metrics.shadowRequests.WithLabelValues("sh", "ok")); got != float64(sh.Mirrored) {
				t.Errorf("kiln_endpoint_shadow_requests_total{outcome=ok} = %v, want %d", got, sh.Mirrored)
			}
			if got := testutil.ToFloat64(m.metrics.requests.WithLabelValues("sh", "main", "200")); got != 20 {
				t.Errorf("kiln_endpoint_requests_total = %v, want 20", got)
			}
		})
	}
}

// A full shadow queue drops the copy instead of waiting.
func TestShadowQueueFullDrops(t *testing.T) {
	f := newFixture(t, openSQLite(t))
	m := f.manager(t, ManagerOptions{})
	ep := m.newEndpoint("q")
	sh := ep.shadow
	sh.once.Do(func() {}) // no workers: nothing drains the queue
	s := ep.slotFor("shadow", StatsShadow, cacheKey{"clf", 1})
	c := &serving.Call{Inputs: nil}
	for i := 0; i < shadowQueueSize+5; i++ {
		sh.offer(s, c)
	}
	if got := sh.dropped.Load(); got != 5 {
		t.Fatalf("dropped %d, want 5", got)
	}
}
