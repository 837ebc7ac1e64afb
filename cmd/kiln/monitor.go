package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/monitor"
)

func newMonitorCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "monitor", Short: "Model monitors: status, history, runs, reports, local drift"}
	f := &clientFlags{}
	f.register(cmd)
	cmd.AddCommand(newMonitorStatusCmd(f), newMonitorHistoryCmd(f), newMonitorRunCmd(f), newMonitorReportCmd(f))
	cmd.AddCommand(newMonitorDriftCmd())
	return cmd
}

func newMonitorStatusCmd(f *clientFlags) *cobra.Command {
	var endpoint string
	cmd := &cobra.Command{
		Use:   "status [NAME]",
		Short: "Each monitor's latest result: status, drift share, drifted features, firing alerts",
		Example: `  kiln monitor status
  kiln monitor status churn-drift -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			var ms []api.MonitorInfo
			if len(args) == 1 {
				mi, err := c.GetMonitor(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				ms = []api.MonitorInfo{*mi}
			} else if ms, err = c.ListMonitors(cmd.Context(), endpoint); err != nil {
				return err
			}
			var v any = ms
			if len(args) == 1 {
				v = ms[0]
			}
			return f.print(cmd.OutOrStdout(), v, func(w io.Writer) error {
				fmt.Fprintln(w, "MONITOR\tENDPOINT\tLAST RUN\tSTATUS\tDRIFT SHARE\tDRIFTED FEATURES\tFIRING ALERTS")
				for _, mi := range ms {
					r := mi.Latest
					last, status, share, drifted := "never", "pending", "-", "-"
					if r != nil {
						last, status = ago(r.Time), r.Status
						if r.Drift != nil {
							share = fmt.Sprintf("%.2f", r.Drift.Share)
							drifted = driftedFeatures(r)
						}
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\n", mi.Monitor.Metadata.Name, mi.Monitor.Spec.Endpoint, last, status, share, drifted, mi.FiringAlerts)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&endpoint, "endpoint", "", "only the monitors of this endpoint")
	return cmd
}

// driftedFeatures lists a result's drifted features ("3/10: a, b, c").
func driftedFeatures(r *monitor.Result) string {
	var names []string
	for _, f := range r.Drift.Features {
		if f.Drift {
			names = append(names, f.Name)
		}
	}
	s := fmt.Sprintf("%d/%d", r.Drift.Drifted, r.Drift.Total)
	if len(names) > 0 {
		if len(names) > 5 {
			names = append(names[:5], "…")
		}
		s += ": " + strings.Join(names, ", ")
	}
	return s
}

func ago(t time.Time) string {
	d := time.Since(t).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return t.UTC().Format("2006-01-02 15:04:05") + " (" + d.String() + " ago)"
}

func newMonitorHistoryCmd(f *clientFlags) *cobra.Command {
	var since time.Duration
	var limit int
	cmd := &cobra.Command{
		Use:   "history NAME",
		Short: "A monitor's results over time, with a sparkline of the drift share",
		Example: `  kiln monitor history churn-drift
  kiln monitor history churn-drift --since 24h -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			var from time.Time
			if since > 0 {
				from = time.Now().Add(-since)
			}
			rs, err := c.MonitorResults(cmd.Context(), args[0], from, time.Time{}, limit)
			if err != nil {
				return err
			}
			return f.print(cmd.OutOrStdout(), rs, func(w io.Writer) error {
				var shares []float64
				for _, r := range rs {
					if r.Drift != nil {
						shares = append(shares, r.Drift.Share)
					}
				}
				if len(shares) > 0 {
					fmt.Fprintf(w, "drift share  %s  (%d results)\n\n", sparkline(shares), len(rs))
				}
				fmt.Fprintln(w, "TIME\tSTATUS\tDRIFT SHARE\tDRIFTED\tREQUESTS\tERROR RATE\tP99\tOUTLIERS\tMESSAGE")
				for _, r := range rs {
					share, drifted, outliers := "-", "-", "-"
					if r.Drift != nil {
						share, drifted = fmt.Sprintf("%.2f", r.Drift.Share), fmt.Sprintf("%d/%d", r.Drift.Drifted, r.Drift.Total)
					}
					if r.Outliers != nil {
						outliers = fmt.Sprintf("%.3f", r.Outliers.Share)
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%.3f\t%s\t%s\t%s\n", r.Time.UTC().Format(time.RFC3339), r.Status, share, drifted,
						r.Traffic.Requests, r.Traffic.ErrorRate, (time.Duration(r.Traffic.LatencyP99 * float64(time.Second))).Round(time.Microsecond), outliers, clipString(r.Message))
				}
				return nil
			})
		},
	}
	cmd.Flags().DurationVar(&since, "since", 0, "only results of this last span (e.g. 24h)")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many (the newest) results")
	return cmd
}

// sparkline draws values in [0, 1] as block characters.
func sparkline(xs []float64) string {
	const bars = "▁▂▃▄▅▆▇█"
	runes := []rune(bars)
	var b strings.Builder
	for _, x := range xs {
		i := int(x * float64(len(runes)-1))
		i = max(0, min(i, len(runes)-1))
		b.WriteRune(runes[i])
	}
	return b.String()
}

func newMonitorRunCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "run NAME",
		Short:   "Evaluate a monitor now and print the result",
		Example: `  kiln monitor run churn-drift`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			r, err := c.RunMonitor(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return f.print(cmd.OutOrStdout(), r, func(w io.Writer) error {
				fmt.Fprintf(w, "Status:\t%s\n", r.Status)
				fmt.Fprintf(w, "Window:\t%s to %s\n", r.WindowStart.Format(time.RFC3339), r.WindowEnd.Format(time.RFC3339))
				if r.Reference != nil {
					ref := r.Reference.Kind
					if r.Reference.Dataset != "" {
						ref += " " + r.Reference.Dataset
					}
					fmt.Fprintf(w, "Reference:\t%s\n", ref)
				}
				fmt.Fprintf(w, "Requests:\t%d (%.2f/s, error rate %.3f)\n", r.Traffic.Requests, r.Traffic.RPS, r.Traffic.ErrorRate)
				if r.Drift != nil {
					fmt.Fprintf(w, "Drift share:\t%.2f (dataset drift: %v; %s)\n", r.Drift.Share, r.Drift.DatasetDrift, driftedFeatures(r))
					fmt.Fprintln(w, "\nFEATURE\tMETHOD\tSCORE\tTHRESHOLD\tDRIFT")
					for _, ft := range r.Drift.Features {
						score := strconv.FormatFloat(ft.Score, 'g', 4, 64)
						if ft.Error != "" {
							score = "error: " + ft.Error
						}
						fmt.Fprintf(w, "%s\t%s\t%s\t%g\t%v\n", ft.Name, ft.Method, score, ft.Threshold, ft.Drift)
					}
				}
				for _, tr := range r.Alerts {
					fmt.Fprintf(w, "Alert:\t%s %s → %s (%g)\n", tr.Rule, tr.From, tr.To, tr.Value)
				}
				if r.Message != "" {
					fmt.Fprintf(w, "Message:\t%s\n", r.Message)
				}
				return nil
			})
		},
	}
}

func newMonitorReportCmd(f *clientFlags) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "report NAME -o report.html",
		Short: "Save a monitor's self-contained HTML report",
		Example: `  kiln monitor report churn-drift -o churn.html
  kiln monitor report churn-drift --file churn.html`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" && strings.HasSuffix(f.output, ".html") {
				out = f.output // kiln monitor report NAME -o report.html
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			if out == "" || out == "-" {
				return c.MonitorReport(cmd.Context(), args[0], cmd.OutOrStdout())
			}
			tmp := out + ".tmp"
			fh, err := os.Create(tmp)
			if err != nil {
				return err
			}
			if err := c.MonitorReport(cmd.Context(), args[0], fh); err != nil {
				fh.Close()
				os.Remove(tmp)
				return err
			}
			if err := fh.Close(); err != nil {
				os.Remove(tmp)
				return err
			}
			if err := os.Rename(tmp, out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "wrote %s\n", out)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "file", "f", "", "where to write the report (default standard output)")
	return cmd
}
