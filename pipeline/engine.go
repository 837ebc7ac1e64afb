package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/store"
)

// maxTakeovers fails a step whose server stopped this many times while
// it ran (a step that crashes its server should not take every server
// down in turn).
const maxTakeovers = 3

var (
	errLost     = errors.New("the step's lease was lost (cancelled, or taken over by another server)")
	errShutdown = errors.New("the server is stopping")
)

// execution is an attempt this server runs.
type execution struct {
	st     *stepRow
	cancel context.CancelCauseFunc
}

// transitions are the changes advance made to a run.
type transitions struct {
	queued   []string
	ended    map[string]string // steps made terminal (skipped, upstream_failed)
	runState string            // the run's end state; "" while it runs
	runError string
}

// Run is the engine's loop: it claims ready steps, runs them in
// goroutines (at most Concurrency at once), renews their leases, takes
// over steps whose server stopped renewing, and advances runs as steps
// end. When ctx ends it stops its attempts, puts them back in the queue
// (the attempt is not counted), and returns nil.
func (s *Service) Run(ctx context.Context) error {
	slots := make(chan struct{}, s.o.Concurrency)
	var wg sync.WaitGroup
	rctx, stopRenew := context.WithCancel(context.WithoutCancel(ctx))
	renewDone := make(chan struct{})
	go func() { defer close(renewDone); s.renew(rctx, ctx) }()
	defer func() {
		wg.Wait()
		stopRenew()
		<-renewDone
	}()
	ticker := time.NewTicker(s.poll)
	defer ticker.Stop()
	lapsedAt := time.Time{}
	s.log.Info("pipeline engine started", "owner", s.owner, "lease_ttl", s.ttl, "poll", s.poll, "concurrency", s.o.Concurrency)
	for {
	fill:
		for ctx.Err() == nil {
			select {
			case slots <- struct{}{}:
			default:
				break fill
			}
			st, err := s.claimQueued(ctx, s.nowMS())
			lapsed := false
			if st == nil && err == nil && time.Since(lapsedAt) >= s.poll {
				lapsedAt = time.Now()
				st, err = s.claimLapsed(ctx, s.nowMS())
				lapsed = st != nil
			}
			if err != nil && ctx.Err() == nil {
				s.log.Warn("claiming a pipeline step failed", "err", err)
			}
			if st == nil {
				<-slots
				break
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-slots; s.signal() }()
				s.execute(ctx, st, lapsed)
			}()
		}
		select {
		case <-ctx.Done():
			s.log.Info("pipeline engine stopping", "owner", s.owner, "attempts", s.activeCount())
			return nil
		case <-s.wake:
		case <-ticker.C:
			s.checkActive(ctx)
		}
	}
}

func (s *Service) activeCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.active)
}

func (s *Service) isCrashed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.crashed
}

// renew extends the leases of this server's attempts every TTL/3 until
// rctx ends; an attempt whose lease is gone is stopped. It stops renewing
// when the server is stopping (ctx), so that a crash test's leases lapse.
func (s *Service) renew(rctx, ctx context.Context) {
	t := time.NewTicker(max(s.ttl/3, time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-rctx.Done():
			return
		case <-t.C:
		}
		if ctx.Err() != nil || s.isCrashed() {
			continue
		}
		s.mu.Lock()
		list := make([]*execution, 0, len(s.active))
		for _, e := range s.active {
			list = append(list, e)
		}
		s.mu.Unlock()
		exp := s.nowMS() + s.ttl.Milliseconds()
		for _, e := range list {
			ok, err := s.leased(rctx, s.db.W, e.st, `lease_expires = ?`, exp)
			if err != nil {
				s.log.Warn("renewing a pipeline step's lease failed", "run", e.st.runID, "step", e.st.Step, "err", err)
				continue
			}
			if !ok {
				e.cancel(errLost)
			}
		}
	}
}

// checkActive stops this server's attempts whose rows are no longer
// running under its lease (the run was cancelled, possibly on another
// server).
func (s *Service) checkActive(ctx context.Context) {
	if s.activeCount() == 0 || s.isCrashed() {
		return
	}
	rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(`SELECT step_id, lease_gen FROM pipeline_steps WHERE lease_owner = ? AND state = 'running'`), s.owner)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("checking pipeline steps failed", "err", err)
		}
		return
	}
	held := map[int64]int64{}
	for rows.Next() {
		var id, gen int64
		if rows.Scan(&id, &gen) == nil {
			held[id] = gen
		}
	}
	rows.Close()
	if rows.Err() != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, e := range s.active {
		if gen, ok := held[id]; !ok || gen != e.st.leaseGen {
			e.cancel(errLost)
		}
	}
}

// stopLocal stops this server's attempts of a run (cancelled here).
func (s *Service) stopLocal(runID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range s.active {
		if e.st.runID == runID {
			e.cancel(errLost)
		}
	}
}

// result is how an attempt (or a decision not to run one) ends a step.
type result struct {
	state      string
	outputs    map[string]string
	exitCode   int
	errMsg     string
	cacheKey   string
	cachedFrom string
	storeCache bool
	tracking   string // the step's child run, when set here
	retryAt    int64  // state queued: when the next attempt may start
	failures   int
}

// execute runs one claimed step: evaluates its condition, resolves it,
// answers it from the cache or runs it on its executor, and records how
// it ended.
func (s *Service) execute(ctx context.Context, st *stepRow, lapsed bool) {
	bg := context.WithoutCancel(ctx)
	log := s.log.With("run", st.runID, "step", st.Step)
	ri, err := s.runInfoFor(bg, st.runID)
	if err != nil {
		log.Warn("loading a pipeline run failed", "err", err)
		s.complete(bg, nil, st, result{state: StateFailed, errMsg: "loading the run: " + errdefs.Message(err), failures: st.failures + 1})
		return
	}
	if !lapsed {
		s.metrics.queueWait.Observe(float64(max(st.StartTime-st.readyTime, 0)) / 1000)
	}
	if !ri.started {
		res, err := s.db.W.ExecContext(bg, s.db.Rebind(`UPDATE pipeline_runs SET state = ?, start_time = ? WHERE run_id = ? AND state = ?`),
			StateRunning, st.StartTime, ri.id, StatePending)
		if err != nil {
			log.Warn("marking a pipeline run running failed", "err", err)
		} else if n, _ := res.RowsAffected(); n > 0 {
			s.observe(Lifecycle{Phase: PhaseStart, Time: time.UnixMilli(st.StartTime), Pipeline: ri.pipeline, RunID: ri.id,
				State: StateRunning, TrackingRunID: ri.trackingRunID, Parameters: ri.params})
		}
		ri.started = true
	}
	step := ri.spec.Step(st.Step)
	if step == nil {
		s.complete(bg, ri, st, result{state: StateFailed, errMsg: "the run's spec has no step " + st.Step, failures: st.failures + 1})
		return
	}
	execName := ri.spec.Executor
	if execName == "" {
		execName = "local"
	}
	exe := s.o.Executors[execName]
	attach := false
	if lapsed {
		if st.takeovers > maxTakeovers {
			s.complete(bg, ri, st, result{state: StateFailed, failures: st.failures + 1,
				errMsg: fmt.Sprintf("abandoned: the server running it stopped %d times", st.takeovers)})
			return
		}
		if _, ok := exe.(Attacher); ok && st.Handle != "" {
			attach = true
			log.Info("re-attaching to a pipeline step whose server stopped", "attempt", st.Attempt, "handle", st.Handle)
		} else {
			old := st.TrackingRunID
			ok, err := s.leased(bg, s.db.W, st, `attempt = attempt + 1, handle = '', tracking_run_id = '', start_time = ?`, s.nowMS())
			if err != nil || !ok {
				log.Warn("taking over a pipeline step failed", "err", err, "lost", !ok)
				return
			}
			s.endChild(bg, old, StateCancelled, nil, nil)
			st.Attempt++
			st.TrackingRunID, st.Handle = "", ""
			log.Info("taking over a pipeline step whose server stopped", "attempt", st.Attempt)
		}
	}
	sc, err := s.scopeFor(bg, ri, st.Step)
	if err != nil {
		s.complete(bg, ri, st, result{state: StateFailed, errMsg: errdefs.Message(err), failures: st.failures + 1})
		return
	}
	if step.When != "" && !attach {
		ok, err := EvalWhen(step.When, sc)
		if err != nil {
			s.complete(bg, ri, st, result{state: StateFailed, errMsg: "when: " + errdefs.Message(err), failures: st.failures + 1})
			return
		}
		if !ok {
			s.complete(bg, ri, st, result{state: StateSkipped, errMsg: "when is false: " + clipText(step.When)})
			return
		}
	}
	task, keyIn, err := s.resolveTask(bg, ri, step, st, sc)
	if err != nil {
		s.failAttempt(bg, ri, st, step, -1, errdefs.Message(err), "")
		return
	}
	cacheable := !ri.noCache && step.Name != ri.exit && (ri.spec.Cache == nil || *ri.spec.Cache) && (step.Cache == nil || !step.Cache.Disabled)
	key := ""
	if !attach && step.Name != ri.exit {
		key = keyIn.Key()
	}
	if cacheable && !attach && key != "" {
		outputs, from, hit, err := s.cacheLookup(bg, ri.pipeline, key)
		if err != nil {
			log.Warn("reading the step cache failed", "err", err)
		}
		if hit {
			child := s.cachedChild(bg, ri, st.Step, from, outputs, step.Outputs)
			s.complete(bg, ri, st, result{state: StateCached, outputs: outputs, cacheKey: key, cachedFrom: from, tracking: child})
			return
		}
	}
	if exe == nil {
		s.complete(bg, ri, st, result{state: StateFailed, failures: st.failures + 1, cacheKey: key,
			errMsg: fmt.Sprintf("this server has no %q executor (it has %s)", execName, strings.Join(sortedKeys(s.o.Executors), ", "))})
		return
	}
	if !attach {
		st.TrackingRunID = s.startChild(bg, ri, st.Step, st.Attempt)
	}
	task.TrackingRunID = st.TrackingRunID
	if st.TrackingRunID != "" {
		task.Env["MLFLOW_RUN_ID"] = st.TrackingRunID
	}
	if ok, err := s.leased(bg, s.db.W, st, `executor = ?, tracking_run_id = ?, cache_key = ?`, execName, st.TrackingRunID, key); err != nil || !ok {
		if err != nil {
			log.Warn("recording a pipeline step's start failed", "err", err)
		}
		s.endChild(bg, st.TrackingRunID, StateCancelled, nil, nil)
		return
	}
	if !attach {
		s.observe(Lifecycle{Phase: PhaseStart, Time: time.UnixMilli(st.StartTime), Pipeline: ri.pipeline, RunID: ri.id, Step: st.Step,
			Attempt: st.Attempt, State: StateRunning, TrackingRunID: st.TrackingRunID, Inputs: task.Inputs})
	}

	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	s.mu.Lock()
	s.active[st.id] = &execution{st: st, cancel: cancel}
	s.mu.Unlock()
	rctx := actx
	var bound time.Duration
	if task.Timeout > 0 {
		bound = task.Timeout + s.grace
		var c context.CancelFunc
		rctx, c = context.WithTimeout(actx, bound)
		defer c()
	}
	lw := newLogWriter(s, st)
	log.Info("pipeline step started", "attempt", st.Attempt, "executor", execName, "attach", attach)
	start := time.Now()
	var out Outcome
	if attach {
		out, err = exe.(Attacher).Attach(rctx, task, st.Handle, lw)
	} else {
		out, err = exe.Run(rctx, task, lw)
	}
	took := time.Since(start)
	timedOut := bound > 0 && rctx.Err() == context.DeadlineExceeded && actx.Err() == nil
	cause := context.Cause(actx)
	lw.Close(bg)
	s.mu.Lock()
	delete(s.active, st.id)
	crashed := s.crashed
	s.mu.Unlock()
	if crashed {
		return
	}
	s.metrics.duration.Observe(took.Seconds())
	switch {
	case errors.Is(cause, errLost):
		log.Info("pipeline step stopped: its lease is gone (cancelled or taken over)", "attempt", st.Attempt)
		s.endChild(bg, st.TrackingRunID, StateCancelled, nil, nil)
		return
	case ctx.Err() != nil:
		log.Info("pipeline step interrupted by shutdown; requeued", "attempt", st.Attempt)
		s.requeue(bg, st, !attach)
		s.endChild(bg, st.TrackingRunID, StateCancelled, nil, nil)
		return
	case timedOut:
		s.failAttempt(bg, ri, st, step, -1, fmt.Sprintf("timed out after %v (the executor did not stop it within %v more)", task.Timeout, s.grace), key)
		return
	case err != nil:
		s.failAttempt(bg, ri, st, step, -1, "the executor failed: "+err.Error(), key)
		return
	case out.ExitCode != 0 || out.Error != "":
		msg := out.Error
		if msg == "" {
			msg = fmt.Sprintf("exit status %d", out.ExitCode)
		}
		code := out.ExitCode
		if code == 0 {
			code = -1
		}
		s.failAttempt(bg, ri, st, step, code, msg, key)
		return
	}
	outputs := map[string]string{}
	var metrics []metricOutput
	for _, o := range step.Outputs {
		switch o.Type {
		case OutputArtifact, "":
			outputs[o.Name] = task.OutputPrefix + "/" + o.Name
		default:
			v, ok := out.Outputs[o.Name]
			if !ok {
				s.failAttempt(bg, ri, st, step, -1, fmt.Sprintf("the step did not write its %s output %q", o.Type, o.Name), key)
				return
			}
			outputs[o.Name] = v
			if o.Type == OutputMetric {
				metrics = append(metrics, metricOutput{o.Name, v})
			}
		}
	}
	log.Info("pipeline step succeeded", "attempt", st.Attempt, "took", took.Round(time.Millisecond))
	s.endChild(bg, st.TrackingRunID, StateSucceeded, metrics, nil)
	s.complete(bg, ri, st, result{state: StateSucceeded, outputs: outputs, cacheKey: key, storeCache: cacheable && key != ""})
}

// failAttempt records a failed attempt: the step is queued again after
// its backoff while it has attempts left, else it fails.
func (s *Service) failAttempt(ctx context.Context, ri *runInfo, st *stepRow, step *Step, code int, msg string, key string) {
	failures := st.failures + 1
	s.log.Info("pipeline step attempt failed", "run", st.runID, "step", st.Step, "attempt", st.Attempt, "error", msg)
	s.endChild(ctx, st.TrackingRunID, StateFailed, nil, map[string]string{"kiln.error": clipLen(msg, 5000)})
	res := result{state: StateFailed, exitCode: code, errMsg: clipLen(msg, 2000), cacheKey: key, failures: failures}
	if failures < step.Retry.Attempts() {
		res.state = StateQueued
		res.retryAt = s.nowMS() + step.Retry.Delay(failures).Milliseconds()
	}
	s.complete(ctx, ri, st, res)
}

// requeue puts a step this server stops back in the queue.
func (s *Service) requeue(ctx context.Context, st *stepRow, counted bool) {
	dec := "attempt"
	if counted {
		dec = "attempt - 1"
	}
	now := s.nowMS()
	if _, err := s.leased(ctx, s.db.W, st, `state = 'queued', attempt = `+dec+`, lease_owner = '', lease_expires = 0, handle = '',
		tracking_run_id = '', next_attempt_time = ?, ready_time = ?`, now, now); err != nil {
		s.log.Warn("requeueing a pipeline step failed", "run", st.runID, "step", st.Step, "err", err)
	}
}

// complete records how a step ended (or that it waits for a retry) under
// its lease, and advances its run in the same transaction.
func (s *Service) complete(ctx context.Context, ri *runInfo, st *stepRow, res result) {
	if s.isCrashed() {
		return
	}
	now := s.nowMS()
	if res.outputs == nil {
		res.outputs = map[string]string{}
	}
	end, next, ready := now, int64(0), int64(0)
	if res.state == StateQueued {
		end, next, ready = 0, res.retryAt, res.retryAt
	}
	lost := false
	var tr *transitions
	err := s.db.Tx(ctx, func(tx store.Tx) error {
		runState, err := s.lockRun(ctx, tx, st.runID)
		if err != nil {
			return err
		}
		set := `state = ?, outputs = ?, exit_code = ?, error = ?, end_time = ?, next_attempt_time = ?, ready_time = ?, failures = ?,
			cache_key = ?, cached_from = ?, lease_owner = '', lease_expires = 0`
		args := []any{res.state, mustJSON(res.outputs), res.exitCode, res.errMsg, end, next, ready, res.failures, res.cacheKey, res.cachedFrom}
		if res.tracking != "" {
			set += `, tracking_run_id = ?`
			args = append(args, res.tracking)
		}
		ok, err := s.leased(ctx, tx, st, set, args...)
		if err != nil {
			return err
		}
		if !ok {
			lost = true
			return nil
		}
		if res.storeCache && ri != nil {
			if err := s.cacheStore(ctx, tx, ri.pipeline, res.cacheKey, ri.id, st.Step, res.outputs, now); err != nil {
				return err
			}
		}
		if Terminal(res.state) && !Terminal(runState) && ri != nil {
			tr, err = s.advance(ctx, tx, ri, now)
		}
		return err
	})
	if err != nil {
		s.log.Warn("recording the end of a pipeline step failed", "run", st.runID, "step", st.Step, "err", err)
		return
	}
	if lost {
		s.log.Info("pipeline step's lease was lost before its end was recorded", "run", st.runID, "step", st.Step)
		return
	}
	if Terminal(res.state) {
		s.metrics.steps.WithLabelValues(res.state).Inc()
		s.log.Info("pipeline step ended", "run", st.runID, "step", st.Step, "state", res.state, "attempt", st.Attempt, "error", res.errMsg)
		ev := Lifecycle{Phase: phaseOf(res.state), Time: time.UnixMilli(now), RunID: st.runID, Step: st.Step, Attempt: st.Attempt,
			State: res.state, TrackingRunID: st.TrackingRunID, Outputs: res.outputs, Error: res.errMsg}
		if res.tracking != "" {
			ev.TrackingRunID = res.tracking
		}
		if ri != nil {
			ev.Pipeline = ri.pipeline
		}
		s.observe(ev)
	} else if res.state == StateQueued {
		delay := time.Duration(res.retryAt-now) * time.Millisecond
		s.log.Info("pipeline step will be retried", "run", st.runID, "step", st.Step, "failures", res.failures, "after", delay)
		time.AfterFunc(max(delay, 0)+time.Millisecond, s.signal)
	}
	if ri != nil {
		s.after(ctx, ri, tr)
	}
}

// advance moves a run on inside tx (which holds the run's lock): pending
// steps whose upstream steps all ended become queued, or upstream_failed
// (an upstream failed), or skipped (an upstream whose outputs they read
// was skipped); the exit handler is queued once every other step ended;
// and the run ends when every step has.
func (s *Service) advance(ctx context.Context, tx store.Tx, ri *runInfo, now int64) (*transitions, error) {
	rows, err := tx.QueryContext(ctx, s.db.Rebind(`SELECT step, state FROM pipeline_steps WHERE run_id = ?`), ri.id)
	if err != nil {
		return nil, err
	}
	states := map[string]string{}
	for rows.Next() {
		var name, state string
		if err := rows.Scan(&name, &state); err != nil {
			rows.Close()
			return nil, err
		}
		states[name] = state
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	tr := &transitions{ended: map[string]string{}}
	reasons := map[string]string{}
	topo := ri.spec.Order()
	for _, name := range topo {
		if states[name] != StatePending {
			continue
		}
		done, failed, skipped := true, "", ""
		for _, u := range ri.upstream[name] {
			us := states[u]
			if !Terminal(us) {
				done = false
				break
			}
			switch us {
			case StateFailed, StateUpstreamFailed, StateCancelled:
				if failed == "" {
					failed = u
				}
			case StateSkipped:
				if ri.needsOutputs[name][u] && skipped == "" {
					skipped = u
				}
			}
		}
		switch {
		case !done:
		case failed != "":
			states[name], tr.ended[name], reasons[name] = StateUpstreamFailed, StateUpstreamFailed, "upstream step "+failed+" did not succeed"
		case skipped != "":
			states[name], tr.ended[name], reasons[name] = StateSkipped, StateSkipped, "upstream step "+skipped+" was skipped"
		default:
			states[name] = StateQueued
			tr.queued = append(tr.queued, name)
		}
	}
	allDone := true
	firstFailed := ""
	for _, name := range ri.order {
		if name == ri.exit {
			continue
		}
		if !Terminal(states[name]) {
			allDone = false
		}
		if (states[name] == StateFailed || states[name] == StateUpstreamFailed) && firstFailed == "" && states[name] == StateFailed {
			firstFailed = name
		}
	}
	if firstFailed == "" {
		for _, name := range ri.order {
			if name != ri.exit && states[name] == StateUpstreamFailed {
				firstFailed = name
				break
			}
		}
	}
	if allDone && ri.exit != "" && states[ri.exit] == StatePending {
		states[ri.exit] = StateQueued
		tr.queued = append(tr.queued, ri.exit)
	}
	for name, state := range tr.ended {
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE pipeline_steps SET state = ?, error = ?, end_time = ? WHERE run_id = ? AND step = ? AND state = ?`),
			state, reasons[name], now, ri.id, name, StatePending); err != nil {
			return nil, err
		}
	}
	for i := 0; i < len(tr.queued); i += 500 {
		chunk := tr.queued[i:min(i+500, len(tr.queued))]
		args := []any{StateQueued, now, now, ri.id}
		for _, n := range chunk {
			args = append(args, n)
		}
		args = append(args, StatePending)
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE pipeline_steps SET state = ?, ready_time = ?, next_attempt_time = ?
			WHERE run_id = ? AND step IN (`+placeholders(len(chunk))+`) AND state = ?`), args...); err != nil {
			return nil, err
		}
	}
	everything := true
	for _, name := range ri.order {
		if !Terminal(states[name]) {
			everything = false
			break
		}
	}
	if everything {
		tr.runState = StateSucceeded
		if firstFailed != "" {
			tr.runState, tr.runError = StateFailed, "step "+firstFailed+" "+strings.ReplaceAll(states[firstFailed], "_", " ")
		} else if ri.exit != "" && states[ri.exit] == StateFailed {
			tr.runState, tr.runError = StateFailed, "the exit handler "+ri.exit+" failed"
		}
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE pipeline_runs SET state = ?, error = ?, end_time = ?,
			start_time = CASE WHEN start_time = 0 THEN ? ELSE start_time END WHERE run_id = ? AND state IN (?, ?)`),
			tr.runState, tr.runError, now, now, ri.id, StatePending, StateRunning); err != nil {
			return nil, err
		}
	}
	return tr, nil
}

// after acts on what advance changed, once its transaction committed.
func (s *Service) after(ctx context.Context, ri *runInfo, tr *transitions) {
	if tr == nil {
		return
	}
	for _, state := range tr.ended {
		s.metrics.steps.WithLabelValues(state).Inc()
	}
	if tr.runState != "" {
		s.metrics.runs.WithLabelValues(tr.runState).Inc()
		s.log.Info("pipeline run ended", "pipeline", ri.pipeline, "run", ri.id, "state", tr.runState, "error", tr.runError)
		s.endTracking(ctx, ri.trackingRunID, tr.runState)
		s.forgetRun(ri.id)
		s.observe(Lifecycle{Phase: phaseOf(tr.runState), Pipeline: ri.pipeline, RunID: ri.id, State: tr.runState,
			TrackingRunID: ri.trackingRunID, Parameters: ri.params, Error: tr.runError})
	}
	if len(tr.queued) > 0 {
		s.signal()
	}
}

// scopeFor returns what the templates of a step see: the parameters, the
// trigger's event, the run, and the state and outputs of its upstream
// steps (every step for the exit handler, with {{pipeline.status}}).
func (s *Service) scopeFor(ctx context.Context, ri *runInfo, step string) (*Scope, error) {
	var names []string
	if step != ri.exit {
		names = ri.upstream[step]
		if names == nil {
			names = []string{}
		}
	}
	steps, err := s.stepStates(ctx, s.db.R, ri.id, names)
	if err != nil {
		return nil, err
	}
	sc := &Scope{Params: ri.params, Steps: steps, Inputs: map[string]string{}, Trigger: ri.trigger,
		Run: RunScope{ID: ri.id, Pipeline: ri.pipeline, TrackingRunID: ri.trackingRunID}}
	if sc.Trigger == nil {
		sc.Trigger = map[string]string{}
	}
	if step == ri.exit {
		sc.PipelineStatus = "Succeeded"
		for name, st := range steps {
			if name != ri.exit && (st.State == StateFailed || st.State == StateUpstreamFailed) {
				sc.PipelineStatus = "Failed"
			}
		}
	}
	return sc, nil
}

// resolveTask turns a step into the Task of one attempt, and the input of
// its cache key.
func (s *Service) resolveTask(ctx context.Context, ri *runInfo, step *Step, st *stepRow, sc *Scope) (*Task, CacheKeyInput, error) {
	t := &Task{Pipeline: ri.pipeline, RunID: ri.id, Step: step.Name, Attempt: st.Attempt, Outputs: step.Outputs,
		Timeout: step.Timeout.D(), Resources: step.Resources, Env: map[string]string{}}
	key := CacheKeyInput{Inputs: map[string]string{}, Outputs: step.Outputs}
	if step.Cache != nil {
		key.Version = step.Cache.Version
	}
	wrap := func(what string, err error) error {
		return errdefs.Invalid("%s: %s", what, errdefs.Message(err))
	}
	for _, in := range step.Inputs {
		ti := TaskInput{Name: in.Name}
		switch {
		case in.Dataset != "":
			ref, ok := ri.resolved[step.Name+"/"+in.Name]
			if !ok {
				raw, err := Expand(in.Dataset, sc)
				if err != nil {
					return nil, key, wrap("input "+in.Name, err)
				}
				ref = raw
			}
			pinned, digest, err := s.resolveDataset(ctx, ref)
			if err != nil {
				return nil, key, wrap("input "+in.Name+" (dataset "+ref+")", err)
			}
			ti.URI, key.Inputs[in.Name] = "dataset:"+pinned, "dataset:"+digest
		case in.Artifact != "":
			uri, err := Expand(in.Artifact, sc)
			if err != nil {
				return nil, key, wrap("input "+in.Name, err)
			}
			digest := uri
			if d, ok := s.o.Stager.(Digester); ok {
				if digest, err = d.Digest(ctx, uri); err != nil {
					return nil, key, wrap("input "+in.Name+" ("+uri+")", err)
				}
			}
			ti.URI, key.Inputs[in.Name] = uri, digest
		case in.From != "":
			up, out, ok := parseFrom(in.From)
			if !ok {
				return nil, key, errdefs.Invalid("input %s: from %q is not steps.<step>.outputs.<name>", in.Name, in.From)
			}
			v, ok := sc.Steps[up].Outputs[out]
			if !ok {
				return nil, key, errdefs.Invalid("input %s: step %s has no output %q (it is %s)", in.Name, up, out, sc.Steps[up].State)
			}
			typ := OutputArtifact
			if us := ri.spec.Step(up); us != nil {
				for _, o := range us.Outputs {
					if o.Name == out && o.Type != "" {
						typ = o.Type
					}
				}
			}
			if typ == OutputArtifact || typ == OutputModel {
				ti.URI = v
			} else {
				ti.Value = v
			}
			key.Inputs[in.Name] = v
		default:
			v, err := Expand(in.Value, sc)
			if err != nil {
				return nil, key, wrap("input "+in.Name, err)
			}
			ti.Value, key.Inputs[in.Name] = v, v
		}
		t.Inputs = append(t.Inputs, ti)
		if ref, ok := strings.CutPrefix(ti.URI, "dataset:"); ok {
			// {{inputs.n}} of a dataset input is the version the run
			// pinned, "name@N", which kiln data commands take as is.
			sc.Inputs[in.Name] = ref
		} else if ti.URI != "" {
			sc.Inputs[in.Name] = ti.URI
		} else {
			sc.Inputs[in.Name] = ti.Value
			t.Env["KILN_INPUT_"+EnvName(in.Name)] = ti.Value
		}
	}
	var err error
	if t.Image, err = Expand(step.Image, sc); err != nil {
		return nil, key, wrap("image", err)
	}
	for _, c := range step.Command {
		v, err := Expand(c, sc)
		if err != nil {
			return nil, key, wrap("command", err)
		}
		t.Command = append(t.Command, v)
	}
	if t.WorkingDir, err = Expand(step.WorkingDir, sc); err != nil {
		return nil, key, wrap("working_dir", err)
	}
	key.Env = map[string]string{}
	for k, v := range step.Env {
		x, err := Expand(v, sc)
		if err != nil {
			return nil, key, wrap("env "+k, err)
		}
		key.Env[k] = x
		t.Env[k] = x
	}
	key.Image, key.Command, key.WorkingDir = t.Image, t.Command, t.WorkingDir
	for k, v := range ri.params {
		t.Env["KILN_PARAM_"+EnvName(k)] = v
	}
	t.Env["KILN_PIPELINE"] = ri.pipeline
	t.Env["KILN_PIPELINE_RUN"] = ri.id
	t.Env["KILN_STEP"] = step.Name
	t.Env["KILN_ATTEMPT"] = itoa(st.Attempt)
	if ri.experimentID != "" {
		t.Env["MLFLOW_EXPERIMENT_ID"] = ri.experimentID
	}
	if s.o.ExternalURL != "" {
		t.Env["KILN_URL"] = s.o.ExternalURL
		t.Env["MLFLOW_TRACKING_URI"] = s.o.ExternalURL
		// The registry too: an MLFLOW_REGISTRY_URI inherited from the
		// server's environment would send register_model elsewhere.
		if _, set := step.Env["MLFLOW_REGISTRY_URI"]; !set {
			t.Env["MLFLOW_REGISTRY_URI"] = s.o.ExternalURL
		}
	}
	t.OutputPrefix = fmt.Sprintf("mlflow-artifacts:/pipelines/%s/%s/%s/%d/outputs", ri.pipeline, ri.id, step.Name, st.Attempt)
	return t, key, nil
}

// parseFrom splits "steps.<step>.outputs.<name>".
func parseFrom(s string) (step, output string, ok bool) {
	parts := strings.Split(s, ".")
	if len(parts) != 4 || parts[0] != "steps" || parts[2] != "outputs" {
		return "", "", false
	}
	return parts[1], parts[3], true
}

// Digester is a Stager that can tell the content digest of an artifact
// URI (for the step cache key); NewBucketStager's does.
type Digester interface {
	Digest(ctx context.Context, uri string) (string, error)
}

func clipLen(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
