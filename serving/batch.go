package serving

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// batcher joins concurrent requests to one model into one prediction
// (adaptive batching). Requests whose inputs agree in everything but the
// first (batch) dimension are concatenated along it, predicted once and
// split back. A request waits at most the batcher's delay for others; it
// does not wait at all when no other request to the model is in flight,
// so batching costs nothing at low load. A request with as many rows as
// the maximum batch size, or inputs without a common batch dimension,
// goes alone.
type batcher struct {
	model   runtime.Model
	maxRows int
	delay   time.Duration
	obs     prometheus.Observer

	inflight atomic.Int32
	mu       sync.Mutex
	open     *batch // collecting requests; nil when none is
}

type batch struct {
	items []*batchItem
	rows  int
	full  chan struct{} // closed when the batch takes no more requests
}

type batchItem struct {
	inputs []*tensor.Tensor
	rows   int
	outs   []*tensor.Tensor
	err    error
	done   chan struct{}
}

func newBatcher(m runtime.Model, maxRows int, delay time.Duration, obs prometheus.Observer) *batcher {
	return &batcher{model: m, maxRows: maxRows, delay: delay, obs: obs}
}

// predict answers one request, possibly as part of a batch. Cancelling
// ctx returns early for this caller only: the batch it joined still runs
// for the others.
func (b *batcher) predict(ctx context.Context, inputs []*tensor.Tensor) ([]*tensor.Tensor, error) {
	rows, ok := batchRows(inputs)
	if !ok || rows >= b.maxRows {
		return b.direct(ctx, inputs, rows)
	}
	b.inflight.Add(1)
	defer b.inflight.Add(-1)
	item := &batchItem{inputs: inputs, rows: rows, done: make(chan struct{})}

	b.mu.Lock()
	if open := b.open; open != nil {
		if open.rows+rows <= b.maxRows && compatible(open.items[0].inputs, inputs) {
			open.items = append(open.items, item)
			open.rows += rows
			if open.rows == b.maxRows {
				b.open = nil
				close(open.full)
			}
			b.mu.Unlock()
			select {
			case <-item.done:
				return item.outs, item.err
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		// It does not fit: let the open batch run now, start another.
		b.open = nil
		close(open.full)
	}
	if b.inflight.Load() == 1 {
		// Nobody to wait for.
		b.mu.Unlock()
		return b.direct(ctx, inputs, rows)
	}
	bt := &batch{items: []*batchItem{item}, rows: rows, full: make(chan struct{})}
	b.open = bt
	b.mu.Unlock()

	timer := time.NewTimer(b.delay)
	select {
	case <-timer.C:
	case <-bt.full:
		timer.Stop()
	}
	b.mu.Lock()
	if b.open == bt {
		b.open = nil
	}
	b.mu.Unlock()
	// The batch runs even when this caller has gone: others wait on it.
	b.run(context.WithoutCancel(ctx), bt)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return item.outs, item.err
}

func (b *batcher) direct(ctx context.Context, inputs []*tensor.Tensor, rows int) ([]*tensor.Tensor, error) {
	if rows > 0 {
		b.obs.Observe(float64(rows))
	}
	return b.model.Predict(ctx, inputs)
}

// run predicts a closed batch and answers its items.
func (b *batcher) run(ctx context.Context, bt *batch) {
	items := bt.items
	defer func() {
		for _, it := range items {
			close(it.done)
		}
	}()
	if len(items) == 1 {
		it := items[0]
		it.outs, it.err = b.direct(ctx, it.inputs, it.rows)
		return
	}
	joined := concatInputs(items, bt.rows)
	b.obs.Observe(float64(bt.rows))
	outs, err := b.model.Predict(ctx, joined)
	if err == nil && splitOutputs(items, outs, bt.rows) {
		return
	}
	// The joined prediction failed (one request's values may be at
	// fault) or its outputs are not per row: answer each on its own.
	for _, it := range items {
		it.outs, it.err = b.direct(ctx, it.inputs, it.rows)
	}
}

// batchRows is the common first dimension of inputs.
func batchRows(inputs []*tensor.Tensor) (int, bool) {
	if len(inputs) == 0 {
		return 0, false
	}
	rows := int64(-1)
	for _, in := range inputs {
		if len(in.Shape) == 0 {
			return 0, false
		}
		if rows >= 0 && in.Shape[0] != rows {
			return 0, false
		}
		rows = in.Shape[0]
	}
	return int(rows), rows > 0
}

// compatible reports whether two requests' inputs can be concatenated
// along the first dimension.
func compatible(a, b []*tensor.Tensor) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].DType != b[i].DType || len(a[i].Shape) != len(b[i].Shape) {
			return false
		}
		for k := 1; k < len(a[i].Shape); k++ {
			if a[i].Shape[k] != b[i].Shape[k] {
				return false
			}
		}
	}
	return true
}

func concatInputs(items []*batchItem, rows int) []*tensor.Tensor {
	first := items[0].inputs
	out := make([]*tensor.Tensor, len(first))
	for i, t := range first {
		shape := append([]int64{int64(rows)}, t.Shape[1:]...)
		total := 0
		for _, it := range items {
			total += it.inputs[i].Len()
		}
		data, err := tensor.MakeSlice(t.DType, total)
		if err != nil {
			panic(fmt.Sprintf("serving: batch of %v: %v", t.DType, err)) // validated inputs have a known type
		}
		off := 0
		for _, it := range items {
			off += copyData(data, off, it.inputs[i].Data)
		}
		out[i] = &tensor.Tensor{Name: t.Name, DType: t.DType, Shape: shape, Data: data}
	}
	return out
}

// splitOutputs hands each item its rows of outs; false when an output is
// not batched along the first dimension.
func splitOutputs(items []*batchItem, outs []*tensor.Tensor, rows int) bool {
	for _, o := range outs {
		if len(o.Shape) == 0 || o.Shape[0] != int64(rows) || o.Validate() != nil {
			return false
		}
	}
	for _, it := range items {
		it.outs = make([]*tensor.Tensor, len(outs))
	}
	for j, o := range outs {
		inner := tensor.NumElements(o.Shape[1:])
		off := 0
		for _, it := range items {
			shape := append([]int64{int64(it.rows)}, o.Shape[1:]...)
			n := it.rows * inner
			it.outs[j] = &tensor.Tensor{Name: o.Name, DType: o.DType, Shape: shape, Data: sliceData(o.Data, off, off+n)}
			off += n
		}
	}
	return true
}

// copyData copies src into dst (slices of the same element type) at
// offset off and returns the number of elements copied.
func copyData(dst any, off int, src any) int {
	switch d := dst.(type) {
	case []bool:
		return copy(d[off:], src.([]bool))
	case []uint8:
		return copy(d[off:], src.([]uint8))
	case []uint16:
		return copy(d[off:], src.([]uint16))
	case []uint32:
		return copy(d[off:], src.([]uint32))
	case []uint64:
		return copy(d[off:], src.([]uint64))
	case []int8:
		return copy(d[off:], src.([]int8))
	case []int16:
		return copy(d[off:], src.([]int16))
	case []int32:
		return copy(d[off:], src.([]int32))
	case []int64:
		return copy(d[off:], src.([]int64))
	case []float32:
		return copy(d[off:], src.([]float32))
	case []float64:
		return copy(d[off:], src.([]float64))
	case []string:
		return copy(d[off:], src.([]string))
	}
	return 0
}

// sliceData returns data[lo:hi] for any tensor element slice, sharing
// its backing array.
func sliceData(data any, lo, hi int) any {
	switch d := data.(type) {
	case []bool:
		return d[lo:hi:hi]
	case []uint8:
		return d[lo:hi:hi]
	case []uint16:
		return d[lo:hi:hi]
	case []uint32:
		return d[lo:hi:hi]
	case []uint64:
		return d[lo:hi:hi]
	case []int8:
		return d[lo:hi:hi]
	case []int16:
		return d[lo:hi:hi]
	case []int32:
		return d[lo:hi:hi]
	case []int64:
		return d[lo:hi:hi]
	case []float32:
		return d[lo:hi:hi]
	case []float64:
		return d[lo:hi:hi]
	case []string:
		return d[lo:hi:hi]
	}
	return data
}
