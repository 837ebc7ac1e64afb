package main

// kiln tune: hyperparameter studies (package tune) run against the Kiln
// server's MLflow-compatible tracking, each trial a child run of the
// study's parent run.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/tune"
)

const tuneExample = `# study.yaml
apiVersion: kiln.dev/v1
kind: Study
metadata: {name: rf-search}
spec:
  objective: {metric: val_loss, direction: minimize}
  # One trial. {{params.NAME}} is replaced by the trial's value; the
  # program also sees MLFLOW_TRACKING_URI and MLFLOW_RUN_ID (so that
  # mlflow.start_run() logs to the trial's child run) and KILN_PARAM_<NAME>.
  command: [python, train.py, --lr, "{{params.lr}}", --depth, "{{params.depth}}"]
  parameters:
    - {name: lr, type: float, low: 1e-4, high: 0.1, log: true}
    - {name: depth, type: int, low: 2, high: 12}
    - {name: optimizer, type: categorical, choices: [sgd, adam]}
    - {name: momentum, type: float, low: 0, high: 0.99, when: {optimizer: sgd}}
  sampler: {type: tpe, seed: 7}      # grid, random or tpe (default)
  pruner: {type: median}             # none (default), median or asha
  trials: 50
  parallelism: 4

# train.py logs the objective, with a step for intermediate values that
# the pruner judges:  mlflow.log_metric("val_loss", loss, step=epoch)

kiln tune run -f study.yaml
kiln tune -f study.yaml --parallel 8 --trials 100
kiln tune show rf-search            # the study's latest run
kiln tune show 3f2a… -o json        # a study's parent run id`

// tuneRunFlags are the flags of kiln tune run (and of kiln tune -f).
type tuneRunFlags struct {
	file        string
	trackingURI string
	parallel    int
	trials      int
	seed        int64
	poll        time.Duration
	logDir      string
}

func (f *tuneRunFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVarP(&f.file, "file", "f", "", "the Study document (YAML or JSON; - for standard input)")
	fl.StringVar(&f.trackingURI, "tracking-uri", "", "MLflow tracking server of the study and its trials (default the Kiln server, see --server)")
	fl.IntVar(&f.parallel, "parallel", 0, "trials run at once (overrides spec.parallelism)")
	fl.IntVar(&f.trials, "trials", 0, "number of trials (overrides spec.trials)")
	fl.Int64Var(&f.seed, "seed", 0, "sampler seed when the document sets none (default a random one, reported)")
	fl.DurationVar(&f.poll, "poll", time.Second, "how often a running trial's metric history is read for pruning")
	fl.StringVar(&f.logDir, "log-dir", "", "write each trial's output to DIR/trial-N.log")
}

func newTuneCmd() *cobra.Command {
	var cf clientFlags
	var rf tuneRunFlags
	cmd := &cobra.Command{
		Use:   "tune",
		Short: "Hyperparameter tuning studies (TPE, random, grid; median and ASHA pruning)",
		Long: `Hyperparameter tuning: a Study document names a command that runs one
trial, the parameters to search, a sampler (grid, random, or TPE with
Optuna's defaults) and a pruner (median stopping or asynchronous successive
halving). Each trial is a child run of the study's parent run on the Kiln
server's MLflow tracking; the trial logs the objective metric to it (with
steps for intermediate values), and a pruned trial's process is stopped.

"kiln tune -f study.yaml" is "kiln tune run -f study.yaml". See docs/tuning.md.`,
		Example: tuneExample,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if rf.file == "" {
				return cmd.Help()
			}
			return runTuneStudy(cmd, &cf, &rf)
		},
	}
	cf.register(cmd)
	rf.register(cmd)
	run := &cobra.Command{
		Use:     "run -f study.yaml",
		Short:   "Run a study: trials as child runs, progress per trial, the best trial at the end",
		Example: tuneExample,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTuneStudy(cmd, &cf, &rf)
		},
	}
	rf.register(run)
	run.MarkFlagRequired("file")
	cmd.AddCommand(run, newTuneShowCmd(&cf))
	return cmd
}

// tracking returns the MLflow client of the study: uri, else the Kiln
// server of the client flags.
func tuneTracking(cf *clientFlags, uri string) (*tune.MLflow, error) {
	if uri == "" {
		uri = serverURL(cf.server, os.Getenv)
	}
	m, err := tune.NewMLflow(uri)
	if err != nil {
		return nil, err
	}
	m.Token = os.Getenv("KILN_TOKEN")
	m.UserAgent = "kiln/" + version
	return m, nil
}

func readStudy(cmd *cobra.Command, file string) (*tune.Study, error) {
	var data []byte
	var err error
	if file == "-" {
		data, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), tune.MaxSpecBytes+1))
	} else {
		data, err = os.ReadFile(file)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the study: %w", err)
	}
	s, err := tune.ParseStudy(data, "")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return s, nil
}

func runTuneStudy(cmd *cobra.Command, cf *clientFlags, rf *tuneRunFlags) error {
	if err := cf.checkOutput(); err != nil {
		return err
	}
	s, err := readStudy(cmd, rf.file)
	if err != nil {
		return err
	}
	fl := cmd.Flags()
	if fl.Changed("parallel") {
		s.Spec.Parallelism = rf.parallel
	}
	if fl.Changed("trials") {
		s.Spec.Trials = rf.trials
	}
	if err := s.Validate(); err != nil {
		return fmt.Errorf("%s with the flags: %w", rf.file, err)
	}
	m, err := tuneTracking(cf, rf.trackingURI)
	if err != nil {
		return err
	}
	opts := tune.StudyOptions{Tracking: m, Seed: rf.seed, Poll: rf.poll}
	if tok := os.Getenv("KILN_TOKEN"); tok != "" && os.Getenv("MLFLOW_TRACKING_TOKEN") == "" {
		opts.BaseEnv = append(os.Environ(), "MLFLOW_TRACKING_TOKEN="+tok)
	}
	if rf.logDir != "" {
		if err := os.MkdirAll(rf.logDir, 0o755); err != nil {
			return fmt.Errorf("--log-dir: %w", err)
		}
		opts.Output = func(n int) (io.WriteCloser, error) {
			return os.Create(filepath.Join(rf.logDir, fmt.Sprintf("trial-%d.log", n)))
		}
	}
	errOut := cmd.ErrOrStderr()
	sp := &s.Spec
	total := "until " + sp.Timeout.D().String()
	if sp.Trials > 0 {
		total = plural(sp.Trials, "trial")
	} else if sp.Sampler.Type == "grid" {
		total = "the whole grid"
	}
	fmt.Fprintf(errOut, "study %s: %s, %d at a time, %s sampler, %s pruner; tracking %s, experiment %q\n",
		s.Metadata.Name, total, sp.Parallelism, sp.Sampler.Type, sp.Pruner.Type, m.URL, sp.Experiment)
	pr := &tuneProgress{w: errOut, dir: sp.Objective.Direction, total: sp.Trials}
	opts.OnTrial = pr.trial
	res, err := tune.RunStudy(cmd.Context(), s, opts)
	if res == nil {
		return err
	}
	if perr := cf.print(cmd.OutOrStdout(), res, func(w io.Writer) error { return studyTable(w, res, false) }); perr != nil && err == nil {
		err = perr
	}
	if err != nil {
		return err
	}
	if cmd.Context().Err() != nil {
		return exitError{code: 130, err: errors.New("interrupted")}
	}
	if res.Best == nil {
		return exitError{code: 1, err: fmt.Errorf("no trial of study %s completed (parent run %s)", res.Study, res.ParentRunID)}
	}
	return nil
}

// tuneProgress prints a line per finished trial, with the best so far.
type tuneProgress struct {
	w     io.Writer
	dir   tune.Direction
	total int
	mu    sync.Mutex
	done  int
	best  *tune.FrozenTrial
}

func (p *tuneProgress) trial(t tune.FrozenTrial) {
	if t.State == tune.Running {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	if t.State == tune.Completed && (p.best == nil || (p.dir == tune.Maximize) == (*t.Value > *p.best.Value)) {
		tt := t
		p.best = &tt
	}
	n := strconv.Itoa(p.done)
	if p.total > 0 {
		n += "/" + strconv.Itoa(p.total)
	}
	value := "-"
	switch {
	case t.Value != nil:
		value = formatValue(*t.Value)
	case t.State == tune.Pruned:
		if len(t.Intermediate) > 0 {
			last := t.Intermediate[len(t.Intermediate)-1]
			value = fmt.Sprintf("%s@step %d", formatValue(last.Value), last.Step)
		}
	}
	best := "-"
	if p.best != nil {
		best = fmt.Sprintf("%s (trial %d)", formatValue(*p.best.Value), p.best.Number)
	}
	line := fmt.Sprintf("[%s] trial %d %s  value %s  best %s  %s  %s", n, t.Number, t.State, value, best,
		formatParams(t.Params), t.End.Sub(t.Start).Round(10*time.Millisecond))
	if t.State == tune.Failed && t.Error != "" {
		line += "\n    " + ellipsis(t.Error, 300)
	}
	fmt.Fprintln(p.w, line)
}

func formatValue(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Sprint(v)
	}
	return strconv.FormatFloat(v, 'g', 6, 64)
}

func formatParams(p tune.Params) string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + paramValue(p, k)
	}
	return strings.Join(parts, " ")
}

// paramValue formats a parameter for people: floats to 5 digits.
func paramValue(p tune.Params, k string) string {
	v := p.String(k)
	if f, err := strconv.ParseFloat(v, 64); err == nil && strings.ContainsAny(v, ".eE") {
		v = strconv.FormatFloat(f, 'g', 5, 64)
	}
	return ellipsis(v, 24)
}

// studyTable writes a study for people: a summary, then (with trials) a
// row per trial.
func studyTable(w io.Writer, r *tune.StudyResult, trials bool) error {
	fmt.Fprintf(w, "study\t%s\n", r.Study)
	fmt.Fprintf(w, "parent run\t%s\n", r.ParentRunID)
	exp := r.ExperimentID
	if r.Experiment != "" {
		exp = fmt.Sprintf("%s (%s)", r.Experiment, r.ExperimentID)
	}
	fmt.Fprintf(w, "experiment\t%s\n", exp)
	fmt.Fprintf(w, "objective\t%s (%s)\n", r.Metric, r.Direction)
	fmt.Fprintf(w, "seed\t%d\n", r.Seed)
	var counts []string
	for _, st := range []tune.State{tune.Completed, tune.Pruned, tune.Failed, tune.Running} {
		if n := r.Counts[st]; n > 0 {
			counts = append(counts, fmt.Sprintf("%d %s", n, st))
		}
	}
	summary := strconv.Itoa(len(r.Trials))
	if len(counts) > 0 {
		summary += " (" + strings.Join(counts, ", ") + ")"
	}
	if r.Duration > 0 {
		summary += " in " + r.Duration.Round(10*time.Millisecond).String()
	}
	if r.Stopped != "" {
		summary += " (stopped: " + r.Stopped + ")"
	}
	fmt.Fprintf(w, "trials\t%s\n", summary)
	if b := r.Best; b != nil {
		fmt.Fprintf(w, "best trial\t%d: %s = %s\n", b.Number, r.Metric, formatValue(*b.Value))
		fmt.Fprintf(w, "best params\t%s\n", formatParams(b.Params))
		fmt.Fprintf(w, "best run\t%s\n", b.RunID)
	} else {
		fmt.Fprintf(w, "best trial\t- (none completed)\n")
	}
	if !trials || len(r.Trials) == 0 {
		return nil
	}
	names := map[string]bool{}
	for _, t := range r.Trials {
		for k := range t.Params {
			names[k] = true
		}
	}
	cols := make([]string, 0, len(names))
	for k := range names {
		cols = append(cols, k)
	}
	sort.Strings(cols)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "TRIAL\tSTATE\tVALUE\t%s\tRUN\n", strings.ToUpper(strings.Join(cols, "\t")))
	for _, t := range r.Trials {
		value := "-"
		if t.Value != nil {
			value = formatValue(*t.Value)
		}
		mark := ""
		if r.Best != nil && t.Number == r.Best.Number {
			mark = " *"
		}
		row := []string{strconv.Itoa(t.Number) + mark, string(t.State), value}
		for _, c := range cols {
			v := "-"
			if _, ok := t.Params[c]; ok {
				v = paramValue(t.Params, c)
			}
			row = append(row, v)
		}
		row = append(row, t.RunID)
		fmt.Fprintln(w, strings.Join(row, "\t"))
	}
	return nil
}

func newTuneShowCmd(cf *clientFlags) *cobra.Command {
	var trackingURI, experiment string
	cmd := &cobra.Command{
		Use:   "show STUDY",
		Short: "Show a study's trials and its best trial (STUDY: a study name, its latest run, or a parent run id)",
		Long: `Show a tracked study: its settings, every trial (state, value, parameters,
run) and the best trial. STUDY is a parent run id, or a study name, which
shows the study's latest parent run in the experiment studies/<name> (or
--experiment).`,
		Example: "  kiln tune show rf-search\n  kiln tune show 3f2a9c0e5b7d4e1a8c6b2d0f9e7a5c3b -o yaml",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cf.checkOutput(); err != nil {
				return err
			}
			m, err := tuneTracking(cf, trackingURI)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			parent, exp, err := resolveStudy(ctx, m, args[0], experiment)
			if err != nil {
				return err
			}
			res, err := tune.ShowStudy(ctx, m, parent)
			if err != nil {
				return err
			}
			res.Experiment = exp
			return cf.print(cmd.OutOrStdout(), res, func(w io.Writer) error { return studyTable(w, res, true) })
		},
	}
	cmd.Flags().StringVar(&trackingURI, "tracking-uri", "", "MLflow tracking server (default the Kiln server, see --server)")
	cmd.Flags().StringVar(&experiment, "experiment", "", "the experiment to look a study name up in (default studies/<name>)")
	return cmd
}

// resolveStudy returns the parent run id of arg (a parent run id, or a
// study name: its latest parent run) and the experiment's name when it
// was looked up by name.
func resolveStudy(ctx context.Context, m *tune.MLflow, arg, experiment string) (string, string, error) {
	if experiment == "" {
		_, err := m.GetRun(ctx, arg)
		switch {
		case err == nil:
			return arg, "", nil
		case !errors.Is(err, errdefs.ErrNotFound):
			return "", "", err
		}
		if tune.ValidateName(arg) != nil {
			return "", "", errdefs.NotFound("no run %q, and it is no study name", arg)
		}
		experiment = "studies/" + arg
	}
	var exp struct {
		Experiment struct {
			ID string `json:"experiment_id"`
		} `json:"experiment"`
	}
	if err := trackingCall(ctx, m, "GET", "experiments/get-by-name?experiment_name="+url.QueryEscape(experiment), nil, &exp); err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			return "", "", errdefs.NotFound("no run %q and no experiment %q: name a study's parent run or a study that has run", arg, experiment)
		}
		return "", "", err
	}
	in := map[string]any{"experiment_ids": []string{exp.Experiment.ID}, "max_results": 1000,
		"filter":   fmt.Sprintf("tags.`%s` = '%s'", tune.TagStudy, strings.ReplaceAll(arg, "'", "")),
		"order_by": []string{"attributes.start_time DESC"}}
	var got struct {
		Runs []tune.RunInfo `json:"runs"`
	}
	if err := trackingCall(ctx, m, "POST", "runs/search", in, &got); err != nil {
		return "", "", err
	}
	var latest *tune.RunInfo
	for i := range got.Runs {
		r := &got.Runs[i]
		if hasTag(r, tune.TagTrial) || hasTag(r, tune.TagParentRun) {
			continue
		}
		if latest == nil || r.Info.StartTime > latest.Info.StartTime {
			latest = r
		}
	}
	if latest == nil {
		return "", "", errdefs.NotFound("experiment %q has no run of study %q", experiment, arg)
	}
	return latest.Info.RunID, experiment, nil
}

func hasTag(r *tune.RunInfo, key string) bool {
	for _, t := range r.Data.Tags {
		if t.Key == key {
			return true
		}
	}
	return false
}

// trackingCall is one MLflow REST call with m's address and token (for
// what tune.MLflow has no method for: lookups that must not create).
func trackingCall(ctx context.Context, m *tune.MLflow, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, m.URL+"/api/2.0/mlflow/"+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", m.UserAgent)
	if m.Token != "" {
		req.Header.Set("Authorization", "Bearer "+m.Token)
	}
	hc := m.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("tracking server %s: %w", m.URL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("tracking server %s: %w", m.URL, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &tune.MLflowError{Status: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Message == "" {
			e.Message = ellipsis(string(data), 200)
		}
		return fmt.Errorf("%s %s: %w", method, strings.SplitN(path, "?", 2)[0], e)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: unexpected answer: %w", method, path, err)
	}
	return nil
}
