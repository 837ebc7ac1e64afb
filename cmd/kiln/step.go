package main

import "github.com/spf13/cobra"

// newStepCmd is the kiln step command group, used inside a Kubernetes
// step's container (stub; kiln step exec lands next).
func newStepCmd() *cobra.Command {
	return &cobra.Command{Use: "step", Short: "Run one pipeline step attempt (inside a Kubernetes Job)", Hidden: true}
}
