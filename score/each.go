package score

import (
	"context"
	"errors"
	"fmt"
	"io"
	goruntime "runtime"
	"sync"

	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/model"
	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// DefaultBatchRows is the rows per prediction when Options.BatchRows is 0.
const DefaultBatchRows = 4096

// Options configure Each.
type Options struct {
	// Workers is the number of goroutines that convert and predict
	// (runtime.GOMAXPROCS when 0).
	Workers int
	// BatchRows caps the rows of one prediction (DefaultBatchRows when 0):
	// larger reader batches are split.
	BatchRows int
	// Progress, when set, is called after fn with the number of rows in
	// the batch just handed to fn.
	Progress func(rows int64)
}

func (o Options) workers() int {
	if o.Workers <= 0 {
		return goruntime.GOMAXPROCS(0)
	}
	return o.Workers
}

func (o Options) batchRows() int {
	if o.BatchRows <= 0 {
		return DefaultBatchRows
	}
	return o.BatchRows
}

// job is one batch in flight.
type job struct {
	in    *table.Batch
	first int64 // the input row of in's first row (for errors)
	outs  []*tensor.Tensor
	err   error
	done  chan struct{}
}

// Each streams r through m: it reads batches (split to at most
// opts.BatchRows rows), converts them with Inputs, predicts on
// opts.Workers goroutines, and calls fn with each input batch and its
// outputs, in input order, from the calling goroutine. At most twice
// Workers batches are in flight, so memory stays bounded whatever the
// table's length.
//
// Each stops at the first error — reading, converting, predicting, or
// returned by fn — and returns it (conversion and prediction errors name
// the input rows); it returns ctx's error when ctx ends first. It does not
// close r. Every goroutine it started has ended when it returns.
func Each(ctx context.Context, m runtime.Model, msig *model.Signature, r table.Reader, opts Options, fn func(in *table.Batch, outs []*tensor.Tensor) error) error {
	p, err := newPlan(r.Schema(), m.Signature(), msig)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := opts.workers()
	order := make(chan *job, 2*workers) // in input order; its capacity bounds the batches in flight
	work := make(chan *job)
	var wg sync.WaitGroup
	wg.Add(1 + workers)
	go func() {
		defer wg.Done()
		defer close(order)
		defer close(work)
		read(ctx, r, opts.batchRows(), order, work)
	}()
	for range workers {
		go func() {
			defer wg.Done()
			for j := range work {
				if ctx.Err() == nil {
					j.outs, j.err = predict(ctx, m, p, j)
				} else {
					j.err = ctx.Err()
				}
				close(j.done)
			}
		}()
	}
	defer wg.Wait() // after cancel: nothing uses m or r once Each returns
	for j := range order {
		select {
		case <-j.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if j.err != nil {
			cancel()
			return j.err
		}
		if err := fn(j.in, j.outs); err != nil {
			cancel()
			return err
		}
		if opts.Progress != nil {
			opts.Progress(int64(j.in.Len))
		}
	}
	return ctx.Err()
}

// read feeds batches to order (for the consumer) and work (for the
// workers). A read error travels as a finished job, in order.
func read(ctx context.Context, r table.Reader, batchRows int, order, work chan<- *job) {
	var row int64
	send := func(j *job) bool {
		select {
		case order <- j:
		case <-ctx.Done():
			return false
		}
		if j.err != nil {
			close(j.done)
			return false
		}
		select {
		case work <- j:
			return true
		case <-ctx.Done():
			j.err = ctx.Err()
			close(j.done)
			return false
		}
	}
	for {
		b, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			send(&job{first: row, err: fmt.Errorf("reading the table after row %d: %w", row, err), done: make(chan struct{})})
			return
		}
		for lo := 0; lo < b.Len; lo += batchRows {
			in := b
			if hi := min(lo+batchRows, b.Len); lo > 0 || hi < b.Len {
				in = b.Slice(lo, hi)
			}
			if !send(&job{in: in, first: row, done: make(chan struct{})}) {
				return
			}
			row += int64(in.Len)
		}
	}
}

func predict(ctx context.Context, m runtime.Model, p *plan, j *job) ([]*tensor.Tensor, error) {
	last := j.first + int64(j.in.Len) - 1
	ins, err := p.inputs(j.in, j.first)
	if err != nil {
		return nil, err
	}
	outs, err := m.Predict(ctx, ins)
	if err != nil {
		return nil, fmt.Errorf("predicting rows %d-%d: %w", j.first, last, err)
	}
	for _, o := range outs {
		if o.Rows() != j.in.Len || len(o.Shape) == 0 {
			return nil, fmt.Errorf("predicting rows %d-%d: output %q has shape %v for %d rows", j.first, last, o.Name, o.Shape, j.in.Len)
		}
	}
	return outs, nil
}
