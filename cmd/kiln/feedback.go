package main

import "github.com/spf13/cobra"

func newFeedbackCmd() *cobra.Command {
	return &cobra.Command{Use: "feedback", Short: "Send ground-truth labels of logged predictions", Hidden: true}
}
