// Package predlog is the prediction log: every inference request an
// endpoint answers (inputs, outputs, model version, route, latency, status,
// request id, subject key) is appended to a local per-endpoint segment file
// before the response goes out, fsynced on a short interval, rolled by size
// or age, converted to Parquet (one row per predicted row) and shipped to
// the artifact store, indexed with a mergeable Summary in the metadata
// database, and deleted after the retention period.
//
// Durability: Observe returns after write(2) of the record, so a crash of
// the process (even SIGKILL) loses nothing that was answered; the page
// cache survives it. A crash of the machine may lose the last
// FsyncInterval of records. On Open, segments left behind are recovered up
// to their first torn record and shipped.
package predlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/deploy"
	"github.com/kiln-ml/kiln/model"
	"github.com/kiln-ml/kiln/pii"
	"github.com/kiln-ml/kiln/serving"
	"github.com/kiln-ml/kiln/store"
	"github.com/kiln-ml/kiln/tensor"
)

// Defaults of Options.
const (
	DefaultFsyncInterval   = 100 * time.Millisecond
	DefaultSegmentMaxBytes = 64 << 20
	DefaultSegmentMaxAge   = time.Minute
	DefaultRetention       = 30 * 24 * time.Hour
)

// Settings says how an endpoint logs (a *deploy.Manager). An endpoint it
// does not know (standalone serving) logs with the defaults: everything,
// every request.
type Settings interface {
	Logging(endpoint string) (deploy.Logging, bool)
}

// Range is the reference range of a numeric feature: a value below Lo or
// above Hi is an outlier.
type Range struct{ Lo, Hi float64 }

// BoundsSource gives the reference ranges of an endpoint's input features
// (keys: feature names without "inputs."); nil or an empty map flags
// nothing. It is asked when a segment is shipped.
type BoundsSource interface {
	Bounds(endpoint string) map[string]Range
}

// Options configure a Log.
type Options struct {
	// Dir holds the local segments (created if missing). Required.
	Dir string
	// Bucket receives the Parquet segments, under
	// predictions/<endpoint>/<yyyy>/<mm>/<dd>/<segment>.parquet. Required.
	Bucket *blob.Bucket
	// DB holds the segment index (table prediction_segments). Required.
	DB *store.DB
	// Replica names this process in the index (default: the host name).
	Replica string
	// FsyncInterval is how often written records are fsynced
	// (DefaultFsyncInterval).
	FsyncInterval time.Duration
	// SegmentMaxBytes and SegmentMaxAge roll a segment
	// (DefaultSegmentMaxBytes, DefaultSegmentMaxAge).
	SegmentMaxBytes int64
	SegmentMaxAge   time.Duration
	// Retention deletes shipped segments whose last record is older
	// (DefaultRetention when 0; negative keeps them forever). An
	// endpoint's spec.logging.retention, when positive, replaces it for
	// that endpoint (see RetentionOf).
	Retention time.Duration
	// Settings gives each endpoint's logging settings (may be nil).
	Settings Settings
	// Bounds flags outliers (may be nil).
	Bounds     BoundsSource
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

func (o *Options) defaults() error {
	if o.Dir == "" || o.Bucket == nil || o.DB == nil {
		return errors.New("predlog: Options.Dir, Bucket and DB are required")
	}
	if o.Replica == "" {
		o.Replica, _ = os.Hostname()
		if o.Replica == "" {
			o.Replica = "kiln"
		}
	}
	if o.FsyncInterval <= 0 {
		o.FsyncInterval = DefaultFsyncInterval
	}
	if o.SegmentMaxBytes <= 0 {
		o.SegmentMaxBytes = DefaultSegmentMaxBytes
	}
	if o.SegmentMaxAge <= 0 {
		o.SegmentMaxAge = DefaultSegmentMaxAge
	}
	if o.Retention == 0 {
		o.Retention = DefaultRetention
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return nil
}

// Log is the prediction log of one process. It is a serving.Observer.
type Log struct {
	opts    Options
	log     *slog.Logger
	index   *Index
	metrics *metrics

	mu     sync.RWMutex
	eps    map[string]*endpointLog
	closed bool

	sealedMu sync.Mutex
	sealed   []*os.File // rolled segments not yet synced and closed

	shipMu   sync.Mutex // one shipping pass at a time
	wake     chan struct{}
	stop     chan struct{}
	done     sync.WaitGroup
	colNames sync.Map // *model.Signature → []string (or nil)
	scanners sync.Map // endpoint → *maskSetting

	unshipped atomic.Int64
}

// endpointLog is an endpoint's active segment.
type endpointLog struct {
	name string

	mu       sync.Mutex
	f        *os.File
	path     string
	size     int64
	opened   time.Time
	records  int
	dirty    bool // written since the last fsync
	lastErr  time.Time
	records_ prometheus.Counter
}

// Open starts a Log: it recovers the segments left in opts.Dir by an
// earlier process (up to their first torn record), ships them, and starts
// the fsync, roll, ship and retention loops.
func Open(ctx context.Context, opts Options) (*Log, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("predlog: %w", err)
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	l := &Log{
		opts: opts, log: opts.Logger, index: NewIndex(opts.DB), metrics: m,
		eps: map[string]*endpointLog{}, wake: make(chan struct{}, 1), stop: make(chan struct{}),
	}
	m.unshipped = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "kiln_prediction_log_unshipped_bytes",
		Help: "Bytes of local prediction-log segments not yet shipped to the artifact store."},
		func() float64 { return float64(l.unshipped.Load()) })
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(m.unshipped); err != nil {
			return nil, err
		}
	}
	// Everything in Dir is a segment of an earlier process: ship it now
	// (errors are retried by the ship loop).
	if n, err := l.localBytes(); err == nil {
		l.unshipped.Store(n)
	}
	if err := l.ship(ctx, ""); err != nil {
		l.log.Warn("prediction log: recovered segments not shipped yet (will retry)", "err", err)
	}
	l.done.Add(2)
	go l.syncLoop()
	go l.shipLoop()
	// Endpoints may have their own retention (spec.logging.retention),
	// so the loop runs even when the default keeps logs forever.
	l.done.Add(1)
	go l.retentionLoop()
	return l, nil
}

// Index returns the Log's segment index.
func (l *Log) Index() *Index { return l.index }

var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// Observe logs c per its endpoint's settings: the record is written to the
// endpoint's active segment before Observe returns. It never fails the
// request: a write error is counted and logged.
func (l *Log) Observe(ctx context.Context, c *serving.Call) {
	if c == nil || c.Model == nil {
		return
	}
	name := c.Model.Name
	set := defaultLogging
	if l.opts.Settings != nil {
		if s, ok := l.opts.Settings.Logging(name); ok {
			set = s.Effective()
		}
	}
	if set.Mode == deploy.LogNone {
		return
	}
	if set.SampleRate < 1 && rand.Float64() >= set.SampleRate {
		l.metrics.dropped.WithLabelValues(name, "sampled").Inc()
		return
	}
	r := record{
		Time: c.Start, Latency: c.Duration, Status: c.Status, ID: c.ID,
		Route: c.Model.Route, Model: c.Model.Source, ModelVersion: c.Model.Version, Protocol: c.Protocol,
		Subject: serving.RequestHeader(ctx, set.SubjectHeader),
	}
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	if c.Err != nil {
		r.Error = c.Err.Error()
	}
	if set.Mode == deploy.LogAll || set.Mode == deploy.LogRequest {
		r.Inputs = c.Inputs
		r.InputCols = l.columnNames(c.Model.Signature, c.Inputs)
		if len(c.Keys) > 0 { // the entity keys of an endpoint with features, after the model's inputs
			r.Inputs = append(slices.Clip(c.Inputs), c.Keys...)
		}
	}
	if set.Mode == deploy.LogAll || set.Mode == deploy.LogResponse {
		r.Outputs = c.Outputs
	}
	if sc := l.scanner(name, set.PII); sc != nil {
		r.Inputs, r.Outputs, r.Error = maskTensors(sc, r.Inputs), maskTensors(sc, r.Outputs), sc.Mask(r.Error)
	}
	bp := framePool.Get().(*[]byte)
	buf := appendFrame((*bp)[:0], &r)
	l.write(name, buf)
	if cap(buf) <= 1<<20 {
		*bp = buf[:0]
		framePool.Put(bp)
	}
}

// scanner returns the PII scanner of an endpoint's settings (nil when it
// masks nothing). It is compiled once per endpoint and setting: the
// settings of an unchanged endpoint carry the same *LogPII, so the hot
// path is one map load and a pointer compare.
func (l *Log) scanner(endpoint string, p *deploy.LogPII) *pii.Scanner {
	if p == nil || !p.Mask {
		return nil
	}
	if v, ok := l.scanners.Load(endpoint); ok {
		if m := v.(*maskSetting); m.p == p {
			return m.sc
		}
	}
	sc, err := p.Scanner()
	if err != nil { // refused when the endpoint was applied; mask everything
		l.opts.Logger.Warn("prediction log: invalid PII settings; masking every built-in kind", "endpoint", endpoint, "err", err)
		sc = pii.Default
	}
	l.scanners.Store(endpoint, &maskSetting{p: p, sc: sc})
	return sc
}

// maskSetting is an endpoint's compiled PII setting.
type maskSetting struct {
	p  *deploy.LogPII
	sc *pii.Scanner
}

// maskTensors returns ts with the string elements masked: a tensor with
// nothing to mask is kept, one with something is copied (the caller's
// tensors are the response's).
func maskTensors(sc *pii.Scanner, ts []*tensor.Tensor) []*tensor.Tensor {
	var out []*tensor.Tensor
	for i, t := range ts {
		s, ok := t.Data.([]string)
		if !ok || t.DType != tensor.String {
			continue
		}
		var masked []string
		for j, v := range s {
			if m := sc.Mask(v); m != v {
				if masked == nil {
					masked = slices.Clone(s)
				}
				masked[j] = m
			}
		}
		if masked == nil {
			continue
		}
		if out == nil {
			out = slices.Clone(ts)
		}
		c := *t
		c.Data = masked
		out[i] = &c
	}
	if out == nil {
		return ts
	}
	return out
}

// defaultLogging is what an endpoint the Settings do not know logs.
var defaultLogging = (*deploy.Logging)(nil).Effective()

// columnNames returns the MLflow column signature's names, as the
// InputCols of a record, when the request has one input of shape
// [N, len(columns)], else nil. The result is cached per signature.
func (l *Log) columnNames(sig *model.Signature, inputs []*tensor.Tensor) [][]string {
	if sig == nil || sig.Inputs == nil || sig.Inputs.IsTensor() || len(inputs) != 1 {
		return nil
	}
	t := inputs[0]
	if len(t.Shape) != 2 || int(t.Shape[1]) != len(sig.Inputs.Columns) || t.Shape[1] < 2 {
		return nil
	}
	if v, ok := l.colNames.Load(sig); ok {
		return v.([][]string)
	}
	var cols [][]string
	names := make([]string, len(sig.Inputs.Columns))
	for i, c := range sig.Inputs.Columns {
		names[i] = c.Name
		if c.Name == "" {
			names = nil
			break
		}
	}
	if names != nil {
		cols = [][]string{names}
	}
	l.colNames.Store(sig, cols)
	return cols
}

func (l *Log) endpoint(name string) *endpointLog {
	l.mu.RLock()
	ep := l.eps[name]
	l.mu.RUnlock()
	if ep != nil {
		return ep
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if ep = l.eps[name]; ep == nil {
		ep = &endpointLog{name: name, records_: l.metrics.records.WithLabelValues(name)}
		l.eps[name] = ep
	}
	return ep
}

// write appends one frame to the endpoint's active segment.
func (l *Log) write(name string, frame []byte) {
	ep := l.endpoint(name)
	ep.mu.Lock()
	err := l.writeLocked(ep, frame)
	if err != nil {
		// A partial write leaves a torn record: seal the segment so that
		// it is the segment's tail, and the next record starts afresh.
		l.rollLocked(ep)
		now := time.Now()
		logIt := now.Sub(ep.lastErr) > 10*time.Second
		if logIt {
			ep.lastErr = now
		}
		ep.mu.Unlock()
		l.metrics.dropped.WithLabelValues(name, "write_error").Inc()
		if logIt {
			l.log.Error("prediction log: cannot write a record (dropped; further errors logged every 10s)", "endpoint", name, "err", err)
		}
		return
	}
	roll := ep.size >= l.opts.SegmentMaxBytes
	if roll {
		l.rollLocked(ep)
	}
	ep.mu.Unlock()
	ep.records_.Inc()
	l.metrics.bytes.Add(float64(len(frame)))
	l.unshipped.Add(int64(len(frame)))
	if roll {
		l.kick()
	}
}

func (l *Log) writeLocked(ep *endpointLog, frame []byte) error {
	if ep.f == nil {
		l.mu.RLock()
		closed := l.closed
		l.mu.RUnlock()
		if closed {
			return errors.New("prediction log is closed")
		}
		id := store.NewID()
		path := filepath.Join(l.opts.Dir, id+segmentExt)
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		hdr := appendSegmentHeader(nil, ep.name)
		if _, err := f.Write(hdr); err != nil {
			f.Close()
			os.Remove(path)
			return err
		}
		ep.f, ep.path, ep.size, ep.opened, ep.records = f, path, int64(len(hdr)), time.Now(), 0
		l.unshipped.Add(int64(len(hdr)))
	}
	n, err := ep.f.Write(frame)
	ep.size += int64(n)
	ep.dirty = true
	if err != nil {
		return err
	}
	ep.records++
	return nil
}

// rollLocked seals the active segment: the ship loop syncs, closes and
// ships it.
func (l *Log) rollLocked(ep *endpointLog) {
	if ep.f == nil {
		return
	}
	l.sealedMu.Lock()
	l.sealed = append(l.sealed, ep.f)
	l.sealedMu.Unlock()
	ep.f, ep.path, ep.size, ep.records, ep.dirty = nil, "", 0, 0, false
}

const segmentExt = ".seg"

func (l *Log) kick() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// syncLoop fsyncs the active segments every FsyncInterval and rolls the
// ones older than SegmentMaxAge.
func (l *Log) syncLoop() {
	defer l.done.Done()
	t := time.NewTicker(l.opts.FsyncInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		l.syncAll(false)
	}
}

// syncAll fsyncs every dirty segment; with rollAll, or for segments past
// their age, it seals them.
func (l *Log) syncAll(rollAll bool) {
	l.mu.RLock()
	eps := make([]*endpointLog, 0, len(l.eps))
	for _, ep := range l.eps {
		eps = append(eps, ep)
	}
	l.mu.RUnlock()
	rolled := false
	for _, ep := range eps {
		ep.mu.Lock()
		f := ep.f
		dirty := ep.dirty
		ep.dirty = false
		if f != nil && (rollAll || time.Since(ep.opened) >= l.opts.SegmentMaxAge) {
			l.rollLocked(ep)
			rolled = true
			f = nil // the ship loop syncs it
		}
		ep.mu.Unlock()
		if f != nil && dirty {
			start := time.Now()
			if err := f.Sync(); err != nil && !errors.Is(err, os.ErrClosed) {
				l.log.Warn("prediction log: fsync failed", "endpoint", ep.name, "err", err)
			}
			l.metrics.fsync.Observe(time.Since(start).Seconds())
		}
	}
	if rolled {
		l.kick()
	}
}

// Flush rolls the active segment of endpoint ("" = every endpoint) and
// ships every local segment of it: when it returns nil, every record
// observed before the call is in the bucket and the index.
func (l *Log) Flush(ctx context.Context, endpoint string) error {
	l.mu.RLock()
	for name, ep := range l.eps {
		if endpoint == "" || name == endpoint {
			ep.mu.Lock()
			l.rollLocked(ep)
			ep.mu.Unlock()
		}
	}
	l.mu.RUnlock()
	return l.ship(ctx, endpoint)
}

// Close stops the loops, seals the active segments and ships them (errors
// leave them on disk for the next Open).
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	l.done.Wait()
	l.syncAll(true)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := l.ship(ctx, "")
	if err != nil {
		l.log.Warn("prediction log: segments left on disk, shipped on the next start", "dir", l.opts.Dir, "err", err)
	}
	if l.opts.Registerer != nil {
		l.metrics.unregister(l.opts.Registerer)
	}
	return err
}

// localBytes sums the sizes of the local segments.
func (l *Log) localBytes() (int64, error) {
	ents, err := os.ReadDir(l.opts.Dir)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), segmentExt) {
			if fi, err := e.Info(); err == nil {
				n += fi.Size()
			}
		}
	}
	return n, nil
}
