package tune

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
)

// StudyOptions configure RunStudy.
type StudyOptions struct {
	Tracking *MLflow
	// TrackingURI is given to trials (default Tracking.URL).
	TrackingURI string
	// Seed is used when the document sets none (0: a random one; the seed
	// used is in the result and on the parent run).
	Seed      int64
	BaseEnv   []string
	Poll      time.Duration
	KillGrace time.Duration
	Output    func(trial int) (io.WriteCloser, error)
	OnTrial   func(FrozenTrial)
	Logger    *slog.Logger
}

// StudyResult is a tracked study's outcome.
type StudyResult struct {
	Study        string `json:"study"`
	Experiment   string `json:"experiment"`
	ExperimentID string `json:"experiment_id"`
	ParentRunID  string `json:"parent_run_id"`
	Metric       string `json:"metric"`
	Result
}

// RunStudy runs a command study: its parent run in spec.experiment (tags
// kiln.study and the sampler's settings), one child run per trial (see
// CommandObjective), and at the end the best trial on the parent run
// (tags kiln.study.best_run, kiln.study.best_value, kiln.study.best_trial,
// and the objective metric with the best value). The parent ends
// FINISHED when a trial completed, FAILED when none did, KILLED when
// interrupted.
func RunStudy(ctx context.Context, s *Study, o StudyOptions) (*StudyResult, error) {
	if o.Tracking == nil {
		return nil, errdefs.Invalid("no tracking server")
	}
	seed := o.Seed
	if seed == 0 && s.Spec.Sampler.Seed == nil {
		seed = rand.Int64N(1 << 31)
	}
	opt, err := s.Optimizer(seed)
	if err != nil {
		return nil, err
	}
	expID, err := o.Tracking.ExperimentID(ctx, s.Spec.Experiment)
	if err != nil {
		return nil, fmt.Errorf("experiment %q: %w", s.Spec.Experiment, err)
	}
	sp := &s.Spec
	name := s.Metadata.Name + "-" + time.Now().UTC().Format("20060102-150405")
	parent, err := o.Tracking.CreateRun(ctx, expID, name, map[string]string{TagStudy: s.Metadata.Name})
	if err != nil {
		return nil, fmt.Errorf("creating the study's run: %w", err)
	}
	params := map[string]string{
		"sampler": sp.Sampler.Type, "pruner": sp.Pruner.Type, "seed": strconv.FormatInt(opt.Seed, 10),
		"trials": strconv.Itoa(opt.Trials), "parallelism": strconv.Itoa(opt.Parallelism),
		"objective": sp.Objective.Metric, "direction": string(sp.Objective.Direction),
	}
	if sp.Sampler.Type == "tpe" {
		params["n_startup_trials"] = strconv.Itoa(*sp.Sampler.NStartupTrials)
		params["n_ei_candidates"] = strconv.Itoa(sp.Sampler.NEICandidates)
	}
	if err := o.Tracking.LogBatch(ctx, parent, params, nil, nil); err != nil {
		return nil, fmt.Errorf("logging the study's settings: %w", err)
	}
	obj := &CommandObjective{Tracking: o.Tracking, ExperimentID: expID, ParentRunID: parent, Study: s.Metadata.Name,
		Metric: sp.Objective.Metric, Command: sp.Command, Env: sp.Env, WorkingDir: sp.WorkingDir, BaseEnv: o.BaseEnv,
		TrackingURI: o.TrackingURI, Poll: o.Poll, KillGrace: o.KillGrace, Output: o.Output}
	opt.OnTrial, opt.Logger = o.OnTrial, o.Logger
	res, runErr := opt.Optimize(ctx, obj)
	out := &StudyResult{Study: s.Metadata.Name, Experiment: sp.Experiment, ExperimentID: expID, ParentRunID: parent, Metric: sp.Objective.Metric}
	if res != nil {
		out.Result = *res
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	tags := map[string]string{}
	for st, n := range out.Counts {
		tags["kiln.study.trials."+string(st)] = strconv.Itoa(n)
	}
	var metrics []Metric
	if b := out.Best; b != nil {
		tags[TagBestRun] = b.RunID
		tags[TagBestValue] = strconv.FormatFloat(*b.Value, 'g', -1, 64)
		tags[TagBestTrial] = strconv.Itoa(b.Number)
		metrics = append(metrics, Metric{Key: sp.Objective.Metric, Value: *b.Value, Timestamp: time.Now().UnixMilli()})
	}
	if out.Stopped != "" {
		tags["kiln.study.stopped"] = out.Stopped
	}
	if err := o.Tracking.LogBatch(fctx, parent, nil, tags, metrics); err != nil && runErr == nil {
		runErr = fmt.Errorf("recording the best trial: %w", err)
	}
	status := RunFinished
	switch {
	case ctx.Err() != nil:
		status = RunKilled
	case out.Best == nil:
		status = RunFailed
	}
	if err := o.Tracking.UpdateRun(fctx, parent, status); err != nil && runErr == nil {
		runErr = err
	}
	return out, runErr
}

// RunInfo is what ShowStudy reads of a run.
type RunInfo struct {
	Info struct {
		RunID        string     `json:"run_id"`
		ExperimentID string     `json:"experiment_id"`
		RunName      string     `json:"run_name"`
		Status       string     `json:"status"`
		StartTime    flexNumber `json:"start_time"`
		EndTime      flexNumber `json:"end_time"`
	} `json:"info"`
	Data struct {
		Metrics []struct {
			Key   string     `json:"key"`
			Value flexNumber `json:"value"`
			Step  flexNumber `json:"step"`
		} `json:"metrics"`
		Params []kv `json:"params"`
		Tags   []kv `json:"tags"`
	} `json:"data"`
}

func (r *RunInfo) tag(k string) string {
	for _, t := range r.Data.Tags {
		if t.Key == k {
			return t.Value
		}
	}
	return ""
}

func (r *RunInfo) param(k string) string {
	for _, t := range r.Data.Params {
		if t.Key == k {
			return t.Value
		}
	}
	return ""
}

// GetRun returns a run.
func (c *MLflow) GetRun(ctx context.Context, runID string) (*RunInfo, error) {
	var got struct {
		Run RunInfo `json:"run"`
	}
	if err := c.call(ctx, "GET", "runs/get", url.Values{"run_id": {runID}}, nil, &got); err != nil {
		return nil, err
	}
	return &got.Run, nil
}

// ChildRuns returns the runs of the experiment whose mlflow.parentRunId
// is parent (all pages).
func (c *MLflow) ChildRuns(ctx context.Context, experimentID, parent string) ([]RunInfo, error) {
	var out []RunInfo
	token := ""
	for page := 0; page < 1000; page++ {
		in := map[string]any{"experiment_ids": []string{experimentID}, "max_results": 1000,
			"filter": fmt.Sprintf("tags.`%s` = '%s'", TagParentRun, parent)}
		if token != "" {
			in["page_token"] = token
		}
		var got struct {
			Runs          []RunInfo `json:"runs"`
			NextPageToken string    `json:"next_page_token"`
		}
		if err := c.call(ctx, "POST", "runs/search", nil, in, &got); err != nil {
			return nil, err
		}
		out = append(out, got.Runs...)
		if got.NextPageToken == "" || len(got.Runs) == 0 {
			break
		}
		token = got.NextPageToken
	}
	return out, nil
}

// ShowStudy reads a tracked study back from its parent run: the trials
// from the child runs (their params, state tag and the objective metric's
// latest value), the best as the parent's tags name it.
func ShowStudy(ctx context.Context, c *MLflow, parentRunID string) (*StudyResult, error) {
	p, err := c.GetRun(ctx, parentRunID)
	if err != nil {
		return nil, err
	}
	study := p.tag(TagStudy)
	if study == "" {
		return nil, errdefs.Invalid("run %s is not a study's parent run (it has no %s tag)", parentRunID, TagStudy)
	}
	metric := p.param("objective")
	out := &StudyResult{Study: study, ExperimentID: p.Info.ExperimentID, ParentRunID: parentRunID, Metric: metric}
	out.Direction = Direction(p.param("direction"))
	out.Seed, _ = strconv.ParseInt(p.param("seed"), 10, 64)
	out.Stopped = p.tag("kiln.study.stopped")
	out.Counts = map[State]int{}
	if p.Info.EndTime > 0 {
		out.Duration = time.Duration(int64(p.Info.EndTime)-int64(p.Info.StartTime)) * time.Millisecond
	}
	children, err := c.ChildRuns(ctx, p.Info.ExperimentID, parentRunID)
	if err != nil {
		return nil, err
	}
	for i := range children {
		r := &children[i]
		n, err := strconv.Atoi(r.tag(TagTrial))
		if err != nil {
			continue
		}
		ft := FrozenTrial{Number: n, State: State(r.tag(TagTrialState)), RunID: r.Info.RunID, Params: Params{},
			Start: time.UnixMilli(int64(r.Info.StartTime))}
		if r.Info.EndTime > 0 {
			ft.End = time.UnixMilli(int64(r.Info.EndTime))
		}
		for _, kv := range r.Data.Params {
			ft.Params[kv.Key] = kv.Value
		}
		for _, m := range r.Data.Metrics {
			if m.Key == metric && ft.State == Completed {
				v := float64(m.Value)
				ft.Value = &v
			}
		}
		out.Counts[ft.State]++
		out.Trials = append(out.Trials, ft)
	}
	sort.Slice(out.Trials, func(i, j int) bool { return out.Trials[i].Number < out.Trials[j].Number })
	best := p.tag(TagBestRun)
	for i := range out.Trials {
		if best != "" && out.Trials[i].RunID == best {
			out.Best = &out.Trials[i]
		}
	}
	return out, nil
}
