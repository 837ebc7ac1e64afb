package feedback

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/errdefs"
)

func decodeAll(format, in string, opts DecodeOptions) ([]Label, error) {
	var out []Label
	err := Decode(strings.NewReader(in), format, opts, func(l Label) error {
		out = append(out, l)
		return nil
	})
	return out, err
}

func show(ls []Label) string {
	var parts []string
	for _, l := range ls {
		parts = append(parts, fmt.Sprintf("%s/%d=%#v", l.RequestID, l.Row, l.Value))
	}
	return strings.Join(parts, " ")
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name, format, in string
		opts             DecodeOptions
		want             string // "" with err
		err              string
	}{
		{name: "csv", format: FormatCSV, in: "\ufeffrequest_id,row,label,other\nr1,0,cat,x\n007,1,1,y\nr3,,True,z\nr4,2.0,0.25,\n",
			want: `r1/0="cat" 007/1=1 r3/0=true r4/2=0.25`},
		{name: "csv no row", format: FormatCSV, in: "label,request_id\n\"a,b\",x\n", want: `x/0="a,b"`},
		{name: "csv columns", format: FormatCSV, in: "id,y,n\nq,5,3\n", opts: DecodeOptions{IDColumn: "id", LabelColumn: "y", RowColumn: "n"}, want: `q/3=5`},
		{name: "csv empty", format: FormatCSV, in: "", want: ""},
		{name: "csv no id", format: FormatCSV, in: "rid,label\n1,2\n", err: `line 1: no request id column "request_id"`},
		{name: "csv no label col", format: FormatCSV, in: "request_id\n1\n", err: `line 1: no label column "label"`},
		{name: "csv empty label", format: FormatCSV, in: "request_id,label\na,1\nb,\n", err: "line 3: empty label"},
		{name: "csv bad row", format: FormatCSV, in: "request_id,row,label\na,1.5,1\n", err: `line 2: row "1.5" is not an integer`},
		{name: "csv neg row", format: FormatCSV, in: "request_id,row,label\na,0,1\na,-1,1\n", err: "line 3: request \"a\": row -1 is negative"},
		{name: "csv empty id", format: FormatCSV, in: "request_id,label\n,1\n", err: "line 2: empty request id"},
		{name: "csv width", format: FormatCSV, in: "request_id,label\na,1,2\n", err: "line 2: wrong number of fields"},
		{name: "jsonl", format: FormatJSONL, in: "{\"request_id\":\"a\",\"label\":\"x\"}\n\n{\"request_id\":12,\"row\":2,\"label\":1.5,\"z\":[1]}\r\n{\"request_id\":\"c\",\"row\":null,\"label\":false}",
			want: `a/0="x" 12/2=1.5 c/0=false`},
		{name: "jsonl bad", format: FormatJSONL, in: "{\"request_id\":\"a\",\"label\":1}\n{\"request_id\":\"b\"\n", err: "line 2: not a JSON object"},
		{name: "jsonl null label", format: FormatJSONL, in: "{\"request_id\":\"a\",\"label\":null}\n", err: "line 1: request \"a\" row 0: no label (null)"},
		{name: "jsonl object label", format: FormatJSONL, in: "{\"request_id\":\"a\",\"label\":{}}\n", err: "line 1: request \"a\" row 0: the label is a map"},
		{name: "jsonl no id", format: FormatJSONL, in: "{\"label\":1}\n", err: `line 1: no "request_id" field`},
		{name: "jsonl float id", format: FormatJSONL, in: "{\"request_id\":1.5,\"label\":1}\n", err: `line 1: "request_id": want a string or an integer`},
		{name: "json object", format: FormatJSON, in: `{"request_id":"a","row":1,"label":"x"}`, want: `a/1="x"`},
		{name: "json array", format: FormatJSON, in: `[{"request_id":"a","label":1},{"request_id":"b","label":true}]`, want: `a/0=1 b/0=true`},
		{name: "json wrapped", format: FormatJSON, in: ` {"labels":[{"request_id":"a","label":1}]} `, want: `a/0=1`},
		{name: "json empty array", format: FormatJSON, in: `[]`, want: ``},
		{name: "json item", format: FormatJSON, in: `[{"request_id":"a","label":1},3]`, err: "label 2: not a JSON object"},
		{name: "json trailing", format: FormatJSON, in: `{"request_id":"a","label":1} {}`, err: "data after the document"},
		{name: "json empty", format: FormatJSON, in: ``, err: "empty JSON body"},
		{name: "json scalar", format: FormatJSON, in: `3`, err: "want a label object"},
		{name: "json wrapped bad", format: FormatJSON, in: `{"labels":3}`, err: `"labels" is not an array`},
		{name: "format", format: "xml", in: ``, err: `unknown label format "xml"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeAll(tc.format, tc.in, tc.opts)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("err %v, want %q (got %s)", err, tc.err, show(got))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s := show(got); s != tc.want {
				t.Fatalf("got  %s\nwant %s", s, tc.want)
			}
			for _, l := range got {
				if l.Source != tc.format {
					t.Fatalf("source %q", l.Source)
				}
			}
		})
	}
}

func writeParquet(t *testing.T, s table.Schema, b *table.Batch) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := table.NewParquetWriter(&buf, s, table.ParquetWriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecodeParquet(t *testing.T) {
	s := table.Schema{Fields: []table.Field{{Name: "request_id", Type: table.Int64}, {Name: "row", Type: table.Int64},
		{Name: "label", Type: table.String, Nullable: true}, {Name: "x", Type: table.Float64}}}
	b := &table.Batch{Len: 3, Columns: []table.Column{
		{Type: table.Int64, Ints: []int64{10, 11, 12}},
		{Type: table.Int64, Ints: []int64{0, 1, 0}},
		{Type: table.String},
		{Type: table.Float64, Floats: []float64{1, 2, 3}},
	}}
	for _, v := range []string{"a", "b", "c"} {
		b.Columns[2].Strs.AppendString(v)
	}
	data := writeParquet(t, s, b)
	var got []Label
	collect := func(l Label) error { got = append(got, l); return nil }
	if err := Decode(bytes.NewReader(data), FormatParquet, DecodeOptions{}, collect); err != nil {
		t.Fatal(err)
	}
	if show(got) != `10/0="a" 11/1="b" 12/0="c"` {
		t.Fatalf("got %s", show(got))
	}
	// From a file, and through a plain reader.
	path := filepath.Join(t.TempDir(), "l.parquet")
	os.WriteFile(path, data, 0o644)
	f, _ := os.Open(path)
	defer f.Close()
	got = nil
	if err := Decode(f, FormatParquet, DecodeOptions{}, collect); err != nil || len(got) != 3 {
		t.Fatalf("file: %v %d", err, len(got))
	}
	got = nil
	if err := Decode(struct{ *strings.Reader }{strings.NewReader(string(data))}, FormatParquet, DecodeOptions{LabelColumn: "x"}, collect); err != nil || show(got) != "10/0=1 11/1=2 12/0=3" {
		t.Fatalf("reader: %v %s", err, show(got))
	}
	// A null label is named by its row.
	b.Columns[2].Valid = table.NewBitmap(3)
	b.Columns[2].Valid.Set(1, false)
	data = writeParquet(t, s, b)
	if err := Decode(bytes.NewReader(data), FormatParquet, DecodeOptions{}, collect); err == nil || !strings.Contains(err.Error(), "row 2: no label (null)") {
		t.Fatalf("null: %v", err)
	}
	if err := Decode(bytes.NewReader(data), FormatParquet, DecodeOptions{IDColumn: "id"}, collect); err == nil || !strings.Contains(err.Error(), `no column "id"`) {
		t.Fatalf("no id: %v", err)
	}
	if err := Decode(strings.NewReader("PAR1 nope"), FormatParquet, DecodeOptions{}, collect); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("garbage: %v", err)
	}
}

func TestFormats(t *testing.T) {
	for ct, want := range map[string]string{"application/json; charset=utf-8": FormatJSON, "": FormatJSON, "text/csv": FormatCSV,
		"application/x-ndjson": FormatJSONL, "application/vnd.apache.parquet": FormatParquet} {
		if got, err := FormatOfContentType(ct); err != nil || got != want {
			t.Errorf("%q: %q %v", ct, got, err)
		}
	}
	if _, err := FormatOfContentType("text/plain"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("text/plain: %v", err)
	}
	for name, want := range map[string]string{"a.csv": FormatCSV, "b.JSONL": FormatJSONL, "c.ndjson": FormatJSONL, "d.json": FormatJSON, "e.parquet": FormatParquet} {
		if got, err := FormatOfFile(name); err != nil || got != want {
			t.Errorf("%s: %q %v", name, got, err)
		}
	}
	if _, err := FormatOfFile("x.txt"); err == nil {
		t.Error("x.txt has a format")
	}
}

// fuzzDecode checks that a decoder never panics, that its errors are
// invalid arguments, and that every label it yields is valid.
func fuzzDecode(t *testing.T, format string, data []byte) {
	err := Decode(bytes.NewReader(data), format, DecodeOptions{}, func(l Label) error {
		if err := l.Validate(); err != nil {
			t.Fatalf("invalid label yielded: %+v: %v", l, err)
		}
		return nil
	})
	if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("not an invalid argument: %v", err)
	}
}

func FuzzDecodeCSV(f *testing.F) {
	f.Add([]byte("request_id,row,label\na,0,1\nb,1,cat\n"))
	f.Add([]byte("label,request_id\n\"x\"\"y\",1\n"))
	f.Add([]byte("request_id,label\n\"unterminated,1\n"))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzDecode(t, FormatCSV, data) })
}

func FuzzDecodeJSONL(f *testing.F) {
	f.Add([]byte("{\"request_id\":\"a\",\"label\":1}\n{\"request_id\":2,\"row\":1,\"label\":true}\n"))
	f.Add([]byte("{\"request_id\":\"a\",\"label\":{\"x\":1}}\n"))
	f.Add([]byte("{\"request_id\":\"a\",\"row\":1e30,\"label\":1}"))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzDecode(t, FormatJSONL, data) })
}

func FuzzDecodeJSON(f *testing.F) {
	f.Add([]byte(`{"labels":[{"request_id":"a","label":"x"}]}`))
	f.Add([]byte(`[{"request_id":"a","row":2,"label":1.5}]`))
	f.Add([]byte(`{"request_id":"a","labels":[],"label":1}`))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzDecode(t, FormatJSON, data) })
}
