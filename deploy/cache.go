package deploy

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/kiln-ml/kiln/model"
)

// DefaultMemoryBudget is the model cache's budget when none is set.
const DefaultMemoryBudget = 2 << 30

// Memory estimate of a loaded model: its files on disk times
// memoryFactor (parsed tree ensembles and ONNX graphs take a small
// multiple of their serialized size), plus pythonOverhead for a model
// served by a Python worker process.
const (
	memoryFactor   = 3
	pythonOverhead = 128 << 20
	minModelSize   = 64 << 10
)

// loadRetryAfter is how long a failed load is remembered before a request
// tries again.
const loadRetryAfter = 10 * time.Second

// cacheKey names one registered model version.
type cacheKey struct {
	model   string
	version int64
}

func (k cacheKey) String() string { return fmt.Sprintf("%s/%d", k.model, k.version) }

// cacheEntry is one loaded (or loading) model version, shared by every
// route of every endpoint that serves it.
type cacheEntry struct {
	key      cacheKey
	done     chan struct{} // closed when the load ended
	err      error         // why the load failed
	loaded   *model.Loaded
	platform string
	size     int64
	loadedAt time.Time
	took     time.Duration

	// Under modelCache.mu:
	reserved   int // acquisitions not yet attached to a route model
	users      map[*routeModel]struct{}
	releasedAt time.Time // when the last user let go
	failedAt   time.Time
	evicting   bool // out of the map; closes when its last user lets go
	closed     bool
}

func (e *cacheEntry) ready() bool {
	select {
	case <-e.done:
		return e.err == nil
	default:
		return false
	}
}

// modelCache holds the loaded models within a memory budget, evicting
// the least recently used ones that are unreferenced, or referenced but
// idle (no request in flight, not in a rollout), when over it.
type modelCache struct {
	log     *slog.Logger
	metrics *metrics
	budget  int64
	open    func(ctx context.Context, key cacheKey) (*model.Loaded, error)
	// detach makes a route model of an evicted entry let go of it (the
	// Manager retires it; it closes after its last request).
	detach func(rm *routeModel)

	mu      sync.Mutex
	entries map[cacheKey]*cacheEntry
	live    int64 // bytes of the loaded entries in entries
	closing int64 // bytes of evicted entries still in use
}

func newModelCache(log *slog.Logger, m *metrics, budget int64) *modelCache {
	if budget <= 0 {
		budget = DefaultMemoryBudget
	}
	m.cacheBudget.Set(float64(budget))
	return &modelCache{log: log, metrics: m, budget: budget, entries: map[cacheKey]*cacheEntry{}}
}

// acquire returns the loaded entry of key, loading it first if needed,
// with a reservation that attach or unreserve must end.
func (c *modelCache) acquire(ctx context.Context, key cacheKey) (*cacheEntry, error) {
	c.mu.Lock()
	e := c.entries[key]
	if e != nil && e.err != nil && time.Since(e.failedAt) > loadRetryAfter {
		delete(c.entries, key) // try again
		e = nil
	}
	if e == nil {
		e = &cacheEntry{key: key, done: make(chan struct{}), users: map[*routeModel]struct{}{}}
		c.entries[key] = e
		go c.load(e)
	}
	e.reserved++
	c.mu.Unlock()
	select {
	case <-e.done:
	case <-ctx.Done():
		c.unreserve(e)
		return nil, ctx.Err()
	}
	if e.err != nil {
		c.unreserve(e)
		return nil, e.err
	}
	return e, nil
}

// peek returns the entry of key if it is loaded, with a reservation.
func (c *modelCache) peek(key cacheKey) *cacheEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[key]
	if e == nil || !e.ready() {
		return nil
	}
	e.reserved++
	return e
}

func (c *modelCache) unreserve(e *cacheEntry) {
	c.mu.Lock()
	e.reserved--
	c.mu.Unlock()
}

// attach turns a reservation into a user.
func (c *modelCache) attach(e *cacheEntry, rm *routeModel) {
	c.mu.Lock()
	e.reserved--
	e.users[rm] = struct{}{}
	c.mu.Unlock()
}

// release ends a user of e; an evicted entry closes with its last user.
func (c *modelCache) release(e *cacheEntry, rm *routeModel) {
	c.mu.Lock()
	delete(e.users, rm)
	var closeIt bool
	if len(e.users) == 0 && e.reserved == 0 {
		e.releasedAt = time.Now()
		if e.evicting && !e.closed {
			e.closed = true
			c.closing -= e.size
			closeIt = true
		}
	}
	c.updateGauges()
	c.mu.Unlock()
	if closeIt {
		c.closeEntry(e)
	}
}

func (c *modelCache) load(e *cacheEntry) {
	start := time.Now()
	l, err := c.open(context.Background(), e.key)
	took := time.Since(start)
	c.mu.Lock()
	if err != nil {
		e.err = err
		e.failedAt = time.Now()
		c.metrics.cacheLoads.WithLabelValues("error").Inc()
		c.log.Warn("model load failed", "model", e.key.model, "version", e.key.version, "err", err)
	} else {
		e.loaded = l
		e.platform = platformOf(l.Bundle)
		e.size = estimateSize(l.Bundle)
		e.loadedAt = time.Now()
		e.took = took
		c.live += e.size
		c.metrics.cacheLoads.WithLabelValues("ok").Inc()
		c.metrics.loadDuration.Observe(took.Seconds())
		c.log.Info("model loaded", "model", e.key.model, "version", e.key.version, "backend", l.Bundle.Backend,
			"estimated_bytes", e.size, "took", took.Round(time.Microsecond))
	}
	c.updateGauges()
	c.mu.Unlock()
	if err == nil {
		// Make room before anyone uses the new model, so that the budget
		// holds when the load is seen to finish.
		c.enforce(e)
	}
	close(e.done)
}

func (c *modelCache) closeEntry(e *cacheEntry) {
	if e.loaded == nil {
		return
	}
	if err := e.loaded.Close(); err != nil {
		c.log.Warn("closing a model", "model", e.key.model, "version", e.key.version, "err", err)
	}
	c.log.Info("model unloaded", "model", e.key.model, "version", e.key.version)
}

func (c *modelCache) updateGauges() {
	c.metrics.cacheBytes.Set(float64(c.live + c.closing))
	n := 0
	for _, e := range c.entries {
		if e.loaded != nil {
			n++
		}
	}
	c.metrics.cacheModels.Set(float64(n))
}

// lastUse is when e last served (or was loaded or let go), for LRU.
func (e *cacheEntry) lastUse() int64 {
	t := e.loadedAt.UnixNano()
	if r := e.releasedAt.UnixNano(); r > t && !e.releasedAt.IsZero() {
		t = r
	}
	for rm := range e.users {
		if u := rm.lastUsed.Load(); u > t {
			t = u
		}
	}
	return t
}

// idle reports whether no request is in flight on e and no user is in a
// rollout (whose versions must stay loaded).
func (e *cacheEntry) idle() bool {
	if e.reserved > 0 {
		return false
	}
	for rm := range e.users {
		if rm.inFlight() > 0 || rm.slot.pinned.Load() {
			return false
		}
	}
	return true
}

// enforce evicts least recently used entries while the loaded models are
// over the budget: unreferenced ones first, then referenced idle ones.
// protect is never evicted (the model just loaded for a request).
func (c *modelCache) enforce(protect *cacheEntry) {
	var toClose []*cacheEntry
	var toDetach []*routeModel
	c.mu.Lock()
	for c.live > c.budget {
		var cands []*cacheEntry
		for _, e := range c.entries {
			if e != protect && e.ready() && e.idle() {
				cands = append(cands, e)
			}
		}
		if len(cands) == 0 {
			break
		}
		sort.Slice(cands, func(i, j int) bool {
			ui, uj := len(cands[i].users) == 0, len(cands[j].users) == 0
			if ui != uj {
				return ui
			}
			return cands[i].lastUse() < cands[j].lastUse()
		})
		v := cands[0]
		delete(c.entries, v.key)
		c.live -= v.size
		c.metrics.cacheEvictions.Inc()
		c.log.Info("evicting model (memory budget)", "model", v.key.model, "version", v.key.version,
			"estimated_bytes", v.size, "budget", c.budget, "users", len(v.users))
		if len(v.users) == 0 {
			v.closed = true
			toClose = append(toClose, v)
			continue
		}
		v.evicting = true
		c.closing += v.size
		for rm := range v.users {
			toDetach = append(toDetach, rm)
		}
	}
	c.updateGauges()
	c.mu.Unlock()
	for _, e := range toClose {
		c.closeEntry(e)
	}
	for _, rm := range toDetach {
		c.detach(rm)
	}
}

// state reports the load state of key: loading, ready, failed (with the
// reason) or unloaded.
func (c *modelCache) state(key cacheKey) (string, string) {
	c.mu.Lock()
	e := c.entries[key]
	c.mu.Unlock()
	if e == nil {
		return RouteUnloaded, ""
	}
	select {
	case <-e.done:
		if e.err != nil {
			return RouteFailed, e.err.Error()
		}
		return RouteReady, ""
	default:
		return RouteLoading, ""
	}
}

// closeAll closes every model (the Manager is shutting down).
func (c *modelCache) closeAll() {
	c.mu.Lock()
	var all []*cacheEntry
	for _, e := range c.entries {
		if e.loaded != nil && !e.closed {
			e.closed = true
			all = append(all, e)
		}
	}
	c.entries = map[cacheKey]*cacheEntry{}
	c.live = 0
	c.updateGauges()
	c.mu.Unlock()
	for _, e := range all {
		c.closeEntry(e)
	}
}

// estimateSize estimates the memory a loaded model takes.
func estimateSize(b *model.Bundle) int64 {
	if b == nil || b.Dir == "" {
		return minModelSize
	}
	var files int64
	filepath.WalkDir(b.Dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				files += info.Size()
			}
		}
		return nil
	})
	size := files * memoryFactor
	if b.Backend == model.BackendPython {
		size += pythonOverhead
	}
	if size < minModelSize {
		size = minModelSize
	}
	return size
}

// platformOf is the Open Inference Protocol platform string of a bundle.
func platformOf(b *model.Bundle) string {
	if b == nil {
		return ""
	}
	switch b.Backend {
	case model.BackendONNX, model.BackendORT:
		return "onnx_onnxv1"
	case model.BackendXGBoost:
		if filepath.Ext(b.Source.Path) == ".ubj" {
			return "xgboost_ubj"
		}
		return "xgboost_json"
	case model.BackendLightGBM:
		return "lightgbm_text"
	case model.BackendPython:
		return "mlflow_pyfunc"
	}
	return b.Backend
}

var errClosed = errors.New("deploy: manager closed")
