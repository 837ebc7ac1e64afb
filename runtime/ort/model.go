//go:build ort

package ort

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"sync"

	ortlib "github.com/yalue/onnxruntime_go"

	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// How an output comes back from a session run.
type outKind uint8

const (
	outTensor outKind = iota // allocated by onnxruntime
	outScalar                // rank 0: preallocated (the binding cannot return scalars)
	outZipMap                // sequence of maps, one per row
)

type output struct {
	kind outKind
	elem ortlib.TensorElementDataType // element type the session returns
	// half: an FP16 output read through its FP32 Cast; flat: an output of
	// undeclared rank, read flattened with its shape (see rewrite).
	half, flat bool
	// For outZipMap: the column of each key.
	intCol map[int64]int
	strCol map[string]int
}

// model is an onnxruntime session behind runtime.Model.
type model struct {
	mu   sync.RWMutex // Close waits for running Predicts
	sess *ortlib.DynamicAdvancedSession
	sig  runtime.Signature
	outs []output
	// sessOut are the session's output names: one per output, two for
	// flat ones.
	sessOut []string
}

var errClosed = errors.New("ort: model is closed")

func newModel(raw []byte, file string, threads int) (*model, error) {
	opts, err := ortlib.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("session options: %w", err)
	}
	defer opts.Destroy()
	if threads > 0 {
		if err := opts.SetIntraOpNumThreads(threads); err != nil {
			return nil, fmt.Errorf("intra_op_threads: %w", err)
		}
	}
	var ins, outs []ortlib.InputOutputInfo
	if file != "" {
		ins, outs, err = ortlib.GetInputOutputInfoWithOptions(file, opts)
	} else {
		ins, outs, err = ortlib.GetInputOutputInfoWithONNXData(raw)
	}
	if err != nil {
		return nil, ortError(err)
	}
	g, err := readGraph(raw)
	if err != nil {
		return nil, err
	}
	m := &model{}
	if err := m.buildSignature(g, ins, outs); err != nil {
		return nil, err
	}
	inNames := specNames(m.sig.Inputs)
	var rw rewrite
	rw.elems = map[string]uint64{}
	for i := range m.outs {
		o := &m.outs[i]
		name := m.sig.Outputs[i].Name
		if o.half {
			rw.casts = append(rw.casts, name)
			name += castSuffix
		}
		if o.flat {
			rw.flats = append(rw.flats, name)
			rw.elems[name] = uint64(o.elem)
			m.sessOut = append(m.sessOut, name+flatSuffix, name+shapeSuffix)
			continue
		}
		m.sessOut = append(m.sessOut, name)
	}
	if !rw.empty() {
		// The session runs a rewritten copy of the model, from memory.
		if raw, err = rw.apply(raw); err != nil {
			return nil, err
		}
		file = ""
	}
	outNames := m.sessOut
	if file != "" {
		m.sess, err = ortlib.NewDynamicAdvancedSession(file, inNames, outNames, opts)
	} else {
		m.sess, err = ortlib.NewDynamicAdvancedSessionWithONNXData(raw, inNames, outNames, opts)
	}
	if err != nil {
		return nil, ortError(err)
	}
	return m, nil
}

func specNames(specs []runtime.TensorSpec) []string {
	out := make([]string, len(specs))
	for i, s := range specs {
		out[i] = s.Name
	}
	return out
}

// dtypeOf maps onnxruntime's element types to Kiln's.
func dtypeOf(t ortlib.TensorElementDataType) (tensor.DType, bool) {
	switch t {
	case ortlib.TensorElementDataTypeFloat:
		return tensor.Float32, true
	case ortlib.TensorElementDataTypeDouble:
		return tensor.Float64, true
	case ortlib.TensorElementDataTypeFloat16:
		return tensor.Float16, true
	case ortlib.TensorElementDataTypeInt8:
		return tensor.Int8, true
	case ortlib.TensorElementDataTypeInt16:
		return tensor.Int16, true
	case ortlib.TensorElementDataTypeInt32:
		return tensor.Int32, true
	case ortlib.TensorElementDataTypeInt64:
		return tensor.Int64, true
	case ortlib.TensorElementDataTypeUint8:
		return tensor.Uint8, true
	case ortlib.TensorElementDataTypeUint16:
		return tensor.Uint16, true
	case ortlib.TensorElementDataTypeUint32:
		return tensor.Uint32, true
	case ortlib.TensorElementDataTypeUint64:
		return tensor.Uint64, true
	case ortlib.TensorElementDataTypeBool:
		return tensor.Bool, true
	case ortlib.TensorElementDataTypeString:
		return tensor.String, true
	}
	return tensor.Invalid, false
}

func (m *model) buildSignature(g *graphInfo, ins, outs []ortlib.InputOutputInfo) error {
	for _, in := range ins {
		if in.OrtValueType != ortlib.ONNXTypeTensor {
			return fmt.Errorf("%w: input %q is a %v; this backend passes tensors only", runtime.ErrUnsupported, in.Name, in.OrtValueType)
		}
		dt, ok := dtypeOf(in.DataType)
		if !ok {
			return fmt.Errorf("%w: input %q has element type %v", runtime.ErrUnsupported, in.Name, in.DataType)
		}
		shape := declaredShape(g, in)
		if dt == tensor.String && shape != nil && len(shape) == 0 {
			return fmt.Errorf("%w: input %q is a string scalar", runtime.ErrUnsupported, in.Name)
		}
		m.sig.Inputs = append(m.sig.Inputs, runtime.TensorSpec{Name: in.Name, DType: dt, Shape: shape})
	}
	for _, o := range outs {
		switch o.OrtValueType {
		case ortlib.ONNXTypeTensor:
			dt, ok := dtypeOf(o.DataType)
			if !ok {
				return fmt.Errorf("%w: output %q has element type %v", runtime.ErrUnsupported, o.Name, o.DataType)
			}
			spec := runtime.TensorSpec{Name: o.Name, DType: dt, Shape: declaredShape(g, o)}
			out := output{kind: outTensor, elem: o.DataType}
			if dt == tensor.Float16 {
				out.half, out.elem = true, ortlib.TensorElementDataTypeFloat
			}
			if spec.Shape == nil {
				out.flat = true
			} else if len(spec.Shape) == 0 {
				if dt == tensor.String {
					return fmt.Errorf("%w: output %q is a string scalar", runtime.ErrUnsupported, o.Name)
				}
				out.kind = outScalar
			}
			m.sig.Outputs = append(m.sig.Outputs, spec)
			m.outs = append(m.outs, out)
		case ortlib.ONNXTypeSequence:
			z := g.zipMaps[o.Name]
			if z == nil || len(z.labels()) == 0 {
				return fmt.Errorf("%w: output %q is a sequence that no labelled ZipMap produces; this backend converts only ZipMap's sequence of maps", runtime.ErrUnsupported, o.Name)
			}
			out := output{kind: outZipMap}
			if z.strKeys != nil {
				out.strCol = map[string]int{}
				for i, k := range z.strKeys {
					out.strCol[k] = i
				}
			} else {
				out.intCol = map[int64]int{}
				for i, k := range z.intKeys {
					out.intCol[k] = i
				}
			}
			labels := z.labels()
			m.sig.Outputs = append(m.sig.Outputs, runtime.TensorSpec{Name: o.Name, DType: tensor.Float32, Shape: []int64{-1, int64(len(labels))}, Labels: labels})
			m.outs = append(m.outs, out)
		default:
			return fmt.Errorf("%w: output %q is a %v", runtime.ErrUnsupported, o.Name, o.OrtValueType)
		}
	}
	return nil
}

// declaredShape is the value's shape with -1 for dynamic dimensions, or
// nil when the model declares none (onnxruntime reports rank 0 then).
func declaredShape(g *graphInfo, info ortlib.InputOutputInfo) []int64 {
	if len(info.Dimensions) == 0 && !g.shaped[info.Name] {
		return nil
	}
	return append([]int64{}, info.Dimensions...)
}

func (m *model) Signature() runtime.Signature { return m.sig }

// Close destroys the session, after any Predict under way.
func (m *model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sess == nil {
		return nil
	}
	err := m.sess.Destroy()
	m.sess = nil
	return err
}

func (m *model) Predict(ctx context.Context, inputs []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.sess == nil {
		return nil, errClosed
	}
	in, err := runtime.MatchInputs(m.sig, inputs)
	if err != nil {
		return nil, err
	}
	ins := make([]ortlib.Value, len(in))
	outs := make([]ortlib.Value, len(m.sessOut))
	defer func() {
		for _, v := range ins {
			destroy(v)
		}
		for _, v := range outs {
			destroy(v)
		}
	}()
	for i, x := range in {
		if ins[i], err = toValue(x); err != nil {
			return nil, fmt.Errorf("%w: input %q: %w", runtime.ErrInvalidInput, x.Name, err)
		}
	}
	j := 0
	for i, o := range m.outs {
		if outs[j], err = preallocate(o); err != nil {
			return nil, fmt.Errorf("ort: output %q: %w", m.sig.Outputs[i].Name, err)
		}
		j++
		if o.flat {
			j++
		}
	}
	if err := m.run(ctx, ins, outs); err != nil {
		return nil, err
	}
	result := make([]*tensor.Tensor, len(m.outs))
	j = 0
	for i := range m.outs {
		o := &m.outs[i]
		name := m.sig.Outputs[i].Name
		var shape ortlib.Value
		if o.flat {
			shape = outs[j+1]
		}
		if result[i], err = fromValue(name, outs[j], shape, o); err != nil {
			return nil, fmt.Errorf("ort: output %q: %w", name, err)
		}
		j++
		if o.flat {
			j++
		}
	}
	return result, nil
}

// destroy frees a value. After a failed run the binding can leave typed
// nil pointers among the outputs; those are skipped.
func destroy(v ortlib.Value) {
	if v == nil {
		return
	}
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && rv.IsNil() {
		return
	}
	v.Destroy()
}

// run runs the session, terminating it when ctx is done.
func (m *model) run(ctx context.Context, ins, outs []ortlib.Value) error {
	if ctx.Done() == nil {
		return runError(m.sess.Run(ins, outs))
	}
	ro, err := ortlib.NewRunOptions()
	if err != nil {
		return fmt.Errorf("ort: run options: %w", err)
	}
	defer ro.Destroy()
	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(done)
		ro.Terminate()
	})
	err = m.sess.RunWithOptions(ins, outs, ro)
	if !stop() {
		<-done
		if err != nil {
			return ctx.Err()
		}
	}
	return runError(err)
}

func runError(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: onnxruntime: %w", runtime.ErrInvalidInput, err)
}

// toValue wraps a Kiln tensor as an onnxruntime value; numeric data is
// shared, not copied.
func toValue(x *tensor.Tensor) (ortlib.Value, error) {
	shape := x.Shape
	switch d := x.Data.(type) {
	case []float32:
		return newValue(shape, d)
	case []float64:
		return newValue(shape, d)
	case []int8:
		return newValue(shape, d)
	case []int16:
		return newValue(shape, d)
	case []int32:
		return newValue(shape, d)
	case []int64:
		return newValue(shape, d)
	case []uint8:
		return newValue(shape, d)
	case []uint16:
		if x.DType == tensor.Float16 {
			return halfValue(shape, d)
		}
		return newValue(shape, d)
	case []uint32:
		return newValue(shape, d)
	case []uint64:
		return newValue(shape, d)
	case []bool:
		return newValue(shape, d)
	case []string:
		t, err := ortlib.NewStringTensor(ortlib.NewShape(shape...))
		if err != nil {
			return nil, err
		}
		if err := t.SetContents(d); err != nil {
			t.Destroy()
			return nil, err
		}
		return t, nil
	}
	return nil, fmt.Errorf("datatype %v", x.DType)
}

func newValue[T ortlib.TensorData](shape []int64, data []T) (ortlib.Value, error) {
	if len(shape) == 0 {
		return value(ortlib.NewScalar(data[0]))
	}
	return value(ortlib.NewTensor(ortlib.NewShape(shape...), data))
}

// value turns a binding constructor's result into an interface value that
// is nil on error (not a typed nil pointer).
func value[V ortlib.Value](v V, err error) (ortlib.Value, error) {
	if err != nil {
		return nil, err
	}
	return v, nil
}

func halfValue(shape []int64, bits []uint16) (ortlib.Value, error) {
	if len(shape) == 0 || len(bits) == 0 {
		return nil, errors.New("FP16 scalars and empty FP16 tensors are not supported by the onnxruntime_go binding")
	}
	b := make([]byte, 2*len(bits))
	for i, h := range bits {
		binary.LittleEndian.PutUint16(b[2*i:], h)
	}
	return value(ortlib.NewCustomDataTensor(ortlib.NewShape(shape...), b, ortlib.TensorElementDataTypeFloat16))
}

// preallocate creates the outputs that onnxruntime_go cannot allocate
// itself; the others stay nil for onnxruntime to allocate.
func preallocate(o output) (ortlib.Value, error) {
	switch o.kind {
	case outScalar:
		switch o.elem {
		case ortlib.TensorElementDataTypeFloat:
			return value(ortlib.NewEmptyScalar[float32]())
		case ortlib.TensorElementDataTypeDouble:
			return value(ortlib.NewEmptyScalar[float64]())
		case ortlib.TensorElementDataTypeInt8:
			return value(ortlib.NewEmptyScalar[int8]())
		case ortlib.TensorElementDataTypeInt16:
			return value(ortlib.NewEmptyScalar[int16]())
		case ortlib.TensorElementDataTypeInt32:
			return value(ortlib.NewEmptyScalar[int32]())
		case ortlib.TensorElementDataTypeInt64:
			return value(ortlib.NewEmptyScalar[int64]())
		case ortlib.TensorElementDataTypeUint8:
			return value(ortlib.NewEmptyScalar[uint8]())
		case ortlib.TensorElementDataTypeUint16:
			return value(ortlib.NewEmptyScalar[uint16]())
		case ortlib.TensorElementDataTypeUint32:
			return value(ortlib.NewEmptyScalar[uint32]())
		case ortlib.TensorElementDataTypeUint64:
			return value(ortlib.NewEmptyScalar[uint64]())
		case ortlib.TensorElementDataTypeBool:
			return value(ortlib.NewEmptyScalar[bool]())
		}
		return nil, fmt.Errorf("%w: scalar of element type %v", runtime.ErrUnsupported, o.elem)
	}
	return nil, nil
}

// fromValue converts an onnxruntime output into a Kiln tensor. Numeric
// data already lives in Go memory (the binding copies it) and is taken
// over without another copy.
func fromValue(name string, v, shape ortlib.Value, o *output) (*tensor.Tensor, error) {
	if o.kind == outZipMap {
		return fromZipMap(name, v, o)
	}
	t, err := fromTensor(name, v)
	if err != nil {
		return nil, err
	}
	if o.flat {
		s, ok := shape.(*ortlib.Tensor[int64])
		if !ok {
			return nil, fmt.Errorf("shape output is a %T", shape)
		}
		if tensor.NumElements(s.GetData()) != t.Len() {
			return nil, fmt.Errorf("shape %v does not hold %d values", s.GetData(), t.Len())
		}
		t.Shape = append([]int64{}, s.GetData()...)
	}
	if !o.half {
		return t, nil
	}
	f, ok := t.Data.([]float32)
	if !ok {
		return nil, fmt.Errorf("FP16 output cast to %v", t.DType)
	}
	h := make([]uint16, len(f))
	for i, x := range f {
		h[i] = tensor.Float32ToHalf(x)
	}
	return wrap(name, tensor.Float16, t.Shape, h)
}

func fromTensor(name string, v ortlib.Value) (*tensor.Tensor, error) {
	shape := []int64(v.GetShape())
	switch t := v.(type) {
	case *ortlib.Tensor[float32]:
		return wrap(name, tensor.Float32, shape, t.GetData())
	case *ortlib.Tensor[float64]:
		return wrap(name, tensor.Float64, shape, t.GetData())
	case *ortlib.Tensor[int8]:
		return wrap(name, tensor.Int8, shape, t.GetData())
	case *ortlib.Tensor[int16]:
		return wrap(name, tensor.Int16, shape, t.GetData())
	case *ortlib.Tensor[int32]:
		return wrap(name, tensor.Int32, shape, t.GetData())
	case *ortlib.Tensor[int64]:
		return wrap(name, tensor.Int64, shape, t.GetData())
	case *ortlib.Tensor[uint8]:
		return wrap(name, tensor.Uint8, shape, t.GetData())
	case *ortlib.Tensor[uint16]:
		return wrap(name, tensor.Uint16, shape, t.GetData())
	case *ortlib.Tensor[uint32]:
		return wrap(name, tensor.Uint32, shape, t.GetData())
	case *ortlib.Tensor[uint64]:
		return wrap(name, tensor.Uint64, shape, t.GetData())
	case *ortlib.Tensor[bool]:
		return wrap(name, tensor.Bool, shape, t.GetData())
	case *ortlib.StringTensor:
		s, err := t.GetContents()
		if err != nil {
			return nil, err
		}
		return wrap(name, tensor.String, shape, s)
	case *ortlib.Scalar[float32]:
		return wrap(name, tensor.Float32, nil, []float32{t.GetData()})
	case *ortlib.Scalar[float64]:
		return wrap(name, tensor.Float64, nil, []float64{t.GetData()})
	case *ortlib.Scalar[int8]:
		return wrap(name, tensor.Int8, nil, []int8{t.GetData()})
	case *ortlib.Scalar[int16]:
		return wrap(name, tensor.Int16, nil, []int16{t.GetData()})
	case *ortlib.Scalar[int32]:
		return wrap(name, tensor.Int32, nil, []int32{t.GetData()})
	case *ortlib.Scalar[int64]:
		return wrap(name, tensor.Int64, nil, []int64{t.GetData()})
	case *ortlib.Scalar[uint8]:
		return wrap(name, tensor.Uint8, nil, []uint8{t.GetData()})
	case *ortlib.Scalar[uint16]:
		return wrap(name, tensor.Uint16, nil, []uint16{t.GetData()})
	case *ortlib.Scalar[uint32]:
		return wrap(name, tensor.Uint32, nil, []uint32{t.GetData()})
	case *ortlib.Scalar[uint64]:
		return wrap(name, tensor.Uint64, nil, []uint64{t.GetData()})
	case *ortlib.Scalar[bool]:
		return wrap(name, tensor.Bool, nil, []bool{t.GetData()})
	}
	return nil, fmt.Errorf("%w: onnxruntime returned a %T", runtime.ErrUnsupported, v)
}

func wrap(name string, dt tensor.DType, shape []int64, data any) (*tensor.Tensor, error) {
	if shape == nil {
		shape = []int64{}
	}
	t := &tensor.Tensor{Name: name, DType: dt, Shape: shape, Data: data}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return t, nil
}

// fromZipMap turns a sequence of maps (one per row, class label → score)
// into an FP32 [rows, classes] tensor in the ZipMap's label order.
func fromZipMap(name string, v ortlib.Value, o *output) (*tensor.Tensor, error) {
	seq, ok := v.(*ortlib.Sequence)
	if !ok {
		return nil, fmt.Errorf("onnxruntime returned a %T, want a sequence", v)
	}
	rows, _ := seq.GetValues()
	k := len(o.intCol) + len(o.strCol)
	data := make([]float32, len(rows)*k)
	for r, rv := range rows {
		mp, ok := rv.(*ortlib.Map)
		if !ok {
			return nil, fmt.Errorf("row %d is a %T, want a map", r, rv)
		}
		keys, vals, _ := mp.GetKeysAndValues()
		scores, ok := vals.(*ortlib.Tensor[float32])
		if !ok {
			return nil, fmt.Errorf("row %d has values of type %T, want float", r, vals)
		}
		sv := scores.GetData()
		row := data[r*k : (r+1)*k]
		switch kt := keys.(type) {
		case *ortlib.Tensor[int64]:
			for j, key := range kt.GetData() {
				c, ok := o.intCol[key]
				if !ok || j >= len(sv) {
					return nil, fmt.Errorf("row %d has unknown class %d", r, key)
				}
				row[c] = sv[j]
			}
		case *ortlib.StringTensor:
			ks, err := kt.GetContents()
			if err != nil {
				return nil, err
			}
			for j, key := range ks {
				c, ok := o.strCol[key]
				if !ok || j >= len(sv) {
					return nil, fmt.Errorf("row %d has unknown class %q", r, key)
				}
				row[c] = sv[j]
			}
		default:
			return nil, fmt.Errorf("row %d has keys of type %T", r, keys)
		}
	}
	return wrap(name, tensor.Float32, []int64{int64(len(rows)), int64(k)}, data)
}

var _ runtime.Model = (*model)(nil)
