package predlog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/errdefs"
)

type metrics struct {
	records   *prometheus.CounterVec
	dropped   *prometheus.CounterVec
	bytes     prometheus.Counter
	shipped   prometheus.Counter
	shipErrs  prometheus.Counter
	fsync     prometheus.Histogram
	unshipped prometheus.GaugeFunc
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kiln_prediction_log_records_total",
			Help: "Requests written to the prediction log."}, []string{"endpoint"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "kiln_prediction_log_dropped_total",
			Help: "Requests not written to the prediction log, by reason (sampled, write_error)."}, []string{"endpoint", "reason"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "kiln_prediction_log_bytes_total",
			Help: "Bytes of records written to local prediction-log segments."}),
		shipped: prometheus.NewCounter(prometheus.CounterOpts{Name: "kiln_prediction_log_segments_shipped_total",
			Help: "Prediction-log segments shipped to the artifact store as Parquet."}),
		shipErrs: prometheus.NewCounter(prometheus.CounterOpts{Name: "kiln_prediction_log_ship_errors_total",
			Help: "Failed attempts to ship a prediction-log segment (retried)."}),
		fsync: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "kiln_prediction_log_fsync_duration_seconds",
			Help: "Time to fsync an active prediction-log segment.", Buckets: prometheus.ExponentialBuckets(0.0001, 4, 8)}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.records, m.dropped, m.bytes, m.shipped, m.shipErrs, m.fsync} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("predlog metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (m *metrics) unregister(reg prometheus.Registerer) {
	for _, c := range []prometheus.Collector{m.records, m.dropped, m.bytes, m.shipped, m.shipErrs, m.fsync, m.unshipped} {
		reg.Unregister(c)
	}
}

// shipLoop ships rolled segments when woken, and retries failed ones
// every few seconds.
func (l *Log) shipLoop() {
	defer l.done.Done()
	retry := time.NewTicker(5 * time.Second)
	defer retry.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-l.stop
		cancel()
	}()
	for {
		select {
		case <-l.stop:
			return
		case <-l.wake:
		case <-retry.C:
		}
		if err := l.ship(ctx, ""); err != nil && ctx.Err() == nil {
			l.log.Warn("prediction log: shipping failed (will retry)", "err", err)
		}
	}
}

// closeSealed syncs and closes the rolled segments' files.
func (l *Log) closeSealed() {
	l.sealedMu.Lock()
	files := l.sealed
	l.sealed = nil
	l.sealedMu.Unlock()
	for _, f := range files {
		start := time.Now()
		if err := f.Sync(); err != nil {
			l.log.Warn("prediction log: fsync of a rolled segment failed", "file", f.Name(), "err", err)
		}
		l.metrics.fsync.Observe(time.Since(start).Seconds())
		f.Close()
	}
}

// activePaths returns the files of the active segments.
func (l *Log) activePaths() map[string]bool {
	out := map[string]bool{}
	l.mu.RLock()
	defer l.mu.RUnlock()
	for _, ep := range l.eps {
		ep.mu.Lock()
		if ep.path != "" {
			out[ep.path] = true
		}
		ep.mu.Unlock()
	}
	return out
}

// ship ships every sealed local segment of endpoint ("" = all).
func (l *Log) ship(ctx context.Context, endpoint string) error {
	l.shipMu.Lock()
	defer l.shipMu.Unlock()
	l.closeSealed()
	ents, err := os.ReadDir(l.opts.Dir)
	if err != nil {
		return fmt.Errorf("prediction log: %w", err)
	}
	// The active segments after the listing: a segment created since is
	// not listed, and one listed is either still active or sealed.
	active := l.activePaths()
	var errs []error
	for _, e := range ents {
		name := e.Name()
		path := filepath.Join(l.opts.Dir, name)
		if strings.HasSuffix(name, ".parquet.tmp") {
			os.Remove(path) // left by a crash during a conversion
			continue
		}
		if !strings.HasSuffix(name, segmentExt) || active[path] {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := l.shipSegment(ctx, path, endpoint); err != nil {
			l.metrics.shipErrs.Inc()
			errs = append(errs, fmt.Errorf("segment %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// readSegment decodes a segment file up to its first torn or corrupt
// record, and truncates the file there.
func (l *Log) readSegment(path string) (string, []record, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", nil, err
	}
	endpoint, off, err := parseSegmentHeader(data)
	if err != nil {
		return "", nil, err
	}
	// Count the frames first, to allocate the records once.
	count := 0
	for o := off; o+frameHeader <= len(data); count++ {
		o += frameHeader + int(binary.LittleEndian.Uint32(data[o:]))
	}
	recs := make([]record, 0, count)
	sl := &slab{}
	for off < len(data) {
		var r record
		var prev *record
		if len(recs) > 0 {
			prev = &recs[len(recs)-1]
		}
		n, err := decodeFrameLike(data[off:], &r, prev, sl)
		if err != nil {
			l.log.Warn("prediction log: segment has a torn or corrupt tail; records after it are dropped",
				"file", path, "offset", off, "dropped_bytes", len(data)-off, "err", err)
			if terr := os.Truncate(path, int64(off)); terr != nil {
				l.log.Warn("prediction log: cannot truncate segment", "file", path, "err", terr)
			}
			break
		}
		recs = append(recs, r)
		off += n
	}
	return endpoint, recs, nil
}

// ObjectKey is where a segment is stored in the bucket.
func ObjectKey(endpoint, segmentID string, start time.Time) string {
	return fmt.Sprintf("predictions/%s/%s/%s.parquet", url.PathEscape(endpoint), start.UTC().Format("2006/01/02"), segmentID)
}

// shipSegment converts, uploads and indexes one local segment, then
// deletes it. It skips segments of other endpoints than only ("" = any).
func (l *Log) shipSegment(ctx context.Context, path, only string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	endpoint, recs, err := l.readSegment(path)
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			// Not even a header (a crash right after creating it).
			l.log.Warn("prediction log: removing a segment without a valid header", "file", path, "err", err)
			l.unshipped.Add(-fi.Size())
			return os.Remove(path)
		}
		return err
	}
	if only != "" && endpoint != only {
		return nil
	}
	done := func() error {
		if err := os.Remove(path); err != nil {
			return err
		}
		l.unshipped.Add(-fi.Size())
		return nil
	}
	if len(recs) == 0 {
		return done()
	}
	id := strings.TrimSuffix(filepath.Base(path), segmentExt)
	if _, ok, err := l.index.get(ctx, id); err != nil {
		return err
	} else if ok {
		return done() // shipped before a crash kept the file
	}
	var bounds map[string]Range
	if l.opts.Bounds != nil {
		bounds = l.opts.Bounds.Bounds(endpoint)
	}
	conv := newConverter(endpoint, recs, bounds)
	sum := conv.newSummary()
	tmp := filepath.Join(l.opts.Dir, id+".parquet.tmp")
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	defer f.Close()
	w := newSegmentWriter(f, conv.schema)
	if err := conv.batches(func(b *table.Batch) error {
		if err := w.Write(b); err != nil {
			return err
		}
		return sum.addBatch(b)
	}); err != nil {
		return fmt.Errorf("convert to Parquet: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("convert to Parquet: %w", err)
	}
	size, err := f.Seek(0, 1)
	if err != nil {
		return err
	}
	if _, err := f.Seek(0, 0); err != nil {
		return err
	}
	if sum.Profile != nil {
		sum.Profile.Refresh()
	}
	seg := Segment{
		ID: id, Endpoint: endpoint, Replica: l.opts.Replica, Start: sum.Start, End: sum.End,
		Requests: sum.Requests, Rows: sum.Rows, SizeBytes: size, Created: time.Now().UTC(),
	}
	seg.ObjectKey = ObjectKey(endpoint, id, seg.Start)
	if _, err := l.opts.Bucket.Put(ctx, seg.ObjectKey, f, "application/vnd.apache.parquet"); err != nil {
		return err
	}
	if err := l.index.put(ctx, seg, sum); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	l.metrics.shipped.Inc()
	l.log.Debug("prediction log: segment shipped", "endpoint", endpoint, "segment", id, "requests", seg.Requests, "rows", seg.Rows, "bytes", size)
	return done()
}

// retentionLoop deletes expired segments (object, then row), each
// endpoint's after its own retention (see RetentionOf), every tenth of
// the shortest retention, between 1s and 1h.
func (l *Log) retentionLoop() {
	defer l.done.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-l.stop
		cancel()
	}()
	for {
		shortest, err := l.expireEach(ctx, time.Now())
		if err != nil && ctx.Err() == nil {
			l.log.Warn("prediction log: retention failed (will retry)", "err", err)
		}
		every := time.Hour
		if shortest > 0 {
			every = min(max(shortest/10, time.Second), time.Hour)
		}
		t := time.NewTimer(every)
		select {
		case <-l.stop:
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// RetentionOf returns how long the endpoint's shipped segments are kept:
// its spec.logging.retention when positive, else Options.Retention
// (negative: forever).
func (l *Log) RetentionOf(endpoint string) time.Duration {
	if l.opts.Settings != nil {
		if s, ok := l.opts.Settings.Logging(endpoint); ok && s.Retention > 0 {
			return s.Retention.D()
		}
	}
	return l.opts.Retention
}

// expireEach expires the segments of every indexed endpoint per its
// retention at now, and returns the shortest retention that applies
// (0 when none does).
func (l *Log) expireEach(ctx context.Context, now time.Time) (time.Duration, error) {
	eps, err := l.index.Endpoints(ctx)
	if err != nil {
		return 0, err
	}
	var shortest time.Duration
	var errs []error
	for _, ep := range eps {
		r := l.RetentionOf(ep)
		if r <= 0 {
			continue
		}
		if shortest == 0 || r < shortest {
			shortest = r
		}
		n, err := l.Expire(ctx, ep, now.Add(-r))
		if err != nil {
			errs = append(errs, fmt.Errorf("endpoint %s: %w", ep, err))
		}
		if n > 0 {
			l.log.Debug("prediction log: expired segments", "endpoint", ep, "segments", n, "retention", r)
		}
	}
	return shortest, errors.Join(errs...)
}

// Expire deletes every segment (object and index row) of endpoint ("" =
// every endpoint) whose last request is before t, and returns how many
// it deleted. The retention loop calls it per endpoint with now minus the
// endpoint's retention (RetentionOf).
func (l *Log) Expire(ctx context.Context, endpoint string, t time.Time) (int, error) {
	n := 0
	for {
		segs, err := l.index.expired(ctx, endpoint, t, 500)
		if err != nil || len(segs) == 0 {
			return n, err
		}
		for _, s := range segs {
			if err := l.opts.Bucket.Delete(ctx, s.ObjectKey); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
				return n, err
			}
			// Only the row that names the deleted object: an erasure may
			// have rewritten the segment meanwhile (the next query lists
			// it again, with its new object).
			ok, err := l.index.removeIf(ctx, s.ID, s.ObjectKey)
			if err != nil {
				return n, err
			}
			if ok {
				n++
			}
		}
	}
}
