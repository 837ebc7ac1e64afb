package predlog

import (
	"bytes"
	"context"
	"errors"
	"path"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/metadata"

	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/deploy"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/store/storetest"
	"github.com/kiln-ml/kiln/tensor"
)

// asSubject is a request context carrying the subject key header.
func asSubject(subject string) context.Context {
	return metadata.NewIncomingContext(context.Background(), metadata.Pairs("x-customer", subject))
}

func segmentsOf(t *testing.T, l *Log, ep string) []Segment {
	t.Helper()
	segs, err := l.Index().Segments(context.Background(), ep, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return segs
}

func TestErase(t *testing.T) {
	for name, open := range storetest.TestDatabases(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, open(t))
			l := e.open(t, func(o *Options) { o.Settings = fakeSettings{"ep": {SubjectHeader: "X-Customer"}} })
			obs := func(subject, id string, rows int, status int) {
				c := call("ep", id, []*tensor.Tensor{f32("x", rows, 0, float32(10*len(id)))}, []*tensor.Tensor{f32("y", rows, 0, 1)})
				if status != 200 {
					c.Inputs, c.Outputs, c.Status, c.Err = nil, nil, status, errors.New("failed")
				}
				l.Observe(asSubject(subject), c)
			}
			flush := func() {
				if err := l.Flush(ctx, "ep"); err != nil {
					t.Fatal(err)
				}
			}
			// Segment 1: A and B mixed (rewritten); 2: only A (deleted);
			// 3: only B (untouched); then A and B still local.
			obs("A", "a1", 3, 200)
			obs("B", "b1", 2, 200)
			obs("A", "a2", 1, 500)
			flush()
			obs("A", "a3", 1, 200)
			obs("A", "a4", 1, 200)
			flush()
			obs("B", "b2", 1, 200)
			flush()
			obs("A", "a5", 2, 200)
			obs("B", "b3", 1, 200)
			// Another endpoint's records of A are not this erasure's.
			l.Observe(asSubject("A"), call("other", "o1", nil, nil))
			before := segmentsOf(t, l, "ep")
			if len(before) != 3 {
				t.Fatalf("%d segments before, want 3", len(before))
			}

			rep, err := l.Erase(ctx, "ep", "A")
			if err != nil {
				t.Fatal(err)
			}
			want := ErasureReport{Endpoint: "ep", SegmentsScanned: 4, SegmentsRewritten: 2, SegmentsDeleted: 1, RecordsDeleted: 5, RowsDeleted: 8}
			if rep != want {
				t.Fatalf("report %+v, want %+v", rep, want)
			}

			_, rows := e.scan(t, "ep")
			var ids []string
			for _, r := range rows {
				if r[ColSubject] != "B" {
					t.Fatalf("row of %v left: %v", r[ColSubject], r)
				}
				ids = append(ids, r[ColRequestID].(string))
			}
			if got := strings.Join(ids, ","); got != "b1,b1,b2,b3" {
				t.Fatalf("rows left %s, want b1,b1,b2,b3", got)
			}
			// B's values are intact (a rewrite keeps them).
			if rows[1]["inputs.x"] != 21.0 || rows[1]["outputs.y"] != 2.0 || rows[1][ColRow] != int64(1) || rows[1][ColLatencyMS] != 1.5 {
				t.Fatalf("b1 row 1: %v", rows[1])
			}

			after := segmentsOf(t, l, "ep")
			if len(after) != 3 {
				t.Fatalf("%d segments after, want 3: %+v", len(after), after)
			}
			if after[0].ID != before[0].ID || after[0].ObjectKey == before[0].ObjectKey || after[0].Requests != 1 || after[0].Rows != 2 {
				t.Fatalf("rewritten segment %+v (was %+v)", after[0], before[0])
			}
			if after[1] != before[2] {
				t.Fatalf("untouched segment changed: %+v, was %+v", after[1], before[2])
			}
			for _, key := range []string{before[0].ObjectKey, before[1].ObjectKey} {
				if ok, _ := e.bucket.Exists(ctx, key); ok {
					t.Fatalf("object %s still there", key)
				}
			}
			if ok, _ := e.bucket.Exists(ctx, after[0].ObjectKey); !ok {
				t.Fatalf("rewritten object %s missing", after[0].ObjectKey)
			}

			// Summaries are rebuilt from what is left.
			sum, err := l.Index().Summary(ctx, "ep", time.Time{}, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if sum.Requests != 3 || sum.Rows != 4 || sum.Errors != 0 || sum.Models["fraud/3"] != 3 || sum.Routes["main"].Requests != 3 || sum.Latency.Count() != 3 {
				t.Fatalf("summary after erasure: %+v", sum)
			}
			if q := sum.LatencyQuantile(0.5); q != 0.0015 {
				t.Fatalf("p50 latency %v", q)
			}
			if c := sum.Profile.Column("inputs.x"); c == nil || c.Count != 4 || c.Missing != 0 {
				t.Fatalf("profile of inputs.x: %+v", c)
			}
			var doc string
			if err := e.db.R.QueryRowContext(ctx, e.db.Rebind(`SELECT summary FROM prediction_segments WHERE segment_id = ?`), after[0].ID).Scan(&doc); err != nil {
				t.Fatal(err)
			}
			var first Summary
			if err := decodeSummary(doc, &first); err != nil || first.Requests != 1 || first.Rows != 2 || first.Profile.Column("inputs.x").Count != 2 ||
				first.Start.UnixMilli() != after[0].Start.UnixMilli() {
				t.Fatalf("rewritten segment's summary: %+v %v", first, err)
			}

			// The other endpoint keeps A's record; erasing again finds nothing.
			if err := l.Flush(ctx, "other"); err != nil {
				t.Fatal(err)
			}
			if _, rows := e.scan(t, "other"); len(rows) != 1 {
				t.Fatalf("other endpoint: %d rows", len(rows))
			}
			again, err := l.Erase(ctx, "ep", "A")
			if err != nil || again.RecordsDeleted != 0 || again.SegmentsRewritten != 0 || again.SegmentsScanned != 3 {
				t.Fatalf("second erasure: %+v %v", again, err)
			}
			if _, err := l.Erase(ctx, "ep", ""); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("empty subject: %v", err)
			}
		})
	}
}

// ulidAt is a ULID made at t (for leftovers of old rewrites).
func ulidAt(t time.Time) string {
	const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	v := uint64(t.UnixMilli())
	var b [10]byte
	for i := 9; i >= 0; i-- {
		b[i] = alphabet[v&31]
		v >>= 5
	}
	return string(b[:]) + "0000000000000000"
}

func TestEraseCrashLeftovers(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, sqliteDB(t))
	l := e.open(t, func(o *Options) { o.Settings = fakeSettings{"ep": {SubjectHeader: "X-Customer"}} })
	l.Observe(asSubject("A"), call("ep", "a1", nil, nil))
	l.Observe(asSubject("B"), call("ep", "b1", nil, nil))
	if err := l.Flush(ctx, "ep"); err != nil {
		t.Fatal(err)
	}
	seg := segmentsOf(t, l, "ep")[0]
	if _, err := l.Erase(ctx, "ep", "A"); err != nil {
		t.Fatal(err)
	}
	cur := segmentsOf(t, l, "ep")[0]
	if now := time.Now(); !ulidTimeNear(t, strings.TrimSuffix(strings.TrimPrefix(path.Base(cur.ObjectKey), seg.ID+"."), ".parquet"), now) {
		t.Fatalf("rewrite key %s", cur.ObjectKey)
	}
	// A crash after the index update kept the old object; one before it
	// left an unindexed rewrite (old), and one is in flight (fresh).
	dir := path.Dir(seg.ObjectKey)
	stale := dir + "/" + seg.ID + "." + ulidAt(time.Now().Add(-2*time.Hour)) + ".parquet"
	fresh := dir + "/" + seg.ID + "." + ulidAt(time.Now()) + ".parquet"
	for _, k := range []string{seg.ObjectKey, stale, fresh} {
		if _, err := e.bucket.Put(ctx, k, bytes.NewReader([]byte("x")), "application/octet-stream"); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := l.Erase(ctx, "ep", "nobody")
	if err != nil || rep.LeftoversDeleted != 2 || rep.RecordsDeleted != 0 {
		t.Fatalf("erasure after a crash: %+v %v", rep, err)
	}
	ents, err := e.bucket.List(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, en := range ents {
		left = append(left, en.Path)
	}
	sort.Strings(left)
	want := []string{cur.ObjectKey, fresh}
	sort.Strings(want)
	if strings.Join(left, " ") != strings.Join(want, " ") {
		t.Fatalf("objects left %v, want %v", left, want)
	}
	if _, rows := e.scan(t, "ep"); len(rows) != 1 || rows[0][ColSubject] != "B" {
		t.Fatalf("rows %v", rows)
	}
	// An index row that names another object is not replaced.
	if ok, err := l.index.update(ctx, cur, EmptySummary(), seg.ObjectKey); err != nil || ok {
		t.Fatalf("update of a changed row: %v %v", ok, err)
	}
	if ok, err := l.index.removeIf(ctx, cur.ID, seg.ObjectKey); err != nil || ok {
		t.Fatalf("remove of a changed row: %v %v", ok, err)
	}
}

func ulidTimeNear(t *testing.T, id string, now time.Time) bool {
	t.Helper()
	at, ok := ulidTime(id)
	return ok && at.Sub(now).Abs() < time.Minute
}

func TestRetentionPerEndpoint(t *testing.T) {
	for name, open := range storetest.TestDatabases(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			for _, def := range []time.Duration{30 * 24 * time.Hour, -1} {
				e := newEnv(t, open(t))
				l := e.open(t, func(o *Options) {
					o.Retention = def
					o.Settings = fakeSettings{"short": {Retention: deploy.Duration(time.Hour)}, "plain": {}}
				})
				for _, ep := range []string{"short", "plain", "unknown"} {
					l.Observe(context.Background(), call(ep, "r", nil, nil))
				}
				if err := l.Flush(ctx, ""); err != nil {
					t.Fatal(err)
				}
				if got := l.RetentionOf("short"); got != time.Hour {
					t.Fatalf("retention of short %v", got)
				}
				if got := l.RetentionOf("plain"); got != def {
					t.Fatalf("retention of plain %v, want the default %v", got, def)
				}
				// Two hours on: only "short" is past its retention.
				shortest, err := l.expireEach(ctx, time.Now().Add(2*time.Hour))
				if err != nil || shortest != time.Hour {
					t.Fatalf("expire: shortest %v, %v", shortest, err)
				}
				eps, err := l.Index().Endpoints(ctx)
				if err != nil || strings.Join(eps, ",") != "plain,unknown" {
					t.Fatalf("endpoints left %v %v", eps, err)
				}
				// A year on: the default applies to the others (or keeps
				// them forever).
				if _, err := l.expireEach(ctx, time.Now().Add(365*24*time.Hour)); err != nil {
					t.Fatal(err)
				}
				eps, _ = l.Index().Endpoints(ctx)
				if wantLeft := map[bool]string{true: "", false: "plain,unknown"}[def > 0]; strings.Join(eps, ",") != wantLeft {
					t.Fatalf("default %v: endpoints left %v, want %q", def, eps, wantLeft)
				}
			}
		})
	}
}

func TestExpireFiltersByEndpoint(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, sqliteDB(t))
	l := e.open(t, nil)
	for _, ep := range []string{"a", "b"} {
		l.Observe(ctx, call(ep, "r", nil, nil))
	}
	if err := l.Flush(ctx, ""); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	if n, err := l.Expire(ctx, "a", later); err != nil || n != 1 {
		t.Fatalf("expire a: %d %v", n, err)
	}
	if len(segmentsOf(t, l, "a")) != 0 || len(segmentsOf(t, l, "b")) != 1 {
		t.Fatal("expire of a touched b, or missed a")
	}
	if n, err := l.Expire(ctx, "", later); err != nil || n != 1 {
		t.Fatalf("expire all: %d %v", n, err)
	}
}

// Erasures of two subjects at once (as on two replicas) and logging
// going on meanwhile: neither erasure undoes the other's.
func TestEraseConcurrent(t *testing.T) {
	for name, open := range storetest.TestDatabases(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, open(t))
			l := e.open(t, func(o *Options) { o.Settings = fakeSettings{"ep": {SubjectHeader: "X-Customer"}} })
			subjects := []string{"A", "B", "C"}
			for seg := 0; seg < 6; seg++ {
				for i := 0; i < 30; i++ {
					l.Observe(asSubject(subjects[i%3]), call("ep", "r", []*tensor.Tensor{f32("x", 1, 0, float32(i))}, nil))
				}
				if err := l.Flush(ctx, "ep"); err != nil {
					t.Fatal(err)
				}
			}
			// A second Log on the same index and bucket stands for another
			// replica.
			other := *e
			other.dir = t.TempDir()
			other.reg = prometheus.NewRegistry()
			l2 := other.open(t, func(o *Options) { o.Settings = fakeSettings{"ep": {SubjectHeader: "X-Customer"}} })
			stop := make(chan struct{})
			logged := make(chan int)
			go func() { // logs C throughout
				n := 0
				for {
					select {
					case <-stop:
						logged <- n
						return
					default:
					}
					l.Observe(asSubject("C"), call("ep", "late", nil, nil))
					n++
					time.Sleep(time.Millisecond)
				}
			}()
			reps := make([]ErasureReport, 2)
			errs := make([]error, 2)
			done := make(chan struct{})
			go func() { reps[1], errs[1] = l2.Erase(ctx, "ep", "B"); close(done) }()
			reps[0], errs[0] = l.Erase(ctx, "ep", "A")
			<-done
			close(stop)
			late := <-logged
			for i, err := range errs {
				if err != nil {
					t.Fatalf("erasure %d: %v", i, err)
				}
			}
			if reps[0].RecordsDeleted != 60 || reps[1].RecordsDeleted != 60 {
				t.Fatalf("reports %+v", reps)
			}
			if err := l.Flush(ctx, "ep"); err != nil {
				t.Fatal(err)
			}
			_, rows := e.scan(t, "ep")
			if len(rows) != 60+late {
				t.Fatalf("%d rows left, want %d", len(rows), 60+late)
			}
			for _, r := range rows {
				if r[ColSubject] != "C" {
					t.Fatalf("a row of %v is left", r[ColSubject])
				}
			}
			sum, err := l.Index().Summary(ctx, "ep", time.Time{}, time.Time{})
			if err != nil || sum.Requests != int64(60+late) {
				t.Fatalf("summary: %d requests, want %d (%v)", sum.Requests, 60+late, err)
			}
		})
	}
}

// BenchmarkErase erases one subject of 100 from an endpoint of 20
// segments of 5000 requests (a subject has rows in every segment, so each
// erasure rewrites all 20); "absent" erases a key that is nowhere (reads
// only).
func BenchmarkErase(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b, sqliteDB(b))
	l := e.open(b, func(o *Options) { o.Settings = fakeSettings{"ep": {SubjectHeader: "X-Customer"}} })
	ctxs := make([]context.Context, 100)
	for i := range ctxs {
		ctxs[i] = asSubject("customer-" + strconv.Itoa(i))
	}
	in := []*tensor.Tensor{f32("x", 1, 4, 0)}
	out := []*tensor.Tensor{f32("y", 1, 0, 1)}
	for seg := 0; seg < 20; seg++ {
		for i := 0; i < 5000; i++ {
			l.Observe(ctxs[i%100], call("ep", "r"+strconv.Itoa(i), in, out))
		}
		if err := l.Flush(ctx, "ep"); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("absent", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if rep, err := l.Erase(ctx, "ep", "nobody"); err != nil || rep.SegmentsScanned != 20 {
				b.Fatal(rep, err)
			}
		}
	})
	next := 0 // b.Run calls the function more than once
	b.Run("rewrite", func(b *testing.B) {
		if next+b.N > 100 {
			b.Skip("100 subjects")
		}
		for i := 0; i < b.N; i++ {
			next++
			if rep, err := l.Erase(ctx, "ep", "customer-"+strconv.Itoa(next-1)); err != nil || rep.SegmentsRewritten != 20 || rep.RecordsDeleted != 1000 {
				b.Fatal(rep, err)
			}
		}
	})
}

// A reader that listed the segments before an erasure rewrote one and
// deleted another reads the rewrite and skips the deleted one.
func TestScanDuringErasure(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, sqliteDB(t))
	l := e.open(t, func(o *Options) { o.Settings = fakeSettings{"ep": {SubjectHeader: "X-Customer"}} })
	for _, seg := range [][]string{{"B"}, {"A", "B"}, {"A"}, {"B"}} {
		for _, who := range seg {
			l.Observe(asSubject(who), call("ep", who, nil, nil))
		}
		if err := l.Flush(ctx, "ep"); err != nil {
			t.Fatal(err)
		}
	}
	var subjects []string
	erased := false
	err := NewReader(l.Index(), e.bucket).Scan(ctx, "ep", time.Time{}, time.Time{}, func(s table.Schema, b *table.Batch) error {
		col := &b.Columns[s.Index(ColSubject)]
		for i := 0; i < b.Len; i++ {
			subjects = append(subjects, col.Str(i))
		}
		if !erased {
			erased = true
			rep, err := l.Erase(ctx, "ep", "A")
			if err != nil || rep.SegmentsRewritten != 1 || rep.SegmentsDeleted != 1 {
				t.Errorf("erasure: %+v %v", rep, err)
			}
		}
		return nil
	})
	if err != nil || strings.Join(subjects, ",") != "B,B,B" {
		t.Fatalf("scan during an erasure: %v %v", subjects, err)
	}
}
