package onnx

import (
	"context"
	"fmt"
	"sort"

	"github.com/kiln-ml/kiln/tensor"
)

// Value is what flows along a graph edge: a *tensor.Tensor, a Sequence or a
// *Map. A nil Value is an absent optional input.
type Value any

// Sequence is an ONNX sequence value (e.g. ZipMap's seq(map)).
type Sequence []Value

// Map is an ONNX map value with int64 or string keys (exactly one of
// Int64Keys and StringKeys is set) and one value per key in Values (a
// one-dimensional tensor).
type Map struct {
	Int64Keys  []int64
	StringKeys []string
	Values     *tensor.Tensor
}

// AttrType is onnx.AttributeProto.AttributeType.
type AttrType int32

// Attribute types, numbered as in onnx.proto.
const (
	AttrUndefined AttrType = 0
	AttrFloat     AttrType = 1
	AttrInt       AttrType = 2
	AttrString    AttrType = 3
	AttrTensor    AttrType = 4
	AttrGraph     AttrType = 5
	AttrFloats    AttrType = 6
	AttrInts      AttrType = 7
	AttrStrings   AttrType = 8
	AttrTensors   AttrType = 9
	AttrGraphs    AttrType = 10
)

// Attribute is one decoded node attribute; only the field for Type is set.
type Attribute struct {
	Name    string
	Type    AttrType
	F       float32
	I       int64
	S       string
	T       *tensor.Tensor
	G       *Graph
	Floats  []float32
	Ints    []int64
	Strings []string
	Tensors []*tensor.Tensor
	Graphs  []*Graph
}

// Node is one operator application in a graph. Static holds, per input, the
// value when it is known at load time (an initializer or the output of a
// Constant node), else nil, so kernels can precompute (e.g. a Reshape
// target shape or MatMul weights).
type Node struct {
	Name    string
	OpType  string
	Domain  string // "" for the default ai.onnx domain, "ai.onnx.ml", ...
	Inputs  []string
	Outputs []string
	Attrs   map[string]*Attribute
	Static  []Value

	// opsets are the model's operator set imports, for operators whose
	// subgraphs are compiled like models of their own (Scan).
	opsets map[string]int64
}

// Kernel is a compiled operator. in holds one Value per node input (nil for
// an absent optional input); Run returns one Value per node output. Run is
// called concurrently and must not modify its inputs.
type Kernel interface {
	Run(ctx context.Context, in []Value) ([]Value, error)
}

// KernelFunc adapts a function to Kernel.
type KernelFunc func(ctx context.Context, in []Value) ([]Value, error)

// Run calls f.
func (f KernelFunc) Run(ctx context.Context, in []Value) ([]Value, error) { return f(ctx, in) }

// Factory compiles a node into a kernel at load time, given the opset
// version the model imports for the node's domain. It validates attributes
// and returns an error naming what is wrong.
type Factory func(n *Node, opset int64) (Kernel, error)

type opKey struct{ domain, opType string }

var ops = map[opKey]Factory{}

// register adds an operator implementation; called from init functions of
// the op files. domain is "" for ai.onnx.
func register(domain, opType string, f Factory) {
	if domain == "ai.onnx" {
		domain = ""
	}
	k := opKey{domain, opType}
	if _, dup := ops[k]; dup {
		panic("onnx: operator registered twice: " + domain + "." + opType)
	}
	ops[k] = f
}

func lookupOp(domain, opType string) (Factory, bool) {
	if domain == "ai.onnx" {
		domain = ""
	}
	f, ok := ops[opKey{domain, opType}]
	return f, ok
}

// Operators lists the supported operators as "domain.OpType" ("OpType" for
// ai.onnx), sorted.
func Operators() []string {
	out := make([]string, 0, len(ops))
	for k := range ops {
		if k.domain == "" {
			out = append(out, k.opType)
		} else {
			out = append(out, k.domain+"."+k.opType)
		}
	}
	sort.Strings(out)
	return out
}

// Attribute accessors. The Int/Float/String/... forms return def when the
// attribute is absent; they return an error when it is present with
// another type.

// Attr returns the attribute named name, or nil.
func (n *Node) Attr(name string) *Attribute { return n.Attrs[name] }

func (n *Node) attrOf(name string, t AttrType) (*Attribute, error) {
	a := n.Attrs[name]
	if a == nil {
		return nil, nil
	}
	if a.Type != t {
		return nil, fmt.Errorf("%s node %q: attribute %q has type %d, want %d", n.OpType, n.Name, name, a.Type, t)
	}
	return a, nil
}

// Int returns an INT attribute.
func (n *Node) Int(name string, def int64) (int64, error) {
	a, err := n.attrOf(name, AttrInt)
	if a == nil || err != nil {
		return def, err
	}
	return a.I, nil
}

// Float returns a FLOAT attribute.
func (n *Node) Float(name string, def float32) (float32, error) {
	a, err := n.attrOf(name, AttrFloat)
	if a == nil || err != nil {
		return def, err
	}
	return a.F, nil
}

// String returns a STRING attribute.
func (n *Node) String(name, def string) (string, error) {
	a, err := n.attrOf(name, AttrString)
	if a == nil || err != nil {
		return def, err
	}
	return a.S, nil
}

// Ints returns an INTS attribute (nil when absent).
func (n *Node) Ints(name string) ([]int64, error) {
	a, err := n.attrOf(name, AttrInts)
	if a == nil || err != nil {
		return nil, err
	}
	return a.Ints, nil
}

// Floats returns a FLOATS attribute (nil when absent).
func (n *Node) Floats(name string) ([]float32, error) {
	a, err := n.attrOf(name, AttrFloats)
	if a == nil || err != nil {
		return nil, err
	}
	return a.Floats, nil
}

// Strings returns a STRINGS attribute (nil when absent).
func (n *Node) Strings(name string) ([]string, error) {
	a, err := n.attrOf(name, AttrStrings)
	if a == nil || err != nil {
		return nil, err
	}
	return a.Strings, nil
}

// TensorAttr returns a TENSOR attribute (nil when absent).
func (n *Node) TensorAttr(name string) (*tensor.Tensor, error) {
	a, err := n.attrOf(name, AttrTensor)
	if a == nil || err != nil {
		return nil, err
	}
	return a.T, nil
}

// Errorf returns an error that names the node and operator.
func (n *Node) Errorf(format string, args ...any) error {
	return fmt.Errorf("%s node %q: %s", n.OpType, n.Name, fmt.Sprintf(format, args...))
}

// Tensor returns in[i] as a tensor, with an error naming the node when it
// is absent or not a tensor.
func (n *Node) Tensor(in []Value, i int) (*tensor.Tensor, error) {
	if i >= len(in) || in[i] == nil {
		return nil, n.Errorf("input %d is missing", i)
	}
	t, ok := in[i].(*tensor.Tensor)
	if !ok {
		return nil, n.Errorf("input %d is a %T, not a tensor", i, in[i])
	}
	return t, nil
}
