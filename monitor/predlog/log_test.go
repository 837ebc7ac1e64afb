package predlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/metadata"

	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/dataset/profile"
	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/deploy"
	"github.com/kiln-ml/kiln/model"
	"github.com/kiln-ml/kiln/pii"
	"github.com/kiln-ml/kiln/serving"
	"github.com/kiln-ml/kiln/store"
	"github.com/kiln-ml/kiln/store/storetest"
	"github.com/kiln-ml/kiln/tensor"
)

type fakeSettings map[string]deploy.Logging

func (f fakeSettings) Logging(ep string) (deploy.Logging, bool) {
	l, ok := f[ep]
	return l, ok
}

type fakeBounds map[string]Range

func (f fakeBounds) Bounds(string) map[string]Range { return f }

type env struct {
	dir    string
	db     *store.DB
	bucket *blob.Bucket
	reg    *prometheus.Registry
}

func newEnv(t testing.TB, db *store.DB) *env {
	t.Helper()
	dir := t.TempDir()
	b, err := blob.Open(context.Background(), "file://"+filepath.Join(dir, "bucket"), blob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return &env{dir: filepath.Join(dir, "segments"), db: db, bucket: b, reg: prometheus.NewRegistry()}
}

func sqliteDB(t testing.TB) *store.DB {
	return storetest.TestDatabases(t)["sqlite"](t)
}

func (e *env) open(t testing.TB, mod func(*Options)) *Log {
	t.Helper()
	o := Options{Dir: e.dir, Bucket: e.bucket, DB: e.db, Replica: "test", Registerer: e.reg, SegmentMaxAge: time.Hour}
	if mod != nil {
		mod(&o)
	}
	l, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// scan reads every logged row of endpoint.
func (e *env) scan(t testing.TB, endpoint string) (table.Schema, []map[string]any) {
	t.Helper()
	var schema table.Schema
	var rows []map[string]any
	err := NewReader(NewIndex(e.db), e.bucket).Scan(context.Background(), endpoint, time.Time{}, time.Time{}, func(s table.Schema, b *table.Batch) error {
		schema = s
		for i := 0; i < b.Len; i++ {
			row := map[string]any{}
			for ci, f := range s.Fields {
				c := &b.Columns[ci]
				if c.Null(i) {
					row[f.Name] = nil
					continue
				}
				switch f.Type {
				case table.Float64:
					row[f.Name] = c.Floats[i]
				case table.Int64, table.Timestamp:
					row[f.Name] = c.Ints[i]
				case table.Bool:
					row[f.Name] = c.Bools[i]
				case table.String:
					row[f.Name] = c.Str(i)
				}
			}
			rows = append(rows, row)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return schema, rows
}

func f32(name string, rows, cols int, base float32) *tensor.Tensor {
	d := make([]float32, rows*cols)
	for i := range d {
		d[i] = base + float32(i)
	}
	shape := []int64{int64(rows), int64(cols)}
	if cols == 0 {
		d = d[:0]
		d = make([]float32, rows)
		for i := range d {
			d[i] = base + float32(i)
		}
		shape = []int64{int64(rows)}
	}
	return &tensor.Tensor{Name: name, DType: tensor.Float32, Shape: shape, Data: d}
}

func call(ep, id string, inputs, outputs []*tensor.Tensor) *serving.Call {
	return &serving.Call{
		Model:    &serving.Model{Name: ep, Version: "3", Route: "main", Source: "fraud/3"},
		Protocol: "v2-rest", ID: id, Inputs: inputs, Outputs: outputs, Status: 200,
		Start: time.Now(), Duration: 1500 * time.Microsecond,
	}
}

func TestRecordRoundTrip(t *testing.T) {
	r := record{
		Time: time.Unix(1700000000, 123456789).UTC(), Latency: 42 * time.Millisecond, Status: 503,
		ID: "req-1", Route: "canary", Model: "fraud/3", ModelVersion: "3", Protocol: "mlflow", Error: "boom", Subject: "cust-9",
		Inputs: []*tensor.Tensor{
			{Name: "x", DType: tensor.Float32, Shape: []int64{2, 2}, Data: []float32{1, 2, 3, 4}},
			{Name: "s", DType: tensor.String, Shape: []int64{2}, Data: []string{"a", "\x00bc"}},
			{Name: "b", DType: tensor.Bool, Shape: []int64{2}, Data: []bool{true, false}},
			{Name: "h", DType: tensor.Float16, Shape: []int64{1}, Data: []uint16{0x3c00}},
			{Name: "u", DType: tensor.Uint64, Shape: []int64{1}, Data: []uint64{math.MaxUint64}},
		},
		InputCols: [][]string{{"age", "income"}, nil, nil, nil, nil},
		Outputs:   []*tensor.Tensor{{Name: "label", DType: tensor.Int64, Shape: []int64{2}, Data: []int64{-1, 7}}},
	}
	frame := appendFrame(nil, &r)
	var got record
	n, err := decodeFrame(frame, &got)
	if err != nil || n != len(frame) {
		t.Fatalf("decode: %d of %d, %v", n, len(frame), err)
	}
	// Decoding makes nil column lists empty-or-nil alike; compare them as
	// lengths.
	for i := range got.InputCols {
		if len(got.InputCols[i]) == 0 {
			got.InputCols[i] = nil
		}
	}
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, r)
	}
	// Any flipped byte is caught by the checksum (or the length).
	for i := range frame {
		bad := append([]byte(nil), frame...)
		bad[i] ^= 0x40
		if _, err := decodeFrame(bad, &got); err == nil {
			t.Fatalf("flipped byte %d decoded", i)
		}
	}
	// A short frame is torn.
	if _, err := decodeFrame(frame[:len(frame)-1], &got); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("short frame: %v", err)
	}
}

func TestLogShipsParquet(t *testing.T) {
	for name, open := range storetest.TestDatabases(t) {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, open(t))
			l := e.open(t, func(o *Options) { o.Bounds = fakeBounds{"age": {Lo: 0, Hi: 3}} })
			sig := &model.Signature{Inputs: &model.Schema{Columns: []model.ColSpec{{Name: "age", Type: "float"}, {Name: "income", Type: "float"}}}}
			c := call("fraud", "r1", []*tensor.Tensor{f32("input", 3, 2, 0)},
				[]*tensor.Tensor{f32("label", 3, 0, 10), f32("probabilities", 3, 2, 100)})
			c.Model.Signature = sig
			l.Observe(context.Background(), c)
			failed := call("fraud", "r2", nil, nil)
			failed.Status, failed.Err = 500, errors.New("model crashed")
			l.Observe(context.Background(), failed)
			bad := call("fraud", "r3", nil, nil)
			bad.Status, bad.Err = 400, errors.New("bad input")
			l.Observe(context.Background(), bad)
			if err := l.Flush(context.Background(), "fraud"); err != nil {
				t.Fatal(err)
			}
			schema, rows := e.scan(t, "fraud")
			wantCols := []string{ColTimestamp, ColRequestID, ColRow, ColEndpoint, ColRoute, ColModel, ColModelVersion,
				ColProtocol, ColLatencyMS, ColStatus, ColError, ColSubject, ColOutliers,
				"inputs.age", "inputs.income", "outputs.label", "outputs.probabilities_0", "outputs.probabilities_1"}
			if got := schema.Names(); !reflect.DeepEqual(got, wantCols) {
				t.Fatalf("columns %v, want %v", got, wantCols)
			}
			if len(rows) != 5 {
				t.Fatalf("%d rows, want 5 (3 predicted + 2 failed requests)", len(rows))
			}
			r := rows[2]
			if r[ColRequestID] != "r1" || r[ColRow] != int64(2) || r["inputs.age"] != 4.0 || r["inputs.income"] != 5.0 ||
				r["outputs.label"] != 12.0 || r["outputs.probabilities_1"] != 105.0 || r[ColModel] != "fraud/3" ||
				r[ColRoute] != "main" || r[ColStatus] != int64(200) || r[ColLatencyMS] != 1.5 || r[ColEndpoint] != "fraud" {
				t.Fatalf("row 2: %v", r)
			}
			if rows[0][ColOutliers] != "" || rows[2][ColOutliers] != "age" {
				t.Fatalf("outliers: %q %q", rows[0][ColOutliers], rows[2][ColOutliers])
			}
			if rows[3][ColError] != "model crashed" || rows[3]["inputs.age"] != nil || rows[3][ColStatus] != int64(500) {
				t.Fatalf("failed row: %v", rows[3])
			}
			segs, err := l.Index().Segments(context.Background(), "fraud", time.Time{}, time.Time{})
			if err != nil || len(segs) != 1 || segs[0].Requests != 3 || segs[0].Rows != 5 || !strings.HasPrefix(segs[0].ObjectKey, "predictions/fraud/") {
				t.Fatalf("segments: %+v %v", segs, err)
			}
			sum, err := l.Index().Summary(context.Background(), "fraud", time.Time{}, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if sum.Requests != 3 || sum.Rows != 5 || sum.Errors != 1 || sum.ClientErrors != 1 || sum.OutlierRows != 1 ||
				sum.Outliers["age"] != 1 || sum.Routes["main"].Requests != 3 || sum.Models["fraud/3"] != 3 {
				t.Fatalf("summary: %+v", sum)
			}
			if q := sum.LatencyQuantile(0.5); q != 0.0015 {
				t.Fatalf("p50 latency %v", q)
			}
			if c := sum.Profile.Column("inputs.age"); c == nil || c.Count != 3 || c.Missing != 2 {
				t.Fatalf("profile of inputs.age: %+v", c)
			}
			if got := testutil.ToFloat64(l.metrics.records.WithLabelValues("fraud")); got != 3 {
				t.Fatalf("records metric %v", got)
			}
			if got := testutil.ToFloat64(l.metrics.shipped); got != 1 {
				t.Fatalf("shipped metric %v", got)
			}
			if n, _ := l.localBytes(); n != 0 {
				t.Fatalf("%d local bytes left", n)
			}
			// Retention removes the object and the row.
			if n, err := l.Expire(context.Background(), "fraud", time.Now().Add(time.Hour)); err != nil || n != 1 {
				t.Fatalf("expire: %d %v", n, err)
			}
			if ok, _ := e.bucket.Exists(context.Background(), segs[0].ObjectKey); ok {
				t.Fatal("expired object still there")
			}
			if segs, _ := l.Index().Segments(context.Background(), "fraud", time.Time{}, time.Time{}); len(segs) != 0 {
				t.Fatalf("expired segment still indexed: %v", segs)
			}
		})
	}
}

func TestModesAndSampling(t *testing.T) {
	e := newEnv(t, sqliteDB(t))
	l := e.open(t, func(o *Options) {
		o.Settings = fakeSettings{
			"req":  {Mode: deploy.LogRequest},
			"resp": {Mode: deploy.LogResponse, SubjectHeader: "X-Customer"},
			"none": {Mode: deploy.LogNone},
			"half": {SampleRate: 0.25},
		}
	})
	in := []*tensor.Tensor{f32("x", 1, 0, 1)}
	out := []*tensor.Tensor{f32("y", 1, 0, 2)}
	for _, ep := range []string{"req", "resp", "none", "other"} {
		l.Observe(context.Background(), call(ep, ep, in, out))
	}
	const n = 4000
	for i := 0; i < n; i++ {
		l.Observe(context.Background(), call("half", "h", in, out))
	}
	if err := l.Flush(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ep   string
		cols []string
		rows int
	}{
		{"req", []string{"inputs.x"}, 1},
		{"resp", []string{"outputs.y"}, 1},
		{"none", nil, 0},
		{"other", []string{"inputs.x", "outputs.y"}, 1},
	}
	for _, tt := range tests {
		s, rows := e.scan(t, tt.ep)
		if len(rows) != tt.rows {
			t.Errorf("%s: %d rows, want %d", tt.ep, len(rows), tt.rows)
			continue
		}
		if tt.rows > 0 {
			if got := s.Names()[nMeta:]; !reflect.DeepEqual(got, tt.cols) {
				t.Errorf("%s: feature columns %v, want %v", tt.ep, got, tt.cols)
			}
		}
	}
	_, rows := e.scan(t, "half")
	// Binomial(4000, 0.25): mean 1000, sd 27; 8 sd either way.
	if len(rows) < 780 || len(rows) > 1220 {
		t.Fatalf("sampled %d of %d at 0.25", len(rows), n)
	}
	if got := testutil.ToFloat64(l.metrics.dropped.WithLabelValues("half", "sampled")); int(got)+len(rows) != n {
		t.Fatalf("dropped %v + kept %d != %d", got, len(rows), n)
	}
}

func TestSubjectHeader(t *testing.T) {
	e := newEnv(t, sqliteDB(t))
	l := e.open(t, func(o *Options) { o.Settings = fakeSettings{"ep": {SubjectHeader: "X-Customer"}} })
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("x-customer", "cust-42"))
	l.Observe(ctx, call("ep", "a", nil, nil))
	l.Observe(context.Background(), call("ep", "b", nil, nil))
	if err := l.Flush(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	_, rows := e.scan(t, "ep")
	if len(rows) != 2 || rows[0][ColSubject] != "cust-42" || rows[1][ColSubject] != "" {
		t.Fatalf("subjects: %v", rows)
	}
}

func TestRollBySizeAndAge(t *testing.T) {
	e := newEnv(t, sqliteDB(t))
	l := e.open(t, func(o *Options) { o.SegmentMaxBytes = 2000 })
	in := []*tensor.Tensor{f32("x", 10, 4, 0)} // ~200 bytes a record
	for i := 0; i < 50; i++ {
		l.Observe(context.Background(), call("ep", "id", in, nil))
	}
	if err := l.Flush(context.Background(), "ep"); err != nil {
		t.Fatal(err)
	}
	segs, err := l.Index().Segments(context.Background(), "ep", time.Time{}, time.Time{})
	if err != nil || len(segs) < 5 {
		t.Fatalf("%d segments after 10 kB at 2 kB a segment: %v", len(segs), err)
	}
	var rows int64
	for _, s := range segs {
		rows += s.Rows
	}
	if rows != 500 {
		t.Fatalf("%d rows, want 500", rows)
	}

	e2 := newEnv(t, sqliteDB(t))
	l2 := e2.open(t, func(o *Options) { o.SegmentMaxAge = 50 * time.Millisecond; o.FsyncInterval = 10 * time.Millisecond })
	l2.Observe(context.Background(), call("ep", "aged", in, nil))
	deadline := time.Now().Add(20 * time.Second)
	for {
		segs, err := l2.Index().Segments(context.Background(), "ep", time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		if len(segs) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an aged segment was not rolled and shipped")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTornTailRecovery(t *testing.T) {
	e := newEnv(t, sqliteDB(t))
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	buf := appendSegmentHeader(nil, "ep")
	for i := 0; i < 3; i++ {
		buf = appendFrame(buf, &record{Time: time.Now(), ID: "ok", Status: 200, Inputs: []*tensor.Tensor{f32("x", 1, 0, float32(i))}})
	}
	good := len(buf)
	buf = appendFrame(buf, &record{Time: time.Now(), ID: "torn", Status: 200})
	buf = buf[:len(buf)-3] // the crash tore the last record
	path := filepath.Join(e.dir, store.NewID()+segmentExt)
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatal(err)
	}
	// A segment whose header never made it.
	if err := os.WriteFile(filepath.Join(e.dir, store.NewID()+segmentExt), []byte("KP"), 0o644); err != nil {
		t.Fatal(err)
	}
	l := e.open(t, nil)
	_, rows := e.scan(t, "ep")
	if len(rows) != 3 {
		t.Fatalf("%d rows recovered, want 3", len(rows))
	}
	for _, r := range rows {
		if r[ColRequestID] != "ok" {
			t.Fatalf("recovered %v", r)
		}
	}
	if n, _ := l.localBytes(); n != 0 {
		t.Fatalf("%d local bytes left after recovery", n)
	}
	if fi, err := os.Stat(path); err == nil {
		t.Fatalf("recovered segment still on disk (%d bytes, %d good)", fi.Size(), good)
	}
}

func TestSummaryMergeAndJSON(t *testing.T) {
	mk := func(cols []string, vals []float64, lat float64, route string, status int) *Summary {
		s := newSummary()
		s.addRequest(time.Unix(int64(lat*1000), 0), route, "m/1", lat, status, false)
		var fields []table.Field
		b := &table.Batch{Len: len(vals)}
		for _, c := range cols {
			fields = append(fields, table.Field{Name: c, Type: table.Float64})
			b.Columns = append(b.Columns, table.Column{Type: table.Float64, Floats: vals})
		}
		full := &table.Batch{Len: len(vals), Columns: make([]table.Column, nMeta)}
		full.Columns[mOutliers] = table.Column{Type: table.String}
		for range vals {
			full.Columns[mOutliers].Strs.Append(nil)
		}
		full.Columns = append(full.Columns, b.Columns...)
		s.Profile = profile.New(table.Schema{Fields: fields}, profile.Options{})
		if err := s.addBatch(full); err != nil {
			t.Fatal(err)
		}
		return s
	}
	a := mk([]string{"inputs.a"}, []float64{1, 2, 3}, 0.01, "main", 200)
	b := mk([]string{"inputs.a", "inputs.b"}, []float64{4, 5}, 0.03, "canary", 503)
	// Through JSON, as the index stores them.
	var ra, rb Summary
	for _, p := range []struct {
		s   *Summary
		dst *Summary
	}{{a, &ra}, {b, &rb}} {
		doc, err := json.Marshal(p.s)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(doc, p.dst); err != nil {
			t.Fatal(err)
		}
	}
	m := EmptySummary()
	for _, s := range []*Summary{&ra, &rb} {
		if err := m.Merge(s); err != nil {
			t.Fatal(err)
		}
	}
	if m.Requests != 2 || m.Rows != 5 || m.Errors != 1 || m.Routes["canary"].Errors != 1 || m.Routes["main"].Requests != 1 {
		t.Fatalf("merged: %+v", m)
	}
	if got := m.LatencyQuantile(1); got != 0.03 {
		t.Fatalf("max latency %v", got)
	}
	if got := m.Routes["main"].LatencyQuantile(0.5); got != 0.01 {
		t.Fatalf("main p50 %v", got)
	}
	ca, cb := m.Profile.Column("inputs.a"), m.Profile.Column("inputs.b")
	if ca == nil || cb == nil || ca.Count != 5 || cb.Count != 2 || *ca.Max != 5 {
		t.Fatalf("merged profile: a=%+v b=%+v", ca, cb)
	}
	if !m.Start.Equal(time.Unix(10, 0)) || !m.End.Equal(time.Unix(30, 0)) {
		t.Fatalf("window %v – %v", m.Start, m.End)
	}
	if !math.IsNaN(EmptySummary().LatencyQuantile(0.99)) {
		t.Fatal("latency of nothing is not NaN")
	}
}

func BenchmarkObserve(b *testing.B) {
	e := newEnv(b, sqliteDB(b))
	l := e.open(b, nil)
	in := []*tensor.Tensor{f32("input", 8, 10, 0)}
	out := []*tensor.Tensor{f32("label", 8, 0, 0), f32("probabilities", 8, 2, 0)}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		c := call("bench", "0123456789abcdef", in, out)
		for pb.Next() {
			l.Observe(context.Background(), c)
		}
	})
	b.ReportMetric(float64(b.N*8)/b.Elapsed().Seconds(), "rows/s")
}

func BenchmarkShip(b *testing.B) {
	for _, rows := range []int{1, 64} {
		b.Run(strconv.Itoa(rows)+"rows", func(b *testing.B) {
			e := newEnv(b, sqliteDB(b))
			l := e.open(b, nil)
			in := []*tensor.Tensor{f32("input", rows, 4, 0)}
			out := []*tensor.Tensor{f32("label", rows, 0, 0), f32("probabilities", rows, 2, 0)}
			c := call("bench", "0123456789abcdef", in, out)
			const per = 64000
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				for j := 0; j < per/rows; j++ {
					l.Observe(context.Background(), c)
				}
				b.StartTimer()
				if err := l.Flush(context.Background(), "bench"); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*per)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}

// TestConcurrentObserveAndFlush flushes (and rolls by size) while
// requests are observed: every observed record is shipped exactly once.
func TestConcurrentObserveAndFlush(t *testing.T) {
	e := newEnv(t, sqliteDB(t))
	l := e.open(t, func(o *Options) { o.SegmentMaxBytes = 16 << 10; o.FsyncInterval = time.Millisecond })
	const workers, each = 4, 1500
	done := make(chan struct{})
	flushed := make(chan error, 1)
	go func() {
		var err error
		for {
			select {
			case <-done:
				flushed <- err
				return
			default:
			}
			if e := l.Flush(context.Background(), "ep"); e != nil && err == nil {
				err = e
			}
		}
	}()
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				l.Observe(context.Background(), call("ep", fmt.Sprintf("%d-%d", w, i), []*tensor.Tensor{f32("x", 1, 0, 1)}, nil))
			}
		}(w)
	}
	wg.Wait()
	close(done)
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	if err := l.Flush(context.Background(), "ep"); err != nil {
		t.Fatal(err)
	}
	_, rows := e.scan(t, "ep")
	seen := map[string]bool{}
	for _, r := range rows {
		id := r[ColRequestID].(string)
		if seen[id] {
			t.Fatalf("request %s logged twice", id)
		}
		seen[id] = true
	}
	if len(seen) != workers*each {
		t.Fatalf("%d of %d requests logged", len(seen), workers*each)
	}
}

func TestSummaryEncodingCompressesLargeOnes(t *testing.T) {
	s := newSummary()
	s.addRequest(time.Now(), "main", "m/1", 0.01, 200, false)
	vals := make([]float64, 20000)
	for i := range vals {
		vals[i] = float64(i) * 1.5
	}
	fields := []table.Field{{Name: "inputs.a", Type: table.Float64}}
	s.Profile = profile.New(table.Schema{Fields: fields}, profile.Options{})
	if err := s.Profile.Add(&table.Batch{Len: len(vals), Columns: []table.Column{{Type: table.Float64, Floats: vals}}}); err != nil {
		t.Fatal(err)
	}
	doc, err := encodeSummary(s)
	if err != nil || !strings.HasPrefix(doc, summaryGzipPrefix) {
		t.Fatalf("large summary not compressed: %d bytes, %v", len(doc), err)
	}
	var back Summary
	if err := decodeSummary(doc, &back); err != nil {
		t.Fatal(err)
	}
	if back.Requests != 1 || back.Profile.Column("inputs.a").Count != 20000 || back.LatencyQuantile(0.5) != 0.01 {
		t.Fatalf("decoded: %+v", back)
	}
	small, _ := encodeSummary(newSummary())
	if strings.HasPrefix(small, summaryGzipPrefix) {
		t.Fatal("small summary compressed")
	}
}

// With logging.pii.mask the string inputs, outputs and errors are logged
// masked, and the caller's tensors are left as they were.
func TestPIIMasking(t *testing.T) {
	e := newEnv(t, sqliteDB(t))
	l := e.open(t, func(o *Options) {
		o.Settings = fakeSettings{
			"masked": {PII: &deploy.LogPII{Mask: true}},
			"emails": {PII: &deploy.LogPII{Mask: true, Kinds: []pii.Kind{pii.Email}}},
		}
	})
	text := func() []*tensor.Tensor {
		return []*tensor.Tensor{{Name: "text", DType: tensor.String, Shape: []int64{2},
			Data: []string{"mail ada@example.com, card 4242 4242 4242 4242", "no personal data"}}}
	}
	for _, ep := range []string{"masked", "emails", "plain"} {
		in := text()
		c := call(ep, ep, in, nil)
		c.Err = errors.New("bad request from 10.1.2.3")
		l.Observe(context.Background(), c)
		if got := in[0].Data.([]string)[0]; got != "mail ada@example.com, card 4242 4242 4242 4242" {
			t.Fatalf("%s: the caller's tensor changed: %q", ep, got)
		}
	}
	if err := l.Flush(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ep, first, err string
	}{
		{"masked", "mail [EMAIL], card [CARD ••••4242]", "bad request from [IPV4]"},
		{"emails", "mail [EMAIL], card 4242 4242 4242 4242", "bad request from 10.1.2.3"},
		{"plain", "mail ada@example.com, card 4242 4242 4242 4242", "bad request from 10.1.2.3"},
	} {
		_, rows := e.scan(t, tc.ep)
		if len(rows) != 2 || rows[0]["inputs.text"] != tc.first || rows[1]["inputs.text"] != "no personal data" || rows[0][ColError] != tc.err {
			t.Errorf("%s: rows %v, want inputs.text %q and error %q", tc.ep, rows, tc.first, tc.err)
		}
	}
}

// BenchmarkObservePII: the cost of spec.logging.pii.mask on Observe, for
// a request of 8 short texts (half with an email, a card or a phone
// number), against the same endpoint without masking.
func BenchmarkObservePII(b *testing.B) {
	texts := []string{
		"mail ada@example.com about the order", "the yoghurt was sour, again",
		"card 4242 4242 4242 4242 was charged twice", "great cheese, will buy more",
		"call me on +44 20 7946 0958", "milk delivered late on Tuesday",
		"refund to bob@example.org please", "no complaints, thank you",
	}
	for _, ep := range []string{"plain", "masked"} {
		b.Run(ep, func(b *testing.B) {
			e := newEnv(b, sqliteDB(b))
			l := e.open(b, func(o *Options) {
				o.Settings = fakeSettings{"masked": {PII: &deploy.LogPII{Mask: true}}}
			})
			in := []*tensor.Tensor{{Name: "text", DType: tensor.String, Shape: []int64{int64(len(texts))}, Data: texts}}
			out := []*tensor.Tensor{f32("label", 8, 0, 0)}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				c := call(ep, "0123456789abcdef", in, out)
				for pb.Next() {
					l.Observe(context.Background(), c)
				}
			})
		})
	}
}
