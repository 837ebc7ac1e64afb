package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"database/sql"

	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/store"
)

// runInfo is what the engine keeps of an active run: the facts that never
// change while it runs, and the DAG compiled from its spec.
type runInfo struct {
	id, pipeline     string
	spec             *Spec
	params           map[string]string
	resolved         map[string]string // "step/input" -> dataset version ref
	noCache          bool
	trigger          map[string]string
	trackingRunID    string
	experimentID     string
	upstream         map[string][]string
	needsOutputs     map[string]map[string]bool // step -> upstream steps whose outputs it reads
	order            []string                   // spec order, the exit handler last
	position         map[string]int
	exit             string
	started          bool // the run's state is running (not pending)
	stepsTotalByName map[string]bool
}

func compileRun(r *runRow) (*runInfo, error) {
	var spec Spec
	if err := json.Unmarshal([]byte(r.specJSON), &spec); err != nil {
		return nil, fmt.Errorf("pipeline run %s: spec: %w", r.ID, err)
	}
	ri := &runInfo{id: r.ID, pipeline: r.Pipeline, spec: &spec, params: r.Parameters, resolved: r.resolved, noCache: r.NoCache,
		trackingRunID: r.TrackingRunID, experimentID: r.ExperimentID, started: r.State != StatePending}
	if r.Cause != nil {
		ri.trigger = r.Cause.Event
	}
	if ri.resolved == nil {
		ri.resolved = map[string]string{}
	}
	ri.upstream = spec.Upstream()
	ri.position = map[string]int{}
	for i := range spec.Steps {
		ri.order = append(ri.order, spec.Steps[i].Name)
	}
	if spec.OnExit != nil {
		ri.exit = spec.OnExit.Name
		ri.order = append(ri.order, ri.exit)
	}
	for i, n := range ri.order {
		ri.position[n] = i
	}
	ri.needsOutputs = map[string]map[string]bool{}
	for i := range spec.Steps {
		st := &spec.Steps[i]
		ri.needsOutputs[st.Name] = outputRefs(st)
	}
	return ri, nil
}

// outputRefs returns the steps whose outputs st reads (from: inputs and
// {{steps.X.outputs.Y}} templates); a skipped one skips st.
func outputRefs(st *Step) map[string]bool {
	out := map[string]bool{}
	add := func(s string) {
		refs, _ := References(s)
		for _, r := range refs {
			if r.Output() != "" {
				out[r.Name] = true
			}
		}
	}
	for _, c := range st.Command {
		add(c)
	}
	for _, v := range st.Env {
		add(v)
	}
	add(st.WorkingDir)
	add(st.When)
	add(st.Image)
	for _, in := range st.Inputs {
		add(in.Dataset)
		add(in.Artifact)
		add(in.Value)
		if in.From != "" {
			parts := strings.Split(strings.TrimPrefix(in.From, "steps."), ".")
			if len(parts) > 0 {
				out[parts[0]] = true
			}
		}
	}
	return out
}

// runInfoFor returns the compiled facts of a run, cached while it runs.
func (s *Service) runInfoFor(ctx context.Context, id string) (*runInfo, error) {
	s.mu.Lock()
	ri := s.runs[id]
	s.mu.Unlock()
	if ri != nil {
		return ri, nil
	}
	r, err := s.getRun(ctx, s.db.R, id)
	if err != nil {
		return nil, err
	}
	ri, err = compileRun(r)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	if old := s.runs[id]; old != nil {
		ri = old
	} else if len(s.runs) < 10000 {
		s.runs[id] = ri
	}
	s.mu.Unlock()
	return ri, nil
}

func (s *Service) forgetRun(id string) {
	s.mu.Lock()
	delete(s.runs, id)
	s.mu.Unlock()
}

// StartRun starts a run of a stored pipeline. With a DedupKey that an
// earlier run of the pipeline has, it returns that run and false. The
// parameters are checked and completed with their defaults; dataset
// inputs naming a version by "@latest" (after the parameters are
// expanded) are pinned to the latest version now, so that every step sees
// the same one. The parent run is created in the tracking store.
func (s *Service) StartRun(ctx context.Context, req RunRequest) (*Run, bool, error) {
	if req.DedupKey != "" {
		if len(req.DedupKey) > 1000 {
			return nil, false, errdefs.Invalid("dedup_key is longer than 1000 bytes")
		}
		if r, err := s.runByDedup(ctx, req.Pipeline, req.DedupKey); err != nil || r != nil {
			return r, false, err
		}
	}
	sp, err := s.Get(ctx, req.Pipeline)
	if err != nil {
		return nil, false, err
	}
	spec, gen := &sp.Spec, sp.Generation
	var reuse map[string]*stepRow
	var resumed *runRow
	if req.ResumeFrom != "" {
		old, err := s.getRun(ctx, s.db.R, req.ResumeFrom)
		if err != nil {
			return nil, false, err
		}
		if old.Pipeline != req.Pipeline {
			return nil, false, errdefs.Invalid("Run %s is a run of pipeline '%s', not '%s'", old.ID, old.Pipeline, clipText(req.Pipeline))
		}
		if old.State != StateFailed && old.State != StateCancelled {
			return nil, false, errdefs.InvalidState("Run %s is %s; only a failed or cancelled run can be resumed", old.ID, old.State)
		}
		resumed = old
		var oldSpec Spec
		if err := json.Unmarshal([]byte(old.specJSON), &oldSpec); err != nil {
			return nil, false, fmt.Errorf("pipeline run %s: spec: %w", old.ID, err)
		}
		spec, gen = &oldSpec, old.Generation
		steps, err := s.listSteps(ctx, s.db.R, old.ID)
		if err != nil {
			return nil, false, err
		}
		reuse = map[string]*stepRow{}
		for _, st := range steps {
			if (st.State == StateSucceeded || st.State == StateCached) && (spec.OnExit == nil || st.Step != spec.OnExit.Name) {
				reuse[st.Step] = st
			}
		}
		params := map[string]string{}
		for k, v := range old.Parameters {
			params[k] = v
		}
		for k, v := range req.Parameters {
			params[k] = v
		}
		req.Parameters = params
		if req.Cause == nil {
			req.Cause = &Cause{Type: "resume", Event: map[string]string{"run": old.ID}}
		}
	}
	params, err := spec.ResolveParameters(req.Parameters)
	if err != nil {
		return nil, false, err
	}
	if params == nil {
		params = map[string]string{}
	}
	if req.Cause == nil {
		req.Cause = &Cause{Type: "manual"}
	}
	resolved, err := s.pinDatasets(ctx, spec, params, req.Cause)
	if err != nil {
		return nil, false, err
	}
	id := store.NewID()
	now := s.now()
	t := now.UnixMilli()
	trackingRun, expID, err := s.startTracking(ctx, sp.Metadata.Name, spec, id, params, req, now)
	if err != nil {
		return nil, false, err
	}
	var dedup any
	if req.DedupKey != "" {
		dedup = req.DedupKey
	}
	resumedFrom := ""
	if resumed != nil {
		resumedFrom = resumed.ID
	}
	row := &runRow{Run: Run{ID: id, Pipeline: sp.Metadata.Name, Generation: gen, State: StatePending, Parameters: params, NoCache: req.NoCache,
		Cause: req.Cause, CreatedBy: req.Actor, ResumedFrom: resumedFrom, TrackingRunID: trackingRun, ExperimentID: expID, CreationTime: t},
		specJSON: mustJSON(spec), resolved: resolved}
	ri, err := compileRun(row)
	if err != nil {
		return nil, false, err
	}
	var tr *transitions
	err = s.db.Tx(ctx, func(tx store.Tx) error {
		_, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO pipeline_runs (run_id, pipeline, generation, state, spec, parameters, resolved, no_cache,
			cause, created_by, resumed_from, dedup_key, tracking_run_id, experiment_id, creation_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			id, row.Pipeline, gen, StatePending, row.specJSON, mustJSON(params), mustJSON(resolved), req.NoCache, mustJSON(req.Cause),
			req.Actor, resumedFrom, dedup, trackingRun, expID, t)
		if err != nil {
			return err
		}
		for i, name := range ri.order {
			state, outputs, from, key, trk := StatePending, "{}", "", "", ""
			if old := reuse[name]; old != nil {
				state, outputs, key, trk = StateCached, mustJSON(old.Outputs), old.CacheKey, ""
				from = resumed.ID
				if old.CachedFrom != "" {
					from = old.CachedFrom
				}
			}
			end := int64(0)
			if state == StateCached {
				end = t
			}
			if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO pipeline_steps (run_id, step, position, state, parallelism, outputs, cached_from, cache_key,
				tracking_run_id, start_time, end_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
				id, name, i, state, spec.Parallelism, outputs, from, key, trk, end, end); err != nil {
				return err
			}
		}
		tr, err = s.advance(ctx, tx, ri, t)
		return err
	})
	if store.IsUniqueViolation(err) && req.DedupKey != "" {
		s.discardTracking(ctx, trackingRun)
		r, err := s.runByDedup(ctx, req.Pipeline, req.DedupKey)
		if err == nil && r == nil {
			err = errdefs.InvalidState("run with dedup key %q vanished; retry", req.DedupKey)
		}
		return r, false, err
	}
	if err != nil {
		s.discardTracking(ctx, trackingRun)
		return nil, false, fmt.Errorf("start pipeline run: %w", err)
	}
	s.mu.Lock()
	s.runs[id] = ri
	s.mu.Unlock()
	s.log.Info("pipeline run started", "pipeline", row.Pipeline, "run", id, "actor", req.Actor, "cause", req.Cause.Type,
		"resumed_from", resumedFrom, "tracking_run", trackingRun)
	for name := range reuse {
		s.trackCachedResume(ctx, ri, name, resumedFrom)
	}
	s.after(ctx, ri, tr)
	r, err := s.GetRun(ctx, id)
	if err != nil {
		return nil, false, err
	}
	r.Spec, r.Steps = nil, nil
	return r, true, nil
}

func (s *Service) runByDedup(ctx context.Context, pipeline, key string) (*Run, error) {
	r, err := scanRun(s.db.R.QueryRowContext(ctx, s.db.Rebind(`SELECT `+runCols+` FROM pipeline_runs WHERE pipeline = ? AND dedup_key = ?`), pipeline, key))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find pipeline run by dedup key: %w", err)
	}
	run := r.Run
	return &run, nil
}

// pinDatasets resolves the dataset inputs whose reference depends on the
// parameters (and the trigger) only: "@latest" becomes the version now.
func (s *Service) pinDatasets(ctx context.Context, spec *Spec, params map[string]string, cause *Cause) (map[string]string, error) {
	out := map[string]string{}
	sc := &Scope{Params: params}
	if cause != nil {
		sc.Trigger = cause.Event
	}
	steps := append([]Step(nil), spec.Steps...)
	if spec.OnExit != nil {
		steps = append(steps, *spec.OnExit)
	}
	for _, st := range steps {
		for _, in := range st.Inputs {
			if in.Dataset == "" {
				continue
			}
			refs, err := References(in.Dataset)
			if err != nil {
				return nil, err
			}
			static := true
			for _, r := range refs {
				if r.Scope != ScopeParams && r.Scope != ScopeTrigger {
					static = false
				}
			}
			if !static {
				continue
			}
			ref, err := Expand(in.Dataset, sc)
			if err != nil {
				return nil, errdefs.Invalid("step %s, input %s: %s", st.Name, in.Name, errdefs.Message(err))
			}
			pinned, _, err := s.resolveDataset(ctx, ref)
			if err != nil {
				return nil, errdefs.Invalid("step %s, input %s: %s", st.Name, in.Name, errdefs.Message(err))
			}
			out[st.Name+"/"+in.Name] = pinned
		}
	}
	return out, nil
}

// resolveDataset returns "name@N" and the version's digest for a
// reference ("name", "name@latest", "name@3", "dataset:name@3").
func (s *Service) resolveDataset(ctx context.Context, ref string) (string, string, error) {
	ref = strings.TrimPrefix(ref, "dataset:")
	vr, err := dataset.ParseVersionRef(ref)
	if err != nil {
		return "", "", err
	}
	if s.o.Datasets == nil {
		return "", "", errdefs.Invalid("this server has no dataset store")
	}
	v, err := s.o.Datasets.GetVersion(ctx, vr)
	if err != nil {
		return "", "", err
	}
	return v.Ref().String(), v.Digest.String(), nil
}
