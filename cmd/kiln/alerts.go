package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

func newAlertsCmd() *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{Use: "alerts", Short: "Monitor alerts: the active ones and their history"}
	f.register(cmd)
	var monitorName string
	list := &cobra.Command{
		Use:     "list",
		Short:   "The pending and firing alerts",
		Example: "  kiln alerts list\n  kiln alerts list --monitor churn-drift -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			al, err := c.Alerts(cmd.Context(), monitorName)
			if err != nil {
				return err
			}
			return f.print(cmd.OutOrStdout(), al.Alerts, func(w io.Writer) error {
				fmt.Fprintln(w, "MONITOR\tRULE\tSTATE\tSEVERITY\tVALUE\tSINCE\tLABELS")
				for _, a := range al.Alerts {
					since := a.ActiveSince
					if !a.FiredAt.IsZero() {
						since = a.FiredAt
					}
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%g\t%s\t%s\n", a.Monitor, a.Rule, a.State, a.Severity, a.Value, ago(since), labelString(a.Labels))
				}
				return nil
			})
		},
	}
	list.Flags().StringVar(&monitorName, "monitor", "", "only this monitor's alerts")
	var rule string
	var since time.Duration
	var limit int
	history := &cobra.Command{
		Use:     "history",
		Short:   "Alert state changes, newest first",
		Example: "  kiln alerts history --monitor churn-drift --since 24h",
		Args:    cobra.NoArgs,
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
			h, err := c.AlertHistory(cmd.Context(), monitorName, rule, from, time.Time{}, limit)
			if err != nil {
				return err
			}
			return f.print(cmd.OutOrStdout(), h.Events, func(w io.Writer) error {
				fmt.Fprintln(w, "TIME\tMONITOR\tRULE\tFROM\tTO\tVALUE\tLABELS")
				for _, e := range h.Events {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%g\t%s\n", e.Time.UTC().Format(time.RFC3339), e.Monitor, e.Rule, e.From, e.State, e.Value, labelString(e.Labels))
				}
				return nil
			})
		},
	}
	history.Flags().StringVar(&monitorName, "monitor", "", "only this monitor's events")
	history.Flags().StringVar(&rule, "rule", "", "only this rule's events")
	history.Flags().DurationVar(&since, "since", 0, "only events of this last span (e.g. 24h)")
	history.Flags().IntVar(&limit, "limit", 100, "at most this many events")
	cmd.AddCommand(list, history)
	return cmd
}

// labelString writes labels as k=v pairs, sorted, without the monitor
// and endpoint (shown in their own columns or implied).
func labelString(l map[string]string) string {
	var parts []string
	for k, v := range l {
		if k == "monitor" || k == "endpoint" || k == "alertname" {
			continue
		}
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}
