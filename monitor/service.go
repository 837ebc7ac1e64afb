package monitor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/dataset/profile"
	"github.com/kiln-ml/kiln/dataset/validate"
	"github.com/kiln-ml/kiln/deploy"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/evaluate"
	"github.com/kiln-ml/kiln/monitor/alert"
	"github.com/kiln-ml/kiln/monitor/drift"
	"github.com/kiln-ml/kiln/stattest"
	"github.com/kiln-ml/kiln/store"
)

// Prefixes of the logged columns in a window's profile (those of
// monitor/predlog).
const (
	inputPrefix  = "inputs."
	outputPrefix = "outputs."
)

// Flusher makes everything this replica logged for an endpoint readable
// (a *predlog.Log).
type Flusher interface {
	Flush(ctx context.Context, endpoint string) error
}

// Window is the merged summary of an endpoint's log over a span of time.
type Window struct {
	Requests, Rows, Errors, ClientErrors int64
	// Profile has the columns "inputs.<feature>" and "outputs.<output>"
	// (nil when nothing was logged).
	Profile *profile.Profile
	// Outliers counts the rows outside the bounds per feature (no
	// prefix); OutlierRows the rows with any.
	Outliers    map[string]int64
	OutlierRows int64
	// Latency returns the latency quantile q in seconds (nil: none).
	Latency func(q float64) float64
}

// Summarizer merges the summaries of an endpoint's log over [from, to)
// (predlog.Index through SummariesOf).
type Summarizer interface {
	Summarize(ctx context.Context, endpoint string, from, to time.Time) (*Window, error)
}

// PerformanceQuery asks for the quality of an endpoint's labelled
// predictions in [From, To).
type PerformanceQuery struct {
	Endpoint      string
	From, To      time.Time
	Task          evaluate.Task
	Metrics       []string
	Prediction    string
	PositiveClass string
	SliceBy       []string
}

// PerformanceSource computes quality metrics from labels
// (feedback.Service through PerformanceOf).
type PerformanceSource interface {
	WindowPerformance(ctx context.Context, q PerformanceQuery) (*Performance, error)
}

// Endpoints tells which model versions an endpoint serves (a
// *deploy.Manager).
type Endpoints interface {
	Get(ctx context.Context, name string) (*deploy.State, error)
}

// Datasets reads reference dataset versions and the lineage of model
// versions (a *dataset.Store).
type Datasets interface {
	GetVersion(ctx context.Context, ref dataset.VersionRef) (*dataset.Version, error)
	VersionsOfModel(ctx context.Context, modelName string, modelVersion int64) ([]dataset.VersionUse, error)
	VersionsOfRun(ctx context.Context, runID string) ([]dataset.RunLink, error)
}

// AlertEngine evaluates alert rules and keeps receivers (an
// *alert.Engine).
type AlertEngine interface {
	Evaluate(ctx context.Context, monitor string, rules []alert.Rule, samples []alert.Sample, at time.Time) ([]alert.Transition, error)
	Active(ctx context.Context, monitor string) ([]alert.State, error)
	History(ctx context.Context, q alert.HistoryQuery) ([]alert.Event, error)
	PutReceiver(ctx context.Context, r alert.Receiver) (alert.Receiver, error)
	GetReceiver(ctx context.Context, name string) (alert.Receiver, error)
	ListReceivers(ctx context.Context) ([]alert.Receiver, error)
	DeleteReceiver(ctx context.Context, name string) error
}

// ServiceOptions are what a Service needs. DB is required; each of the
// others may be nil, which leaves out what it provides.
type ServiceOptions struct {
	DB *store.DB
	// Log is flushed for the endpoint before each evaluation (this
	// replica's records; others ship on their own roll interval).
	Log Flusher
	// Index summarizes the log's windows.
	Index     Summarizer
	Datasets  Datasets
	Endpoints Endpoints
	Feedback  PerformanceSource
	Alerts    AlertEngine
	// Registerer takes the kiln_monitor_* metrics.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Replica names this process in leases (random when empty).
	Replica string
	// Interval is how often the scheduler looks for due monitors
	// (default 5s).
	Interval time.Duration
	// Lease is how long a claimed evaluation may run before another
	// replica may take it over (default 5m).
	Lease time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Service stores monitors, evaluates them on their schedules (one
// replica each) and serves their results.
type Service struct {
	o       ServiceOptions
	store   *Store
	log     *slog.Logger
	metrics *metrics
	now     func() time.Time

	refMu sync.Mutex
	refs  map[string]cachedRef // reference profiles by key

	bounds atomic.Pointer[map[string]map[string]Bounds] // endpoint → feature → bounds

	stop chan struct{}
	done chan struct{}
	wake chan struct{}
}

// Bounds are the outlier bounds of a feature: values outside [Lo, Hi]
// are outliers.
type Bounds struct{ Lo, Hi float64 }

type cachedRef struct {
	p       *profile.Profile
	info    ReferenceInfo
	expires time.Time // zero: never (an immutable dataset version)
}

// NewService returns a Service; Start runs its scheduler.
func NewService(o ServiceOptions) (*Service, error) {
	if o.DB == nil {
		return nil, errors.New("monitor: NewService needs a database")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Interval <= 0 {
		o.Interval = 5 * time.Second
	}
	if o.Lease <= 0 {
		o.Lease = 5 * time.Minute
	}
	if o.Replica == "" {
		var b [8]byte
		rand.Read(b[:])
		o.Replica = hex.EncodeToString(b[:])
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, fmt.Errorf("monitor: register metrics: %w", err)
	}
	s := &Service{o: o, store: NewStore(o.DB), log: o.Logger.With("component", "monitor"), metrics: m, now: o.Now,
		refs: map[string]cachedRef{}, wake: make(chan struct{}, 1)}
	empty := map[string]map[string]Bounds{}
	s.bounds.Store(&empty)
	return s, nil
}

// Store returns the service's store.
func (s *Service) Store() *Store { return s.store }

// Start runs the scheduler until ctx ends or Stop is called: every
// Interval it claims due monitors (a lease on PostgreSQL, so one replica
// evaluates each) and evaluates them.
func (s *Service) Start(ctx context.Context) {
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		<-s.stop
		cancel()
	}()
	go func() {
		defer close(s.done)
		defer s.store.unlease(context.WithoutCancel(ctx), s.o.Replica)
		s.refreshBounds(ctx)
		t := time.NewTicker(s.o.Interval)
		defer t.Stop()
		for {
			s.RunDue(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-s.wake:
			}
		}
	}()
}

// Stop ends the scheduler and waits for a running evaluation.
func (s *Service) Stop() {
	if s.stop == nil {
		return
	}
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// RunDue evaluates every monitor that is due now, one at a time, and
// returns how many it evaluated.
func (s *Service) RunDue(ctx context.Context) int {
	n := 0
	for ctx.Err() == nil {
		sm, err := s.store.claim(ctx, s.o.Replica, s.now(), s.o.Lease)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("claiming a due monitor failed", "err", err)
			}
			return n
		}
		if sm == nil {
			return n
		}
		n++
		at := s.now()
		if _, err := s.evaluate(ctx, sm, at); err != nil {
			s.log.Warn("monitor evaluation failed", "monitor", sm.Monitor.Metadata.Name, "err", err)
		}
		next := at.Add(sm.Monitor.Spec.Effective().Schedule.Every.D())
		if err := s.store.release(context.WithoutCancel(ctx), sm.Monitor.Metadata.Name, s.o.Replica, next); err != nil {
			s.log.Warn("releasing a monitor failed", "monitor", sm.Monitor.Metadata.Name, "err", err)
		}
	}
	return n
}

// Put creates or replaces a monitor.
func (s *Service) Put(ctx context.Context, m *Monitor, actor string) (*StoredMonitor, bool, bool, error) {
	sm, created, changed, err := s.store.Put(ctx, m, actor, s.now())
	if err == nil && changed {
		s.forget(m.Metadata.Name)
		s.refreshBounds(ctx)
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	return sm, created, changed, err
}

// Get returns a monitor.
func (s *Service) Get(ctx context.Context, name string) (*StoredMonitor, error) {
	return s.store.Get(ctx, name)
}

// List returns the monitors ("" = of every endpoint).
func (s *Service) List(ctx context.Context, endpoint string) ([]*StoredMonitor, error) {
	return s.store.List(ctx, endpoint)
}

// Delete removes a monitor, its results and its metrics. Its alerts
// resolve: their rules are evaluated once with no rules left.
func (s *Service) Delete(ctx context.Context, name string) error {
	sm, err := s.store.Get(ctx, name)
	if err != nil {
		return err
	}
	if err := s.store.Delete(ctx, name); err != nil {
		return err
	}
	s.forget(name)
	s.metrics.delete(name)
	if s.o.Alerts != nil && len(sm.Monitor.Spec.Alerts) > 0 {
		if _, err := s.o.Alerts.Evaluate(ctx, name, nil, nil, s.now()); err != nil {
			s.log.Warn("resolving the alerts of a deleted monitor failed", "monitor", name, "err", err)
		}
	}
	s.refreshBounds(ctx)
	return nil
}

// RunNow evaluates a monitor now, whatever its schedule, and returns the
// stored result.
func (s *Service) RunNow(ctx context.Context, name string) (*Result, error) {
	sm, err := s.store.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	return s.evaluate(ctx, sm, s.now())
}

// Results returns a monitor's results in [from, to), oldest first (the
// newest limit).
func (s *Service) Results(ctx context.Context, name string, from, to time.Time, limit int) ([]*Result, error) {
	if _, err := s.store.Get(ctx, name); err != nil {
		return nil, err
	}
	return s.store.Results(ctx, name, from, to, limit)
}

// Latest returns a monitor's newest result (nil when none).
func (s *Service) Latest(ctx context.Context, name string) (*Result, error) {
	return s.store.Latest(ctx, name)
}

func (s *Service) forget(monitor string) {
	s.refMu.Lock()
	defer s.refMu.Unlock()
	for k := range s.refs {
		if strings.HasPrefix(k, "monitor="+monitor+";") {
			delete(s.refs, k)
		}
	}
}

// evaluate runs one evaluation at now and stores its result.
func (s *Service) evaluate(ctx context.Context, sm *StoredMonitor, now time.Time) (*Result, error) {
	m := sm.Monitor
	spec := m.Spec.Effective()
	w := spec.Window.D()
	r := &Result{Monitor: m.Metadata.Name, Endpoint: spec.Endpoint, Generation: sm.Generation,
		Time: now.UTC(), WindowStart: now.Add(-w).UTC(), WindowEnd: now.UTC()}
	var notes []string
	if err := s.compute(ctx, spec, r, &notes); err != nil {
		r.Status, notes = StatusError, append(notes, errdefs.Message(err))
	}
	r.Message = strings.Join(notes, "; ")
	if s.o.Alerts != nil && len(spec.Alerts) > 0 {
		tr, err := s.o.Alerts.Evaluate(ctx, r.Monitor, spec.Alerts, Samples(r), now)
		if err != nil {
			s.log.Warn("alert evaluation failed", "monitor", r.Monitor, "err", err)
			r.Message = strings.TrimPrefix(r.Message+"; alert evaluation failed: "+errdefs.Message(err), "; ")
		}
		r.Alerts = tr
	}
	r.DurationSeconds = s.now().Sub(now).Seconds()
	if err := s.store.AddResult(context.WithoutCancel(ctx), r); err != nil {
		return nil, err
	}
	s.metrics.observe(r)
	return r, nil
}

// compute fills r: traffic, drift, outliers, performance and status.
func (s *Service) compute(ctx context.Context, spec Spec, r *Result, notes *[]string) error {
	if s.o.Index == nil {
		return errdefs.NotImplemented("This server keeps no prediction log")
	}
	if s.o.Log != nil {
		if err := s.o.Log.Flush(ctx, spec.Endpoint); err != nil {
			*notes = append(*notes, "flushing the prediction log failed: "+errdefs.Message(err))
		}
	}
	cur, err := s.o.Index.Summarize(ctx, spec.Endpoint, r.WindowStart, r.WindowEnd)
	if err != nil {
		return fmt.Errorf("summarize the window: %w", err)
	}
	r.Traffic = traffic(cur, spec.Window.D())
	if cur.Rows == 0 || cur.Profile == nil {
		r.Status = StatusNoData
		return nil
	}
	ref, info, err := s.reference(ctx, spec, r.Monitor, r.WindowEnd)
	if err != nil {
		return err
	}
	r.Reference = info
	refProfile := drift.FromProfile(ref)
	if info.Kind == "window" {
		refProfile = drift.Prefixed(refProfile, inputPrefix)
	}
	curProfile := drift.FromProfile(cur.Profile)
	opts := drift.Options{Features: spec.Features, DriftShare: spec.Drift.DriftShare, Histograms: true, Threshold: spec.Drift.Threshold}
	if spec.Drift.Method != "" {
		opts.Method, _ = stattest.ParseMethod(spec.Drift.Method)
	}
	if len(spec.Drift.PerFeature) > 0 {
		opts.PerFeature = map[string]drift.FeatureTest{}
		for f, ft := range spec.Drift.PerFeature {
			t := drift.FeatureTest{Threshold: ft.Threshold}
			if ft.Method != "" {
				t.Method, _ = stattest.ParseMethod(ft.Method)
			}
			opts.PerFeature[f] = t
		}
	}
	rep, err := drift.Compare(ctx, refProfile, drift.Prefixed(curProfile, inputPrefix), opts)
	if err != nil {
		return fmt.Errorf("drift: %w", err)
	}
	r.Drift = rep
	if rep.Total == 0 {
		*notes = append(*notes, "no feature of the reference is in the log")
	}
	if spec.Drift.Predictions {
		if err := s.predictionDrift(ctx, spec, r, ref, info, cur, opts); err != nil {
			*notes = append(*notes, "prediction drift: "+errdefs.Message(err))
		}
	}
	r.Outliers = outliers(cur)
	if spec.Performance != nil && s.o.Feedback != nil {
		if err := s.performance(ctx, spec, r); err != nil {
			*notes = append(*notes, "performance: "+errdefs.Message(err))
		}
	}
	r.Status = StatusOK
	if rep.DatasetDrift || r.PredictionDrift != nil && r.PredictionDrift.DatasetDrift {
		r.Status = StatusDrift
	}
	return nil
}

func traffic(w *Window, span time.Duration) Traffic {
	t := Traffic{Requests: w.Requests, Rows: w.Rows, Errors: w.Errors, ClientErrors: w.ClientErrors}
	if w.Requests > 0 {
		t.ErrorRate = float64(w.Errors) / float64(w.Requests)
		if w.Latency != nil {
			t.LatencyP50, t.LatencyP95, t.LatencyP99 = finite(w.Latency(0.5)), finite(w.Latency(0.95)), finite(w.Latency(0.99))
		}
	}
	if span > 0 {
		t.RPS = float64(w.Requests) / span.Seconds()
	}
	return t
}

func finite(x float64) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return 0
	}
	return x
}

func outliers(w *Window) *Outliers {
	o := &Outliers{Rows: w.OutlierRows}
	if w.Rows > 0 {
		o.Share = float64(w.OutlierRows) / float64(w.Rows)
	}
	if len(w.Outliers) > 0 {
		o.Features = map[string]FeatureOutliers{}
		for f, n := range w.Outliers {
			fo := FeatureOutliers{Count: n}
			if w.Rows > 0 {
				fo.Share = float64(n) / float64(w.Rows)
			}
			o.Features[strings.TrimPrefix(f, inputPrefix)] = fo
		}
	}
	return o
}

// predictionDrift compares the window's outputs with the reference's
// columns of the same names, else with the previous window.
func (s *Service) predictionDrift(ctx context.Context, spec Spec, r *Result, ref *profile.Profile, info *ReferenceInfo, cur *Window, opts drift.Options) error {
	curOut := drift.Prefixed(drift.FromProfile(cur.Profile), outputPrefix)
	outputs := curOut.Columns()
	if len(outputs) == 0 {
		return errors.New("the log has no outputs")
	}
	opts.Features, opts.PerFeature = nil, nil
	var refOut validate.Profile
	switch {
	case info.Kind == "window":
		refOut = drift.Prefixed(drift.FromProfile(ref), outputPrefix)
		info.Predictions = "reference"
	default:
		refCols := map[string]bool{}
		for _, c := range ref.Columns {
			refCols[c.Field.Name] = true
		}
		for _, o := range outputs {
			if refCols[o] {
				opts.Features = append(opts.Features, o)
			}
		}
		if len(opts.Features) > 0 {
			refOut = drift.FromProfile(ref)
			info.Predictions = "reference"
			break
		}
		prev, err := s.o.Index.Summarize(ctx, spec.Endpoint, r.WindowStart.Add(-spec.Window.D()), r.WindowStart)
		if err != nil {
			return err
		}
		if prev.Rows == 0 || prev.Profile == nil {
			return errors.New("the reference has no prediction columns and the previous window no predictions")
		}
		refOut = drift.Prefixed(drift.FromProfile(prev.Profile), outputPrefix)
		info.Predictions = "previous_window"
	}
	rep, err := drift.Compare(ctx, refOut, curOut, opts)
	if err != nil {
		return err
	}
	r.PredictionDrift = rep
	return nil
}

func (s *Service) performance(ctx context.Context, spec Spec, r *Result) error {
	p := spec.Performance
	perf, err := s.o.Feedback.WindowPerformance(ctx, PerformanceQuery{Endpoint: spec.Endpoint, From: r.WindowStart, To: r.WindowEnd,
		Task: p.Task, Metrics: p.Metrics, Prediction: p.Prediction, PositiveClass: p.PositiveClass, SliceBy: p.SliceBy})
	if err != nil {
		return err
	}
	if perf == nil {
		return nil
	}
	if perf.Labelled < p.MinLabels {
		perf.Metrics, perf.Slices = nil, nil
	}
	r.Performance = perf
	return nil
}

// reference returns the reference profile of a monitor at now, cached:
// dataset versions for good, windows until the next evaluation.
func (s *Service) reference(ctx context.Context, spec Spec, monitor string, now time.Time) (*profile.Profile, *ReferenceInfo, error) {
	ref := spec.Reference
	switch {
	case ref.Dataset != "":
		vr, err := dataset.ParseVersionRef(ref.Dataset)
		if err != nil {
			return nil, nil, err
		}
		return s.datasetReference(ctx, vr, &ReferenceInfo{Kind: "dataset"})
	case ref.Window != nil:
		var from, to time.Time
		if ref.Window.Start != nil {
			from, to = *ref.Window.Start, *ref.Window.End
		} else {
			to = now.Add(-ref.Window.Offset.D())
			from = to.Add(-ref.Window.Last.D())
		}
		key := "monitor=" + monitor + ";window=" + strconv.FormatInt(from.UnixMilli(), 10) + "-" + strconv.FormatInt(to.UnixMilli(), 10)
		if c, ok := s.cached(key); ok {
			return c.p, &c.info, nil
		}
		if s.o.Log != nil && to.After(now.Add(-2*time.Minute)) {
			s.o.Log.Flush(ctx, spec.Endpoint)
		}
		w, err := s.o.Index.Summarize(ctx, spec.Endpoint, from, to)
		if err != nil {
			return nil, nil, fmt.Errorf("summarize the reference window: %w", err)
		}
		if w.Rows == 0 || w.Profile == nil {
			return nil, nil, errdefs.InvalidState("The reference window %s to %s of endpoint %s has no logged rows", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), spec.Endpoint)
		}
		info := ReferenceInfo{Kind: "window", Start: from.UTC(), End: to.UTC(), Rows: w.Rows}
		exp := now.Add(spec.Schedule.Every.D())
		if ref.Window.Start != nil {
			exp = time.Time{}
		}
		s.cache(key, cachedRef{p: w.Profile, info: info, expires: exp})
		return w.Profile, &info, nil
	default:
		return s.lineageReference(ctx, spec.Endpoint)
	}
}

func (s *Service) cached(key string) (cachedRef, bool) {
	s.refMu.Lock()
	defer s.refMu.Unlock()
	c, ok := s.refs[key]
	if ok && !c.expires.IsZero() && s.now().After(c.expires) {
		delete(s.refs, key)
		return c, false
	}
	return c, ok
}

func (s *Service) cache(key string, c cachedRef) {
	s.refMu.Lock()
	defer s.refMu.Unlock()
	if len(s.refs) > 256 {
		for k := range s.refs {
			delete(s.refs, k)
			break
		}
	}
	s.refs[key] = c
}

func (s *Service) datasetReference(ctx context.Context, vr dataset.VersionRef, info *ReferenceInfo) (*profile.Profile, *ReferenceInfo, error) {
	if s.o.Datasets == nil {
		return nil, nil, errdefs.NotImplemented("This server keeps no datasets")
	}
	if vr.Version != 0 {
		if c, ok := s.cached("dataset=" + vr.String()); ok {
			i := c.info
			i.Kind, i.Model = info.Kind, info.Model
			return c.p, &i, nil
		}
	}
	v, err := s.o.Datasets.GetVersion(ctx, vr)
	if err != nil {
		return nil, nil, err
	}
	full := v.Ref()
	if c, ok := s.cached("dataset=" + full.String()); ok {
		i := c.info
		i.Kind, i.Model = info.Kind, info.Model
		return c.p, &i, nil
	}
	if len(v.Profile) == 0 || string(v.Profile) == "null" {
		return nil, nil, errdefs.InvalidState("Dataset version %s has no profile (profile it: kiln data profile %s)", full, full)
	}
	var p profile.Profile
	if err := json.Unmarshal(v.Profile, &p); err != nil {
		return nil, nil, fmt.Errorf("the profile of dataset version %s: %w", full, err)
	}
	info.Dataset, info.Rows = full.String(), p.Rows
	s.cache("dataset="+full.String(), cachedRef{p: &p, info: *info})
	return &p, info, nil
}

// lineageReference is the training dataset version of the model version
// that the endpoint's primary route (the live route of the greatest
// weight; the first on ties) serves. Of the dataset versions linked to
// the model version, an explicit link (POST .../lineage/models) wins over
// a link through the run that produced the model; among run links, one
// logged with the context "training" wins; then the newest version of
// the first dataset by name.
func (s *Service) lineageReference(ctx context.Context, endpoint string) (*profile.Profile, *ReferenceInfo, error) {
	if s.o.Endpoints == nil || s.o.Datasets == nil {
		return nil, nil, errdefs.NotImplemented("This server cannot read lineage: set spec.reference.dataset or window")
	}
	st, err := s.o.Endpoints.Get(ctx, endpoint)
	if err != nil {
		return nil, nil, err
	}
	var primary *deploy.LiveRoute
	for i := range st.Status.Routes {
		rt := &st.Status.Routes[i]
		if primary == nil || rt.Weight > primary.Weight {
			primary = rt
		}
	}
	if primary == nil || primary.Model == "" {
		return nil, nil, errdefs.InvalidState("Endpoint %s serves no model version yet", endpoint)
	}
	uses, err := s.o.Datasets.VersionsOfModel(ctx, primary.Model, primary.Version)
	if err != nil {
		return nil, nil, err
	}
	mv := primary.Model + "/" + strconv.FormatInt(primary.Version, 10)
	best, bestRank := dataset.VersionRef{}, -1
	for _, u := range uses {
		rank := 0
		switch {
		case u.Via == "link":
			rank = 2
		case u.RunID != "":
			if links, err := s.o.Datasets.VersionsOfRun(ctx, u.RunID); err == nil {
				for _, l := range links {
					if l.Version == u.Version && strings.EqualFold(l.Context, "training") {
						rank = 1
					}
				}
			}
		}
		if rank > bestRank || rank == bestRank && u.Version.Dataset == best.Dataset && u.Version.Version > best.Version {
			best, bestRank = u.Version, rank
		}
	}
	if bestRank < 0 {
		return nil, nil, errdefs.InvalidState("Model version %s (served by endpoint %s) has no training dataset in its lineage: link one, or set spec.reference.dataset", mv, endpoint)
	}
	return s.datasetReference(ctx, best, &ReferenceInfo{Kind: "lineage", Model: mv})
}

// Bounds returns the outlier bounds of an endpoint's features (no
// prefix), from the references of its monitors; nil when none. It is
// cheap: the bounds are computed when monitors are evaluated.
func (s *Service) Bounds(endpoint string) map[string]Bounds {
	return (*s.bounds.Load())[endpoint]
}

// refreshBounds recomputes every endpoint's outlier bounds from its
// monitors' references (best effort: a reference that cannot be read is
// left out). When several monitors watch an endpoint, the first by name
// that has bounds for a feature sets them.
func (s *Service) refreshBounds(ctx context.Context) {
	ms, err := s.store.List(ctx, "")
	if err != nil {
		return
	}
	out := map[string]map[string]Bounds{}
	for _, sm := range ms {
		spec := sm.Monitor.Spec.Effective()
		ref, _, err := s.reference(ctx, spec, sm.Monitor.Metadata.Name, s.now())
		if err != nil {
			continue
		}
		prefix := ""
		if spec.Reference.Window != nil {
			prefix = inputPrefix
		}
		q := 0.0
		if spec.Outliers != nil {
			q = spec.Outliers.Quantile
		}
		b := ProfileBounds(ref, prefix, q)
		if out[spec.Endpoint] == nil {
			out[spec.Endpoint] = map[string]Bounds{}
		}
		for f, r := range b {
			if _, ok := out[spec.Endpoint][f]; !ok {
				out[spec.Endpoint][f] = r
			}
		}
	}
	s.bounds.Store(&out)
}

// ProfileBounds returns the bounds of the numeric columns of p that start
// with prefix (named without it): min and max (q = 0) or the q and 1-q
// quantiles (q among profile.ReportedQuantiles: 0.01, 0.05, 0.25; other
// values use the nearest reported one below).
func ProfileBounds(p *profile.Profile, prefix string, q float64) map[string]Bounds {
	out := map[string]Bounds{}
	for _, c := range p.Columns {
		name, ok := strings.CutPrefix(c.Field.Name, prefix)
		if !ok || c.Min == nil || c.Max == nil {
			continue
		}
		b := Bounds{Lo: *c.Min, Hi: *c.Max}
		if q > 0 && len(c.Quantiles) > 0 {
			lo, hi := math.Inf(-1), math.Inf(1)
			for _, qq := range c.Quantiles {
				if qq.Q <= q+1e-12 && (math.IsInf(lo, -1) || qq.Q > 0) {
					lo = qq.Value
				}
				if qq.Q >= 1-q-1e-12 && math.IsInf(hi, 1) {
					hi = qq.Value
				}
			}
			if !math.IsInf(lo, 0) && !math.IsInf(hi, 0) {
				b = Bounds{Lo: lo, Hi: hi}
			}
		}
		out[name] = b
	}
	return out
}

// Samples are a result's values for the alert rules, each labelled with
// the monitor and endpoint: drift_share, dataset_drift,
// feature_drift_score{feature,method}, feature_drift{feature},
// prediction_drift_score{output,method}, prediction_drift{output},
// outlier_share (no feature label: all rows; with: per feature),
// <metric>{slice?, value?} for quality metrics, latency_p50_seconds,
// latency_p95_seconds, latency_p99_seconds, error_rate, requests, rps.
// A no_data result has only requests and rps (both 0); an error result
// only the traffic.
func Samples(r *Result) []alert.Sample {
	base := map[string]string{"monitor": r.Monitor, "endpoint": r.Endpoint}
	var out []alert.Sample
	add := func(metric string, v float64, kv ...string) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return
		}
		l := make(map[string]string, len(base)+len(kv)/2)
		for k, x := range base {
			l[k] = x
		}
		for i := 0; i+1 < len(kv); i += 2 {
			l[kv[i]] = kv[i+1]
		}
		out = append(out, alert.Sample{Metric: metric, Labels: l, Value: v})
	}
	add("requests", float64(r.Traffic.Requests))
	add("rps", r.Traffic.RPS)
	if r.Status == StatusNoData {
		return out
	}
	if r.Traffic.Requests > 0 {
		add("error_rate", r.Traffic.ErrorRate)
		add("latency_p50_seconds", r.Traffic.LatencyP50)
		add("latency_p95_seconds", r.Traffic.LatencyP95)
		add("latency_p99_seconds", r.Traffic.LatencyP99)
	}
	if d := r.Drift; d != nil {
		add("drift_share", d.Share)
		add("dataset_drift", b2f(d.DatasetDrift))
		for _, f := range d.Features {
			if f.Error != "" {
				continue
			}
			add("feature_drift_score", f.Score, "feature", f.Name, "method", string(f.Method))
			add("feature_drift", b2f(f.Drift), "feature", f.Name)
		}
	}
	if d := r.PredictionDrift; d != nil {
		for _, f := range d.Features {
			if f.Error != "" {
				continue
			}
			add("prediction_drift_score", f.Score, "output", f.Name, "method", string(f.Method))
			add("prediction_drift", b2f(f.Drift), "output", f.Name)
		}
	}
	if o := r.Outliers; o != nil {
		add("outlier_share", o.Share)
		for _, f := range sortedKeys(o.Features) {
			add("outlier_share", o.Features[f].Share, "feature", f)
		}
	}
	if p := r.Performance; p != nil {
		for _, k := range sortedKeys(p.Metrics) {
			add(k, p.Metrics[k])
		}
		for _, col := range sortedKeys(p.Slices) {
			for _, val := range sortedKeys(p.Slices[col]) {
				for _, k := range sortedKeys(p.Slices[col][val]) {
					add(k, p.Slices[col][val][k], "slice", col, "value", val)
				}
			}
		}
	}
	return out
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
