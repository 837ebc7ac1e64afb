package pipeline

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/tracking"
)

// Tags the engine sets on tracking runs.
const (
	TagParentRun    = "mlflow.parentRunId"
	TagPipeline     = "kiln.pipeline"
	TagPipelineRun  = "kiln.pipeline.run"
	TagCause        = "kiln.pipeline.cause"
	TagStep         = "kiln.step"
	TagAttempt      = "kiln.attempt"
	TagCache        = "kiln.cache"
	TagCacheSource  = "kiln.cache.source_run"
	maxTrackedParam = 6000
)

type metricOutput struct{ name, value string }

// experimentFor returns the id of the run's experiment, created if absent.
func (s *Service) experimentFor(ctx context.Context, name string) (string, error) {
	exp, err := s.o.Tracking.GetExperimentByName(ctx, name)
	if err == nil {
		return exp.ID, nil
	}
	if !errors.Is(err, errdefs.ErrNotFound) {
		return "", err
	}
	id, err := s.o.Tracking.CreateExperiment(ctx, name, "", nil)
	if err == nil {
		return id, nil
	}
	if exp, gerr := s.o.Tracking.GetExperimentByName(ctx, name); gerr == nil {
		return exp.ID, nil // created concurrently
	}
	return "", err
}

// startTracking creates the parent run of a pipeline run, with the run's
// parameters as params.
func (s *Service) startTracking(ctx context.Context, pipeline string, spec *Spec, runID string, params map[string]string, req RunRequest, now time.Time) (string, string, error) {
	if s.o.Tracking == nil {
		return "", "", nil
	}
	expName := spec.Experiment
	if expName == "" {
		expName = "pipelines/" + pipeline
	}
	expID, err := s.experimentFor(ctx, expName)
	if err != nil {
		return "", "", errdefs.Invalid("the tracking experiment %q of the run: %s", expName, errdefs.Message(err))
	}
	cause := "manual"
	if req.Cause != nil {
		cause = req.Cause.Type
		if req.Cause.Name != "" {
			cause += "/" + req.Cause.Name
		}
	}
	run, err := s.o.Tracking.CreateRun(ctx, tracking.CreateRunInput{ExperimentID: expID, UserID: req.Actor,
		RunName: pipeline + "-" + now.UTC().Format("20060102-150405"), StartTime: now.UnixMilli(),
		Tags: []tracking.KV{{Key: TagPipeline, Value: pipeline}, {Key: TagPipelineRun, Value: runID}, {Key: TagCause, Value: cause}}})
	if err != nil {
		return "", "", err
	}
	var kvs []tracking.KV
	for _, k := range sortedKeys(params) {
		kvs = append(kvs, tracking.KV{Key: k, Value: clipLen(params[k], maxTrackedParam-3)})
	}
	for i := 0; i < len(kvs); i += 100 {
		if err := s.o.Tracking.LogBatch(ctx, run.Info.RunID, nil, kvs[i:min(i+100, len(kvs))], nil); err != nil {
			s.log.Warn("logging a pipeline run's parameters failed", "run", runID, "err", err)
			break
		}
	}
	return run.Info.RunID, expID, nil
}

func (s *Service) discardTracking(ctx context.Context, id string) {
	if s.o.Tracking == nil || id == "" {
		return
	}
	if err := s.o.Tracking.DeleteRun(context.WithoutCancel(ctx), id); err != nil {
		s.log.Warn("deleting an unused tracking run failed", "tracking_run", id, "err", err)
	}
}

func trackingStatus(state string) string {
	switch state {
	case StateSucceeded, StateCached, StateSkipped:
		return "FINISHED"
	case StateCancelled:
		return "KILLED"
	}
	return "FAILED"
}

// endTracking ends a parent run as the pipeline run ended.
func (s *Service) endTracking(ctx context.Context, id, state string) {
	if s.o.Tracking == nil || id == "" || s.isCrashed() {
		return
	}
	end := s.nowMS()
	if _, err := s.o.Tracking.UpdateRun(ctx, tracking.UpdateRunInput{RunID: id, Status: trackingStatus(state), EndTime: &end}); err != nil {
		s.log.Warn("ending a pipeline's tracking run failed", "tracking_run", id, "err", err)
	}
}

func (s *Service) childTags(ri *runInfo, step string, attempt int) []tracking.KV {
	return []tracking.KV{{Key: TagParentRun, Value: ri.trackingRunID}, {Key: TagPipeline, Value: ri.pipeline},
		{Key: TagPipelineRun, Value: ri.id}, {Key: TagStep, Value: step}, {Key: TagAttempt, Value: strconv.Itoa(attempt)}}
}

// startChild creates the child run of a step attempt ("" without a
// tracking store or parent run).
func (s *Service) startChild(ctx context.Context, ri *runInfo, step string, attempt int) string {
	if s.o.Tracking == nil || ri.trackingRunID == "" || s.isCrashed() {
		return ""
	}
	run, err := s.o.Tracking.CreateRun(ctx, tracking.CreateRunInput{ExperimentID: ri.experimentID, RunName: step,
		StartTime: s.nowMS(), Tags: s.childTags(ri, step, attempt)})
	if err != nil {
		s.log.Warn("creating a step's tracking run failed", "run", ri.id, "step", step, "err", err)
		return ""
	}
	return run.Info.RunID
}

// endChild ends a step attempt's child run, logging its metric outputs.
func (s *Service) endChild(ctx context.Context, id, state string, metrics []metricOutput, tags map[string]string) {
	if s.o.Tracking == nil || id == "" || s.isCrashed() {
		return
	}
	now := s.nowMS()
	var ms []tracking.Metric
	for _, m := range metrics {
		v, err := strconv.ParseFloat(strings.TrimSpace(m.value), 64)
		if err != nil {
			continue
		}
		ms = append(ms, tracking.Metric{Key: m.name, Value: v, Timestamp: now})
	}
	var kvs []tracking.KV
	for _, k := range sortedKeys(tags) {
		kvs = append(kvs, tracking.KV{Key: k, Value: tags[k]})
	}
	if len(ms) > 0 || len(kvs) > 0 {
		if err := s.o.Tracking.LogBatch(ctx, id, ms, nil, kvs); err != nil {
			s.log.Warn("logging a step's outputs to its tracking run failed", "tracking_run", id, "err", err)
		}
	}
	if _, err := s.o.Tracking.UpdateRun(ctx, tracking.UpdateRunInput{RunID: id, Status: trackingStatus(state), EndTime: &now}); err != nil {
		s.log.Warn("ending a step's tracking run failed", "tracking_run", id, "err", err)
	}
}

// cachedChild records a step answered from the cache (or reused by a
// resume) as a finished child run tagged kiln.cache=hit.
func (s *Service) cachedChild(ctx context.Context, ri *runInfo, step, sourceRun string, outputs map[string]string, decl []Output) string {
	if s.o.Tracking == nil || ri.trackingRunID == "" || s.isCrashed() {
		return ""
	}
	now := s.nowMS()
	tags := append(s.childTags(ri, step, 0), tracking.KV{Key: TagCache, Value: "hit"}, tracking.KV{Key: TagCacheSource, Value: sourceRun})
	run, err := s.o.Tracking.CreateRun(ctx, tracking.CreateRunInput{ExperimentID: ri.experimentID, RunName: step, StartTime: now, Tags: tags})
	if err != nil {
		s.log.Warn("creating a cached step's tracking run failed", "run", ri.id, "step", step, "err", err)
		return ""
	}
	var metrics []metricOutput
	for _, o := range decl {
		if o.Type == OutputMetric {
			metrics = append(metrics, metricOutput{o.Name, outputs[o.Name]})
		}
	}
	s.endChild(ctx, run.Info.RunID, StateCached, metrics, nil)
	return run.Info.RunID
}

// trackCachedResume gives a step a resumed run reused its child run.
func (s *Service) trackCachedResume(ctx context.Context, ri *runInfo, step, from string) {
	st := ri.spec.Step(step)
	if st == nil {
		return
	}
	outs, err := s.stepStates(ctx, s.db.R, ri.id, []string{step})
	if err != nil {
		return
	}
	id := s.cachedChild(ctx, ri, step, from, outs[step].Outputs, st.Outputs)
	if id == "" {
		return
	}
	if _, err := s.db.W.ExecContext(ctx, s.db.Rebind(`UPDATE pipeline_steps SET tracking_run_id = ? WHERE run_id = ? AND step = ?`), id, ri.id, step); err != nil {
		s.log.Warn("recording a reused step's tracking run failed", "run", ri.id, "step", step, "err", err)
	}
}
