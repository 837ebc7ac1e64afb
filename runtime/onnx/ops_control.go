package onnx

import (
	"context"
	"fmt"

	"github.com/kiln-ml/kiln/tensor"
)

// Scan (opset 9 and later), which skl2onnx uses for pairwise distances
// (k-nearest neighbours, Gaussian processes). The body graph is compiled
// once, like a model of its own; it may not read values of the
// enclosing graph other than through its inputs.

func init() {
	register("", "Scan", scanFactory)
}

type scanKernel struct {
	body       *Model
	nState     int
	nScanIn    int
	inAxes     []int64
	inReverse  []bool
	outAxes    []int64
	outReverse []bool
	outNames   []string
}

func scanFactory(n *Node, opset int64) (Kernel, error) {
	if opset < 9 {
		return nil, unsupportedError("Scan before opset 9 (with sequence_lens)")
	}
	a := n.Attr("body")
	if a == nil || a.Type != AttrGraph || a.G == nil {
		return nil, fmt.Errorf("attribute body is required")
	}
	m, err := n.Int("num_scan_inputs", 0)
	if err != nil {
		return nil, err
	}
	if m < 1 || int(m) > len(n.Inputs) {
		return nil, fmt.Errorf("num_scan_inputs=%d for %d inputs", m, len(n.Inputs))
	}
	k := &scanKernel{nScanIn: int(m), nState: len(n.Inputs) - int(m), outNames: n.Outputs}
	g := a.G
	if len(g.Inputs) != len(n.Inputs) {
		return nil, fmt.Errorf("the body takes %d inputs, the node gives %d", len(g.Inputs), len(n.Inputs))
	}
	if len(g.Outputs) != len(n.Outputs) || len(g.Outputs) < k.nState {
		return nil, fmt.Errorf("the body returns %d outputs, the node has %d", len(g.Outputs), len(n.Outputs))
	}
	nScanOut := len(n.Outputs) - k.nState
	ints := func(name string, count int) ([]int64, error) {
		v, err := n.Ints(name)
		if err != nil {
			return nil, err
		}
		if v == nil {
			return make([]int64, count), nil
		}
		if len(v) != count {
			return nil, fmt.Errorf("%s has %d values for %d scan values", name, len(v), count)
		}
		return v, nil
	}
	if k.inAxes, err = ints("scan_input_axes", k.nScanIn); err != nil {
		return nil, err
	}
	if k.outAxes, err = ints("scan_output_axes", nScanOut); err != nil {
		return nil, err
	}
	dirs, err := ints("scan_input_directions", k.nScanIn)
	if err != nil {
		return nil, err
	}
	for _, d := range dirs {
		k.inReverse = append(k.inReverse, d != 0)
	}
	if dirs, err = ints("scan_output_directions", nScanOut); err != nil {
		return nil, err
	}
	for _, d := range dirs {
		k.outReverse = append(k.outReverse, d != 0)
	}
	// The body sees the opsets of the model.
	opsets := n.opsets
	if opsets == nil {
		opsets = map[string]int64{"": opset}
	}
	body := &ModelProto{IRVersion: maxIRVersion, Opsets: opsets, Graph: g}
	if k.body, err = compile(context.Background(), body, "Scan body"); err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	return k, nil
}

func (k *scanKernel) Run(ctx context.Context, in []Value) ([]Value, error) {
	out := make([]Value, len(k.outNames))
	if err := k.RunInto(ctx, in, out); err != nil {
		return nil, err
	}
	return out, nil
}

func (k *scanKernel) RunInto(ctx context.Context, in, out []Value) error {
	args := make([]*tensor.Tensor, len(in))
	for i := range in {
		t, err := inTensor(in, i)
		if err != nil {
			return err
		}
		args[i] = t
	}
	sig := k.body.Signature()
	// Every scan input is cut along its axis into the same number of steps.
	steps := -1
	axes := make([]int, k.nScanIn)
	for j := 0; j < k.nScanIn; j++ {
		t := args[k.nState+j]
		a, err := normAxis(k.inAxes[j], len(t.Shape))
		if err != nil {
			return fmt.Errorf("scan input %d: %w", j, err)
		}
		axes[j] = a
		if d := int(t.Shape[a]); steps < 0 {
			steps = d
		} else if d != steps {
			return fmt.Errorf("scan inputs have %d and %d steps", steps, d)
		}
	}
	state := append([]*tensor.Tensor(nil), args[:k.nState]...)
	nScanOut := len(k.outNames) - k.nState
	collected := make([][]*tensor.Tensor, nScanOut)
	feed := make([]*tensor.Tensor, len(args))
	for s := 0; s < steps; s++ {
		for i, t := range state {
			c := *t
			c.Name = sig.Inputs[i].Name
			feed[i] = &c
		}
		for j := 0; j < k.nScanIn; j++ {
			idx := s
			if k.inReverse[j] {
				idx = steps - 1 - s
			}
			sl, err := sliceAt(args[k.nState+j], axes[j], idx)
			if err != nil {
				return err
			}
			sl.Name = sig.Inputs[k.nState+j].Name
			feed[k.nState+j] = sl
		}
		res, err := k.body.Predict(ctx, feed)
		if err != nil {
			return fmt.Errorf("step %d: %w", s, err)
		}
		copy(state, res[:k.nState])
		for j := range collected {
			collected[j] = append(collected[j], res[k.nState+j])
		}
	}
	for i, t := range state {
		out[i] = view(k.outNames[i], t, t.Shape)
	}
	for j, elems := range collected {
		if k.outReverse[j] {
			for a, b := 0, len(elems)-1; a < b; a, b = a+1, b-1 {
				elems[a], elems[b] = elems[b], elems[a]
			}
		}
		t, err := stack(k.outNames[k.nState+j], elems, k.outAxes[j])
		if err != nil {
			return fmt.Errorf("scan output %d: %w", j, err)
		}
		out[k.nState+j] = t
	}
	return nil
}

// sliceAt returns t[..., i, ...] along axis (one rank less).
func sliceAt(t *tensor.Tensor, axis, i int) (*tensor.Tensor, error) {
	shape := append(append([]int64(nil), t.Shape[:axis]...), t.Shape[axis+1:]...)
	if axis == 0 {
		inner := sizeOf(t.Shape, 1, len(t.Shape))
		return newTensor("", t.DType, shape, subSlice(t.Data, i*inner, (i+1)*inner)), nil
	}
	s, err := sliceTensor("", t, []int64{int64(i)}, []int64{int64(i + 1)}, []int64{int64(axis)}, nil)
	if err != nil {
		return nil, err
	}
	return view("", s, shape), nil
}

// stack joins equally shaped tensors along a new axis.
func stack(name string, ts []*tensor.Tensor, axis int64) (*tensor.Tensor, error) {
	if len(ts) == 0 {
		return nil, fmt.Errorf("nothing to stack (zero steps)")
	}
	r := len(ts[0].Shape) + 1
	a, err := normAxis(axis, r)
	if err != nil {
		return nil, err
	}
	parts := make([]*tensor.Tensor, len(ts))
	for i, t := range ts {
		if !sameShape(t.Shape, ts[0].Shape) {
			return nil, fmt.Errorf("step outputs of shapes %v and %v", ts[0].Shape, t.Shape)
		}
		shape := append(append(append([]int64(nil), t.Shape[:a]...), 1), t.Shape[a:]...)
		parts[i] = view("", t, shape)
	}
	return concatTensors(name, parts, int64(a))
}
