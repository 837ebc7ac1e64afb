package onnx

import "github.com/kiln-ml/kiln/tensor"

// Graph is a decoded ONNX graph (onnx.GraphProto).
type Graph struct {
	Name         string
	Nodes        []*Node
	Initializers map[string]*tensor.Tensor
	Inputs       []ValueInfo
	Outputs      []ValueInfo
}

// ValueInfo is a graph input or output: its name and type. Shape dims that
// are symbolic or unknown are -1.
type ValueInfo struct {
	Name  string
	Kind  ValueKind    // tensor, sequence or map
	Elem  tensor.DType // element type of a tensor (or of a sequence's/map's values)
	Key   tensor.DType // key type of a map (or of a sequence of maps)
	Shape []int64
}

// ValueKind is the kind of an ONNX type.
type ValueKind uint8

// The kinds of ONNX values Kiln handles.
const (
	KindTensor ValueKind = iota
	KindSequence
	KindMap
)
