package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/api/client"
	"github.com/kiln-ml/kiln/deploy"
	"github.com/kiln-ml/kiln/deploy/gate"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/feature"
	"github.com/kiln-ml/kiln/monitor"
	"github.com/kiln-ml/kiln/pipeline"
)

// gatePolicies is the API collection of GatePolicy documents.
const gatePolicies = "gate-policies"

// applyResult is what kiln apply prints for one document with --output
// json|yaml.
type applyResult struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Source string `json:"source"`
	// Result is created, configured or unchanged (what would happen, in
	// a dry run).
	Result string `json:"result"`
	DryRun bool   `json:"dry_run,omitempty"`
	Diff   string `json:"diff,omitempty"`
}

// changeFlags are who and why of a change, shared by the commands that
// change endpoints.
type changeFlags struct {
	reason string
}

func (cf *changeFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&cf.reason, "reason", "", "why: recorded with the change in the endpoint's events")
}

// options says who is acting: $KILN_ACTOR, else the user's login name.
func (cf *changeFlags) options(dryRun bool) client.ChangeOptions {
	a := os.Getenv("KILN_ACTOR")
	if a == "" {
		a = currentUser()
	}
	return client.ChangeOptions{Actor: a, Reason: cf.reason, DryRun: dryRun}
}

func newApplyCmd() *cobra.Command {
	f := &clientFlags{}
	cf := &changeFlags{}
	var files []string
	var dryRun, noDiff bool
	cmd := &cobra.Command{
		Use:   "apply -f FILE|DIR|-",
		Short: "Create or change endpoints, gate policies, monitors, alert receivers and pipelines from YAML documents",
		Long: `Make the server hold what the documents say. Each file may hold several
YAML (or JSON) documents separated by ---; a folder stands for its .yaml, .yml
and .json files in name order; - reads standard input. Kinds: Endpoint,
GatePolicy (see docs/declarative.md), Monitor and AlertReceiver (see
docs/monitors.md), Pipeline (see docs/pipelines.md), Entity and FeatureView
(see docs/features.md; entities are applied before the feature views).

Every document is read and checked first: unknown fields, values of the wrong
type and invalid specs are reported as FILE:LINE:COL: message, and nothing is
applied while any document is wrong. Then the documents are applied in order.
For each, the change is shown as a unified diff of the normalized YAML
(coloured on a terminal) and reported as created, configured or unchanged.
Applying a document the server already holds changes nothing and records no
event, so apply is safe to run again and again, as GitOps pipelines do. The
first failure stops the run; what was applied before it stays applied.

Changes are recorded with who ($KILN_ACTOR, else your login name) and why
(--reason).`,
		Example: `  kiln apply -f endpoint.yaml
  kiln apply -f deploy/ --reason "release 2026.01"
  kiln apply -f endpoint.yaml --dry-run      # show the diff, change nothing
  kiln get endpoint churn -o yaml | kiln apply -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			docs, err := readManifests(files, cmd.InOrStdin())
			if err != nil {
				return reportManifestErrors(cmd.ErrOrStderr(), err)
			}
			entitiesFirst(docs)
			c, err := f.client()
			if err != nil {
				return err
			}
			stdout := cmd.OutOrStdout()
			color := colorOutput(stdout)
			opts := cf.options(dryRun)
			var results []applyResult
			var applied []string
			for _, d := range docs {
				res, err := applyDocument(cmd, c, d, opts)
				if err != nil {
					if es := serverFieldErrors(d, err); es != nil {
						fmt.Fprintln(cmd.ErrOrStderr(), es.Error())
					}
					done := "nothing was applied"
					if len(applied) > 0 {
						done = "applied before it: " + strings.Join(applied, ", ")
					}
					return fmt.Errorf("%s (%s, document %d): %w; %s", d.Ref(), d.Source, d.Index, err, done)
				}
				results = append(results, res)
				if res.Result != "unchanged" && !dryRun {
					applied = append(applied, d.Ref())
				}
				if f.output == "table" {
					if !noDiff && res.Diff != "" {
						writeUnifiedDiff(stdout, res.Diff, color)
					}
					suffix := ""
					if dryRun {
						suffix = " (dry run)"
					}
					fmt.Fprintf(stdout, "%s %s%s\n", d.Ref(), res.Result, suffix)
				}
			}
			if f.output == "table" {
				return nil
			}
			return f.print(stdout, results, nil)
		},
	}
	f.register(cmd)
	cf.register(cmd)
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "a file, a folder of .yaml/.yml/.json files, or - for standard input (repeatable)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "check the documents and show what would change, without changing anything")
	cmd.Flags().BoolVar(&noDiff, "no-diff", false, "report each document's result without its diff")
	cmd.MarkFlagRequired("filename")
	cmd.MarkFlagFilename("filename", "yaml", "yml", "json")
	return cmd
}

// applyDocument sends one document.
func applyDocument(cmd *cobra.Command, c *client.Client, d *manifestDoc, opts client.ChangeOptions) (applyResult, error) {
	res := applyResult{Kind: d.Kind, Name: d.Name, Source: d.Source, DryRun: opts.DryRun}
	ctx := cmd.Context()
	switch d.Kind {
	case deploy.KindEndpoint:
		resp, err := c.ApplyEndpoint(ctx, d.Endpoint, opts)
		if err != nil {
			return res, err
		}
		res.Diff = resp.Diff
		switch {
		case resp.Created:
			res.Result = "created"
		case resp.Changed:
			res.Result = "configured"
		default:
			res.Result = "unchanged"
		}
	case kindGatePolicy:
		// The gate-policy API has no dry run: the diff is made here,
		// against the stored policy.
		var before string
		cur, err := getGatePolicy(ctx, c, d.Name)
		switch {
		case errors.Is(err, errdefs.ErrNotFound):
		case err != nil:
			return res, err
		default:
			if before, err = policyYAML(cur.Policy); err != nil {
				return res, err
			}
		}
		after, err := policyYAML(d.Policy)
		if err != nil {
			return res, err
		}
		if cur == nil {
			res.Diff = api.UnifiedDiff("/dev/null", d.Ref(), "", after)
		} else {
			res.Diff = api.UnifiedDiff(d.Ref()+" (live)", d.Ref()+" (applied)", before, after)
		}
		res.Result = "configured"
		switch {
		case cur == nil:
			res.Result = "created"
		case res.Diff == "":
			res.Result = "unchanged"
		}
		if opts.DryRun {
			return res, nil
		}
		raw, err := c.PutDocument(ctx, gatePolicies, d.Name, d.JSON, opts)
		if err != nil {
			return res, err
		}
		var out struct {
			Created *bool `json:"created"`
			Changed *bool `json:"changed"`
		}
		if json.Unmarshal(raw, &out) == nil && out.Created != nil && out.Changed != nil {
			switch {
			case *out.Created:
				res.Result = "created"
			case *out.Changed:
				res.Result = "configured"
			default:
				res.Result, res.Diff = "unchanged", ""
			}
		}
	case monitor.KindMonitor, monitor.KindAlertReceiver:
		return applyMonitorDocument(ctx, c, d, opts, res)
	case pipeline.KindPipeline:
		return applyPipelineDocument(ctx, c, d, opts, res)
	case feature.KindEntity, feature.KindFeatureView:
		return applyFeatureDocument(ctx, c, d, opts, res)
	default:
		return res, fmt.Errorf("kind %q cannot be applied", d.Kind)
	}
	return res, nil
}

// reportManifestErrors prints every problem of the manifests, one per
// line, and returns the error that ends the command.
func reportManifestErrors(w io.Writer, err error) error {
	var es manifestErrors
	if !errors.As(err, &es) {
		return err
	}
	fmt.Fprintln(w, es.Error())
	return exitError{code: 1, err: fmt.Errorf("%s in the manifests; nothing was applied", plural(len(es), "error"))}
}

// serverFieldErrors maps the field errors of a server's answer (an
// invalid document) to the lines of the document they name.
func serverFieldErrors(d *manifestDoc, err error) manifestErrors {
	var fes deploy.FieldErrors
	if !errors.As(err, &fes) {
		return nil
	}
	var out manifestErrors
	for _, fe := range fes {
		pos, msg := d.where(fe.Path), fe.Msg
		if fe.Path != "" {
			msg = fe.Path + ": " + msg
		}
		out = append(out, &manifestError{Source: d.Source, Line: pos.line, Col: pos.col, Msg: msg})
	}
	return out
}

// colorOutput says whether w is a terminal that wants colours ($NO_COLOR
// unset, $TERM not dumb).
func colorOutput(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isTerminal(f) && os.Getenv("NO_COLOR") == "" && os.Getenv("TERM") != "dumb"
}

// ANSI colours of a diff.
const (
	ansiReset = "\x1b[0m"
	ansiBold  = "\x1b[1m"
	ansiRed   = "\x1b[31m"
	ansiGreen = "\x1b[32m"
	ansiCyan  = "\x1b[36m"
)

// writeUnifiedDiff prints a unified diff, coloured like git's when color.
func writeUnifiedDiff(w io.Writer, diff string, color bool) {
	for _, line := range strings.SplitAfter(diff, "\n") {
		if line == "" {
			continue
		}
		if !color {
			io.WriteString(w, line)
			continue
		}
		c := ""
		switch {
		case strings.HasPrefix(line, "+++ "), strings.HasPrefix(line, "--- "):
			c = ansiBold
		case strings.HasPrefix(line, "@@"):
			c = ansiCyan
		case strings.HasPrefix(line, "+"):
			c = ansiGreen
		case strings.HasPrefix(line, "-"):
			c = ansiRed
		}
		if c == "" {
			io.WriteString(w, line)
			continue
		}
		io.WriteString(w, c+strings.TrimSuffix(line, "\n")+ansiReset+"\n")
	}
}

// storedPolicy is the part of GET /gate-policies/{name} that apply reads.
type storedPolicy struct {
	Policy *gate.Policy `json:"policy"`
}

func getGatePolicy(ctx context.Context, c *client.Client, name string) (*storedPolicy, error) {
	raw, err := c.GetDocument(ctx, gatePolicies, name)
	if err != nil {
		return nil, err
	}
	var sp storedPolicy
	if err := json.Unmarshal(raw, &sp); err != nil || sp.Policy == nil {
		return nil, fmt.Errorf("kiln server: unexpected answer to GET %s/%s", gatePolicies, name)
	}
	return &sp, nil
}

// policyYAML writes a gate policy, normalized, as YAML.
func policyYAML(p *gate.Policy) (string, error) {
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(p.Normalized()); err != nil {
		return "", err
	}
	if err := enc.Close(); err != nil {
		return "", err
	}
	return b.String(), nil
}

// applyMonitorDocument applies a Monitor or an AlertReceiver. The diff is
// made here, against the stored document (receivers' secrets are masked
// on both sides, so a changed secret shows no diff but is applied).
func applyMonitorDocument(ctx context.Context, c *client.Client, d *manifestDoc, opts client.ChangeOptions, res applyResult) (applyResult, error) {
	var live, applied any
	var err error
	if d.Monitor != nil {
		applied = d.Monitor
		var mi *api.MonitorInfo
		if mi, err = c.GetMonitor(ctx, d.Name); err == nil {
			live = mi.Monitor
		}
	} else {
		masked := *d.Receiver
		masked.Spec = d.Receiver.Spec
		if masked.Spec.Secret != "" {
			masked.Spec.Secret = monitor.Masked
		}
		if len(masked.Spec.Headers) > 0 {
			masked.Spec.Headers = map[string]string{}
			for k := range d.Receiver.Spec.Headers {
				masked.Spec.Headers[k] = monitor.Masked
			}
		}
		applied = &masked
		var r *monitor.AlertReceiver
		if r, err = c.GetAlertReceiver(ctx, d.Name); err == nil {
			live = r
		}
	}
	if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return res, err
	}
	after, err := documentYAML(applied)
	if err != nil {
		return res, err
	}
	res.Result = "configured"
	if live == nil {
		res.Result = "created"
		res.Diff = api.UnifiedDiff("/dev/null", d.Ref(), "", after)
	} else {
		before, err := documentYAML(live)
		if err != nil {
			return res, err
		}
		if res.Diff = api.UnifiedDiff(d.Ref()+" (live)", d.Ref()+" (applied)", before, after); res.Diff == "" {
			res.Result = "unchanged"
		}
	}
	if opts.DryRun {
		return res, nil
	}
	var created, changed bool
	if d.Monitor != nil {
		out, err := c.ApplyMonitor(ctx, d.Monitor, opts.Actor)
		if err != nil {
			return res, err
		}
		created, changed = out.Created, out.Changed
	} else {
		out, err := c.ApplyAlertReceiver(ctx, d.Receiver)
		if err != nil {
			return res, err
		}
		created, changed = out.Created, out.Changed
	}
	switch {
	case created:
		res.Result = "created"
	case changed:
		res.Result = "configured"
	default:
		res.Result, res.Diff = "unchanged", ""
	}
	return res, nil
}

// documentYAML writes a document as YAML with the names of its JSON form.
func documentYAML(v any) (string, error) {
	var b strings.Builder
	if err := writeYAML(&b, v); err != nil {
		return "", err
	}
	return b.String(), nil
}

// applyPipelineDocument applies a Pipeline. The diff is made here, against
// the stored document (both normalized).
func applyPipelineDocument(ctx context.Context, c *client.Client, d *manifestDoc, opts client.ChangeOptions, res applyResult) (applyResult, error) {
	after, err := documentYAML(d.Pipeline)
	if err != nil {
		return res, err
	}
	live, err := c.GetPipeline(ctx, d.Name)
	switch {
	case errors.Is(err, errdefs.ErrNotFound):
		res.Result = "created"
		res.Diff = api.UnifiedDiff("/dev/null", d.Ref(), "", after)
	case err != nil:
		return res, err
	default:
		before, err := documentYAML(&live.Pipeline)
		if err != nil {
			return res, err
		}
		res.Result = "configured"
		if res.Diff = api.UnifiedDiff(d.Ref()+" (live)", d.Ref()+" (applied)", before, after); res.Diff == "" {
			res.Result = "unchanged"
		}
	}
	if opts.DryRun {
		return res, nil
	}
	out, err := c.ApplyPipeline(ctx, d.Pipeline, opts.Actor)
	if err != nil {
		return res, err
	}
	switch {
	case out.Created:
		res.Result = "created"
	case out.Changed:
		res.Result = "configured"
	default:
		res.Result, res.Diff = "unchanged", ""
	}
	return res, nil
}

// entitiesFirst moves the Entity and then the FeatureView documents to
// the front, keeping the order of everything else: a view's entities must
// exist when it is applied, and an Endpoint's spec.features must name views
// that exist. Feature documents depend on nothing else in a manifest.
func entitiesFirst(docs []*manifestDoc) {
	rank := func(d *manifestDoc) int {
		switch d.Kind {
		case feature.KindEntity:
			return 0
		case feature.KindFeatureView:
			return 1
		}
		return 2
	}
	sort.SliceStable(docs, func(i, j int) bool { return rank(docs[i]) < rank(docs[j]) })
}

// applyFeatureDocument applies an Entity or a FeatureView. The diff is
// made here, against the stored document (both normalized).
func applyFeatureDocument(ctx context.Context, c *client.Client, d *manifestDoc, opts client.ChangeOptions, res applyResult) (applyResult, error) {
	var doc any = d.Entity
	if d.FeatureView != nil {
		doc = d.FeatureView
	}
	after, err := documentYAML(doc)
	if err != nil {
		return res, err
	}
	var live any
	if d.Entity != nil {
		ev, err := c.Entity(ctx, d.Name, 0)
		if err == nil {
			live = ev.Entity
		} else if !errors.Is(err, errdefs.ErrNotFound) {
			return res, err
		}
	} else {
		vv, err := c.FeatureView(ctx, d.Name, 0)
		if err == nil {
			live = vv.FeatureView
		} else if !errors.Is(err, errdefs.ErrNotFound) {
			return res, err
		}
	}
	if live == nil {
		res.Result = "created"
		res.Diff = api.UnifiedDiff("/dev/null", d.Ref(), "", after)
	} else {
		before, err := documentYAML(live)
		if err != nil {
			return res, err
		}
		res.Result = "configured"
		if res.Diff = api.UnifiedDiff(d.Ref()+" (live)", d.Ref()+" (applied)", before, after); res.Diff == "" {
			res.Result = "unchanged"
		}
	}
	if opts.DryRun {
		return res, nil
	}
	var changed bool
	if d.Entity != nil {
		out, err := c.ApplyEntity(ctx, d.Entity, opts.Actor)
		if err != nil {
			return res, err
		}
		changed = out.Changed
	} else {
		out, err := c.ApplyFeatureView(ctx, d.FeatureView, opts.Actor)
		if err != nil {
			return res, err
		}
		changed = out.Changed
	}
	switch {
	case changed && live == nil:
		res.Result = "created"
	case changed:
		res.Result = "configured"
	default:
		res.Result, res.Diff = "unchanged", ""
	}
	return res, nil
}
