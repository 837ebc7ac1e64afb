package serving

import (
	"math"
	"sync"

	"github.com/kiln-ml/kiln/tensor"
)

// v2Request is a decoded Open Inference Protocol inference request.
type v2Request struct {
	id      string
	inputs  []*tensor.Tensor
	outputs []v2Output // none: all outputs
	// binaryOutput is the request parameter binary_data_output: the
	// default for outputs that do not say.
	binaryOutput bool
	inputsBuf    [2]*tensor.Tensor
}

// requestPool recycles decoded requests (their inputs slice).
var requestPool = sync.Pool{New: func() any { return new(v2Request) }}

// release returns req to the pool; its tensors stay valid.
func (req *v2Request) release() {
	*req = v2Request{}
	requestPool.Put(req)
}

// inputBox holds a decoded input's tensor and (usually) its shape in one
// allocation.
type inputBox struct {
	t    tensor.Tensor
	dims [4]int64
}

// v2Output is one requested output.
type v2Output struct {
	name      string
	binary    bool // parameter binary_data
	binarySet bool
}

// maxDims bounds the rank of a request tensor.
const maxDims = 32

// v2Input is an input being decoded: its data may come before its
// datatype and shape in the JSON object, and its contents from the binary
// part of the body.
type v2Input struct {
	name     string
	dt       tensor.DType
	dtSet    bool
	shape    []int64
	dims     [4]int64 // backing for shape while decoding
	shapeSet bool
	binSize  int64 // parameter binary_data_size; -1 if absent
	data     any   // decoded in place when the datatype came first
	span     []byte
	hasData  bool
}

// decodeV2 decodes an inference request body. jsonLen is the
// Inference-Header-Content-Length (the size of the JSON part; the rest of
// the body is binary tensor data), or -1 when the whole body is JSON.
// intern returns a known string equal to b (a model input or output name)
// to spare an allocation, or "" when b is not one.
func decodeV2(body []byte, jsonLen int, intern func([]byte) string) (*v2Request, error) {
	js, bin := body, []byte(nil)
	if jsonLen >= 0 {
		if jsonLen > len(body) {
			return nil, badRequest("Inference-Header-Content-Length %d is larger than the body (%d bytes)", jsonLen, len(body))
		}
		js, bin = body[:jsonLen], body[jsonLen:]
	}
	r := &jsonReader{b: js}
	req := requestPool.Get().(*v2Request)
	ok := false
	defer func() {
		if !ok {
			req.release()
		}
	}()
	if err := r.beginObject(); err != nil {
		return nil, err
	}
	sawInputs := false
	for first := true; ; first = false {
		key, done, err := r.nextKey(first)
		if err != nil {
			return nil, err
		}
		if done {
			break
		}
		switch string(key) {
		case "id":
			if r.peek() == 'n' && r.literal("null") {
				continue
			}
			if req.id, err = r.str(); err != nil {
				return nil, err
			}
		case "parameters":
			err = decodeParams(r, func(k []byte) error {
				if string(k) == "binary_data_output" {
					v, err := r.boolean()
					req.binaryOutput = v
					return err
				}
				return r.skip()
			})
		case "inputs":
			sawInputs = true
			req.inputs, bin, err = decodeInputs(r, req.inputsBuf[:0], bin, intern)
		case "outputs":
			req.outputs, err = decodeOutputs(r, intern)
		default:
			err = r.skip()
		}
		if err != nil {
			return nil, err
		}
	}
	if err := r.end(); err != nil {
		return nil, err
	}
	if !sawInputs {
		return nil, badRequest("inference request has no \"inputs\"")
	}
	if len(bin) != 0 {
		return nil, badRequest("%d bytes of binary data are not claimed by any input's binary_data_size", len(bin))
	}
	ok = true
	return req, nil
}

// decodeParams walks a parameters object, calling member for each key
// with the reader positioned at its value; member must consume it.
func decodeParams(r *jsonReader, member func(key []byte) error) error {
	if r.peek() == 'n' && r.literal("null") {
		return nil
	}
	if err := r.beginObject(); err != nil {
		return err
	}
	for first := true; ; first = false {
		key, done, err := r.nextKey(first)
		if err != nil || done {
			return err
		}
		if err := member(key); err != nil {
			return err
		}
	}
}

func internOr(intern func([]byte) string, b []byte) string {
	if intern != nil {
		if s := intern(b); s != "" {
			return s
		}
	}
	return string(b)
}

func decodeInputs(r *jsonReader, out []*tensor.Tensor, bin []byte, intern func([]byte) string) ([]*tensor.Tensor, []byte, error) {
	if err := r.beginArray(); err != nil {
		return nil, nil, err
	}
	for first := true; ; first = false {
		done, err := r.nextElem(first)
		if err != nil {
			return nil, nil, err
		}
		if done {
			return out, bin, nil
		}
		in := v2Input{binSize: -1}
		if err := decodeInput(r, &in, intern); err != nil {
			return nil, nil, err
		}
		t, rest, err := in.finish(bin, len(out))
		if err != nil {
			return nil, nil, err
		}
		bin = rest
		out = append(out, t)
	}
}

func decodeInput(r *jsonReader, in *v2Input, intern func([]byte) string) error {
	if err := r.beginObject(); err != nil {
		return err
	}
	for first := true; ; first = false {
		key, done, err := r.nextKey(first)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		switch string(key) {
		case "name":
			b, err := r.stringBytes()
			if err != nil {
				return err
			}
			in.name = internOr(intern, b)
		case "datatype":
			b, err := r.stringBytes()
			if err != nil {
				return err
			}
			if in.dt, err = parseDType(b); err != nil {
				return badRequest("input %q: %v", in.name, err)
			}
			in.dtSet = true
		case "shape":
			if in.shape, err = decodeShape(r, in.dims[:0]); err != nil {
				return badRequest("input %q: %v", in.name, err)
			}
			in.shapeSet = true
		case "parameters":
			err = decodeParams(r, func(k []byte) error {
				if string(k) == "binary_data_size" {
					tok, kind, err := r.number()
					if err != nil {
						return err
					}
					v, ok := parseIntTok(tok, kind, 0, math.MaxInt64)
					if !ok {
						return badRequest("input %q: binary_data_size must be a non-negative integer", in.name)
					}
					in.binSize = v
					return nil
				}
				return r.skip()
			})
		case "data":
			in.hasData = true
			if in.dtSet {
				n := -1
				if in.shapeSet {
					n = tensor.NumElements(in.shape)
				}
				in.data, err = decodeData(r, in.dt, n, len(r.b))
				if err != nil {
					return badRequest("input %q: %v", in.name, err)
				}
			} else {
				start := r.pos
				if err := r.skip(); err != nil {
					return err
				}
				in.span = r.b[start:r.pos]
			}
		default:
			err = r.skip()
		}
		if err != nil {
			return err
		}
	}
}

// finish checks a decoded input and builds its tensor, taking binary
// contents from bin; it returns what is left of bin.
func (in *v2Input) finish(bin []byte, index int) (*tensor.Tensor, []byte, error) {
	if in.name == "" {
		return nil, nil, badRequest("input %d has no name", index)
	}
	if !in.dtSet {
		return nil, nil, badRequest("input %q has no datatype", in.name)
	}
	if !in.shapeSet {
		return nil, nil, badRequest("input %q has no shape", in.name)
	}
	n := tensor.NumElements(in.shape)
	if n < 0 {
		return nil, nil, badRequest("input %q: shape %v is too large", in.name, in.shape)
	}
	var err error
	switch {
	case in.binSize >= 0 && in.hasData:
		return nil, nil, badRequest("input %q has both \"data\" and binary_data_size", in.name)
	case in.binSize >= 0:
		if in.binSize > int64(len(bin)) {
			return nil, nil, badRequest("input %q: binary_data_size %d overruns the %d bytes of binary data left", in.name, in.binSize, len(bin))
		}
		if in.data, err = decodeRaw(in.name, in.dt, bin[:in.binSize], n); err != nil {
			return nil, nil, err
		}
		bin = bin[in.binSize:]
	case !in.hasData:
		return nil, nil, badRequest("input %q has no data", in.name)
	case in.data == nil:
		sub := jsonReader{b: in.span}
		if in.data, err = decodeData(&sub, in.dt, n, len(in.span)); err != nil {
			return nil, nil, badRequest("input %q: %v", in.name, err)
		}
	}
	box := &inputBox{t: tensor.Tensor{Name: in.name, DType: in.dt, Data: in.data}}
	if len(in.shape) <= len(box.dims) {
		box.t.Shape = append(box.dims[:0], in.shape...)
	} else {
		box.t.Shape = append([]int64(nil), in.shape...)
	}
	t := &box.t
	if got := t.Len(); got != n {
		return nil, nil, badRequest("input %q: %d data elements for shape %v, which holds %d", in.name, got, in.shape, n)
	}
	return t, bin, nil
}

func parseDType(b []byte) (tensor.DType, error) {
	// Exact OIP names first (no allocation), then any case.
	switch string(b) {
	case "FP32":
		return tensor.Float32, nil
	case "FP64":
		return tensor.Float64, nil
	case "INT64":
		return tensor.Int64, nil
	case "INT32":
		return tensor.Int32, nil
	case "BYTES":
		return tensor.String, nil
	case "BOOL":
		return tensor.Bool, nil
	}
	return tensor.ParseDType(string(b))
}

func decodeShape(r *jsonReader, shape []int64) ([]int64, error) {
	if err := r.beginArray(); err != nil {
		return nil, err
	}
	for first := true; ; first = false {
		done, err := r.nextElem(first)
		if err != nil {
			return nil, err
		}
		if done {
			return shape, nil
		}
		tok, kind, err := r.number()
		if err != nil {
			return nil, err
		}
		d, ok := parseIntTok(tok, kind, 0, math.MaxInt64)
		if !ok {
			return nil, badRequest("shape dimension %s is not a non-negative integer", tok)
		}
		if len(shape) == maxDims {
			return nil, badRequest("shape has more than %d dimensions", maxDims)
		}
		shape = append(shape, d)
	}
}

func decodeOutputs(r *jsonReader, intern func([]byte) string) ([]v2Output, error) {
	if err := r.beginArray(); err != nil {
		return nil, err
	}
	var out []v2Output
	for first := true; ; first = false {
		done, err := r.nextElem(first)
		if err != nil {
			return nil, err
		}
		if done {
			return out, nil
		}
		var o v2Output
		if err := r.beginObject(); err != nil {
			return nil, err
		}
		for first := true; ; first = false {
			key, done, err := r.nextKey(first)
			if err != nil {
				return nil, err
			}
			if done {
				break
			}
			switch string(key) {
			case "name":
				b, err := r.stringBytes()
				if err != nil {
					return nil, err
				}
				o.name = internOr(intern, b)
			case "parameters":
				err = decodeParams(r, func(k []byte) error {
					switch string(k) {
					case "binary_data":
						v, err := r.boolean()
						o.binary, o.binarySet = v, true
						return err
					case "class_count":
						tok, kind, err := r.number()
						if err != nil {
							return err
						}
						if v, ok := parseIntTok(tok, kind, math.MinInt64, math.MaxInt64); !ok || v != 0 {
							return badRequest("output %q: the classification extension (class_count) is not supported", o.name)
						}
						return nil
					}
					return r.skip()
				})
			default:
				err = r.skip()
			}
			if err != nil {
				return nil, err
			}
		}
		if o.name == "" {
			return nil, badRequest("requested output %d has no name", len(out))
		}
		out = append(out, o)
	}
}

// decodeData decodes tensor data, nested or flat (or one bare scalar),
// into a slice of dt's element type. n is the expected element count (-1
// if unknown), used only to size the slice; limit bounds that size (each
// element takes at least one byte of input).
func decodeData(r *jsonReader, dt tensor.DType, n, limit int) (any, error) {
	c := n
	if c < 0 || c > limit {
		c = min(limit, 1024)
	}
	switch dt {
	case tensor.Float32:
		return decodeFloats(r, make([]float32, 0, c), 32)
	case tensor.Float64:
		return decodeFloats(r, make([]float64, 0, c), 64)
	case tensor.Float16:
		return decodeList(r, make([]uint16, 0, c), parseF16)
	case tensor.Int64:
		return decodeList(r, make([]int64, 0, c), parseI64)
	case tensor.Int32:
		return decodeList(r, make([]int32, 0, c), parseI32)
	case tensor.Int16:
		return decodeList(r, make([]int16, 0, c), parseI16)
	case tensor.Int8:
		return decodeList(r, make([]int8, 0, c), parseI8)
	case tensor.Uint64:
		return decodeList(r, make([]uint64, 0, c), parseU64)
	case tensor.Uint32:
		return decodeList(r, make([]uint32, 0, c), parseU32)
	case tensor.Uint16:
		return decodeList(r, make([]uint16, 0, c), parseU16)
	case tensor.Uint8:
		return decodeList(r, make([]uint8, 0, c), parseU8)
	case tensor.Bool:
		return decodeList(r, make([]bool, 0, c), parseBool)
	case tensor.String:
		return decodeList(r, make([]string, 0, c), parseStr)
	}
	return nil, badRequest("unsupported datatype %v", dt)
}

// decodeList appends the elements of a (possibly nested) JSON array, or a
// single scalar, to dst.
func decodeList[T any](r *jsonReader, dst []T, parse func(*jsonReader) (T, error)) ([]T, error) {
	if r.peek() != '[' {
		v, err := parse(r)
		if err != nil {
			return nil, elemError(err, len(dst))
		}
		return append(dst, v), nil
	}
	if err := r.beginArray(); err != nil {
		return nil, err
	}
	for first := true; ; first = false {
		done, err := r.nextElem(first)
		if err != nil {
			return nil, err
		}
		if done {
			return dst, nil
		}
		if r.peek() == '[' {
			if dst, err = decodeList(r, dst, parse); err != nil {
				return nil, err
			}
			continue
		}
		v, err := parse(r)
		if err != nil {
			return nil, elemError(err, len(dst))
		}
		dst = append(dst, v)
	}
}

// decodeFloats is decodeList with parseFloatElem for each element, with its
// common case, a number right after a ',', in one loop without a call
// through a function value.
func decodeFloats[T float32 | float64](r *jsonReader, dst []T, bits int) ([]T, error) {
	if r.peek() != '[' {
		v, err := parseFloatElem(r, bits)
		if err != nil {
			return nil, elemError(err, len(dst))
		}
		return append(dst, T(v)), nil
	}
	if err := r.beginArray(); err != nil {
		return nil, err
	}
	b := r.b
	for first := true; ; first = false {
		if p := r.pos; !first && p+1 < len(b) && b[p] == ',' && (b[p+1]-'0' <= 9 || b[p+1] == '-') {
			r.pos++
			v, err := r.float(bits)
			if err != nil {
				return nil, elemError(err, len(dst))
			}
			dst = append(dst, T(v))
			continue
		}
		done, err := r.nextElem(first)
		if err != nil {
			return nil, err
		}
		if done {
			return dst, nil
		}
		if r.peek() == '[' {
			if dst, err = decodeFloats(r, dst, bits); err != nil {
				return nil, err
			}
			continue
		}
		v, err := parseFloatElem(r, bits)
		if err != nil {
			return nil, elemError(err, len(dst))
		}
		dst = append(dst, T(v))
	}
}

func elemError(err error, i int) error {
	return badRequest("data element %d: %v", i, err)
}

func parseF16(r *jsonReader) (uint16, error) {
	f, err := parseFloatElem(r, 32)
	return tensor.Float32ToHalf(float32(f)), err
}

// parseFloatElem reads a number; null reads as NaN (as MLServer and
// pandas read missing values).
func parseFloatElem(r *jsonReader, bits int) (float64, error) {
	switch r.peek() {
	case 'n':
		if r.literal("null") {
			return math.NaN(), nil
		}
	case 't', 'f':
		b, err := r.boolean()
		if b {
			return 1, err
		}
		return 0, err
	}
	return r.float(bits)
}

func parseIntElem(r *jsonReader, lo, hi int64, dt tensor.DType) (int64, error) {
	if c := r.peek(); c == 't' || c == 'f' {
		b, err := r.boolean()
		if b {
			return 1, err
		}
		return 0, err
	}
	tok, kind, err := r.number()
	if err != nil {
		return 0, err
	}
	v, ok := parseIntTok(tok, kind, lo, hi)
	if !ok {
		return 0, badRequest("%s is not a valid %v value", tok, dt)
	}
	return v, nil
}

func parseUintElem(r *jsonReader, hi uint64, dt tensor.DType) (uint64, error) {
	if c := r.peek(); c == 't' || c == 'f' {
		b, err := r.boolean()
		if b {
			return 1, err
		}
		return 0, err
	}
	tok, kind, err := r.number()
	if err != nil {
		return 0, err
	}
	v, ok := parseUintTok(tok, kind, hi)
	if !ok {
		return 0, badRequest("%s is not a valid %v value", tok, dt)
	}
	return v, nil
}

func parseI64(r *jsonReader) (int64, error) {
	return parseIntElem(r, math.MinInt64, math.MaxInt64, tensor.Int64)
}

func parseI32(r *jsonReader) (int32, error) {
	v, err := parseIntElem(r, math.MinInt32, math.MaxInt32, tensor.Int32)
	return int32(v), err
}

func parseI16(r *jsonReader) (int16, error) {
	v, err := parseIntElem(r, math.MinInt16, math.MaxInt16, tensor.Int16)
	return int16(v), err
}

func parseI8(r *jsonReader) (int8, error) {
	v, err := parseIntElem(r, math.MinInt8, math.MaxInt8, tensor.Int8)
	return int8(v), err
}

func parseU64(r *jsonReader) (uint64, error) {
	return parseUintElem(r, math.MaxUint64, tensor.Uint64)
}

func parseU32(r *jsonReader) (uint32, error) {
	v, err := parseUintElem(r, math.MaxUint32, tensor.Uint32)
	return uint32(v), err
}

func parseU16(r *jsonReader) (uint16, error) {
	v, err := parseUintElem(r, math.MaxUint16, tensor.Uint16)
	return uint16(v), err
}

func parseU8(r *jsonReader) (uint8, error) {
	v, err := parseUintElem(r, math.MaxUint8, tensor.Uint8)
	return uint8(v), err
}

func parseBool(r *jsonReader) (bool, error) {
	switch r.peek() {
	case 't', 'f':
		return r.boolean()
	}
	tok, kind, err := r.number()
	if err != nil {
		return false, err
	}
	v, ok := parseIntTok(tok, kind, 0, 1)
	if !ok {
		return false, badRequest("%s is not a BOOL value", tok)
	}
	return v == 1, nil
}

func parseStr(r *jsonReader) (string, error) {
	if r.peek() != '"' {
		return "", badRequest("BYTES elements must be strings")
	}
	return r.str()
}
