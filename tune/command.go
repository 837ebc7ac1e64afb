package tune

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
)

// Tags Kiln sets on study and trial runs.
const (
	TagParentRun  = "mlflow.parentRunId"
	TagRunName    = "mlflow.runName"
	TagStudy      = "kiln.study"
	TagTrial      = "kiln.trial"
	TagTrialState = "kiln.trial.state"
	TagBestRun    = "kiln.study.best_run"
	TagBestValue  = "kiln.study.best_value"
	TagBestTrial  = "kiln.study.best_trial"
)

// CommandObjective runs each trial as a command, tracked as a child run
// of a study's parent run.
//
// The trial's run gets the tags mlflow.parentRunId, kiln.study,
// kiln.trial (its number) and kiln.trial.state, and the trial's
// parameters as params. The command sees MLFLOW_TRACKING_URI,
// MLFLOW_RUN_ID (so mlflow.start_run() resumes the trial's run),
// MLFLOW_EXPERIMENT_ID, KILN_STUDY, KILN_TRIAL and KILN_PARAM_<NAME> for
// each active parameter (upper-cased, other characters as _), and
// {{params.NAME}}, {{trial.number}}, {{trial.run_id}} and {{study.name}}
// are replaced in its arguments, Env values and WorkingDir (an inactive
// parameter by "").
//
// While it runs, the history of Metric in its run is read every Poll:
// each step's value is an intermediate value for the pruner. A pruned
// trial's process group gets SIGTERM (SIGKILL after KillGrace) and its
// run ends KILLED with kiln.trial.state=pruned. After exit 0, the
// metric's last value (greatest step, then latest timestamp) is the
// trial's value; a trial that logged none, or exited otherwise, fails.
type CommandObjective struct {
	Tracking     *MLflow
	ExperimentID string
	ParentRunID  string
	Study        string
	Metric       string
	Command      []string
	Env          map[string]string
	WorkingDir   string
	// BaseEnv is the environment the trial's is added to (default
	// os.Environ()).
	BaseEnv []string
	// TrackingURI is the server trials log to (default Tracking.URL).
	TrackingURI string
	Poll        time.Duration // default 1s
	KillGrace   time.Duration // default 5s
	// Output, if set, gets each trial's standard output and error.
	Output func(trial int) (io.WriteCloser, error)
}

// tailBytes of a failed trial's output go into its error.
const tailBytes = 2048

// Run implements Objective.
func (c *CommandObjective) Run(ctx context.Context, t *Trial) (float64, error) {
	params := t.Params()
	name := fmt.Sprintf("%s-trial-%d", c.Study, t.Number())
	runID, err := c.Tracking.CreateRun(ctx, c.ExperimentID, name, map[string]string{
		TagParentRun: c.ParentRunID, TagStudy: c.Study, TagTrial: strconv.Itoa(t.Number()), TagTrialState: string(Running),
	})
	if err != nil {
		return 0, fmt.Errorf("creating the trial's run: %w", err)
	}
	t.SetRunID(runID)
	ps := make(map[string]string, len(params))
	for k := range params {
		ps[k] = params.String(k)
	}
	if err := c.Tracking.LogBatch(ctx, runID, ps, nil, nil); err != nil {
		c.finish(runID, RunFailed, Failed)
		return 0, fmt.Errorf("logging the trial's params: %w", err)
	}
	value, state, err := c.run(ctx, t, runID)
	status := map[State]string{Completed: RunFinished, Pruned: RunKilled, Failed: RunFailed}[state]
	if ctx.Err() != nil && state == Failed {
		status = RunKilled
	}
	c.finish(runID, status, state)
	return value, err
}

// finish ends the trial's run, even when ctx has ended.
func (c *CommandObjective) finish(runID, status string, state State) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_ = c.Tracking.SetTag(ctx, runID, TagTrialState, string(state))
	_ = c.Tracking.UpdateRun(ctx, runID, status)
}

// expand substitutes the templates of s.
func (c *CommandObjective) expand(s string, t *Trial, runID string) string {
	return templateRE.ReplaceAllStringFunc(s, func(m string) string {
		ref := strings.TrimSpace(m[2 : len(m)-2])
		switch {
		case strings.HasPrefix(ref, "params."):
			return t.Params().String(strings.TrimPrefix(ref, "params."))
		case ref == "trial.number":
			return strconv.Itoa(t.Number())
		case ref == "trial.run_id":
			return runID
		case ref == "study.name":
			return c.Study
		}
		return m
	})
}

// EnvName is the environment variable of parameter name: KILN_PARAM_ and
// the name upper-cased, other characters than letters and digits as _.
func EnvName(name string) string {
	return "KILN_PARAM_" + strings.Map(func(r rune) rune {
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
			return unicode.ToUpper(r)
		}
		return '_'
	}, name)
}

func (c *CommandObjective) run(ctx context.Context, t *Trial, runID string) (float64, State, error) {
	if len(c.Command) == 0 {
		return 0, Failed, errors.New("no command")
	}
	args := make([]string, len(c.Command))
	for i, a := range c.Command {
		args[i] = c.expand(a, t, runID)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = c.expand(c.WorkingDir, t, runID)
	env := c.BaseEnv
	if env == nil {
		env = os.Environ()
	}
	env = append([]string(nil), env...)
	keys := make([]string, 0, len(c.Env))
	for k := range c.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+c.expand(c.Env[k], t, runID))
	}
	uri := c.TrackingURI
	if uri == "" {
		uri = c.Tracking.URL
	}
	env = append(env, "MLFLOW_TRACKING_URI="+uri, "MLFLOW_REGISTRY_URI="+uri, "MLFLOW_RUN_ID="+runID, "MLFLOW_EXPERIMENT_ID="+c.ExperimentID,
		"KILN_STUDY="+c.Study, "KILN_TRIAL="+strconv.Itoa(t.Number()))
	for _, p := range sortedKeys(t.Params()) {
		env = append(env, EnvName(p)+"="+t.Params().String(p))
	}
	cmd.Env = env
	tail := &tailWriter{max: tailBytes}
	var out io.Writer = tail
	if c.Output != nil {
		w, err := c.Output(t.Number())
		if err != nil {
			return 0, Failed, err
		}
		defer w.Close()
		out = io.MultiWriter(tail, w)
	}
	cmd.Stdout, cmd.Stderr = out, out
	ownGroup(cmd)
	if err := cmd.Start(); err != nil {
		return 0, Failed, fmt.Errorf("starting %s: %w", args[0], err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	poll := c.Poll
	if poll <= 0 {
		poll = time.Second
	}
	grace := c.KillGrace
	if grace <= 0 {
		grace = 5 * time.Second
	}
	kill := func() error {
		signalGroup(cmd, true)
		select {
		case err := <-exited:
			return err
		case <-time.After(grace):
			signalGroup(cmd, false)
			return <-exited
		}
	}
	h := &historyReader{c: c, runID: runID, t: t}
	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			kill()
			return 0, Failed, fmt.Errorf("interrupted: %w", ctx.Err())
		case werr := <-exited:
			// Group members left behind by the trial go too.
			signalGroup(cmd, false)
			if werr != nil {
				h.read(ctx, false) // the intermediate values, for the record
				return 0, Failed, fmt.Errorf("the command failed: %v%s", werr, tail.suffix())
			}
			if _, err := h.read(ctx, false); err != nil {
				return 0, Failed, fmt.Errorf("reading metric %q: %w", c.Metric, err)
			}
			if !h.any {
				return 0, Failed, fmt.Errorf("the command logged no metric %q to its run%s", c.Metric, tail.suffix())
			}
			return h.last, Completed, nil
		case <-ticker.C:
			prune, err := h.read(ctx, true)
			if err != nil {
				continue // the server may be back at the next poll
			}
			if prune {
				kill()
				return 0, Pruned, ErrPruned
			}
		}
	}
}

// historyReader feeds a trial's metric history to its Trial.
type historyReader struct {
	c        *CommandObjective
	runID    string
	t        *Trial
	lastStep int64
	lastTS   int64
	any      bool
	last     float64
}

// read fetches the history and reports what is new, asking the pruner
// after each new step when prune is set.
func (h *historyReader) read(ctx context.Context, prune bool) (bool, error) {
	ms, err := h.c.Tracking.MetricHistory(ctx, h.runID, h.c.Metric)
	if err != nil {
		return false, err
	}
	sort.SliceStable(ms, func(i, j int) bool {
		if ms[i].Step != ms[j].Step {
			return ms[i].Step < ms[j].Step
		}
		return ms[i].Timestamp < ms[j].Timestamp
	})
	for i, m := range ms {
		if h.any && (m.Step < h.lastStep || (m.Step == h.lastStep && m.Timestamp <= h.lastTS)) {
			continue
		}
		h.any, h.lastStep, h.lastTS, h.last = true, m.Step, m.Timestamp, m.Value
		h.t.Report(m.Step, m.Value)
		endOfStep := i == len(ms)-1 || ms[i+1].Step != m.Step
		if prune && endOfStep && h.t.ShouldPrune() {
			return true, nil
		}
	}
	return false, nil
}

func sortedKeys(p Params) []string {
	ks := make([]string, 0, len(p))
	for k := range p {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// tailWriter keeps the last max bytes written.
type tailWriter struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if len(w.buf) > w.max {
		w.buf = append([]byte(nil), w.buf[len(w.buf)-w.max:]...)
	}
	return len(p), nil
}

// suffix is the output's tail for an error message ("" if none).
func (w *tailWriter) suffix() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := strings.TrimSpace(strings.ToValidUTF8(string(w.buf), "?"))
	if s == "" {
		return ""
	}
	return "; output ends with:\n" + s
}
