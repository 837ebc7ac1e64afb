package table

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"testing"
)

// fuzzRead opens data in format f and reads it to the end: it must never
// panic, and every batch it returns must match the schema.
func fuzzRead(t *testing.T, data []byte, f Format, opts Options) {
	ctx := context.Background()
	opts.Format = f
	r, err := OpenReaderAt(ctx, bytes.NewReader(data), int64(len(data)), "", opts)
	if err != nil {
		return
	}
	defer r.Close()
	s := r.Schema()
	for range 1000 {
		b, err := r.Next(ctx)
		if errors.Is(err, io.EOF) || err != nil {
			return
		}
		if err := b.Check(s); err != nil {
			t.Fatalf("batch does not match schema %+v: %v", s, err)
		}
	}
}

func FuzzCSV(f *testing.F) {
	for _, seed := range []string{
		"a,b\n1,2\n",
		"id,x,name\n1,1.5,\"q,\"\"x\"\"\"\n2,NA,y\n",
		"t,d\n2024-01-01 10:00:00,2024-01-01\n,2024-02-30\n",
		"a\nTrue\nfalse\n\n",
		"\ufeffa;b\n'x;y';2\n",
		"a,a,\n1,2,3\n4\n",
	} {
		f.Add([]byte(seed), uint8(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		opts := Options{BatchRows: 3, InferRows: int(mode%4) - 1}
		if mode&4 != 0 {
			opts.CSV = CSVOptions{Delimiter: ';', Quote: '\''}
		}
		if mode&8 != 0 {
			opts.CSV.NoHeader = true
		}
		fuzzRead(t, data, CSV, opts)
	})
}

func FuzzJSONL(f *testing.F) {
	for _, seed := range []string{
		`{"a": 1, "b": "x"}` + "\n" + `{"a": 2.5, "b": null}` + "\n",
		`{"s": "\u00e9\ud83d\ude00\n", "t": "2024-01-01T00:00:00Z"}`,
		`{"a": {"b": 1}}`,
		`{"a": [1, 2]}`,
		`{"a": true}` + "\n\n" + `{"a": false, "c": -1e5}`,
		`{"a": 1, "a": 2}`,
		`{"x": "\ud800"}`,
	} {
		f.Add([]byte(seed), uint8(0))
	}
	f.Fuzz(func(t *testing.T, data []byte, mode uint8) {
		fuzzRead(t, data, JSONL, Options{BatchRows: 2, InferRows: int(mode%4) - 1})
	})
}

func FuzzParquet(f *testing.F) {
	for _, name := range []string{"required.parquet", "nested_list.parquet", "nested_struct.parquet"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzRead(t, data, Parquet, Options{BatchRows: 4})
	})
}
