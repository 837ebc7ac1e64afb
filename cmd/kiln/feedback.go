package main

// kiln feedback: ground-truth labels of logged predictions, sent late,
// and the performance computed from them on the server.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/evaluate"
	"github.com/kiln-ml/kiln/monitor/feedback"
)

func newFeedbackCmd() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "feedback",
		Short: "Send ground-truth labels of logged predictions, and read the performance they give",
		Long: `Labels (ground truth) often arrive days after a prediction. Send them keyed by
the request id the endpoint answered with (the OIP "id", else the X-Request-Id
header) and the row within the request; the server joins them to the prediction
log and computes accuracy, precision, recall, F1, ROC AUC and log loss for
classifiers, MAE, RMSE, MAPE and R² for regressors, per window of prediction
time and per slice. A later label for the same request and row replaces the
earlier one.`,
	}
	f.register(cmd)
	cmd.AddCommand(newFeedbackSendCmd(&f), newFeedbackGetCmd(&f), newFeedbackPerformanceCmd(&f))
	return cmd
}

type feedbackSendFlags struct {
	requestID, label, file string
	row                    int64
	cols                   feedback.DecodeOptions
}

// progressMin is the file size from which kiln feedback send draws a
// progress bar (on a terminal).
const progressMin = 4 << 20

func newFeedbackSendCmd(cf *clientFlags) *cobra.Command {
	var f feedbackSendFlags
	cmd := &cobra.Command{
		Use:   "send ENDPOINT",
		Short: "Send one label (--request-id, --label) or a file of labels (-f labels.csv|.jsonl|.json|.parquet)",
		Long: `Send labels of an endpoint's logged predictions.

One label: --request-id ID --label VALUE [--row N]. VALUE is a number when it
reads as one, true or false, else text.

A file: -f FILE, CSV (with a header line), JSON Lines, JSON or Parquet, told by
its extension; - reads JSON Lines from stdin. Its columns are request_id, label
and, optionally, row (rows default to 0); --id-column, --label-column and
--row-column name others. The file is streamed to the server, which stores all
its labels in one transaction or, when one is invalid, none (the error names
the line or row).`,
		Example: `  kiln feedback send churn --request-id 5f0c… --label 1
  kiln feedback send churn -f labels.csv
  kiln feedback send churn -f truth.parquet --id-column inference_id --label-column churned`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cf.checkOutput(); err != nil {
				return err
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var resp *api.FeedbackResponse
			switch {
			case f.file != "" && (f.requestID != "" || f.label != ""):
				return errors.New("give either -f FILE or --request-id and --label, not both")
			case f.file != "":
				resp, err = sendFeedbackFile(cmd, cf, args[0], f)
			case f.requestID == "" || f.label == "":
				return errors.New("give --request-id ID --label VALUE, or -f FILE")
			default:
				l := feedback.Label{RequestID: f.requestID, Row: f.row, Value: labelValue(f.label)}
				if err := l.Validate(); err != nil {
					return err
				}
				resp, err = c.SendFeedback(ctx, args[0], []feedback.Label{l})
			}
			if err != nil {
				return err
			}
			return cf.print(cmd.OutOrStdout(), resp, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "%s accepted\n", plural(resp.Accepted, "label"))
				return err
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.requestID, "request-id", "", "request id of the prediction")
	fl.StringVar(&f.label, "label", "", "the true label or value")
	fl.Int64Var(&f.row, "row", 0, "row of the prediction within its request")
	fl.StringVarP(&f.file, "file", "f", "", "file of labels: .csv, .jsonl, .json or .parquet (- for JSON Lines on stdin)")
	fl.StringVar(&f.cols.IDColumn, "id-column", feedback.DefaultIDColumn, "column of the request ids (with -f)")
	fl.StringVar(&f.cols.LabelColumn, "label-column", feedback.DefaultLabelColumn, "column of the labels (with -f)")
	fl.StringVar(&f.cols.RowColumn, "row-column", feedback.DefaultRowColumn, "column of the rows, optional in the file (with -f)")
	return cmd
}

// labelValue types a --label value as a CSV cell is typed: a number, a
// bool, else text.
func labelValue(s string) any {
	if v, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil {
		return v
	}
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true":
		return true
	case "false":
		return false
	}
	return s
}

func sendFeedbackFile(cmd *cobra.Command, cf *clientFlags, endpoint string, f feedbackSendFlags) (*api.FeedbackResponse, error) {
	c, err := cf.client()
	if err != nil {
		return nil, err
	}
	var body io.Reader
	format := feedback.FormatJSONL
	if f.file == "-" {
		body = cmd.InOrStdin()
	} else {
		if format, err = feedback.FormatOfFile(f.file); err != nil {
			return nil, err
		}
		fh, err := os.Open(f.file)
		if err != nil {
			return nil, err
		}
		defer fh.Close()
		st, err := fh.Stat()
		if err != nil {
			return nil, err
		}
		body = fh
		if errF, ok := cmd.ErrOrStderr().(*os.File); ok && isTerminal(errF) && st.Size() >= progressMin {
			bar := progressbar.NewOptions64(st.Size(), progressbar.OptionSetWriter(errF), progressbar.OptionSetDescription("sending "+f.file),
				progressbar.OptionShowBytes(true), progressbar.OptionSetWidth(30), progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionClearOnFinish(), progressbar.OptionSetPredictTime(true))
			defer bar.Finish()
			r := progressbar.NewReader(fh, bar)
			body = &r
		}
	}
	return c.SendFeedbackFile(cmd.Context(), endpoint, feedback.ContentType(format), body, f.cols)
}

func newFeedbackGetCmd(cf *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "get ENDPOINT REQUEST_ID",
		Short:   "Show the labels of one request",
		Example: `  kiln feedback get churn 5f0c9a2e-…`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cf.checkOutput(); err != nil {
				return err
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			got, err := c.GetFeedback(cmd.Context(), args[0], args[1])
			if err != nil {
				return err
			}
			return cf.print(cmd.OutOrStdout(), got, func(w io.Writer) error {
				fmt.Fprintln(w, "ROW\tLABEL\tRECEIVED\tSOURCE")
				for _, l := range got.Labels {
					fmt.Fprintf(w, "%d\t%s\t%s\t%s\n", l.Row, feedback.ClassName(l.Value), l.ReceivedAt.Local().Format("2006-01-02 15:04:05"), l.Source)
				}
				return nil
			})
		},
	}
}

type feedbackPerfFlags struct {
	from, to, window, task, metrics, sliceBy, route, prediction, positive string
}

// parseWhen reads an instant: RFC 3339, milliseconds since the epoch, or
// a Go duration before now (24h).
func parseWhen(flag, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms), nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("invalid --%s %q: want RFC 3339 (2026-01-02T15:04:05Z), milliseconds since the epoch, or a duration before now (24h)", flag, s)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func newFeedbackPerformanceCmd(cf *clientFlags) *cobra.Command {
	var f feedbackPerfFlags
	cmd := &cobra.Command{
		Use:   "performance ENDPOINT",
		Short: "Show quality metrics of the labelled predictions, per window and slice",
		Long: `Show the quality metrics of an endpoint's predictions that have a label, per
window of prediction time (--window), per slice (--slice-by route,country).
The task is detected (classification for string or bool labels, or integer
labels with class probabilities; regression otherwise) unless --task is given.`,
		Example: `  kiln feedback performance churn --from 168h --window 24h
  kiln feedback performance churn --from 2026-01-01T00:00:00Z --metrics accuracy,roc_auc --slice-by country -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cf.checkOutput(); err != nil {
				return err
			}
			now := time.Now()
			q := feedback.Query{Endpoint: args[0], Task: evaluate.Task(f.task), Metrics: splitList(f.metrics), SliceBy: splitList(f.sliceBy),
				Route: f.route, Prediction: f.prediction, PositiveClass: f.positive}
			var err error
			if q.From, err = parseWhen("from", f.from, now); err != nil {
				return err
			}
			if q.To, err = parseWhen("to", f.to, now); err != nil {
				return err
			}
			if f.window != "" {
				if q.Window, err = time.ParseDuration(f.window); err != nil || q.Window <= 0 {
					return fmt.Errorf("invalid --window %q: want a duration such as 1h or 15m", f.window)
				}
			}
			c, err := cf.client()
			if err != nil {
				return err
			}
			p, err := c.Performance(cmd.Context(), q)
			if err != nil {
				return err
			}
			return cf.print(cmd.OutOrStdout(), p, func(w io.Writer) error { return printPerformance(w, p) })
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.from, "from", "", "start: RFC 3339, ms since the epoch, or a duration before now (default: 24h before --to)")
	fl.StringVar(&f.to, "to", "", "end, exclusive (default now)")
	fl.StringVar(&f.window, "window", "", "window length (1h, 24h); default one window")
	fl.StringVar(&f.task, "task", "", "classification or regression (default detected)")
	fl.StringVar(&f.metrics, "metrics", "", "comma-separated metrics (default: the task's)")
	fl.StringVar(&f.sliceBy, "slice-by", "", "comma-separated slice columns: route, an input feature, or another log column")
	fl.StringVar(&f.route, "route", "", "only this route or variant")
	fl.StringVar(&f.prediction, "prediction", "", "output column of the prediction (default detected)")
	fl.StringVar(&f.positive, "positive-class", "", "positive class of binary metrics")
	return cmd
}

func formatMetric(v float64, ok bool) string {
	if !ok {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 4, 64)
}

func printPerformance(w io.Writer, p *feedback.Performance) error {
	fmt.Fprintf(w, "endpoint %s\ttask %s\tprediction %s\tlabelled %d of %d\n", p.Endpoint, p.Task, orDash(p.Prediction), p.Labelled, p.Predictions)
	if len(p.Classes) > 0 {
		fmt.Fprintf(w, "classes %s\tpositive %s\n", strings.Join(p.Classes, ","), orDash(p.PositiveClass))
	}
	for _, n := range p.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	fmt.Fprintln(w)
	fmt.Fprint(w, "WINDOW\tSLICE\tLABELLED\tPREDICTIONS")
	for _, m := range p.Metrics {
		fmt.Fprint(w, "\t"+strings.ToUpper(m))
	}
	fmt.Fprintln(w)
	for _, win := range p.Windows {
		start := win.Start.Local().Format("2006-01-02 15:04")
		fmt.Fprintf(w, "%s\t%s\t%d\t%d", start, "all", win.Labelled, win.Predictions)
		for _, m := range p.Metrics {
			v, ok := win.Metrics[m]
			fmt.Fprint(w, "\t"+formatMetric(v, ok))
		}
		fmt.Fprintln(w)
		cols := make([]string, 0, len(win.Slices))
		for c := range win.Slices {
			cols = append(cols, c)
		}
		sort.Strings(cols)
		for _, c := range cols {
			vals := make([]string, 0, len(win.Slices[c]))
			for v := range win.Slices[c] {
				vals = append(vals, v)
			}
			sort.Strings(vals)
			for _, v := range vals {
				fmt.Fprintf(w, "%s\t%s=%s\t%d\t", start, c, v, win.SliceLabelled[c][v])
				for _, m := range p.Metrics {
					x, ok := win.Slices[c][v][m]
					fmt.Fprint(w, "\t"+formatMetric(x, ok))
				}
				fmt.Fprintln(w)
			}
		}
	}
	return nil
}
