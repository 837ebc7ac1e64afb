package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/mlflowapi"
	"github.com/kiln-ml/kiln/store"
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print Kiln's version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, args []string) {
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "kiln %s\n", version)
			fmt.Fprintf(w, "  go:             %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
			fmt.Fprintf(w, "  mlflow api:     %s\n", mlflowapi.CompatVersion)
			fmt.Fprintf(w, "  schema version: %d\n", store.Migrations())
		},
	}
}
