package xgboost

import (
	"context"
	"fmt"
	goruntime "runtime"
	"sync"

	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// Batches with fewer rows than parallelRows, or less work than
// parallelWork tree evaluations, are predicted on the calling goroutine.
const (
	parallelRows = 256
	parallelWork = 1 << 16
	chunkRows    = 128 // rows per worker chunk
)

// Predict predicts a batch: inputs is one tensor of shape [N, num_feature].
func (m *Model) Predict(ctx context.Context, inputs []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	x, rows, err := m.input(inputs)
	if err != nil {
		return nil, err
	}
	l := m.l
	g := l.numGroup
	// The output tensors and their shapes share one allocation.
	buf := &struct {
		t      [2]tensor.Tensor
		p      [2]*tensor.Tensor
		shapes [4]int64
	}{}
	var dst rowOutputs
	for i, spec := range m.sig.Outputs {
		shape := buf.shapes[2*i : 2*i+len(spec.Shape)]
		copy(shape, spec.Shape)
		shape[0] = int64(rows)
		n := rows
		if len(shape) > 1 {
			n *= int(shape[1])
		}
		t := &buf.t[i]
		t.Name, t.DType, t.Shape = spec.Name, spec.DType, shape
		if spec.DType == tensor.Int64 {
			dst.labels = make([]int64, n)
			t.Data = dst.labels
		} else if m.out == outPredictions || m.out == outMargins {
			dst.preds = make([]float32, n)
			t.Data = dst.preds
		} else {
			dst.probs = make([]float32, n)
			t.Data = dst.probs
		}
		buf.p[i] = t
	}
	outs := buf.p[:len(m.sig.Outputs)]

	trees := m.ntrees
	if l.linear != nil {
		trees = 1
	}
	workers := goruntime.GOMAXPROCS(0)
	if rows < parallelRows || rows*trees < parallelWork || workers < 2 {
		var stack [16]float32
		scratch := stack[:]
		if g > len(stack) {
			scratch = make([]float32, g)
		}
		m.predictRows(x, 0, rows, scratch[:g], dst)
		return outs, nil
	}
	// Large batches: workers take chunks of rows in turn.
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		next int
	)
	workers = min(workers, (rows+chunkRows-1)/chunkRows)
	shared := dst // a copy, so that dst itself stays on the stack
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			scratch := make([]float32, g)
			for {
				mu.Lock()
				lo := next
				next += chunkRows
				mu.Unlock()
				if lo >= rows || ctx.Err() != nil {
					return
				}
				m.predictRows(x, lo, min(lo+chunkRows, rows), scratch, shared)
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return outs, nil
}

// rowOutputs are the output buffers of a batch: preds for a model with
// "predictions", labels and probs for a classifier.
type rowOutputs struct {
	preds  []float32
	labels []int64
	probs  []float32
}

func (m *Model) predictRows(x []float32, lo, hi int, scratch []float32, dst rowOutputs) {
	nf := m.l.numFeature
	for r := lo; r < hi; r++ {
		m.predictRow(x[r*nf:(r+1)*nf], r, scratch, dst)
	}
}

// margins computes the raw margins of one row into out.
func (m *Model) margins(row, out []float32) {
	l := m.l
	copy(out, l.base)
	if f := l.forest; f != nil {
		f.add(row, out, m.ntrees)
		return
	}
	// gblinear adds base_score's first element to every group, as XGBoost
	// does, and skips missing values.
	g := len(out)
	w := l.linear.weights
	bias := w[l.numFeature*g:]
	for k := range out {
		sum := bias[k] + l.base[0]
		for j, v := range row {
			if v == v {
				sum += float32(v * w[j*g+k]) // no fused multiply-add
			}
		}
		out[k] = sum
	}
}

// predictRow predicts row r into the output slices.
func (m *Model) predictRow(row []float32, r int, scratch []float32, dst rowOutputs) {
	preds, labels, probs := dst.preds, dst.labels, dst.probs
	l := m.l
	g := l.numGroup
	switch m.out {
	case outMargins:
		m.margins(row, preds[r*g:(r+1)*g])
	case outPredictions:
		switch l.obj.transform {
		case softmaxIndex:
			m.margins(row, scratch)
			preds[r] = float32(argmax(scratch))
		case softprob:
			out := preds[r*g : (r+1)*g]
			m.margins(row, out)
			softmax32(out)
		case sortedQuantiles:
			out := preds[r*g : (r+1)*g]
			m.margins(row, out)
			insertionSort(out)
		default:
			out := preds[r*g : (r+1)*g]
			m.margins(row, out)
			for i, v := range out {
				out[i] = l.obj.transform.apply(v)
			}
		}
	case outBinary:
		m.margins(row, scratch)
		p := l.obj.transform.apply(scratch[0])
		probs[2*r], probs[2*r+1] = 1-p, p
		labels[r] = 0
		if p > 0.5 {
			labels[r] = 1
		}
	case outMultiClass:
		out := probs[r*g : (r+1)*g]
		m.margins(row, out)
		if l.obj.transform == softmaxIndex {
			// multi:softmax: the label is XGBoost's arg-max of the
			// margins; the probabilities are their softmax, as
			// XGBClassifier.predict_proba computes them.
			labels[r] = int64(argmax(out))
			softmax32(out)
			return
		}
		softmax32(out)
		labels[r] = int64(argmax(out))
	case outMultiLabel:
		out := probs[r*g : (r+1)*g]
		m.margins(row, out)
		for i, v := range out {
			p := l.obj.transform.apply(v)
			out[i] = p
			labels[r*g+i] = 0
			if p > 0.5 {
				labels[r*g+i] = 1
			}
		}
	}
}

// input checks the input tensor and returns its elements as float32, row
// major, with the number of rows.
func (m *Model) input(inputs []*tensor.Tensor) ([]float32, int, error) {
	if len(inputs) != 1 || inputs[0] == nil {
		return nil, 0, fmt.Errorf("%w: the model takes 1 input %q, got %d", runtime.ErrInvalidInput, "input", len(inputs))
	}
	in := inputs[0]
	if err := in.Validate(); err != nil {
		return nil, 0, fmt.Errorf("%w: %w", runtime.ErrInvalidInput, err)
	}
	nf := m.l.numFeature
	if len(in.Shape) != 2 || in.Shape[1] != int64(nf) {
		return nil, 0, fmt.Errorf("%w: input %q has shape %v, the model expects [-1 %d]", runtime.ErrInvalidInput, in.Name, in.Shape, nf)
	}
	rows := int(in.Shape[0])
	x, err := asFloat32(in)
	if err != nil {
		return nil, 0, err
	}
	return x, rows, nil
}

// asFloat32 returns a numeric tensor's elements as float32, without a copy
// when they already are.
func asFloat32(t *tensor.Tensor) ([]float32, error) {
	switch d := t.Data.(type) {
	case []float32:
		return d, nil
	case []float64:
		return convert(d), nil
	case []int64:
		return convert(d), nil
	case []int32:
		return convert(d), nil
	case []int16:
		return convert(d), nil
	case []int8:
		return convert(d), nil
	case []uint8:
		return convert(d), nil
	case []uint32:
		return convert(d), nil
	case []uint64:
		return convert(d), nil
	case []uint16:
		if t.DType == tensor.Float16 {
			out := make([]float32, len(d))
			for i, h := range d {
				out[i] = tensor.HalfToFloat32(h)
			}
			return out, nil
		}
		return convert(d), nil
	case []bool:
		out := make([]float32, len(d))
		for i, b := range d {
			if b {
				out[i] = 1
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: input %q has datatype %v, the model takes numbers", runtime.ErrInvalidInput, t.Name, t.DType)
}

func convert[T float64 | int64 | int32 | int16 | int8 | uint8 | uint16 | uint32 | uint64](s []T) []float32 {
	out := make([]float32, len(s))
	for i, v := range s {
		out[i] = float32(v)
	}
	return out
}
