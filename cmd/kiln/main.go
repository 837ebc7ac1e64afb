// Command kiln is Kiln's single binary: the server and the command-line
// client. Each command group lives in its own file; behaviour lives in the
// packages they call.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		code, msg := exitCode(err)
		if msg != nil {
			fmt.Fprintln(os.Stderr, "kiln:", msg)
		}
		stop()
		os.Exit(code)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "kiln",
		Short: "Kiln carries ML models through their whole life, in one binary",
		Long: `Kiln is an MLOps platform in one binary: experiment tracking and a model
registry that speak MLflow's REST API (point MLFLOW_TRACKING_URI at it),
artifact storage on a local folder or S3, model serving (kiln serve), and
versioned datasets with profiles, validation and lineage (kiln data).

Start a server with the embedded defaults (SQLite + ./kiln-data):
  kiln server

Then, from Python:
  export MLFLOW_TRACKING_URI=http://127.0.0.1:5000`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServerCmd(), newServeCmd(), newDataCmd(), newScoreCmd(), newVersionCmd())
	root.AddCommand(newApplyCmd(), newGetCmd(), newDescribeCmd(), newDeleteCmd(), newRolloutCmd(), newEndpointsCmd())
	root.AddCommand(newPackageCmd(), newDeployCmd())
	root.AddCommand(newExplainCmd(), newLineageCmd())
	root.AddCommand(newGateCmd())
	root.AddCommand(newModelCmd())
	root.AddCommand(newMonitorCmd(), newAlertsCmd(), newFeedbackCmd(), newPredictionsCmd())
	root.AddCommand(newFeatureCmd())
	root.AddCommand(newPipelineCmd(), newTuneCmd(), newStepCmd())
	root.AddCommand(newWhoamiCmd(), newUsersCmd(), newTokensCmd(), newWorkspacesCmd(), newGrantsCmd(), newAuditCmd(), newApprovalsCmd())
	root.AddCommand(newDocsCmd())
	return root
}
