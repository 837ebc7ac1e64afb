package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/tensor"
)

// The rollout controller: every tick it reads which endpoints other
// replicas changed, re-resolves registry aliases (a moved alias is a
// version change, through the rollout when one is configured), analyses
// canary steps (pass: next step; fail: automatic rollback), releases
// previous versions after keep_previous, scales worker pools and closes
// retired models.

// Defaults of the rollout analysis.
const (
	defaultMinRequests  = 20
	defaultKeepPrevious = 10 * time.Minute
)

// systemActor is the actor of the controller's own changes.
const systemActor = "kiln"

// Run loads the stored endpoints and runs the rollout controller until
// ctx ends. Models of routes with traffic load in the background.
func (m *Manager) Run(ctx context.Context) error {
	if err := m.sync(ctx, true); err != nil && ctx.Err() == nil {
		m.log.Error("loading the stored endpoints", "err", err)
	}
	t := time.NewTicker(m.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			m.unlease(context.WithoutCancel(ctx))
			return nil
		case <-t.C:
			m.tickOnce(ctx)
		}
	}
}

// tickOnce is one round of the controller.
func (m *Manager) tickOnce(ctx context.Context) {
	if err := m.sync(ctx, false); err != nil && ctx.Err() == nil {
		m.log.Warn("reading endpoint changes", "err", err)
	}
	for _, ep := range *m.eps.Load() {
		if ctx.Err() != nil {
			return
		}
		m.drive(ctx, ep)
		if l := ep.limiter.Load(); l != nil {
			l.tick()
		}
	}
	m.reap(time.Now(), false)
	m.cache.enforce(nil)
}

// sync adopts the endpoints that another replica (or, at start, a
// previous process) stored: new, changed or deleted ones.
func (m *Manager) sync(ctx context.Context, warm bool) error {
	revs, err := m.revisions(ctx)
	if err != nil {
		return err
	}
	for name, rev := range revs {
		m.mu.Lock()
		ep := m.known[name]
		if ep == nil {
			ep = m.newEndpoint(name)
			m.known[name] = ep
		}
		m.mu.Unlock()
		ep.mu.Lock()
		if !ep.published || ep.status.Revision < rev {
			r, err := m.loadRow(ctx, name)
			switch {
			case err == nil:
				if !warm && ep.published {
					// Another replica changed the routes: the versions
					// that get traffic load before the table changes.
					m.preload(ctx, ep, r)
				}
				m.adopt(ep, r)
				if warm {
					ep.warm()
				}
			case errors.Is(err, errdefs.ErrNotFound):
				m.forgetUnpublished(ep)
			default:
				m.forgetUnpublished(ep)
				ep.mu.Unlock()
				return err
			}
		}
		ep.mu.Unlock()
	}
	for name, ep := range *m.eps.Load() {
		if _, ok := revs[name]; ok {
			continue
		}
		ep.mu.Lock()
		// Deleted by another replica (a delete here unpublishes at once).
		if ep.published {
			if _, err := m.loadRow(ctx, name); errors.Is(err, errdefs.ErrNotFound) {
				m.unpublish(ep)
			}
		}
		ep.mu.Unlock()
	}
	return nil
}

// preload loads the models of a stored row's routes with traffic.
func (m *Manager) preload(ctx context.Context, ep *endpoint, r *row) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for _, lr := range r.status.Routes {
		if lr.Weight <= 0 {
			continue
		}
		if _, err := ep.prepare(ctx, lr.Name, StatsRoute, keyOf(lr), true); err != nil {
			m.log.Warn("loading a route changed by another replica", "endpoint", ep.name, "route", lr.Name, "err", err)
		}
	}
}

// warm loads the models of the routes with traffic in the background.
func (ep *endpoint) warm() {
	t := ep.table.Load()
	for i, s := range t.routes {
		if t.weights[i] > 0 || s.pinned.Load() {
			go s.get(context.Background())
		}
	}
	if t.shadow != nil {
		go t.shadow.get(context.Background())
	}
}

// needsDriving reports whether the controller has anything to do for an
// endpoint (so that it takes the lease).
func needsDriving(doc *Endpoint, st *Status) bool {
	if ro := st.Rollout; ro != nil && (ro.Phase == PhaseProgressing || (ro.FinishedAt > 0 && hasPreviousRoute(st))) {
		return true
	}
	return needsAliases(doc)
}

func hasPreviousRoute(st *Status) bool {
	for _, r := range st.Routes {
		if r.Weight == 0 {
			return true
		}
	}
	return false
}

// drive runs the controller's work for one endpoint.
func (m *Manager) drive(ctx context.Context, ep *endpoint) {
	ep.mu.Lock()
	defer ep.mu.Unlock()
	if !ep.published || !needsDriving(&ep.doc, &ep.status) {
		return
	}
	if ok, err := m.lease(ctx, ep.name); err != nil || !ok {
		if err != nil && ctx.Err() == nil {
			m.log.Warn("endpoint lease", "endpoint", ep.name, "err", err)
		}
		return
	}
	st := ep.status.clone()
	var evs []eventRec
	// 1. Aliases.
	if !st.Paused {
		if ev := m.followAliases(ctx, ep, &st); ev != nil {
			evs = append(evs, *ev)
		}
	}
	// 2. The canary step.
	if ro := st.Rollout; ro != nil && ro.Phase == PhaseProgressing && ep.doc.Spec.Rollout != nil && len(evs) == 0 {
		if ev := m.step(ctx, ep, &st); ev != nil {
			evs = append(evs, *ev)
		}
	}
	// 3. Release the previous version after keep_previous.
	if ro := st.Rollout; ro != nil && !inProgress(ro) && ro.FinishedAt > 0 && len(evs) == 0 {
		keep := defaultKeepPrevious
		if r := ep.doc.Spec.Rollout; r != nil && r.KeepPrevious > 0 {
			keep = r.KeepPrevious.D()
		}
		if time.Since(time.UnixMilli(ro.FinishedAt)) >= keep {
			var kept []LiveRoute
			var released []LiveRoute
			for _, r := range st.Routes {
				if r.Weight == 0 {
					released = append(released, r)
				} else {
					kept = append(kept, r)
				}
			}
			if len(released) > 0 {
				st.Routes = kept
				evs = append(evs, eventRec{action: ActionPreviousRelease, actor: systemActor,
					reason: fmt.Sprintf("keep_previous (%v) passed", keep), detail: map[string]any{"released": released}})
			}
		}
	}
	if len(evs) == 0 {
		m.publish(ep) // retire slots a failed attempt prepared
		return
	}
	prev := st.Revision
	st.Revision++
	st.UpdatedAt, st.UpdatedBy = now(), systemActor
	if err := m.updateRow(ctx, &row{doc: ep.doc, status: st}, prev, evs); err != nil {
		if ctx.Err() == nil {
			m.log.Warn("storing an endpoint change", "endpoint", ep.name, "err", err)
		}
		if errors.Is(err, errConflict) {
			m.refresh(ctx, ep)
		} else {
			m.publish(ep)
		}
		return
	}
	ep.status = st
	m.publish(ep)
	for _, ev := range evs {
		m.log.Info("endpoint changed", "endpoint", ep.name, "action", ev.action, "reason", ev.reason)
	}
}

// followAliases re-resolves the document's aliases and converges when a
// moved alias changed the resolved versions.
func (m *Manager) followAliases(ctx context.Context, ep *endpoint, st *Status) *eventRec {
	d, err := m.resolve(ctx, &ep.doc, false)
	if err != nil {
		if msg := err.Error(); msg != ep.lastResolveErr && ctx.Err() == nil {
			ep.lastResolveErr = msg
			m.log.Warn("resolving an endpoint's aliases (it keeps its current versions)", "endpoint", ep.name, "err", err)
		}
		return nil
	}
	ep.lastResolveErr = ""
	if !aliasesMoved(st, d) {
		return nil
	}
	before := stripStates(st.Routes)
	beforeShadow := st.Shadow
	reason := aliasReason(&ep.doc, st, d)
	detail, err := m.converge(ctx, ep, &ep.doc, st, d)
	if err != nil {
		// Record the failure once: the controller does not retry this
		// resolution until it changes again (or resume).
		*st = ep.status.clone()
		st.Applied = d.fp
		msg := errdefs.Message(err)
		if ep.doc.Spec.Rollout != nil && len(d.routes) == 1 {
			st.Rollout = &RolloutStatus{Strategy: ep.doc.Spec.Rollout.Strategy, Phase: PhaseFailed,
				Stable: stableOf(&ep.status), Candidate: ModelVersion{Model: d.routes[0].Model, Version: d.routes[0].Version},
				Message: msg, StartedAt: now(), StepStartedAt: now(), FinishedAt: now()}
			m.metrics.rollouts.WithLabelValues(ep.name, PhaseFailed).Inc()
		} else {
			st.Message = "change failed: " + msg
		}
		return &eventRec{action: ActionChangeFailed, actor: systemActor, reason: reason, detail: map[string]any{"error": msg, "desired": d.routes}}
	}
	if detail == nil {
		detail = map[string]any{}
	}
	detail["from"], detail["to"] = before, d.routes
	if !sameShadow(beforeShadow, d.shadow) {
		detail["shadow_to"] = d.shadow
	}
	return &eventRec{action: ActionAliasMoved, actor: systemActor, reason: reason, detail: detail}
}

// aliasReason says which aliases moved.
func aliasReason(doc *Endpoint, st *Status, d *desired) string {
	var b bytes.Buffer
	cur := map[string]int64{}
	for _, r := range st.Routes {
		cur[r.Name] = r.Version
	}
	if ro := st.Rollout; ro != nil && len(d.routes) == 1 {
		cur[d.routes[0].Name] = stableOf(st).Version
	}
	for i, r := range doc.Spec.Routes {
		if r.Alias == "" || i >= len(d.routes) {
			continue
		}
		if v := d.routes[i].Version; v != cur[r.Name] {
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			fmt.Fprintf(&b, "alias %s@%s moved to version %d (route %s served %d)", d.routes[i].Model, r.Alias, v, r.Name, cur[r.Name])
		}
	}
	if sh := doc.Spec.Shadow; sh != nil && sh.Alias != "" && d.shadow != nil && (st.Shadow == nil || st.Shadow.Version != d.shadow.Version) {
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "shadow alias %s@%s moved to version %d", d.shadow.Model, sh.Alias, d.shadow.Version)
	}
	if b.Len() == 0 {
		return "the resolved routes changed"
	}
	return b.String()
}

// step analyses the canary's current step and advances, finishes or rolls
// back the rollout.
func (m *Manager) step(ctx context.Context, ep *endpoint, st *Status) *eventRec {
	ro := st.Rollout
	spec := ep.doc.Spec.Rollout
	routeName := routeNameOf(&ep.doc)
	tab := ep.table.Load()
	var cand, stable *slot
	for _, s := range tab.routes {
		switch {
		case s.name == m.canaryName(routeName) && s.key == (cacheKey{ro.Candidate.Model, ro.Candidate.Version}):
			cand = s
		case s.name == routeName:
			stable = s
		}
	}
	if cand == nil {
		return nil
	}
	if ep.snapSlot != cand {
		// First look at this step (or after a restart): count from here.
		ep.snapSlot, ep.snapStableSlot = cand, stable
		ep.snap = cand.stats.totals()
		if stable != nil {
			ep.snapStable = stable.stats.totals()
		}
	}
	res, verdict := m.analyze(ctx, ep, spec, ro, cand, stable)
	ep.analysis = &res
	if ro.Step >= len(spec.Steps) {
		ro.Step = len(spec.Steps) - 1
	}
	switch verdict {
	case verdictFail:
		st.Routes = []LiveRoute{{Name: routeName, Model: ro.Stable.Model, Version: ro.Stable.Version, Weight: 100}}
		ro.Phase = PhaseRolledBack
		ro.FinishedAt = now()
		ro.Message = "automatic rollback: " + res.Reason
		ra := res
		ro.Analysis = &ra
		m.metrics.rollouts.WithLabelValues(ep.name, PhaseRolledBack).Inc()
		return &eventRec{action: ActionAutoRollback, actor: systemActor, reason: res.Reason,
			detail: map[string]any{"step": ro.Step, "analysis": res, "stable": ro.Stable, "candidate": ro.Candidate}}
	case verdictPass:
		passed := ro.Step
		next := ro.Step + 1
		ra := res
		if next < len(spec.Steps) && spec.Steps[next].Weight < 100 {
			w := spec.Steps[next].Weight
			ro.Step = next
			ro.StepStartedAt = now()
			ro.Message = fmt.Sprintf("step %d passed; the candidate gets %g%%", passed, w)
			ro.Analysis = &ra
			st.Routes = []LiveRoute{
				{Name: routeName, Model: ro.Stable.Model, Version: ro.Stable.Version, Weight: 100 - w},
				{Name: m.canaryName(routeName), Model: ro.Candidate.Model, Version: ro.Candidate.Version, Weight: w},
			}
			ep.snapSlot = nil
			return &eventRec{action: ActionStep, actor: systemActor, reason: ro.Message,
				detail: map[string]any{"step": next, "weight": w, "analysis": res}}
		}
		if err := m.finishCanary(ctx, ep, st, routeName); err != nil {
			ro.Message = "cannot finish: " + err.Error()
			return nil
		}
		ro.Message = fmt.Sprintf("all %d steps passed; the candidate gets all traffic", len(spec.Steps))
		ro.Analysis = &ra
		ep.snapSlot = nil
		return &eventRec{action: ActionRolloutSucceed, actor: systemActor, reason: ro.Message,
			detail: map[string]any{"analysis": res, "stable": ro.Stable, "candidate": ro.Candidate}}
	}
	return nil
}

type verdict int

const (
	verdictWait verdict = iota
	verdictPass
	verdictFail
)

// analyze checks the candidate's figures since the step started against
// the bounds: a failure (with at least min_requests) rolls back at once;
// a pass needs the step's interval to have passed and min_requests.
func (m *Manager) analyze(ctx context.Context, ep *endpoint, spec *Rollout, ro *RolloutStatus, cand, stable *slot) (AnalysisResult, verdict) {
	c := cand.stats.totals()
	d := c.sub(&ep.snap)
	res := AnalysisResult{Time: now(), Requests: int64(d.requests), Errors: int64(d.errors)}
	if d.requests > 0 {
		rate := float64(d.errors) / float64(d.requests)
		// Client errors the stable route does not have count as errors
		// (e.g. a new version with another signature).
		cr := float64(d.clientErrors) / float64(d.requests)
		sr := 0.0
		if stable != nil {
			s := stable.stats.totals()
			sd := s.sub(&ep.snapStable)
			if sd.requests > 0 {
				sr = float64(sd.clientErrors) / float64(sd.requests)
			}
		}
		if cr > sr {
			rate += cr - sr
			res.Errors += int64(math.Round((cr - sr) * float64(d.requests)))
		}
		res.ErrorRate = rate
		res.P99Ms = d.quantileMs(0.99)
	}
	a := spec.Analysis
	minReq := int64(0)
	if a != nil {
		minReq = defaultMinRequests
		if a.MinRequests > 0 {
			minReq = int64(a.MinRequests)
		}
	}
	interval := spec.Steps[min(ro.Step, len(spec.Steps)-1)].Interval.D()
	elapsed := time.Since(time.UnixMilli(ro.StepStartedAt))
	if a != nil && res.Requests >= minReq && res.Requests > 0 {
		if a.MaxErrorRate != nil && res.ErrorRate > *a.MaxErrorRate {
			res.Reason = fmt.Sprintf("error rate %.4f over %d requests is above max_error_rate %g", res.ErrorRate, res.Requests, *a.MaxErrorRate)
			return res, verdictFail
		}
		if a.MaxP99Latency > 0 && res.P99Ms > float64(a.MaxP99Latency.D())/float64(time.Millisecond) {
			res.Reason = fmt.Sprintf("p99 latency %.3fms over %d requests is above max_p99_latency %v", res.P99Ms, res.Requests, a.MaxP99Latency.D())
			return res, verdictFail
		}
		if q := a.Quality; q != nil {
			if m.opts.Quality == nil {
				res.Reason = fmt.Sprintf("quality bound on %q not checked: no source of labelled metrics", q.Metric)
			} else {
				v, ok, err := m.opts.Quality.Quality(ctx, ep.name, cand.name, q.Metric, time.UnixMilli(ro.StepStartedAt))
				switch {
				case err != nil:
					res.Reason = fmt.Sprintf("quality %q not available: %v", q.Metric, err)
				case !ok:
					res.Reason = fmt.Sprintf("quality %q: not enough labels yet", q.Metric)
					if elapsed >= interval {
						return res, verdictWait
					}
				default:
					res.Quality = &v
					if (q.Min != nil && v < *q.Min) || (q.Max != nil && v > *q.Max) {
						res.Reason = fmt.Sprintf("%s %.4g is outside its bounds", q.Metric, v)
						return res, verdictFail
					}
				}
			}
		}
	}
	if elapsed < interval {
		if res.Reason == "" {
			res.Reason = fmt.Sprintf("step %d holds until %s", ro.Step, time.UnixMilli(ro.StepStartedAt).Add(interval).UTC().Format(time.RFC3339))
		}
		return res, verdictWait
	}
	if res.Requests < minReq {
		res.Reason = fmt.Sprintf("waiting for min_requests: %d of %d", res.Requests, minReq)
		return res, verdictWait
	}
	res.Passed = true
	return res, verdictPass
}

// verifyKey carries the name of a verification model through the
// serving stack's /invocations handler.
type verifyKey struct{}

// verify checks that a blue-green candidate answers before it gets
// traffic: its MLflow input example through the serving stack's
// /invocations when it has one, else a one-row input of zeros built from
// its signature, predicted directly.
func (m *Manager) verify(ctx context.Context, rm *routeModel) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if h := m.verifier.Load(); h != nil && len(rm.sm.InputExample) > 0 {
		name := "\x00verify-" + strconv.FormatInt(m.verifySeq.Add(1), 10)
		tmp := *rm.sm
		tmp.Name = name
		m.verifying.Store(name, &tmp)
		defer func() {
			m.verifying.Delete(name)
			if r := m.releaser.Load(); r != nil {
				(*r).Release(&tmp)
			}
		}()
		req, err := http.NewRequestWithContext(context.WithValue(ctx, verifyKey{}, name), http.MethodPost, "/invocations", bytes.NewReader(rm.sm.InputExample))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		w := &captureWriter{h: http.Header{}}
		(*h).ServeHTTP(w, req)
		if w.status != http.StatusOK {
			return fmt.Errorf("its input example was answered %d: %s", w.status, bytes.TrimSpace(w.body.Bytes()))
		}
		return nil
	}
	sig := rm.sm.Runtime.Signature()
	if len(sig.Inputs) == 0 {
		return nil
	}
	inputs := make([]*tensor.Tensor, len(sig.Inputs))
	for i, in := range sig.Inputs {
		if in.Shape == nil || in.DType == tensor.Invalid {
			return nil // nothing to build a request from: not verified
		}
		shape := slices.Clone(in.Shape)
		for k := range shape {
			if shape[k] < 0 {
				shape[k] = 1
			}
		}
		t, err := tensor.New(in.Name, in.DType, shape...)
		if err != nil {
			return nil
		}
		inputs[i] = t
	}
	if _, err := rm.sm.Runtime.Predict(ctx, inputs); err != nil {
		return fmt.Errorf("a one-row input of zeros failed: %w", err)
	}
	return nil
}

// verificationModel is Model's fallback for names that are not endpoints.
func (m *Manager) verificationModel(name string) (any, bool) {
	if len(name) == 0 || name[0] != 0 {
		return nil, false
	}
	return m.verifying.Load(name)
}

// captureWriter records a handler's answer.
type captureWriter struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (w *captureWriter) Header() http.Header { return w.h }
func (w *captureWriter) WriteHeader(s int) {
	if w.status == 0 {
		w.status = s
	}
}
func (w *captureWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}
