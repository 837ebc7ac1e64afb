package deploy

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/textproto"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kiln-ml/kiln/serving"
)

// The data plane: which route a request reaches, and the life of the
// models it reaches.
//
// An endpoint's routing table is immutable and swapped atomically, so a
// change of routes never blocks or fails a request: a request keeps the
// route model it picked, and a route model is closed only after its last
// request (reference counted) and a grace period after it left the
// table (covering the moment between a request's pick and its
// admission).

// closedBit marks a closed route model in its reference count.
const closedBit = 1 << 62

// routeModel is one route's loaded model: what the serving stack sees as
// a *serving.Model (Name = endpoint, Version = model version, Route =
// route name). Several route models may share one cache entry.
type routeModel struct {
	sm         *serving.Model
	entry      *cacheEntry
	slot       *slot
	refs       atomic.Int64 // requests in flight, | closedBit once closed
	lastUsed   atomic.Int64 // unix ns of the last answer
	retiredAt  time.Time    // under Manager.retireMu
	release    func()       // Admit's release for endpoints without capacity limits
	limRelease atomic.Pointer[limitedRelease]
}

func (rm *routeModel) acquire() bool {
	if rm.refs.Add(1)&closedBit != 0 {
		rm.refs.Add(-1)
		return false
	}
	return true
}

func (rm *routeModel) done() { rm.refs.Add(-1) }

func (rm *routeModel) inFlight() int64 { return rm.refs.Load() &^ closedBit }

// tryClose marks rm closed if no request holds it.
func (rm *routeModel) tryClose() bool { return rm.refs.CompareAndSwap(0, closedBit) }

// slot is one live route (or the shadow target) of an endpoint: a route
// name bound to one model version. Weight changes keep the slot (and so
// its *serving.Model and statistics); a new version is a new slot.
type slot struct {
	ep      *endpoint
	name    string
	kind    string
	key     cacheKey
	version string
	stats   *routeStats
	metrics *routeMetrics

	cur    atomic.Pointer[routeModel]
	pinned atomic.Bool // in a rollout: never evicted

	mu      sync.Mutex
	dead    bool
	loading chan struct{}
	loadErr error
}

func slotID(name string, key cacheKey) string {
	return name + "\x00" + key.model + "\x00" + strconv.FormatInt(key.version, 10)
}

var errRetired = errors.New("deploy: route retired")

// get returns the slot's route model, loading it if needed (waiting while
// ctx allows).
func (s *slot) get(ctx context.Context) (*routeModel, error) {
	if rm := s.cur.Load(); rm != nil {
		return rm, nil
	}
	s.mu.Lock()
	if rm := s.cur.Load(); rm != nil {
		s.mu.Unlock()
		return rm, nil
	}
	if s.dead {
		s.mu.Unlock()
		return nil, errRetired
	}
	ch := s.loading
	if ch == nil {
		ch = make(chan struct{})
		s.loading = ch
		s.loadErr = nil
		go s.load(ch)
	}
	s.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if rm := s.cur.Load(); rm != nil {
		return rm, nil
	}
	s.mu.Lock()
	err := s.loadErr
	s.mu.Unlock()
	if err == nil {
		err = errRetired
	}
	return nil, err
}

// load loads the slot's model (through the shared cache) and publishes
// its route model.
func (s *slot) load(ch chan struct{}) {
	m := s.ep.m
	e, err := m.cache.acquire(context.Background(), s.key)
	var rm *routeModel
	if err == nil {
		rm = m.newRouteModel(s, e)
	}
	s.mu.Lock()
	switch {
	case err != nil:
		s.loadErr = fmt.Errorf("model %s version %d: %w", s.key.model, s.key.version, err)
	case s.dead:
		m.closeRouteModel(rm)
	default:
		s.cur.Store(rm)
	}
	s.loading = nil
	s.mu.Unlock()
	close(ch)
}

// retire takes the slot out of service: its model closes after its last
// request.
func (s *slot) retire() {
	s.mu.Lock()
	s.dead = true
	rm := s.cur.Swap(nil)
	s.mu.Unlock()
	if rm != nil {
		s.ep.m.retire(rm)
	}
}

// state reports the slot's load state.
func (s *slot) state() (string, string) {
	if s.cur.Load() != nil {
		return RouteReady, ""
	}
	s.mu.Lock()
	loading, err := s.loading != nil, s.loadErr
	s.mu.Unlock()
	switch {
	case loading:
		return RouteLoading, ""
	case err != nil:
		return RouteFailed, err.Error()
	}
	return RouteUnloaded, ""
}

func (m *Manager) newRouteModel(s *slot, e *cacheEntry) *routeModel {
	b := e.loaded.Bundle
	rm := &routeModel{
		sm: &serving.Model{
			Name: s.ep.name, Version: s.version, Route: s.name, Platform: e.platform,
			Source:  s.key.model + "/" + strconv.FormatInt(s.key.version, 10),
			Runtime: e.loaded.Model, Signature: b.Signature, InputExample: b.InputExample,
			Features: s.ep,
		},
		entry: e, slot: s,
	}
	rm.release = rm.done
	rm.lastUsed.Store(time.Now().UnixNano())
	m.cache.attach(e, rm)
	m.rms.Store(rm.sm, rm)
	return rm
}

// retire schedules rm's closing.
func (m *Manager) retire(rm *routeModel) {
	m.retireMu.Lock()
	rm.retiredAt = time.Now()
	m.retired = append(m.retired, rm)
	m.retireMu.Unlock()
}

// reap closes the retired route models whose grace period has passed
// and that no request holds.
func (m *Manager) reap(now time.Time, force bool) {
	m.retireMu.Lock()
	var closing []*routeModel
	keep := m.retired[:0]
	for _, rm := range m.retired {
		if (force || now.Sub(rm.retiredAt) >= m.grace) && rm.tryClose() {
			closing = append(closing, rm)
		} else {
			keep = append(keep, rm)
		}
	}
	for i := len(keep); i < len(m.retired); i++ {
		m.retired[i] = nil
	}
	m.retired = keep
	m.retireMu.Unlock()
	for _, rm := range closing {
		m.closeRouteModel(rm)
	}
}

func (m *Manager) closeRouteModel(rm *routeModel) {
	m.rms.Delete(rm.sm)
	if r := m.releaser.Load(); r != nil {
		(*r).Release(rm.sm)
	}
	m.cache.release(rm.entry, rm)
}

// detach is the cache's eviction callback: rm's slot lets go of it (the
// next request reloads the model).
func (m *Manager) detach(rm *routeModel) {
	if rm.slot.cur.CompareAndSwap(rm, nil) {
		m.retire(rm)
	}
}

// table is an endpoint's immutable routing table.
type table struct {
	routes    []*slot // the live routes, in status order
	weights   []float64
	pick      []*slot  // routes with weight > 0
	cum       []uint64 // cumulative weights, scaled to 2^32
	keyHeader string   // sticky assignment header (canonical form), or ""
	shadow    *slot
	shadowLim uint64 // mirror a request when a uniform 32-bit number is below it
	primary   *slot  // the route with the largest weight
	shadowPct float64
	variants  bool // the routes are an experiment's variants
	logging   Logging
	features  *featureSet // spec.features, or nil
}

func newTable(routes []*slot, weights []float64, keyHeader string, shadow *slot, percent float64) *table {
	t := &table{routes: routes, weights: weights, shadow: shadow}
	if keyHeader != "" {
		t.keyHeader = textproto.CanonicalMIMEHeaderKey(keyHeader)
	}
	total, best := 0.0, -1
	for i, s := range routes {
		if weights[i] > 0 {
			total += weights[i]
			t.pick = append(t.pick, s)
		}
		if best < 0 || weights[i] > weights[best] {
			best = i
		}
	}
	if best >= 0 {
		t.primary = routes[best]
	}
	acc := 0.0
	for i := range routes {
		if weights[i] > 0 {
			acc += weights[i]
			t.cum = append(t.cum, uint64(acc/total*(1<<32)))
		}
	}
	if n := len(t.cum); n > 0 {
		t.cum[n-1] = 1 << 32
	}
	if shadow != nil {
		t.shadowLim = uint64(percent / 100 * (1 << 32))
		t.shadowPct = percent
	}
	return t
}

// choose picks the route of a request: by the sticky key when the
// endpoint runs an experiment and the request carries it (the same key
// always lands in the same weight range), else at random by weight.
func (t *table) choose(ctx context.Context) *slot {
	switch len(t.pick) {
	case 0:
		return nil
	case 1:
		return t.pick[0]
	}
	var u uint64
	if t.keyHeader != "" {
		if k := serving.RequestHeader(ctx, t.keyHeader); k != "" {
			u = uint64(hash32(k))
		} else {
			u = uint64(rand.Uint32())
		}
	} else {
		u = uint64(rand.Uint32())
	}
	for i, c := range t.cum {
		if u < c {
			return t.pick[i]
		}
	}
	return t.pick[len(t.pick)-1]
}

// hash32 is FNV-1a with a 64-bit finalizer (MurmurHash3's fmix64), so
// that keys differing in their last characters spread over the whole
// range; the top 32 bits.
func hash32(s string) uint32 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return uint32(h >> 32)
}

// endpointMap is the immutable name → endpoint map requests read.
type endpointMap map[string]*endpoint

func (m *Manager) endpoint(name string) *endpoint {
	if p := m.eps.Load(); p != nil {
		return (*p)[name]
	}
	return nil
}

// Model implements serving.Repository: it picks the route of a request
// to the endpoint name (weighted, or sticky by the experiment's key
// header), or the live route serving version when one is given.
func (m *Manager) Model(ctx context.Context, name, version string) (*serving.Model, error) {
	ep := m.endpoint(name)
	if ep == nil {
		if v, ok := m.verificationModel(name); ok {
			return v.(*serving.Model), nil
		}
		return nil, fmt.Errorf("%w: no endpoint %q", serving.ErrModelNotFound, name)
	}
	t := ep.table.Load()
	var s *slot
	if version != "" {
		for _, r := range t.routes {
			if r.version == version {
				s = r
				break
			}
		}
		if s == nil {
			return nil, fmt.Errorf("%w: endpoint %q serves no version %q now", serving.ErrModelNotFound, name, version)
		}
	} else if s = t.choose(ctx); s == nil {
		return nil, fmt.Errorf("%w: endpoint %q has no route with traffic", serving.ErrModelNotReady, name)
	}
	if rm := s.cur.Load(); rm != nil {
		return rm.sm, nil
	}
	return m.waitModel(ctx, ep, s, version)
}

// waitModel is Model's slow path: the route's model is not loaded (yet,
// or any more); the request waits up to loadWait for it.
func (m *Manager) waitModel(ctx context.Context, ep *endpoint, s *slot, version string) (*serving.Model, error) {
	wctx, cancel := context.WithTimeout(ctx, m.loadWait)
	defer cancel()
	for try := 0; try < 3; try++ {
		rm, err := s.get(wctx)
		if err == nil {
			return rm.sm, nil
		}
		if errors.Is(err, errRetired) {
			// The table changed since the pick: pick again.
			t := ep.table.Load()
			if version == "" {
				s = t.choose(ctx)
			} else {
				s = nil
				for _, r := range t.routes {
					if r.version == version {
						s = r
					}
				}
			}
			if s == nil {
				break
			}
			continue
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("%w: endpoint %q route %q: model %s version %d is still loading",
				serving.ErrModelNotReady, ep.name, s.name, s.key.model, s.key.version)
		}
		return nil, fmt.Errorf("%w: endpoint %q route %q: %v", serving.ErrModelNotReady, ep.name, s.name, err)
	}
	return nil, fmt.Errorf("%w: endpoint %q is changing; retry", serving.ErrModelNotReady, ep.name)
}

// Models implements serving.Repository: one entry per live route of each
// endpoint. A route whose model was evicted counts as ready: it reloads on
// the next request.
func (m *Manager) Models(ctx context.Context) []serving.ModelInfo {
	p := m.eps.Load()
	if p == nil {
		return nil
	}
	names := make([]string, 0, len(*p))
	for n := range *p {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []serving.ModelInfo
	for _, n := range names {
		t := (*p)[n].table.Load()
		for _, s := range t.routes {
			st, reason := s.state()
			info := serving.ModelInfo{Name: n, Version: s.version, State: "READY", Reason: reason}
			switch st {
			case RouteLoading:
				info.State = "LOADING"
			case RouteFailed:
				info.State = "UNAVAILABLE"
			case RouteUnloaded:
				info.Reason = "unloaded: loads on the next request"
			}
			out = append(out, info)
		}
	}
	return out
}

// Admit implements serving.Admitter: it holds the route model for the
// request (so it is not closed under it) and applies the endpoint's
// capacity limits.
func (m *Manager) Admit(ctx context.Context, sm *serving.Model) (func(), error) {
	v, ok := m.rms.Load(sm)
	if !ok {
		return nopRelease, nil
	}
	rm := v.(*routeModel)
	if !rm.acquire() {
		return nil, fmt.Errorf("%w: endpoint %q route %q was just replaced; retry", serving.ErrModelNotReady, sm.Name, sm.Route)
	}
	lim := rm.slot.ep.limiter.Load()
	if lim == nil {
		return rm.release, nil
	}
	if err := lim.admit(ctx); err != nil {
		rm.done()
		return nil, err
	}
	// The release of this route model with this limiter, made once.
	if lr := rm.limRelease.Load(); lr != nil && lr.lim == lim {
		return lr.fn, nil
	}
	lr := &limitedRelease{lim: lim, fn: func() {
		lim.release()
		rm.done()
	}}
	rm.limRelease.Store(lr)
	return lr.fn, nil
}

// limitedRelease is Admit's release for an endpoint with a limiter.
type limitedRelease struct {
	lim *limiter
	fn  func()
}

func nopRelease() {}

// classify sorts an answer for the statistics: server errors (5xx,
// including a model that failed to predict) are errors; client errors
// (4xx other than 429 and 499) are counted apart, because a new version
// whose signature differs from the old one answers the same requests
// with 400s — the rollout analysis counts the candidate's client-error
// rate above the stable route's as errors.
func classify(c *serving.Call) outcome {
	switch s := c.Status; {
	case s >= 500:
		return outcomeError
	case s >= 400 && s != 429 && s != 499:
		return outcomeClientError
	case s < 400 && c.Err != nil:
		return outcomeError
	}
	return outcomeOK
}

// Observe implements serving.Observer: per-route statistics and shadow
// copies.
func (m *Manager) Observe(ctx context.Context, c *serving.Call) {
	v, ok := m.rms.Load(c.Model)
	if !ok {
		return
	}
	rm := v.(*routeModel)
	end := c.Start.Add(c.Duration)
	rm.lastUsed.Store(end.UnixNano())
	s := rm.slot
	o := classify(c)
	s.stats.record(end, c.Duration, o)
	s.metrics.observe(c.Status, c.Duration.Seconds())
	ep := s.ep
	ep.stats.record(end, c.Duration, o)
	if c.Inputs == nil {
		return
	}
	if t := ep.table.Load(); t.shadow != nil && uint64(rand.Uint32()) < t.shadowLim {
		ep.shadow.offer(t.shadow, c)
	}
}

var (
	_ serving.Repository = (*Manager)(nil)
	_ serving.Admitter   = (*Manager)(nil)
	_ serving.Observer   = (*Manager)(nil)
)
