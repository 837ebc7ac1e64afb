//go:build ort

package ort

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/kiln-ml/kiln/runtime"
)

// What this backend reads from the ONNX file itself, beyond what
// onnxruntime's session reports: ZipMap labels, and which inputs and
// outputs declare a shape (onnxruntime reports rank 0 for "no shape" too).
// It also rewrites the graph to add outputs (see rewrite).

// zipMap is what a ZipMap node tells about the sequence of maps it
// produces: its class labels in order, as int64 or string keys.
type zipMap struct {
	intKeys []int64
	strKeys []string
}

func (z *zipMap) labels() []string {
	if z.strKeys != nil {
		return append([]string(nil), z.strKeys...)
	}
	out := make([]string, len(z.intKeys))
	for i, k := range z.intKeys {
		out[i] = strconv.FormatInt(k, 10)
	}
	return out
}

// graphInfo is what the top-level graph says about its values.
type graphInfo struct {
	zipMaps map[string]*zipMap // by output name
	shaped  map[string]bool    // graph inputs and outputs that declare a shape
}

// ONNX protobuf field numbers (onnx.proto).
const (
	modelGraph     = 7  // ModelProto.graph
	graphNode      = 1  // GraphProto.node
	graphInput     = 11 // GraphProto.input
	graphOutput    = 12 // GraphProto.output
	nodeInput      = 1  // NodeProto.input
	nodeOutput     = 2  // NodeProto.output
	nodeName       = 3  // NodeProto.name
	nodeOpType     = 4  // NodeProto.op_type
	nodeAttribute  = 5  // NodeProto.attribute
	nodeDomain     = 7  // NodeProto.domain
	attrName       = 1  // AttributeProto.name
	attrI          = 3  // AttributeProto.i
	attrInts       = 8  // AttributeProto.ints
	attrStrings    = 9  // AttributeProto.strings
	attrType       = 20 // AttributeProto.type
	attrTypeInt    = 2  // AttributeProto.INT
	valueName      = 1  // ValueInfoProto.name
	valueType      = 2  // ValueInfoProto.type
	typeTensor     = 1  // TypeProto.tensor_type
	tensorElemType = 1  // TypeProto.Tensor.elem_type
	tensorShape    = 2  // TypeProto.Tensor.shape
	elemFloat      = 1  // TensorProto.FLOAT
	domainML       = "ai.onnx.ml"
)

var errProto = errors.New("malformed protobuf")

// readGraph decodes the parts of the model's top-level graph this backend
// needs. onnxruntime has already validated the model as a whole.
func readGraph(model []byte) (*graphInfo, error) {
	g := &graphInfo{zipMaps: map[string]*zipMap{}, shaped: map[string]bool{}}
	err := eachField(model, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if num != modelGraph || typ != protowire.BytesType {
			return nil
		}
		return eachField(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
			if typ != protowire.BytesType {
				return nil
			}
			switch num {
			case graphNode:
				return zipMapNode(v, g.zipMaps)
			case graphInput, graphOutput:
				name, shaped, err := valueInfo(v)
				if err == nil && shaped {
					g.shaped[name] = true
				}
				return err
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("%w: reading the ONNX graph: %w", runtime.ErrInvalidModel, err)
	}
	return g, nil
}

// valueInfo reads a ValueInfoProto's name and whether its tensor type
// declares a shape.
func valueInfo(vi []byte) (name string, shaped bool, err error) {
	err = eachField(vi, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case valueName:
			name = string(v)
		case valueType:
			return eachField(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
				if num != typeTensor || typ != protowire.BytesType {
					return nil
				}
				return eachField(v, func(num protowire.Number, typ protowire.Type, v []byte) error {
					if num == tensorShape {
						shaped = true
					}
					return nil
				})
			})
		}
		return nil
	})
	return name, shaped, err
}

func zipMapNode(node []byte, found map[string]*zipMap) error {
	var opType, domain string
	var outputs []string
	var attrs [][]byte
	err := eachField(node, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case nodeOpType:
			opType = string(v)
		case nodeDomain:
			domain = string(v)
		case nodeOutput:
			outputs = append(outputs, string(v))
		case nodeAttribute:
			attrs = append(attrs, v)
		}
		return nil
	})
	if err != nil || opType != "ZipMap" || domain != domainML || len(outputs) != 1 {
		return err
	}
	z := &zipMap{}
	for _, a := range attrs {
		var name string
		var ints []int64
		var strs []string
		err := eachField(a, func(num protowire.Number, typ protowire.Type, v []byte) error {
			switch {
			case num == attrName && typ == protowire.BytesType:
				name = string(v)
			case num == attrStrings && typ == protowire.BytesType:
				strs = append(strs, string(v))
			case num == attrInts && typ == protowire.VarintType:
				x, _ := protowire.ConsumeVarint(v)
				ints = append(ints, int64(x))
			case num == attrInts && typ == protowire.BytesType: // packed
				for len(v) > 0 {
					x, n := protowire.ConsumeVarint(v)
					if n < 0 {
						return errProto
					}
					ints = append(ints, int64(x))
					v = v[n:]
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		switch name {
		case "classlabels_int64s":
			z.intKeys = append([]int64{}, ints...)
		case "classlabels_strings":
			z.strKeys = append([]string{}, strs...)
		}
	}
	found[outputs[0]] = z
	return nil
}

// Suffixes of the values a rewrite adds to the graph.
const (
	castSuffix  = "/kiln_fp32"  // FP16 value cast to FP32
	flatSuffix  = "/kiln_flat"  // value reshaped to one dimension
	shapeSuffix = "/kiln_shape" // value's shape
	minusOne    = "kiln/minus_one"
)

// rewrite lists graph outputs to add, working around what the
// onnxruntime_go binding cannot return from a run: FP16 tensors it did not
// allocate (FP16 → FP32 → FP16 is exact, so the backend reads a Cast), and
// rank-0 tensors of outputs whose rank the model leaves undeclared (the
// backend reads the value flattened plus its Shape, and restores it).
type rewrite struct {
	casts []string          // outputs to add as name+castSuffix = Cast(name, to=FLOAT)
	flats []string          // values to add as +flatSuffix and +shapeSuffix
	elems map[string]uint64 // element type (TensorProto.DataType) of each flat value
}

func (r *rewrite) empty() bool { return len(r.casts) == 0 && len(r.flats) == 0 }

// ONNX protobuf field numbers used only by rewrites.
const (
	attrT          = 5 // AttributeProto.t
	attrTypeTensor = 4 // AttributeProto.TENSOR
	tensorDims     = 1 // TensorProto.dims
	tensorDataType = 2 // TensorProto.data_type
	tensorInt64s   = 7 // TensorProto.int64_data
	elemInt64      = 7 // TensorProto.INT64
)

// apply returns a copy of model with the rewrite's nodes and outputs
// appended to its top-level graph.
func (r *rewrite) apply(model []byte) ([]byte, error) {
	var extra []byte
	addNode := func(op, name string, inputs, outputs []string, attrs ...[]byte) {
		var n []byte
		for _, in := range inputs {
			n = appendString(n, nodeInput, in)
		}
		for _, o := range outputs {
			n = appendString(n, nodeOutput, o)
		}
		n = appendString(n, nodeName, name)
		n = appendString(n, nodeOpType, op)
		for _, a := range attrs {
			n = protowire.AppendTag(n, nodeAttribute, protowire.BytesType)
			n = protowire.AppendBytes(n, a)
		}
		extra = protowire.AppendTag(extra, graphNode, protowire.BytesType)
		extra = protowire.AppendBytes(extra, n)
	}
	addOutput := func(name string, elem uint64) {
		var tt []byte
		tt = protowire.AppendTag(tt, tensorElemType, protowire.VarintType)
		tt = protowire.AppendVarint(tt, elem)
		var tp []byte
		tp = protowire.AppendTag(tp, typeTensor, protowire.BytesType)
		tp = protowire.AppendBytes(tp, tt)
		var vi []byte
		vi = appendString(vi, valueName, name)
		vi = protowire.AppendTag(vi, valueType, protowire.BytesType)
		vi = protowire.AppendBytes(vi, tp)
		extra = protowire.AppendTag(extra, graphOutput, protowire.BytesType)
		extra = protowire.AppendBytes(extra, vi)
	}
	for i, name := range r.casts {
		var to []byte
		to = appendString(to, attrName, "to")
		to = protowire.AppendTag(to, attrI, protowire.VarintType)
		to = protowire.AppendVarint(to, elemFloat)
		to = protowire.AppendTag(to, attrType, protowire.VarintType)
		to = protowire.AppendVarint(to, attrTypeInt)
		addNode("Cast", "kiln_cast_"+strconv.Itoa(i), []string{name}, []string{name + castSuffix}, to)
		addOutput(name+castSuffix, elemFloat)
	}
	if len(r.flats) > 0 {
		var t []byte
		t = protowire.AppendTag(t, tensorDims, protowire.VarintType)
		t = protowire.AppendVarint(t, 1)
		t = protowire.AppendTag(t, tensorDataType, protowire.VarintType)
		t = protowire.AppendVarint(t, elemInt64)
		t = protowire.AppendTag(t, tensorInt64s, protowire.VarintType)
		t = protowire.AppendVarint(t, math.MaxUint64) // int64 -1: varints hold two's complement
		var value []byte
		value = appendString(value, attrName, "value")
		value = protowire.AppendTag(value, attrT, protowire.BytesType)
		value = protowire.AppendBytes(value, t)
		value = protowire.AppendTag(value, attrType, protowire.VarintType)
		value = protowire.AppendVarint(value, attrTypeTensor)
		addNode("Constant", "kiln_minus_one", nil, []string{minusOne}, value)
	}
	for i, name := range r.flats {
		addNode("Reshape", "kiln_flatten_"+strconv.Itoa(i), []string{name, minusOne}, []string{name + flatSuffix})
		addNode("Shape", "kiln_shape_"+strconv.Itoa(i), []string{name}, []string{name + shapeSuffix})
		addOutput(name+flatSuffix, r.elems[name])
		addOutput(name+shapeSuffix, elemInt64)
	}

	var out []byte
	seen := false
	err := eachField(model, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if num == modelGraph && typ == protowire.BytesType {
			seen = true
			out = protowire.AppendTag(out, modelGraph, protowire.BytesType)
			out = protowire.AppendBytes(out, append(append([]byte(nil), v...), extra...))
			return nil
		}
		out = appendField(out, num, typ, v)
		return nil
	})
	if err == nil && !seen {
		err = errors.New("no graph")
	}
	if err != nil {
		return nil, fmt.Errorf("%w: rewriting the ONNX graph: %w", runtime.ErrInvalidModel, err)
	}
	return out, nil
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendField(b []byte, num protowire.Number, typ protowire.Type, v []byte) []byte {
	b = protowire.AppendTag(b, num, typ)
	if typ == protowire.BytesType {
		return protowire.AppendBytes(b, v)
	}
	return append(b, v...)
}

// eachField calls fn for each top-level field of a protobuf message; v is
// the field's payload (for other than length-delimited fields, the value's
// encoded bytes).
func eachField(msg []byte, fn func(num protowire.Number, typ protowire.Type, v []byte) error) error {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return errProto
		}
		msg = msg[n:]
		var v []byte
		if typ == protowire.BytesType {
			b, m := protowire.ConsumeBytes(msg)
			if m < 0 {
				return errProto
			}
			v, n = b, m
		} else {
			m := protowire.ConsumeFieldValue(num, typ, msg)
			if m < 0 {
				return errProto
			}
			v, n = msg[:m], m
		}
		msg = msg[n:]
		if err := fn(num, typ, v); err != nil {
			return err
		}
	}
	return nil
}
