package table

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/errdefs"
)

// expectedFile is what testdata/gen.py writes next to each fixture.
type expectedFile struct {
	Rows    int `json:"rows"`
	Columns []struct {
		Name     string `json:"name"`
		Type     string `json:"type"`
		Unit     string `json:"unit"`
		UTC      bool   `json:"utc"`
		Nullable bool   `json:"nullable"`
		Values   struct {
			Index  []int `json:"index"`
			Values []any `json:"values"`
		} `json:"values"`
	} `json:"columns"`
}

func loadExpected(t *testing.T, name string) expectedFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var e expectedFile
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

// concat reads every batch of r into one batch (tests only).
func readTable(t *testing.T, path string, opts Options) (Schema, *Batch) {
	t.Helper()
	ctx := context.Background()
	r, err := Open(ctx, path, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	defer r.Close()
	s := r.Schema()
	batches, err := ReadAll(ctx, r)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return s, concat(t, s, batches)
}

func concat(t *testing.T, s Schema, batches []*Batch) *Batch {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewJSONLWriter(&buf, s)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, b := range batches {
		if err := b.Check(s); err != nil {
			t.Fatalf("batch does not match schema: %v", err)
		}
		total += b.Len
	}
	_ = w
	out := &Batch{Len: total, Columns: make([]Column, len(s.Fields))}
	for ci := range s.Fields {
		c := &out.Columns[ci]
		c.Type = s.Fields[ci].Type
		c.Valid = NewBitmap(total)
		row := 0
		for _, b := range batches {
			src := &b.Columns[ci]
			for i := 0; i < b.Len; i++ {
				if src.Null(i) {
					c.Valid.Set(row, false)
				}
				switch c.Type {
				case Bool:
					c.Bools = append(c.Bools, src.Bools[i])
				case Int64, Timestamp, Date:
					c.Ints = append(c.Ints, src.Ints[i])
				case Float64:
					c.Floats = append(c.Floats, src.Floats[i])
				case String:
					c.Strs.Append(src.Bytes(i))
				}
				row++
			}
		}
		if c.Type == String && len(c.Strs.Offsets) == 0 {
			c.Strs.Offsets = []int32{0}
		}
	}
	return out
}

func checkAgainstPandas(t *testing.T, fixture string, opts Options) {
	t.Helper()
	want := loadExpected(t, fixture)
	s, b := readTable(t, filepath.Join("testdata", fixture), opts)
	if b.Len != want.Rows {
		t.Fatalf("%s: %d rows, pandas reads %d", fixture, b.Len, want.Rows)
	}
	if len(s.Fields) != len(want.Columns) {
		t.Fatalf("%s: columns %v, pandas reads %d", fixture, s.Names(), len(want.Columns))
	}
	for ci, wc := range want.Columns {
		f := s.Fields[ci]
		if f.Name != wc.Name || f.Type.String() != wc.Type {
			t.Errorf("%s column %d = %s %v, want %s %s", fixture, ci, f.Name, f.Type, wc.Name, wc.Type)
			continue
		}
		if f.Type == Timestamp && (string(f.Unit) != wc.Unit || f.UTC != wc.UTC) {
			t.Errorf("%s column %s: unit %s utc %v, want %s %v", fixture, f.Name, f.Unit, f.UTC, wc.Unit, wc.UTC)
		}
		if f.Nullable != wc.Nullable {
			t.Errorf("%s column %s: nullable %v, want %v", fixture, f.Name, f.Nullable, wc.Nullable)
		}
		col := &b.Columns[ci]
		bad := 0
		for k, row := range wc.Values.Index {
			wv := wc.Values.Values[k]
			if msg := cellMismatch(col, row, wv); msg != "" {
				if bad < 5 {
					t.Errorf("%s column %s row %d: %s", fixture, f.Name, row, msg)
				}
				bad++
			}
		}
	}
}

// cellMismatch compares one cell with pandas' value ("" when equal).
func cellMismatch(c *Column, row int, want any) string {
	if want == nil {
		if !c.Null(row) {
			return "got " + c.Format(row, nil) + ", want null"
		}
		return ""
	}
	if c.Null(row) {
		return "got null"
	}
	switch c.Type {
	case Bool:
		if w, ok := want.(bool); !ok || w != c.Bools[row] {
			return "bool mismatch: got " + c.Format(row, nil)
		}
	case Int64, Timestamp, Date:
		w, ok := want.(float64)
		if !ok || int64(w) != c.Ints[row] && math.Abs(w-float64(c.Ints[row])) > 1e-6*math.Abs(w) {
			return "int mismatch: got " + c.Format(row, nil)
		}
	case Float64:
		w, ok := want.(float64)
		if !ok || math.Abs(w-c.Floats[row]) > 1e-6*math.Abs(w)+1e-9 {
			return "float mismatch: got " + c.Format(row, nil)
		}
	case String:
		if w, ok := want.(string); !ok || w != c.Str(row) {
			return "string mismatch: got " + c.Str(row)
		}
	}
	return ""
}

func TestReadersMatchPandas(t *testing.T) {
	tests := []struct {
		fixture string
		opts    Options
	}{
		{"basic.csv", Options{}},
		{"basic.csv", Options{BatchRows: 7, InferRows: -1}},
		{"dialect.csv", Options{CSV: CSVOptions{Delimiter: ';', Quote: '\'', NoHeader: true}}},
		{"basic.jsonl", Options{}},
		{"basic.jsonl", Options{BatchRows: 13, InferRows: -1}},
		{"mixed.parquet", Options{}},
		{"mixed.parquet", Options{BatchRows: 333, Parallelism: 1}},
		{"mixed.parquet", Options{BatchRows: 1 << 20}},
		{"int96.parquet", Options{}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) { checkAgainstPandas(t, tt.fixture, tt.opts) })
	}
}

func TestParquetDetails(t *testing.T) {
	s, b := readTable(t, "testdata/mixed.parquet", Options{})
	cat := s.Fields[s.Index("cat")]
	if !cat.Categorical {
		t.Errorf("cat: pandas category dtype not marked categorical: %+v", cat)
	}
	tz := s.Fields[s.Index("ts_tz")]
	if tz.TimeZone != "Europe/Paris" {
		t.Errorf("ts_tz zone = %q, want Europe/Paris", tz.TimeZone)
	}
	if dec := s.Fields[s.Index("dec")]; !strings.Contains(dec.Note, "decimal(6,2)") {
		t.Errorf("dec note = %q", dec.Note)
	}
	if b.Len != 5000 {
		t.Fatalf("rows = %d", b.Len)
	}

	// Required columns are not nullable; pandas' unnamed index is skipped
	// unless asked for.
	s, _ = readTable(t, "testdata/required.parquet", Options{})
	for _, f := range s.Fields {
		if f.Nullable {
			t.Errorf("required.parquet %s nullable", f.Name)
		}
	}
	s, _ = readTable(t, "testdata/indexed.parquet", Options{})
	if got := strings.Join(s.Names(), ","); got != "k,v" {
		t.Errorf("indexed.parquet columns = %s, want k,v", got)
	}
	s, b = readTable(t, "testdata/indexed.parquet", Options{Columns: []string{"__index_level_0__", "v"}})
	if s.Fields[0].Type != Int64 || b.Columns[0].Ints[0] != 100 {
		t.Errorf("index column: %+v %v", s.Fields[0], b.Columns[0].Ints)
	}
}

func TestNestedRejected(t *testing.T) {
	tests := []struct{ file, column, kind string }{
		{"nested_list.parquet", "tags", "list"},
		{"nested_struct.parquet", "point", "struct"},
		{"nested_map.parquet", "attrs", "map"},
		{"nested.jsonl", "b", "line 3"},
	}
	ctx := context.Background()
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			r, err := Open(ctx, filepath.Join("testdata", tt.file), Options{})
			if err == nil {
				_, err = ReadAll(ctx, r)
				r.Close()
			}
			if !errors.Is(err, ErrNested) || !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("err = %v, want ErrNested", err)
			}
			if msg := err.Error(); !strings.Contains(msg, `"`+tt.column+`"`) || !strings.Contains(msg, tt.kind) {
				t.Errorf("error %q does not name column %q and %q", msg, tt.column, tt.kind)
			}
		})
	}
	// The other columns can still be read.
	s, b := readTable(t, "testdata/nested_list.parquet", Options{Columns: []string{"id"}})
	if len(s.Fields) != 1 || b.Len != 3 || b.Columns[0].Ints[2] != 3 {
		t.Errorf("projection past a nested column: %v %+v", s.Names(), b.Columns[0])
	}
}

func TestCSVErrors(t *testing.T) {
	tests := []struct {
		name, text string
		opts       Options
		sentinel   error
		contains   string
	}{
		{"empty", "", Options{}, ErrFormat, "empty"},
		{"too many fields", "a,b\n1,2\n3,4,5\n", Options{}, ErrFormat, "line 3"},
		{"bad quote", "a,b\n1,\"x\"y\n", Options{}, ErrFormat, "line 2"},
		{"late type change", "a\n1\n2\nthree\n", Options{InferRows: 2}, ErrTypeMismatch, `line 4, column "a"`},
		{"unknown column", "a\n1\n", Options{Columns: []string{"b"}}, ErrSchema, `"b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readString(tt.text, CSV, tt.opts)
			if !errors.Is(err, tt.sentinel) || !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("err = %v, want %v containing %q", err, tt.sentinel, tt.contains)
			}
		})
	}
}

func TestCSVInference(t *testing.T) {
	text := "i,f,b,s,d,t,tz,big,na,dup,dup,\n" +
		"1,1.5,True,x,2024-01-31,2024-01-31 10:00:00,2024-01-31T10:00:00+01:00,99999999999999999999,,1,2,e\n" +
		"-2,inf,false,NA,2024-02-29,2024-02-01T00:00:00.123456789,2024-01-31T09:00:00Z,1,NA,3,4,f\n"
	s, b := mustRead(t, text, CSV, Options{})
	want := map[string]Type{"i": Int64, "f": Float64, "b": Bool, "s": String, "d": Date, "t": Timestamp, "tz": Timestamp, "big": Float64, "na": Float64, "dup": Int64, "dup.1": Int64, "Unnamed: 11": String}
	for name, typ := range want {
		i := s.Index(name)
		if i < 0 || s.Fields[i].Type != typ {
			t.Errorf("column %q: %+v, want %v (schema %v)", name, s.Fields, typ, s.Names())
		}
	}
	tz := &b.Columns[s.Index("tz")]
	if tz.Ints[0] != tz.Ints[1] || !s.Fields[s.Index("tz")].UTC {
		t.Errorf("10:00+01:00 and 09:00Z should be the same instant: %v", tz.Ints)
	}
	ts := &b.Columns[s.Index("t")]
	if got := ts.Format(1, &s.Fields[s.Index("t")]); got != "2024-02-01T00:00:00.123456789" {
		t.Errorf("naive timestamp = %s", got)
	}
	if c := &b.Columns[s.Index("s")]; !c.Null(1) || c.Str(0) != "x" {
		t.Errorf("NA in a string column should be null: %v", c.Format(1, nil))
	}
	if c := &b.Columns[s.Index("f")]; !math.IsInf(c.Floats[1], 1) {
		t.Errorf("inf = %v", c.Floats[1])
	}

	// A schema overrides inference; NoDefaultNA keeps "NA" as text.
	given := Schema{Fields: []Field{{Name: "i", Type: Float64}}}
	s, b = mustRead(t, "i,s\n1,NA\n", CSV, Options{Schema: &given, CSV: CSVOptions{NoDefaultNA: true, NAValues: []string{"missing"}}})
	if s.Fields[0].Type != Float64 || b.Columns[0].Floats[0] != 1 || b.Columns[1].Str(0) != "NA" {
		t.Errorf("schema/NA options: %+v %v", s.Fields, b.Columns[1].Format(0, nil))
	}
}

func TestJSONLErrors(t *testing.T) {
	tests := []struct {
		name, text string
		sentinel   error
		contains   string
	}{
		{"not object", "[1,2]\n", ErrNested, ""},
		{"syntax", "{\"a\": 1,}\n", ErrFormat, "line 1"},
		{"nested array", "{\"a\": 1}\n{\"a\": [1]}\n", ErrNested, `line 2, column "a"`},
		{"duplicate", "{\"a\": 1, \"a\": 2}\n", ErrFormat, "duplicate"},
		{"type", "{\"a\": 1}\n{\"a\": true}\n", nil, ""},
		{"trailing", "{\"a\": 1} x\n", ErrFormat, "after"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := readString(tt.text, JSONL, Options{})
			if tt.sentinel == nil {
				if err != nil {
					t.Errorf("err = %v", err)
				}
				return
			}
			if tt.name == "not object" {
				if !errors.Is(err, ErrFormat) {
					t.Errorf("err = %v, want ErrFormat", err)
				}
				return
			}
			if !errors.Is(err, tt.sentinel) || !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("err = %v, want %v containing %q", err, tt.sentinel, tt.contains)
			}
		})
	}
	// Mixed bool and number become text; a late new key is an error.
	s, b := mustRead(t, "{\"a\": 1}\n{\"a\": true}\n", JSONL, Options{})
	if s.Fields[0].Type != String || b.Columns[0].Str(1) != "true" {
		t.Errorf("mixed JSON types: %+v", s.Fields)
	}
	_, err := readString("{\"a\": 1}\n{\"b\": 2}\n", JSONL, Options{InferRows: 1})
	if !errors.Is(err, ErrSchema) || !strings.Contains(err.Error(), `"b"`) {
		t.Errorf("late key: %v", err)
	}
}

func readString(text string, f Format, opts Options) (*Batch, error) {
	ctx := context.Background()
	opts.Format = f
	r, err := OpenReaderAt(ctx, strings.NewReader(text), int64(len(text)), "", opts)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	batches, err := ReadAll(ctx, r)
	if err != nil {
		return nil, err
	}
	if len(batches) == 0 {
		return &Batch{}, nil
	}
	return batches[0], nil
}

func mustRead(t *testing.T, text string, f Format, opts Options) (Schema, *Batch) {
	t.Helper()
	ctx := context.Background()
	opts.Format = f
	r, err := OpenReaderAt(ctx, strings.NewReader(text), int64(len(text)), "", opts)
	if err != nil {
		t.Fatal(err)
	}
	batches, err := ReadAll(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	return r.Schema(), concat(t, r.Schema(), batches)
}

// TestWritersRoundTrip writes the Parquet fixture in each format and reads
// it back.
func TestWritersRoundTrip(t *testing.T) {
	s, b := readTable(t, "testdata/mixed.parquet", Options{Columns: []string{"f64", "i64", "s", "b", "cat", "ts_ns", "ts_tz", "ts_ms", "d"}})
	for _, f := range []Format{Parquet, CSV, JSONL} {
		t.Run(string(f), func(t *testing.T) {
			var buf bytes.Buffer
			w, err := NewWriter(&buf, s, f)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Write(b.Slice(0, 2000)); err != nil {
				t.Fatal(err)
			}
			if err := w.Write(b.Slice(2000, b.Len)); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			r, err := OpenReaderAt(ctx, bytes.NewReader(buf.Bytes()), int64(buf.Len()), "out."+string(f), Options{InferRows: -1})
			if err != nil {
				t.Fatal(err)
			}
			s2 := r.Schema()
			batches, err := ReadAll(ctx, r)
			if err != nil {
				t.Fatal(err)
			}
			b2 := concat(t, s2, batches)
			if b2.Len != b.Len {
				t.Fatalf("rows %d, want %d", b2.Len, b.Len)
			}
			for ci, fld := range s.Fields {
				j := s2.Index(fld.Name)
				if j < 0 {
					t.Fatalf("column %s lost", fld.Name)
				}
				if s2.Fields[j].Type != fld.Type && !(f != Parquet && fld.Type == Bool) {
					t.Errorf("%s: type %v, want %v", fld.Name, s2.Fields[j].Type, fld.Type)
					continue
				}
				for i := 0; i < b.Len; i++ {
					got := b2.Columns[j].Format(i, &s2.Fields[j])
					want := b.Columns[ci].Format(i, &fld)
					if fld.Type == Timestamp && f != Parquet {
						// Text formats come back in ns.
						got = b2.Columns[j].Time(i, s2.Fields[j].Unit).String()
						want = b.Columns[ci].Time(i, fld.Unit).String()
						if b.Columns[ci].Null(i) {
							want = b2.Columns[j].Time(i, "ns").String()
						}
					}
					if got != want || b2.Columns[j].Null(i) != b.Columns[ci].Null(i) {
						t.Errorf("%s row %d: %q, want %q", fld.Name, i, got, want)
						break
					}
				}
			}
		})
	}
}

func TestDetectFormat(t *testing.T) {
	tests := []struct {
		name string
		head string
		want Format
	}{
		{"a.parquet", "", Parquet},
		{"x", "PAR1....", Parquet},
		{"a.jsonl", "", JSONL},
		{"x", "  {\"a\":1}", JSONL},
		{"a.CSV", "", CSV},
		{"x", "a,b\n", CSV},
	}
	for _, tt := range tests {
		got, err := DetectFormat(tt.name, []byte(tt.head))
		if err != nil || got != tt.want {
			t.Errorf("DetectFormat(%q, %q) = %v, %v; want %v", tt.name, tt.head, got, err, tt.want)
		}
	}
	if _, err := DetectFormat("a.csv.gz", nil); !errors.Is(err, ErrFormat) {
		t.Errorf("compressed: %v", err)
	}
	if _, err := DetectFormat("x", []byte{0, 1, 2}); !errors.Is(err, ErrFormat) {
		t.Errorf("binary: %v", err)
	}
}

func TestSchemaDiffAndJSON(t *testing.T) {
	a := Schema{Fields: []Field{
		{Name: "id", Type: Int64},
		{Name: "x", Type: Float64, Nullable: true},
		{Name: "gone", Type: String},
		{Name: "ts", Type: Timestamp, Unit: Nanosecond},
		{Name: "c", Type: String, Categorical: true, Categories: []string{"a", "b"}},
	}}
	b := Schema{Fields: []Field{
		{Name: "new", Type: Bool},
		{Name: "id", Type: Float64},
		{Name: "x", Type: Float64},
		{Name: "ts", Type: Timestamp, Unit: Nanosecond, UTC: true},
		{Name: "c", Type: String, Categorical: true, Categories: []string{"b", "c"}},
	}}
	got := Diff(a, b)
	want := []string{
		"removed gone",
		"added new",
		"type_changed id: int64 -> float64",
		"nullability_changed x: nullable -> not null",
		"type_changed ts: timestamp[ns] -> timestamp[ns, utc]",
		"categories_changed c: +[c] -[a]",
	}
	if len(got) != len(want) {
		t.Fatalf("Diff = %v", got)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("change %d = %q, want %q", i, got[i], want[i])
		}
	}
	if d := Diff(a, a); len(d) != 0 {
		t.Errorf("Diff(a, a) = %v", d)
	}

	js, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var back Schema
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	if d := Diff(a, back); len(d) != 0 || back.Fields[3].Unit != Nanosecond {
		t.Errorf("JSON round trip: %s -> %+v", js, back)
	}
	for _, bad := range []string{`{"fields":[]}`, `{"fields":[{"name":"a","type":"complex"}]}`, `{"fields":[{"name":"a","type":"int64"},{"name":"a","type":"bool"}]}`, `{"fields":[{"name":"t","type":"timestamp"}]}`} {
		var s Schema
		if err := json.Unmarshal([]byte(bad), &s); err == nil {
			t.Errorf("Unmarshal(%s) accepted", bad)
		}
	}
}

func TestBoundedMemory(t *testing.T) {
	// A long CSV streamed in small batches: every batch respects BatchRows.
	var sb strings.Builder
	sb.WriteString("a,b\n")
	for i := range 20000 {
		sb.WriteString("1,")
		sb.WriteString(strings.Repeat("x", i%7))
		sb.WriteByte('\n')
	}
	text := sb.String()
	ctx := context.Background()
	r, err := OpenReaderAt(ctx, strings.NewReader(text), int64(len(text)), "x.csv", Options{BatchRows: 1000, InferRows: 100})
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	for {
		b, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if b.Len > 1000 {
			t.Fatalf("batch of %d rows", b.Len)
		}
		rows += b.Len
	}
	if rows != 20000 {
		t.Errorf("rows = %d", rows)
	}
}

func TestInfer(t *testing.T) {
	ctx := context.Background()
	r, err := Open(ctx, "testdata/mixed.parquet", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s, err := Infer(ctx, r, CategoryRule{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"cat": {"blue", "green", "red"}, "low": {"x", "y"}}
	for _, f := range s.Fields {
		cats, ok := want[f.Name]
		if f.Categorical != ok || (ok && strings.Join(f.Categories, ",") != strings.Join(cats, ",")) {
			t.Errorf("%s: categorical %v %v, want %v", f.Name, f.Categorical, f.Categories, cats)
		}
		noNulls := f.Name == "i32" || f.Name == "u8" || f.Name == "f32" || f.Name == "low" || f.Name == "ts_ms" || f.Name == "ts_us"
		if f.Nullable == noNulls {
			t.Errorf("%s: nullable %v", f.Name, f.Nullable)
		}
	}
	// Small int domains count too; 5% of rows is the limit.
	text := "k,v\n" + strings.Repeat("1,a\n2,b\n3,c\n", 20) + "4,d\n"
	r2, err := OpenReaderAt(ctx, strings.NewReader(text), int64(len(text)), "x.csv", Options{})
	if err != nil {
		t.Fatal(err)
	}
	s, err = Infer(ctx, r2, CategoryRule{MaxFraction: 0.07})
	if err != nil {
		t.Fatal(err)
	}
	if f := s.Fields[0]; !f.Categorical || strings.Join(f.Categories, ",") != "1,2,3,4" {
		t.Errorf("int domain: %+v", f)
	}
	if !(CategoryRule{}).Categorical(3, 60) || (CategoryRule{}).Categorical(4, 60) {
		t.Error("default rule: 3 of 60 is categorical, 4 of 60 is not")
	}
}
