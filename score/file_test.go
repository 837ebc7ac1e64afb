package score

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kiln-ml/kiln/dataset/table"
	kruntime "github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// writeTable writes one batch as a table file of the format its name says.
func writeTable(t testing.TB, path string, s table.Schema, b *table.Batch) {
	t.Helper()
	f, err := table.DetectFormat(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := table.NewWriter(&buf, s, f)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// readTable reads a whole table file into one schema and row-major cells
// (as text, for comparisons).
func readTable(t testing.TB, path string) (table.Schema, [][]string) {
	t.Helper()
	ctx := context.Background()
	r, err := table.Open(ctx, path, table.Options{InferRows: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s := r.Schema()
	var rows [][]string
	for {
		b, err := r.Next(ctx)
		if err != nil {
			break
		}
		for i := range b.Len {
			row := make([]string, len(b.Columns))
			for c := range b.Columns {
				row[c] = b.Columns[c].Format(i, &s.Fields[c])
			}
			rows = append(rows, row)
		}
	}
	return s, rows
}

// rf100Table is the forest's reference inputs as a table (id, f0..f3,
// NaN as null) with the reference outputs.
func rf100Table(t testing.TB) (table.Schema, *table.Batch, []int64, []float64) {
	t.Helper()
	var in, exp struct {
		Inputs, Outputs []struct {
			Data  []any
			Shape []int
		}
	}
	for _, f := range []struct {
		name string
		v    any
	}{{"inputs.json", &in}, {"expected.json", &exp}} {
		b, err := os.ReadFile(filepath.Join(rf100Dir, f.name))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, f.v); err != nil {
			t.Fatal(err)
		}
	}
	x := in.Inputs[0]
	rows := x.Shape[0]
	s := table.Schema{Fields: []table.Field{{Name: "id", Type: table.Int64}}}
	b := &table.Batch{Len: rows, Columns: []table.Column{{Type: table.Int64, Ints: make([]int64, rows)}}}
	for i := range rows {
		b.Columns[0].Ints[i] = int64(100 + i)
	}
	for c := range 4 {
		s.Fields = append(s.Fields, table.Field{Name: fmt.Sprintf("f%d", c), Type: table.Float64, Nullable: true})
		col := table.Column{Type: table.Float64, Floats: make([]float64, rows), Valid: table.NewBitmap(rows)}
		for i := range rows {
			switch v := x.Data[i*4+c].(type) {
			case float64:
				col.Floats[i] = v
			default: // "NaN"
				col.Valid.Set(i, false)
			}
		}
		b.Columns = append(b.Columns, col)
	}
	var labels []int64
	for _, v := range exp.Outputs[0].Data {
		labels = append(labels, int64(v.(float64)))
	}
	var probs []float64
	for _, v := range exp.Outputs[1].Data {
		probs = append(probs, v.(float64))
	}
	return s, b, labels, probs
}

// TestFileFormats scores the forest's reference inputs from each format
// to each format and checks the predictions against the reference.
func TestFileFormats(t *testing.T) {
	m := loadRF100(t)
	s, b, labels, probs := rf100Table(t)
	dir := t.TempDir()
	formats := []string{"csv", "parquet", "jsonl"}
	for _, inF := range formats {
		in := filepath.Join(dir, "in."+inF)
		writeTable(t, in, s, b)
		for _, outF := range formats {
			t.Run(inF+"_to_"+outF, func(t *testing.T) {
				out := filepath.Join(dir, inF+"-out."+outF)
				res, err := File(context.Background(), m, nil, in, out, FileOptions{
					Options:   Options{Workers: 2, BatchRows: 10},
					Columns:   Columns{Keep: []string{"id"}, Features: []string{"f0", "f1", "f2", "f3"}},
					ChunkRows: 25,
				})
				if err != nil {
					t.Fatal(err)
				}
				wantCols := []string{"id", "label", "probabilities_0", "probabilities_1", "probabilities_2"}
				if res.Rows != int64(b.Len) || !reflect.DeepEqual(res.Columns, wantCols) {
					t.Errorf("result = %+v", res)
				}
				if _, err := os.Stat(PartialDir(out)); !os.IsNotExist(err) {
					t.Errorf("partial directory left behind: %v", err)
				}
				os, rows := readTable(t, out)
				if !reflect.DeepEqual(os.Names(), wantCols) {
					t.Fatalf("output columns %v, want %v", os.Names(), wantCols)
				}
				if len(rows) != b.Len {
					t.Fatalf("%d output rows, want %d", len(rows), b.Len)
				}
				for i, row := range rows {
					if row[0] != fmt.Sprint(100+i) || row[1] != fmt.Sprint(labels[i]) {
						t.Fatalf("row %d = %v, want id %d label %d", i, row, 100+i, labels[i])
					}
					for k := range 3 {
						var p float64
						fmt.Sscan(row[2+k], &p)
						if math.Abs(p-probs[3*i+k]) > 1e-6 {
							t.Fatalf("row %d probability %d = %v, want %v", i, k, p, probs[3*i+k])
						}
					}
				}
			})
		}
	}
}

// interrupting cancels the run after a number of predictions, as SIGINT
// does to kiln score.
type interrupting struct {
	kruntime.Model
	after  int64
	n      atomic.Int64
	cancel context.CancelFunc
}

func (m *interrupting) Predict(ctx context.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if m.n.Add(1) == m.after {
		m.cancel()
	}
	return m.Model.Predict(ctx, in)
}

func randomForestTable(rows int, seed uint64) (table.Schema, *table.Batch) {
	rng := rand.New(rand.NewPCG(seed, 7))
	s := table.Schema{Fields: []table.Field{{Name: "id", Type: table.String}}}
	ids := table.Column{Type: table.String}
	for i := range rows {
		ids.Strs.AppendString(fmt.Sprintf("row-%05d", i))
	}
	b := &table.Batch{Len: rows, Columns: []table.Column{ids}}
	for c := range 4 {
		s.Fields = append(s.Fields, table.Field{Name: fmt.Sprintf("f%d", c), Type: table.Float64})
		v := make([]float64, rows)
		for i := range v {
			v[i] = math.Round(rng.NormFloat64()*1e4) / 1e4
		}
		b.Columns = append(b.Columns, table.Column{Type: table.Float64, Floats: v})
	}
	return s, b
}

// TestFileResume interrupts a run, resumes it and checks that the output
// is the same as an uninterrupted run's.
func TestFileResume(t *testing.T) {
	m := loadRF100(t)
	s, b := randomForestTable(3000, 1)
	for _, f := range []string{"csv", "parquet", "jsonl"} {
		t.Run(f, func(t *testing.T) {
			dir := t.TempDir()
			in := filepath.Join(dir, "in."+f)
			writeTable(t, in, s, b)
			opts := FileOptions{
				Options:   Options{Workers: 3, BatchRows: 50},
				Columns:   Columns{KeepAll: true, Features: []string{"f0", "f1", "f2", "f3"}},
				ChunkRows: 200,
				ModelID:   "rf100",
			}
			whole := filepath.Join(dir, "whole."+f)
			if _, err := File(context.Background(), m, nil, in, whole, opts); err != nil {
				t.Fatal(err)
			}

			out := filepath.Join(dir, "resumed."+f)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			im := &interrupting{Model: m, after: 25, cancel: cancel}
			_, err := File(ctx, im, nil, in, out, opts)
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("interrupted run: err = %v", err)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Fatalf("an interrupted run left %s: %v", out, err)
			}
			var j journal
			jb, err := os.ReadFile(filepath.Join(PartialDir(out), journalFile))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(jb, &j); err != nil {
				t.Fatal(err)
			}
			if j.Rows == 0 || j.Rows >= 3000 || len(j.Chunks) == 0 {
				t.Fatalf("journal after the interruption: %d rows in %d chunks", j.Rows, len(j.Chunks))
			}
			// A stray half-written chunk is discarded on resume.
			if err := os.WriteFile(filepath.Join(PartialDir(out), "chunk-999999."+f+".tmp"), []byte("junk"), 0o644); err != nil {
				t.Fatal(err)
			}

			// Other options do not resume.
			other := opts
			other.Resume, other.Columns.KeepAll = true, false
			if _, err := File(context.Background(), m, nil, in, out, other); !errors.Is(err, ErrResume) {
				t.Fatalf("resume with other options: err = %v, want ErrResume", err)
			}

			opts.Resume = true
			res, err := File(context.Background(), m, nil, in, out, opts)
			if err != nil {
				t.Fatal(err)
			}
			if res.Resumed != j.Rows || res.Rows != 3000 {
				t.Errorf("result %+v, want %d resumed of 3000", res, j.Rows)
			}
			if f == "parquet" {
				ws, wrows := readTable(t, whole)
				rs, rrows := readTable(t, out)
				if !reflect.DeepEqual(ws, rs) || !reflect.DeepEqual(wrows, rrows) {
					t.Errorf("resumed output differs from the uninterrupted one")
				}
				return
			}
			a, _ := os.ReadFile(whole)
			c, _ := os.ReadFile(out)
			if !bytes.Equal(a, c) {
				t.Errorf("resumed output (%d bytes) differs from the uninterrupted one (%d bytes)", len(c), len(a))
			}
			if !strings.Contains(string(a), "row-02999") {
				t.Errorf("the last row is missing from the output")
			}
		})
	}
	t.Run("nothing to resume", func(t *testing.T) {
		dir := t.TempDir()
		in := filepath.Join(dir, "in.csv")
		writeTable(t, in, s, b)
		_, err := File(context.Background(), m, nil, in, filepath.Join(dir, "out.csv"), FileOptions{Resume: true, Columns: Columns{Features: []string{"f0", "f1", "f2", "f3"}}})
		if !errors.Is(err, ErrResume) {
			t.Fatalf("err = %v, want ErrResume", err)
		}
	})
}

func TestFileErrors(t *testing.T) {
	m := loadRF100(t)
	s, b := randomForestTable(10, 2)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.csv")
	writeTable(t, in, s, b)
	tests := []struct {
		name string
		out  string
		opts FileOptions
		want string
	}{
		{"unknown output format", "out", FileOptions{}, "cannot tell the output format"},
		{"unknown kept column", "out.csv", FileOptions{Columns: Columns{Keep: []string{"nope"}, Features: []string{"f0", "f1", "f2", "f3"}}}, `no column "nope"`},
		{"unknown feature", "out.csv", FileOptions{Columns: Columns{Features: []string{"f0", "f9"}}}, `no column "f9"`},
		{"text column fed to the model", "out.csv", FileOptions{}, "takes 4 columns, the table has 5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := File(context.Background(), m, nil, in, filepath.Join(dir, tt.out), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	t.Run("kept column named like a prediction", func(t *testing.T) {
		s2, b2 := s.Clone(), b
		s2.Fields[0].Name = "label"
		in2 := filepath.Join(dir, "in2.csv")
		writeTable(t, in2, s2, b2)
		_, err := File(context.Background(), m, nil, in2, filepath.Join(dir, "o.csv"), FileOptions{Columns: Columns{KeepAll: true, Features: []string{"f0", "f1", "f2", "f3"}}})
		if err == nil || !strings.Contains(err.Error(), `kept column "label"`) {
			t.Fatalf("err = %v", err)
		}
	})
}
