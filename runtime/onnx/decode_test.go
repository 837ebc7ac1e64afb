package onnx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// TestDecodeMatchesONNX decodes the files written by gen_core.py and
// compares them with what onnx's Python reader saw in the same bytes.
func TestDecodeMatchesONNX(t *testing.T) {
	files, err := filepath.Glob("testdata/decode/*.onnx")
	if err != nil || len(files) == 0 {
		t.Fatalf("no decode fixtures (run testdata/gen_core.py): %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".onnx")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Decode(data)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			want, err := os.ReadFile(strings.TrimSuffix(f, ".onnx") + ".json")
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.Marshal(describeModel(m))
			if err != nil {
				t.Fatal(err)
			}
			if err := sameJSON(decodeJSON(t, want), decodeJSON(t, got), ""); err != nil {
				t.Error(err)
			}
		})
	}
}

func decodeJSON(t *testing.T, b []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("json: %v", err)
	}
	return v
}

// sameJSON compares two decoded JSON values; numbers compare by value
// (integers exactly, others as float64).
func sameJSON(want, got any, path string) error {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: got %T, want object", path, got)
		}
		keys := map[string]bool{}
		for k := range w {
			keys[k] = true
		}
		for k := range g {
			keys[k] = true
		}
		sorted := make([]string, 0, len(keys))
		for k := range keys {
			sorted = append(sorted, k)
		}
		sort.Strings(sorted)
		for _, k := range sorted {
			if err := sameJSON(w[k], g[k], path+"."+k); err != nil {
				return err
			}
		}
		return nil
	case []any:
		g, ok := got.([]any)
		if !ok {
			return fmt.Errorf("%s: got %v, want %v", path, got, want)
		}
		if len(g) != len(w) {
			return fmt.Errorf("%s: got %d elements, want %d", path, len(g), len(w))
		}
		for i := range w {
			if err := sameJSON(w[i], g[i], fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		return nil
	case json.Number:
		g, ok := got.(json.Number)
		if !ok {
			return fmt.Errorf("%s: got %v, want %v", path, got, want)
		}
		if wi, err := strconv.ParseInt(string(w), 10, 64); err == nil {
			if gi, err := strconv.ParseInt(string(g), 10, 64); err == nil && gi == wi {
				return nil
			}
		}
		if wu, err := strconv.ParseUint(string(w), 10, 64); err == nil {
			if gu, err := strconv.ParseUint(string(g), 10, 64); err == nil && gu == wu {
				return nil
			}
		}
		wf, err1 := strconv.ParseFloat(string(w), 64)
		gf, err2 := strconv.ParseFloat(string(g), 64)
		if err1 != nil || err2 != nil || wf != gf {
			return fmt.Errorf("%s: got %s, want %s", path, g, w)
		}
		return nil
	default:
		if fmt.Sprint(want) != fmt.Sprint(got) {
			return fmt.Errorf("%s: got %v, want %v", path, got, want)
		}
		return nil
	}
}

func describeModel(m *ModelProto) map[string]any {
	meta := map[string]any{}
	for k, v := range m.Metadata {
		meta[k] = v
	}
	ops := map[string]any{}
	for k, v := range m.Opsets {
		ops[k] = v
	}
	return map[string]any{
		"ir_version":       m.IRVersion,
		"opsets":           ops,
		"producer_name":    m.ProducerName,
		"producer_version": m.ProducerVersion,
		"metadata":         meta,
		"graph":            describeGraph(m.Graph),
	}
}

func describeGraph(g *Graph) map[string]any {
	vis := func(v []ValueInfo) []any {
		out := []any{}
		for _, vi := range v {
			out = append(out, describeValueInfo(vi))
		}
		return out
	}
	// Initializers in file order are not kept by the map; gen_core.py
	// lists them in file order, so sort both sides by name.
	var inits []any
	names := make([]string, 0, len(g.Initializers))
	for n := range g.Initializers {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		inits = append(inits, describeTensor(g.Initializers[n]))
	}
	if inits == nil {
		inits = []any{}
	}
	nodes := []any{}
	for _, n := range g.Nodes {
		attrs := map[string]any{}
		for k, a := range n.Attrs {
			attrs[k] = describeAttr(a)
		}
		nodes = append(nodes, map[string]any{
			"name": n.Name, "op_type": n.OpType, "domain": n.Domain,
			"inputs": strs(n.Inputs), "outputs": strs(n.Outputs), "attrs": attrs,
		})
	}
	return map[string]any{
		"name": g.Name, "inputs": vis(g.Inputs), "outputs": vis(g.Outputs),
		"value_info": vis(g.ValueInfo), "initializers": inits, "nodes": nodes,
	}
}

func strs(s []string) []any {
	out := []any{}
	for _, x := range s {
		out = append(out, x)
	}
	return out
}

func describeValueInfo(v ValueInfo) map[string]any {
	kinds := map[ValueKind]string{KindTensor: "tensor", KindSequence: "sequence", KindMap: "map", KindOther: "other"}
	d := map[string]any{"name": v.Name, "kind": kinds[v.Kind]}
	if v.Kind == KindOther {
		return d
	}
	d["elem"] = v.Elem.String()
	if v.Kind != KindTensor {
		d["key"] = v.Key.String()
	}
	if v.Shape != nil {
		d["shape"] = v.Shape
	} else {
		d["shape"] = nil
	}
	return d
}

func describeTensor(t *tensor.Tensor) map[string]any {
	var data []any
	switch s := t.Data.(type) {
	case []float32:
		for _, x := range s {
			data = append(data, jsonFloat(float64(x)))
		}
	case []float64:
		for _, x := range s {
			data = append(data, jsonFloat(x))
		}
	default:
		f, err := t.Float64s()
		if err != nil { // strings
			for _, x := range t.Data.([]string) {
				data = append(data, x)
			}
			break
		}
		switch s := t.Data.(type) {
		case []bool:
			for _, x := range s {
				data = append(data, x)
			}
		case []uint64:
			for _, x := range s {
				data = append(data, x)
			}
		case []int64:
			for _, x := range s {
				data = append(data, x)
			}
		case []uint16: // FP16 bits or UINT16
			for _, x := range s {
				data = append(data, x)
			}
		default:
			for _, x := range f {
				data = append(data, int64(x))
			}
		}
	}
	if data == nil {
		data = []any{}
	}
	return map[string]any{"name": t.Name, "datatype": t.DType.String(), "shape": t.Shape, "data": data}
}

func jsonFloat(v float64) any {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "Infinity"
	case math.IsInf(v, -1):
		return "-Infinity"
	}
	return v
}

func describeAttr(a *Attribute) map[string]any {
	d := map[string]any{"type": int(a.Type)}
	switch a.Type {
	case AttrFloat:
		d["f"] = jsonFloat(float64(a.F))
	case AttrInt:
		d["i"] = a.I
	case AttrString:
		d["s"] = a.S
	case AttrTensor:
		d["t"] = describeTensor(a.T)
	case AttrGraph:
		d["g"] = describeGraph(a.G)
	case AttrFloats:
		var f []any
		for _, x := range a.Floats {
			f = append(f, jsonFloat(float64(x)))
		}
		d["floats"] = f
	case AttrInts:
		d["ints"] = a.Ints
	case AttrStrings:
		d["strings"] = a.Strings
	case AttrTensors:
		var ts []any
		for _, t := range a.Tensors {
			ts = append(ts, describeTensor(t))
		}
		d["tensors"] = ts
	case AttrGraphs:
		var gs []any
		for _, g := range a.Graphs {
			gs = append(gs, describeGraph(g))
		}
		d["graphs"] = gs
	}
	return d
}

// Hand-built messages for the paths the Python writer does not take
// (unpacked repeated fields, bad lengths, unsupported features).
func TestDecodeHandBuilt(t *testing.T) {
	tag := func(b []byte, num protowire.Number, typ protowire.Type) []byte {
		return protowire.AppendTag(b, num, typ)
	}
	msg := func(b []byte, num protowire.Number, inner []byte) []byte {
		return protowire.AppendBytes(tag(b, num, protowire.BytesType), inner)
	}
	str := func(b []byte, num protowire.Number, s string) []byte {
		return protowire.AppendString(tag(b, num, protowire.BytesType), s)
	}
	varint := func(b []byte, num protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(tag(b, num, protowire.VarintType), v)
	}
	// A model whose graph has one initializer t.
	model := func(tensorMsg []byte) []byte {
		var g []byte
		g = msg(g, 5, tensorMsg)
		var m []byte
		m = varint(m, 1, 8)
		m = msg(m, 7, g)
		return m
	}
	// float_data unpacked: two fixed32 fields.
	var unpacked []byte
	unpacked = varint(unpacked, 1, 2)
	unpacked = varint(unpacked, 2, onnxFloat)
	unpacked = protowire.AppendFixed32(tag(unpacked, 4, protowire.Fixed32Type), math.Float32bits(1.5))
	unpacked = protowire.AppendFixed32(tag(unpacked, 4, protowire.Fixed32Type), math.Float32bits(-3))
	unpacked = str(unpacked, 8, "w")

	var external []byte
	external = varint(external, 2, onnxFloat)
	external = str(external, 8, "w")
	external = varint(external, 14, 1)

	var short []byte
	short = varint(short, 1, 3)
	short = varint(short, 2, onnxFloat)
	short = str(short, 8, "w")
	short = msg(short, 9, []byte{0, 0, 128, 63}) // 1 float for 3 elements

	var huge []byte
	huge = varint(huge, 1, 1<<40)
	huge = varint(huge, 1, 1<<40)
	huge = varint(huge, 2, onnxFloat)
	huge = str(huge, 8, "w")

	var bf16 []byte
	bf16 = varint(bf16, 2, onnxBfloat16)
	bf16 = str(bf16, 8, "w")

	sparse := msg(varint(nil, 1, 8), 7, msg(nil, 15, nil))

	// Deeply nested subgraphs: graph > node > attribute > graph ...
	deep := []byte{}
	for i := 0; i < 100; i++ {
		attr := msg(str(varint(nil, 20, uint64(AttrGraph)), 1, "g"), 6, deep)
		node := msg(str(nil, 4, "If"), 5, attr)
		deep = msg(nil, 1, node)
	}
	deepModel := msg(varint(nil, 1, 8), 7, deep)

	tests := []struct {
		name    string
		data    []byte
		wantErr error
		check   func(t *testing.T, m *ModelProto)
	}{
		{name: "unpacked floats", data: model(unpacked), check: func(t *testing.T, m *ModelProto) {
			w := m.Graph.Initializers["w"]
			if w == nil || fmt.Sprint(w.Data) != "[1.5 -3]" || fmt.Sprint(w.Shape) != "[2]" {
				t.Errorf("w = %+v", w)
			}
			if m.Opsets[""] != 1 {
				t.Errorf("implied opset = %v", m.Opsets)
			}
		}},
		{name: "external data", data: model(external), wantErr: runtime.ErrUnsupported},
		{name: "raw data too short", data: model(short), wantErr: runtime.ErrInvalidModel},
		{name: "huge dims without data", data: model(huge), wantErr: runtime.ErrInvalidModel},
		{name: "bfloat16", data: model(bf16), wantErr: runtime.ErrUnsupported},
		{name: "sparse initializer", data: sparse, wantErr: runtime.ErrUnsupported},
		{name: "no graph", data: varint(nil, 1, 8), wantErr: runtime.ErrInvalidModel},
		{name: "truncated", data: model(unpacked)[:10], wantErr: runtime.ErrInvalidModel},
		{name: "garbage", data: []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, wantErr: runtime.ErrInvalidModel},
		{name: "wrong wire type", data: str(nil, 1, "eight"), wantErr: runtime.ErrInvalidModel},
		{name: "deep nesting", data: deepModel, wantErr: runtime.ErrInvalidModel},
		{name: "empty", data: nil, wantErr: runtime.ErrInvalidModel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Decode(tt.data)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, m)
		})
	}
}

// FuzzDecode feeds mutated model files to the decoder, which must return
// a model or an error, never panic; a decoded model must also load or
// fail cleanly.
func FuzzDecode(f *testing.F) {
	for _, pattern := range []string{"testdata/decode/*.onnx", "testdata/models/*/model.onnx"} {
		files, _ := filepath.Glob(pattern)
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil && len(b) < 64<<10 {
				f.Add(b)
			}
		}
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			if !errors.Is(err, runtime.ErrInvalidModel) && !errors.Is(err, runtime.ErrUnsupported) {
				t.Fatalf("error wraps neither ErrInvalidModel nor ErrUnsupported: %v", err)
			}
			return
		}
		if m.Graph == nil {
			t.Fatal("nil graph without error")
		}
		if _, err := compile(context.Background(), m, "fuzz"); err != nil &&
			!errors.Is(err, runtime.ErrInvalidModel) && !errors.Is(err, runtime.ErrUnsupported) {
			t.Fatalf("compile error wraps neither ErrInvalidModel nor ErrUnsupported: %v", err)
		}
	})
}
