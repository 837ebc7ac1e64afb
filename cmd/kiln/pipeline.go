package main

// kiln pipeline: the pipelines a server holds and their runs, from the
// command line: list and show pipelines, start a run (and wait for it,
// or follow every step's log), list runs, a run's per-step status, a
// step's log, cancel, resume, the schedules' and triggers' state, and
// delete. Pipelines are created with kiln apply -f (kind Pipeline).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/api/client"
	"github.com/kiln-ml/kiln/pipeline"
	"github.com/kiln-ml/kiln/pipeline/trigger"
)

// Exit statuses of kiln pipeline run/resume with --wait or --follow.
const (
	pipelineExitFailed = 1 // the run failed or was cancelled
	pipelineExitError  = 2 // the command could not start or watch the run
)

// pipelinePoll is how often a waiting command looks at its run.
var pipelinePoll = 500 * time.Millisecond

func newPipelineCmd() *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{
		Use:     "pipeline",
		Aliases: []string{"pipelines"},
		Short:   "Pipelines: runs, status, logs, cancel, resume, triggers",
		Long: `Run the pipelines a Kiln server holds and watch their runs. A pipeline is a
DAG of steps (commands with parameters, inputs and outputs); create or change
one with kiln apply -f pipeline.yaml (kind Pipeline, see docs/pipelines.md).

Every run is an MLflow parent run with a child run per step. Steps are
leased through the server's database, so with several servers each step
runs once.`,
		Example: `  kiln apply -f churn-retrain.yaml
  kiln pipeline run churn-retrain -p data=churn@7 --follow
  kiln pipeline runs churn-retrain
  kiln pipeline status 01J9Z8Q4Y6W1M7B2C3D4E5F6G7
  kiln pipeline logs 01J9Z8Q4Y6W1M7B2C3D4E5F6G7 train --follow
  kiln pipeline resume 01J9Z8Q4Y6W1M7B2C3D4E5F6G7 --wait`,
	}
	f.register(cmd)
	cmd.AddCommand(newPipelineListCmd(f), newPipelineGetCmd(f), newPipelineRunCmd(f), newPipelineRunsCmd(f),
		newPipelineStatusCmd(f), newPipelineLogsCmd(f), newPipelineCancelCmd(f), newPipelineResumeCmd(f),
		newPipelineTriggersCmd(f), newPipelineDeleteCmd(f))
	return cmd
}

// pipelineActor is who acts: $KILN_ACTOR, else the login name.
func pipelineActor() string { return (&changeFlags{}).options(false).Actor }

// completePipelines completes pipeline names from the server.
func (f *clientFlags) completePipelines(cmd *cobra.Command, toComplete string) ([]string, cobra.ShellCompDirective) {
	c, err := f.client()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := withTimeout(cmd.Context(), 2*time.Second)
	defer cancel()
	ps, err := c.ListPipelines(ctx)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []string
	for _, p := range ps {
		if strings.HasPrefix(p.Metadata.Name, toComplete) {
			names = append(names, p.Metadata.Name)
		}
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

// completePipelineArg completes the first argument with pipeline names.
func (f *clientFlags) completePipelineArg(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return f.completePipelines(cmd, toComplete)
}

// completeRunArg completes the first argument with the ids of the newest
// runs, and (for logs) the second with the run's step names.
func (f *clientFlags) completeRunArg(steps bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		c, err := f.client()
		if err != nil || len(args) > 1 || len(args) == 1 && !steps {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := withTimeout(cmd.Context(), 2*time.Second)
		defer cancel()
		var out []string
		if len(args) == 1 {
			run, err := c.GetPipelineRun(ctx, args[0])
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			for _, s := range run.Steps {
				if strings.HasPrefix(s.Step, toComplete) {
					out = append(out, s.Step)
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		}
		list, err := c.ListPipelineRuns(ctx, client.RunListOptions{Limit: 50})
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		for _, r := range list.Runs {
			if strings.HasPrefix(r.ID, toComplete) {
				out = append(out, r.ID+"\t"+r.Pipeline+" "+r.State)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// parsePipelineParams reads -p NAME=VALUE flags.
func parsePipelineParams(ps []string) (map[string]string, error) {
	if len(ps) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(ps))
	for _, p := range ps {
		k, v, ok := strings.Cut(p, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("invalid parameter %q: want -p NAME=VALUE", clipString(p))
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("parameter %q is given twice", clipString(k))
		}
		out[k] = v
	}
	return out, nil
}

// pipelineMillis formats a unix-ms time, "-" for none.
func pipelineMillis(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04:05")
}

// pipelineSpan formats the time from start to end (to now while end is
// 0), "-" before the start.
func pipelineSpan(start, end int64) string {
	if start == 0 {
		return "-"
	}
	if end == 0 {
		end = time.Now().UnixMilli()
	}
	d := time.Duration(max(end-start, 0)) * time.Millisecond
	if d < time.Minute {
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// sortedParams writes parameters as k=v, k=v in name order.
func sortedParams(m map[string]string) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + m[k]
	}
	return strings.Join(keys, ", ")
}

func causeString(c *pipeline.Cause) string {
	if c == nil {
		return "-"
	}
	if c.Name != "" {
		return c.Type + "/" + c.Name
	}
	return c.Type
}

func newPipelineListCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the pipelines with their newest run",
		Example: `  kiln pipeline list
  kiln pipeline list -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			ps, err := c.ListPipelines(cmd.Context())
			if err != nil {
				return err
			}
			if ps == nil {
				ps = []api.PipelineInfo{}
			}
			return f.print(cmd.OutOrStdout(), ps, func(w io.Writer) error {
				writePipelineRows(w, ps)
				return nil
			})
		},
	}
}

func writePipelineRows(w io.Writer, ps []api.PipelineInfo) {
	fmt.Fprintln(w, "NAME\tSTEPS\tSCHEDULES\tTRIGGERS\tGENERATION\tLAST RUN\tSTATE\tSTARTED\tUPDATED")
	for _, p := range ps {
		last, state, started := "-", "-", "-"
		if r := p.LastRun; r != nil {
			last, state, started = r.ID, r.State, pipelineMillis(r.CreationTime)
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\n", p.Metadata.Name, len(p.Spec.Steps), len(p.Spec.Schedules), len(p.Spec.Triggers),
			p.Generation, last, state, started, pipelineMillis(p.LastUpdateTime))
	}
}

// getPipelineDocuments is kiln get pipelines / pipeline NAME: with -o
// yaml|json the documents kiln apply takes (a listing with -o yaml is a
// stream of documents), else a table.
func (f *clientFlags) getPipelineDocuments(ctx context.Context, w io.Writer, c *client.Client, name string) error {
	var ps []api.PipelineInfo
	if name != "" {
		p, err := c.GetPipeline(ctx, name)
		if err != nil {
			return err
		}
		ps = []api.PipelineInfo{*p}
	} else {
		var err error
		if ps, err = c.ListPipelines(ctx); err != nil {
			return err
		}
	}
	docs := make([]*pipeline.Pipeline, len(ps))
	for i := range ps {
		docs[i] = &ps[i].Pipeline
	}
	switch {
	case f.output == "yaml" && name == "":
		for i, d := range docs {
			if i > 0 {
				fmt.Fprintln(w, "---")
			}
			if err := writeYAML(w, d); err != nil {
				return err
			}
		}
		return nil
	case f.output != "table" && name != "":
		return f.print(w, docs[0], nil)
	}
	return f.print(w, docs, func(w io.Writer) error {
		writePipelineRows(w, ps)
		return nil
	})
}

func newPipelineGetCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "get NAME",
		Short: "Show a pipeline: parameters, steps, schedules, triggers and its newest run",
		Long: `Show a pipeline. With -o json|yaml the stored pipeline is printed with its
generation and newest run; kiln get pipeline NAME -o yaml prints the document
alone, as kiln apply takes it.`,
		Example: `  kiln pipeline get churn-retrain
  kiln pipeline get churn-retrain -o yaml`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: f.completePipelineArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			p, err := c.GetPipeline(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return f.print(cmd.OutOrStdout(), p, func(w io.Writer) error { return describePipeline(w, p) })
		},
	}
}

func describePipeline(w io.Writer, p *api.PipelineInfo) error {
	spec := &p.Spec
	fmt.Fprintf(w, "Name:\t%s\n", p.Metadata.Name)
	if p.Metadata.Description != "" {
		fmt.Fprintf(w, "Description:\t%s\n", p.Metadata.Description)
	}
	fmt.Fprintf(w, "Generation:\t%d, updated %s by %s\n", p.Generation, pipelineMillis(p.LastUpdateTime), dash(p.UpdatedBy))
	executor := spec.Executor
	if executor == "" {
		executor = "local"
	}
	fmt.Fprintf(w, "Executor:\t%s\n", executor)
	if len(spec.Parameters) > 0 {
		var ps []string
		for _, pa := range spec.Parameters {
			s := pa.Name + " (" + pa.Type + ")"
			if pa.Default != nil {
				s += " = " + fmt.Sprint(pa.Default)
			}
			ps = append(ps, s)
		}
		fmt.Fprintf(w, "Parameters:\t%s\n", strings.Join(ps, ", "))
	}
	if r := p.LastRun; r != nil {
		fmt.Fprintf(w, "Last run:\t%s %s (%s, %s)\n", r.ID, r.State, pipelineMillis(r.CreationTime), causeString(r.Cause))
	}
	fmt.Fprintln(w, "\nSTEP\tDEPENDS ON\tCOMMAND\tOUTPUTS")
	steps := spec.Steps
	if spec.OnExit != nil {
		steps = append(append([]pipeline.Step(nil), steps...), *spec.OnExit)
	}
	for i, st := range steps {
		var outs []string
		for _, o := range st.Outputs {
			outs = append(outs, o.Name+":"+o.Type)
		}
		name := st.Name
		if spec.OnExit != nil && i == len(steps)-1 {
			name += " (on exit)"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", name, dash(strings.Join(st.DependsOn, ",")), ellipsis(strings.Join(st.Command, " "), 60), dash(strings.Join(outs, ",")))
	}
	if len(spec.Schedules) > 0 {
		fmt.Fprintln(w, "\nSCHEDULE\tCRON\tTIMEZONE\tCONCURRENCY\tSUSPENDED")
		for _, s := range spec.Schedules {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%v\n", s.Name, s.Cron, s.Timezone, s.Concurrency, s.Suspend)
		}
	}
	if len(spec.Triggers) > 0 {
		fmt.Fprintln(w, "\nTRIGGER\tON\tCONCURRENCY")
		for _, t := range spec.Triggers {
			fmt.Fprintf(w, "%s\t%s\t%s\n", t.Name, triggerSource(t), t.Concurrency)
		}
	}
	return nil
}

func triggerSource(t pipeline.Trigger) string {
	switch {
	case t.Dataset != "":
		return "dataset " + t.Dataset
	case t.Model != "":
		return "model " + t.Model
	case t.Alert != nil:
		s := "alert " + t.Alert.Monitor
		if t.Alert.Rule != "" {
			s += "/" + t.Alert.Rule
		}
		return s
	case t.Webhook != nil:
		return "webhook"
	}
	return "-"
}

// runWatch are the flags of the commands that start a run.
type runWatch struct {
	params  []string
	noCache bool
	wait    bool
	follow  bool
	dedup   string
	timeout time.Duration
}

func (rw *runWatch) register(cmd *cobra.Command, paramHelp string) {
	fl := cmd.Flags()
	fl.StringArrayVarP(&rw.params, "param", "p", nil, paramHelp)
	fl.BoolVar(&rw.noCache, "no-cache", false, "run every step, even those whose cache key has a hit")
	fl.BoolVar(&rw.wait, "wait", false, "wait for the run to end and print its steps; exit 1 unless it succeeded")
	fl.BoolVar(&rw.follow, "follow", false, "stream every step's log, prefixed with the step's name, until the run ends (implies --wait)")
	fl.StringVar(&rw.dedup, "dedup-key", "", "make the request idempotent: a second one with the same key returns the first run")
	fl.DurationVar(&rw.timeout, "timeout", 0, "with --wait: stop waiting after this long (the run goes on), exit 2")
}

func newPipelineRunCmd(f *clientFlags) *cobra.Command {
	var rw runWatch
	cmd := &cobra.Command{
		Use:   "run NAME [-p NAME=VALUE ...]",
		Short: "Start a run of a pipeline; with --wait or --follow, watch it to its end",
		Long: `Start a run of a pipeline, with parameters given as -p NAME=VALUE (the others
take their defaults). Without --wait the run's id is printed and the command
returns at once; kiln pipeline status RUN_ID shows where it is.

--wait polls the run until it ends, printing each step's changes of state on
standard error, then the run's steps. --follow also streams every step's log
as it is written, each line prefixed with the step's name.

Exit status with --wait or --follow: 0 the run succeeded, 1 it failed or was
cancelled, 2 the run could not be started or watched. Interrupting the
command (Ctrl-C) stops the watching, not the run: kiln pipeline cancel stops
it.`,
		Example: `  kiln pipeline run churn-retrain
  kiln pipeline run churn-retrain -p data=churn@7 -p min_auc=0.85 --wait
  kiln pipeline run churn-retrain --no-cache --follow
  kiln pipeline run churn-retrain -o json`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: f.completePipelineArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			watching := rw.wait || rw.follow
			fail := func(err error) error {
				if watching {
					return exitError{code: pipelineExitError, err: err}
				}
				return err
			}
			if err := f.checkOutput(); err != nil {
				return fail(err)
			}
			params, err := parsePipelineParams(rw.params)
			if err != nil {
				return fail(err)
			}
			c, err := f.client()
			if err != nil {
				return fail(err)
			}
			resp, err := c.StartPipelineRun(cmd.Context(), pipeline.RunRequest{
				Pipeline: args[0], Parameters: params, NoCache: rw.noCache, Actor: pipelineActor(), DedupKey: rw.dedup,
			})
			if err != nil {
				return fail(err)
			}
			return rw.watch(cmd, f, c, resp)
		},
	}
	rw.register(cmd, "a parameter of the run, NAME=VALUE (repeatable)")
	return cmd
}

func newPipelineResumeCmd(f *clientFlags) *cobra.Command {
	var rw runWatch
	cmd := &cobra.Command{
		Use:   "resume RUN_ID [-p NAME=VALUE ...]",
		Short: "Start a run that reuses a failed or cancelled run's succeeded steps and runs the rest",
		Long: `Resume a failed or cancelled run: a new run of the same pipeline starts, whose
steps that succeeded (or were cached) in the old run are reused (state
cached, outputs copied) and the others run again. The parameters are the old
run's unless -p gives new ones (then -p gives them all: those not given take
their defaults). --wait and --follow work as for kiln pipeline run.`,
		Example: `  kiln pipeline resume 01J9Z8Q4Y6W1M7B2C3D4E5F6G7
  kiln pipeline resume 01J9Z8Q4Y6W1M7B2C3D4E5F6G7 --no-cache --follow`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: f.completeRunArg(false),
		RunE: func(cmd *cobra.Command, args []string) error {
			watching := rw.wait || rw.follow
			fail := func(err error) error {
				if watching {
					return exitError{code: pipelineExitError, err: err}
				}
				return err
			}
			if err := f.checkOutput(); err != nil {
				return fail(err)
			}
			params, err := parsePipelineParams(rw.params)
			if err != nil {
				return fail(err)
			}
			c, err := f.client()
			if err != nil {
				return fail(err)
			}
			resp, err := c.ResumePipelineRun(cmd.Context(), args[0], api.ResumeRunRequest{Parameters: params, NoCache: rw.noCache, DedupKey: rw.dedup}, pipelineActor())
			if err != nil {
				return fail(err)
			}
			return rw.watch(cmd, f, c, resp)
		},
	}
	rw.register(cmd, "a parameter of the new run, NAME=VALUE (repeatable; default: the resumed run's)")
	return cmd
}

// watch reports a started run: its id at once, or (--wait, --follow) its
// steps once it has ended, with the exit status of its outcome.
func (rw *runWatch) watch(cmd *cobra.Command, f *clientFlags, c *client.Client, resp *api.RunResponse) error {
	run := resp.Run
	stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
	if run == nil {
		return errors.New("kiln server: the answer holds no run")
	}
	verb := "started"
	if !resp.Created {
		verb = "exists (same dedup key)"
	}
	if !rw.wait && !rw.follow {
		return f.print(stdout, resp, func(w io.Writer) error {
			fmt.Fprintf(w, "run %s of pipeline %s %s\n", run.ID, run.Pipeline, verb)
			return nil
		})
	}
	fmt.Fprintf(stderr, "run %s of pipeline %s %s\n", run.ID, run.Pipeline, verb)
	ctx := cmd.Context()
	if rw.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, rw.timeout)
		defer cancel()
	}
	var logs io.Writer
	if rw.follow {
		// Logs go to standard output, unless it is for JSON or YAML.
		logs = stdout
		if f.output != "table" {
			logs = stderr
		}
	}
	final, err := waitPipelineRun(ctx, c, run.ID, logs, stderr)
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("stopped watching run %s (it goes on; kiln pipeline cancel %s stops it): %w", run.ID, run.ID, ctx.Err())
		}
		return exitError{code: pipelineExitError, err: err}
	}
	if rw.follow && f.output == "table" {
		fmt.Fprintln(stdout)
	}
	if err := f.print(stdout, final, func(w io.Writer) error { return writeRunStatus(w, final) }); err != nil {
		return exitError{code: pipelineExitError, err: err}
	}
	if final.State != pipeline.StateSucceeded {
		msg := fmt.Sprintf("run %s %s", final.ID, final.State)
		if final.Error != "" {
			msg += ": " + final.Error
		}
		return exitError{code: pipelineExitFailed, err: errors.New(msg)}
	}
	return nil
}

// waitPipelineRun polls a run until it ends and returns it. Changes of a
// step's state are written to progress; with logs set, every step's log
// is streamed there as it is written, line by line with the step's name
// in front.
func waitPipelineRun(ctx context.Context, c *client.Client, id string, logs, progress io.Writer) (*pipeline.Run, error) {
	var lw *prefixWriter
	var wg sync.WaitGroup
	followCtx, stopFollow := context.WithCancel(ctx)
	defer func() {
		stopFollow()
		wg.Wait()
	}()
	followed := map[string]bool{}
	seen := map[string]string{}
	for {
		run, err := c.GetPipelineRun(ctx, id)
		if err != nil {
			return nil, err
		}
		if logs != nil && lw == nil {
			width := 0
			for _, s := range run.Steps {
				width = max(width, len(s.Step))
			}
			lw = &prefixWriter{w: logs, notes: progress, width: width, partial: map[string][]byte{}}
		}
		for _, s := range run.Steps {
			state := s.State
			if s.Attempt > 1 {
				state += " (attempt " + strconv.Itoa(s.Attempt) + ")"
			}
			if seen[s.Step] != state {
				if _, was := seen[s.Step]; was || s.State != pipeline.StatePending {
					line := fmt.Sprintf("step %s: %s", s.Step, state)
					if s.Error != "" && pipeline.Terminal(s.State) {
						line += ": " + s.Error
					}
					if lw != nil {
						lw.note(line)
					} else {
						fmt.Fprintln(progress, line)
					}
				}
				seen[s.Step] = state
			}
			if lw != nil && s.Attempt >= 1 && !followed[s.Step] {
				followed[s.Step] = true
				wg.Add(1)
				go func(step string) {
					defer wg.Done()
					followStep(followCtx, c, id, step, lw)
				}(s.Step)
			}
		}
		if pipeline.Terminal(run.State) {
			// The followers end with their attempts (the run has ended,
			// so every stream ends after its last chunk).
			wg.Wait()
			if lw != nil {
				lw.flush()
			}
			return run, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pipelinePoll):
		}
	}
}

// followStep streams every attempt of one step to lw until the step's
// last attempt has ended.
func followStep(ctx context.Context, c *client.Client, id, step string, lw *prefixWriter) {
	attempt, after := 1, int64(0)
	failures := 0
	for ctx.Err() == nil {
		lf, err := c.FollowStepLogs(ctx, id, step, client.LogOptions{Attempt: attempt, After: after}, 0, lw.step(step))
		lw.end(step)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if failures++; failures > 5 {
				lw.note(fmt.Sprintf("step %s: log unavailable: %v", step, err))
				return
			}
			time.Sleep(pipelinePoll)
			continue
		}
		failures = 0
		after = lf.Seq
		if !lf.Done {
			continue // the stream's time bound: go on from where it stopped
		}
		// The attempt has ended: follow the next one, if a retry started.
		run, err := c.GetPipelineRun(ctx, id)
		if err != nil {
			return
		}
		next := false
		for _, s := range run.Steps {
			if s.Step == step && s.Attempt > attempt {
				next = true
			}
		}
		if !next {
			return
		}
		attempt, after = attempt+1, 0
		lw.note(fmt.Sprintf("step %s: attempt %d", step, attempt))
	}
}

// prefixWriter writes the logs of several steps to one writer, each whole
// line at once with its step's name in front.
type prefixWriter struct {
	mu sync.Mutex
	w  io.Writer
	// notes gets the command's own lines (changes of state).
	notes   io.Writer
	width   int
	partial map[string][]byte
}

type stepWriter struct {
	p    *prefixWriter
	step string
}

func (s stepWriter) Write(b []byte) (int, error) {
	p := s.p
	p.mu.Lock()
	defer p.mu.Unlock()
	buf := append(p.partial[s.step], b...)
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		p.line(s.step, buf[:i])
		buf = buf[i+1:]
	}
	p.partial[s.step] = append([]byte(nil), buf...)
	return len(b), nil
}

func (p *prefixWriter) step(name string) io.Writer { return stepWriter{p, name} }

// line writes one line (mu held).
func (p *prefixWriter) line(step string, b []byte) {
	fmt.Fprintf(p.w, "%-*s | %s\n", p.width, step, strings.TrimSuffix(string(b), "\r"))
}

// end writes what is left of a step's last line.
func (p *prefixWriter) end(step string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if b := p.partial[step]; len(b) > 0 {
		p.line(step, b)
		p.partial[step] = nil
	}
}

func (p *prefixWriter) flush() {
	p.mu.Lock()
	names := make([]string, 0, len(p.partial))
	for k := range p.partial {
		names = append(names, k)
	}
	p.mu.Unlock()
	sort.Strings(names)
	for _, n := range names {
		p.end(n)
	}
}

// note writes a line of the command's own.
func (p *prefixWriter) note(s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintln(p.notes, s)
}

func newPipelineRunsCmd(f *clientFlags) *cobra.Command {
	var state, page string
	var limit int
	cmd := &cobra.Command{
		Use:   "runs [NAME]",
		Short: "List runs, newest first: of one pipeline, or of all",
		Example: `  kiln pipeline runs
  kiln pipeline runs churn-retrain --state failed
  kiln pipeline runs --state active -o json`,
		Args:              cobra.MaximumNArgs(1),
		ValidArgsFunction: f.completePipelineArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			o := client.RunListOptions{State: state, PageToken: page, Limit: limit}
			if len(args) == 1 {
				o.Pipeline = args[0]
				// A pipeline that does not exist is an error, not an
				// empty list.
				if _, err := c.GetPipeline(cmd.Context(), args[0]); err != nil {
					return err
				}
			}
			list, err := c.ListPipelineRuns(cmd.Context(), o)
			if err != nil {
				return err
			}
			return f.print(cmd.OutOrStdout(), list, func(w io.Writer) error {
				fmt.Fprintln(w, "RUN ID\tPIPELINE\tSTATE\tCAUSE\tCREATED\tDURATION\tBY\tPARAMETERS")
				for _, r := range list.Runs {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Pipeline, r.State, causeString(r.Cause), pipelineMillis(r.CreationTime),
						pipelineSpan(r.StartTime, r.EndTime), dash(r.CreatedBy), ellipsis(sortedParams(r.Parameters), 60))
				}
				if list.NextPageToken != "" {
					fmt.Fprintf(w, "\nmore: --page-token %s\n", list.NextPageToken)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "only runs in this state: active, pending, running, succeeded, failed or cancelled")
	cmd.Flags().IntVar(&limit, "limit", 20, "at most this many runs (the server allows 1000)")
	cmd.Flags().StringVar(&page, "page-token", "", "the next page of an earlier listing")
	cmd.RegisterFlagCompletionFunc("state", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"active", "pending", "running", "succeeded", "failed", "cancelled"}, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

func newPipelineStatusCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "status RUN_ID",
		Short: "Show a run and each of its steps: state, attempt, cache, duration",
		Example: `  kiln pipeline status 01J9Z8Q4Y6W1M7B2C3D4E5F6G7
  kiln pipeline status 01J9Z8Q4Y6W1M7B2C3D4E5F6G7 -o json`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: f.completeRunArg(false),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			run, err := c.GetPipelineRun(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return f.print(cmd.OutOrStdout(), run, func(w io.Writer) error { return writeRunStatus(w, run) })
		},
	}
}

// writeRunStatus writes a run's summary and its step table.
func writeRunStatus(w io.Writer, run *pipeline.Run) error {
	fmt.Fprintf(w, "Run:\t%s\n", run.ID)
	fmt.Fprintf(w, "Pipeline:\t%s (generation %d)\n", run.Pipeline, run.Generation)
	fmt.Fprintf(w, "State:\t%s\n", run.State)
	if run.Error != "" {
		fmt.Fprintf(w, "Error:\t%s\n", ellipsis(run.Error, 200))
	}
	fmt.Fprintf(w, "Parameters:\t%s\n", sortedParams(run.Parameters))
	cause := causeString(run.Cause)
	if run.ResumedFrom != "" {
		cause += " of " + run.ResumedFrom
	}
	if run.NoCache {
		cause += ", no cache"
	}
	fmt.Fprintf(w, "Cause:\t%s, by %s\n", cause, dash(run.CreatedBy))
	fmt.Fprintf(w, "Created:\t%s\n", pipelineMillis(run.CreationTime))
	fmt.Fprintf(w, "Duration:\t%s\n", pipelineSpan(run.StartTime, run.EndTime))
	if run.TrackingRunID != "" {
		fmt.Fprintf(w, "Tracking run:\t%s (experiment %s)\n", run.TrackingRunID, run.ExperimentID)
	}
	fmt.Fprintln(w, "\nSTEP\tSTATE\tATTEMPT\tCACHED\tDURATION\tEXIT\tERROR")
	for _, s := range run.Steps {
		cached := "-"
		if s.CachedFrom != "" {
			cached = "yes (run " + s.CachedFrom + ")"
		} else if s.State == pipeline.StateCached {
			cached = "yes"
		}
		exit := "-"
		if pipeline.Terminal(s.State) && s.Attempt > 0 && s.State != pipeline.StateCached {
			exit = strconv.Itoa(s.ExitCode)
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", s.Step, s.State, s.Attempt, cached, pipelineSpan(s.StartTime, s.EndTime), exit, dash(ellipsis(s.Error, 80)))
	}
	return nil
}

func newPipelineLogsCmd(f *clientFlags) *cobra.Command {
	var follow bool
	var attempt int
	cmd := &cobra.Command{
		Use:   "logs RUN_ID STEP",
		Short: "Print a step's log; with --follow, stream it until the step ends",
		Long: `Print the log (standard output and error) of a step's attempt, the latest
unless --attempt names one. With --follow the log is streamed as it is
written until the attempt ends; a step that has not started yet is waited
for.`,
		Example: `  kiln pipeline logs 01J9Z8Q4Y6W1M7B2C3D4E5F6G7 train
  kiln pipeline logs 01J9Z8Q4Y6W1M7B2C3D4E5F6G7 train --follow
  kiln pipeline logs 01J9Z8Q4Y6W1M7B2C3D4E5F6G7 train --attempt 1`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: f.completeRunArg(true),
		RunE: func(cmd *cobra.Command, args []string) error {
			if attempt < 0 {
				return fmt.Errorf("invalid --attempt %d: want 1 or more (0: the latest)", attempt)
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			ctx, id, step, w := cmd.Context(), args[0], args[1], cmd.OutOrStdout()
			if follow {
				o := client.LogOptions{Attempt: attempt}
				for {
					lf, err := c.FollowStepLogs(ctx, id, step, o, 0, w)
					if err != nil {
						return err
					}
					if lf.Done {
						return nil
					}
					// The stream's time bound passed: go on from there.
					o = client.LogOptions{Attempt: lf.Attempt, After: lf.Seq}
				}
			}
			o := client.LogOptions{Attempt: attempt, Limit: api.MaxLogLimit}
			for {
				page, err := c.StepLogs(ctx, id, step, o)
				if err != nil {
					return err
				}
				for _, ch := range page.Chunks {
					if _, err := io.WriteString(w, ch.Data); err != nil {
						return err
					}
				}
				if len(page.Chunks) < o.Limit {
					return nil
				}
				// The next pages are of the same attempt, even if a retry
				// starts meanwhile.
				o.Attempt, o.After = page.Chunks[0].Attempt, page.NextAfter
			}
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "stream the log until the attempt ends")
	cmd.Flags().IntVar(&attempt, "attempt", 0, "the attempt (default: the latest)")
	return cmd
}

func newPipelineCancelCmd(f *clientFlags) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use:               "cancel RUN_ID",
		Short:             "Cancel a run: its running steps are stopped, the others never start",
		Example:           `  kiln pipeline cancel 01J9Z8Q4Y6W1M7B2C3D4E5F6G7 --reason "wrong data"`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: f.completeRunArg(false),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			run, err := c.CancelPipelineRun(cmd.Context(), args[0], reason, pipelineActor())
			if err != nil {
				return err
			}
			return f.print(cmd.OutOrStdout(), run, func(w io.Writer) error {
				fmt.Fprintf(w, "run %s of pipeline %s %s\n", run.ID, run.Pipeline, run.State)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why: recorded with the run")
	return cmd
}

func newPipelineTriggersCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "triggers NAME",
		Short: "Show where a pipeline's schedules and triggers stand: last and next fire, last run",
		Example: `  kiln pipeline triggers churn-retrain
  kiln pipeline triggers churn-retrain -o yaml`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: f.completePipelineArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			states, err := c.PipelineTriggers(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if states == nil {
				states = []trigger.State{}
			}
			return f.print(cmd.OutOrStdout(), states, func(w io.Writer) error {
				fmt.Fprintln(w, "NAME\tTYPE\tLAST FIRE\tNEXT FIRE\tLAST RUN\tCURSOR\tSUSPENDED\tERROR")
				for _, s := range states {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%v\t%s\n", s.Name, s.Type, pipelineMillis(s.LastFire), pipelineMillis(s.NextFire),
						dash(s.LastRunID), dash(s.Cursor), s.Suspended, dash(ellipsis(s.Error, 80)))
				}
				return nil
			})
		},
	}
}

func newPipelineDeleteCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a pipeline (its schedules and triggers stop)",
		Example: `  kiln pipeline delete churn-retrain
  kiln delete -f churn-retrain.yaml`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: f.completePipelineArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			if err := c.DeletePipeline(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "pipeline/%s deleted\n", args[0])
			return nil
		},
	}
}
