package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/config"
	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/errdefs"
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
	cmd.AddCommand(newScoreSubmitCmd(), newScoreJobsCmd())
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

// Server-side jobs: kiln score submit, kiln score jobs.

type scoreJobFlags struct {
	clientFlags
	req   score.JobRequest
	wait  bool
	actor string
	state string
}

func newScoreSubmitCmd() *cobra.Command {
	var f scoreJobFlags
	cmd := &cobra.Command{
		Use:   "submit --model MODEL_URI --input INPUT [--artifact PATH]",
		Short: "Queue a batch-scoring job on the server (POST /api/v1/score-jobs)",
		Long: `Queue a scoring job that the server runs on its own stores: the model from
its registry or artifact store, the input from a dataset version
(NAME@VERSION[/path]), an artifact (mlflow-artifacts:/path) or an object URL
(s3://bucket/key), the predictions written to the artifact store at
--artifact (default score-jobs/ID/predictions.parquet).

With --wait the command follows the job to its end and exits 1 if it fails.`,
		Example: `  kiln score submit --model models:/churn@champion --input customers@3 \
      --artifact scores/churn.parquet --keep customer_id --wait
  kiln score submit -m models:/rf/2 -i mlflow-artifacts:/inputs/batch.csv -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			c, err := newJobsClient(f.clientFlags, f.actor)
			if err != nil {
				return err
			}
			var job score.Job
			if err := c.do(cmd.Context(), "POST", "/score-jobs", &f.req, &job); err != nil {
				return err
			}
			if f.wait {
				if err := c.wait(cmd.Context(), &job, cmd.ErrOrStderr()); err != nil {
					return err
				}
			}
			if err := f.print(cmd.OutOrStdout(), &job, func(w io.Writer) error { return jobTable(w, []*score.Job{&job}) }); err != nil {
				return err
			}
			if job.State == score.JobFailed {
				return exitError{code: 1, err: fmt.Errorf("score job %s failed: %s", job.ID, job.Error)}
			}
			return nil
		},
	}
	f.clientFlags.register(cmd)
	fl := cmd.Flags()
	fl.StringVarP(&f.req.Model, "model", "m", "", "model URI the server resolves: models:/…, runs:/…, mlflow-artifacts:/…")
	fl.StringVarP(&f.req.Input, "input", "i", "", "dataset version NAME@VERSION[/path], mlflow-artifacts:/path or s3://bucket/key")
	fl.StringVar(&f.req.Output, "artifact", "", "where the predictions go in the artifact store (.parquet, .csv or .jsonl; default score-jobs/ID/predictions.parquet)")
	fl.StringSliceVar(&f.req.Keep, "keep", nil, "input columns copied to the output")
	fl.BoolVar(&f.req.KeepAll, "keep-all", false, "copy every input column to the output")
	fl.StringSliceVar(&f.req.Features, "features", nil, "the input columns the model sees, in order")
	fl.IntVar(&f.req.BatchRows, "batch-rows", 0, "rows per prediction (default 4096)")
	fl.BoolVar(&f.wait, "wait", false, "follow the job until it ends; exit 1 if it fails")
	fl.StringVar(&f.actor, "actor", "", "who submits, recorded with the job (default $USER)")
	for _, n := range []string{"model", "input"} {
		_ = cmd.MarkFlagRequired(n)
	}
	return cmd
}

func newScoreJobsCmd() *cobra.Command {
	var f scoreJobFlags
	cmd := &cobra.Command{
		Use:   "jobs [ID]",
		Short: "List the server's score jobs, newest first, or show one",
		Example: `  kiln score jobs
  kiln score jobs --state failed -o json
  kiln score jobs 01J0Q6B8W3V2N7Y5K4T9Z1XH2M`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.checkOutput(); err != nil {
				return err
			}
			c, err := newJobsClient(f.clientFlags, "")
			if err != nil {
				return err
			}
			if len(args) == 1 {
				var job score.Job
				if err := c.do(cmd.Context(), "GET", "/score-jobs/"+url.PathEscape(args[0]), nil, &job); err != nil {
					return err
				}
				return f.print(cmd.OutOrStdout(), &job, func(w io.Writer) error { return jobTable(w, []*score.Job{&job}) })
			}
			var list api.ScoreJobList
			q := url.Values{}
			if f.state != "" {
				q.Set("state", f.state)
			}
			if err := c.do(cmd.Context(), "GET", "/score-jobs?"+q.Encode(), nil, &list); err != nil {
				return err
			}
			return f.print(cmd.OutOrStdout(), &list, func(w io.Writer) error { return jobTable(w, list.Jobs) })
		},
	}
	f.clientFlags.register(cmd)
	cmd.Flags().StringVar(&f.state, "state", "", "only jobs in this state: queued, running, succeeded, failed")
	return cmd
}

func jobTable(w io.Writer, jobs []*score.Job) error {
	fmt.Fprintln(w, "ID\tSTATE\tROWS\tMODEL\tINPUT\tOUTPUT\tCREATED\tERROR")
	for _, j := range jobs {
		rows := fmt.Sprint(j.RowsDone)
		if j.RowsTotal >= 0 {
			rows += "/" + fmt.Sprint(j.RowsTotal)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.ID, j.State, rows, ellipsis(j.Model, 40), ellipsis(j.Input, 40),
			ellipsis(j.OutputURI, 50), formatTime(j.CreationTime), ellipsis(j.Error, 60))
	}
	return nil
}

// jobsClient calls the score-job routes.
type jobsClient struct {
	base, token, actor string
	hc                 *http.Client
}

func newJobsClient(f clientFlags, actor string) (*jobsClient, error) {
	c, err := f.client() // validates the URL
	if err != nil {
		return nil, err
	}
	if actor == "" {
		actor = os.Getenv("USER")
	}
	return &jobsClient{base: c.URL(), token: os.Getenv("KILN_TOKEN"), actor: actor, hc: &http.Client{Timeout: time.Minute}}, nil
}

func (c *jobsClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+api.Prefix+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "kiln/"+version)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.actor != "" {
		req.Header.Set(api.ActorHeader, c.actor)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("kiln server %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var eb api.ErrorBody
		if json.Unmarshal(data, &eb) == nil && eb.Error.Code != "" {
			if kind := api.CodeKind(eb.Error.Code); kind != nil {
				return &errdefs.Error{Kind: kind, Msg: eb.Error.Message}
			}
			return fmt.Errorf("kiln server: %s (%s)", eb.Error.Message, eb.Error.Code)
		}
		return fmt.Errorf("kiln server answered %s to %s %s", resp.Status, method, path)
	}
	return json.Unmarshal(data, out)
}

// wait polls a job until it ends, drawing its progress on a terminal.
func (c *jobsClient) wait(ctx context.Context, job *score.Job, stderr io.Writer) error {
	bar := newRowProgress(stderr, false)
	defer bar.finish()
	var shown int64
	for job.State == score.JobQueued || job.State == score.JobRunning {
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped waiting for score job %s (it keeps running on the server): %w", job.ID, ctx.Err())
		case <-time.After(500 * time.Millisecond):
		}
		if err := c.do(ctx, "GET", "/score-jobs/"+job.ID, nil, job); err != nil {
			return err
		}
		if job.State == score.JobRunning && bar.bar == nil && bar.on {
			bar.start(job.RowsTotal, 0)
		}
		bar.add(job.RowsDone - shown)
		shown = job.RowsDone
	}
	return nil
}
