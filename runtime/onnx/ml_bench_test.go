package onnx

import (
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// The benchmark model: scikit-learn's RandomForestClassifier, 100 trees of
// depth 8 over 4 features, 3 classes (testdata/gen.py, case
// skl_rf100_clf).
var mlForest100 = filepath.Join("testdata", "models", "skl_rf100_clf")

func mlForestRows(n int) *tensor.Tensor {
	r := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, n*4)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	return &tensor.Tensor{Name: "X", DType: tensor.Float32, Shape: []int64{int64(n), 4}, Data: x}
}

// BenchmarkForest100Load reads, decodes and compiles the model file.
func BenchmarkForest100Load(b *testing.B) {
	b.ReportAllocs()
	ctx := context.Background()
	for b.Loop() {
		m, err := runtime.Load(ctx, "onnx", runtime.Source{Path: mlForest100})
		if err != nil {
			b.Fatal(err)
		}
		m.Close()
	}
}

func benchForestPredict(b *testing.B, rows int) {
	ctx := context.Background()
	m, err := runtime.Load(ctx, "onnx", runtime.Source{Path: mlForest100})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	in := []*tensor.Tensor{mlForestRows(rows)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Predict(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/row")
}

// BenchmarkForest100Predict1 and ...64 predict through the whole model
// (executor and TreeEnsembleClassifier).
func BenchmarkForest100Predict1(b *testing.B)  { benchForestPredict(b, 1) }
func BenchmarkForest100Predict64(b *testing.B) { benchForestPredict(b, 64) }

// mlForestKernel compiles the model's TreeEnsembleClassifier node alone.
func mlForestKernel(b *testing.B) Kernel {
	data, err := os.ReadFile(filepath.Join(mlForest100, "model.onnx"))
	if err != nil {
		b.Fatal(err)
	}
	p, err := Decode(data)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range p.Graph.Nodes {
		if n.OpType == "TreeEnsembleClassifier" {
			k, err := newMLTreeClassifier(n, 1)
			if err != nil {
				b.Fatal(err)
			}
			return k
		}
	}
	b.Fatal("no TreeEnsembleClassifier in the model")
	return nil
}

// BenchmarkForest100Compile is the operator's share of the load time.
func BenchmarkForest100Compile(b *testing.B) {
	data, err := os.ReadFile(filepath.Join(mlForest100, "model.onnx"))
	if err != nil {
		b.Fatal(err)
	}
	p, err := Decode(data)
	if err != nil {
		b.Fatal(err)
	}
	var node *Node
	for _, n := range p.Graph.Nodes {
		if n.OpType == "TreeEnsembleClassifier" {
			node = n
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := newMLTreeClassifier(node, 1); err != nil {
			b.Fatal(err)
		}
	}
}

func benchForestKernel(b *testing.B, rows int) {
	k := mlForestKernel(b)
	in := []Value{mlForestRows(rows)}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Run(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/row")
}

// BenchmarkForest100Kernel1 and ...64 run the operator alone.
func BenchmarkForest100Kernel1(b *testing.B)  { benchForestKernel(b, 1) }
func BenchmarkForest100Kernel64(b *testing.B) { benchForestKernel(b, 64) }
