package tree

import (
	"context"
	"fmt"
	"math"
)

// Interventional computes exact interventional TreeSHAP values of a forest
// against background rows: for a row x, the Shapley values of the game
// v(S) = Σ_b weight_b · margin(x on the features in S, background row b on
// the others). It needs no covers. It is immutable and safe for
// concurrent use.
type Interventional struct {
	f        *Forest
	depth    int
	bg       []float64 // prepared background rows
	weights  []float64 // normalised to sum 1
	expected []float64
	coef     []float64 // coef[a*(depth+1)+b] = a!·b!/(a+b+1)!
}

// MaxBackground bounds the background rows of an Interventional
// explainer (the cost is linear in them).
const MaxBackground = 10000

// NewInterventional checks f and prepares interventional TreeSHAP against
// bgRows background rows of bg (row-major, NumFeatures columns, raw input
// values). weights weigh the rows (nil: equally); they need not sum to 1.
func NewInterventional(f *Forest, bg []float64, bgRows int, weights []float64) (*Interventional, error) {
	depth, err := f.Check()
	if err != nil {
		return nil, err
	}
	nf := f.NumFeatures
	if bgRows < 1 || bgRows > MaxBackground || len(bg) < bgRows*nf {
		return nil, fmt.Errorf("tree: interventional TreeSHAP needs 1 to %d background rows of %d features, got %d rows (%d values)", MaxBackground, nf, bgRows, len(bg))
	}
	if weights != nil && len(weights) != bgRows {
		return nil, fmt.Errorf("tree: %d background weights for %d rows", len(weights), bgRows)
	}
	p := &Interventional{f: f, depth: depth, bg: make([]float64, bgRows*nf), weights: make([]float64, bgRows)}
	copy(p.bg, bg[:bgRows*nf])
	f.PrepareRow(p.bg)
	sum := 0.0
	for i := range p.weights {
		w := 1.0
		if weights != nil {
			w = weights[i]
		}
		if !(w >= 0) || math.IsInf(w, 0) {
			return nil, fmt.Errorf("tree: background weight %d is %v", i, w)
		}
		p.weights[i] = w
		sum += w
	}
	if !(sum > 0) {
		return nil, fmt.Errorf("tree: the background weights sum to %v", sum)
	}
	for i := range p.weights {
		p.weights[i] /= sum
	}
	p.expected = make([]float64, f.NumOutputs)
	margin := make([]float64, f.NumOutputs)
	for b := range bgRows {
		f.Margin(p.bg[b*nf:(b+1)*nf], margin)
		for k, v := range margin {
			p.expected[k] += p.weights[b] * v
		}
	}
	// coef[a][b] = a!·b!/(a+b+1)!, built from coef[0][0] = 1 with
	// coef[a][b+1] = coef[a][b]·(b+1)/(a+b+2) and the symmetry.
	d := depth + 1
	p.coef = make([]float64, d*d)
	for a := range d {
		c := 1.0 / float64(a+1) // a!·0!/(a+1)!
		for b := range d {
			p.coef[a*d+b] = c
			c *= float64(b+1) / float64(a+b+2)
		}
	}
	return p, nil
}

// Forest returns the forest explained.
func (p *Interventional) Forest() *Forest { return p.f }

// Expected returns the weighted mean margin of the background rows per
// output. The slice is p's; do not modify it.
func (p *Interventional) Expected() []float64 { return p.expected }

// Values computes the SHAP values of rows rows of x (row-major, raw input
// values) into out, laid out [row][feature][output], which it overwrites.
// Per row and output, the values sum to the row's margin minus
// Expected(). workers <= 0 means GOMAXPROCS.
func (p *Interventional) Values(ctx context.Context, x []float64, rows int, out []float64, workers int) error {
	f := p.f
	nf, k := f.NumFeatures, f.NumOutputs
	if err := checkSizes(x, rows, nf, out, nf*k); err != nil {
		return err
	}
	clear(out[:rows*nf*k])
	return forRows(ctx, rows, workers, func() rowFunc {
		w := &ivWorker{
			p:     p,
			row:   make([]float64, nf),
			side:  make([]int8, nf),
			inX:   make([]int32, 0, p.depth+1),
			inZ:   make([]int32, 0, p.depth+1),
			k:     k,
			coefD: p.depth + 1,
		}
		return func(r int) {
			copy(w.row, x[r*nf:(r+1)*nf])
			f.PrepareRow(w.row)
			w.phi = out[r*nf*k : (r+1)*nf*k]
			for b, wb := range p.weights {
				if wb == 0 {
					continue
				}
				w.z = p.bg[b*nf : (b+1)*nf]
				w.wb = wb
				for ti := range f.Trees {
					w.t = &f.Trees[ti]
					w.walk(0)
				}
			}
		}
	})
}

// ivWorker is one goroutine's scratch space for interventional TreeSHAP.
type ivWorker struct {
	p     *Interventional
	t     *Tree
	row   []float64 // x
	z     []float64 // the background row
	wb    float64   // its weight
	side  []int8    // per feature: 0 undecided, 1 follows x, 2 follows z
	inX   []int32   // features that follow x on the current path (S must hold them)
	inZ   []int32   // features that follow z (S must not hold them)
	phi   []float64
	k     int
	coefD int
}

// walk follows x and z down from node. Where they part on a feature not
// yet decided, both ways are walked: x's with the feature in S, z's
// without. At a leaf with a features following x and b following z, the
// leaf value v counts for the subsets S that hold the a and none of the b:
// each of the a gains v·(a-1)!·b!/(a+b)!, each of the b loses
// v·a!·(b-1)!/(a+b)!.
func (w *ivWorker) walk(node int32) {
	t := w.t
	for {
		n := &t.Nodes[node]
		if n.IsLeaf() {
			w.leaf(n)
			return
		}
		f := n.Feature
		switch w.side[f] {
		case 1:
			node = t.next(n, w.row[f])
			continue
		case 2:
			node = t.next(n, w.z[f])
			continue
		}
		nx, nz := t.next(n, w.row[f]), t.next(n, w.z[f])
		if nx == nz {
			node = nx
			continue
		}
		w.side[f] = 1
		w.inX = append(w.inX, f)
		w.walk(nx)
		w.inX = w.inX[:len(w.inX)-1]
		w.side[f] = 2
		w.inZ = append(w.inZ, f)
		w.walk(nz)
		w.inZ = w.inZ[:len(w.inZ)-1]
		w.side[f] = 0
		return
	}
}

func (w *ivWorker) leaf(n *Node) {
	t := w.t
	a, b := len(w.inX), len(w.inZ)
	if a+b == 0 {
		return
	}
	k := len(t.Outputs)
	vals := t.Values[int(n.Leaf)*k : int(n.Leaf+1)*k]
	scale := w.wb * t.Weight
	d := w.coefD
	if a > 0 {
		c := scale * w.p.coef[(a-1)*d+b]
		for _, f := range w.inX {
			base := int(f) * w.k
			for j, o := range t.Outputs {
				w.phi[base+int(o)] += c * vals[j]
			}
		}
	}
	if b > 0 {
		c := scale * w.p.coef[a*d+b-1]
		for _, f := range w.inZ {
			base := int(f) * w.k
			for j, o := range t.Outputs {
				w.phi[base+int(o)] -= c * vals[j]
			}
		}
	}
}
