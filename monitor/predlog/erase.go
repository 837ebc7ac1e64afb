package predlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/dataset/profile"
	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/store"
)

// ErasureReport says what an erasure did.
type ErasureReport struct {
	Endpoint string `json:"endpoint"`
	// SegmentsScanned counts the shipped segments read (every segment of
	// the endpoint, those shipped by the erasure's flush included);
	// SegmentsRewritten those rewritten without the subject's rows;
	// SegmentsDeleted those removed because nothing else was left.
	SegmentsScanned   int `json:"segments_scanned"`
	SegmentsRewritten int `json:"segments_rewritten"`
	SegmentsDeleted   int `json:"segments_deleted"`
	// RecordsDeleted counts the subject's logged requests, RowsDeleted
	// their predicted rows.
	RecordsDeleted int64 `json:"records_deleted"`
	RowsDeleted    int64 `json:"rows_deleted"`
	// LeftoversDeleted counts objects of earlier, interrupted rewrites
	// that the erasure removed.
	LeftoversDeleted int `json:"leftovers_deleted,omitempty"`
}

// leftoverAge is how old the object of a rewrite must be before an
// erasure that finds it unindexed deletes it: a younger one may be the
// new object of a rewrite in flight on another replica.
const leftoverAge = time.Hour

// Erase deletes every record the endpoint logged with the subject key
// subject (Logging.SubjectHeader) before the call.
//
// It first flushes the endpoint (rolls its active segment and ships
// every local segment of it, as Flush does), so that records not yet
// shipped are erased too. Then it reads every shipped segment of the
// endpoint; a segment with rows of the subject is rewritten without them
// (the same segment id, a new object, a rebuilt summary), or deleted when
// nothing is left. Records logged by other replicas and still in their
// local segments (at most SegmentMaxAge old) are not seen: erase again
// after SegmentMaxAge in a deployment of several replicas.
//
// Crash safety: a rewrite writes the new object under a new key first,
// then points the index row at it (only if the row still names the
// object that was read, so concurrent erasures and retention never lose
// each other's work), then deletes the old object. A crash before the
// index update leaves an unindexed copy without the subject's rows; a
// crash after it leaves the old object unindexed. Either is a leftover
// that the next erasure of the endpoint deletes (LeftoversDeleted):
// rerunning an interrupted erasure completes it. Deleting an emptied
// segment deletes the object first and the row second; a crash in
// between leaves a row without an object, which readers report as an
// error until the next erasure removes it.
func (l *Log) Erase(ctx context.Context, endpoint, subject string) (ErasureReport, error) {
	rep := ErasureReport{Endpoint: endpoint}
	if endpoint == "" {
		return rep, errdefs.Invalid("An erasure needs an endpoint")
	}
	if subject == "" {
		return rep, errdefs.Invalid("An erasure needs a subject key (records logged without one are not erased this way)")
	}
	if err := l.Flush(ctx, endpoint); err != nil {
		return rep, fmt.Errorf("erase: ship the local segments first: %w", err)
	}
	segs, err := l.index.Segments(ctx, endpoint, time.Time{}, time.Time{})
	if err != nil {
		return rep, fmt.Errorf("erase: %w", err)
	}
	for _, s := range segs {
		if err := l.eraseSegment(ctx, s, subject, &rep); err != nil {
			return rep, fmt.Errorf("erase: segment %s: %w", s.ID, err)
		}
	}
	n, err := l.deleteLeftovers(ctx, segs)
	rep.LeftoversDeleted = n
	if err != nil {
		return rep, fmt.Errorf("erase: leftovers: %w", err)
	}
	l.log.Info("prediction log: subject erased", "endpoint", endpoint, "segments_scanned", rep.SegmentsScanned,
		"segments_rewritten", rep.SegmentsRewritten, "segments_deleted", rep.SegmentsDeleted, "records_deleted", rep.RecordsDeleted)
	return rep, nil
}

// eraseSegment erases subject from one segment, rereading the segment
// when another writer changed it meanwhile.
func (l *Log) eraseSegment(ctx context.Context, s Segment, subject string, rep *ErasureReport) error {
	rep.SegmentsScanned++
	for attempt := 0; ; attempt++ {
		done, err := l.eraseOnce(ctx, s, subject, rep)
		if err != nil || done {
			return err
		}
		if attempt >= 10 {
			return errors.New("the segment kept changing while it was rewritten")
		}
		cur, ok, err := l.index.get(ctx, s.ID)
		if err != nil || !ok {
			return err // gone: expired or emptied by another erasure
		}
		s = cur
	}
}

// eraseOnce rewrites or deletes s without subject's rows; done is false
// when the index row no longer names s's object (read it again).
func (l *Log) eraseOnce(ctx context.Context, s Segment, subject string, rep *ErasureReport) (done bool, err error) {
	data, err := l.readObject(ctx, s.ObjectKey)
	if errors.Is(err, errdefs.ErrNotFound) {
		// Deleted by a concurrent writer (then the row changed), or an
		// emptied segment whose row a crash kept: drop the row.
		ok, err := l.index.removeIf(ctx, s.ID, s.ObjectKey)
		return ok, err
	}
	if err != nil {
		return false, err
	}
	kept, schema, recs, rows, err := filterSubject(ctx, data, s.ObjectKey, subject)
	if err != nil || rows == 0 {
		return true, err
	}
	keptRows := 0
	for _, b := range kept {
		keptRows += b.Len
	}
	if keptRows == 0 {
		if err := l.opts.Bucket.Delete(ctx, s.ObjectKey); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return false, err
		}
		ok, err := l.index.removeIf(ctx, s.ID, s.ObjectKey)
		if err != nil || !ok {
			return ok, err
		}
		rep.SegmentsDeleted++
		rep.RecordsDeleted += recs
		rep.RowsDeleted += rows
		return true, nil
	}
	var buf bytes.Buffer
	w := newSegmentWriter(&buf, schema)
	sum := newSummary()
	if len(schema.Fields) > nMeta {
		sum.Profile = profile.New(table.Schema{Fields: schema.Fields[nMeta:]}, profile.Options{})
	}
	for _, b := range kept {
		if err := w.Write(b); err != nil {
			return false, fmt.Errorf("rewrite Parquet: %w", err)
		}
		addRequests(sum, b)
		if err := sum.addBatch(b); err != nil {
			return false, err
		}
	}
	if err := w.Close(); err != nil {
		return false, fmt.Errorf("rewrite Parquet: %w", err)
	}
	if sum.Profile != nil {
		sum.Profile.Refresh()
	}
	ns := s
	ns.Start, ns.End, ns.Requests, ns.Rows, ns.SizeBytes = sum.Start, sum.End, sum.Requests, sum.Rows, int64(buf.Len())
	ns.ObjectKey = rewriteKey(s.ObjectKey, s.ID)
	if _, err := l.opts.Bucket.Put(ctx, ns.ObjectKey, &buf, "application/vnd.apache.parquet"); err != nil {
		return false, err
	}
	ok, err := l.index.update(ctx, ns, sum, s.ObjectKey)
	if err != nil || !ok {
		// Not indexed: remove the new object (a leftover if this fails).
		if derr := l.opts.Bucket.Delete(context.WithoutCancel(ctx), ns.ObjectKey); derr != nil && !errors.Is(derr, errdefs.ErrNotFound) {
			l.log.Warn("prediction log: cannot delete an unindexed rewrite (the next erasure will)", "key", ns.ObjectKey, "err", derr)
		}
		return false, err
	}
	if err := l.opts.Bucket.Delete(ctx, s.ObjectKey); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		// Indexed no more: a leftover the next erasure deletes.
		l.log.Warn("prediction log: cannot delete a rewritten segment's old object (the next erasure will)", "key", s.ObjectKey, "err", err)
	}
	rep.SegmentsRewritten++
	rep.RecordsDeleted += recs
	rep.RowsDeleted += rows
	return true, nil
}

func (l *Log) readObject(ctx context.Context, key string) ([]byte, error) {
	obj, err := l.opts.Bucket.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	data, err := io.ReadAll(io.LimitReader(obj, maxSegmentObject+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxSegmentObject {
		return nil, fmt.Errorf("object %s is larger than %d bytes", key, maxSegmentObject)
	}
	return data, nil
}

// filterSubject reads a segment file and returns its batches without the
// rows of subject, the schema to write them with, and how many requests
// (recs) and rows it dropped.
func filterSubject(ctx context.Context, data []byte, name, subject string) (kept []*table.Batch, schema table.Schema, recs, rows int64, err error) {
	tr, err := table.OpenReaderAt(ctx, bytes.NewReader(data), int64(len(data)), name, table.Options{Format: table.Parquet})
	if err != nil {
		return nil, schema, 0, 0, err
	}
	defer tr.Close()
	read := tr.Schema()
	if len(read.Fields) < nMeta {
		return nil, schema, 0, 0, fmt.Errorf("%d columns, want at least %d", len(read.Fields), nMeta)
	}
	for i, f := range metaFields {
		if read.Fields[i].Name != f.Name || read.Fields[i].Type != f.Type {
			return nil, schema, 0, 0, fmt.Errorf("column %d is %s %s, want %s %s", i, read.Fields[i].Name, read.Fields[i].Type, f.Name, f.Type)
		}
	}
	// Written as shipping writes: the metadata columns required, the
	// features optional.
	schema.Fields = append(schema.Fields, metaFields...)
	for _, f := range read.Fields[nMeta:] {
		schema.Fields = append(schema.Fields, table.Field{Name: f.Name, Type: f.Type, Nullable: true})
	}
	want := []byte(subject)
	for {
		b, err := tr.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, schema, 0, 0, err
		}
		sub, row := &b.Columns[mSubject], &b.Columns[mRow]
		keep := make([]int, 0, b.Len)
		for i := 0; i < b.Len; i++ {
			if bytes.Equal(sub.Bytes(i), want) {
				rows++
				if row.Ints[i] == 0 {
					recs++
				}
				continue
			}
			keep = append(keep, i)
		}
		if len(keep) > 0 {
			kept = append(kept, b.Take(keep))
		}
	}
	if rows == 0 {
		return nil, schema, 0, 0, nil
	}
	return kept, schema, recs, rows, nil
}

// addRequests adds the requests of a read-back batch to s: one per row
// 0 of a request, as the converter's summary adds one per record.
func addRequests(s *Summary, b *table.Batch) {
	ts, row := &b.Columns[mTimestamp], &b.Columns[mRow]
	route, model := &b.Columns[mRoute], &b.Columns[mModel]
	lat, status, msg := &b.Columns[mLatency], &b.Columns[mStatus], &b.Columns[mError]
	for i := 0; i < b.Len; i++ {
		if row.Ints[i] != 0 {
			continue
		}
		s.addRequest(time.UnixMilli(ts.Ints[i]).UTC(), route.Str(i), model.Str(i), lat.Floats[i]/1e3,
			int(status.Ints[i]), len(msg.Bytes(i)) > 0)
	}
}

// rewriteKey is the object key of a rewrite of segment id stored at key:
// the same folder, named <id>.<rewrite ULID>.parquet.
func rewriteKey(key, id string) string {
	return path.Dir(key) + "/" + id + "." + store.NewID() + ".parquet"
}

// deleteLeftovers deletes, in the folders of segs, the objects of those
// segments that their rows no longer name: old objects of rewrites and
// unindexed rewrites left by a crash (a rewrite only when older than
// leftoverAge). It lists each folder once.
func (l *Log) deleteLeftovers(ctx context.Context, segs []Segment) (int, error) {
	byDir := map[string][]Segment{}
	var dirs []string
	for _, s := range segs {
		d := path.Dir(s.ObjectKey)
		if byDir[d] == nil {
			dirs = append(dirs, d)
		}
		byDir[d] = append(byDir[d], s)
	}
	n := 0
	for _, d := range dirs {
		ents, err := l.opts.Bucket.List(ctx, d)
		if err != nil {
			return n, err
		}
		for _, s := range byDir[d] {
			cur, ok, err := l.index.get(ctx, s.ID)
			if err != nil {
				return n, err
			}
			for _, e := range ents {
				rest, isSeg := strings.CutPrefix(e.Name, s.ID+".")
				if e.IsDir || !isSeg || ok && e.Path == cur.ObjectKey {
					continue
				}
				if rev, isRewrite := strings.CutSuffix(rest, ".parquet"); isRewrite && rev != "" {
					if t, valid := ulidTime(rev); !valid || time.Since(t) < leftoverAge {
						continue
					}
				} else if rest != "parquet" {
					continue // not a name the log writes
				}
				if err := l.opts.Bucket.Delete(ctx, e.Path); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
					return n, err
				}
				n++
			}
		}
	}
	return n, nil
}

// ulidTime returns the time a ULID (store.NewID) was made.
func ulidTime(id string) (time.Time, bool) {
	const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	if len(id) != 26 {
		return time.Time{}, false
	}
	var v uint64
	for i := 0; i < 10; i++ {
		k := strings.IndexByte(alphabet, id[i])
		if k < 0 {
			return time.Time{}, false
		}
		v = v<<5 | uint64(k)
	}
	return time.UnixMilli(int64(v)), true
}
