package main

// kiln model copy: copy a registered model version to another workspace
// (promotion dev → staging → prod), as a new version of a registered
// model there, tagged kiln.copied_from.

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/api"
)

func newModelCopyCmd(cf *clientFlags) *cobra.Command {
	var req api.CopyModelVersionRequest
	var from, description string
	f := clientFlags{output: "table"}
	cmd := &cobra.Command{
		Use:   "copy NAME/VERSION --to-workspace WS [--name NEW]",
		Short: "Copy a model version to a registered model of another workspace",
		Long: `Copy a registered model version of your workspace (--workspace, default
$KILN_WORKSPACE, else the default workspace) to a registered model of another
workspace (by default the model of the same name there: names are per
workspace), created there when absent: the new version has the same source,
run, logged model and tags, plus kiln.copied_from = WORKSPACE:NAME/VERSION.
It needs read access to the model here and editor (write) access to
registered models in the target workspace.`,
		Example: `  kiln model copy churn/3 --workspace dev --to prod     # prod's churn
  kiln model copy churn/3 --workspace dev --to-workspace prod --name churn-prod
  KILN_WORKSPACE=staging kiln model copy churn-staging/1 --to-workspace prod --name churn-prod -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, version, err := cardArg(args[0])
			if err != nil {
				return err
			}
			if err := f.checkOutput(); err != nil {
				return err
			}
			if req.Workspace == "" {
				return fmt.Errorf("--to-workspace (--to) is required")
			}
			if cmd.Flags().Changed("description") {
				req.Description = &description
			}
			f.server = cf.server
			c, err := f.client()
			if err != nil {
				return err
			}
			if from != "" {
				c.Workspace = from
			}
			v, err := c.CopyModelVersion(cmd.Context(), name, version, req)
			if err != nil {
				return err
			}
			return f.print(cmd.OutOrStdout(), v, func(w io.Writer) error {
				fmt.Fprintln(w, "WORKSPACE\tMODEL\tVERSION\tCOPIED FROM\tSOURCE")
				fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\n", v.Workspace, v.Name, v.Version, v.CopiedFrom, v.Source)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&from, "workspace", "", "the workspace the version is in (default $KILN_WORKSPACE, else default)")
	cmd.Flags().StringVar(&req.Workspace, "to-workspace", "", "the workspace to copy to (required)")
	cmd.Flags().StringVar(&req.Workspace, "to", "", "the same as --to-workspace")
	cmd.Flags().StringVar(&req.Name, "name", "", "the registered model to copy to, created there when absent (default: the same name)")
	cmd.Flags().StringVar(&description, "description", "", "the new version's description (default: the source's)")
	cmd.Flags().StringVarP(&f.output, "output", "o", "table", "output format: table, json or yaml")
	return cmd
}
