package tree

import (
	"context"
	"errors"
	"math"
	"math/bits"
	"math/rand/v2"
	"testing"
)

// randomForest builds a forest of random trees: depth up to maxDepth,
// features reused along paths, covers consistent (a node's is the sum of
// its children's), a mix of comparisons and missing-value rules.
func randomForest(rng *rand.Rand, trees, features, outputs, maxDepth int, multiLeaf bool) *Forest {
	f := &Forest{NumFeatures: features, NumOutputs: outputs, Base: make([]float64, outputs)}
	for k := range f.Base {
		f.Base[k] = rng.NormFloat64()
	}
	for range trees {
		t := Tree{Weight: 0.5 + rng.Float64()}
		if multiLeaf {
			for k := range outputs {
				t.Outputs = append(t.Outputs, int32(k))
			}
		} else {
			t.Outputs = []int32{int32(rng.IntN(outputs))}
		}
		var build func(depth int) int32
		build = func(depth int) int32 {
			i := int32(len(t.Nodes))
			t.Nodes = append(t.Nodes, Node{})
			if depth == maxDepth || (depth > 0 && rng.IntN(4) == 0) {
				leaf := int32(len(t.Values) / len(t.Outputs))
				for range t.Outputs {
					t.Values = append(t.Values, rng.NormFloat64())
				}
				t.Nodes[i] = Node{Feature: -1, Leaf: leaf, Cover: float64(1 + rng.IntN(20))}
				return i
			}
			n := Node{
				Feature:   int32(rng.IntN(features)),
				Op:        []Op{LT, LE, GE}[rng.IntN(3)],
				Missing:   []Missing{MissingYes, MissingNo, MissingAsZero}[rng.IntN(3)],
				Threshold: math.Round(rng.NormFloat64()*4) / 4,
			}
			n.Yes = build(depth + 1)
			n.No = build(depth + 1)
			n.Cover = t.Nodes[n.Yes].Cover + t.Nodes[n.No].Cover
			t.Nodes[i] = n
			return i
		}
		build(0)
		f.Trees = append(f.Trees, t)
	}
	return f
}

func randomRows(rng *rand.Rand, rows, features int) []float64 {
	x := make([]float64, rows*features)
	for i := range x {
		switch rng.IntN(10) {
		case 0:
			x[i] = math.NaN()
		case 1:
			x[i] = 0
		default:
			x[i] = math.Round(rng.NormFloat64()*8) / 8
		}
	}
	return x
}

// condExpect is TreeSHAP's conditional expectation E[f(x) | x_S] of one
// tree (the paper's algorithm 1): features in S follow x, the others
// split by cover.
func condExpect(t *Tree, node int32, x []float64, s uint, out []float64, scale float64) {
	n := &t.Nodes[node]
	if n.IsLeaf() {
		k := len(t.Outputs)
		for j, o := range t.Outputs {
			out[o] += scale * t.Weight * t.Values[int(n.Leaf)*k+j]
		}
		return
	}
	if s&(1<<uint(n.Feature)) != 0 {
		condExpect(t, t.next(n, x[n.Feature]), x, s, out, scale)
		return
	}
	for _, c := range [2]int32{n.Yes, n.No} {
		condExpect(t, c, x, s, out, scale*t.Nodes[c].Cover/n.Cover)
	}
}

// bruteShapley computes exact Shapley values of the game v over m players
// by enumerating subsets: out[i*k+o].
func bruteShapley(m, k int, v func(s uint, out []float64)) []float64 {
	vals := make([][]float64, 1<<m)
	for s := range vals {
		vals[s] = make([]float64, k)
		v(uint(s), vals[s])
	}
	fact := func(n int) float64 {
		r := 1.0
		for i := 2; i <= n; i++ {
			r *= float64(i)
		}
		return r
	}
	phi := make([]float64, m*k)
	for i := range m {
		for s := range 1 << m {
			if s&(1<<i) != 0 {
				continue
			}
			size := bits.OnesCount(uint(s))
			w := fact(size) * fact(m-size-1) / fact(m)
			for o := range k {
				phi[i*k+o] += w * (vals[s|1<<i][o] - vals[s][o])
			}
		}
	}
	return phi
}

func close(a, b float64) bool {
	return math.Abs(a-b) <= 1e-9*(1+math.Abs(b))
}

func TestPathDependentMatchesBruteForce(t *testing.T) {
	for _, tc := range []struct {
		name                       string
		trees, features, outputs   int
		depth                      int
		multiLeaf, float32s, zeros bool
	}{
		{name: "regression", trees: 5, features: 4, outputs: 1, depth: 4},
		{name: "deep", trees: 2, features: 3, outputs: 1, depth: 8},
		{name: "multiclass", trees: 9, features: 5, outputs: 3, depth: 3},
		{name: "multi-output leaves", trees: 4, features: 4, outputs: 2, depth: 4, multiLeaf: true},
		{name: "float32 and zero band", trees: 3, features: 4, outputs: 1, depth: 3, float32s: true, zeros: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(tc.trees*100+tc.depth)))
			f := randomForest(rng, tc.trees, tc.features, tc.outputs, tc.depth, tc.multiLeaf)
			f.Float32 = tc.float32s
			if tc.zeros {
				f.ZeroBand = 0.2
			}
			p, err := NewPathDependent(f)
			if err != nil {
				t.Fatal(err)
			}
			const rows = 25
			x := randomRows(rng, rows, tc.features)
			nf, k := tc.features, tc.outputs
			got := make([]float64, rows*nf*k)
			if err := p.Values(context.Background(), x, rows, got, 3); err != nil {
				t.Fatal(err)
			}
			empty := make([]float64, k)
			for ti := range f.Trees {
				condExpect(&f.Trees[ti], 0, nil, 0, empty, 1)
			}
			for o := range k {
				if want := f.Base[o] + empty[o]; !close(p.Expected()[o], want) {
					t.Errorf("expected value %d = %v, want %v", o, p.Expected()[o], want)
				}
			}
			for r := range rows {
				row := append([]float64(nil), x[r*nf:(r+1)*nf]...)
				f.PrepareRow(row)
				want := bruteShapley(nf, k, func(s uint, out []float64) {
					for ti := range f.Trees {
						condExpect(&f.Trees[ti], 0, row, s, out, 1)
					}
				})
				margin := make([]float64, k)
				f.Margin(row, margin)
				sum := append([]float64(nil), p.Expected()...)
				for i := range nf * k {
					if !close(got[r*nf*k+i], want[i]) {
						t.Fatalf("row %d: phi[%d] = %v, want %v (all: %v, want %v)", r, i, got[r*nf*k+i], want[i], got[r*nf*k:(r+1)*nf*k], want)
					}
					sum[i%k] += got[r*nf*k+i]
				}
				for o := range k {
					if !close(sum[o], margin[o]) {
						t.Errorf("row %d output %d: expected + Σφ = %v, margin %v", r, o, sum[o], margin[o])
					}
				}
			}
		})
	}
}

func TestInterventionalMatchesBruteForce(t *testing.T) {
	for _, tc := range []struct {
		name                     string
		trees, features, outputs int
		depth, bg                int
		multiLeaf, weighted      bool
	}{
		{name: "regression", trees: 4, features: 4, outputs: 1, depth: 4, bg: 7},
		{name: "deep", trees: 2, features: 3, outputs: 1, depth: 8, bg: 3},
		{name: "multiclass weighted", trees: 6, features: 5, outputs: 3, depth: 3, bg: 5, weighted: true},
		{name: "multi-output leaves", trees: 3, features: 4, outputs: 2, depth: 4, bg: 4, multiLeaf: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(2, uint64(tc.trees*100+tc.depth)))
			f := randomForest(rng, tc.trees, tc.features, tc.outputs, tc.depth, tc.multiLeaf)
			for ti := range f.Trees { // no covers needed
				for j := range f.Trees[ti].Nodes {
					f.Trees[ti].Nodes[j].Cover = 0
				}
			}
			nf, k := tc.features, tc.outputs
			bg := randomRows(rng, tc.bg, nf)
			var weights []float64
			if tc.weighted {
				for range tc.bg {
					weights = append(weights, float64(1+rng.IntN(5)))
				}
			}
			p, err := NewInterventional(f, bg, tc.bg, weights)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := NewPathDependent(f); !errors.Is(err, ErrNoCover) {
				t.Errorf("NewPathDependent without covers: %v, want ErrNoCover", err)
			}
			const rows = 20
			x := randomRows(rng, rows, nf)
			got := make([]float64, rows*nf*k)
			if err := p.Values(context.Background(), x, rows, got, 2); err != nil {
				t.Fatal(err)
			}
			wsum := 0.0
			for b := range tc.bg {
				wsum += weight(weights, b)
			}
			hybrid := make([]float64, nf)
			margin := make([]float64, k)
			for r := range rows {
				row := x[r*nf : (r+1)*nf]
				want := bruteShapley(nf, k, func(s uint, out []float64) {
					for b := range tc.bg {
						for j := range nf {
							if s&(1<<j) != 0 {
								hybrid[j] = row[j]
							} else {
								hybrid[j] = bg[b*nf+j]
							}
						}
						f.Margin(hybrid, margin)
						for o := range k {
							out[o] += weight(weights, b) / wsum * margin[o]
						}
					}
				})
				for i := range nf * k {
					if !close(got[r*nf*k+i], want[i]) {
						t.Fatalf("row %d: phi[%d] = %v, want %v", r, i, got[r*nf*k+i], want[i])
					}
				}
			}
		})
	}
}

func weight(w []float64, i int) float64 {
	if w == nil {
		return 1
	}
	return w[i]
}

func TestDecisions(t *testing.T) {
	nan := math.NaN()
	set := Set{Members: []float64{1, 3, 64}, Trunc: true, Lo: 0, Hi: 1<<24 - 1}
	exact := Set{Members: []float64{0.5, 2}}
	tr := &Tree{Sets: []Set{set, exact}}
	for _, tc := range []struct {
		n    Node
		x    float64
		want bool
	}{
		{Node{Op: LT, Threshold: 1}, 1, false},
		{Node{Op: LT, Threshold: 1}, 0.5, true},
		{Node{Op: LE, Threshold: 1}, 1, true},
		{Node{Op: GT, Threshold: 1}, 1, false},
		{Node{Op: GE, Threshold: 1}, 1, true},
		{Node{Op: EQ, Threshold: 1}, 1, true},
		{Node{Op: NE, Threshold: 1}, 1, false},
		{Node{Op: LT, Threshold: 1, Missing: MissingNo}, nan, false},
		{Node{Op: GT, Threshold: 1, Missing: MissingYes}, nan, true},
		{Node{Op: LE, Threshold: 0, Missing: MissingAsZero}, nan, true},
		{Node{Op: LE, Threshold: -1, Missing: MissingAsZero}, nan, false},
		{Node{Op: LE, Threshold: 1, Missing: MissingCompare}, nan, false},
		{Node{Op: NE, Threshold: 1, Missing: MissingCompare}, nan, true},
		{Node{Op: LE, Threshold: 1, Missing: MissingNo, ZeroIsMissing: true}, 0, false},
		{Node{Op: LE, Threshold: 1, Missing: MissingNo, ZeroIsMissing: true}, 0.5, true},
		{Node{Op: In, Set: 0}, 3.7, true},
		{Node{Op: In, Set: 0}, 2, false},
		{Node{Op: In, Set: 0}, -0.5, false},
		{Node{Op: In, Set: 0}, nan, false},
		{Node{Op: In, Set: 0, Missing: MissingYes}, nan, true},
		{Node{Op: In, Set: 1}, 0.5, true},
		{Node{Op: In, Set: 1}, 2.5, false},
	} {
		if got := tr.yes(&tc.n, tc.x); got != tc.want {
			t.Errorf("%v %v (missing %d) with x=%v: %v, want %v", tc.n.Op, tc.n.Threshold, tc.n.Missing, tc.x, got, tc.want)
		}
	}
}

func TestCheckRejects(t *testing.T) {
	leaf := Node{Feature: -1}
	for _, tc := range []struct {
		name string
		f    Forest
	}{
		{"no outputs", Forest{NumFeatures: 1}},
		{"base length", Forest{NumFeatures: 1, NumOutputs: 2, Base: []float64{1}}},
		{"empty tree", Forest{NumFeatures: 1, NumOutputs: 1, Trees: []Tree{{Outputs: []int32{0}}}}},
		{"output out of range", Forest{NumFeatures: 1, NumOutputs: 1, Trees: []Tree{{Nodes: []Node{leaf}, Outputs: []int32{1}, Values: []float64{1}}}}},
		{"leaf without value", Forest{NumFeatures: 1, NumOutputs: 1, Trees: []Tree{{Nodes: []Node{leaf}, Outputs: []int32{0}}}}},
		{"feature out of range", Forest{NumFeatures: 1, NumOutputs: 1, Trees: []Tree{{Nodes: []Node{{Feature: 1, Yes: 1, No: 2}, leaf, leaf}, Outputs: []int32{0}, Values: []float64{1}}}}},
		{"cycle", Forest{NumFeatures: 1, NumOutputs: 1, Trees: []Tree{{Nodes: []Node{{Feature: 0, Yes: 1, No: 0}, leaf}, Outputs: []int32{0}, Values: []float64{1}}}}},
		{"shared child", Forest{NumFeatures: 1, NumOutputs: 1, Trees: []Tree{{Nodes: []Node{{Feature: 0, Yes: 1, No: 1}, leaf}, Outputs: []int32{0}, Values: []float64{1}}}}},
		{"set out of range", Forest{NumFeatures: 1, NumOutputs: 1, Trees: []Tree{{Nodes: []Node{{Feature: 0, Op: In, Yes: 1, No: 2}, leaf, leaf}, Outputs: []int32{0}, Values: []float64{1}}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.f.Check(); !errors.Is(err, ErrInvalid) {
				t.Errorf("Check: %v, want ErrInvalid", err)
			}
		})
	}
}

func TestValuesContextAndSizes(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	f := randomForest(rng, 3, 3, 1, 3, false)
	p, err := NewPathDependent(f)
	if err != nil {
		t.Fatal(err)
	}
	x := randomRows(rng, 4, 3)
	if err := p.Values(context.Background(), x, 5, make([]float64, 15), 1); err == nil {
		t.Error("Values with too few input values: no error")
	}
	if err := p.Values(context.Background(), x, 4, make([]float64, 3), 1); err == nil {
		t.Error("Values with a short output: no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Values(ctx, x, 4, make([]float64, 12), 2); !errors.Is(err, context.Canceled) {
		t.Errorf("Values with a canceled context: %v", err)
	}
	if _, err := NewInterventional(f, x, 0, nil); err == nil {
		t.Error("NewInterventional without background: no error")
	}
	if _, err := NewInterventional(f, x, 2, []float64{1, -1}); err == nil {
		t.Error("NewInterventional with a negative weight: no error")
	}
}
