package onnx

import (
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// ModelProto is a decoded onnx.ModelProto: the graph and the metadata a
// runtime needs. Opsets maps a domain ("" for ai.onnx) to the operator set
// version the model imports for it.
type ModelProto struct {
	IRVersion       int64
	Opsets          map[string]int64
	ProducerName    string
	ProducerVersion string
	Domain          string
	ModelVersion    int64
	DocString       string
	Metadata        map[string]string
	Graph           *Graph
	// Functions lists the model-local functions as "domain.name"; nodes
	// calling them are reported as unsupported operators.
	Functions []string
}

// Limits of the decoder, so that hostile input cannot exhaust the stack.
const maxDecodeDepth = 64

// ONNX TensorProto.DataType numbers.
const (
	onnxUndefined  = 0
	onnxFloat      = 1
	onnxUint8      = 2
	onnxInt8       = 3
	onnxUint16     = 4
	onnxInt16      = 5
	onnxInt32      = 6
	onnxInt64      = 7
	onnxString     = 8
	onnxBool       = 9
	onnxFloat16    = 10
	onnxDouble     = 11
	onnxUint32     = 12
	onnxUint64     = 13
	onnxComplex64  = 14
	onnxComplex128 = 15
	onnxBfloat16   = 16
)

var onnxTypeNames = map[int32]string{
	onnxComplex64: "complex64", onnxComplex128: "complex128", onnxBfloat16: "bfloat16",
	17: "float8e4m3fn", 18: "float8e4m3fnuz", 19: "float8e5m2", 20: "float8e5m2fnuz",
	21: "uint4", 22: "int4", 23: "float4e2m1", 24: "float8e8m0", 25: "uint2", 26: "int2",
	27: "float6e2m3", 28: "float6e3m2",
}

// dtypeFromONNX maps an ONNX element type number to a tensor.DType.
func dtypeFromONNX(t int32) (tensor.DType, bool) {
	switch t {
	case onnxFloat:
		return tensor.Float32, true
	case onnxUint8:
		return tensor.Uint8, true
	case onnxInt8:
		return tensor.Int8, true
	case onnxUint16:
		return tensor.Uint16, true
	case onnxInt16:
		return tensor.Int16, true
	case onnxInt32:
		return tensor.Int32, true
	case onnxInt64:
		return tensor.Int64, true
	case onnxString:
		return tensor.String, true
	case onnxBool:
		return tensor.Bool, true
	case onnxFloat16:
		return tensor.Float16, true
	case onnxDouble:
		return tensor.Float64, true
	case onnxUint32:
		return tensor.Uint32, true
	case onnxUint64:
		return tensor.Uint64, true
	}
	return tensor.Invalid, false
}

// onnxTypeName names an ONNX element type number for error messages.
func onnxTypeName(t int32) string {
	if dt, ok := dtypeFromONNX(t); ok {
		return dt.String()
	}
	if n, ok := onnxTypeNames[t]; ok {
		return n
	}
	return fmt.Sprintf("element type %d", t)
}

// decodeError is a malformed-input error; it wraps runtime.ErrInvalidModel.
func decodeError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", runtime.ErrInvalidModel, fmt.Sprintf(format, args...))
}

func unsupportedError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", runtime.ErrUnsupported, fmt.Sprintf(format, args...))
}

// Decode parses the bytes of an .onnx file (a serialized onnx.ModelProto).
// Malformed input yields an error wrapping runtime.ErrInvalidModel; valid
// files using features Kiln lacks (external tensor data, sparse
// initializers, element types without a tensor.DType) yield one wrapping
// runtime.ErrUnsupported.
func Decode(data []byte) (*ModelProto, error) {
	m := &ModelProto{Opsets: map[string]int64{}}
	sawOpset := false
	err := eachField(data, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		var err error
		switch num {
		case 1:
			m.IRVersion, err = asInt(typ, x, "ir_version")
		case 2:
			m.ProducerName, err = asString(typ, v, "producer_name")
		case 3:
			m.ProducerVersion, err = asString(typ, v, "producer_version")
		case 4:
			m.Domain, err = asString(typ, v, "domain")
		case 5:
			m.ModelVersion, err = asInt(typ, x, "model_version")
		case 6:
			m.DocString, err = asString(typ, v, "doc_string")
		case 7:
			if err = wantBytes(typ, "graph"); err == nil {
				m.Graph, err = decodeGraph(v, 1)
			}
		case 8:
			if err = wantBytes(typ, "opset_import"); err == nil {
				var dom string
				var ver int64
				dom, ver, err = decodeOpset(v)
				if dom == "ai.onnx" {
					dom = ""
				}
				m.Opsets[dom] = ver
				sawOpset = true
			}
		case 14:
			if err = wantBytes(typ, "metadata_props"); err == nil {
				var k, val string
				if k, val, err = decodeStringPair(v); err == nil {
					if m.Metadata == nil {
						m.Metadata = map[string]string{}
					}
					m.Metadata[k] = val
				}
			}
		case 25:
			if err = wantBytes(typ, "functions"); err == nil {
				var name string
				if name, err = decodeFunctionName(v); err == nil {
					m.Functions = append(m.Functions, name)
				}
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if m.Graph == nil {
		return nil, decodeError("model has no graph")
	}
	if !sawOpset {
		// IR versions before 3 had no opset_import; ai.onnx opset 1 is implied.
		m.Opsets[""] = 1
	}
	return m, nil
}

// eachField calls fn for every field in the message b. For varint, fixed32
// and fixed64 fields x holds the value; for length-delimited fields v holds
// the payload. Groups are skipped.
func eachField(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return decodeError("bad field tag: %v", protowire.ParseError(n))
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var u uint32
			u, n = protowire.ConsumeFixed32(b)
			x = uint64(u)
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return decodeError("field %d: %v", num, protowire.ParseError(n))
		}
		b = b[n:]
		if typ == protowire.StartGroupType {
			continue
		}
		if err := fn(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

func wantBytes(typ protowire.Type, field string) error {
	if typ != protowire.BytesType {
		return decodeError("field %s has wire type %d, want length-delimited", field, typ)
	}
	return nil
}

func asString(typ protowire.Type, v []byte, field string) (string, error) {
	if err := wantBytes(typ, field); err != nil {
		return "", err
	}
	return string(v), nil
}

func asInt(typ protowire.Type, x uint64, field string) (int64, error) {
	if typ != protowire.VarintType {
		return 0, decodeError("field %s has wire type %d, want varint", field, typ)
	}
	return int64(x), nil
}

func decodeOpset(b []byte) (string, int64, error) {
	var dom string
	var ver int64
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		var err error
		switch num {
		case 1:
			dom, err = asString(typ, v, "opset_import.domain")
		case 2:
			ver, err = asInt(typ, x, "opset_import.version")
		}
		return err
	})
	return dom, ver, err
}

func decodeStringPair(b []byte) (string, string, error) {
	var k, val string
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		var err error
		switch num {
		case 1:
			k, err = asString(typ, v, "key")
		case 2:
			val, err = asString(typ, v, "value")
		}
		return err
	})
	return k, val, err
}

func decodeFunctionName(b []byte) (string, error) {
	var name, dom string
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		var err error
		switch num {
		case 1:
			name, err = asString(typ, v, "function.name")
		case 10:
			dom, err = asString(typ, v, "function.domain")
		}
		return err
	})
	return dom + "." + name, err
}

func decodeGraph(b []byte, depth int) (*Graph, error) {
	if depth > maxDecodeDepth {
		return nil, decodeError("graphs nested deeper than %d", maxDecodeDepth)
	}
	g := &Graph{Initializers: map[string]*tensor.Tensor{}}
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		var err error
		switch num {
		case 1:
			if err = wantBytes(typ, "graph.node"); err == nil {
				var n *Node
				if n, err = decodeNode(v, depth); err == nil {
					g.Nodes = append(g.Nodes, n)
				}
			}
		case 2:
			g.Name, err = asString(typ, v, "graph.name")
		case 5:
			if err = wantBytes(typ, "graph.initializer"); err == nil {
				var t *tensor.Tensor
				if t, err = decodeTensor(v); err == nil {
					if _, dup := g.Initializers[t.Name]; dup {
						return decodeError("initializer %q defined twice", t.Name)
					}
					g.Initializers[t.Name] = t
				}
			}
		case 15:
			return unsupportedError("sparse initializers")
		case 11, 12, 13:
			if err = wantBytes(typ, "graph value info"); err == nil {
				var vi ValueInfo
				if vi, err = decodeValueInfo(v); err == nil {
					switch num {
					case 11:
						g.Inputs = append(g.Inputs, vi)
					case 12:
						g.Outputs = append(g.Outputs, vi)
					default:
						g.ValueInfo = append(g.ValueInfo, vi)
					}
				}
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return g, nil
}

func decodeNode(b []byte, depth int) (*Node, error) {
	n := &Node{}
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		var err error
		var s string
		switch num {
		case 1:
			if s, err = asString(typ, v, "node.input"); err == nil {
				n.Inputs = append(n.Inputs, s)
			}
		case 2:
			if s, err = asString(typ, v, "node.output"); err == nil {
				n.Outputs = append(n.Outputs, s)
			}
		case 3:
			n.Name, err = asString(typ, v, "node.name")
		case 4:
			n.OpType, err = asString(typ, v, "node.op_type")
		case 7:
			n.Domain, err = asString(typ, v, "node.domain")
		case 5:
			if err = wantBytes(typ, "node.attribute"); err == nil {
				var a *Attribute
				if a, err = decodeAttribute(v, depth); err == nil {
					if n.Attrs == nil {
						n.Attrs = map[string]*Attribute{}
					}
					if _, dup := n.Attrs[a.Name]; dup {
						return decodeError("node %q: attribute %q given twice", n.Name, a.Name)
					}
					n.Attrs[a.Name] = a
				}
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if n.OpType == "" {
		return nil, decodeError("node %q has no op_type", n.Name)
	}
	if n.Domain == "ai.onnx" {
		n.Domain = ""
	}
	return n, nil
}

// Attribute types beyond those op.go names.
const (
	attrSparseTensor  AttrType = 11
	attrSparseTensors AttrType = 12
	attrTypeProto     AttrType = 13
	attrTypeProtos    AttrType = 14
)

func decodeAttribute(b []byte, depth int) (*Attribute, error) {
	a := &Attribute{}
	var seen AttrType // the type implied by the fields present, for old files without "type"
	typeSet := false
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		var err error
		switch num {
		case 1:
			a.Name, err = asString(typ, v, "attribute.name")
		case 20:
			var t int64
			if t, err = asInt(typ, x, "attribute.type"); err == nil {
				a.Type = AttrType(t)
				typeSet = true
			}
		case 2:
			if typ != protowire.Fixed32Type {
				return decodeError("attribute f has wire type %d", typ)
			}
			a.F = math.Float32frombits(uint32(x))
			seen = AttrFloat
		case 3:
			a.I, err = asInt(typ, x, "attribute.i")
			seen = AttrInt
		case 4:
			a.S, err = asString(typ, v, "attribute.s")
			seen = AttrString
		case 5:
			if err = wantBytes(typ, "attribute.t"); err == nil {
				a.T, err = decodeTensor(v)
			}
			seen = AttrTensor
		case 6:
			if err = wantBytes(typ, "attribute.g"); err == nil {
				a.G, err = decodeGraph(v, depth+1)
			}
			seen = AttrGraph
		case 7:
			a.Floats, err = appendFloat32s(a.Floats, typ, v, x)
			seen = AttrFloats
		case 8:
			a.Ints, err = appendVarints(a.Ints, typ, v, x, func(u uint64) int64 { return int64(u) })
			seen = AttrInts
		case 9:
			var s string
			if s, err = asString(typ, v, "attribute.strings"); err == nil {
				a.Strings = append(a.Strings, s)
			}
			seen = AttrStrings
		case 10:
			if err = wantBytes(typ, "attribute.tensors"); err == nil {
				var t *tensor.Tensor
				if t, err = decodeTensor(v); err == nil {
					a.Tensors = append(a.Tensors, t)
				}
			}
			seen = AttrTensors
		case 11:
			if err = wantBytes(typ, "attribute.graphs"); err == nil {
				var g *Graph
				if g, err = decodeGraph(v, depth+1); err == nil {
					a.Graphs = append(a.Graphs, g)
				}
			}
			seen = AttrGraphs
		case 22:
			seen = attrSparseTensor
		case 23:
			seen = attrSparseTensors
		case 14:
			seen = attrTypeProto
		case 15:
			seen = attrTypeProtos
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if a.Name == "" {
		return nil, decodeError("attribute without a name")
	}
	if !typeSet {
		a.Type = seen
	}
	if a.Type < AttrUndefined || a.Type > attrTypeProtos {
		return nil, decodeError("attribute %q has unknown type %d", a.Name, a.Type)
	}
	return a, nil
}

// decodeTensor decodes a TensorProto into a tensor. Typed data fields and
// raw_data are both accepted; the element count must match the dims.
func decodeTensor(b []byte) (*tensor.Tensor, error) {
	var (
		dims     []int64
		dataType int32
		name     string
		raw      []byte
		hasRaw   bool
		floats   []float32
		int32s   []int64
		int64s   []int64
		doubles  []float64
		uint64s  []uint64
		strs     []string
		external bool
	)
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		var err error
		switch num {
		case 1:
			dims, err = appendVarints(dims, typ, v, x, func(u uint64) int64 { return int64(u) })
		case 2:
			var t int64
			t, err = asInt(typ, x, "tensor.data_type")
			dataType = int32(t)
		case 3:
			return unsupportedError("segmented tensors")
		case 4:
			floats, err = appendFloat32s(floats, typ, v, x)
		case 5:
			int32s, err = appendVarints(int32s, typ, v, x, func(u uint64) int64 { return int64(int32(u)) })
		case 6:
			var s string
			if s, err = asString(typ, v, "tensor.string_data"); err == nil {
				strs = append(strs, s)
			}
		case 7:
			int64s, err = appendVarints(int64s, typ, v, x, func(u uint64) int64 { return int64(u) })
		case 8:
			name, err = asString(typ, v, "tensor.name")
		case 9:
			if err = wantBytes(typ, "tensor.raw_data"); err == nil {
				raw, hasRaw = v, true
			}
		case 10:
			doubles, err = appendFloat64s(doubles, typ, v, x)
		case 11:
			uint64s, err = appendVarints(uint64s, typ, v, x, func(u uint64) uint64 { return u })
		case 13:
			external = true
		case 14:
			if x == 1 {
				external = true
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if external {
		return nil, unsupportedError("tensor %q keeps its data in an external file", name)
	}
	for _, d := range dims {
		if d < 0 {
			return nil, decodeError("tensor %q has negative dimension %d", name, d)
		}
	}
	n := tensor.NumElements(dims)
	if n < 0 {
		return nil, decodeError("tensor %q: dims %v overflow", name, dims)
	}
	dt, ok := dtypeFromONNX(dataType)
	if !ok {
		if dataType == onnxUndefined {
			return nil, decodeError("tensor %q has no data type", name)
		}
		return nil, unsupportedError("tensor %q has element type %s", name, onnxTypeName(dataType))
	}
	t := &tensor.Tensor{Name: name, DType: dt, Shape: dims}
	if t.Shape == nil {
		t.Shape = []int64{}
	}
	if hasRaw && len(floats)+len(int32s)+len(int64s)+len(doubles)+len(uint64s)+len(strs) > 0 {
		return nil, decodeError("tensor %q has both raw_data and typed data", name)
	}
	if hasRaw {
		if dt == tensor.String {
			return nil, decodeError("tensor %q: string tensors cannot use raw_data", name)
		}
		if len(raw) != n*dt.Size() {
			return nil, decodeError("tensor %q: raw_data holds %d bytes, dims %v of %v need %d", name, len(raw), dims, dt, n*dt.Size())
		}
		t.Data = decodeRaw(dt, raw, n)
		return t, nil
	}
	count := func(have int) error {
		if have != n {
			return decodeError("tensor %q: %d elements for dims %v", name, have, dims)
		}
		return nil
	}
	switch dt {
	case tensor.Float32:
		if len(int32s)+len(int64s)+len(doubles)+len(uint64s)+len(strs) > 0 {
			return nil, decodeError("tensor %q: float tensor with data in the wrong field", name)
		}
		if err := count(len(floats)); err != nil {
			return nil, err
		}
		if floats == nil {
			floats = []float32{}
		}
		t.Data = floats
	case tensor.Float64:
		if len(floats)+len(int32s)+len(int64s)+len(uint64s)+len(strs) > 0 {
			return nil, decodeError("tensor %q: double tensor with data in the wrong field", name)
		}
		if err := count(len(doubles)); err != nil {
			return nil, err
		}
		if doubles == nil {
			doubles = []float64{}
		}
		t.Data = doubles
	case tensor.Int64:
		if len(floats)+len(int32s)+len(doubles)+len(uint64s)+len(strs) > 0 {
			return nil, decodeError("tensor %q: int64 tensor with data in the wrong field", name)
		}
		if err := count(len(int64s)); err != nil {
			return nil, err
		}
		if int64s == nil {
			int64s = []int64{}
		}
		t.Data = int64s
	case tensor.Uint32, tensor.Uint64:
		if len(floats)+len(int32s)+len(int64s)+len(doubles)+len(strs) > 0 {
			return nil, decodeError("tensor %q: unsigned tensor with data in the wrong field", name)
		}
		if err := count(len(uint64s)); err != nil {
			return nil, err
		}
		if dt == tensor.Uint64 {
			if uint64s == nil {
				uint64s = []uint64{}
			}
			t.Data = uint64s
		} else {
			u := make([]uint32, n)
			for i, v := range uint64s {
				u[i] = uint32(v)
			}
			t.Data = u
		}
	case tensor.String:
		if len(floats)+len(int32s)+len(int64s)+len(doubles)+len(uint64s) > 0 {
			return nil, decodeError("tensor %q: string tensor with data in the wrong field", name)
		}
		if err := count(len(strs)); err != nil {
			return nil, err
		}
		if strs == nil {
			strs = []string{}
		}
		t.Data = strs
	default: // the types stored in int32_data
		if len(floats)+len(int64s)+len(doubles)+len(uint64s)+len(strs) > 0 {
			return nil, decodeError("tensor %q: %v tensor with data in the wrong field", name, dt)
		}
		if err := count(len(int32s)); err != nil {
			return nil, err
		}
		t.Data = narrowInt32s(dt, int32s)
	}
	return t, nil
}

func narrowInt32s(dt tensor.DType, v []int64) any {
	switch dt {
	case tensor.Int32:
		out := make([]int32, len(v))
		for i, x := range v {
			out[i] = int32(x)
		}
		return out
	case tensor.Int16:
		out := make([]int16, len(v))
		for i, x := range v {
			out[i] = int16(x)
		}
		return out
	case tensor.Int8:
		out := make([]int8, len(v))
		for i, x := range v {
			out[i] = int8(x)
		}
		return out
	case tensor.Uint16, tensor.Float16:
		out := make([]uint16, len(v))
		for i, x := range v {
			out[i] = uint16(x)
		}
		return out
	case tensor.Uint8:
		out := make([]uint8, len(v))
		for i, x := range v {
			out[i] = uint8(x)
		}
		return out
	case tensor.Bool:
		out := make([]bool, len(v))
		for i, x := range v {
			out[i] = x != 0
		}
		return out
	}
	return nil
}

// decodeRaw converts little-endian raw_data of n elements of type dt.
func decodeRaw(dt tensor.DType, raw []byte, n int) any {
	le32 := func(i int) uint32 {
		b := raw[4*i : 4*i+4]
		return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
	}
	le64 := func(i int) uint64 {
		b := raw[8*i : 8*i+8]
		return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
			uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
	}
	le16 := func(i int) uint16 { return uint16(raw[2*i]) | uint16(raw[2*i+1])<<8 }
	switch dt {
	case tensor.Float32:
		out := make([]float32, n)
		for i := range out {
			out[i] = math.Float32frombits(le32(i))
		}
		return out
	case tensor.Float64:
		out := make([]float64, n)
		for i := range out {
			out[i] = math.Float64frombits(le64(i))
		}
		return out
	case tensor.Int64:
		out := make([]int64, n)
		for i := range out {
			out[i] = int64(le64(i))
		}
		return out
	case tensor.Uint64:
		out := make([]uint64, n)
		for i := range out {
			out[i] = le64(i)
		}
		return out
	case tensor.Int32:
		out := make([]int32, n)
		for i := range out {
			out[i] = int32(le32(i))
		}
		return out
	case tensor.Uint32:
		out := make([]uint32, n)
		for i := range out {
			out[i] = le32(i)
		}
		return out
	case tensor.Int16:
		out := make([]int16, n)
		for i := range out {
			out[i] = int16(le16(i))
		}
		return out
	case tensor.Uint16, tensor.Float16:
		out := make([]uint16, n)
		for i := range out {
			out[i] = le16(i)
		}
		return out
	case tensor.Int8:
		out := make([]int8, n)
		for i := range out {
			out[i] = int8(raw[i])
		}
		return out
	case tensor.Uint8:
		return append([]uint8(nil), raw[:n]...)
	case tensor.Bool:
		out := make([]bool, n)
		for i := range out {
			out[i] = raw[i] != 0
		}
		return out
	}
	return nil
}

// appendVarints appends a repeated varint field given packed or unpacked.
func appendVarints[T any](dst []T, typ protowire.Type, v []byte, x uint64, conv func(uint64) T) ([]T, error) {
	switch typ {
	case protowire.VarintType:
		return append(dst, conv(x)), nil
	case protowire.BytesType:
		// Count first so the slice is allocated once and never beyond the
		// input size.
		cnt := 0
		for _, c := range v {
			if c < 0x80 {
				cnt++
			}
		}
		if dst == nil {
			dst = make([]T, 0, cnt)
		}
		for len(v) > 0 {
			u, n := protowire.ConsumeVarint(v)
			if n < 0 {
				return nil, decodeError("packed varints: %v", protowire.ParseError(n))
			}
			dst = append(dst, conv(u))
			v = v[n:]
		}
		return dst, nil
	}
	return nil, decodeError("repeated integer field has wire type %d", typ)
}

func appendFloat32s(dst []float32, typ protowire.Type, v []byte, x uint64) ([]float32, error) {
	switch typ {
	case protowire.Fixed32Type:
		return append(dst, math.Float32frombits(uint32(x))), nil
	case protowire.BytesType:
		if len(v)%4 != 0 {
			return nil, decodeError("packed floats: %d bytes", len(v))
		}
		if dst == nil {
			dst = make([]float32, 0, len(v)/4)
		}
		for i := 0; i+4 <= len(v); i += 4 {
			dst = append(dst, math.Float32frombits(uint32(v[i])|uint32(v[i+1])<<8|uint32(v[i+2])<<16|uint32(v[i+3])<<24))
		}
		return dst, nil
	}
	return nil, decodeError("repeated float field has wire type %d", typ)
}

func appendFloat64s(dst []float64, typ protowire.Type, v []byte, x uint64) ([]float64, error) {
	switch typ {
	case protowire.Fixed64Type:
		return append(dst, math.Float64frombits(x)), nil
	case protowire.BytesType:
		if len(v)%8 != 0 {
			return nil, decodeError("packed doubles: %d bytes", len(v))
		}
		if dst == nil {
			dst = make([]float64, 0, len(v)/8)
		}
		for i := 0; i+8 <= len(v); i += 8 {
			u, _ := protowire.ConsumeFixed64(v[i:])
			dst = append(dst, math.Float64frombits(u))
		}
		return dst, nil
	}
	return nil, decodeError("repeated double field has wire type %d", typ)
}

// decodeValueInfo decodes a ValueInfoProto. Types Kiln cannot represent
// (optional, sparse, opaque, element types without a tensor.DType) decode
// to KindOther or tensor.Invalid; Load rejects them where they matter.
func decodeValueInfo(b []byte) (ValueInfo, error) {
	var vi ValueInfo
	err := eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		var err error
		switch num {
		case 1:
			vi.Name, err = asString(typ, v, "value_info.name")
		case 2:
			if err = wantBytes(typ, "value_info.type"); err == nil {
				err = decodeType(v, &vi, 0)
			}
		}
		return err
	})
	return vi, err
}

// decodeType fills vi from a TypeProto. A sequence's element type and a
// map's value type land in Elem (and Key), so seq(map(int64, float))
// reads as Kind=KindSequence, Key=Int64, Elem=Float32.
func decodeType(b []byte, vi *ValueInfo, depth int) error {
	if depth > maxDecodeDepth {
		return decodeError("types nested deeper than %d", maxDecodeDepth)
	}
	vi.Kind = KindOther
	return eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch num {
		case 1: // tensor_type
			if err := wantBytes(typ, "type.tensor_type"); err != nil {
				return err
			}
			vi.Kind = KindTensor
			return decodeTensorType(v, vi)
		case 4: // sequence_type
			if err := wantBytes(typ, "type.sequence_type"); err != nil {
				return err
			}
			var inner ValueInfo
			inner.Kind = KindOther
			err := eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
				if num == 1 {
					if err := wantBytes(typ, "sequence.elem_type"); err != nil {
						return err
					}
					return decodeType(v, &inner, depth+1)
				}
				return nil
			})
			if err != nil {
				return err
			}
			vi.Kind = KindSequence
			vi.Elem, vi.Key, vi.Shape = inner.Elem, inner.Key, nil
			vi.ElemType = inner.ElemType
			if inner.Kind != KindTensor && inner.Kind != KindMap {
				vi.Kind = KindOther
			}
		case 5: // map_type
			if err := wantBytes(typ, "type.map_type"); err != nil {
				return err
			}
			var inner ValueInfo
			inner.Kind = KindOther
			var key int64
			err := eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
				switch num {
				case 1:
					var err error
					key, err = asInt(typ, x, "map.key_type")
					return err
				case 2:
					if err := wantBytes(typ, "map.value_type"); err != nil {
						return err
					}
					return decodeType(v, &inner, depth+1)
				}
				return nil
			})
			if err != nil {
				return err
			}
			vi.Kind = KindMap
			vi.Key, _ = dtypeFromONNX(int32(key))
			vi.Elem, vi.Shape = inner.Elem, nil
			vi.ElemType = inner.ElemType
			if inner.Kind != KindTensor {
				vi.Kind = KindOther
			}
		case 7, 8, 9: // opaque, sparse tensor, optional
			vi.Kind = KindOther
		}
		return nil
	})
}

func decodeTensorType(b []byte, vi *ValueInfo) error {
	return eachField(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch num {
		case 1:
			t, err := asInt(typ, x, "tensor_type.elem_type")
			if err != nil {
				return err
			}
			vi.Elem, _ = dtypeFromONNX(int32(t))
			vi.ElemType = int32(t)
		case 2:
			if err := wantBytes(typ, "tensor_type.shape"); err != nil {
				return err
			}
			shape := []int64{}
			err := eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
				if num != 1 {
					return nil
				}
				if err := wantBytes(typ, "shape.dim"); err != nil {
					return err
				}
				d := int64(-1)
				err := eachField(v, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
					if num == 1 {
						val, err := asInt(typ, x, "dim_value")
						if err != nil {
							return err
						}
						if val >= 0 {
							d = val
						}
					}
					return nil
				})
				shape = append(shape, d)
				return err
			})
			if err != nil {
				return err
			}
			vi.Shape = shape
		}
		return nil
	})
}
