package main

import "github.com/spf13/cobra"

// newPipelineCmd is the kiln pipeline command group (stub; its commands
// land next).
func newPipelineCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "pipeline", Aliases: []string{"pipelines"}, Short: "Pipelines: runs, status, logs, cancel, resume, triggers"}
	return cmd
}
