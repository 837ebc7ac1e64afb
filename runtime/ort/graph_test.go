//go:build ort

package ort

import (
	"bytes"
	"fmt"
	"os"
	"testing"
)

func TestReadGraph(t *testing.T) {
	tests := []struct {
		path     string
		output   string
		labels   string
		shaped   []string
		optional bool // another package's fixture, which may not exist yet
	}{
		{"testdata/models/zipmap_strings/model.onnx", "probabilities", "[zebra apple mango]", []string{"X", "label"}, false},
		{"../onnx/testdata/models/skl_logreg_binary/model.onnx", "output_probability", "[0 1]", []string{"X"}, true},
	}
	for _, tc := range tests {
		data, err := os.ReadFile(tc.path)
		if os.IsNotExist(err) && tc.optional {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		g, err := readGraph(data)
		if err != nil {
			t.Fatal(err)
		}
		z := g.zipMaps[tc.output]
		if z == nil || fmt.Sprint(z.labels()) != tc.labels {
			t.Errorf("%s: ZipMap %q labels %v, want %s", tc.path, tc.output, z, tc.labels)
		}
		for _, name := range tc.shaped {
			if !g.shaped[name] {
				t.Errorf("%s: %q declares a shape", tc.path, name)
			}
		}
		if g.shaped[tc.output] {
			t.Errorf("%s: sequence %q has no tensor shape", tc.path, tc.output)
		}
	}
}

func TestRewriteKeepsModel(t *testing.T) {
	data, err := os.ReadFile("testdata/models/all_types/model.onnx")
	if err != nil {
		t.Fatal(err)
	}
	rw := rewrite{casts: []string{"h_sq"}, flats: []string{"k_neg"}, elems: map[string]uint64{"k_neg": 7}}
	out, err := rw.apply(data)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte("h_sq"+castSuffix)) || !bytes.Contains(out, []byte("k_neg"+shapeSuffix)) {
		t.Error("rewritten model lacks the added outputs")
	}
	g0, _ := readGraph(data)
	g1, err := readGraph(out)
	if err != nil {
		t.Fatal(err)
	}
	for name := range g0.shaped {
		if !g1.shaped[name] {
			t.Errorf("rewrite lost %q", name)
		}
	}
}

func FuzzReadGraph(f *testing.F) {
	for _, p := range []string{"testdata/models/zipmap_strings/model.onnx", "testdata/models/all_types/model.onnx"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := readGraph(data); err != nil {
			return
		}
		rw := rewrite{casts: []string{"a"}, flats: []string{"b"}, elems: map[string]uint64{"b": 1}}
		out, err := rw.apply(data)
		if err != nil {
			return
		}
		if _, err := readGraph(out); err != nil {
			t.Fatalf("rewritten model does not read back: %v", err)
		}
	})
}
