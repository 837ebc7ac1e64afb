package pit

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/dataset/table"
)

// memReader serves batches from memory.
type memReader struct {
	schema  table.Schema
	batches []*table.Batch
}

func (m *memReader) Schema() table.Schema { return m.schema }
func (m *memReader) Next(context.Context) (*table.Batch, error) {
	if len(m.batches) == 0 {
		return nil, io.EOF
	}
	b := m.batches[0]
	m.batches = m.batches[1:]
	return b, nil
}
func (m *memReader) Close() error { return nil }

// memWriter keeps what is written.
type memWriter struct {
	schema table.Schema
	rows   [][]any
}

func (w *memWriter) Write(b *table.Batch) error {
	if err := b.Check(w.schema); err != nil {
		return err
	}
	for i := 0; i < b.Len; i++ {
		row := make([]any, len(b.Columns))
		for j := range b.Columns {
			row[j] = cell(&b.Columns[j], &w.schema.Fields[j], i)
		}
		w.rows = append(w.rows, row)
	}
	return nil
}
func (w *memWriter) Close() error { return nil }

func cell(c *table.Column, f *table.Field, i int) any {
	if c.Null(i) {
		return nil
	}
	switch c.Type {
	case table.Bool:
		return c.Bools[i]
	case table.Int64:
		return c.Ints[i]
	case table.Float64:
		return c.Floats[i]
	case table.String:
		return c.Str(i)
	case table.Timestamp, table.Date:
		return c.Time(i, f.Unit).UnixNano()
	}
	return nil
}

// build makes a table from rows (time.Time for timestamps), batchRows rows
// a batch.
func build(fields []table.Field, rows [][]any, batchRows int) *memReader {
	m := &memReader{schema: table.Schema{Fields: fields}}
	for lo := 0; lo < len(rows) || lo == 0; lo += batchRows {
		hi := min(lo+batchRows, len(rows))
		b := &table.Batch{Len: hi - lo, Columns: make([]table.Column, len(fields))}
		for j, f := range fields {
			c := &b.Columns[j]
			c.Type = f.Type
			c.Valid = table.NewBitmap(hi - lo)
			c.Strs.Offsets = []int32{0}
			for i := lo; i < hi; i++ {
				v := rows[i][j]
				if v == nil {
					c.Valid.Set(i-lo, false)
				}
				switch f.Type {
				case table.Bool:
					x, _ := v.(bool)
					c.Bools = append(c.Bools, x)
				case table.Int64:
					x, _ := v.(int64)
					if xi, ok := v.(int); ok {
						x = int64(xi)
					}
					c.Ints = append(c.Ints, x)
				case table.Float64:
					x, _ := v.(float64)
					c.Floats = append(c.Floats, x)
				case table.String:
					x, _ := v.(string)
					c.Strs.AppendString(x)
				case table.Timestamp:
					x, _ := v.(time.Time)
					per := f.Unit.PerSecond()
					c.Ints = append(c.Ints, x.Unix()*per+int64(x.Nanosecond())/(1e9/per))
				case table.Date:
					x, _ := v.(time.Time)
					c.Ints = append(c.Ints, x.Unix()/86400)
				}
			}
		}
		m.batches = append(m.batches, b)
		if hi == len(rows) {
			break
		}
	}
	return m
}

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }

func ts(name string) table.Field {
	return table.Field{Name: name, Type: table.Timestamp, Unit: table.Microsecond, UTC: true, Nullable: true}
}

func fld(name string, t table.Type) table.Field {
	return table.Field{Name: name, Type: t, Nullable: true}
}

func run(t *testing.T, ent *memReader, views []View, opts Options) ([][]any, *Stats, error) {
	t.Helper()
	sch, err := Schema(ent.Schema(), views, opts)
	if err != nil {
		return nil, nil, err
	}
	w := &memWriter{schema: sch}
	st, err := Join(context.Background(), ent, views, opts, w)
	return w.rows, st, err
}

func TestJoinCases(t *testing.T) {
	entFields := []table.Field{fld("id", table.Int64), ts("event_timestamp"), fld("label", table.String)}
	srcFields := []table.Field{fld("id", table.Int64), ts("ts"), ts("created"), fld("x", table.Float64)}
	type tc struct {
		name     string
		entities [][]any
		source   [][]any
		ttl      time.Duration
		created  bool
		want     []any // x per entity row
	}
	cases := []tc{
		{name: "latest at or before the entity time",
			entities: [][]any{{1, at(10), "a"}, {1, at(5), "b"}, {1, at(1), "c"}},
			source:   [][]any{{1, at(2), at(2), 2.0}, {1, at(5), at(5), 5.0}, {1, at(8), at(8), 8.0}},
			want:     []any{8.0, 5.0, nil}},
		{name: "late row (arrives after, earlier event time) still counts by event time",
			entities: [][]any{{1, at(10), "a"}},
			source:   [][]any{{1, at(9), at(20), 9.0}, {1, at(7), at(7), 7.0}},
			want:     []any{9.0}},
		{name: "future rows are never used",
			entities: [][]any{{1, at(3), "a"}},
			source:   [][]any{{1, at(4), at(4), 4.0}},
			want:     []any{nil}},
		{name: "ties on event time: greatest created wins",
			entities: [][]any{{1, at(10), "a"}},
			source:   [][]any{{1, at(5), at(9), 1.0}, {1, at(5), at(6), 2.0}},
			created:  true,
			want:     []any{1.0}},
		{name: "ties without a created field: last in source order",
			entities: [][]any{{1, at(10), "a"}},
			source:   [][]any{{1, at(5), at(9), 1.0}, {1, at(5), at(6), 2.0}},
			want:     []any{2.0}},
		{name: "exact duplicates: last in source order",
			entities: [][]any{{1, at(10), "a"}},
			source:   [][]any{{1, at(5), at(5), 1.0}, {1, at(5), at(5), 3.0}},
			created:  true,
			want:     []any{3.0}},
		{name: "ttl lower bound is inclusive",
			entities: [][]any{{1, at(10), "a"}, {1, at(11), "b"}},
			source:   [][]any{{1, at(8), at(8), 8.0}},
			ttl:      2 * time.Hour,
			want:     []any{8.0, nil}},
		{name: "upper bound inclusive",
			entities: [][]any{{1, at(8), "a"}},
			source:   [][]any{{1, at(8), at(8), 8.0}},
			ttl:      time.Hour,
			want:     []any{8.0}},
		{name: "ttl does not fall back to an older row",
			entities: [][]any{{1, at(10), "a"}},
			source:   [][]any{{1, at(1), at(1), 1.0}, {1, at(5), at(5), 5.0}},
			ttl:      3 * time.Hour,
			want:     []any{nil}},
		{name: "absent and null keys never match",
			entities: [][]any{{2, at(10), "a"}, {nil, at(10), "b"}, {1, at(10), "c"}},
			source:   [][]any{{1, at(5), at(5), 5.0}, {nil, at(5), at(5), 6.0}},
			want:     []any{nil, nil, 5.0}},
		{name: "null entity time matches nothing; null feature time is ignored",
			entities: [][]any{{1, nil, "a"}, {1, at(10), "b"}},
			source:   [][]any{{1, at(5), at(5), 5.0}, {1, nil, at(9), 9.0}},
			want:     []any{nil, 5.0}},
		{name: "null feature value is a null, not a fall back",
			entities: [][]any{{1, at(10), "a"}},
			source:   [][]any{{1, at(5), at(5), 5.0}, {1, at(6), at(6), nil}},
			want:     []any{nil}},
		{name: "empty source",
			entities: [][]any{{1, at(10), "a"}},
			want:     []any{nil}},
		{name: "null created sorts first",
			entities: [][]any{{1, at(10), "a"}},
			source:   [][]any{{1, at(5), at(1), 1.0}, {1, at(5), nil, 2.0}},
			created:  true,
			want:     []any{1.0}},
	}
	for _, c := range cases {
		for _, batchRows := range []int{1, 2, 100} {
			t.Run(fmt.Sprintf("%s/batch%d", c.name, batchRows), func(t *testing.T) {
				v := View{Name: "v", Source: build(srcFields, c.source, batchRows), JoinKeys: []string{"id"},
					TimestampField: "ts", TTL: c.ttl, Features: []Feature{{Name: "x", Type: table.Float64}}}
				if c.created {
					v.CreatedField = "created"
				}
				rows, _, err := run(t, build(entFields, c.entities, batchRows), []View{v}, Options{})
				if err != nil {
					t.Fatal(err)
				}
				if len(rows) != len(c.want) {
					t.Fatalf("%d rows, want %d", len(rows), len(c.want))
				}
				for i, r := range rows {
					if r[2] != c.entities[i][2] {
						t.Errorf("row %d: label %v, want %v (order not preserved)", i, r[2], c.entities[i][2])
					}
					if r[3] != c.want[i] {
						t.Errorf("row %d: x = %v, want %v", i, r[3], c.want[i])
					}
				}
			})
		}
	}
}

func TestSeveralViewsCompositeKeysAndNames(t *testing.T) {
	ent := build([]table.Field{fld("user", table.String), fld("shop", table.Int64), ts("event_timestamp")},
		[][]any{{"u1", 1, at(10)}, {"u1", 2, at(10)}, {"u2", 1, at(10)}}, 2)
	// Source timestamps in seconds-resolution, naive; shop key as text.
	us := build([]table.Field{fld("user", table.String), fld("shop", table.String),
		{Name: "t", Type: table.Timestamp, Unit: table.Millisecond}, fld("n", table.Int64), fld("s", table.String)},
		[][]any{{"u1", "1", at(3), 13, "a"}, {"u1", "2", at(4), 14, "b"}, {"u2", "1", at(11), 21, "c"}}, 10)
	uv := build([]table.Field{fld("user", table.String), {Name: "d", Type: table.Date}, fld("n", table.Int64)},
		[][]any{{"u1", at(0), 7}, {"u2", at(0), 8}}, 10)
	views := []View{
		{Name: "pair", Source: us, JoinKeys: []string{"user", "shop"}, TimestampField: "t",
			Features: []Feature{{Name: "n", Type: table.Float64}, {Name: "s"}}},
		{Name: "user", Source: uv, JoinKeys: []string{"user"}, TimestampField: "d",
			Features: []Feature{{Name: "n", Type: table.Int64}}},
	}
	if _, err := Schema(ent.Schema(), views, Options{}); err == nil {
		t.Fatal("duplicate output column n accepted without full names")
	}
	rows, st, err := run(t, ent, views, Options{FullFeatureNames: true})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]any{
		{"u1", int64(1), at(10).UnixNano(), 13.0, "a", int64(7)},
		{"u1", int64(2), at(10).UnixNano(), 14.0, "b", int64(7)},
		{"u2", int64(1), at(10).UnixNano(), nil, nil, int64(8)},
	}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Errorf("rows\n%v\nwant\n%v", rows, want)
	}
	sch, _ := Schema(ent.Schema(), views, Options{FullFeatureNames: true})
	if got := fmt.Sprint(sch.Names()); got != "[user shop event_timestamp pair__n pair__s user__n]" {
		t.Errorf("columns %s", got)
	}
	if st.Matched[0] != 2 || st.Matched[1] != 3 {
		t.Errorf("matched %v", st.Matched)
	}
}

func TestSchemaErrors(t *testing.T) {
	ent := build([]table.Field{fld("id", table.Int64), ts("event_timestamp")}, nil, 10)
	src := func() *memReader {
		return build([]table.Field{fld("id", table.Int64), ts("ts"), fld("x", table.String), fld("n", table.Int64)}, nil, 10)
	}
	cases := []struct {
		name string
		v    View
		opts Options
	}{
		{"no join keys", View{Name: "v", Source: src(), TimestampField: "ts"}, Options{}},
		{"missing key in source", View{Name: "v", Source: src(), JoinKeys: []string{"nope"}, TimestampField: "ts"}, Options{}},
		{"missing timestamp", View{Name: "v", Source: src(), JoinKeys: []string{"id"}, TimestampField: "nope"}, Options{}},
		{"timestamp not a time", View{Name: "v", Source: src(), JoinKeys: []string{"id"}, TimestampField: "n"}, Options{}},
		{"missing feature", View{Name: "v", Source: src(), JoinKeys: []string{"id"}, TimestampField: "ts", Features: []Feature{{Name: "y"}}}, Options{}},
		{"string as int", View{Name: "v", Source: src(), JoinKeys: []string{"id"}, TimestampField: "ts", Features: []Feature{{Name: "x", Type: table.Int64}}}, Options{}},
		{"entity timestamp missing", View{Name: "v", Source: src(), JoinKeys: []string{"id"}, TimestampField: "ts"}, Options{TimestampField: "t"}},
		{"feature named like an entity column", View{Name: "v", Source: src(), JoinKeys: []string{"id"}, TimestampField: "ts", Features: []Feature{{Name: "id"}}}, Options{}},
	}
	for _, c := range cases {
		if _, err := Schema(ent.Schema(), []View{c.v}, c.opts); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
}

// naive is the O(n·m) definition: for every entity row, scan every source
// row.
func naive(ent, src [][]any, keys []int, srcKeys []int, entT, srcT, srcC, feat int, ttl time.Duration) []any {
	out := make([]any, len(ent))
	for i, e := range ent {
		et, ok := e[entT].(time.Time)
		if !ok {
			continue
		}
		best := -1
		for j, s := range src {
			match := true
			for k := range keys {
				a, b := e[keys[k]], s[srcKeys[k]]
				if a == nil || b == nil || fmt.Sprint(a) != fmt.Sprint(b) {
					match = false
				}
			}
			st, ok := s[srcT].(time.Time)
			if !match || !ok || st.After(et) || (ttl > 0 && st.Before(et.Add(-ttl))) {
				continue
			}
			if best < 0 {
				best = j
				continue
			}
			bt := src[best][srcT].(time.Time)
			switch {
			case st.After(bt):
				best = j
			case st.Equal(bt):
				if srcC < 0 {
					best = j
					continue
				}
				c, cok := s[srcC].(time.Time)
				bc, bok := src[best][srcC].(time.Time)
				if !bok || (cok && !c.Before(bc)) {
					best = j
				}
			}
		}
		if best >= 0 {
			out[i] = src[best][feat]
		}
	}
	return out
}

func TestPropertyAgainstNaive(t *testing.T) {
	matched, nulls := 0, 0
	defer func() {
		if matched < 100 || nulls < 100 {
			t.Errorf("weak property test: %d matches, %d nulls", matched, nulls)
		}
	}()
	for seed := uint64(0); seed < 200; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		nkeys := 1 + r.IntN(6)
		key := func() any {
			if r.IntN(15) == 0 {
				return nil
			}
			return int64(r.IntN(nkeys))
		}
		hour := func() any {
			if r.IntN(20) == 0 {
				return nil
			}
			return at(r.IntN(12)).Add(time.Duration(r.IntN(2)) * time.Minute)
		}
		var ent, src [][]any
		for i := r.IntN(30); i > 0; i-- {
			ent = append(ent, []any{key(), fmt.Sprint(r.IntN(3)), hour(), int64(i)})
		}
		for i := r.IntN(60); i > 0; i-- {
			var x any = int64(r.IntN(1000))
			if r.IntN(10) == 0 {
				x = nil
			}
			src = append(src, []any{hour(), fmt.Sprint(key()), key(), hour(), x})
		}
		// Composite key (id int64, g string) against the source's
		// (id int64, g string-of-int): the second key compares as text.
		for i := range src {
			if src[i][1] == "<nil>" {
				src[i][1] = nil
			}
			if r.IntN(2) == 0 && len(ent) > 0 {
				src[i][1] = ent[r.IntN(len(ent))][1]
			}
		}
		ttl := time.Duration(r.IntN(4)) * time.Hour
		created := r.IntN(2) == 0
		unit := []table.TimeUnit{table.Millisecond, table.Microsecond, table.Nanosecond}[r.IntN(3)]
		entR := build([]table.Field{fld("id", table.Int64), fld("g", table.String), ts("event_timestamp"), fld("row", table.Int64)}, ent, 1+r.IntN(7))
		srcR := build([]table.Field{{Name: "t", Type: table.Timestamp, Unit: unit}, fld("g", table.String), fld("id", table.Int64),
			{Name: "c", Type: table.Timestamp, Unit: unit}, fld("x", table.Int64)}, src, 1+r.IntN(9))
		v := View{Name: "v", Source: srcR, JoinKeys: []string{"id", "g"}, TimestampField: "t", TTL: ttl,
			Features: []Feature{{Name: "x"}}}
		srcC := -1
		if created {
			v.CreatedField, srcC = "c", 3
		}
		rows, _, err := run(t, entR, []View{v}, Options{})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		want := naive(ent, src, []int{0, 1}, []int{2, 1}, 2, 0, srcC, 4, ttl)
		if len(rows) != len(ent) {
			t.Fatalf("seed %d: %d rows, want %d", seed, len(rows), len(ent))
		}
		for i := range rows {
			if want[i] == nil {
				nulls++
			} else {
				matched++
			}
			if rows[i][3] != ent[i][3] || rows[i][4] != want[i] {
				t.Fatalf("seed %d row %d: got row %v x %v, want row %v x %v (ttl %v created %v)", seed, i, rows[i][3], rows[i][4], ent[i][3], want[i], ttl, created)
			}
		}
	}
}

func TestParquetRoundTrip(t *testing.T) {
	ent := build([]table.Field{fld("id", table.Int64), ts("event_timestamp")}, [][]any{{1, at(5)}, {2, at(5)}}, 10)
	src := build([]table.Field{fld("id", table.Int64), ts("ts"), fld("s", table.String)}, [][]any{{1, at(1), "one"}}, 10)
	views := []View{{Name: "v", Source: src, JoinKeys: []string{"id"}, TimestampField: "ts", Features: []Feature{{Name: "s", Type: table.String}}}}
	sch, err := Schema(ent.Schema(), views, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := table.NewParquetWriter(&buf, sch, table.ParquetWriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Join(context.Background(), ent, views, Options{}, w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	rd, err := table.OpenReaderAt(context.Background(), bytes.NewReader(buf.Bytes()), int64(buf.Len()), "x.parquet", table.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := rd.Next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c := &b.Columns[2]
	if b.Len != 2 || c.Str(0) != "one" || !c.Null(1) {
		t.Errorf("read back %d rows, s = %q null(1)=%v", b.Len, c.Str(0), c.Null(1))
	}
}

// TestManyKeysParallel has enough keys for the merge to run in several
// goroutines: every key must still get its own row.
func TestManyKeysParallel(t *testing.T) {
	const n = 20000
	var ents, src [][]any
	for k := 0; k < n; k++ {
		ents = append(ents, []any{int64(n - 1 - k), at(2)})
		for h := 3; h >= 1; h-- {
			src = append(src, []any{int64(k), at(h), int64(k*10 + h)})
		}
	}
	v := View{Name: "v", Source: build([]table.Field{fld("id", table.Int64), ts("ts"), fld("x", table.Int64)}, src, 4096),
		JoinKeys: []string{"id"}, TimestampField: "ts", Features: []Feature{{Name: "x"}}}
	rows, st, err := run(t, build([]table.Field{fld("id", table.Int64), ts("event_timestamp")}, ents, 1000), []View{v}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rows {
		if k := int64(n - 1 - i); r[2] != k*10+2 {
			t.Fatalf("row %d (key %d): x = %v, want %d", i, k, r[2], k*10+2)
		}
	}
	if st.Matched[0] != n {
		t.Errorf("matched %d", st.Matched[0])
	}
}

func TestFarTimesAndConversions(t *testing.T) {
	far := time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)
	// Seconds-resolution timestamps written as microseconds: 9999 does not
	// fit in nanoseconds, and must still sort after 2026.
	ent := build([]table.Field{fld("id", table.Int64), ts("event_timestamp")}, [][]any{{1, at(5)}, {2, far}, {3, at(5)}, {1, far}}, 10)
	src := build([]table.Field{fld("id", table.Int64), ts("ts"), fld("f", table.Float64)},
		[][]any{{1, at(1), 1.0}, {1, far, 9.0}, {2, at(1), 3.0}, {2, at(2), 4.0}, {3, at(1), math.NaN()}}, 10)
	v := View{Name: "v", Source: src, JoinKeys: []string{"id"}, TimestampField: "ts", Features: []Feature{{Name: "f", Type: table.Int64}}}
	rows, _, err := run(t, ent, []View{v}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(rows[0][2], rows[1][2], rows[2][2], rows[3][2]); got != "1 4 <nil> 9" {
		t.Errorf("features %s, want 1 4 <nil> 9", got)
	}
	bad := build([]table.Field{fld("id", table.Int64), ts("ts"), fld("f", table.Float64)}, [][]any{{1, at(1), 1.5}}, 10)
	v.Source = bad
	if _, _, err := run(t, build([]table.Field{fld("id", table.Int64), ts("event_timestamp")}, [][]any{{1, at(5)}}, 10), []View{v}, Options{}); err == nil {
		t.Error("1.5 read as an int64 feature")
	}
}
