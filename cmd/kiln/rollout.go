package main

// kiln rollout (status, promote, pause, resume, rollback) and kiln
// endpoints events: operating a live endpoint.

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/deploy"
)

func newRolloutCmd() *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{
		Use:   "rollout",
		Short: "Watch and steer an endpoint's rollout: status, promote, pause, resume, rollback",
		Long: `Watch and steer the change of an endpoint's model version. A canary moves
traffic to the new version step by step while its live error rate and p99
latency stay within the spec's bounds, and rolls back by itself otherwise; a
blue-green rollout switches at once. These commands act on it by hand; each
action is recorded with who ($KILN_ACTOR, else your login name) and why
(--reason).`,
		Example: `  kiln rollout status churn --watch      # exits 1 if the rollout fails or rolls back
  kiln rollout pause churn --reason "investigating latency"
  kiln rollout resume churn
  kiln rollout promote churn              # give the candidate 100% now
  kiln rollout rollback churn --reason "bad predictions"`,
	}
	f.register(cmd)
	cmd.AddCommand(f.rolloutStatusCmd())
	for _, a := range []struct{ action, short, done string }{
		{"promote", "Give the candidate version all traffic now, skipping the remaining steps", "promoted"},
		{"pause", "Hold a progressing rollout at its current step", "paused"},
		{"resume", "Continue a paused rollout (or retry one that was rolled back)", "resumed"},
		{"rollback", "Put all traffic back on the stable version at once", "rolled back"},
	} {
		cmd.AddCommand(f.rolloutActionCmd(a.action, a.short, a.done))
	}
	return cmd
}

func (f *clientFlags) rolloutActionCmd(action, short, done string) *cobra.Command {
	cf := &changeFlags{}
	cmd := &cobra.Command{
		Use:               action + " ENDPOINT",
		Short:             short,
		Example:           fmt.Sprintf("  kiln rollout %s churn --reason \"...\"", action),
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: f.completeEndpointArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			st, err := c.Rollout(cmd.Context(), args[0], action, cf.options(false))
			if err != nil {
				return err
			}
			return f.print(cmd.OutOrStdout(), st, func(w io.Writer) error {
				fmt.Fprintf(w, "endpoint/%s %s\n", args[0], done)
				writeRolloutStatus(w, st)
				return nil
			})
		},
	}
	cf.register(cmd)
	return cmd
}

// rolloutEnded says whether a rollout has nothing more to do, and whether
// it ended well.
func rolloutEnded(st *deploy.State) (ended, ok bool) {
	if st.Status.Pending != "" {
		return false, false // a moved alias the controller has yet to act on
	}
	ro := st.Status.Rollout
	if ro == nil {
		return true, true
	}
	switch ro.Phase {
	case deploy.PhaseSucceeded:
		return true, true
	case deploy.PhaseRolledBack, deploy.PhaseFailed:
		return true, false
	}
	return false, false
}

// writeRolloutStatus writes the live routes and the rollout's phase.
func writeRolloutStatus(out io.Writer, st *deploy.State) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if ro := st.Status.Rollout; ro != nil {
		fmt.Fprintf(w, "Rollout:\t%s %s\n", ro.Strategy, rolloutPhase(st))
		fmt.Fprintf(w, "Versions:\t%s/%d (stable) → %s/%d (candidate)\n", ro.Stable.Model, ro.Stable.Version, ro.Candidate.Model, ro.Candidate.Version)
		if ro.Message != "" {
			fmt.Fprintf(w, "Message:\t%s\n", ro.Message)
		}
		if a := ro.Analysis; a != nil {
			fmt.Fprintf(w, "Last analysis:\t%s\n", analysisLine(a))
		}
	} else {
		fmt.Fprintf(w, "Rollout:\tnone (changes reach traffic at once)\n")
	}
	if st.Status.Paused && (st.Status.Rollout == nil || st.Status.Rollout.Phase != deploy.PhasePaused) {
		fmt.Fprintf(w, "Paused:\tyes\n")
	}
	if p := st.Status.Pending; p != "" {
		fmt.Fprintf(w, "Pending:\t%s\n", p)
	}
	fmt.Fprintf(w, "Traffic:\t%s\n", liveRoutesSummary(st))
	w.Flush()
}

// statusLine is one line of a watched rollout: it changes only when
// something worth reporting does.
func statusLine(st *deploy.State) string {
	if p := st.Status.Pending; p != "" {
		return "pending: " + p + "; traffic " + liveRoutesSummary(st)
	}
	ro := st.Status.Rollout
	if ro == nil {
		return "no rollout; traffic " + liveRoutesSummary(st)
	}
	s := fmt.Sprintf("%s %s; traffic %s", ro.Strategy, rolloutPhase(st), liveRoutesSummary(st))
	if ro.Message != "" {
		s += "; " + ro.Message
	}
	return s
}

func (f *clientFlags) rolloutStatusCmd() *cobra.Command {
	var watch bool
	var interval, timeout time.Duration
	cmd := &cobra.Command{
		Use:   "status ENDPOINT",
		Short: "Show an endpoint's rollout; with --watch, follow it until it ends",
		Long: `Show the phase of an endpoint's rollout (progressing, paused, succeeded,
rolled_back, failed), its step, the stable and candidate versions, the last
analysis of the candidate's live metrics and the traffic split.

With --watch, a line is printed each time the rollout moves, until it ends:
the exit status is 0 when it succeeded, 1 when it was rolled back or failed
(so that a CI/CD pipeline can wait on it), and 2 when --timeout passes first.`,
		Example: `  kiln rollout status churn
  kiln rollout status churn --watch --timeout 30m`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: f.completeEndpointArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			if interval <= 0 {
				return fmt.Errorf("--interval must be positive")
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			ctx, out, name := cmd.Context(), cmd.OutOrStdout(), args[0]
			st, err := c.GetEndpoint(ctx, name)
			if err != nil {
				return err
			}
			if !watch {
				return f.print(out, st.Status.Rollout, func(w io.Writer) error {
					writeRolloutStatus(w, st)
					return nil
				})
			}
			var deadline <-chan time.Time
			if timeout > 0 {
				t := time.NewTimer(timeout)
				defer t.Stop()
				deadline = t.C
			}
			tick := time.NewTicker(interval)
			defer tick.Stop()
			last := ""
			for {
				if f.output == "table" {
					if line := statusLine(st); line != last {
						fmt.Fprintf(out, "%s  %s\n", time.Now().Format("15:04:05"), line)
						last = line
					}
				}
				if ended, ok := rolloutEnded(st); ended {
					if f.output != "table" {
						if err := f.print(out, st.Status.Rollout, nil); err != nil {
							return err
						}
					}
					if !ok {
						return exitError{code: 1, err: fmt.Errorf("the rollout of endpoint/%s %s", name, st.Status.Rollout.Phase)}
					}
					return nil
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-deadline:
					return exitError{code: 2, err: fmt.Errorf("the rollout of endpoint/%s has not ended after %s", name, timeout)}
				case <-tick.C:
				}
				if st, err = c.GetEndpoint(ctx, name); err != nil {
					return err
				}
			}
		},
	}
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "follow the rollout until it ends")
	cmd.Flags().DurationVar(&interval, "interval", 2*time.Second, "how often --watch asks the server")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "give up watching after this long (exit status 2); 0 waits for ever")
	return cmd
}

func newEndpointsCmd() *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{
		Use:     "endpoints",
		Aliases: []string{"endpoint"},
		Short:   "Endpoint history (the declarative objects themselves: kiln apply, get, describe, delete)",
	}
	f.register(cmd)
	var limit int
	events := &cobra.Command{
		Use:   "events ENDPOINT",
		Short: "List an endpoint's recorded changes: when, who, what and why (newest first)",
		Long: `List the events of an endpoint, newest first: every change of its spec
(create, update, delete), every rollout step, promotion, pause, resume and
rollback (by hand or automatic), every move of an alias it follows, with the
time, the actor and the reason.`,
		Example: `  kiln endpoints events churn
  kiln endpoints events churn --limit 200 -o json`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: f.completeEndpointArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			evs, err := c.EndpointEvents(cmd.Context(), args[0], limit)
			if err != nil {
				return err
			}
			if evs == nil {
				evs = []deploy.Event{}
			}
			return f.print(cmd.OutOrStdout(), evs, func(w io.Writer) error {
				writeEvents(w, evs, "")
				return nil
			})
		},
	}
	events.Flags().IntVar(&limit, "limit", 50, "how many of the last events (at most 1000)")
	cmd.AddCommand(events)
	return cmd
}
