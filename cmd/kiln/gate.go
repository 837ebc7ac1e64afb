package main

// kiln gate: promotion gates from the command line, for CI/CD. `check`
// evaluates a version on the server (or two model URIs locally) and exits
// 0 when the gate passes, 1 when it fails, 2 on an error; `results`
// lists a version's stored results.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/api/client"
	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/deploy/gate"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/model"
)

// Exit statuses of kiln gate check.
const (
	gateExitFailed = 1
	gateExitError  = 2
)

func newGateCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "gate",
		Short: "Promotion gates: evaluate a model version against its champion before it is promoted",
		Long: `Promotion gates check a candidate model version against the current champion
on evaluation data: value thresholds (roc_auc >= 0.8), change thresholds (no
worse than the champion by more than 0.01, absolute or relative), and metrics
per slice with a bound on their disparity. A GatePolicy (kiln apply -f) can
protect aliases and endpoints: moving "champion" to a version needs a passing
result of the policy for that version.`,
	}
	f.register(cmd)
	cmd.AddCommand(newGateCheckCmd(&f), newGateResultsCmd(&f))
	return cmd
}

type gateCheckFlags struct {
	policy      string
	version     int64
	actor       string
	file        string
	modelURI    string
	championURI string
	data        string
}

func newGateCheckCmd(cf *clientFlags) *cobra.Command {
	var f gateCheckFlags
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Evaluate a model version under a gate policy; exit 1 when the gate fails",
		Long: `Evaluate a model version under a gate policy and print its checks.

On the server (KILN_URL): --policy NAME --version N evaluates version N of the
policy's model against the version its baseline alias (champion) points at,
stores the result and tags the version kiln.gate.<policy> = passed|failed.

Locally, without a server: -f policy.yaml --model-uri URI [--champion-uri URI]
evaluates the model at URI (a directory, or models:/… through KILN_URL)
against the champion URI (none: a rubber stamp, value thresholds only) on the
policy's data (a local table file, a dataset version through KILN_URL, or
--data FILE). Nothing is stored.

Exit status: 0 the gate passed, 1 it failed, 2 the evaluation could not run.`,
		Example: `  # In CI, after registering version 7:
  kiln gate check --policy churn-quality --version 7

  # Before registering anything:
  kiln gate check -f gate.yaml --model-uri ./model --champion-uri models:/churn@champion --data test.parquet`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cf.checkOutput(); err != nil {
				return exitError{code: gateExitError, err: err}
			}
			var r *gate.Result
			var err error
			switch {
			case f.file != "":
				if f.policy != "" || f.version != 0 {
					return exitError{code: gateExitError, err: errors.New("-f evaluates locally: use --model-uri (and --champion-uri), not --policy/--version")}
				}
				r, err = gateCheckLocal(cmd.Context(), cf, f, cmd.ErrOrStderr())
			case f.policy != "":
				if f.modelURI != "" || f.championURI != "" || f.data != "" {
					return exitError{code: gateExitError, err: errors.New("--model-uri, --champion-uri and --data go with -f (a local evaluation)")}
				}
				if f.version <= 0 {
					return exitError{code: gateExitError, err: errors.New("--version is required (the model version to evaluate)")}
				}
				r, err = gateCheckServer(cmd.Context(), cf, f, cmd.ErrOrStderr())
			default:
				return exitError{code: gateExitError, err: errors.New("give --policy NAME --version N (on the server) or -f policy.yaml --model-uri URI (locally)")}
			}
			if err != nil {
				return exitError{code: gateExitError, err: err}
			}
			if err := cf.print(cmd.OutOrStdout(), r, func(w io.Writer) error { return printGateResult(w, r) }); err != nil {
				return exitError{code: gateExitError, err: err}
			}
			if !r.Passed {
				return exitError{code: gateExitFailed}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.policy, "policy", "", "gate policy on the server")
	fl.Int64Var(&f.version, "version", 0, "model version to evaluate (with --policy)")
	fl.StringVar(&f.actor, "actor", "", "who asks, recorded in the result (default $USER)")
	fl.StringVarP(&f.file, "file", "f", "", "policy file (YAML or JSON; - for stdin) for a local evaluation")
	fl.StringVar(&f.modelURI, "model-uri", "", "candidate model (with -f): a model directory, or runs:/, models:/ through KILN_URL")
	fl.StringVar(&f.championURI, "champion-uri", "", "baseline model (with -f); none: change thresholds are skipped")
	fl.StringVar(&f.data, "data", "", "evaluation table file, instead of the policy's spec.data (with -f)")
	cmd.RegisterFlagCompletionFunc("policy", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return completePolicies(cf), cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

func newGateResultsCmd(cf *clientFlags) *cobra.Command {
	var policy string
	cmd := &cobra.Command{
		Use:   "results MODEL VERSION",
		Short: "List the gate results of a model version, newest first",
		Example: `  kiln gate results churn 7
  kiln gate results churn 7 --policy churn-quality -o json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cf.checkOutput(); err != nil {
				return err
			}
			v, err := strconv.ParseInt(args[1], 10, 64)
			if err != nil || v <= 0 {
				return fmt.Errorf("invalid version %q: want a number from 1", args[1])
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			out, err := c.GateResults(cmd.Context(), args[0], v, policy)
			if err != nil {
				return err
			}
			return cf.print(cmd.OutOrStdout(), out, func(w io.Writer) error { return printGateResults(w, out.Results) })
		},
	}
	cmd.Flags().StringVar(&policy, "policy", "", "only this policy's results")
	return cmd
}

func defaultActor(flag string) string {
	if flag != "" {
		return flag
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return ""
}

func gateCheckServer(ctx context.Context, cf *clientFlags, f gateCheckFlags, stderr io.Writer) (*gate.Result, error) {
	c, err := cf.client()
	if err != nil {
		return nil, err
	}
	stop := spinner(stderr, fmt.Sprintf("evaluating version %d under %s", f.version, f.policy))
	defer stop()
	return c.EvaluateGate(ctx, f.policy, api.EvaluateGateRequest{Version: f.version, Actor: defaultActor(f.actor)})
}

// spinner shows that something runs, on a terminal only; stop clears it.
func spinner(w io.Writer, what string) (stop func()) {
	file, ok := w.(*os.File)
	if !ok || !isTerminal(file) {
		return func() {}
	}
	bar := progressbar.NewOptions(-1, progressbar.OptionSetWriter(w), progressbar.OptionSetDescription(what),
		progressbar.OptionSpinnerType(14), progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(100*time.Millisecond))
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				bar.Finish()
				return
			case <-t.C:
				bar.Add(1)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// remoteDatasets reads dataset versions from a Kiln server, for local
// evaluations of policies whose data is a dataset version.
type remoteDatasets struct{ c *client.Client }

func (r remoteDatasets) GetVersion(ctx context.Context, ref dataset.VersionRef) (*dataset.Version, error) {
	d, err := r.c.GetVersion(ctx, ref)
	if err != nil {
		return nil, err
	}
	return d.Version, nil
}

func readPolicyFile(name string) (*gate.Policy, error) {
	var data []byte
	var err error
	if name == "-" {
		data, err = io.ReadAll(io.LimitReader(os.Stdin, gate.MaxSpecBytes+1))
	} else {
		data, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, err
	}
	p, err := gate.ParsePolicy(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %s", name, errdefs.Message(err))
	}
	return p, nil
}

func gateCheckLocal(ctx context.Context, cf *clientFlags, f gateCheckFlags, stderr io.Writer) (*gate.Result, error) {
	if f.modelURI == "" {
		return nil, errors.New("--model-uri is required with -f")
	}
	p, err := readPolicyFile(f.file)
	if err != nil {
		return nil, err
	}
	if f.data != "" {
		p.Spec.Data = f.data
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("--data: %s", errdefs.Message(err))
		}
	}
	// A server, when one is named, resolves models:/ and runs:/ URIs and
	// dataset versions.
	opts := gate.ServiceOptions{AllowLocalData: true}
	var resolver model.Resolver
	server := serverURL(cf.server, os.Getenv)
	if cf.server != "" || os.Getenv("KILN_URL") != "" || os.Getenv("MLFLOW_TRACKING_URI") != "" {
		c, err := cf.client()
		if err != nil {
			return nil, err
		}
		opts.Datasets, opts.Content = remoteDatasets{c}, c.Remote()
		if resolver, err = model.NewRemoteResolver(server, model.RemoteOptions{
			Username: os.Getenv("MLFLOW_TRACKING_USERNAME"), Password: os.Getenv("MLFLOW_TRACKING_PASSWORD"),
			Token: os.Getenv("MLFLOW_TRACKING_TOKEN"),
		}); err != nil {
			return nil, err
		}
	}
	svc := gate.NewService(opts)
	data, cleanup, err := svc.OpenData(ctx, p.Spec.Data)
	if err != nil {
		return nil, fmt.Errorf("data %s: %w", p.Spec.Data, err)
	}
	defer cleanup()
	load := func(uri string) (gate.Scorer, error) {
		m, err := model.Open(ctx, uri, model.OpenOptions{Resolver: resolver})
		if err != nil {
			if resolver == nil && (strings.HasPrefix(uri, "models:") || strings.HasPrefix(uri, "runs:")) {
				err = fmt.Errorf("%w (set KILN_URL to resolve %s)", err, uri)
			}
			return gate.Scorer{}, err
		}
		ref := gate.ModelRef{URI: uri}
		if res := m.Bundle.Resolved; res != nil {
			ref.Name, ref.Version, ref.Source = res.Name, res.Version, res.Source
		}
		return gate.Scorer{Ref: ref, Model: m, Signature: m.Bundle.Signature}, nil
	}
	cand, err := load(f.modelURI)
	if err != nil {
		return nil, fmt.Errorf("--model-uri: %w", err)
	}
	defer cand.Model.Close()
	e := gate.Evaluation{Policy: p, Candidate: cand, Data: *data, Actor: defaultActor(f.actor)}
	if f.championURI != "" {
		base, err := load(f.championURI)
		if err != nil {
			return nil, fmt.Errorf("--champion-uri: %w", err)
		}
		defer base.Model.Close()
		e.Baseline = &base
	}
	prog := newGateProgress(stderr)
	defer prog.finish()
	e.Progress = prog.add
	return gate.Run(ctx, e)
}

// gateProgress counts the rows scored per model: a bar on a terminal,
// nothing otherwise.
type gateProgress struct {
	mu   sync.Mutex
	w    io.Writer
	tty  bool
	bar  *progressbar.ProgressBar
	name string
}

func newGateProgress(w io.Writer) *gateProgress {
	f, ok := w.(*os.File)
	return &gateProgress{w: w, tty: ok && isTerminal(f)}
}

func (p *gateProgress) add(name string, rows int64) {
	if !p.tty {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar == nil || p.name != name {
		if p.bar != nil {
			p.bar.Finish()
		}
		p.name = name
		p.bar = progressbar.NewOptions64(-1, progressbar.OptionSetWriter(p.w), progressbar.OptionSetDescription("scoring "+name),
			progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("rows"),
			progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(100*time.Millisecond))
	}
	p.bar.Add64(rows)
}

func (p *gateProgress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		p.bar.Finish()
	}
}

func gateNum(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v, 'g', 6, 64)
}

func describeModel(m *gate.ModelRef) string {
	switch {
	case m == nil:
		return "none (rubber stamp)"
	case m.Name != "" && m.Version > 0:
		return fmt.Sprintf("%s v%d", m.Name, m.Version)
	}
	return m.URI
}

func checkName(c gate.Check) string {
	s := c.Metric + " " + c.Kind
	if c.Relative {
		s += " (relative)"
	}
	if c.Slice != "" {
		s = c.Slice + ": " + s
	}
	return s
}

// printGateResult writes a result's checks as a table with ✓/✗ and, when
// the gate failed, why.
func printGateResult(w io.Writer, r *gate.Result) error {
	base := describeModel(r.Baseline)
	if r.Baseline != nil && r.BaselineAlias != "" {
		base += " (@" + r.BaselineAlias + ")"
	}
	fmt.Fprintf(w, "policy:\t%s\n", r.Policy)
	fmt.Fprintf(w, "candidate:\t%s\n", describeModel(&r.Candidate))
	fmt.Fprintf(w, "baseline:\t%s\n", base)
	fmt.Fprintf(w, "data:\t%s (%d rows)\n", r.Data.Ref, r.Data.Rows)
	if r.ID != "" {
		fmt.Fprintf(w, "result:\t%s\n", r.ID)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "\tCHECK\tCANDIDATE\tBASELINE\tVALUE\tTHRESHOLD\t")
	for _, c := range r.Checks {
		mark := "✓"
		switch {
		case c.Skipped:
			mark = "-"
		case !c.Passed:
			mark = "✗"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t\n", mark, checkName(c), gateNum(c.Candidate), gateNum(c.Baseline), gateNum(c.Value),
			strconv.FormatFloat(c.Threshold, 'g', 6, 64))
	}
	for _, m := range r.Metrics {
		if m.Error != "" {
			fmt.Fprintf(w, "\t%s: %s\t\t\t\t\t\n", m.Name, m.Error)
		}
	}
	fmt.Fprintln(w)
	switch {
	case r.Passed && r.RubberStamp:
		fmt.Fprintf(w, "PASSED\t%d checks (rubber stamp: no baseline, change thresholds skipped)\n", len(r.Checks))
	case r.Passed:
		fmt.Fprintf(w, "PASSED\t%d checks\n", len(r.Checks))
	default:
		fmt.Fprintf(w, "FAILED\t%d of %d checks\n", len(r.Failed), len(r.Checks))
		for _, msg := range r.Failed {
			fmt.Fprintf(w, "  ✗ %s\n", msg)
		}
	}
	return nil
}

func printGateResults(w io.Writer, rs []*gate.Result) error {
	if len(rs) == 0 {
		fmt.Fprintln(w, "no gate results")
		return nil
	}
	fmt.Fprintln(w, "ID\tPOLICY\tRESULT\tBASELINE\tDATA\tCHECKS\tACTOR\tTIME")
	for _, r := range rs {
		res := "✓ passed"
		if !r.Passed {
			res = "✗ failed"
		}
		base := "-"
		if r.Baseline != nil {
			base = "v" + strconv.FormatInt(r.Baseline.Version, 10)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\n", r.ID, r.Policy, res, base, ellipsis(r.Data.Ref, 40),
			len(r.Checks)-len(r.Failed), len(r.Checks), ellipsis(r.Actor, 20), formatTime(r.Time))
	}
	return nil
}

func completePolicies(cf *clientFlags) []string {
	c, err := cf.client()
	if err != nil {
		return nil
	}
	ctx, cancel := withTimeout(context.Background(), 2*time.Second)
	defer cancel()
	list, err := c.ListGatePolicies(ctx)
	if err != nil {
		return nil
	}
	var out []string
	for _, p := range list.Policies {
		out = append(out, p.Policy.Metadata.Name)
	}
	return out
}
