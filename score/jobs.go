package score

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	goruntime "runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/model"
	"github.com/kiln-ml/kiln/store"
)

// JobState is where a score job is in its life.
type JobState string

// Job states. A job is queued when submitted, running while a server
// scores it, and ends succeeded or failed. A job whose server stops (shut
// down, crashed) goes back to the queue.
const (
	JobQueued    JobState = "queued"
	JobRunning   JobState = "running"
	JobSucceeded JobState = "succeeded"
	JobFailed    JobState = "failed"
)

// ValidJobState reports whether s is a job state.
func ValidJobState(s JobState) bool {
	switch s {
	case JobQueued, JobRunning, JobSucceeded, JobFailed:
		return true
	}
	return false
}

// JobRequest asks for a table to be scored on the server.
type JobRequest struct {
	// Model is a model URI the server resolves through its registry and
	// artifact store: models:/NAME/VERSION, models:/NAME@ALIAS, runs:/…,
	// models:/m-…, mlflow-artifacts:/… (never a path on the server).
	Model string `json:"model"`
	// Input is a dataset version (NAME@VERSION[/path]), an artifact
	// (mlflow-artifacts:/key) or an object URL (s3://…); see ParseInput.
	Input string `json:"input"`
	// Output is the artifact the predictions are written to: a key of the
	// artifact store or mlflow-artifacts:/key, ending in .parquet, .csv or
	// .jsonl (score-jobs/ID/predictions.parquet when empty).
	Output string `json:"output,omitempty"`
	Columns
	// BatchRows is the rows per prediction (DefaultBatchRows when 0).
	BatchRows int `json:"batch_rows,omitempty"`
}

// Job is a server-side scoring job.
type Job struct {
	ID     string `json:"id"`
	Model  string `json:"model"`
	Input  string `json:"input"`
	Output string `json:"output"` // the artifact key
	// OutputURI is the output as an artifact URI (mlflow-artifacts:/key).
	OutputURI string `json:"output_uri"`
	Columns
	BatchRows int      `json:"batch_rows,omitempty"`
	State     JobState `json:"state"`
	// RowsDone counts the rows scored so far; RowsTotal is the input's
	// rows when known before reading it (Parquet), else -1.
	RowsDone  int64  `json:"rows_done"`
	RowsTotal int64  `json:"rows_total"`
	Error     string `json:"error,omitempty"`
	CreatedBy string `json:"created_by,omitempty"`
	// Times in milliseconds since the Unix epoch (0: not yet).
	CreationTime int64 `json:"creation_time"`
	StartTime    int64 `json:"start_time,omitempty"`
	EndTime      int64 `json:"end_time,omitempty"`
	// Attempts counts the runs started (a job is retried when its server
	// stops while it runs).
	Attempts int `json:"attempts"`
}

// JobsDeps are what the job runner reads and writes.
type JobsDeps struct {
	DB *store.DB
	// Models resolves model URIs, normally model.NewStoreResolver.
	Models model.Resolver
	// Artifacts is the artifact store: outputs go there, and
	// mlflow-artifacts:/ inputs come from it.
	Artifacts *blob.Bucket
	// Datasets and Content serve dataset-version inputs (optional).
	Datasets *dataset.Store
	Content  dataset.Remote
	// SourceOptions open object-store inputs (s3://…).
	SourceOptions blob.Options
	Logger        *slog.Logger
}

// JobsOptions configure the runner.
type JobsOptions struct {
	// Concurrency is the number of jobs a server runs at once (1 when 0).
	Concurrency int
	// Workers is the predicting goroutines of each job (GOMAXPROCS when 0).
	Workers int
	// SourceSchemes are the URL schemes inputs may be read from (s3, gs,
	// azblob when nil; empty to allow none).
	SourceSchemes []string
	// TempDir holds inputs while they are scored (os.TempDir() when empty).
	TempDir string
	// Lease is how long a job stays claimed without a heartbeat (30s when
	// 0); Poll is how often an idle runner looks for queued jobs (2s).
	Lease, Poll time.Duration
	// MaxAttempts fails a job that has been started this many times
	// without ending (3 when 0): a job that crashes its server.
	MaxAttempts int
	// Owner names this runner in leases (host and process id when empty).
	Owner string
}

// Jobs stores score jobs and runs them.
type Jobs struct {
	d             JobsDeps
	log           *slog.Logger
	concurrency   int
	workers       int
	sourceSchemes []string
	tempDir       string
	lease, poll   time.Duration
	maxAttempts   int
	owner         string
	wake          chan struct{}
	running       atomic.Int64
	hook          func(ctx context.Context) error // tests: runs before scoring
}

// NewJobs returns a job service over deps. Call Run to execute jobs.
func NewJobs(deps JobsDeps, opts JobsOptions) *Jobs {
	j := &Jobs{d: deps, log: deps.Logger, concurrency: opts.Concurrency, workers: opts.Workers,
		sourceSchemes: opts.SourceSchemes, tempDir: opts.TempDir, lease: opts.Lease, poll: opts.Poll,
		maxAttempts: opts.MaxAttempts, owner: opts.Owner, wake: make(chan struct{}, 1)}
	if j.log == nil {
		j.log = slog.Default()
	}
	if j.concurrency <= 0 {
		j.concurrency = 1
	}
	if j.workers <= 0 {
		j.workers = goruntime.GOMAXPROCS(0)
	}
	if j.sourceSchemes == nil {
		j.sourceSchemes = []string{"s3", "gs", "azblob"}
	}
	if j.tempDir == "" {
		j.tempDir = os.TempDir()
	}
	if j.lease <= 0 {
		j.lease = 30 * time.Second
	}
	if j.poll <= 0 {
		j.poll = 2 * time.Second
	}
	if j.maxAttempts <= 0 {
		j.maxAttempts = 3
	}
	if j.owner == "" {
		host, _ := os.Hostname()
		j.owner = fmt.Sprintf("%s/%d/%s", host, os.Getpid(), newID()[16:])
	}
	return j
}

// maxListColumns bounds Keep and Features.
const maxListColumns = 10000

// Validate checks a request without submitting it: the model URI's form
// (it must not name a path on the server), the input's, the output key
// and format, and the options. It does not look the model or the input
// up (Submit does).
func (r *JobRequest) Validate() error {
	if r.Model == "" {
		return errdefs.Invalid("The job needs a model: models:/NAME/VERSION, models:/NAME@ALIAS, runs:/RUN_ID/PATH or mlflow-artifacts:/…")
	}
	if len(r.Model) > maxRefLen {
		return errdefs.Invalid("The model URI is longer than %d bytes", maxRefLen)
	}
	u, err := model.ParseURI(r.Model)
	if err != nil {
		return &errdefs.Error{Kind: errdefs.ErrInvalidArgument, Msg: err.Error(), Err: err}
	}
	if u.Kind == model.URILocal {
		return errdefs.Invalid("The server loads models from its registry and artifact store, not from '%s': use models:/…, runs:/… or mlflow-artifacts:/…", clip(r.Model))
	}
	if _, err := ParseInput(r.Input); err != nil {
		return err
	}
	if r.Output != "" {
		if _, err := outputKey(r.Output); err != nil {
			return err
		}
	}
	if r.KeepAll && len(r.Keep) > 0 {
		return errdefs.Invalid("keep and keep_all exclude each other")
	}
	if len(r.Keep) > maxListColumns || len(r.Features) > maxListColumns {
		return errdefs.Invalid("keep and features list at most %d columns", maxListColumns)
	}
	for _, c := range append(append([]string(nil), r.Keep...), r.Features...) {
		if c == "" || len(c) > 1024 {
			return errdefs.Invalid("Column names in keep and features must have 1 to 1024 bytes")
		}
	}
	if r.BatchRows < 0 || r.BatchRows > 1<<20 {
		return errdefs.Invalid("batch_rows must be between 1 and %d (or 0 for the default)", 1<<20)
	}
	return nil
}

// check validates r and fills in the default output of job id.
func (r *JobRequest) check(id string) error {
	if err := r.Validate(); err != nil {
		return err
	}
	if r.Output == "" {
		r.Output = "score-jobs/" + id + "/predictions.parquet"
	}
	key, err := outputKey(r.Output)
	if err != nil {
		return err
	}
	r.Output = key
	return nil
}

// outputKey validates an output artifact: a clean key with a table
// extension, outside Kiln's own prefixes.
func outputKey(s string) (string, error) {
	raw := s
	if rest, ok := strings.CutPrefix(s, "mlflow-artifacts:"); ok {
		s = rest
	} else if strings.Contains(s, "://") {
		return "", errdefs.Invalid("The output '%s' must be a path in the artifact store (or mlflow-artifacts:/path)", clip(raw))
	}
	key, err := artifactKey(s)
	if err != nil || key == "" || len(key) > 1024 {
		return "", errdefs.Invalid("Invalid output '%s': want a relative path in the artifact store such as preds/out.parquet", clip(raw))
	}
	if strings.HasPrefix(key, "datasets/") {
		return "", errdefs.Invalid("The output '%s' is inside Kiln's dataset store; choose another path", clip(raw))
	}
	if _, err := outputFormat(key); err != nil {
		return "", err
	}
	return key, nil
}

func outputFormat(key string) (table.Format, error) {
	switch strings.ToLower(path.Ext(key)) {
	case ".parquet", ".pq":
		return table.Parquet, nil
	case ".csv":
		return table.CSV, nil
	case ".jsonl", ".ndjson":
		return table.JSONL, nil
	}
	return "", errdefs.Invalid("The output '%s' must end in .parquet, .csv or .jsonl", clip(key))
}

const jobCols = `job_id, model_uri, input, output, options, state, rows_done, rows_total, error, created_by, creation_time, start_time, end_time, attempts`

type jobOptions struct {
	Columns
	BatchRows int `json:"batch_rows,omitempty"`
}

func scanJob(row interface{ Scan(...any) error }) (*Job, error) {
	var j Job
	var opts string
	if err := row.Scan(&j.ID, &j.Model, &j.Input, &j.Output, &opts, &j.State, &j.RowsDone, &j.RowsTotal, &j.Error,
		&j.CreatedBy, &j.CreationTime, &j.StartTime, &j.EndTime, &j.Attempts); err != nil {
		return nil, err
	}
	var o jobOptions
	if err := json.Unmarshal([]byte(opts), &o); err != nil {
		return nil, fmt.Errorf("score job %s: options: %w", j.ID, err)
	}
	j.Columns, j.BatchRows = o.Columns, o.BatchRows
	j.OutputURI = "mlflow-artifacts:/" + j.Output
	return &j, nil
}

// Submit validates req and queues a job for it. actor names who asked.
func (j *Jobs) Submit(ctx context.Context, req JobRequest, actor string) (*Job, error) {
	id := newID()
	if err := req.check(id); err != nil {
		return nil, err
	}
	in, _ := ParseInput(req.Input)
	if in.Kind == InputURL {
		scheme, _, _ := strings.Cut(in.URL, "://")
		if !containsFold(j.sourceSchemes, scheme) {
			allowed := "none"
			if len(j.sourceSchemes) > 0 {
				allowed = strings.Join(j.sourceSchemes, "://, ") + "://"
			}
			return nil, errdefs.Invalid("The server reads inputs only from %s URLs, datasets and artifacts, not '%s'", allowed, clip(in.URL))
		}
	}
	if in.Kind == InputDataset && j.d.Datasets != nil {
		if _, err := j.d.Datasets.GetVersion(ctx, in.Dataset); err != nil {
			return nil, err
		}
	}
	opts, err := json.Marshal(jobOptions{Columns: req.Columns, BatchRows: req.BatchRows})
	if err != nil {
		return nil, err
	}
	now := time.Now().UnixMilli()
	_, err = j.d.DB.W.ExecContext(ctx, j.d.DB.Rebind(`INSERT INTO score_jobs
		(job_id, model_uri, input, output, options, state, created_by, creation_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		id, req.Model, in.String(), req.Output, string(opts), string(JobQueued), actor, now)
	if err != nil {
		return nil, fmt.Errorf("submit score job: %w", err)
	}
	select {
	case j.wake <- struct{}{}:
	default:
	}
	return j.Get(ctx, id)
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// Get returns the job with the given id.
func (j *Jobs) Get(ctx context.Context, id string) (*Job, error) {
	if !validID(id) {
		return nil, errdefs.NotFound("Score job '%s' does not exist", clip(id))
	}
	job, err := scanJob(j.d.DB.R.QueryRowContext(ctx, j.d.DB.Rebind(`SELECT `+jobCols+` FROM score_jobs WHERE job_id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errdefs.NotFound("Score job '%s' does not exist", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get score job: %w", err)
	}
	return job, nil
}

// JobQuery selects jobs for List: newest first, optionally of one state,
// MaxResults at a time (100 when 0, at most 1000) after PageToken.
type JobQuery struct {
	State      JobState
	MaxResults int
	PageToken  string
}

// List returns jobs, newest first, and the token of the next page ("" at
// the end).
func (j *Jobs) List(ctx context.Context, q JobQuery) ([]*Job, string, error) {
	if q.State != "" && !ValidJobState(q.State) {
		return nil, "", errdefs.Invalid("Invalid state '%s': want queued, running, succeeded or failed", clip(string(q.State)))
	}
	limit := q.MaxResults
	if limit == 0 {
		limit = 100
	}
	if limit < 0 || limit > 1000 {
		return nil, "", errdefs.Invalid("max_results must be between 1 and 1000")
	}
	if q.PageToken != "" && !validID(q.PageToken) {
		return nil, "", errdefs.Invalid("Invalid page_token")
	}
	where, args := []string{"1 = 1"}, []any{}
	if q.State != "" {
		where, args = append(where, "state = ?"), append(args, string(q.State))
	}
	if q.PageToken != "" {
		where, args = append(where, "job_id < ?"), append(args, q.PageToken)
	}
	args = append(args, limit+1)
	rows, err := j.d.DB.R.QueryContext(ctx, j.d.DB.Rebind(`SELECT `+jobCols+` FROM score_jobs WHERE `+
		strings.Join(where, " AND ")+` ORDER BY job_id DESC LIMIT ?`), args...)
	if err != nil {
		return nil, "", fmt.Errorf("list score jobs: %w", err)
	}
	defer rows.Close()
	out := []*Job{}
	for rows.Next() {
		job, err := scanJob(rows)
		if err != nil {
			return nil, "", err
		}
		out = append(out, job)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list score jobs: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return out, next, nil
}

// Run executes queued jobs, Concurrency at a time, until ctx ends; then it
// cancels the running jobs, puts them back in the queue and returns.
func (j *Jobs) Run(ctx context.Context) error {
	slots := make(chan struct{}, j.concurrency)
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(j.poll)
	defer t.Stop()
	for {
		// Take a slot, then a job.
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		job, err := j.claim(ctx)
		if err != nil && ctx.Err() == nil {
			j.log.Warn("claiming a score job failed", "err", err)
		}
		if job == nil {
			<-slots
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			case <-j.wake:
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			j.execute(ctx, job)
		}()
	}
}

// claim leases the oldest queued job, or a running one whose lease has
// lapsed (its server stopped), and marks it running. Its start time is
// never before its creation time: a claim that read the clock just before a
// concurrent Submit committed can still pick that job up.
func (j *Jobs) claim(ctx context.Context) (*Job, error) {
	now := time.Now().UnixMilli()
	lock := ""
	if j.d.DB.Dialect == store.Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	q := j.d.DB.Rebind(`UPDATE score_jobs SET state = ?, lease_owner = ?, lease_expires = ?, attempts = attempts + 1,
		start_time = CASE WHEN creation_time > ? THEN creation_time ELSE ? END, rows_done = 0, error = ''
		WHERE job_id = (SELECT job_id FROM score_jobs WHERE state = ? OR (state = ? AND lease_expires < ?)
			ORDER BY job_id LIMIT 1` + lock + `)
		RETURNING ` + jobCols)
	job, err := scanJob(j.d.DB.W.QueryRowContext(ctx, q, string(JobRunning), j.owner, now+j.lease.Milliseconds(), now, now,
		string(JobQueued), string(JobRunning), now))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return job, nil
}

// heartbeat records progress and extends the lease; it reports false when
// the lease is lost (another runner took the job).
func (j *Jobs) heartbeat(ctx context.Context, id string, rows, total int64) (bool, error) {
	res, err := j.d.DB.W.ExecContext(ctx, j.d.DB.Rebind(`UPDATE score_jobs SET rows_done = ?, rows_total = ?, lease_expires = ?
		WHERE job_id = ? AND lease_owner = ? AND state = ?`),
		rows, total, time.Now().Add(j.lease).UnixMilli(), id, j.owner, string(JobRunning))
	if err != nil {
		return true, err
	}
	n, err := res.RowsAffected()
	return n > 0 || err != nil, err
}

// finish records a job's end. With requeue it goes back to the queue
// (this server is stopping).
func (j *Jobs) finish(ctx context.Context, id string, state JobState, rows int64, msg string) error {
	end := time.Now().UnixMilli()
	if state == JobQueued {
		end = 0
	}
	_, err := j.d.DB.W.ExecContext(ctx, j.d.DB.Rebind(`UPDATE score_jobs SET state = ?, rows_done = ?, error = ?, end_time = ?,
		lease_owner = '', lease_expires = 0 WHERE job_id = ? AND lease_owner = ?`),
		string(state), rows, msg, end, id, j.owner)
	return err
}

// execute runs one claimed job to its end.
func (j *Jobs) execute(ctx context.Context, job *Job) {
	log := j.log.With("score_job", job.ID)
	j.running.Add(1)
	defer j.running.Add(-1)
	bg := context.WithoutCancel(ctx)
	if job.Attempts > j.maxAttempts {
		msg := fmt.Sprintf("abandoned after %d attempts: its server stopped each time while scoring", job.Attempts-1)
		if err := j.finish(bg, job.ID, JobFailed, 0, msg); err != nil {
			log.Warn("recording the end of a score job failed", "err", err)
		}
		return
	}
	jctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var rows, total atomic.Int64
	total.Store(-1)
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		t := time.NewTicker(min(j.lease/3, time.Second))
		defer t.Stop()
		for {
			select {
			case <-jctx.Done():
				return
			case <-t.C:
				ok, err := j.heartbeat(jctx, job.ID, rows.Load(), total.Load())
				if err != nil && jctx.Err() == nil {
					log.Warn("score job heartbeat failed", "err", err)
				}
				if !ok {
					log.Warn("score job lease lost; stopping it here")
					cancel()
					return
				}
			}
		}
	}()
	start := time.Now()
	log.Info("score job started", "model", job.Model, "input", job.Input, "output", job.Output, "attempt", job.Attempts)
	err := j.score(jctx, job, &rows, &total)
	cancel()
	<-hbDone
	switch {
	case err != nil && ctx.Err() != nil:
		// The server is stopping: back to the queue, for this or another replica.
		log.Info("score job interrupted by shutdown; requeued", "rows", rows.Load())
		if err := j.finish(bg, job.ID, JobQueued, 0, ""); err != nil {
			log.Warn("requeueing a score job failed", "err", err)
		}
	case err != nil:
		log.Info("score job failed", "err", err, "rows", rows.Load())
		if err := j.finish(bg, job.ID, JobFailed, rows.Load(), jobError(err)); err != nil {
			log.Warn("recording the end of a score job failed", "err", err)
		}
	default:
		d := time.Since(start)
		log.Info("score job succeeded", "rows", rows.Load(), "took", d.Round(time.Millisecond),
			"rows_per_s", int64(float64(rows.Load())/max(d.Seconds(), 1e-9)))
		if _, err := j.heartbeat(bg, job.ID, rows.Load(), total.Load()); err != nil {
			log.Warn("recording score job progress failed", "err", err)
		}
		if err := j.finish(bg, job.ID, JobSucceeded, rows.Load(), ""); err != nil {
			log.Warn("recording the end of a score job failed", "err", err)
		}
	}
}

// jobError is the message a failed job shows: a domain error's message,
// else the error text, bounded.
func jobError(err error) string {
	msg := errdefs.Message(err)
	var de *errdefs.Error
	if !errors.As(err, &de) {
		msg = err.Error()
	}
	if len(msg) > 2000 {
		msg = msg[:2000] + "..."
	}
	return msg
}

// score loads the model, fetches the input, and streams the predictions
// into the output artifact.
func (j *Jobs) score(ctx context.Context, job *Job, rows, total *atomic.Int64) error {
	if j.d.Artifacts == nil {
		return errors.New("this server has no artifact store")
	}
	in, err := ParseInput(job.Input)
	if err != nil {
		return err
	}
	format, err := outputFormat(job.Output)
	if err != nil {
		return err
	}
	m, err := model.Open(ctx, job.Model, model.OpenOptions{Resolver: j.d.Models})
	if err != nil {
		return fmt.Errorf("load model %s: %w", job.Model, err)
	}
	defer m.Close()
	local, err := j.fetchInput(ctx, in)
	if err != nil {
		return err
	}
	defer local.cleanup()
	opts := Options{Workers: j.workers, BatchRows: job.BatchRows, Progress: func(n int64) { rows.Add(n) }}
	r, err := openChain(ctx, local.dir, local.files, opts.batchRows())
	if err != nil {
		return err
	}
	defer r.Close()
	total.Store(r.total)
	if j.hook != nil {
		if err := j.hook(ctx); err != nil {
			return err
		}
	}

	pr, pw := io.Pipe()
	put := make(chan error, 1)
	go func() {
		_, err := j.d.Artifacts.Put(ctx, job.Output, pr, contentType(format))
		pr.CloseWithError(err) // unblock the writer if Put stopped early
		put <- err
	}()
	_, err = Write(ctx, m.Model, m.Bundle.Signature, r, pw, format, job.Columns, opts)
	if err != nil {
		pw.CloseWithError(err)
		<-put
		return err
	}
	pw.Close()
	if err := <-put; err != nil {
		return fmt.Errorf("write %s: %w", job.OutputURI, err)
	}
	return nil
}

func contentType(f table.Format) string {
	switch f {
	case table.CSV:
		return "text/csv"
	case table.JSONL:
		return "application/x-ndjson"
	}
	return "application/vnd.apache.parquet"
}

// Running reports the jobs this runner is executing now.
func (j *Jobs) Running() int { return int(j.running.Load()) }

// newID returns a new job id (a ULID).
func newID() string { return store.NewID() }

// validID reports whether s looks like a job id.
func validID(s string) bool {
	if len(s) != 26 {
		return false
	}
	for _, c := range s {
		if !strings.ContainsRune("0123456789ABCDEFGHJKMNPQRSTVWXYZ", c) {
			return false
		}
	}
	return true
}
