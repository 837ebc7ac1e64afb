package main

// kiln get, kiln describe and kiln delete: the declarative objects
// (endpoints, gate policies) as the server holds them.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/api/client"
	"github.com/kiln-ml/kiln/deploy"
	"github.com/kiln-ml/kiln/deploy/gate"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/monitor"
	"github.com/kiln-ml/kiln/pipeline"
)

// Resource types of kiln get, describe and delete, by every name they
// answer to.
const (
	resEndpoint   = "endpoint"
	resGatePolicy = "gatepolicy"
	resMonitor    = "monitor"
	resReceiver   = "alertreceiver"
	resPipeline   = "pipeline"
)

var resourceNames = map[string]string{
	"endpoint": resEndpoint, "endpoints": resEndpoint, "ep": resEndpoint,
	"gatepolicy": resGatePolicy, "gatepolicies": resGatePolicy, "gate-policy": resGatePolicy, "gate-policies": resGatePolicy, "gp": resGatePolicy,
	"monitor": resMonitor, "monitors": resMonitor, "mon": resMonitor,
	"alertreceiver": resReceiver, "alertreceivers": resReceiver, "alert-receiver": resReceiver, "alert-receivers": resReceiver, "ar": resReceiver,
	"pipeline": resPipeline, "pipelines": resPipeline, "pl": resPipeline,
}

func resourceType(arg string) (string, error) {
	if t, ok := resourceNames[strings.ToLower(arg)]; ok {
		return t, nil
	}
	return "", fmt.Errorf("unknown resource type %q: want endpoints, gatepolicies, monitors, alertreceivers or pipelines", arg)
}

// completeEndpoints completes endpoint names from the server.
func (f *clientFlags) completeEndpoints(cmd *cobra.Command, toComplete string) ([]string, cobra.ShellCompDirective) {
	c, err := f.client()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := withTimeout(cmd.Context(), 2*time.Second)
	defer cancel()
	states, err := c.ListEndpoints(ctx)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var names []string
	for _, s := range states {
		if strings.HasPrefix(s.Endpoint.Metadata.Name, toComplete) {
			names = append(names, s.Endpoint.Metadata.Name)
		}
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

// completeEndpointArg completes the first argument with endpoint names.
func (f *clientFlags) completeEndpointArg(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return f.completeEndpoints(cmd, toComplete)
}

// completeTypeThenName completes a resource type, then (for endpoints) a
// name.
func (f *clientFlags) completeTypeThenName(types ...string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		switch len(args) {
		case 0:
			return types, cobra.ShellCompDirectiveNoFileComp
		case 1:
			switch t, _ := resourceType(args[0]); t {
			case resEndpoint:
				return f.completeEndpoints(cmd, toComplete)
			case resPipeline:
				return f.completePipelines(cmd, toComplete)
			}
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
}

func newGetCmd() *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{
		Use:   "get endpoints|endpoint NAME|gatepolicies|gatepolicy NAME|monitors|monitor NAME|alertreceivers|alertreceiver NAME|pipelines|pipeline NAME",
		Short: "List endpoints, gate policies, monitors, alert receivers or pipelines, or show one",
		Long: `List the endpoints or gate policies of the server, or show one.

With --output yaml (or json) an endpoint or a gate policy is printed as the
document kiln apply takes, so the server's state can be written to git and
applied back unchanged:

  kiln get endpoint churn -o yaml > churn.yaml
  kiln apply -f churn.yaml            # endpoint/churn unchanged

A listing with -o yaml is a stream of documents separated by ---. The live
status of an endpoint (routes, rollout, statistics, events) is what kiln
describe shows.`,
		Example: `  kiln get endpoints
  kiln get endpoint churn -o yaml
  kiln get gatepolicies
  kiln get pipeline churn-retrain -o yaml > churn-retrain.yaml`,
		Args:              cobra.RangeArgs(1, 2),
		ValidArgsFunction: f.completeTypeThenName("endpoints", "gatepolicies", "monitors", "alertreceivers", "pipelines"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			t, err := resourceType(args[0])
			if err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			ctx, w := cmd.Context(), cmd.OutOrStdout()
			name := ""
			if len(args) == 2 {
				name = args[1]
			}
			switch t {
			case resEndpoint:
				return f.getEndpoints(ctx, w, c, name)
			case resMonitor, resReceiver:
				return f.getMonitorDocuments(ctx, w, c, t, name)
			case resPipeline:
				return f.getPipelineDocuments(ctx, w, c, name)
			default:
				return f.getGatePolicies(ctx, w, c, name)
			}
		},
	}
	f.register(cmd)
	return cmd
}

func (f *clientFlags) getEndpoints(ctx context.Context, w io.Writer, c *client.Client, name string) error {
	var states []*deploy.State
	if name != "" {
		st, err := c.GetEndpoint(ctx, name)
		if err != nil {
			return err
		}
		states = []*deploy.State{st}
	} else {
		var err error
		if states, err = c.ListEndpoints(ctx); err != nil {
			return err
		}
	}
	switch f.output {
	case "yaml":
		for i, st := range states {
			if i > 0 {
				io.WriteString(w, "---\n")
			}
			data, err := api.EndpointYAML(&st.Endpoint)
			if err != nil {
				return err
			}
			w.Write(data)
		}
		return nil
	case "json":
		if name != "" {
			return f.print(w, &states[0].Endpoint, nil)
		}
		docs := make([]*deploy.Endpoint, len(states))
		for i, st := range states {
			docs[i] = &st.Endpoint
		}
		return f.print(w, docs, nil)
	}
	return f.print(w, nil, func(w io.Writer) error {
		fmt.Fprintln(w, "NAME\tROUTES\tSHADOW\tROLLOUT\tUPDATED\tBY")
		for _, st := range states {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", st.Endpoint.Metadata.Name, liveRoutesSummary(st), shadowSummary(st.Status.Shadow),
				rolloutSummary(st), formatTime(st.Status.UpdatedAt), dash(st.Status.UpdatedBy))
		}
		return nil
	})
}

// liveRoutesSummary lists the live routes: main=churn/6:90%,canary=churn/7:10%.
func liveRoutesSummary(st *deploy.State) string {
	routes := st.Status.Routes
	if len(routes) == 0 {
		return "-"
	}
	total := 0.0
	for _, r := range routes {
		total += r.Weight
	}
	parts := make([]string, 0, len(routes))
	for _, r := range routes {
		parts = append(parts, fmt.Sprintf("%s=%s/%d:%s", r.Name, r.Model, r.Version, percent(r.Weight, total)))
	}
	return strings.Join(parts, ",")
}

func percent(w, total float64) string {
	if total <= 0 {
		return "0%"
	}
	return strconv.FormatFloat(100*w/total, 'f', -1, 64) + "%"
}

func shadowSummary(sh *deploy.LiveShadow) string {
	if sh == nil {
		return "-"
	}
	return fmt.Sprintf("%s/%d:%s%%", sh.Model, sh.Version, strconv.FormatFloat(sh.Percent, 'f', -1, 64))
}

func rolloutSummary(st *deploy.State) string {
	ro := st.Status.Rollout
	if ro == nil {
		return "-"
	}
	s := ro.Strategy + " " + ro.Phase
	if ro.Phase == deploy.PhaseProgressing || ro.Phase == deploy.PhasePaused {
		if spec := st.Endpoint.Spec.Rollout; spec != nil && len(spec.Steps) > 0 {
			s += fmt.Sprintf(" (step %d/%d)", ro.Step+1, len(spec.Steps))
		}
	}
	return s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// policyDocs reads the policies of a gate-policy API answer: a list
// ({"policies": [stored…]}) or one stored policy ({"policy": …}).
func policyDocs(raw json.RawMessage) ([]map[string]any, error) {
	var list struct {
		Policies []struct {
			Policy map[string]any `json:"policy"`
		} `json:"policies"`
		Policy map[string]any `json:"policy"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf("kiln server: unexpected gate-policy answer: %w", err)
	}
	if list.Policy != nil {
		return []map[string]any{list.Policy}, nil
	}
	out := make([]map[string]any, 0, len(list.Policies))
	for _, p := range list.Policies {
		if p.Policy != nil {
			out = append(out, p.Policy)
		}
	}
	return out, nil
}

func (f *clientFlags) getGatePolicies(ctx context.Context, w io.Writer, c *client.Client, name string) error {
	var raw json.RawMessage
	var err error
	if name != "" {
		raw, err = c.GetDocument(ctx, gatePolicies, name)
	} else {
		raw, err = c.GetDocument(ctx, gatePolicies)
	}
	if err != nil {
		return err
	}
	docs, err := policyDocs(raw)
	if err != nil {
		return err
	}
	switch f.output {
	case "yaml":
		for i, d := range docs {
			if i > 0 {
				io.WriteString(w, "---\n")
			}
			if err := writeYAML(w, d); err != nil {
				return err
			}
		}
		return nil
	case "json":
		if name != "" && len(docs) == 1 {
			return f.print(w, docs[0], nil)
		}
		return f.print(w, docs, nil)
	}
	return f.print(w, nil, func(w io.Writer) error {
		fmt.Fprintln(w, "NAME\tMODEL\tDATA\tBASELINE\tMETRICS\tPROTECTS")
		for _, d := range docs {
			md, _ := d["metadata"].(map[string]any)
			spec, _ := d["spec"].(map[string]any)
			var metrics []string
			ms, _ := spec["metrics"].([]any)
			for _, m := range ms {
				if mm, ok := m.(map[string]any); ok {
					metrics = append(metrics, fmt.Sprint(mm["name"]))
				}
			}
			var protects []string
			for _, key := range []string{"protect_aliases", "protect_endpoints"} {
				l, _ := spec[key].([]any)
				for _, v := range l {
					prefix := "@"
					if key == "protect_endpoints" {
						prefix = "endpoint/"
					}
					protects = append(protects, prefix+fmt.Sprint(v))
				}
			}
			baseline, _ := spec["baseline"].(string)
			if baseline == "" {
				baseline = gate.DefaultBaseline
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", str(md["name"]), str(spec["model"]), str(spec["data"]), baseline,
				dash(strings.Join(metrics, ",")), dash(strings.Join(protects, ",")))
		}
		return nil
	})
}

func str(v any) string {
	if s, ok := v.(string); ok && s != "" {
		return s
	}
	return "-"
}

// describeResult is what kiln describe endpoint prints with --output
// json|yaml.
type describeResult struct {
	State  *deploy.State       `json:"state"`
	Stats  []deploy.RouteStats `json:"stats"`
	Events []deploy.Event      `json:"events"`
}

func newDescribeCmd() *cobra.Command {
	f := &clientFlags{}
	var events int
	cmd := &cobra.Command{
		Use:   "describe endpoint NAME",
		Short: "Show an endpoint in full: spec, live routes, rollout, statistics and events",
		Long: `Show an endpoint in full: a summary of its spec, the routes traffic reaches
now with their weights and states (loading, ready, failed, unloaded), the
rollout's phase and step with its last analysis, live statistics per route
(requests per second, error rate, p99 latency over the last minute) and the
last events (who changed what, when and why).`,
		Example: `  kiln describe endpoint churn
  kiln describe endpoint churn -o json`,
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: f.completeTypeThenName("endpoint"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			if t, err := resourceType(args[0]); err != nil {
				return err
			} else if t != resEndpoint {
				return fmt.Errorf("describe shows endpoints; use kiln get %s %s -o yaml", args[0], args[1])
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			ctx, name := cmd.Context(), args[1]
			st, err := c.GetEndpoint(ctx, name)
			if err != nil {
				return err
			}
			res := describeResult{State: st}
			// Statistics and events complete the picture; without them the
			// spec and status are still worth showing.
			var statsErr, eventsErr error
			res.Stats, statsErr = c.EndpointStats(ctx, name)
			res.Events, eventsErr = c.EndpointEvents(ctx, name, events)
			if f.output != "table" {
				if statsErr != nil {
					return statsErr
				}
				if eventsErr != nil {
					return eventsErr
				}
				return f.print(cmd.OutOrStdout(), res, nil)
			}
			return describeEndpoint(cmd.OutOrStdout(), res, statsErr, eventsErr)
		},
	}
	f.register(cmd)
	cmd.Flags().IntVar(&events, "events", 10, "how many of the last events to show")
	return cmd
}

func fmtFloat(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func refString(model string, r deploy.ModelRef) string {
	m := r.Model
	if m == "" {
		m = model
	}
	if r.Alias != "" {
		return m + "@" + r.Alias
	}
	return m + "/" + r.Version
}

func durationString(d deploy.Duration) string {
	if d == 0 {
		return "-"
	}
	return d.D().String()
}

func describeEndpoint(out io.Writer, res describeResult, statsErr, eventsErr error) error {
	st := res.State
	e, s := &st.Endpoint, &st.Status
	spec := &e.Spec
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "Name:\t%s\n", e.Metadata.Name)
	if e.Metadata.Description != "" {
		fmt.Fprintf(w, "Description:\t%s\n", e.Metadata.Description)
	}
	if len(e.Metadata.Labels) > 0 {
		keys := make([]string, 0, len(e.Metadata.Labels))
		for k := range e.Metadata.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			keys[i] = k + "=" + e.Metadata.Labels[k]
		}
		fmt.Fprintf(w, "Labels:\t%s\n", strings.Join(keys, ", "))
	}
	if spec.Model != "" {
		fmt.Fprintf(w, "Model:\t%s\n", spec.Model)
	}
	fmt.Fprintf(w, "Revision:\t%d, updated %s by %s (created %s)\n", s.Revision, formatTime(s.UpdatedAt), dash(s.UpdatedBy), formatTime(s.CreatedAt))
	if s.Message != "" {
		fmt.Fprintf(w, "Message:\t%s\n", s.Message)
	}
	if spec.Shadow != nil {
		fmt.Fprintf(w, "Shadow:\t%s, %s%% of requests mirrored\n", refString(spec.Model, spec.Shadow.ModelRef), fmtFloat(spec.Shadow.Percent))
	}
	if ex := spec.Experiment; ex != nil {
		fmt.Fprintf(w, "Experiment:\tvariants are the routes, assigned by header %s", ex.KeyHeader)
		if ex.Metric != "" {
			fmt.Fprintf(w, ", compared on %s", ex.Metric)
		}
		fmt.Fprintln(w)
	}
	if ro := spec.Rollout; ro != nil {
		fmt.Fprintf(w, "Rollout:\t%s", ro.Strategy)
		if len(ro.Steps) > 0 {
			steps := make([]string, len(ro.Steps))
			for i, stp := range ro.Steps {
				steps[i] = fmtFloat(stp.Weight) + "%"
				if stp.Interval > 0 {
					steps[i] += " for " + stp.Interval.D().String()
				}
			}
			fmt.Fprintf(w, ", steps %s", strings.Join(steps, " → "))
		}
		fmt.Fprintln(w)
		if a := ro.Analysis; a != nil {
			var bounds []string
			if a.MaxErrorRate != nil {
				bounds = append(bounds, "error rate ≤ "+fmtFloat(*a.MaxErrorRate*100)+"%")
			}
			if a.MaxP99Latency > 0 {
				bounds = append(bounds, "p99 ≤ "+a.MaxP99Latency.D().String())
			}
			if q := a.Quality; q != nil {
				if q.Min != nil {
					bounds = append(bounds, q.Metric+" ≥ "+fmtFloat(*q.Min))
				}
				if q.Max != nil {
					bounds = append(bounds, q.Metric+" ≤ "+fmtFloat(*q.Max))
				}
			}
			if a.MinRequests > 0 {
				bounds = append(bounds, "after "+strconv.Itoa(a.MinRequests)+" requests")
			}
			fmt.Fprintf(w, "Analysis:\t%s\n", strings.Join(bounds, ", "))
		}
	}
	if c := spec.Capacity; c != nil {
		fmt.Fprintf(w, "Capacity:\tmax concurrency %d, workers %d-%d, queue %d (timeout %s)\n", c.MaxConcurrency, c.MinWorkers, c.MaxWorkers, c.QueueSize, durationString(c.QueueTimeout))
	}
	w.Flush()

	fmt.Fprintln(out, "\nSpec routes:")
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  NAME\tMODEL\tWEIGHT")
	for _, r := range spec.Routes {
		fmt.Fprintf(w, "  %s\t%s\t%s\n", r.Name, refString(spec.Model, r.ModelRef), fmtFloat(r.Weight))
	}
	w.Flush()

	fmt.Fprintln(out, "\nLive routes:")
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  NAME\tMODEL\tVERSION\tWEIGHT\tSHARE\tSTATE\tREASON")
	total := 0.0
	for _, r := range s.Routes {
		total += r.Weight
	}
	for _, r := range s.Routes {
		fmt.Fprintf(w, "  %s\t%s\t%d\t%s\t%s\t%s\t%s\n", r.Name, r.Model, r.Version, fmtFloat(r.Weight), percent(r.Weight, total), dash(r.State), dash(r.Reason))
	}
	if sh := s.Shadow; sh != nil {
		fmt.Fprintf(w, "  (shadow)\t%s\t%d\t-\t%s%%\t%s\t%s\n", sh.Model, sh.Version, fmtFloat(sh.Percent), dash(sh.State), dash(sh.Reason))
	}
	w.Flush()
	if s.Pending != "" {
		fmt.Fprintf(out, "  Pending: %s; the change starts at the controller's next tick\n", s.Pending)
	}

	if ro := s.Rollout; ro != nil {
		fmt.Fprintln(out, "\nRollout:")
		w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintf(w, "  Phase:\t%s\n", rolloutPhase(st))
		fmt.Fprintf(w, "  Versions:\t%s/%d (stable) → %s/%d (candidate)\n", ro.Stable.Model, ro.Stable.Version, ro.Candidate.Model, ro.Candidate.Version)
		fmt.Fprintf(w, "  Started:\t%s", formatTime(ro.StartedAt))
		if ro.FinishedAt > 0 {
			fmt.Fprintf(w, ", finished %s", formatTime(ro.FinishedAt))
		}
		fmt.Fprintln(w)
		if ro.Message != "" {
			fmt.Fprintf(w, "  Message:\t%s\n", ro.Message)
		}
		if a := ro.Analysis; a != nil {
			fmt.Fprintf(w, "  Last analysis:\t%s\n", analysisLine(a))
		}
		w.Flush()
	}

	fmt.Fprintln(out, "\nStatistics:")
	if statsErr != nil {
		fmt.Fprintf(out, "  unavailable: %v\n", errdefs.Message(statsErr))
	} else {
		w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		window := 0.0
		for _, rs := range res.Stats {
			window = max(window, rs.WindowSeconds)
		}
		fmt.Fprintf(w, "  NAME\tKIND\tVERSION\tRPS\tERROR RATE\tP99\tREQUESTS (%s)\tTOTAL\n", windowLabel(window))
		for _, rs := range res.Stats {
			version := "-"
			if rs.Version > 0 {
				version = strconv.FormatInt(rs.Version, 10)
			}
			fmt.Fprintf(w, "  %s\t%s\t%s\t%.1f\t%s\t%s\t%d\t%d\n", rs.Name, rs.Kind, version, rs.RPS, ratePercent(rs.Window),
				p99(rs.Window), rs.Window.Requests, rs.Total.Requests)
		}
		w.Flush()
	}

	fmt.Fprintln(out, "\nEvents:")
	if eventsErr != nil {
		fmt.Fprintf(out, "  unavailable: %v\n", errdefs.Message(eventsErr))
	} else if len(res.Events) == 0 {
		fmt.Fprintln(out, "  none")
	} else {
		w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		writeEvents(w, res.Events, "  ")
		w.Flush()
	}
	return nil
}

func windowLabel(seconds float64) string {
	if seconds <= 0 {
		return "window"
	}
	return "last " + (time.Duration(seconds * float64(time.Second))).Round(time.Second).String()
}

func ratePercent(c deploy.Counts) string {
	if c.Requests == 0 {
		return "-"
	}
	return strconv.FormatFloat(100*c.ErrorRate, 'f', 2, 64) + "%"
}

func p99(c deploy.Counts) string {
	if c.Requests == 0 {
		return "-"
	}
	return strconv.FormatFloat(c.P99Ms, 'f', 1, 64) + " ms"
}

func analysisLine(a *deploy.AnalysisResult) string {
	verdict := "passed"
	if !a.Passed {
		verdict = "not passed"
	}
	s := fmt.Sprintf("%s at %s: %d requests, %d errors (%.2f%%), p99 %.1f ms", verdict, formatTime(a.Time), a.Requests, a.Errors, 100*a.ErrorRate, a.P99Ms)
	if a.Quality != nil {
		s += ", quality " + fmtFloat(*a.Quality)
	}
	if a.Reason != "" {
		s += ": " + a.Reason
	}
	return s
}

// rolloutPhase says where a rollout is: "progressing, step 2 of 3 (50%)".
func rolloutPhase(st *deploy.State) string {
	ro := st.Status.Rollout
	s := ro.Phase
	if ro.Phase != deploy.PhaseProgressing && ro.Phase != deploy.PhasePaused {
		return s
	}
	if spec := st.Endpoint.Spec.Rollout; spec != nil && len(spec.Steps) > 0 && ro.Step >= 0 && ro.Step < len(spec.Steps) {
		s += fmt.Sprintf(", step %d of %d (%s%%", ro.Step+1, len(spec.Steps), fmtFloat(spec.Steps[ro.Step].Weight))
		if ro.StepStartedAt > 0 {
			s += " since " + formatEventTime(ro.StepStartedAt)
		}
		s += ")"
	}
	return s
}

func formatEventTime(ms int64) string {
	if ms == 0 {
		return "-"
	}
	return time.UnixMilli(ms).Local().Format("2006-01-02 15:04:05")
}

// writeEvents writes events as table rows (tw is a tabwriter).
func writeEvents(w io.Writer, evs []deploy.Event, indent string) {
	fmt.Fprintf(w, "%sTIME\tACTOR\tACTION\tREASON\n", indent)
	for _, ev := range evs {
		fmt.Fprintf(w, "%s%s\t%s\t%s\t%s\n", indent, formatEventTime(ev.Time), dash(ev.Actor), ev.Action, dash(ellipsis(ev.Reason, 100)))
	}
}

func newDeleteCmd() *cobra.Command {
	f := &clientFlags{}
	cf := &changeFlags{}
	var files []string
	var ignoreNotFound bool
	cmd := &cobra.Command{
		Use:   "delete endpoint|gatepolicy|monitor|alertreceiver|pipeline NAME | delete -f FILE|DIR|-",
		Short: "Delete an endpoint or a gate policy, by name or by the documents that describe it",
		Long: `Delete an endpoint (it stops serving; its events stay) or a gate policy, named
on the command line or by the documents of -f (every Endpoint and GatePolicy
they hold, in order). The deletion is recorded with who ($KILN_ACTOR, else
your login name) and why (--reason).`,
		Example: `  kiln delete endpoint churn --reason "replaced by churn-v2"
  kiln delete -f endpoint.yaml`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(files) > 0 {
				return cobra.NoArgs(cmd, args)
			}
			return cobra.ExactArgs(2)(cmd, args)
		},
		ValidArgsFunction: f.completeTypeThenName("endpoint", "gatepolicy", "monitor", "alertreceiver", "pipeline"),
		RunE: func(cmd *cobra.Command, args []string) error {
			type target struct{ kind, name string }
			var targets []target
			if len(files) > 0 {
				docs, err := readManifests(files, cmd.InOrStdin())
				if err != nil {
					return reportManifestErrors(cmd.ErrOrStderr(), err)
				}
				for _, d := range docs {
					t := resEndpoint
					switch d.Kind {
					case kindGatePolicy:
						t = resGatePolicy
					case monitor.KindMonitor:
						t = resMonitor
					case monitor.KindAlertReceiver:
						t = resReceiver
					case pipeline.KindPipeline:
						t = resPipeline
					}
					targets = append(targets, target{t, d.Name})
				}
			} else {
				t, err := resourceType(args[0])
				if err != nil {
					return err
				}
				targets = append(targets, target{t, args[1]})
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			opts := cf.options(false)
			for _, t := range targets {
				var err error
				switch t.kind {
				case resEndpoint:
					err = c.DeleteEndpoint(cmd.Context(), t.name, opts)
				case resMonitor:
					err = c.DeleteMonitor(cmd.Context(), t.name)
				case resReceiver:
					err = c.DeleteAlertReceiver(cmd.Context(), t.name)
				case resPipeline:
					err = c.DeletePipeline(cmd.Context(), t.name)
				default:
					err = c.DeleteDocument(cmd.Context(), gatePolicies, t.name, opts)
				}
				ref := t.kind + "/" + t.name
				switch {
				case errors.Is(err, errdefs.ErrNotFound) && ignoreNotFound:
					fmt.Fprintf(cmd.OutOrStdout(), "%s not found\n", ref)
				case err != nil:
					return fmt.Errorf("%s: %w", ref, err)
				default:
					fmt.Fprintf(cmd.OutOrStdout(), "%s deleted\n", ref)
				}
			}
			return nil
		},
	}
	f.register(cmd)
	cf.register(cmd)
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "delete what these documents describe: a file, a folder, or - (repeatable)")
	cmd.Flags().BoolVar(&ignoreNotFound, "ignore-not-found", false, "report what does not exist instead of failing")
	cmd.MarkFlagFilename("filename", "yaml", "yml", "json")
	return cmd
}

// getMonitorDocuments prints monitors or alert receivers: as the
// documents kiln apply takes with -o yaml|json (a listing with -o yaml is
// a stream of documents), else as a table.
func (f *clientFlags) getMonitorDocuments(ctx context.Context, w io.Writer, c *client.Client, t, name string) error {
	var docs []any
	var rows [][]string
	header := "NAME\tENDPOINT\tREFERENCE\tWINDOW\tEVERY\tALERT RULES\tGENERATION"
	if t == resMonitor {
		var ms []api.MonitorInfo
		if name != "" {
			mi, err := c.GetMonitor(ctx, name)
			if err != nil {
				return err
			}
			ms = []api.MonitorInfo{*mi}
		} else {
			var err error
			if ms, err = c.ListMonitors(ctx, ""); err != nil {
				return err
			}
		}
		for _, mi := range ms {
			m := mi.Monitor
			docs = append(docs, m)
			eff := m.Spec.Effective()
			rows = append(rows, []string{m.Metadata.Name, m.Spec.Endpoint, eff.Reference.String(), eff.Window.String(), eff.Schedule.Every.String(),
				strconv.Itoa(len(m.Spec.Alerts)), strconv.FormatInt(mi.Generation, 10)})
		}
	} else {
		header = "NAME\tTYPE\tURL\tSIGNED"
		var rs []*monitor.AlertReceiver
		if name != "" {
			r, err := c.GetAlertReceiver(ctx, name)
			if err != nil {
				return err
			}
			rs = []*monitor.AlertReceiver{r}
		} else {
			var err error
			if rs, err = c.ListAlertReceivers(ctx); err != nil {
				return err
			}
		}
		for _, r := range rs {
			docs = append(docs, r)
			rows = append(rows, []string{r.Metadata.Name, r.Spec.Type, r.Spec.URL, strconv.FormatBool(r.Spec.Secret != "")})
		}
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
	case f.output != "table" && name != "" && len(docs) == 1:
		return f.print(w, docs[0], nil)
	}
	return f.print(w, docs, func(w io.Writer) error {
		fmt.Fprintln(w, header)
		for _, r := range rows {
			fmt.Fprintln(w, strings.Join(r, "\t"))
		}
		return nil
	})
}
