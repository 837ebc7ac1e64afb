package main

import "github.com/spf13/cobra"

func newMonitorCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "monitor", Short: "Model monitors: status, history, reports", Hidden: true}
	cmd.AddCommand(newMonitorDriftCmd())
	return cmd
}
