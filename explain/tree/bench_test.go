package tree

import (
	"context"
	"math/rand/v2"
	"testing"
)

// fullForest is trees complete trees of the given depth over nf features
// (XGBoost's default max_depth is 6: 64 leaves), with covers.
func fullForest(trees, depth, nf int) *Forest {
	rng := rand.New(rand.NewPCG(7, 7))
	f := &Forest{NumFeatures: nf, NumOutputs: 1, Base: []float64{0.5}}
	for range trees {
		t := Tree{Outputs: []int32{0}, Weight: 1}
		var build func(d int) int32
		build = func(d int) int32 {
			i := int32(len(t.Nodes))
			t.Nodes = append(t.Nodes, Node{})
			if d == depth {
				t.Nodes[i] = Node{Feature: -1, Leaf: int32(len(t.Values)), Cover: float64(1 + rng.IntN(50))}
				t.Values = append(t.Values, rng.NormFloat64())
				return i
			}
			n := Node{Feature: int32(rng.IntN(nf)), Op: LT, Missing: MissingYes, Threshold: rng.NormFloat64()}
			n.Yes, n.No = build(d+1), build(d+1)
			n.Cover = t.Nodes[n.Yes].Cover + t.Nodes[n.No].Cover
			t.Nodes[i] = n
			return i
		}
		build(0)
		f.Trees = append(f.Trees, t)
	}
	return f
}

func benchRows(rows, nf int) []float64 {
	rng := rand.New(rand.NewPCG(8, 8))
	x := make([]float64, rows*nf)
	for i := range x {
		x[i] = rng.NormFloat64()
	}
	return x
}

// BenchmarkPathDependent is exact TreeSHAP for 1000 rows of a 100-tree,
// depth-6 forest over 20 features; one op is all 1000 rows.
func BenchmarkPathDependent(b *testing.B) {
	for _, bc := range []struct {
		name    string
		workers int
	}{{"1worker", 1}, {"allcores", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			f := fullForest(100, 6, 20)
			p, err := NewPathDependent(f)
			if err != nil {
				b.Fatal(err)
			}
			const rows = 1000
			x := benchRows(rows, 20)
			out := make([]float64, rows*20)
			b.ReportAllocs()
			for b.Loop() {
				if err := p.Values(context.Background(), x, rows, out, bc.workers); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/rows, "ns/row")
		})
	}
}

// BenchmarkInterventional is interventional TreeSHAP for 100 rows of the
// same forest against 100 background rows.
func BenchmarkInterventional(b *testing.B) {
	f := fullForest(100, 6, 20)
	p, err := NewInterventional(f, benchRows(100, 20), 100, nil)
	if err != nil {
		b.Fatal(err)
	}
	const rows = 100
	x := benchRows(rows, 20)
	out := make([]float64, rows*20)
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Values(context.Background(), x, rows, out, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/rows, "ns/row")
}
