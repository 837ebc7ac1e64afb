package deploy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kiln-ml/kiln/serving"
)

// TestOverload: with every worker busy, requests queue for queue_timeout
// and are then shed with 429 and Retry-After, never a 5xx, while the
// server stays responsive; once workers free up, requests succeed.
func TestOverload(t *testing.T) {
	f := newFixture(t, openSQLite(t))
	f.register(t, "clf", "skl_svc_rbf_multi")
	m := f.manager(t, ManagerOptions{})
	hs := serve(t, m, prometheus.NewRegistry())
	if _, err := m.Apply(bg, parseDoc(t, `{"metadata":{"name":"cap"},"spec":{"model":"clf","routes":[{"name":"main","version":"1","weight":100}],
		"capacity":{"max_concurrency":2,"queue_size":2,"queue_timeout":"20ms"}}}`), "a", ""); err != nil {
		t.Fatal(err)
	}
	sm, err := m.Model(bg, "cap", "")
	if err != nil {
		t.Fatal(err)
	}
	// Two requests hold both workers.
	var holds []func()
	for i := 0; i < 2; i++ {
		release, err := m.Admit(bg, sm)
		if err != nil {
			t.Fatal(err)
		}
		holds = append(holds, release)
	}
	tc := loadCase(t, "skl_svc_rbf_multi")
	codes := map[int]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 5; i++ {
				code, out, hdr := infer(t, http.DefaultClient, hs.URL+"/v2/models/cap/infer", tc.body, nil)
				mu.Lock()
				codes[code]++
				mu.Unlock()
				if code == 429 && hdr.Get("Retry-After") == "" {
					t.Errorf("429 without Retry-After: %s", out.Error)
				}
			}
		}()
	}
	// The server answers other requests meanwhile.
	resp, err := http.Get(hs.URL + "/v2/health/live")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("liveness while overloaded: %v %v", resp, err)
	}
	resp.Body.Close()
	wg.Wait()
	if codes[429] != 40 {
		t.Fatalf("answers while every worker was busy: %v, want 40 429s", codes)
	}
	for _, release := range holds {
		release()
	}
	if code, _, _ := infer(t, http.DefaultClient, hs.URL+"/v2/models/cap/infer", tc.body, nil); code != 200 {
		t.Fatalf("after the workers freed up: %d", code)
	}
	// Under a real load past capacity, answers are 200 or 429, never 5xx.
	codes = map[int]int{}
	for c := 0; c < 12; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				code, _, _ := infer(t, http.DefaultClient, hs.URL+"/v2/models/cap/infer", tc.body, nil)
				mu.Lock()
				codes[code]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if codes[200]+codes[429] != 240 || codes[200] == 0 {
		t.Fatalf("answers under load: %v", codes)
	}
	st, _ := m.Stats("cap")
	if c := st[0].Capacity; c == nil || c.Shed < 40 || c.InFlight != 0 || c.Workers != 2 {
		t.Fatalf("capacity stats %+v", c)
	}
	if got := testutil.ToFloat64(m.metrics.shed.WithLabelValues("cap")); got < 40 {
		t.Errorf("kiln_endpoint_shed_total = %v", got)
	}
}

// The worker pool grows by one per busy tick and shrinks by one after
// scaleDownTicks idle ticks, within its bounds.
func TestWorkerPoolScaling(t *testing.T) {
	met, _ := newMetrics(nil)
	l := newLimiter("s", met, &Capacity{MinWorkers: 1, MaxWorkers: 3, QueueSize: 4, QueueTimeout: Duration(time.Minute)})
	if err := l.admit(bg); err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 2)
	for i := 0; i < 2; i++ {
		go func() { got <- l.admit(bg) }()
	}
	waitFor(t, "two queued requests", nil, func() bool { return l.stats().Queued == 2 })
	l.tick() // busy: 1 → 2 workers, one queued request admitted
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if s := l.stats(); s.Workers != 2 || s.Queued != 1 || s.InFlight != 2 {
		t.Fatalf("after one busy tick: %+v", s)
	}
	l.tick() // still busy: 3
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	l.tick() // at max_workers
	if s := l.stats(); s.Workers != 3 || s.ScaleUps != 2 {
		t.Fatalf("at the top: %+v", s)
	}
	for i := 0; i < 3; i++ {
		l.release()
	}
	for i := 0; i < 3*scaleDownTicks; i++ {
		l.tick()
	}
	if s := l.stats(); s.Workers != 1 || s.ScaleDowns != 2 {
		t.Fatalf("after idle ticks: %+v", s)
	}
	// Shedding: a full queue refuses at once with a RetryAfter error.
	l.configure(&Capacity{MaxWorkers: 1, QueueSize: 1, QueueTimeout: Duration(time.Minute)})
	if err := l.admit(bg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(bg)
	go l.admit(ctx)
	waitFor(t, "a queued request", nil, func() bool { return l.stats().Queued == 1 })
	err := l.admit(bg)
	var ra interface{ RetryAfter() time.Duration }
	if !errors.Is(err, serving.ErrOverloaded) || !errors.As(err, &ra) || ra.RetryAfter() <= 0 {
		t.Fatalf("over a full queue: %v", err)
	}
	cancel()
}

// TestEvictionLRU: with room for two models, endpoints over three models
// evict the least recently used one, and a request to an evicted model
// reloads it and answers correctly.
func TestEvictionLRU(t *testing.T) {
	f := newFixture(t, openSQLite(t))
	fixtures := []string{"skl_svc_rbf_multi", "skl_svc_rbf_proba", "skl_svc_linear_binary"}
	for i, fx := range fixtures {
		f.register(t, fmt.Sprintf("m%d", i), fx)
	}
	m := f.manager(t, ManagerOptions{MemoryBudget: 2*minModelSize + minModelSize/2})
	hs := serve(t, m, prometheus.NewRegistry())
	apply := func(i int) {
		t.Helper()
		if _, err := m.Apply(bg, parseDoc(t, fmt.Sprintf(`{"metadata":{"name":"e%d"},"spec":{"routes":[{"model":"m%d","version":"1","weight":1}]}}`, i, i)), "a", ""); err != nil {
			t.Fatal(err)
		}
	}
	ask := func(i int) {
		t.Helper()
		tc := loadCase(t, fixtures[i])
		code, out, _ := infer(t, http.DefaultClient, fmt.Sprintf("%s/v2/models/e%d/infer", hs.URL, i), tc.body, nil)
		if code != 200 || !equalLabels(labelsOf(out), tc.labels) {
			t.Fatalf("e%d: %d %s %v", i, code, out.Error, labelsOf(out))
		}
	}
	state := func(i int) string {
		s, err := m.Get(bg, fmt.Sprintf("e%d", i))
		if err != nil {
			t.Fatal(err)
		}
		return s.Status.Routes[0].State
	}
	apply(0)
	apply(1)
	ask(0) // e0 is now more recent than e1
	apply(2)
	if s0, s1, s2 := state(0), state(1), state(2); s0 != RouteReady || s1 != RouteUnloaded || s2 != RouteReady {
		t.Fatalf("after loading a third model: %s %s %s, want e1 evicted", s0, s1, s2)
	}
	ask(1) // reloads m1, evicting m0 (used before m2 was loaded)
	if s0, s1, s2 := state(0), state(1), state(2); s0 != RouteUnloaded || s1 != RouteReady || s2 != RouteReady {
		t.Fatalf("after the reload: %s %s %s, want e0 evicted", s0, s1, s2)
	}
	for round := 0; round < 3; round++ {
		for i := range fixtures {
			ask(i)
		}
	}
	if n := testutil.ToFloat64(m.metrics.cacheEvictions); n < 5 {
		t.Errorf("%v evictions", n)
	}
	if n := testutil.ToFloat64(m.metrics.cacheLoads.WithLabelValues("ok")); n < 6 {
		t.Errorf("%v loads", n)
	}
}
