package trigger

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/pipeline"
	"github.com/kiln-ml/kiln/registry"
	"github.com/kiln-ml/kiln/store"
)

// Runner starts and lists pipeline runs; *pipeline.Service implements it.
type Runner interface {
	List(ctx context.Context) ([]*pipeline.StoredPipeline, error)
	Get(ctx context.Context, name string) (*pipeline.StoredPipeline, error)
	StartRun(ctx context.Context, req pipeline.RunRequest) (*pipeline.Run, bool, error)
	ListRuns(ctx context.Context, q pipeline.RunQuery) ([]*pipeline.Run, string, error)
	CancelRun(ctx context.Context, id, actor, reason string) (*pipeline.Run, error)
}

// Options configure a Service. DB and Runner are required; without
// Datasets (Registry) dataset (model) triggers never fire.
type Options struct {
	DB       *store.DB
	Runner   Runner
	Datasets *dataset.Store
	Registry *registry.Store
	// Owner names this server in leases (default host/pid/random).
	Owner string
	// LeaseTTL is how long a server's lease on a schedule or trigger lasts
	// before another may take it over (default 30s).
	LeaseTTL time.Duration
	// Poll is how often schedules come due and dataset and model triggers
	// are polled (default 1s).
	Poll       time.Duration
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Env reads webhook secrets (default os.Getenv).
	Env func(string) string
}

// Types of schedules and triggers (State.Type).
const (
	TypeSchedule = "schedule"
	TypeDataset  = "dataset"
	TypeModel    = "model"
	TypeAlert    = "alert"
	TypeWebhook  = "webhook"
)

// Outcomes of an event (the outcome label of
// kiln_pipeline_trigger_fires_total).
const (
	outcomeStarted      = "started"      // a run was started
	outcomeDeduplicated = "deduplicated" // the event's run existed (another server, or a retry)
	outcomeSkipped      = "skipped"      // concurrency forbid: a run was active
	outcomeMissed       = "missed"       // a tick past its starting deadline
	outcomeFailed       = "failed"       // the run could not be started
)

// State is where a schedule or trigger stands.
type State struct {
	Pipeline string `json:"pipeline"`
	Name     string `json:"name"`
	// Type is schedule, dataset, model, alert or webhook.
	Type string `json:"type"`
	// LastFire is the last tick a schedule handled, or when a trigger
	// last fired (unix ms; 0: never).
	LastFire int64 `json:"last_fire,omitempty"`
	// NextFire is a schedule's next tick (unix ms; 0 when suspended or
	// when the expression never matches).
	NextFire  int64  `json:"next_fire,omitempty"`
	LastRunID string `json:"last_run_id,omitempty"`
	// Cursor is the newest dataset or model version a trigger has seen.
	Cursor string `json:"cursor,omitempty"`
	// Error says why the last event started no run (a tick skipped by
	// concurrency forbid or missed past its deadline, a run request
	// refused); empty after a run started.
	Error     string `json:"error,omitempty"`
	Suspended bool   `json:"suspended,omitempty"`
}

// Service starts the runs of schedules and triggers.
type Service struct {
	o       Options
	log     *slog.Logger
	fires   *prometheus.CounterVec
	runner  Runner
	ttl     time.Duration
	poll    time.Duration
	now     func() time.Time
	env     func(string) string
	owner   string
	db      *store.DB
	claimSQ string
}

// NewService returns a Service; Run evaluates schedules and triggers.
func NewService(o Options) (*Service, error) {
	if o.DB == nil {
		return nil, errors.New("trigger: NewService needs a database")
	}
	if o.Runner == nil {
		return nil, errors.New("trigger: NewService needs a Runner")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Env == nil {
		o.Env = os.Getenv
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 30 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Owner == "" {
		host, _ := os.Hostname()
		var b [4]byte
		rand.Read(b[:])
		o.Owner = host + "/" + strconv.Itoa(os.Getpid()) + "/" + hex.EncodeToString(b[:])
	}
	fires := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kiln_pipeline_trigger_fires_total",
		Help: "Schedule ticks and trigger events by type (schedule, dataset, model, alert, webhook) and outcome (started, deduplicated, skipped, missed, failed)."},
		[]string{"type", "outcome"})
	if o.Registerer != nil {
		if err := o.Registerer.Register(fires); err != nil {
			return nil, fmt.Errorf("trigger: register metrics: %w", err)
		}
	}
	s := &Service{o: o, log: o.Logger.With("component", "pipeline-trigger"), fires: fires, runner: o.Runner,
		ttl: o.LeaseTTL, poll: o.Poll, now: o.Now, env: o.Env, owner: o.Owner, db: o.DB}
	return s, nil
}

// Run evaluates schedules and triggers every Poll until ctx ends: it
// reconciles the state rows with the pipelines' schedules and triggers,
// then, under a lease per row, fires the due cron ticks and the new
// dataset and model versions. On return its leases are released.
func (s *Service) Run(ctx context.Context) error {
	defer s.unleaseAll(context.WithoutCancel(ctx))
	t := time.NewTicker(s.poll)
	defer t.Stop()
	for {
		s.pollOnce(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// pollOnce is one round of Run.
func (s *Service) pollOnce(ctx context.Context) {
	now := s.now()
	pipes, err := s.runner.List(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("listing pipelines failed", "err", err)
		}
		return
	}
	byName := make(map[string]*pipeline.StoredPipeline, len(pipes))
	for _, p := range pipes {
		byName[p.Metadata.Name] = p
	}
	if err := s.reconcile(ctx, pipes, now); err != nil {
		if ctx.Err() == nil {
			s.log.Warn("reconciling schedules and triggers failed", "err", err)
		}
		return
	}
	// Each claim moves its row's next_fire past now (or leases it until
	// the next poll), so the loop ends; the bound is a safety net.
	for i := 0; i < 10000 && ctx.Err() == nil; i++ {
		r, err := s.claim(ctx, s.now())
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("claiming a schedule or trigger failed", "err", err)
			}
			return
		}
		if r == nil {
			return
		}
		s.evaluate(ctx, r, byName[r.Pipeline])
	}
}

// evaluate handles one claimed row and releases it.
func (s *Service) evaluate(ctx context.Context, r *row, p *pipeline.StoredPipeline) {
	var u update
	var ok bool
	switch r.Type {
	case TypeSchedule:
		if sc := findSchedule(p, r.Name); sc != nil && scheduleConfig(sc) == r.Config {
			u, ok = s.evalSchedule(ctx, r, sc)
		}
	case TypeDataset, TypeModel:
		if tr := findTrigger(p, r.Type, r.Name); tr != nil && triggerConfig(tr) == r.Config {
			u, ok = s.evalVersions(ctx, r, tr)
		}
	}
	if !ok {
		// The spec changed under us (or the evaluation lost its lease):
		// leave the row alone until the next poll's reconcile.
		s.skipRow(context.WithoutCancel(ctx), r)
		return
	}
	if err := s.release(context.WithoutCancel(ctx), r, u); err != nil {
		s.log.Warn("releasing a schedule or trigger failed", "pipeline", r.Pipeline, "name", r.Name, "err", err)
	}
}

func findSchedule(p *pipeline.StoredPipeline, name string) *pipeline.Schedule {
	if p == nil {
		return nil
	}
	for i := range p.Spec.Schedules {
		if p.Spec.Schedules[i].Name == name {
			return &p.Spec.Schedules[i]
		}
	}
	return nil
}

func findTrigger(p *pipeline.StoredPipeline, typ, name string) *pipeline.Trigger {
	if p == nil {
		return nil
	}
	for i := range p.Spec.Triggers {
		if t := &p.Spec.Triggers[i]; t.Name == name && triggerType(t) == typ {
			return t
		}
	}
	return nil
}

// triggerType is the type of a trigger: its one source.
func triggerType(t *pipeline.Trigger) string {
	switch {
	case t.Dataset != "":
		return TypeDataset
	case t.Model != "":
		return TypeModel
	case t.Alert != nil:
		return TypeAlert
	case t.Webhook != nil:
		return TypeWebhook
	}
	return ""
}

// triggerConfig is what a trigger's cursor depends on.
func triggerConfig(t *pipeline.Trigger) string {
	switch {
	case t.Dataset != "":
		return t.Dataset
	case t.Model != "":
		return t.Model
	}
	return ""
}

// States returns where the schedules and triggers of a pipeline stand, in
// spec order (schedules first); errdefs.NotFound if there is no such
// pipeline. A schedule or trigger that no server has reconciled yet is
// shown with its next tick computed now.
func (s *Service) States(ctx context.Context, name string) ([]State, error) {
	p, err := s.runner.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	rows, err := s.rows(ctx, name)
	if err != nil {
		return nil, err
	}
	byKey := map[[2]string]*row{}
	for _, r := range rows {
		byKey[[2]string{r.Type, r.Name}] = r
	}
	now := s.now()
	var out []State
	for i := range p.Spec.Schedules {
		sc := &p.Spec.Schedules[i]
		st := State{Pipeline: name, Name: sc.Name, Type: TypeSchedule, Suspended: sc.Suspend}
		if r := byKey[[2]string{TypeSchedule, sc.Name}]; r != nil && r.Config == scheduleConfig(sc) {
			st.LastFire, st.NextFire, st.LastRunID, st.Error = r.LastFire, r.NextFire, r.LastRunID, r.Error
		} else if !sc.Suspend {
			if next, err := nextTick(sc, now); err != nil {
				st.Error = err.Error()
			} else {
				st.NextFire = next
			}
		}
		if sc.Suspend {
			st.NextFire = 0
		}
		out = append(out, st)
	}
	for i := range p.Spec.Triggers {
		t := &p.Spec.Triggers[i]
		st := State{Pipeline: name, Name: t.Name, Type: triggerType(t)}
		if r := byKey[[2]string{st.Type, t.Name}]; r != nil && r.Config == triggerConfig(t) {
			st.LastFire, st.LastRunID, st.Cursor, st.Error = r.LastFire, r.LastRunID, r.Cursor, r.Error
		}
		out = append(out, st)
	}
	return out, nil
}
