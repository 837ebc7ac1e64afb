package onnx

import "github.com/kiln-ml/kiln/tensor"

// Graph is a decoded ONNX graph (onnx.GraphProto).
type Graph struct {
	Name         string
	Nodes        []*Node
	Initializers map[string]*tensor.Tensor
	Inputs       []ValueInfo
	Outputs      []ValueInfo
	// ValueInfo holds the optional type annotations of intermediate values.
	ValueInfo []ValueInfo
}

// ValueInfo is a graph input or output: its name and type. Shape dims that
// are symbolic or unknown are -1; Shape is nil when the rank is unknown.
type ValueInfo struct {
	Name  string
	Kind  ValueKind    // tensor, sequence or map
	Elem  tensor.DType // element type of a tensor (or of a sequence's/map's values)
	Key   tensor.DType // key type of a map (or of a sequence of maps)
	Shape []int64
	// ElemType is the ONNX element type number behind Elem (0 when absent),
	// kept so an element type without a tensor.DType can be named.
	ElemType int32
}

// ValueKind is the kind of an ONNX type.
type ValueKind uint8

// The kinds of ONNX values Kiln handles. KindOther stands for the types it
// does not (optional, sparse tensor, opaque, nested sequences).
const (
	KindTensor ValueKind = iota
	KindSequence
	KindMap
	KindOther
)
