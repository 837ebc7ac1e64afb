package main

// kiln model card: a registered model version's model card, assembled by
// the server from what it stores (details, parameters, training data,
// metrics per slice) and the text people edit (overview, license,
// considerations), printed as Markdown, HTML or JSON; `card edit` changes
// the text.

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/kiln-ml/kiln/lineage"
)

func newModelCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "model",
		Short: "Registered model versions: their model cards",
	}
	cmd.PersistentFlags().StringVar(&f.server, "server", "", "Kiln server URL (default $KILN_URL, else an http(s) $MLFLOW_TRACKING_URI, else "+defaultServer+")")
	cmd.AddCommand(newModelCardCmd(&f))
	cmd.AddCommand(newModelCopyCmd(&f))
	return cmd
}

// cardArg parses NAME/VERSION or models:/NAME/VERSION.
func cardArg(s string) (string, int64, error) {
	name, v, err := parseModelVersion(s)
	if err != nil {
		return "", 0, fmt.Errorf("invalid model version %q: want NAME/VERSION or models:/NAME/VERSION with a version from 1", s)
	}
	return name, v, nil
}

func newModelCardCmd(cf *clientFlags) *cobra.Command {
	var format, out string
	cmd := &cobra.Command{
		Use:   "card NAME/VERSION",
		Short: "Print a model version's model card (Markdown, HTML or JSON)",
		Long: `Print the model card of a registered model version: its details (description,
owners, dates, aliases, stage, tags), model parameters (architecture, flavors,
the training run's parameters, the signature, the training datasets), the
quantitative analysis (the run's metrics, the latest gate results and the
performance its endpoints' monitors measured, overall and per slice) and the
considerations people wrote with "kiln model card edit".`,
		Example: `  kiln model card churn/3
  kiln model card models:/churn/3 --format html -o churn-3.html
  kiln model card churn/3 --format json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, version, err := cardArg(args[0])
			if err != nil {
				return err
			}
			switch format {
			case "markdown", "md":
				format = "markdown"
			case "html", "json":
			default:
				return fmt.Errorf("unknown --format %q: want markdown, html or json", format)
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			data, err := c.ModelCardText(cmd.Context(), name, version, format)
			if err != nil {
				return err
			}
			return writeCardOutput(cmd.OutOrStdout(), out, data)
		},
	}
	cmd.Flags().StringVar(&format, "format", "markdown", "markdown, html or json")
	cmd.Flags().StringVarP(&out, "out", "o", "", "write the card to this file (default: standard output)")
	cmd.AddCommand(newModelCardEditCmd(cf))
	return cmd
}

// writeCardOutput writes data to path, or to w when path is "" or "-".
func writeCardOutput(w io.Writer, path string, data []byte) error {
	if path == "" || path == "-" {
		_, err := w.Write(data)
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write the model card: %w", err)
	}
	return nil
}

type cardEditFlags struct {
	considerationsFile string
	overview           string
	overviewFile       string
	license            string
}

func newModelCardEditCmd(cf *clientFlags) *cobra.Command {
	var f cardEditFlags
	cmd := &cobra.Command{
		Use:   "edit NAME/VERSION",
		Short: "Change the written text of a model card: overview, license, considerations",
		Long: `Change the text of a model version's card. Only what is given changes.

--considerations-file reads YAML or JSON with any of the lists users,
use_cases, limitations, tradeoffs and ethical_considerations; a list left
out is kept, an empty list ([]) clears it:

  limitations:
    - Trained on EU customers only.
  ethical_considerations:
    - Do not use for credit decisions.

--overview (or --overview-file) sets the overview; "" clears it. The text
is stored as kiln.card.* tags of the model version (each at most 5000
bytes) and every change is in the audit log.`,
		Example: `  kiln model card edit churn/3 --considerations-file considerations.yaml
  kiln model card edit churn/3 --overview-file overview.md --license Apache-2.0`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, version, err := cardArg(args[0])
			if err != nil {
				return err
			}
			edit, err := f.edit(cmd)
			if err != nil {
				return err
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			card, err := c.EditModelCard(cmd.Context(), name, version, edit)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "model card of %s/%d updated by %s\n", card.ModelDetails.Name, card.ModelDetails.Version, card.ModelDetails.TextUpdatedBy)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.considerationsFile, "considerations-file", "", "YAML or JSON file with users, use_cases, limitations, tradeoffs, ethical_considerations")
	fl.StringVar(&f.overview, "overview", "", "the overview text (\"\" clears it)")
	fl.StringVar(&f.overviewFile, "overview-file", "", "read the overview from this file")
	fl.StringVar(&f.license, "license", "", "the license: an SPDX identifier or a text (\"\" clears it)")
	cmd.MarkFlagsMutuallyExclusive("overview", "overview-file")
	return cmd
}

// edit turns the flags into a CardEdit; a flag not given leaves its field
// nil (kept).
func (f *cardEditFlags) edit(cmd *cobra.Command) (lineage.CardEdit, error) {
	var e lineage.CardEdit
	if cmd.Flags().Changed("overview") {
		e.Overview = &f.overview
	}
	if f.overviewFile != "" {
		data, err := os.ReadFile(f.overviewFile)
		if err != nil {
			return e, fmt.Errorf("read --overview-file: %w", err)
		}
		s := string(data)
		e.Overview = &s
	}
	if cmd.Flags().Changed("license") {
		e.License = &f.license
	}
	if f.considerationsFile != "" {
		ce, err := readConsiderations(f.considerationsFile)
		if err != nil {
			return e, err
		}
		e.Considerations = ce
	}
	if e.Overview == nil && e.License == nil && e.Considerations == nil {
		return e, fmt.Errorf("nothing to change: give --considerations-file, --overview, --overview-file or --license")
	}
	return e, nil
}

// readConsiderations reads a considerations file (YAML, or JSON, which is
// YAML); unknown keys are refused.
func readConsiderations(path string) (*lineage.ConsiderationsEdit, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read --considerations-file: %w", err)
	}
	var ce lineage.ConsiderationsEdit
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&ce); err != nil && err != io.EOF {
		return nil, fmt.Errorf("%s: %s (want the lists users, use_cases, limitations, tradeoffs, ethical_considerations)", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if ce == (lineage.ConsiderationsEdit{}) {
		return nil, fmt.Errorf("%s: no considerations (want any of users, use_cases, limitations, tradeoffs, ethical_considerations)", path)
	}
	return &ce, nil
}
