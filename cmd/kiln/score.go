package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/config"
	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/score"
)

type scoreFlags struct {
	model, input, output string
	keep, features       []string
	keepAll              bool
	workers, batchRows   int
	chunkRows            int
	resume               bool
	format               string
	backend, tracking    string
	python               string
	quiet                bool
	logLevel             string
}

func newScoreCmd() *cobra.Command {
	var f scoreFlags
	cmd := &cobra.Command{
		Use:   "score --model MODEL_URI --input FILE --output FILE",
		Short: "Score a table file with a model: streaming, parallel, resumable batch predictions",
		Long: `Score every row of a CSV, Parquet or JSON Lines file with a model and write
the predictions (and chosen input columns) to a Parquet, CSV or JSON Lines file.

The input streams through the model in batches of --batch-rows rows on
--workers goroutines, so memory stays bounded whatever the file's size.
Columns map to the model's inputs as MLflow's /invocations maps a dataframe:
one input per column for a model whose inputs are named after columns,
otherwise the feature columns packed into one [rows, n] input — those the
model's signature names, in its order, else --features, else every column.

The output has the --keep columns (or every input column with --keep-all),
then one column per model output; an output of k values per row becomes k
columns, NAME_0 … NAME_k-1, or NAME_<class> when the model knows its class
labels.

Scoring writes chunks into OUTPUT.partial/ with a journal. If it is
interrupted (Ctrl-C, a crash), run the same command with --resume to
continue after the last complete chunk; at the end OUTPUT appears at once
and OUTPUT.partial/ is removed.

MODEL_URI is resolved as by 'kiln serve': a model file, an MLflow model
directory, or runs:/…, models:/NAME/VERSION, models:/NAME@ALIAS through the
tracking server at --tracking-uri ($KILN_URL, else $MLFLOW_TRACKING_URI).

Server-side jobs (POST /api/v1/score-jobs) run the same engine inside
'kiln server' on datasets and artifacts.`,
		Example: `  kiln score --model ./rf.onnx --input data.parquet --output preds.parquet
  kiln score --model models:/churn@champion --input customers.csv \
      --output scored.csv --keep customer_id --workers 4
  kiln score --model ./model --input big.jsonl --output out.parquet \
      --features age,income,tenure --keep-all
  # after an interruption:
  kiln score --model ./rf.onnx --input data.parquet --output preds.parquet --resume`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.tracking == "" {
				f.tracking = os.Getenv("KILN_URL")
			}
			if f.tracking == "" {
				f.tracking = os.Getenv("MLFLOW_TRACKING_URI")
			}
			log := newLogger(config.Log{Level: f.logLevel, Format: "text"})
			return runScore(cmd.Context(), f, cmd.OutOrStdout(), cmd.ErrOrStderr(), log)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.model, "model", "m", "", "model URI: a file, an MLflow model directory, runs:/…, models:/…")
	fl.StringVarP(&f.input, "input", "i", "", "input table: .csv, .parquet or .jsonl")
	fl.StringVarP(&f.output, "output", "o", "", "output table: .parquet, .csv or .jsonl")
	fl.StringSliceVar(&f.keep, "keep", nil, "input columns copied to the output, before the predictions (comma-separated)")
	fl.BoolVar(&f.keepAll, "keep-all", false, "copy every input column to the output")
	fl.StringSliceVar(&f.features, "features", nil, "the input columns the model sees, in order (default: those its signature names, else all)")
	fl.IntVar(&f.workers, "workers", 0, "goroutines predicting in parallel (default: the number of CPUs)")
	fl.IntVar(&f.batchRows, "batch-rows", score.DefaultBatchRows, "rows per prediction")
	fl.IntVar(&f.chunkRows, "chunk-rows", score.DefaultChunkRows, "rows per chunk of the resumable output (the most work an interruption loses)")
	fl.BoolVar(&f.resume, "resume", false, "continue an interrupted run from OUTPUT.partial/ (same model, input and options)")
	fl.StringVar(&f.format, "format", "", "output format: parquet, csv or jsonl (default: from the output's extension)")
	fl.StringVar(&f.backend, "backend", "", "runtime backend to load the model with (onnx, xgboost, lightgbm, python, ...)")
	fl.StringVar(&f.tracking, "tracking-uri", "", "tracking server for runs:/ and models:/ URIs (default $KILN_URL, else $MLFLOW_TRACKING_URI)")
	fl.StringVar(&f.python, "python", "", "Python interpreter for pyfunc models (default: python3 on PATH)")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "no progress bar or summary")
	fl.StringVar(&f.logLevel, "log-level", "warn", "log level: debug, info, warn, error")
	for _, n := range []string{"model", "input", "output"} {
		_ = cmd.MarkFlagRequired(n)
	}
	_ = cmd.RegisterFlagCompletionFunc("format", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"parquet", "csv", "jsonl"}, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

func runScore(ctx context.Context, f scoreFlags, stdout, stderr io.Writer, log *slog.Logger) error {
	if f.keepAll && len(f.keep) > 0 {
		return errors.New("--keep and --keep-all exclude each other")
	}
	if f.workers < 0 || f.batchRows < 0 || f.chunkRows < 0 {
		return errors.New("--workers, --batch-rows and --chunk-rows must not be negative")
	}
	if absPath(f.input) == absPath(f.output) {
		return errors.New("--output must not be the input file")
	}
	start := time.Now()
	m, err := loadServeModel(ctx, f.model, serveFlags{backend: f.backend, trackingURI: f.tracking, python: f.python}, log)
	if err != nil {
		return err
	}
	defer m.Runtime.Close()
	log.Info("model loaded", "name", m.Name, "version", m.Version, "took", time.Since(start).Round(time.Millisecond))

	bar := newRowProgress(stderr, f.quiet)
	opts := score.FileOptions{
		Options:   score.Options{Workers: f.workers, BatchRows: f.batchRows, Progress: bar.add},
		Columns:   score.Columns{Keep: f.keep, KeepAll: f.keepAll, Features: f.features},
		Format:    table.Format(f.format),
		Resume:    f.resume,
		ChunkRows: f.chunkRows,
		ModelID:   modelID(f.model, m.Version, f.backend),
		OnStart:   bar.start,
	}
	begin := time.Now()
	res, err := score.File(ctx, m.Runtime, m.Signature, f.input, f.output, opts)
	bar.finish()
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintf(stderr, "interrupted: the rows scored so far are kept in %s; run the same command with --resume to continue\n",
				score.PartialDir(f.output))
			return exitError{code: 130}
		}
		return err
	}
	if !f.quiet {
		d := time.Since(begin)
		scored := res.Rows - res.Resumed
		rate := float64(scored) / max(d.Seconds(), 1e-9)
		fmt.Fprintf(stdout, "scored %d rows in %s (%.0f rows/s", scored, d.Round(time.Millisecond), rate)
		if res.Resumed > 0 {
			fmt.Fprintf(stdout, "; %d more from the interrupted run", res.Resumed)
		}
		fmt.Fprintf(stdout, ") -> %s [%s]\n", res.Output, strings.Join(res.Columns, ", "))
	}
	return nil
}

func absPath(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return a
}

// modelID identifies a model for the resume fingerprint: its URI, the
// registry version it resolved to, the backend, and for a local model the
// size and modification time of its files.
func modelID(uri, version, backend string) string {
	id := uri + "\x00" + version + "\x00" + backend
	var size, mtime int64
	_ = filepath.WalkDir(uri, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if info, err := d.Info(); err == nil {
			size += info.Size()
			mtime = max(mtime, info.ModTime().UnixNano())
		}
		return nil
	})
	return fmt.Sprintf("%s\x00%d\x00%d", id, size, mtime)
}

// rowProgress draws a rows bar (with rows/s) on a terminal; elsewhere it
// stays quiet and the summary line tells the rate.
type rowProgress struct {
	w     io.Writer
	on    bool
	mu    sync.Mutex
	bar   *progressbar.ProgressBar
	total int64
}

func newRowProgress(w io.Writer, quiet bool) *rowProgress {
	f, ok := w.(*os.File)
	return &rowProgress{w: w, on: !quiet && ok && isTerminal(f)}
}

func (p *rowProgress) start(total, resumed int64) {
	if !p.on {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.total = total
	p.bar = progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription("scoring"),
		progressbar.OptionSetItsString("rows"),
		progressbar.OptionShowIts(),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetPredictTime(total > 0),
		progressbar.OptionSpinnerType(14),
	)
	if resumed > 0 {
		_ = p.bar.Add64(resumed)
	}
}

func (p *rowProgress) add(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		_ = p.bar.Add64(n)
	}
}

func (p *rowProgress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		_ = p.bar.Finish()
		p.bar = nil
	}
}
