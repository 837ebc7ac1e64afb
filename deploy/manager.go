package deploy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/model"
	"github.com/kiln-ml/kiln/registry"
	"github.com/kiln-ml/kiln/serving"
	"github.com/kiln-ml/kiln/store"
)

// ManagerOptions configure a Manager. The zero value is usable.
type ManagerOptions struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// MemoryBudget bounds the estimated memory of loaded models, in
	// bytes; 0 means 2 GiB (DefaultMemoryBudget).
	MemoryBudget int64
	// CacheDir is where the resolver keeps resolved model files on disk
	// (informational: the resolver owns it; reloads after an eviction
	// read from there).
	CacheDir string
	// Guard, if set, must allow a model version before it gets traffic.
	Guard RouteGuard
	// Quality, if set, provides labelled quality metrics for the rollout
	// analysis' quality bound.
	Quality QualitySource
	// Tick is the controller period; 0 means 1s.
	Tick time.Duration
	// LoadWait is how long a request waits for its route's model to load
	// before it is answered 503; 0 means 5s.
	LoadWait time.Duration
	// ModelName, if set, returns the name under which the registry
	// stores the model an endpoint's document names (the model of the
	// endpoint's workspace: access.Owners.EndpointModel); routes, shadows
	// and the model cache use that name. Nil: the name as written.
	ModelName func(ctx context.Context, endpoint, model string) (string, error)
}

// Releaser drops a serving stack's per-model state; *serving.Server
// implements it.
type Releaser interface{ Release(m *serving.Model) }

// Manager stores endpoints, serves them and drives their rollouts. It
// implements serving.Repository, serving.Admitter and serving.Observer;
// build the serving.Server over it and hand the server back with
// SetServer.
type Manager struct {
	db       *store.DB
	reg      *registry.Store
	resolver model.Resolver
	opts     ManagerOptions
	log      *slog.Logger
	metrics  *metrics
	cache    *modelCache
	id       string // this replica, for leases
	tick     time.Duration
	grace    time.Duration // a retired route model's wait before it closes
	loadWait time.Duration

	eps   atomic.Pointer[endpointMap] // the published endpoints requests see
	mu    sync.Mutex                  // guards known and writes of eps
	known map[string]*endpoint        // published and being created

	rms      sync.Map // *serving.Model → *routeModel
	retireMu sync.Mutex
	retired  []*routeModel

	releaser  atomic.Pointer[Releaser]
	features  atomic.Pointer[FeatureLookup]
	verifier  atomic.Pointer[http.Handler]
	verifying sync.Map // verification model name → *serving.Model
	verifySeq atomic.Int64

	closed atomic.Bool
}

// NewManager returns a Manager over the endpoints stored in db, resolving
// model versions through reg and loading them with resolver.
func NewManager(db *store.DB, reg *registry.Store, resolver model.Resolver, opts ManagerOptions) (*Manager, error) {
	if db == nil || reg == nil || resolver == nil {
		return nil, errors.New("deploy: NewManager needs a database, a registry and a resolver")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	met, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, fmt.Errorf("deploy: register metrics: %w", err)
	}
	var id [8]byte
	rand.Read(id[:])
	m := &Manager{
		db: db, reg: reg, resolver: resolver, opts: opts, log: log.With("component", "deploy"), metrics: met,
		id: hex.EncodeToString(id[:]), tick: opts.Tick, grace: 2 * time.Second, loadWait: opts.LoadWait,
		known: map[string]*endpoint{},
	}
	if m.tick <= 0 {
		m.tick = time.Second
	}
	if m.loadWait <= 0 {
		m.loadWait = 5 * time.Second
	}
	m.cache = newModelCache(m.log, met, opts.MemoryBudget)
	m.cache.open = m.openModel
	m.cache.detach = m.detach
	empty := endpointMap{}
	m.eps.Store(&empty)
	return m, nil
}

func (m *Manager) openModel(ctx context.Context, key cacheKey) (*model.Loaded, error) {
	return model.Open(ctx, "models:/"+key.model+"/"+strconv.FormatInt(key.version, 10), model.OpenOptions{Resolver: m.resolver})
}

// SetServer hands the Manager the serving.Server built over it: the
// Manager releases the server's per-model state when it closes a model,
// and verifies blue-green candidates through the server's /invocations
// with their input examples.
func (m *Manager) SetServer(s *serving.Server) {
	var r Releaser = s
	m.releaser.Store(&r)
	var h http.Handler = s.InvocationsHandlerFunc(func(r *http.Request) string {
		name, _ := r.Context().Value(verifyKey{}).(string)
		return name
	})
	m.verifier.Store(&h)
}

// endpoint is one endpoint: its stored document and status (the control
// plane, under mu) and its routing table (the data plane, read without
// locks).
type endpoint struct {
	m    *Manager
	name string

	mu        sync.Mutex
	doc       Endpoint
	status    Status
	slots     map[string]*slot
	published bool
	// rollout analysis (under mu): the candidate's and the stable
	// route's totals when the step started
	snapSlot, snapStableSlot *slot
	snap, snapStable         counts
	analysis                 *AnalysisResult
	lastResolveErr           string

	stats   *routeStats
	table   atomic.Pointer[table]
	limiter atomic.Pointer[limiter]
	shadow  *shadower
}

func (m *Manager) newEndpoint(name string) *endpoint {
	ep := &endpoint{m: m, name: name, slots: map[string]*slot{}, stats: newRouteStats(time.Now())}
	ep.shadow = newShadower(ep, m.metrics)
	ep.table.Store(&table{})
	return ep
}

// Names of the routes the rollout controller adds.
const (
	canaryRoute   = "canary"
	previousRoute = "previous"
)

// helperName returns base, or alt when base is the spec route's name.
func helperName(base, alt, taken string) string {
	if base == taken {
		return alt
	}
	return base
}

func (m *Manager) canaryName(routeName string) string {
	return helperName(canaryRoute, "candidate", routeName)
}

func (m *Manager) previousName(routeName string) string {
	return helperName(previousRoute, "prior", routeName)
}

// desired is a resolved Endpoint document: the routes with model
// versions, and a fingerprint of them.
type desired struct {
	routes []LiveRoute
	shadow *LiveShadow
	fp     string
}

func (d *desired) fingerprint() string {
	var b strings.Builder
	for _, r := range d.routes {
		fmt.Fprintf(&b, "%s=%s/%d*%g;", r.Name, r.Model, r.Version, r.Weight)
	}
	return b.String()
}

// resolve resolves a document's model references: aliases through the
// registry now, and, when check is set, explicit versions are checked to
// exist. Errors name the field.
func (m *Manager) resolve(ctx context.Context, doc *Endpoint, check bool) (*desired, error) {
	var errs FieldErrors
	ref := func(path string, r ModelRef) (string, int64) {
		name := r.Model
		if name == "" {
			name = doc.Spec.Model
		}
		label := name // as the document names it, for errors
		if m.opts.ModelName != nil {
			stored, err := m.opts.ModelName(ctx, doc.Metadata.Name, name)
			if err != nil {
				errs = append(errs, &FieldError{Path: path + ".model", Msg: fmt.Sprintf("model %q: %s", name, errdefs.Message(err))})
				return name, 0
			}
			name = stored
		}
		if r.Alias != "" {
			v, err := m.reg.GetVersionByAlias(ctx, name, r.Alias)
			if err != nil {
				errs = append(errs, &FieldError{Path: path + ".alias", Msg: fmt.Sprintf("model %q alias %q: %s", label, r.Alias, errdefs.Message(err))})
				return name, 0
			}
			return name, v.Version
		}
		n, _ := strconv.ParseInt(r.Version, 10, 64)
		if check {
			if _, err := m.reg.GetModelVersion(ctx, name, n); err != nil {
				errs = append(errs, &FieldError{Path: path + ".version", Msg: errdefs.Message(err)})
			}
		}
		return name, n
	}
	d := &desired{}
	for i, r := range doc.Spec.Routes {
		name, v := ref(fmt.Sprintf("spec.routes[%d]", i), r.ModelRef)
		d.routes = append(d.routes, LiveRoute{Name: r.Name, Model: name, Version: v, Weight: r.Weight})
	}
	if sh := doc.Spec.Shadow; sh != nil {
		name, v := ref("spec.shadow", sh.ModelRef)
		d.shadow = &LiveShadow{Model: name, Version: v, Percent: sh.Percent}
	}
	if len(errs) > 0 {
		// A registry that cannot be read is not the document's fault.
		for _, e := range errs {
			if strings.Contains(e.Msg, "database") {
				return nil, errors.New(errs.Error())
			}
		}
		return nil, errs
	}
	if doc.Spec.Rollout != nil && len(d.routes) == 1 {
		d.routes[0].Weight = 100
	}
	d.fp = d.fingerprint()
	return d, nil
}

// copyDoc returns a deep copy of a document (the Manager keeps its own).
func copyDoc(e *Endpoint) Endpoint {
	var c Endpoint
	b, err := json.Marshal(e)
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil { // cannot happen for a document that was decoded
		c = *e
	}
	return c
}

// canonical returns the JSON of a normalized document, for comparisons.
func canonical(e *Endpoint) string {
	b, _ := json.Marshal(e)
	return string(b)
}

func (st *Status) clone() Status {
	c := *st
	c.Routes = slices.Clone(st.Routes)
	c.Previous = slices.Clone(st.Previous)
	if st.Shadow != nil {
		s := *st.Shadow
		c.Shadow = &s
	}
	if st.Rollout != nil {
		r := *st.Rollout
		r.Analysis = nil
		c.Rollout = &r
	}
	return c
}

func stripStates(rs []LiveRoute) []LiveRoute {
	out := slices.Clone(rs)
	for i := range out {
		out[i].State, out[i].Reason = "", ""
	}
	return out
}

// Apply stores e as the desired state of its endpoint and converges to
// it: the models of routes with traffic are loaded (and allowed by the
// guard) before the routes change, so a new endpoint or version is ready
// when Apply returns; with a rollout strategy, a new version starts the
// rollout. Applying an unchanged document changes nothing. A document
// that cannot be served (unknown model version, a model that fails to
// load, a refusal of the guard) is an error and changes nothing.
func (m *Manager) Apply(ctx context.Context, e *Endpoint, actor, reason string) (*ApplyResult, error) {
	if e == nil {
		return nil, errdefs.Invalid("no endpoint document")
	}
	doc := copyDoc(e)
	doc.Normalize()
	if err := doc.Validate(); err != nil {
		return nil, err
	}
	if m.closed.Load() {
		return nil, errClosed
	}
	name := doc.Metadata.Name
	m.mu.Lock()
	ep := m.known[name]
	if ep == nil {
		ep = m.newEndpoint(name)
		m.known[name] = ep
	}
	m.mu.Unlock()

	ep.mu.Lock()
	defer ep.mu.Unlock()
	if !ep.published {
		// Maybe another replica created it: read the store.
		if r, err := m.loadRow(ctx, name); err == nil {
			m.adopt(ep, r)
		} else if !errors.Is(err, errdefs.ErrNotFound) {
			return nil, err
		}
	}
	d, err := m.resolve(ctx, &doc, true)
	if err == nil {
		err = m.checkFeatures(ctx, &doc)
	}
	if err != nil {
		m.forgetUnpublished(ep)
		return nil, err
	}
	if !ep.published {
		res, err := m.create(ctx, ep, &doc, d, actor, reason)
		if err != nil {
			m.forgetUnpublished(ep)
		}
		return res, err
	}
	for attempt := 0; ; attempt++ {
		res, err := m.update(ctx, ep, &doc, d, actor, reason)
		if errors.Is(err, errConflict) && attempt < 2 {
			if err := m.refresh(ctx, ep); err != nil {
				return nil, err
			}
			continue
		}
		return res, err
	}
}

func (m *Manager) forgetUnpublished(ep *endpoint) {
	if ep.published {
		return
	}
	m.mu.Lock()
	if m.known[ep.name] == ep {
		delete(m.known, ep.name)
	}
	m.mu.Unlock()
	for _, s := range ep.slots {
		s.retire()
	}
	ep.slots = map[string]*slot{}
}

func (m *Manager) create(ctx context.Context, ep *endpoint, doc *Endpoint, d *desired, actor, reason string) (*ApplyResult, error) {
	st := Status{}
	detail, err := m.converge(ctx, ep, doc, &st, d)
	if err != nil {
		return nil, err
	}
	t := now()
	st.Revision, st.CreatedAt, st.UpdatedAt, st.UpdatedBy = 1, t, t, actor
	r := &row{doc: *doc, status: st}
	if err := m.insertRow(ctx, r, []eventRec{{action: ActionCreate, actor: actor, reason: reason, detail: detail}}); err != nil {
		return nil, err
	}
	ep.doc, ep.status = *doc, st
	m.publish(ep)
	return &ApplyResult{Created: true, Changed: true, State: ep.state()}, nil
}

func (m *Manager) update(ctx context.Context, ep *endpoint, doc *Endpoint, d *desired, actor, reason string) (*ApplyResult, error) {
	if canonical(doc) == canonical(&ep.doc) && d.fp == ep.status.Applied && sameShadow(ep.status.Shadow, d.shadow) {
		return &ApplyResult{State: ep.state()}, nil
	}
	st := ep.status.clone()
	old := ep.doc
	ep.doc = *doc // converge reads the new rollout settings
	detail, err := m.converge(ctx, ep, doc, &st, d)
	ep.doc = old
	if err != nil {
		m.publish(ep) // retire slots prepared for nothing
		return nil, err
	}
	prev := st.Revision
	st.Revision++
	st.UpdatedAt, st.UpdatedBy = now(), actor
	if _, routesChanged := detail["routes"]; routesChanged || detail["rollout"] != nil {
		st.Message = ""
	}
	if detail == nil {
		detail = map[string]any{}
	}
	detail["spec_changed"] = canonical(doc) != canonical(&old)
	r := &row{doc: *doc, status: st}
	if err := m.updateRow(ctx, r, prev, []eventRec{{action: ActionUpdate, actor: actor, reason: reason, detail: detail}}); err != nil {
		m.publish(ep)
		return nil, err
	}
	ep.doc, ep.status = *doc, st
	m.publish(ep)
	return &ApplyResult{Changed: true, State: ep.state()}, nil
}

func sameShadow(a, b *LiveShadow) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Model == b.Model && a.Version == b.Version && a.Percent == b.Percent
}

// hasTraffic reports whether some route gets traffic.
func hasTraffic(rs []LiveRoute) bool {
	for _, r := range rs {
		if r.Weight > 0 {
			return true
		}
	}
	return false
}

func inProgress(r *RolloutStatus) bool {
	return r != nil && (r.Phase == PhaseProgressing || r.Phase == PhasePaused)
}

// stableOf is the version an endpoint with a rollout strategy serves
// when no rollout is in progress: the rollout's stable version during
// one, else the route with the most traffic.
func stableOf(st *Status) ModelVersion {
	if inProgress(st.Rollout) {
		return st.Rollout.Stable
	}
	best := -1
	for i, r := range st.Routes {
		if best < 0 || r.Weight > st.Routes[best].Weight {
			best = i
		}
	}
	if best < 0 {
		return ModelVersion{}
	}
	return ModelVersion{Model: st.Routes[best].Model, Version: st.Routes[best].Version}
}

func routeNameOf(doc *Endpoint) string {
	if len(doc.Spec.Routes) == 0 {
		return ""
	}
	return doc.Spec.Routes[0].Name
}

func keyOf(r LiveRoute) cacheKey { return cacheKey{model: r.Model, version: r.Version} }

// converge moves st toward d: the shadow at once; routes at once for an
// endpoint without a rollout strategy (or without traffic yet), else by
// starting a rollout. Models that get traffic are loaded and allowed by
// the guard first. It returns what changed, for the event.
func (m *Manager) converge(ctx context.Context, ep *endpoint, doc *Endpoint, st *Status, d *desired) (map[string]any, error) {
	detail := map[string]any{}
	if !sameShadow(st.Shadow, d.shadow) {
		if d.shadow != nil {
			if _, err := ep.prepare(ctx, "shadow", StatsShadow, cacheKey{d.shadow.Model, d.shadow.Version}, true); err != nil {
				return nil, fieldErr("spec.shadow", "model %s version %d cannot be loaded: %v", d.shadow.Model, d.shadow.Version, err)
			}
		}
		detail["shadow"] = map[string]any{"from": st.Shadow, "to": d.shadow}
		st.Shadow = d.shadow
	}
	ro := doc.Spec.Rollout
	if d.fp == st.Applied && !(ro == nil && inProgress(st.Rollout)) {
		return detail, nil
	}
	if ro == nil || !hasTraffic(st.Routes) {
		if err := m.admitRoutes(ctx, ep, st.Routes, d.routes, "spec.routes"); err != nil {
			return nil, err
		}
		detail["routes"] = map[string]any{"from": stripStates(st.Routes), "to": d.routes}
		if hasTraffic(st.Routes) {
			st.Previous = stripStates(st.Routes)
		}
		st.Routes = slices.Clone(d.routes)
		st.Applied = d.fp
		if ro == nil && inProgress(st.Rollout) {
			st.Rollout.Phase = PhaseSucceeded
			st.Rollout.FinishedAt = now()
			st.Rollout.Message = "the rollout strategy was removed: the routes changed at once"
		}
		return detail, nil
	}
	target := d.routes[0]
	target.Weight = 100
	stable := stableOf(st)
	cand := ModelVersion{Model: target.Model, Version: target.Version}
	if cand == stable {
		if inProgress(st.Rollout) {
			st.Rollout.Phase = PhaseRolledBack
			st.Rollout.Message = "the desired version is the stable version again"
			st.Rollout.FinishedAt = now()
			detail["rollout"] = "aborted"
		}
		st.Routes = keepPrevious([]LiveRoute{target}, st.Routes, m.previousName(target.Name))
		st.Applied = d.fp
		return detail, nil
	}
	if err := m.startRollout(ctx, ep, doc, st, target, stable); err != nil {
		return nil, err
	}
	st.Applied = d.fp
	detail["rollout"] = map[string]any{"strategy": ro.Strategy, "stable": stable, "candidate": cand}
	return detail, nil
}

// keepPrevious keeps the "previous" route of old (a version kept loaded
// for an instant rollback) next to routes.
func keepPrevious(routes, old []LiveRoute, prevName string) []LiveRoute {
	for _, r := range old {
		if r.Name == prevName && r.Weight == 0 && (r.Model != routes[0].Model || r.Version != routes[0].Version) {
			return append(routes, r)
		}
	}
	return routes
}

// startRollout starts moving an endpoint with a rollout strategy from
// stable to target.
func (m *Manager) startRollout(ctx context.Context, ep *endpoint, doc *Endpoint, st *Status, target LiveRoute, stable ModelVersion) error {
	ro := doc.Spec.Rollout
	cand := ModelVersion{Model: target.Model, Version: target.Version}
	t := now()
	switch ro.Strategy {
	case StrategyBlueGreen:
		rm, err := m.readyCandidate(ctx, ep, target.Name, StatsRoute, keyOf(target))
		if err != nil {
			return err
		}
		if err := m.verify(ctx, rm); err != nil {
			return fieldErr("spec.routes[0]", "blue-green: model %s version %d does not answer: %v", cand.Model, cand.Version, err)
		}
		m.keepLoaded(ctx, ep, m.previousName(target.Name), cacheKey{stable.Model, stable.Version})
		st.Routes = []LiveRoute{target, {Name: m.previousName(target.Name), Model: stable.Model, Version: stable.Version, Weight: 0}}
		st.Rollout = &RolloutStatus{Strategy: ro.Strategy, Phase: PhaseSucceeded, Stable: stable, Candidate: cand,
			StartedAt: t, StepStartedAt: t, FinishedAt: t, Message: "switched at once"}
		m.metrics.rollouts.WithLabelValues(ep.name, PhaseSucceeded).Inc()
	default: // canary
		w := ro.Steps[0].Weight
		if _, err := m.readyCandidate(ctx, ep, m.canaryName(target.Name), StatsRoute, keyOf(target)); err != nil {
			return err
		}
		st.Rollout = &RolloutStatus{Strategy: ro.Strategy, Phase: PhaseProgressing, Stable: stable, Candidate: cand,
			StartedAt: t, StepStartedAt: t}
		if st.Paused {
			st.Rollout.Phase = PhasePaused
			st.Rollout.Message = "the endpoint is paused: resume to start the canary"
		}
		if w >= 100 {
			return m.finishCanary(ctx, ep, st, target.Name)
		}
		st.Routes = []LiveRoute{
			{Name: target.Name, Model: stable.Model, Version: stable.Version, Weight: 100 - w},
			{Name: m.canaryName(target.Name), Model: cand.Model, Version: cand.Version, Weight: w},
		}
		ep.analysis = nil
		ep.snapSlot = nil // the controller snapshots at its next tick
	}
	return nil
}

// readyCandidate loads a version for a route and asks the guard before
// it gets traffic.
func (m *Manager) readyCandidate(ctx context.Context, ep *endpoint, route, kind string, key cacheKey) (*routeModel, error) {
	rm, err := ep.prepare(ctx, route, kind, key, true)
	if err != nil {
		return nil, fieldErr("spec.routes[0]", "model %s version %d cannot be loaded: %v", key.model, key.version, err)
	}
	if err := m.allow(ctx, ep.name, key); err != nil {
		return nil, err
	}
	return rm, nil
}

// finishCanary gives the candidate all traffic and keeps the stable
// version loaded as the previous route. The candidate's model is loaded
// under the route's own name first.
func (m *Manager) finishCanary(ctx context.Context, ep *endpoint, st *Status, routeName string) error {
	ro := st.Rollout
	if _, err := ep.prepare(ctx, routeName, StatsRoute, cacheKey{ro.Candidate.Model, ro.Candidate.Version}, true); err != nil {
		return fmt.Errorf("load model %s version %d: %w", ro.Candidate.Model, ro.Candidate.Version, err)
	}
	m.keepLoaded(ctx, ep, m.previousName(routeName), cacheKey{ro.Stable.Model, ro.Stable.Version})
	st.Routes = []LiveRoute{
		{Name: routeName, Model: ro.Candidate.Model, Version: ro.Candidate.Version, Weight: 100},
		{Name: m.previousName(routeName), Model: ro.Stable.Model, Version: ro.Stable.Version, Weight: 0},
	}
	ro.Phase = PhaseSucceeded
	ro.FinishedAt = now()
	m.metrics.rollouts.WithLabelValues(ep.name, PhaseSucceeded).Inc()
	return nil
}

// keepLoaded binds the previous route to a version that is (normally)
// loaded already, so that it holds a reference on it; a failure only
// means the rollback will load it.
func (m *Manager) keepLoaded(ctx context.Context, ep *endpoint, name string, key cacheKey) {
	if key.model == "" {
		return
	}
	if _, err := ep.prepare(ctx, name, StatsRoute, key, true); err != nil {
		m.log.Warn("keeping the previous version loaded", "endpoint", ep.name, "model", key.model, "version", key.version, "err", err)
	}
}

// admitRoutes loads the models of the new routes that get traffic and
// asks the guard about versions that get traffic for the first time.
func (m *Manager) admitRoutes(ctx context.Context, ep *endpoint, old, routes []LiveRoute, path string) error {
	serving := map[cacheKey]bool{}
	for _, r := range old {
		if r.Weight > 0 {
			serving[keyOf(r)] = true
		}
	}
	kind := StatsRoute
	if ep.doc.Spec.Experiment != nil {
		kind = StatsVariant
	}
	for i, r := range routes {
		if r.Weight <= 0 {
			continue
		}
		p := fmt.Sprintf("%s[%d]", path, i)
		if _, err := ep.prepare(ctx, r.Name, kind, keyOf(r), true); err != nil {
			return fieldErr(p, "model %s version %d cannot be loaded: %v", r.Model, r.Version, err)
		}
		if !serving[keyOf(r)] {
			if err := m.allow(ctx, ep.name, keyOf(r)); err != nil {
				return err
			}
		}
	}
	return nil
}

// ErrRefused is wrapped by the error of a change the RouteGuard refused.
var ErrRefused = errors.New("refused by the promotion gate")

func (m *Manager) allow(ctx context.Context, endpoint string, key cacheKey) error {
	if m.opts.Guard == nil {
		return nil
	}
	if err := m.opts.Guard.AllowRoute(ctx, endpoint, key.model, key.version); err != nil {
		return &errdefs.Error{Kind: errdefs.ErrInvalidState, Err: errors.Join(ErrRefused, err),
			Msg: fmt.Sprintf("endpoint %q: model %s version %d may not get traffic: %s", endpoint, key.model, key.version, errdefs.Message(err))}
	}
	return nil
}

func fieldErr(path, format string, args ...any) error {
	return FieldErrors{{Path: path, Msg: fmt.Sprintf(format, args...)}}
}

// prepare returns the slot of a route bound to key (creating it; it is
// published by the next publish) and, when load is set, loads its model.
func (ep *endpoint) prepare(ctx context.Context, name, kind string, key cacheKey, load bool) (*routeModel, error) {
	s := ep.slotFor(name, kind, key)
	if !load {
		return nil, nil
	}
	return s.get(ctx)
}

func (ep *endpoint) slotFor(name, kind string, key cacheKey) *slot {
	id := slotID(name, key)
	if s := ep.slots[id]; s != nil {
		return s
	}
	s := &slot{
		ep: ep, name: name, kind: kind, key: key, version: strconv.FormatInt(key.version, 10),
		stats: newRouteStats(time.Now()), metrics: ep.m.metrics.forRoute(ep.name, name),
	}
	ep.slots[id] = s
	return s
}

// publish builds the endpoint's routing table from its status and swaps
// it in, retires the slots no longer used, and applies the capacity
// settings. Called with ep.mu held.
func (m *Manager) publish(ep *endpoint) {
	st := &ep.status
	kind := StatsRoute
	if ep.doc.Spec.Experiment != nil {
		kind = StatsVariant
	}
	pin := inProgress(st.Rollout)
	used := map[*slot]bool{}
	routes := make([]*slot, len(st.Routes))
	weights := make([]float64, len(st.Routes))
	old := ep.table.Load()
	for _, r := range old.routes {
		m.metrics.weight.DeleteLabelValues(ep.name, r.name)
	}
	for i, r := range st.Routes {
		s := ep.slotFor(r.Name, kind, keyOf(r))
		s.pinned.Store((pin && r.Weight > 0) || (r.Weight == 0 && r.Name == m.previousName(routeNameOf(&ep.doc))))
		routes[i], weights[i] = s, r.Weight
		used[s] = true
	}
	total := 0.0
	for _, w := range weights {
		total += w
	}
	for i, s := range routes {
		share := 0.0
		if total > 0 {
			share = weights[i] / total * 100
		}
		m.metrics.weight.WithLabelValues(ep.name, s.name).Set(share)
	}
	var sh *slot
	pct := 0.0
	if st.Shadow != nil {
		sh = ep.slotFor("shadow", StatsShadow, cacheKey{st.Shadow.Model, st.Shadow.Version})
		used[sh] = true
		pct = st.Shadow.Percent
	}
	header := ""
	if ex := ep.doc.Spec.Experiment; ex != nil {
		header = ex.KeyHeader
	}
	t := newTable(routes, weights, header, sh, pct)
	t.variants = ep.doc.Spec.Experiment != nil
	t.logging = ep.doc.Spec.Logging.Effective()
	if f := ep.doc.Spec.Features; f != nil {
		if old.features != nil && old.features.same(f) {
			t.features = old.features // keeps its resolved join keys
		} else {
			t.features = newFeatureSet(m, ep.name, f)
		}
	}
	ep.table.Store(t)
	for id, s := range ep.slots {
		if !used[s] {
			delete(ep.slots, id)
			s.retire()
		}
	}
	if c := ep.doc.Spec.Capacity; c != nil {
		if l := ep.limiter.Load(); l != nil {
			l.configure(c)
		} else {
			ep.limiter.Store(newLimiter(ep.name, m.metrics, c))
		}
	} else if ep.limiter.Load() != nil {
		ep.limiter.Store(nil)
		m.metrics.workers.DeleteLabelValues(ep.name)
	}
	if !ep.published {
		ep.published = true
		m.mu.Lock()
		next := endpointMap{}
		for k, v := range *m.eps.Load() {
			next[k] = v
		}
		next[ep.name] = ep
		m.eps.Store(&next)
		m.known[ep.name] = ep
		m.mu.Unlock()
	}
}

// unpublish takes an endpoint out of service.
func (m *Manager) unpublish(ep *endpoint) {
	m.mu.Lock()
	next := endpointMap{}
	for k, v := range *m.eps.Load() {
		if k != ep.name {
			next[k] = v
		}
	}
	m.eps.Store(&next)
	if m.known[ep.name] == ep {
		delete(m.known, ep.name)
	}
	m.mu.Unlock()
	ep.published = false
	ep.table.Store(&table{})
	for id, s := range ep.slots {
		delete(ep.slots, id)
		s.retire()
	}
	ep.limiter.Store(nil)
	go ep.shadow.close()
	m.metrics.forget(ep.name)
}

// adopt takes a stored row as the endpoint's state and publishes it.
func (m *Manager) adopt(ep *endpoint, r *row) {
	ep.doc, ep.status = r.doc, r.status
	m.publish(ep)
}

// refresh re-reads an endpoint from the store (another replica changed
// it). Called with ep.mu held.
func (m *Manager) refresh(ctx context.Context, ep *endpoint) error {
	r, err := m.loadRow(ctx, ep.name)
	if errors.Is(err, errdefs.ErrNotFound) {
		m.unpublish(ep)
		return err
	}
	if err != nil {
		return err
	}
	m.adopt(ep, r)
	return nil
}

// state returns the endpoint as clients see it, with the load state of
// each route. Called with ep.mu held.
func (ep *endpoint) state() *State {
	s := &State{Endpoint: copyDoc(&ep.doc), Status: ep.status.clone()}
	t := ep.table.Load()
	for i := range s.Status.Routes {
		if i < len(t.routes) {
			s.Status.Routes[i].State, s.Status.Routes[i].Reason = t.routes[i].state()
		}
	}
	if s.Status.Shadow != nil && t.shadow != nil {
		s.Status.Shadow.State, s.Status.Shadow.Reason = t.shadow.state()
	}
	if s.Status.Rollout != nil && ep.analysis != nil {
		a := *ep.analysis
		s.Status.Rollout.Analysis = &a
	}
	return s
}

// lookupEndpoint returns a published endpoint, locked.
func (m *Manager) lockEndpoint(name string) (*endpoint, error) {
	ep := m.endpoint(name)
	if ep == nil {
		return nil, notFound(name)
	}
	ep.mu.Lock()
	if !ep.published {
		ep.mu.Unlock()
		return nil, notFound(name)
	}
	return ep, nil
}

// Get returns an endpoint.
func (m *Manager) Get(ctx context.Context, name string) (*State, error) {
	ep, err := m.lockEndpoint(name)
	if err != nil {
		return nil, err
	}
	defer ep.mu.Unlock()
	return ep.state(), nil
}

// Pending says which aliases of an endpoint moved since the controller
// last acted on them (Status.Pending): "" when none did, when the
// endpoint is paused, or when they cannot be resolved (the controller
// reports that itself). It reads the registry, so Get leaves it to the
// callers that show it.
func (m *Manager) Pending(ctx context.Context, s *State) string {
	if s.Status.Paused || !needsAliases(&s.Endpoint) {
		return ""
	}
	d, err := m.resolve(ctx, &s.Endpoint, false)
	if err != nil || !aliasesMoved(&s.Status, d) {
		return ""
	}
	return aliasReason(&s.Endpoint, &s.Status, d)
}

// aliasesMoved reports whether resolved routes d differ from what the
// endpoint last acted on.
func aliasesMoved(st *Status, d *desired) bool {
	return d.fp != st.Applied || !sameShadow(st.Shadow, d.shadow)
}

// needsAliases reports whether a document names a model through an alias.
func needsAliases(doc *Endpoint) bool {
	for _, r := range doc.Spec.Routes {
		if r.Alias != "" {
			return true
		}
	}
	return doc.Spec.Shadow != nil && doc.Spec.Shadow.Alias != ""
}

// List returns all endpoints, by name.
func (m *Manager) List(ctx context.Context) ([]*State, error) {
	eps := *m.eps.Load()
	names := make([]string, 0, len(eps))
	for n := range eps {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]*State, 0, len(names))
	for _, n := range names {
		if s, err := m.Get(ctx, n); err == nil {
			out = append(out, s)
		}
	}
	return out, nil
}

// Delete removes an endpoint: it stops serving at once (in-flight
// requests finish), its models are released, and its events stay.
func (m *Manager) Delete(ctx context.Context, name, actor, reason string) error {
	ep, err := m.lockEndpoint(name)
	if err != nil {
		return err
	}
	defer ep.mu.Unlock()
	ev := eventRec{action: ActionDelete, actor: actor, reason: reason, detail: map[string]any{"routes": stripStates(ep.status.Routes)}}
	for attempt := 0; ; attempt++ {
		err := m.deleteRow(ctx, name, ep.status.Revision, ev)
		if errors.Is(err, errConflict) && attempt < 2 {
			if err := m.refresh(ctx, ep); err != nil {
				if errors.Is(err, errdefs.ErrNotFound) {
					return nil
				}
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		break
	}
	m.unpublish(ep)
	return nil
}

// change runs fn on a copy of an endpoint's status and stores the result
// with its event, retrying when another writer got there first.
func (m *Manager) change(ctx context.Context, name, actor, reason, action string,
	fn func(ep *endpoint, st *Status) (map[string]any, error)) (*State, error) {
	ep, err := m.lockEndpoint(name)
	if err != nil {
		return nil, err
	}
	defer ep.mu.Unlock()
	for attempt := 0; ; attempt++ {
		st := ep.status.clone()
		detail, err := fn(ep, &st)
		if err != nil {
			m.publish(ep)
			return nil, err
		}
		prev := st.Revision
		st.Revision++
		st.UpdatedAt, st.UpdatedBy = now(), actor
		err = m.updateRow(ctx, &row{doc: ep.doc, status: st}, prev, []eventRec{{action: action, actor: actor, reason: reason, detail: detail}})
		if errors.Is(err, errConflict) && attempt < 2 {
			if err := m.refresh(ctx, ep); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			m.publish(ep)
			return nil, err
		}
		ep.status = st
		m.publish(ep)
		return ep.state(), nil
	}
}

// Promote gives a rollout's candidate all traffic now (a canary in
// progress, paused or rolled back; a blue-green endpoint that was rolled
// back switches to its candidate again).
func (m *Manager) Promote(ctx context.Context, name, actor, reason string) (*State, error) {
	return m.change(ctx, name, actor, reason, ActionPromote, func(ep *endpoint, st *Status) (map[string]any, error) {
		ro := st.Rollout
		if ro == nil || ro.Phase == PhaseSucceeded {
			return nil, errdefs.InvalidState("endpoint %q has no rollout candidate to promote", name)
		}
		routeName := ep.doc.Spec.Routes[0].Name
		key := cacheKey{ro.Candidate.Model, ro.Candidate.Version}
		if !inProgress(ro) {
			// The candidate has no traffic now: load it and ask the guard.
			if _, err := m.readyCandidate(ctx, ep, routeName, StatsRoute, key); err != nil {
				return nil, err
			}
		} else if _, err := ep.prepare(ctx, routeName, StatsRoute, key, true); err != nil {
			return nil, err
		}
		from := ro.Phase
		if err := m.finishCanary(ctx, ep, st, routeName); err != nil {
			return nil, err
		}
		st.Rollout.Message = "promoted by " + actorName(actor)
		st.Paused = false
		return map[string]any{"from_phase": from, "candidate": ro.Candidate}, nil
	})
}

// Pause holds the endpoint's rollout controller: a canary stays at its
// step, and registry alias moves are not acted on until Resume.
func (m *Manager) Pause(ctx context.Context, name, actor, reason string) (*State, error) {
	return m.change(ctx, name, actor, reason, ActionPause, func(ep *endpoint, st *Status) (map[string]any, error) {
		if st.Paused {
			return nil, errdefs.InvalidState("endpoint %q is already paused", name)
		}
		st.Paused = true
		if ro := st.Rollout; ro != nil && ro.Phase == PhaseProgressing {
			ro.Phase = PhasePaused
			ro.Message = "paused by " + actorName(actor)
			return map[string]any{"step": ro.Step}, nil
		}
		return map[string]any{}, nil
	})
}

// Resume releases a paused endpoint (a paused canary continues, its step
// timer restarted), or retries a rollout that was rolled back or failed
// (or, without a rollout strategy, the routes that were rolled back).
func (m *Manager) Resume(ctx context.Context, name, actor, reason string) (*State, error) {
	return m.change(ctx, name, actor, reason, ActionResume, func(ep *endpoint, st *Status) (map[string]any, error) {
		ro := st.Rollout
		switch {
		case st.Paused:
			st.Paused = false
			if ro != nil && ro.Phase == PhasePaused {
				ro.Phase = PhaseProgressing
				ro.StepStartedAt = now()
				ro.Message = "resumed by " + actorName(actor)
				ep.snapSlot = nil
			}
			return map[string]any{"retry": false}, nil
		case ro != nil && (ro.Phase == PhaseRolledBack || ro.Phase == PhaseFailed),
			ro == nil && st.Message != "" && strings.HasPrefix(st.Message, rolledBackMsg):
			d, err := m.resolve(ctx, &ep.doc, false)
			if err != nil {
				return nil, err
			}
			st.Applied = ""
			st.Message = ""
			detail, err := m.converge(ctx, ep, &ep.doc, st, d)
			if err != nil {
				return nil, err
			}
			detail["retry"] = true
			return detail, nil
		}
		return nil, errdefs.InvalidState("endpoint %q is not paused and has no rollout to retry", name)
	})
}

const rolledBackMsg = "rolled back"

// Rollback puts all traffic back on the stable version at once: a
// rollout in progress ends (rolled_back), a finished one switches back to
// the version before it (kept loaded for keep_previous, else loaded now),
// and an endpoint without a rollout strategy returns to its previous
// routes. The registry is not changed: the endpoint stays rolled back
// until the desired version changes again or Resume retries it.
func (m *Manager) Rollback(ctx context.Context, name, actor, reason string) (*State, error) {
	return m.change(ctx, name, actor, reason, ActionRollback, func(ep *endpoint, st *Status) (map[string]any, error) {
		ro := st.Rollout
		if ep.doc.Spec.Rollout == nil || ro == nil {
			if len(st.Previous) == 0 {
				return nil, errdefs.InvalidState("endpoint %q has no previous routes to roll back to", name)
			}
			if err := m.admitRoutesNoGuard(ctx, ep, st.Previous); err != nil {
				return nil, err
			}
			from := stripStates(st.Routes)
			st.Routes, st.Previous = slices.Clone(st.Previous), from
			st.Message = rolledBackMsg + " by " + actorName(actor) + ": re-apply a changed document, move the alias or resume to change it again"
			return map[string]any{"from": from, "to": st.Routes}, nil
		}
		routeName := ep.doc.Spec.Routes[0].Name
		switch ro.Phase {
		case PhaseRolledBack, PhaseFailed:
			return nil, errdefs.InvalidState("endpoint %q is already on its stable version %s/%d", name, ro.Stable.Model, ro.Stable.Version)
		case PhaseSucceeded:
			// Back to the version before the candidate; keep the
			// candidate loaded for a switch forward (promote).
			if _, err := ep.prepare(ctx, routeName, StatsRoute, cacheKey{ro.Stable.Model, ro.Stable.Version}, true); err != nil {
				return nil, fmt.Errorf("load the previous version: %w", err)
			}
			m.keepLoaded(ctx, ep, m.previousName(routeName), cacheKey{ro.Candidate.Model, ro.Candidate.Version})
			st.Routes = []LiveRoute{
				{Name: routeName, Model: ro.Stable.Model, Version: ro.Stable.Version, Weight: 100},
				{Name: m.previousName(routeName), Model: ro.Candidate.Model, Version: ro.Candidate.Version, Weight: 0},
			}
		default:
			st.Routes = []LiveRoute{{Name: routeName, Model: ro.Stable.Model, Version: ro.Stable.Version, Weight: 100}}
		}
		from := ro.Phase
		ro.Phase = PhaseRolledBack
		ro.FinishedAt = now()
		ro.Message = rolledBackMsg + " by " + actorName(actor)
		m.metrics.rollouts.WithLabelValues(ep.name, PhaseRolledBack).Inc()
		return map[string]any{"from_phase": from, "stable": ro.Stable, "candidate": ro.Candidate}, nil
	})
}

func (m *Manager) admitRoutesNoGuard(ctx context.Context, ep *endpoint, routes []LiveRoute) error {
	kind := StatsRoute
	if ep.doc.Spec.Experiment != nil {
		kind = StatsVariant
	}
	for _, r := range routes {
		if r.Weight > 0 {
			if _, err := ep.prepare(ctx, r.Name, kind, keyOf(r), true); err != nil {
				return fmt.Errorf("route %s: model %s version %d cannot be loaded: %w", r.Name, r.Model, r.Version, err)
			}
		}
	}
	return nil
}

func actorName(a string) string {
	if a == "" {
		return "an anonymous user"
	}
	return a
}

// Events returns an endpoint's events, newest first (also after the
// endpoint was deleted).
func (m *Manager) Events(ctx context.Context, name string, limit int) ([]Event, error) {
	evs, err := m.events(ctx, name, limit)
	if err != nil {
		return nil, err
	}
	if len(evs) == 0 && m.endpoint(name) == nil {
		return nil, notFound(name)
	}
	return evs, nil
}

// Stats returns the live figures of an endpoint: first the whole
// endpoint (with its capacity), then each live route (or experiment
// variant) and the shadow target.
func (m *Manager) Stats(name string) ([]RouteStats, error) {
	ep := m.endpoint(name)
	if ep == nil {
		return nil, notFound(name)
	}
	t := time.Now()
	tab := ep.table.Load()
	out := make([]RouteStats, 0, len(tab.routes)+2)
	all := RouteStats{Name: name, Kind: StatsEndpoint, Weight: 100}
	ep.stats.export(&all, t)
	if l := ep.limiter.Load(); l != nil {
		all.Capacity = l.stats()
	}
	out = append(out, all)
	total := 0.0
	for _, w := range tab.weights {
		total += w
	}
	for i, s := range tab.routes {
		rs := RouteStats{Name: s.name, Kind: StatsRoute, Model: s.key.model, Version: s.key.version}
		if tab.variants {
			rs.Kind = StatsVariant
		}
		if total > 0 {
			rs.Weight = tab.weights[i] / total * 100
		}
		s.stats.export(&rs, t)
		out = append(out, rs)
	}
	if s := tab.shadow; s != nil {
		rs := RouteStats{Name: s.name, Kind: StatsShadow, Model: s.key.model, Version: s.key.version,
			Shadow: ep.shadow.export()}
		rs.Weight = tab.shadowPct
		s.stats.export(&rs, t)
		out = append(out, rs)
	}
	return out, nil
}

// Lookup returns the model of the endpoint's primary route (the one with
// the most traffic), loading it if needed, for handlers that use the
// model outside an inference request (explanations).
func (m *Manager) Lookup(ctx context.Context, endpoint string) (*serving.Model, error) {
	ep := m.endpoint(endpoint)
	if ep == nil {
		return nil, notFound(endpoint)
	}
	s := ep.table.Load().primary
	if s == nil {
		return nil, errdefs.InvalidState("endpoint %q has no routes", endpoint)
	}
	if rm := s.cur.Load(); rm != nil {
		return rm.sm, nil
	}
	return m.waitModel(ctx, ep, s, s.version)
}

// Logging returns the prediction-log settings of an endpoint (defaults
// filled in); ok is false for an endpoint this Manager does not serve. It
// is cheap enough to call on every request.
func (m *Manager) Logging(endpoint string) (l Logging, ok bool) {
	ep := m.endpoint(endpoint)
	if ep == nil {
		return Logging{}, false
	}
	t := ep.table.Load()
	if t.logging.Mode == "" {
		return (*Logging)(nil).Effective(), true
	}
	return t.logging, true
}

// Close releases every loaded model; call it after the servers using the
// Manager stopped.
func (m *Manager) Close() error {
	if m.closed.Swap(true) {
		return nil
	}
	m.mu.Lock()
	eps := make([]*endpoint, 0, len(m.known))
	for _, ep := range m.known {
		eps = append(eps, ep)
	}
	m.mu.Unlock()
	for _, ep := range eps {
		ep.mu.Lock()
		m.unpublish(ep)
		ep.mu.Unlock()
	}
	m.reap(time.Now(), true)
	m.cache.closeAll()
	return nil
}
