package main

// kiln predictions: the prediction log of an endpoint (right to erasure).

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

func newPredictionsCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "predictions",
		Short: "Act on an endpoint's prediction log",
		Long: `Every request an endpoint answers is logged (spec.logging), with the subject key
taken from the header spec.logging.subject_header names (default X-Kiln-Subject).
Logs are kept for spec.logging.retention, else the server's default.`,
	}
	f.register(cmd)
	cmd.AddCommand(newPredictionsEraseCmd(&f))
	return cmd
}

func newPredictionsEraseCmd(cf *clientFlags) *cobra.Command {
	var subject string
	cmd := &cobra.Command{
		Use:   "erase ENDPOINT --subject KEY",
		Short: "Delete every logged prediction of a subject key (right to erasure)",
		Long: `Delete every record the endpoint logged with the subject key KEY before the
call: the server ships its local segments first, then rewrites every shipped
segment that holds rows of the subject without them (or deletes it when nothing
else is left), and rebuilds its summary. Other subjects' records are kept.

It needs the manage permission on the endpoint. The audit log records the
result under the SHA-256 digest of the key, never the key itself. --subject -
reads the key from the first line of stdin, keeping it out of the shell's
history. With several server replicas, records still in another replica's local
segment (at most segment_max_age old, 1m by default) are not seen: erase again
after that age. Rerunning an interrupted erasure completes it.`,
		Example: `  kiln predictions erase churn --subject customer-4711
  echo customer-4711 | kiln predictions erase churn --subject - -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cf.checkOutput(); err != nil {
				return err
			}
			if subject == "-" {
				line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if err != nil && !errors.Is(err, io.EOF) {
					return fmt.Errorf("read the subject key from stdin: %w", err)
				}
				subject = strings.TrimRight(line, "\r\n")
			}
			if subject == "" {
				return errors.New("give the subject key: --subject KEY (or --subject - to read it from stdin)")
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			rep, err := c.ErasePredictions(cmd.Context(), args[0], subject)
			if err != nil {
				return err
			}
			return cf.print(cmd.OutOrStdout(), rep, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "endpoint:\t%s\nsubject digest:\t%s\nrecords deleted:\t%d\nrows deleted:\t%d\nsegments scanned:\t%d\nsegments rewritten:\t%d\nsegments deleted:\t%d\n",
					rep.Endpoint, rep.SubjectDigest, rep.RecordsDeleted, rep.RowsDeleted, rep.SegmentsScanned, rep.SegmentsRewritten, rep.SegmentsDeleted)
				if err == nil && rep.LeftoversDeleted > 0 {
					_, err = fmt.Fprintf(w, "leftovers deleted:\t%d\n", rep.LeftoversDeleted)
				}
				return err
			})
		},
	}
	cmd.Flags().StringVar(&subject, "subject", "", "the subject key whose records are erased (- reads it from stdin)")
	return cmd
}
