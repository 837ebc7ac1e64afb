package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/store"
	"github.com/kiln-ml/kiln/tracking"
)

// ServiceOptions configure a Service.
type ServiceOptions struct {
	DB        *store.DB
	Tracking  *tracking.Store
	Artifacts *blob.Bucket
	// Datasets resolves dataset inputs ("name@latest" to a version at run
	// start) and gives their digests for the cache key.
	Datasets *dataset.Store
	// Stager computes the content digests of artifact inputs for the cache
	// key when it implements Digester (default NewBucketStager over
	// Artifacts, Tracking and Datasets). Executors have their own.
	Stager Stager
	// Executors by name ("local", "kubernetes"); a step whose executor is
	// missing fails with a clear error.
	Executors map[string]Executor
	// Owner is the lease owner id (default host/pid/random).
	Owner string
	// ExternalURL is given to steps as KILN_URL and MLFLOW_TRACKING_URI.
	ExternalURL string
	// LeaseTTL is how long a step stays leased without renewal (30s);
	// leases are renewed every TTL/3 while an attempt runs.
	LeaseTTL time.Duration
	// Poll is how often the loop looks for work other servers made ready
	// and for cancellations (250ms); work of this server wakes it at once.
	Poll time.Duration
	// Concurrency bounds the attempts this server runs at once (64); the
	// executors have their own bounds below it.
	Concurrency int
	// TimeoutGrace is how long past a step's timeout the Service waits for
	// the executor to stop the attempt before it gives up on it (15s).
	TimeoutGrace time.Duration
	Logger       *slog.Logger
	Registerer   prometheus.Registerer
	Now          func() time.Time
	// Observer, if set, hears of runs and steps starting and ending.
	Observer Observer
}

// Service stores pipelines and runs them: Run is its loop, which leases
// ready steps through the database so that several servers on one
// PostgreSQL share the work and each attempt starts once.
type Service struct {
	o       ServiceOptions
	db      *store.DB
	log     *slog.Logger
	owner   string
	ttl     time.Duration
	poll    time.Duration
	grace   time.Duration
	now     func() time.Time
	metrics *metrics
	wake    chan struct{}

	mu     sync.Mutex
	runs   map[string]*runInfo  // immutable facts of active runs, by id
	active map[int64]*execution // attempts of this server, by step_id

	// crashed (tests): stop writing anything, as if the process died.
	crashed bool
}

// NewService returns a Service; call Run to execute runs.
func NewService(o ServiceOptions) (*Service, error) {
	if o.DB == nil {
		return nil, errors.New("pipeline: a database is required")
	}
	s := &Service{o: o, db: o.DB, log: o.Logger, owner: o.Owner, ttl: o.LeaseTTL, poll: o.Poll, grace: o.TimeoutGrace, now: o.Now,
		wake: make(chan struct{}, 1), runs: map[string]*runInfo{}, active: map[int64]*execution{}}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.owner == "" {
		host, _ := os.Hostname()
		var b [4]byte
		rand.Read(b[:])
		s.owner = fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	if s.ttl <= 0 {
		s.ttl = 30 * time.Second
	}
	if s.poll <= 0 {
		s.poll = 250 * time.Millisecond
	}
	if s.grace <= 0 {
		s.grace = 15 * time.Second
	}
	if s.o.Concurrency <= 0 {
		s.o.Concurrency = 64
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.o.Stager == nil && o.Artifacts != nil {
		s.o.Stager = NewBucketStager(o.Artifacts, o.Tracking, nil, o.Datasets)
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	return s, nil
}

// Owner returns the id this Service leases steps under.
func (s *Service) Owner() string { return s.owner }

func (s *Service) nowMS() int64 { return s.now().UnixMilli() }

func (s *Service) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Put creates or replaces the pipeline named p.Metadata.Name. It reports
// whether it was created and whether the stored document changed
// (putting the same document again changes nothing); the generation
// counts changes of the spec.
func (s *Service) Put(ctx context.Context, p *Pipeline, actor string) (sp *StoredPipeline, created, changed bool, err error) {
	if p == nil {
		return nil, false, false, errdefs.Invalid("no pipeline given")
	}
	p.Normalize()
	if err := ValidateName(p.Metadata.Name); err != nil {
		return nil, false, false, err
	}
	if err := p.Validate(); err != nil {
		return nil, false, false, err
	}
	doc, err := json.Marshal(p)
	if err != nil {
		return nil, false, false, fmt.Errorf("encode pipeline: %w", err)
	}
	newSpec := mustJSON(p.Spec)
	t := s.nowMS()
	err = s.db.Tx(ctx, func(tx store.Tx) error {
		old, err := s.getPipeline(ctx, tx, p.Metadata.Name)
		switch {
		case errors.Is(err, errdefs.ErrNotFound):
			created, changed = true, true
			_, err = tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO pipelines (name, spec, generation, updated_by, creation_time, last_update_time)
				VALUES (?, ?, 1, ?, ?, ?)`), p.Metadata.Name, string(doc), actor, t, t)
			if store.IsUniqueViolation(err) {
				return errdefs.InvalidState("Pipeline '%s' was created concurrently; retry", p.Metadata.Name)
			}
			return err
		case err != nil:
			return err
		}
		if mustJSON(old.Pipeline) == string(doc) {
			return nil
		}
		changed = true
		gen := old.Generation
		if mustJSON(old.Spec) != newSpec {
			gen++
		}
		_, err = tx.ExecContext(ctx, s.db.Rebind(`UPDATE pipelines SET spec = ?, generation = ?, updated_by = ?, last_update_time = ? WHERE name = ?`),
			string(doc), gen, actor, t, p.Metadata.Name)
		return err
	})
	if err != nil {
		var de *errdefs.Error
		if errors.As(err, &de) {
			return nil, false, false, err
		}
		return nil, false, false, fmt.Errorf("put pipeline: %w", err)
	}
	sp, err = s.Get(ctx, p.Metadata.Name)
	if err == nil && changed {
		s.log.Info("pipeline stored", "pipeline", p.Metadata.Name, "generation", sp.Generation, "created", created, "actor", actor)
	}
	return sp, created, changed, err
}

// Get returns the pipeline named name (errdefs.NotFound if none).
func (s *Service) Get(ctx context.Context, name string) (*StoredPipeline, error) {
	return s.getPipeline(ctx, s.db.R, name)
}

// List returns the pipelines by name.
func (s *Service) List(ctx context.Context) ([]*StoredPipeline, error) {
	rows, err := s.db.R.QueryContext(ctx, `SELECT `+pipelineCols+` FROM pipelines ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list pipelines: %w", err)
	}
	defer rows.Close()
	out := []*StoredPipeline{}
	for rows.Next() {
		sp, err := scanPipeline(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sp)
	}
	return out, rows.Err()
}

// Delete removes a pipeline and its step cache, and cancels its active
// runs; the run history stays.
func (s *Service) Delete(ctx context.Context, name string) error {
	if _, err := s.Get(ctx, name); err != nil {
		return err
	}
	for {
		runs, _, err := s.ListRuns(ctx, RunQuery{Pipeline: name, State: "active", Limit: 1000})
		if err != nil {
			return err
		}
		for _, r := range runs {
			if _, err := s.CancelRun(ctx, r.ID, "", "pipeline deleted"); err != nil {
				return err
			}
		}
		if len(runs) < 1000 {
			break
		}
	}
	err := s.db.Tx(ctx, func(tx store.Tx) error {
		res, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM pipelines WHERE name = ?`), name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return pipelineNotFound(name)
		}
		_, err = tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM pipeline_cache WHERE pipeline = ?`), name)
		return err
	})
	if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return fmt.Errorf("delete pipeline: %w", err)
	}
	if err == nil {
		s.log.Info("pipeline deleted", "pipeline", name)
	}
	return err
}

// GetRun returns a run with its steps (in the spec's order, the exit
// handler last) and the spec it runs.
func (s *Service) GetRun(ctx context.Context, id string) (*Run, error) {
	r, err := s.getRun(ctx, s.db.R, id)
	if err != nil {
		return nil, err
	}
	steps, err := s.listSteps(ctx, s.db.R, id)
	if err != nil {
		return nil, err
	}
	run := r.Run
	run.Spec = json.RawMessage(r.specJSON)
	run.Steps = make([]*StepRun, 0, len(steps))
	for _, st := range steps {
		sr := st.StepRun
		if Terminal(sr.State) {
			sr.Owner, sr.NextAttemptTime = "", 0
		} else if sr.State == StateQueued && st.failures == 0 {
			sr.NextAttemptTime = 0
		}
		run.Steps = append(run.Steps, &sr)
	}
	return &run, nil
}

// ListRuns returns runs, newest first, and the token of the next page.
func (s *Service) ListRuns(ctx context.Context, q RunQuery) ([]*Run, string, error) {
	limit := q.Limit
	if limit == 0 {
		limit = 50
	}
	if limit < 0 || limit > 1000 {
		return nil, "", errdefs.Invalid("limit must be between 1 and 1000")
	}
	where, args := []string{"1 = 1"}, []any{}
	if q.Pipeline != "" {
		where, args = append(where, "pipeline = ?"), append(args, q.Pipeline)
	}
	switch q.State {
	case "":
	case "active":
		where, args = append(where, "state IN (?, ?)"), append(args, StatePending, StateRunning)
	case StatePending, StateRunning, StateSucceeded, StateFailed, StateCancelled:
		where, args = append(where, "state = ?"), append(args, q.State)
	default:
		return nil, "", errdefs.Invalid("Invalid state '%s': want pending, running, succeeded, failed, cancelled or active", clipText(q.State))
	}
	if q.PageToken != "" {
		if !validID(q.PageToken) {
			return nil, "", errdefs.Invalid("Invalid page_token")
		}
		where, args = append(where, "run_id < ?"), append(args, q.PageToken)
	}
	args = append(args, limit+1)
	rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(`SELECT `+runCols+` FROM pipeline_runs WHERE `+strings.Join(where, " AND ")+
		` ORDER BY run_id DESC LIMIT ?`), args...)
	if err != nil {
		return nil, "", fmt.Errorf("list pipeline runs: %w", err)
	}
	defer rows.Close()
	out := []*Run{}
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, "", err
		}
		run := r.Run
		out = append(out, &run)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list pipeline runs: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return out, next, nil
}

// CancelRun cancels a run: its steps that have not ended are cancelled,
// and the servers running them stop their attempts (this one at once,
// others when they next poll or renew their leases). A run that has
// ended is returned as it is.
func (s *Service) CancelRun(ctx context.Context, id, actor, reason string) (*Run, error) {
	if reason == "" {
		reason = "cancelled"
		if actor != "" {
			reason = "cancelled by " + actor
		}
	}
	t := s.nowMS()
	var cancelled []string
	var r *runRow
	err := s.db.Tx(ctx, func(tx store.Tx) error {
		state, err := s.lockRun(ctx, tx, id)
		if err != nil {
			return err
		}
		if Terminal(state) {
			return nil
		}
		rows, err := tx.QueryContext(ctx, s.db.Rebind(`SELECT step FROM pipeline_steps WHERE run_id = ? AND state IN (?, ?, ?)`),
			id, StatePending, StateQueued, StateRunning)
		if err != nil {
			return err
		}
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				rows.Close()
				return err
			}
			cancelled = append(cancelled, name)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE pipeline_steps SET state = ?, end_time = ?, lease_owner = '', lease_expires = 0,
			error = CASE WHEN state = 'running' THEN ? ELSE error END WHERE run_id = ? AND state IN (?, ?, ?)`),
			StateCancelled, t, reason, id, StatePending, StateQueued, StateRunning); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.db.Rebind(`UPDATE pipeline_runs SET state = ?, error = ?, end_time = ? WHERE run_id = ?`),
			StateCancelled, reason, t, id)
		return err
	})
	if err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil, err
		}
		return nil, fmt.Errorf("cancel pipeline run: %w", err)
	}
	r, err = s.getRun(ctx, s.db.R, id)
	if err != nil {
		return nil, err
	}
	if r.State == StateCancelled && r.EndTime == t {
		s.log.Info("pipeline run cancelled", "pipeline", r.Pipeline, "run", id, "actor", actor, "reason", reason)
		s.metrics.runs.WithLabelValues(StateCancelled).Inc()
		s.metrics.steps.WithLabelValues(StateCancelled).Add(float64(len(cancelled)))
		s.stopLocal(id)
		s.endTracking(context.WithoutCancel(ctx), r.TrackingRunID, StateCancelled)
		s.forgetRun(id)
		for _, step := range cancelled {
			s.observe(Lifecycle{Phase: PhaseAbort, Pipeline: r.Pipeline, RunID: id, Step: step, State: StateCancelled, Error: reason})
		}
		s.observe(Lifecycle{Phase: PhaseAbort, Pipeline: r.Pipeline, RunID: id, State: StateCancelled, TrackingRunID: r.TrackingRunID, Error: reason})
	}
	return s.GetRun(ctx, id)
}

// Logs returns the log chunks of a step attempt (0: the latest) after
// sequence number afterSeq, at most limit (1000 when 0, at most 10000).
func (s *Service) Logs(ctx context.Context, runID, step string, attempt int, afterSeq int64, limit int) ([]LogChunk, error) {
	if limit == 0 {
		limit = 1000
	}
	if limit < 0 || limit > 10000 {
		return nil, errdefs.Invalid("limit must be between 1 and 10000")
	}
	if attempt < 0 {
		return nil, errdefs.Invalid("attempt must be 0 (the latest) or more")
	}
	var cur int
	err := s.db.R.QueryRowContext(ctx, s.db.Rebind(`SELECT attempt FROM pipeline_steps WHERE run_id = ? AND step = ?`), runID, step).Scan(&cur)
	if err != nil {
		if _, rerr := s.getRun(ctx, s.db.R, runID); rerr != nil {
			return nil, rerr
		}
		return nil, errdefs.NotFound("Pipeline run %s has no step '%s'", runID, clipText(step))
	}
	if attempt == 0 {
		attempt = cur
	}
	rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(`SELECT seq, time, data FROM pipeline_logs WHERE run_id = ? AND step = ? AND attempt = ? AND seq > ?
		ORDER BY seq LIMIT ?`), runID, step, attempt, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("read step logs: %w", err)
	}
	defer rows.Close()
	out := []LogChunk{}
	for rows.Next() {
		c := LogChunk{Step: step, Attempt: attempt}
		var data []byte
		if err := rows.Scan(&c.Seq, &c.Time, &data); err != nil {
			return nil, err
		}
		c.Data = strings.ToValidUTF8(string(data), "\uFFFD")
		out = append(out, c)
	}
	return out, rows.Err()
}

// validID reports whether s looks like a ULID.
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

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
