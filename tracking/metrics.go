package tracking

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/filter"
	"github.com/kiln-ml/kiln/store"
)

// Metric history is kept packed, in two places. A log-batch appends its
// values as one packed row to metrics_recent (one row per batch: many keys,
// usually one step), which keeps the acknowledged write small. Every second
// the server's compaction regroups a run's recent batches by key into
// metric_chunks (one row per key: many steps), so a history read is a few
// rows and a compaction writes one row per run and key, not one per value.
// Readers merge both. (Row-per-value storage, as MLflow's, cost 6 µs of
// SQLite work per value on top of the batch write.)

// packMetrics encodes a batch of metric values.
func packMetrics(ms []Metric) []byte {
	b := make([]byte, 0, len(ms)*32)
	b = binary.AppendUvarint(b, uint64(len(ms)))
	str := func(s string) {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	for _, m := range ms {
		str(m.Key)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(m.Value))
		b = binary.AppendVarint(b, m.Timestamp)
		b = binary.AppendVarint(b, m.Step)
		str(m.ModelID)
		str(m.DatasetName)
		str(m.DatasetDigest)
	}
	return b
}

var errBadPack = errors.New("tracking: corrupt packed metrics")

// unpackMetrics decodes a batch written by packMetrics.
func unpackMetrics(b []byte, runID string) ([]Metric, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, errBadPack
	}
	b = b[k:]
	str := func() (string, bool) {
		l, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < l {
			return "", false
		}
		s := string(b[k : k+int(l)])
		b = b[k+int(l):]
		return s, true
	}
	out := make([]Metric, 0, n)
	for i := uint64(0); i < n; i++ {
		var m Metric
		var ok bool
		if m.Key, ok = str(); !ok || len(b) < 8 {
			return nil, errBadPack
		}
		m.Value = math.Float64frombits(binary.LittleEndian.Uint64(b))
		b = b[8:]
		var k int
		if m.Timestamp, k = binary.Varint(b); k <= 0 {
			return nil, errBadPack
		}
		b = b[k:]
		if m.Step, k = binary.Varint(b); k <= 0 {
			return nil, errBadPack
		}
		b = b[k:]
		if m.ModelID, ok = str(); !ok {
			return nil, errBadPack
		}
		if m.DatasetName, ok = str(); !ok {
			return nil, errBadPack
		}
		if m.DatasetDigest, ok = str(); !ok {
			return nil, errBadPack
		}
		m.RunID = runID
		out = append(out, m)
	}
	return out, nil
}

// recentMetrics returns the not yet compacted values of a run's metric key.
func (s *Store) recentMetrics(ctx context.Context, runID, key string) ([]Metric, error) {
	rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(`SELECT payload FROM metrics_recent WHERE run_uuid = ? ORDER BY id`), runID)
	if err != nil {
		return nil, fmt.Errorf("read recent metrics: %w", err)
	}
	defer rows.Close()
	var out []Metric
	for rows.Next() {
		var payload []byte
		if err := rows.Scan(&payload); err != nil {
			return nil, err
		}
		ms, err := unpackMetrics(payload, runID)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			if m.Key == key {
				out = append(out, m)
			}
		}
	}
	return out, rows.Err()
}

// history returns every logged value of a run's metric key, ordered by
// step, timestamp and value.
func (s *Store) history(ctx context.Context, runID, key string) ([]Metric, error) {
	// The recent values first: a compaction between the two reads then
	// shows its values twice (dedupe drops the copy), never not at all.
	recent, err := s.recentMetrics(ctx, runID, key)
	if err != nil {
		return nil, err
	}
	rows, err := s.db.R.QueryContext(ctx, s.db.Rebind(`SELECT payload FROM metric_chunks WHERE run_uuid = ? AND key = ? ORDER BY id`), runID, key)
	if err != nil {
		return nil, fmt.Errorf("read metric history: %w", err)
	}
	var ms []Metric
	for rows.Next() {
		var payload []byte
		if err := rows.Scan(&payload); err != nil {
			rows.Close()
			return nil, err
		}
		chunk, err := unpackMetrics(payload, runID)
		if err != nil {
			rows.Close()
			return nil, err
		}
		ms = append(ms, chunk...)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	ms = append(ms, recent...)
	sort.SliceStable(ms, func(i, j int) bool {
		a, b := ms[i], ms[j]
		if a.Step != b.Step {
			return a.Step < b.Step
		}
		if a.Timestamp != b.Timestamp {
			return a.Timestamp < b.Timestamp
		}
		return a.Value < b.Value
	})
	return dedupe(ms), nil
}

// dedupe drops a point equal in step, timestamp and value to the one
// before it (sorted input): MLflow keeps one point per (key, timestamp,
// step, value) — its primary key — so logging the same point again (as
// log_model does with model_id added) does not add to the history. The
// first logged is kept.
func dedupe(ms []Metric) []Metric {
	if len(ms) < 2 {
		return ms
	}
	same := func(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) }
	out := ms[:1]
	for _, m := range ms[1:] {
		p := out[len(out)-1]
		if m.Step == p.Step && m.Timestamp == p.Timestamp && same(m.Value, p.Value) {
			continue
		}
		out = append(out, m)
	}
	return out
}

// compactChunk bounds how many packed batches one compaction transaction
// moves, so that it never holds the writer for long.
const compactChunk = 500

// CompactMetrics moves packed metric batches into the history table and
// returns how many values it moved. The server runs it every second; it is
// safe to run from several servers on one PostgreSQL (rows are claimed with
// FOR UPDATE SKIP LOCKED).
//
// Each transaction takes the oldest batches of all runs together, in
// arrival order: their rows are interleaved (concurrent runs log at the
// same time), so deleting them run by run would rewrite every page of
// metrics_recent once per run. Regrouped by run and key, the batches
// become one chunk per run and key, so each page of the key-major history
// index is written once per compaction too.
func (s *Store) CompactMetrics(ctx context.Context) (int64, error) {
	var total int64
	for {
		n, more, err := s.compactOnce(ctx)
		total += n
		if err != nil || !more {
			return total, err
		}
	}
}

func (s *Store) compactOnce(ctx context.Context) (moved int64, more bool, err error) {
	ins, err := s.db.Prepare(ctx, s.db.Rebind(`INSERT INTO metric_chunks (run_uuid, key, min_step, max_step, n, payload) VALUES (?, ?, ?, ?, ?, ?)`))
	if err != nil {
		return 0, false, err
	}
	lock := ""
	if s.db.Dialect == store.Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	type runKey struct{ run, key string }
	err = s.db.Tx(ctx, func(tx store.Tx) error {
		rows, err := tx.QueryContext(ctx, s.db.Rebind(`SELECT id, run_uuid, payload FROM metrics_recent ORDER BY id LIMIT ?`+lock), compactChunk+1)
		if err != nil {
			return err
		}
		var ids []any
		byKey := map[runKey][]Metric{}
		var keys []runKey
		for rows.Next() {
			var id int64
			var run string
			var payload []byte
			if err := rows.Scan(&id, &run, &payload); err != nil {
				rows.Close()
				return err
			}
			if len(ids) == compactChunk {
				more = true
				break
			}
			ms, err := unpackMetrics(payload, run)
			if err != nil {
				rows.Close()
				return fmt.Errorf("metrics_recent row %d: %w", id, err)
			}
			ids = append(ids, id)
			for _, m := range ms {
				k := runKey{run, m.Key}
				if _, ok := byKey[k]; !ok {
					keys = append(keys, k)
				}
				byKey[k] = append(byKey[k], m)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		// Runs in order, then keys: neighbouring inserts share index pages.
		sort.SliceStable(keys, func(i, j int) bool { return keys[i].run < keys[j].run })
		for _, k := range keys {
			ms := byKey[k]
			sort.SliceStable(ms, func(i, j int) bool { return ms[i].Step < ms[j].Step })
			if _, err := ins.Exec(ctx, tx, k.run, k.key, ms[0].Step, ms[len(ms)-1].Step, len(ms), packMetrics(ms)); err != nil {
				return err
			}
			moved += int64(len(ms))
		}
		for start := 0; start < len(ids); start += 500 {
			end := min(start+500, len(ids))
			if _, err := tx.ExecContext(ctx, s.db.Rebind(`DELETE FROM metrics_recent WHERE id IN (`+placeholders(end-start)+`)`), ids[start:end]...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, false, fmt.Errorf("compact metrics: %w", err)
	}
	return moved, more, nil
}

// GetMetricHistory returns every logged value of a metric, ordered by step
// and timestamp, a page at a time (maxResults 0 means all).
func (s *Store) GetMetricHistory(ctx context.Context, runID, key, pageToken string, maxResults int) ([]Metric, string, error) {
	if _, err := s.getRunInfo(ctx, s.db.R, runID); err != nil {
		return nil, "", err
	}
	offset, err := filter.DecodePageToken(pageToken)
	if err != nil {
		return nil, "", err
	}
	ms, err := s.history(ctx, runID, key)
	if err != nil {
		return nil, "", err
	}
	if offset >= len(ms) {
		return nil, "", nil
	}
	ms = ms[offset:]
	next := ""
	if maxResults > 0 && len(ms) > maxResults {
		ms = ms[:maxResults]
		next = filter.EncodePageToken(offset + maxResults)
	}
	return ms, next, nil
}

// MaxBulkIntervalResults bounds the sampled steps of a bulk-interval query
// (MLflow's MAX_RESULTS_PER_RUN).
const MaxBulkIntervalResults = 2500

// GetMetricHistoryBulkInterval returns the values of a metric for up to 100
// runs at a common set of sampled steps, as MLflow's chart endpoint does:
// the steps logged by any of the runs within [startStep, endStep] (both or
// neither given; by default 0 to the largest step) are sampled evenly down to
// maxResults (0 means MaxBulkIntervalResults), the last one and every run's
// own first and last step in range are added, and each run's values at those
// steps come back in run order, then step order.
func (s *Store) GetMetricHistoryBulkInterval(ctx context.Context, runIDs []string, key string, startStep, endStep *int64, maxResults int) ([]Metric, error) {
	if len(runIDs) == 0 {
		return nil, errdefs.Invalid("Missing value for required parameter 'run_ids'. See the API docs for more information about request parameters.")
	}
	if len(runIDs) > 100 {
		return nil, errdefs.Invalid("GetMetricHistoryBulkInterval request must specify at most 100 run_ids. Received %d run_ids.", len(runIDs))
	}
	if maxResults == 0 {
		maxResults = MaxBulkIntervalResults
	}
	if maxResults < 1 || maxResults > MaxBulkIntervalResults {
		return nil, errdefs.Invalid("max_results must be between 1 and %d.", MaxBulkIntervalResults)
	}
	switch {
	case startStep != nil && endStep != nil:
		if *startStep > *endStep {
			return nil, errdefs.Invalid("end_step must be greater than start_step. Found start_step=%d and end_step=%d.", *startStep, *endStep)
		}
	case startStep != nil || endStep != nil:
		return nil, errdefs.Invalid("If either start step or end step are specified, both must be specified.")
	}
	histories := make([][]Metric, len(runIDs))
	union := map[int64]bool{}
	for i, id := range runIDs {
		h, err := s.history(ctx, id, key)
		if err != nil {
			return nil, err
		}
		histories[i] = h
		for _, m := range h {
			union[m.Step] = true
		}
	}
	all := make([]int64, 0, len(union))
	for st := range union {
		all = append(all, st)
	}
	slices.Sort(all)
	var lo, hi int64
	if startStep != nil {
		lo, hi = *startStep, *endStep
	} else if len(all) > 0 {
		hi = all[len(all)-1]
	}
	keep := map[int64]bool{}
	for _, st := range sampleSteps(all, lo, hi, maxResults) {
		keep[st] = true
	}
	for _, h := range histories { // each run's own first and last step in range
		first, last, seen := int64(0), int64(0), false
		for _, m := range h {
			if m.Step < lo || m.Step > hi {
				continue
			}
			if !seen || m.Step < first {
				first = m.Step
			}
			if !seen || m.Step > last {
				last = m.Step
			}
			seen = true
		}
		if seen {
			keep[first], keep[last] = true, true
		}
	}
	var out []Metric
	for _, h := range histories {
		for _, m := range h {
			if keep[m.Step] {
				out = append(out, m)
			}
		}
	}
	return out, nil
}

// sampleSteps picks up to n+1 of the sorted steps within [lo, hi]: every
// (len/n)-th one and the last, or all of them when there are at most n.
func sampleSteps(steps []int64, lo, hi int64, n int) []int64 {
	from, _ := slices.BinarySearch(steps, lo)
	to, found := slices.BinarySearch(steps, hi)
	if found {
		to++
	}
	in := steps[from:to]
	if len(in) <= n {
		return in
	}
	interval := float64(len(in)) / float64(n)
	out := make([]int64, 0, n+1)
	for i := 0; i < n; i++ {
		out = append(out, in[int(float64(i)*interval)])
	}
	return append(out, in[len(in)-1])
}
