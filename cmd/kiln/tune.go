package main

import "github.com/spf13/cobra"

// newTuneCmd is the kiln tune command (stub; it lands next).
func newTuneCmd() *cobra.Command {
	return &cobra.Command{Use: "tune", Short: "Hyperparameter tuning studies (TPE, random, grid; median and ASHA pruning)"}
}
