package score

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/dataset/table"
	kruntime "github.com/kiln-ml/kiln/runtime"
	_ "github.com/kiln-ml/kiln/runtime/onnx"
	"github.com/kiln-ml/kiln/tensor"
)

// doubler predicts y = 2·x for a one-column float input, sleeping a
// random while so that batches finish out of order. It fails on the
// failAt-th batch of 10 rows (1-based) when failAt > 0, and counts its calls.
type doubler struct {
	failAt   int64
	calls    atomic.Int64
	inFlight atomic.Int64
	maxIn    atomic.Int64
}

func (d *doubler) Signature() kruntime.Signature {
	return kruntime.Signature{
		Inputs:  []kruntime.TensorSpec{{Name: "x", DType: tensor.Float64, Shape: []int64{-1, 1}}},
		Outputs: []kruntime.TensorSpec{{Name: "y", DType: tensor.Float64, Shape: []int64{-1}}},
	}
}

func (d *doubler) Predict(ctx context.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	n := d.inFlight.Add(1)
	defer d.inFlight.Add(-1)
	for {
		m := d.maxIn.Load()
		if n <= m || d.maxIn.CompareAndSwap(m, n) {
			break
		}
	}
	d.calls.Add(1)
	x := in[0].Data.([]float64)
	// The failAt-th batch of 10 rows fails, by its rows: with several
	// workers the calls do not arrive in batch order.
	if d.failAt > 0 && len(x) > 0 && x[0] == float64((d.failAt-1)*10) {
		return nil, errors.New("boom")
	}
	time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = 2 * v
	}
	return []*tensor.Tensor{{Name: "y", DType: tensor.Float64, Shape: []int64{int64(len(y))}, Data: y}}, nil
}

func (d *doubler) Close() error { return nil }

// sliceReader serves a one-column table x = 0..rows-1 in batches of size.
type sliceReader struct {
	rows, size, next int
	err              error // returned instead of io.EOF, when set
}

func (r *sliceReader) Schema() table.Schema {
	return table.Schema{Fields: []table.Field{{Name: "x", Type: table.Float64}}}
}

func (r *sliceReader) Next(ctx context.Context) (*table.Batch, error) {
	if r.next >= r.rows {
		if r.err != nil {
			return nil, r.err
		}
		return nil, io.EOF
	}
	n := min(r.size, r.rows-r.next)
	v := make([]float64, n)
	for i := range v {
		v[i] = float64(r.next + i)
	}
	r.next += n
	return &table.Batch{Len: n, Columns: []table.Column{{Type: table.Float64, Floats: v}}}, nil
}

func (r *sliceReader) Close() error { return nil }

func TestEachOrder(t *testing.T) {
	tests := []struct {
		workers, readSize, batchRows, rows int
	}{
		{workers: 1, readSize: 100, batchRows: 100, rows: 1000},
		{workers: 4, readSize: 100, batchRows: 7, rows: 1000},
		{workers: 8, readSize: 13, batchRows: 64, rows: 997},
		{workers: 3, readSize: 50, batchRows: 0, rows: 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("w%d_r%d_b%d", tt.workers, tt.readSize, tt.batchRows), func(t *testing.T) {
			m := &doubler{}
			var next, progress int64
			err := Each(context.Background(), m, nil, &sliceReader{rows: tt.rows, size: tt.readSize},
				Options{Workers: tt.workers, BatchRows: tt.batchRows, Progress: func(n int64) { progress += n }},
				func(in *table.Batch, outs []*tensor.Tensor) error {
					if tt.batchRows > 0 && in.Len > tt.batchRows {
						t.Errorf("batch of %d rows, BatchRows %d", in.Len, tt.batchRows)
					}
					x, y := in.Columns[0].Floats, outs[0].Data.([]float64)
					for i := range x {
						if x[i] != float64(next) || y[i] != 2*x[i] {
							t.Fatalf("row %d: x=%v y=%v", next, x[i], y[i])
						}
						next++
					}
					return nil
				})
			if err != nil {
				t.Fatal(err)
			}
			if next != int64(tt.rows) || progress != int64(tt.rows) {
				t.Errorf("saw %d rows, progress %d, want %d", next, progress, tt.rows)
			}
			if got := m.maxIn.Load(); got > int64(tt.workers) {
				t.Errorf("%d predictions in flight with %d workers", got, tt.workers)
			}
		})
	}
}

func TestEachErrors(t *testing.T) {
	readErr := errors.New("disk on fire")
	fnErr := errors.New("writer full")
	tests := []struct {
		name    string
		failAt  int64
		readErr error
		fnErrAt int
		want    string
		is      error
	}{
		{name: "predict", failAt: 5, want: "predicting rows 40-49: boom"},
		{name: "read", readErr: readErr, want: "reading the table after row 200", is: readErr},
		{name: "fn", fnErrAt: 3, is: fnErr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := runtime.NumGoroutine()
			m := &doubler{failAt: tt.failAt}
			calls, lastRow := 0, -1.0
			err := Each(context.Background(), m, nil, &sliceReader{rows: 200, size: 10, err: tt.readErr}, Options{Workers: 4},
				func(in *table.Batch, outs []*tensor.Tensor) error {
					calls++
					if x := in.Columns[0].Floats[0]; x != lastRow+1 {
						t.Errorf("batch starts at %v after %v", x, lastRow)
					}
					lastRow = in.Columns[0].Floats[in.Len-1]
					if calls == tt.fnErrAt {
						return fnErr
					}
					return nil
				})
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want one wrapping %v", err, tt.is)
			}
			if tt.failAt > 0 && calls != int(tt.failAt-1) {
				t.Errorf("fn called for %d batches before the failing 5th", calls)
			}
			if tt.fnErrAt > 0 && calls != tt.fnErrAt {
				t.Errorf("fn called %d times after returning an error at call %d", calls, tt.fnErrAt)
			}
			// Every goroutine has ended.
			for range 100 {
				if runtime.NumGoroutine() <= before {
					break
				}
				time.Sleep(time.Millisecond)
			}
			if n := runtime.NumGoroutine(); n > before {
				t.Errorf("%d goroutines left running", n-before)
			}
		})
	}
}

func TestEachCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err := Each(ctx, &doubler{}, nil, &sliceReader{rows: 1 << 20, size: 64}, Options{Workers: 2},
		func(in *table.Batch, outs []*tensor.Tensor) error {
			if n++; n == 3 {
				cancel()
			}
			return nil
		})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// rf100 is the 100-tree random forest fixture of runtime/onnx (4 float
// features, a label and 3 class probabilities), with its inputs and the
// reference outputs from skl2onnx/onnxruntime (gen.py there).
var rf100Dir = filepath.Join("..", "runtime", "onnx", "testdata", "models", "skl_rf100_clf")

func loadRF100(t testing.TB) kruntime.Model {
	t.Helper()
	m, err := kruntime.Load(context.Background(), "onnx", kruntime.Source{Path: rf100Dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestEachMatchesPredict: scoring a table in parallel batches gives what
// one Predict over all rows gives.
func TestEachMatchesPredict(t *testing.T) {
	m := loadRF100(t)
	const rows = 5000
	rng := rand.New(rand.NewPCG(1, 2))
	s := table.Schema{}
	b := &table.Batch{Len: rows}
	x := make([]float32, rows*4)
	for c := range 4 {
		s.Fields = append(s.Fields, table.Field{Name: fmt.Sprintf("f%d", c), Type: table.Float64})
		v := make([]float64, rows)
		for i := range v {
			v[i] = float64(float32(rng.NormFloat64()))
			x[i*4+c] = float32(v[i])
		}
		b.Columns = append(b.Columns, table.Column{Type: table.Float64, Floats: v})
	}
	whole, err := m.Predict(context.Background(), []*tensor.Tensor{{Name: "X", DType: tensor.Float32, Shape: []int64{rows, 4}, Data: x}})
	if err != nil {
		t.Fatal(err)
	}
	labels, probs := whole[0].Data.([]int64), whole[1].Data.([]float32)
	row := 0
	err = Each(context.Background(), m, nil, &batchReader{schema: s, batches: splitBatch(b, 333)}, Options{Workers: 3, BatchRows: 100},
		func(in *table.Batch, outs []*tensor.Tensor) error {
			l, p := outs[0].Data.([]int64), outs[1].Data.([]float32)
			for i := range in.Len {
				if l[i] != labels[row] || p[3*i] != probs[3*row] || p[3*i+2] != probs[3*row+2] {
					return fmt.Errorf("row %d: label %d probs %v, want %d %v", row, l[i], p[3*i:3*i+3], labels[row], probs[3*row:3*row+3])
				}
				row++
			}
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if row != rows {
		t.Errorf("scored %d rows, want %d", row, rows)
	}
}

// batchReader serves fixed batches.
type batchReader struct {
	schema  table.Schema
	batches []*table.Batch
}

func (r *batchReader) Schema() table.Schema { return r.schema }
func (r *batchReader) Next(context.Context) (*table.Batch, error) {
	if len(r.batches) == 0 {
		return nil, io.EOF
	}
	b := r.batches[0]
	r.batches = r.batches[1:]
	return b, nil
}
func (r *batchReader) Close() error { return nil }

func splitBatch(b *table.Batch, n int) []*table.Batch {
	var out []*table.Batch
	for lo := 0; lo < b.Len; lo += n {
		out = append(out, b.Slice(lo, min(lo+n, b.Len)))
	}
	return out
}
