package main

import "github.com/spf13/cobra"

func newMonitorCmd() *cobra.Command {
	return &cobra.Command{Use: "monitor", Short: "Model monitors: status, history, reports", Hidden: true}
}
