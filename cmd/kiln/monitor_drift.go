package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/monitor/drift"
	"github.com/kiln-ml/kiln/stattest"
)

// driftFlags are the flags of `kiln monitor drift`.
type driftFlags struct {
	output      string
	reference   []string
	current     []string
	method      string
	threshold   float64
	driftShare  float64
	columns     []string
	exact       bool
	histograms  bool
	failOnDrift bool
}

// driftResult is what `kiln monitor drift` prints with --output json|yaml.
type driftResult struct {
	// Statistics says how the tables were held: "exact" (every value) or
	// "sketch" (quantile sketches and frequent-value counts).
	ReferenceRows int64  `json:"reference_rows"`
	CurrentRows   int64  `json:"current_rows"`
	Statistics    string `json:"statistics"`
	*drift.Report
}

// newMonitorDriftCmd is `kiln monitor drift`: drift between two local
// tables, without a server.
func newMonitorDriftCmd() *cobra.Command {
	var f driftFlags
	cmd := &cobra.Command{
		Use:   "drift --reference REF --current CUR",
		Short: "Compare two local tables for data drift (Evidently's tests and defaults)",
		Long: `Compare the columns of a current table with a reference table, feature by
feature, with Evidently's default drift test and threshold per column (KS,
chi-square or Z-test with at most 1,000 reference values; normed Wasserstein
or Jensen-Shannon beyond), or the test chosen with --method (ks, chi2, z,
wasserstein, jensenshannon, psi, kl, hellinger). The dataset drifts when at
least --drift-share of the tested columns drifted.

Tables are local CSV, Parquet or JSON Lines files; --reference and --current
may be repeated (files of the same columns, profiled in parallel and merged).
By default each column is summarised by mergeable sketches (quantiles, exact
counts of up to 1,024 distinct values), which is fast and bounded in memory;
--exact holds every value, so the statistics are exactly Evidently's, while
the tables have at most 64M values (then it falls back to sketches).

The exit status is 0 whether or not the data drifted (1 with --fail-on-drift
when the dataset drifted), 2 when the comparison could not run.
See docs/drift.md.`,
		Example: `  kiln monitor drift --reference train.parquet --current last_week.parquet
  kiln monitor drift --reference ref.csv --current cur.csv --method psi --threshold 0.2
  kiln monitor drift --reference ref.parquet --current cur.parquet --exact -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch f.output {
			case "table", "json", "yaml":
			default:
				return exitError{code: 2, err: fmt.Errorf("unknown --output %q: want table, json or yaml", f.output)}
			}
			res, err := runDrift(cmd.Context(), f)
			if err != nil {
				return exitError{code: 2, err: err}
			}
			out := clientFlags{output: f.output}
			if err := out.print(cmd.OutOrStdout(), res, func(w io.Writer) error { return printDrift(w, res) }); err != nil {
				return err
			}
			if res.Total == 0 {
				return exitError{code: 2, err: errors.New("no column could be tested")}
			}
			if f.failOnDrift && res.DatasetDrift {
				return exitError{code: 1}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.output, "output", "o", "table", "output format: table, json or yaml")
	fl.StringArrayVar(&f.reference, "reference", nil, "reference table file (CSV, Parquet, JSON Lines; repeatable)")
	fl.StringArrayVar(&f.current, "current", nil, "current table file (repeatable)")
	fl.StringVar(&f.method, "method", "", "test for every column (default: Evidently's choice per column)")
	fl.Float64Var(&f.threshold, "threshold", 0, "drift threshold of the test (default: the test's own: 0.05 for p-values, 0.1 for distances)")
	fl.Float64Var(&f.driftShare, "drift-share", drift.DefaultDriftShare, "share of drifted columns at which the dataset drifts")
	fl.StringSliceVar(&f.columns, "columns", nil, "columns to compare (default: every column both tables have)")
	fl.BoolVar(&f.exact, "exact", false, "hold every value for exact statistics (falls back to sketches past 64M values)")
	fl.BoolVar(&f.histograms, "histograms", false, "include each column's histogram (shares per bin) in json/yaml output")
	fl.BoolVar(&f.failOnDrift, "fail-on-drift", false, "exit 1 when the dataset drifted")
	cmd.MarkFlagRequired("reference")
	cmd.MarkFlagRequired("current")
	for _, name := range []string{"reference", "current"} {
		cmd.MarkFlagFilename(name, "csv", "parquet", "pq", "jsonl", "ndjson")
	}
	cmd.RegisterFlagCompletionFunc("method", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		out := make([]string, len(stattest.Methods))
		for i, m := range stattest.Methods {
			out[i] = string(m)
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	})
	cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"table", "json", "yaml"}, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

// runDrift profiles both sides in parallel and compares them.
func runDrift(ctx context.Context, f driftFlags) (*driftResult, error) {
	opts := drift.Options{Threshold: f.threshold, DriftShare: f.driftShare, Histograms: f.histograms}
	if f.method != "" {
		m, err := stattest.ParseMethod(f.method)
		if err != nil {
			return nil, err
		}
		opts.Method = m
	}
	if f.threshold < 0 {
		return nil, fmt.Errorf("--threshold %v is not a positive number", f.threshold)
	}
	if f.driftShare <= 0 || f.driftShare > 1 {
		return nil, fmt.Errorf("--drift-share %v is not in (0, 1]", f.driftShare)
	}
	var cols []string
	for _, c := range f.columns {
		if c = strings.TrimSpace(c); c != "" {
			cols = append(cols, c)
		}
	}
	opts.Features = cols
	topts := drift.TableOptions{Columns: cols, Exact: f.exact}
	var (
		wg       sync.WaitGroup
		ref, cur *drift.Table
		rerr     error
		cerr     error
	)
	wg.Go(func() { ref, rerr = drift.ProfileFiles(ctx, f.reference, topts) })
	wg.Go(func() { cur, cerr = drift.ProfileFiles(ctx, f.current, topts) })
	wg.Wait()
	if rerr != nil {
		return nil, fmt.Errorf("reference: %w", rerr)
	}
	if cerr != nil {
		return nil, fmt.Errorf("current: %w", cerr)
	}
	rep, err := drift.Compare(ctx, ref, cur, opts)
	if err != nil {
		return nil, err
	}
	stats := "sketch"
	if ref.Exact && cur.Exact {
		stats = "exact"
	} else if ref.Exact || cur.Exact {
		stats = "mixed"
	}
	return &driftResult{ReferenceRows: ref.Rows, CurrentRows: cur.Rows, Statistics: stats, Report: rep}, nil
}

func printDrift(w io.Writer, r *driftResult) error {
	fmt.Fprintln(w, "FEATURE\tTYPE\tTEST\tSCORE\tTHRESHOLD\tDRIFT")
	for _, f := range r.Features {
		if f.Error != "" {
			fmt.Fprintf(w, "%s\t%s\t-\t-\t-\terror: %s\n", f.Name, orDash(f.Kind), f.Error)
			continue
		}
		verdict := "no"
		if f.Drift {
			verdict = "DRIFT"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", f.Name, f.Kind, f.Method,
			strconv.FormatFloat(f.Score, 'g', 4, 64), strconv.FormatFloat(f.Threshold, 'g', -1, 64), verdict)
	}
	verdict := "no dataset drift"
	if r.DatasetDrift {
		verdict = "DATASET DRIFT"
	}
	fmt.Fprintf(w, "\n%s: %d of %d columns drifted (share %.3g, threshold %g)", verdict, r.Drifted, r.Total, r.Share, r.DriftShare)
	if r.Errors > 0 {
		fmt.Fprintf(w, "; %d not tested", r.Errors)
	}
	fmt.Fprintf(w, "\n%d reference rows, %d current rows, %s statistics\n", r.ReferenceRows, r.CurrentRows, r.Statistics)
	return nil
}
