package deploy

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestNoFailedRequestsUnderChange keeps a constant load (8 clients) on two
// endpoints over REST while the endpoints change in every way: new
// versions at once, weights, a canary started, promoted, rolled back and
// resumed, blue-green switches and rollbacks, and models evicted from
// the cache between requests. Every request must be answered 200.
func TestNoFailedRequestsUnderChange(t *testing.T) {
	f := newFixture(t, openSQLite(t))
	fixtures := []string{"skl_svc_rbf_multi", "skl_svc_rbf_proba", "skl_svc_linear_binary", "skl_svc_sigmoid_binary_proba"}
	for _, fx := range fixtures {
		f.register(t, "clf", fx)
	}
	m := f.manager(t, ManagerOptions{})
	m.grace = 2 * time.Second // the production grace period
	hs := serve(t, m, prometheus.NewRegistry())
	direct := func(v int) *Endpoint {
		return parseDoc(t, fmt.Sprintf(`{"metadata":{"name":"z"},"spec":{"model":"clf","routes":[{"name":"main","version":"%d","weight":100}]}}`, v))
	}
	weighted := func(a, b int, wb float64) *Endpoint {
		return parseDoc(t, fmt.Sprintf(`{"metadata":{"name":"z"},"spec":{"model":"clf","routes":[{"name":"a","version":"%d","weight":%g},{"name":"b","version":"%d","weight":%g}],
			"shadow":{"version":"4","percent":20}}}`, a, 100-wb, b, wb))
	}
	canary := func(v int) *Endpoint {
		return parseDoc(t, fmt.Sprintf(`{"metadata":{"name":"z"},"spec":{"model":"clf","routes":[{"name":"main","version":"%d","weight":100}],
			"rollout":{"strategy":"canary","steps":[{"weight":20,"interval":"1h"},{"weight":60,"interval":"1h"}],"keep_previous":"1h"}}}`, v))
	}
	blueGreen := func(v int) *Endpoint {
		return parseDoc(t, fmt.Sprintf(`{"metadata":{"name":"zb"},"spec":{"model":"clf","routes":[{"name":"live","version":"%d","weight":100}],
			"rollout":{"strategy":"blue-green","keep_previous":"1h"}}}`, v))
	}
	apply := func(e *Endpoint) {
		t.Helper()
		if _, err := m.Apply(bg, e, "test", ""); err != nil {
			t.Fatalf("apply %s: %v", e.Metadata.Name, err)
		}
	}
	apply(direct(1))
	apply(blueGreen(1))

	tc := loadCase(t, "skl_svc_rbf_multi")
	ctx, stop := context.WithCancel(bg)
	var ok, failed atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	for c := 0; c < 8; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			ep := []string{"z", "zb"}[c%2]
			for ctx.Err() == nil {
				code, out, _ := infer(t, client, hs.URL+"/v2/models/"+ep+"/infer", tc.body, nil)
				if code == 200 {
					ok.Add(1)
				} else {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%s: %d %s", ep, code, out.Error))
				}
			}
		}(c)
	}
	pause := func() { time.Sleep(100 * time.Millisecond) }
	op := func(what string, fn func() error) {
		t.Helper()
		pause()
		if err := fn(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	state := func(e *State, err error) error { return err }
	for _, v := range []int{2, 3, 1} {
		apply(direct(v))
		pause()
	}
	apply(weighted(1, 2, 10))
	pause()
	apply(weighted(3, 2, 50))
	pause()
	op("rollback direct", func() error { return state(m.Rollback(bg, "z", "test", "")) })
	apply(canary(1))
	pause()
	apply(canary(2)) // starts the canary
	m.tickOnce(bg)
	op("pause", func() error { return state(m.Pause(bg, "z", "test", "")) })
	op("resume", func() error { return state(m.Resume(bg, "z", "test", "")) })
	op("promote", func() error { return state(m.Promote(bg, "z", "test", "")) })
	op("rollback", func() error { return state(m.Rollback(bg, "z", "test", "")) })
	op("resume (retry)", func() error { return state(m.Resume(bg, "z", "test", "")) })
	op("rollback canary", func() error { return state(m.Rollback(bg, "z", "test", "")) })
	for _, v := range []int{2, 3, 2} {
		apply(blueGreen(v))
		pause()
	}
	op("rollback blue-green", func() error { return state(m.Rollback(bg, "zb", "test", "")) })
	op("promote blue-green", func() error { return state(m.Promote(bg, "zb", "test", "")) })
	// Evict everything the cache may evict, again and again: models in
	// use reload between requests.
	m.cache.mu.Lock()
	m.cache.budget = 1
	m.cache.mu.Unlock()
	for i := 0; i < 20; i++ {
		m.cache.enforce(nil)
		m.reap(time.Now(), false)
		time.Sleep(20 * time.Millisecond)
	}
	pause()
	stop()
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed; first: %v", failed.Load(), failed.Load()+ok.Load(), firstErr.Load())
	}
	if ok.Load() < 100 {
		t.Fatalf("only %d requests ran", ok.Load())
	}
	if n := testutil.ToFloat64(m.metrics.cacheEvictions); n < 1 {
		t.Fatalf("%v evictions, want some", n)
	}
	t.Logf("%d requests answered 200 during the changes", ok.Load())
}
