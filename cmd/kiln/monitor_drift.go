package main

import "github.com/spf13/cobra"

// newMonitorDriftCmd is `kiln monitor drift`: drift between two local
// tables, without a server.
func newMonitorDriftCmd() *cobra.Command {
	return &cobra.Command{Use: "drift", Short: "Compare two tables for data drift", Hidden: true}
}
