package onnx

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// A small ModelProto writer for tests that need models Python did not
// make (malformed graphs, unknown operators, out-of-order nodes).

type pbAttr struct {
	name string
	i    *int64
	f    *float32
	s    *string
	ints []int64
}

func attrInt(name string, v int64) pbAttr     { return pbAttr{name: name, i: &v} }
func attrFloat(name string, v float32) pbAttr { return pbAttr{name: name, f: &v} }
func attrString(name, v string) pbAttr        { return pbAttr{name: name, s: &v} }
func attrInts(name string, v ...int64) pbAttr { return pbAttr{name: name, ints: v} }

type pbNode struct {
	op, domain string
	in, out    []string
	attrs      []pbAttr
}

type pbValue struct {
	name  string
	elem  int32   // ONNX element type
	shape []int64 // -1 for a symbolic dimension; nil for no shape
}

type pbModel struct {
	ir      int64
	opsets  map[string]int64
	nodes   []pbNode
	inputs  []pbValue
	outputs []pbValue
	inits   []*tensor.Tensor
}

func appendMsg(b []byte, num protowire.Number, msg []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, msg)
}

func appendStr(b []byte, num protowire.Number, s string) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func encodeTensorProto(t *tensor.Tensor) []byte {
	var b []byte
	for _, d := range t.Shape {
		b = appendVarint(b, 1, uint64(d))
	}
	var raw []byte
	switch d := t.Data.(type) {
	case []float32:
		b = appendVarint(b, 2, onnxFloat)
		for _, v := range d {
			raw = protowire.AppendFixed32(raw, math.Float32bits(v))
		}
	case []int64:
		b = appendVarint(b, 2, onnxInt64)
		for _, v := range d {
			raw = protowire.AppendFixed64(raw, uint64(v))
		}
	default:
		panic("encodeTensorProto: unsupported type")
	}
	b = appendStr(b, 8, t.Name)
	return appendMsg(b, 9, raw)
}

func encodeValueInfo(v pbValue) []byte {
	var tt []byte
	tt = appendVarint(tt, 1, uint64(v.elem))
	if v.shape != nil {
		var shape []byte
		for _, d := range v.shape {
			var dim []byte
			if d < 0 {
				dim = appendStr(dim, 2, "N")
			} else {
				dim = appendVarint(dim, 1, uint64(d))
			}
			shape = appendMsg(shape, 1, dim)
		}
		tt = appendMsg(tt, 2, shape)
	}
	typ := appendMsg(nil, 1, tt)
	return appendMsg(appendStr(nil, 1, v.name), 2, typ)
}

func (m pbModel) encode() []byte {
	var g []byte
	for _, n := range m.nodes {
		var nb []byte
		for _, in := range n.in {
			nb = appendStr(nb, 1, in)
		}
		for _, o := range n.out {
			nb = appendStr(nb, 2, o)
		}
		nb = appendStr(nb, 4, n.op)
		if n.domain != "" {
			nb = appendStr(nb, 7, n.domain)
		}
		for _, a := range n.attrs {
			ab := appendStr(nil, 1, a.name)
			switch {
			case a.i != nil:
				ab = appendVarint(ab, 20, uint64(AttrInt))
				ab = appendVarint(ab, 3, uint64(*a.i))
			case a.f != nil:
				ab = appendVarint(ab, 20, uint64(AttrFloat))
				ab = protowire.AppendFixed32(protowire.AppendTag(ab, 2, protowire.Fixed32Type), math.Float32bits(*a.f))
			case a.s != nil:
				ab = appendVarint(ab, 20, uint64(AttrString))
				ab = appendStr(ab, 4, *a.s)
			default:
				ab = appendVarint(ab, 20, uint64(AttrInts))
				for _, v := range a.ints {
					ab = appendVarint(ab, 8, uint64(v))
				}
			}
			nb = appendMsg(nb, 5, ab)
		}
		g = appendMsg(g, 1, nb)
	}
	g = appendStr(g, 2, "test")
	for _, t := range m.inits {
		g = appendMsg(g, 5, encodeTensorProto(t))
	}
	for _, v := range m.inputs {
		g = appendMsg(g, 11, encodeValueInfo(v))
	}
	for _, v := range m.outputs {
		g = appendMsg(g, 12, encodeValueInfo(v))
	}
	ir := m.ir
	if ir == 0 {
		ir = 8
	}
	b := appendVarint(nil, 1, uint64(ir))
	b = appendStr(b, 2, "kiln-test")
	b = appendMsg(b, 7, g)
	opsets := m.opsets
	if opsets == nil {
		opsets = map[string]int64{"": 17}
	}
	for dom, v := range opsets {
		b = appendMsg(b, 8, appendVarint(appendStr(nil, 1, dom), 2, uint64(v)))
	}
	return b
}

func mustTensor(t *testing.T, name string, data any, shape ...int64) *tensor.Tensor {
	t.Helper()
	x, err := tensor.FromSlice(name, data, shape...)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// A two-layer graph written out of order: Relu(x*W + b) -> Identity ->
// Softmax.
func smallMLP() pbModel {
	return pbModel{
		nodes: []pbNode{
			{op: "Softmax", in: []string{"h2"}, out: []string{"p"}, attrs: []pbAttr{attrInt("axis", 1)}},
			{op: "Identity", in: []string{"h"}, out: []string{"h2"}},
			{op: "Relu", in: []string{"z"}, out: []string{"h"}},
			{op: "Add", in: []string{"xw", "b"}, out: []string{"z"}},
			{op: "MatMul", in: []string{"x", "W"}, out: []string{"xw"}},
		},
		inputs:  []pbValue{{name: "x", elem: onnxFloat, shape: []int64{-1, 2}}, {name: "W", elem: onnxFloat, shape: []int64{2, 3}}},
		outputs: []pbValue{{name: "p", elem: onnxFloat, shape: []int64{-1, 3}}},
		inits: []*tensor.Tensor{
			{Name: "W", DType: tensor.Float32, Shape: []int64{2, 3}, Data: []float32{1, 0, -1, 0, 1, 2}},
			{Name: "b", DType: tensor.Float32, Shape: []int64{3}, Data: []float32{0.5, 0, 0}},
		},
	}
}

func TestExecutorOrderFoldingAndFusion(t *testing.T) {
	m, err := Load(smallMLP().encode())
	if err != nil {
		t.Fatal(err)
	}
	sig := m.Signature()
	if len(sig.Inputs) != 1 || sig.Inputs[0].Name != "x" || sig.Inputs[0].DType != tensor.Float32 ||
		len(sig.Inputs[0].Shape) != 2 || sig.Inputs[0].Shape[0] != -1 {
		t.Errorf("inputs %+v: W is an initializer and must not be an input", sig.Inputs)
	}
	// MatMul, Add and Relu fuse into one dense kernel, Identity goes;
	// Softmax stays.
	if len(m.nodes) != 2 {
		t.Errorf("%d nodes after fusion, want 2", len(m.nodes))
	}
	x := mustTensor(t, "x", []float32{1, 2, -1, 0.5}, 2, 2)
	out, err := m.Predict(context.Background(), []*tensor.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	// Row 1: x*W+b = [1.5, 2, 3] -> relu same; row 2: [-0.5, 0.5, 2] -> [0, 0.5, 2].
	want := [][]float64{{1.5, 2, 3}, {0, 0.5, 2}}
	got := out[0].Data.([]float32)
	for r, row := range want {
		var sum float64
		for _, v := range row {
			sum += math.Exp(v)
		}
		for j, v := range row {
			if w := math.Exp(v) / sum; math.Abs(float64(got[r*3+j])-w) > 1e-6 {
				t.Errorf("p[%d,%d] = %v, want %v", r, j, got[r*3+j], w)
			}
		}
	}
	if out[0].Name != "p" || out[0].Shape[0] != 2 || out[0].Shape[1] != 3 {
		t.Errorf("output %q %v", out[0].Name, out[0].Shape)
	}
}

func TestLoadErrors(t *testing.T) {
	unknown := smallMLP()
	unknown.opsets = map[string]int64{"": 17, "ai.onnx.ml": 3, "com.example": 2}
	unknown.nodes = append(unknown.nodes,
		pbNode{op: "Loop", in: []string{"p"}, out: []string{"q"}},
		pbNode{op: "Frobnicate", domain: "com.example", in: []string{"q"}, out: []string{"r"}},
		pbNode{op: "Loop", in: []string{"r"}, out: []string{"s"}},
	)
	newOpset := smallMLP()
	newOpset.opsets = map[string]int64{"": 99}
	cycle := smallMLP()
	cycle.nodes[4].in = []string{"x", "p"} // MatMul reads Softmax's output
	undefined := smallMLP()
	undefined.nodes[3].in = []string{"xw", "nowhere"}
	twice := smallMLP()
	twice.nodes[2].out = []string{"z"}
	noDomain := smallMLP()
	noDomain.nodes[2].domain = "ai.onnx.ml"
	badAttr := smallMLP()
	badAttr.nodes[0].attrs = []pbAttr{attrString("axis", "one")}
	badIR := smallMLP()
	badIR.ir = 2
	missingOut := smallMLP()
	missingOut.outputs = []pbValue{{name: "ghost", elem: onnxFloat}}
	badFold := smallMLP()
	badFold.nodes = append(badFold.nodes, pbNode{op: "Reshape", in: []string{"b", "shape"}, out: []string{"rb"}})
	badFold.inits = append(badFold.inits, &tensor.Tensor{Name: "shape", DType: tensor.Int64, Shape: []int64{1}, Data: []int64{7}})

	tests := []struct {
		name     string
		data     []byte
		want     error
		contains []string
	}{
		{"unsupported operators", unknown.encode(), runtime.ErrUnsupported, []string{"ai.onnx.Loop (opset 17)", "com.example.Frobnicate (opset 2)"}},
		{"opset too new", newOpset.encode(), runtime.ErrUnsupported, []string{"opset 99", "ai.onnx"}},
		{"cycle", cycle.encode(), runtime.ErrInvalidModel, []string{"cycle"}},
		{"undefined input", undefined.encode(), runtime.ErrInvalidModel, []string{"nowhere"}},
		{"value produced twice", twice.encode(), runtime.ErrInvalidModel, []string{"two nodes"}},
		{"domain not imported", noDomain.encode(), runtime.ErrInvalidModel, []string{"ai.onnx.ml"}},
		{"attribute of the wrong type", badAttr.encode(), runtime.ErrInvalidModel, []string{"axis"}},
		{"IR version", badIR.encode(), runtime.ErrUnsupported, []string{"IR version 2"}},
		{"output nobody makes", missingOut.encode(), runtime.ErrInvalidModel, []string{"ghost"}},
		{"constant folding fails", badFold.encode(), runtime.ErrInvalidModel, []string{"Reshape"}},
		{"not protobuf", []byte("this is not an onnx file"), runtime.ErrInvalidModel, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := load(context.Background(), tt.data, "bad.onnx")
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			msg := err.Error()
			if !strings.Contains(msg, "bad.onnx") {
				t.Errorf("error %q does not name the file", msg)
			}
			for _, c := range tt.contains {
				if !strings.Contains(msg, c) {
					t.Errorf("error %q does not mention %q", msg, c)
				}
			}
			if strings.Count(msg, "ai.onnx.Loop") > 1 {
				t.Errorf("error %q lists an operator twice", msg)
			}
		})
	}
}

func TestPredictErrors(t *testing.T) {
	m, err := Load(smallMLP().encode())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		in   []*tensor.Tensor
		want error
	}{
		{"wrong dtype", ctx, []*tensor.Tensor{mustTensor(t, "x", []float64{1, 2}, 1, 2)}, runtime.ErrInvalidInput},
		{"wrong width", ctx, []*tensor.Tensor{mustTensor(t, "x", []float32{1, 2, 3}, 1, 3)}, runtime.ErrInvalidInput},
		{"wrong rank", ctx, []*tensor.Tensor{mustTensor(t, "x", []float32{1, 2})}, runtime.ErrInvalidInput},
		{"too many inputs", ctx, []*tensor.Tensor{mustTensor(t, "x", []float32{1, 2}, 1, 2), mustTensor(t, "y", []float32{1}, 1)}, runtime.ErrInvalidInput},
		{"data does not fill the shape", ctx, []*tensor.Tensor{{Name: "x", DType: tensor.Float32, Shape: []int64{2, 2}, Data: []float32{1}}}, runtime.ErrInvalidInput},
		{"canceled", canceled, []*tensor.Tensor{mustTensor(t, "x", []float32{1, 2}, 1, 2)}, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := m.Predict(tt.ctx, tt.in); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}

	// A shape mismatch found by a kernel is the caller's fault too.
	bad := pbModel{
		nodes:   []pbNode{{op: "Add", in: []string{"a", "b"}, out: []string{"c"}}},
		inputs:  []pbValue{{name: "a", elem: onnxFloat}, {name: "b", elem: onnxFloat}},
		outputs: []pbValue{{name: "c", elem: onnxFloat}},
	}
	m2, err := Load(bad.encode())
	if err != nil {
		t.Fatal(err)
	}
	_, err = m2.Predict(ctx, []*tensor.Tensor{mustTensor(t, "a", []float32{1, 2, 3}), mustTensor(t, "b", []float32{1, 2})})
	if !errors.Is(err, runtime.ErrInvalidInput) || !strings.Contains(err.Error(), "broadcast") {
		t.Errorf("err = %v, want an ErrInvalidInput about broadcasting", err)
	}
}

func TestBackendSources(t *testing.T) {
	data := smallMLP().encode()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "model.onnx"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "other.onnx"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{"models/m/model.onnx": {Data: data}, "models/m.onnx": {Data: data}}
	ctx := context.Background()
	good := []runtime.Source{
		{Path: filepath.Join(dir, "model.onnx")},
		{Path: dir},
		{Path: dir, Options: map[string]any{"data": "other.onnx"}},
		{FS: fsys, Path: "models/m"},
		{FS: fsys, Path: "models/m.onnx"},
	}
	for _, src := range good {
		m, err := runtime.Load(ctx, "onnx", src)
		if err != nil {
			t.Errorf("Load(%+v): %v", src, err)
			continue
		}
		if len(m.Signature().Outputs) != 1 {
			t.Errorf("Load(%+v): signature %+v", src, m.Signature())
		}
		m.Close()
	}
	bad := []runtime.Source{
		{},
		{Path: filepath.Join(dir, "missing.onnx")},
		{Path: dir, Options: map[string]any{"data": "../model.onnx"}},
		{Path: dir, Options: map[string]any{"data": 3}},
		{FS: fsys, Path: "models"},
	}
	for _, src := range bad {
		if _, err := runtime.Load(ctx, "onnx", src); err == nil {
			t.Errorf("Load(%+v) succeeded", src)
		}
	}
}

func TestConcurrentPredict(t *testing.T) {
	m, err := Load(smallMLP().encode())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ref, err := m.Predict(ctx, []*tensor.Tensor{mustTensor(t, "x", []float32{0.25, -1}, 1, 2)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				rows := 1 + (g+i)%5
				x := make([]float32, 2*rows)
				for r := 0; r < rows; r++ {
					x[2*r], x[2*r+1] = 0.25, -1
				}
				in, _ := tensor.FromSlice("x", x, int64(rows), 2)
				out, err := m.Predict(ctx, []*tensor.Tensor{in})
				if err != nil {
					errs <- err
					return
				}
				p := out[0].Data.([]float32)
				for r := 0; r < rows; r++ {
					for j := 0; j < 3; j++ {
						if p[r*3+j] != ref[0].Data.([]float32)[j] {
							errs <- errors.New("concurrent results differ")
							return
						}
					}
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// Identity of an initializer is folded at load time; the caller gets a
// copy, so changing it cannot change the model.
func TestStaticOutputIsCopied(t *testing.T) {
	pm := pbModel{
		nodes:   []pbNode{{op: "Identity", in: []string{"w"}, out: []string{"y"}}, {op: "Identity", in: []string{"x"}, out: []string{"x2"}}},
		inputs:  []pbValue{{name: "x", elem: onnxFloat}},
		outputs: []pbValue{{name: "y", elem: onnxFloat}, {name: "x2", elem: onnxFloat}},
		inits:   []*tensor.Tensor{{Name: "w", DType: tensor.Float32, Shape: []int64{2}, Data: []float32{1, 2}}},
	}
	m, err := Load(pm.encode())
	if err != nil {
		t.Fatal(err)
	}
	x := mustTensor(t, "x", []float32{5})
	out, err := m.Predict(context.Background(), []*tensor.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	out[0].Data.([]float32)[0] = 99
	again, _ := m.Predict(context.Background(), []*tensor.Tensor{x})
	if again[0].Data.([]float32)[0] != 1 {
		t.Errorf("changing an output changed the model: %v", again[0].Data)
	}
	if out[1].Name != "x2" || x.Name != "x" {
		t.Errorf("output named %q, input renamed to %q", out[1].Name, x.Name)
	}
}

// A ZipMap output is served as an [N, classes] tensor with the labels in
// the signature.
func TestZipMapSignature(t *testing.T) {
	pm := pbModel{
		opsets: map[string]int64{"": 17, "ai.onnx.ml": 1},
		nodes: []pbNode{{op: "ZipMap", domain: "ai.onnx.ml", in: []string{"p"}, out: []string{"probs"},
			attrs: []pbAttr{attrInts("classlabels_int64s", 3, 7)}}},
		inputs: []pbValue{{name: "p", elem: onnxFloat}},
	}
	data := pm.encode()
	// The output is seq(map(int64, float)), which pbModel cannot write:
	// add it by hand.
	mapT := appendMsg(appendVarint(nil, 1, onnxInt64), 2, appendMsg(nil, 1, appendVarint(nil, 1, onnxFloat)))
	seqT := appendMsg(nil, 1, appendMsg(nil, 5, mapT))
	vi := appendMsg(appendStr(nil, 1, "probs"), 2, appendMsg(nil, 4, seqT))
	p, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	extra, err := decodeValueInfo(vi)
	if err != nil {
		t.Fatal(err)
	}
	p.Graph.Outputs = append(p.Graph.Outputs, extra)
	m, err := compile(context.Background(), p, "zipmap")
	if err != nil {
		t.Fatal(err)
	}
	spec := m.Signature().Outputs[0]
	if spec.DType != tensor.Float32 || strings.Join(spec.Labels, ",") != "3,7" || len(spec.Shape) != 2 || spec.Shape[1] != 2 {
		t.Errorf("spec %+v", spec)
	}
	out, err := m.Predict(context.Background(), []*tensor.Tensor{mustTensor(t, "p", []float32{0.1, 0.9, 0.6, 0.4}, 2, 2)})
	if err != nil {
		t.Fatal(err)
	}
	if out[0].Name != "probs" || out[0].Shape[0] != 2 || out[0].Data.([]float32)[1] != 0.9 {
		t.Errorf("out %+v", out[0])
	}
	if _, err := m.Predict(context.Background(), []*tensor.Tensor{mustTensor(t, "p", []float32{1, 2, 3}, 1, 3)}); !errors.Is(err, runtime.ErrInvalidInput) {
		t.Errorf("three columns for two labels: err = %v", err)
	}
	// ZipMap also takes a single row as a 1-D tensor.
	out, err = m.Predict(context.Background(), []*tensor.Tensor{mustTensor(t, "p", []float32{0.25, 0.75})})
	if err != nil || fmt.Sprint(out[0].Shape) != "[1 2]" || out[0].Data.([]float32)[1] != 0.75 {
		t.Errorf("1-D input: %v, %+v", err, out)
	}
}

// An empty batch runs through an MLP (as in onnxruntime; its classifier
// pipelines reject empty batches in ArrayFeatureExtractor). skl2onnx ends
// this regressor with Reshape(-1, 1), so the output is [0, 1].
func TestEmptyBatch(t *testing.T) {
	data, err := os.ReadFile("testdata/models/mlp_regressor/model.onnx")
	if err != nil {
		t.Fatal(err)
	}
	m, err := Load(data)
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.Predict(context.Background(), []*tensor.Tensor{{Name: "X", DType: tensor.Float32, Shape: []int64{0, 5}, Data: []float32{}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || fmt.Sprint(out[0].Shape) != "[0 1]" {
		t.Errorf("outputs %d, shape %v", len(out), out[0].Shape)
	}
}

// Buffers reused between calls never belong to a result already returned:
// outputs of one call survive the next, also when a reused buffer's value
// reaches an output through a view (here Reshape), which forbids reuse.
func TestReusedBuffersDoNotLeak(t *testing.T) {
	view := smallMLP()
	view.nodes = append(view.nodes, pbNode{op: "Reshape", in: []string{"h", "flat"}, out: []string{"hflat"}})
	view.outputs = append(view.outputs, pbValue{name: "hflat", elem: onnxFloat})
	view.inits = append(view.inits, &tensor.Tensor{Name: "flat", DType: tensor.Int64, Shape: []int64{1}, Data: []int64{-1}})
	for name, pm := range map[string]pbModel{"private": smallMLP(), "through a view": view} {
		t.Run(name, func(t *testing.T) {
			m, err := Load(pm.encode())
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			first, err := m.Predict(ctx, []*tensor.Tensor{mustTensor(t, "x", []float32{1, 2}, 1, 2)})
			if err != nil {
				t.Fatal(err)
			}
			keep := make([]*tensor.Tensor, len(first))
			for i, o := range first {
				keep[i] = o.Clone()
			}
			for i := 0; i < 3; i++ {
				if _, err := m.Predict(ctx, []*tensor.Tensor{mustTensor(t, "x", []float32{-3, 7}, 1, 2)}); err != nil {
					t.Fatal(err)
				}
			}
			for i := range first {
				if fmt.Sprint(first[i].Data) != fmt.Sprint(keep[i].Data) {
					t.Errorf("output %d changed from %v to %v", i, keep[i].Data, first[i].Data)
				}
			}
			reused := 0
			for _, en := range m.nodes {
				if en.reuse != nil {
					reused++
				}
			}
			if want := map[string]int{"private": 1, "through a view": 0}[name]; reused != want {
				t.Errorf("%d nodes reuse buffers, want %d", reused, want)
			}
		})
	}
}
