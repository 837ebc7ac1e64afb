package tree

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
)

// PathDependent computes exact path-dependent TreeSHAP values of a forest
// with covers. It is immutable and safe for concurrent use.
type PathDependent struct {
	f        *Forest
	depth    int
	r        *ratios
	expected []float64
}

// NewPathDependent checks f and prepares it for path-dependent TreeSHAP.
// It returns an error wrapping ErrNoCover when f has no covers.
func NewPathDependent(f *Forest) (*PathDependent, error) {
	depth, err := f.Check()
	if err != nil {
		return nil, err
	}
	if !f.HasCover() {
		return nil, ErrNoCover
	}
	p := &PathDependent{f: f, depth: depth, r: newRatios(depth), expected: make([]float64, f.NumOutputs)}
	if f.Base != nil {
		copy(p.expected, f.Base)
	}
	mean := make([]float64, f.NumOutputs)
	for ti := range f.Trees {
		t := &f.Trees[ti]
		clear(mean)
		nodeMean(t, 0, 1, mean)
		for _, o := range t.Outputs {
			p.expected[o] += t.Weight * mean[o]
		}
	}
	return p, nil
}

// nodeMean adds scale × the cover-weighted mean leaf value of the subtree
// at node to mean (per output): the mean of a node is its children's
// means weighted by their covers, over the node's cover, as XGBoost and
// LightGBM compute a tree's expected value.
func nodeMean(t *Tree, node int32, scale float64, mean []float64) {
	n := &t.Nodes[node]
	if n.IsLeaf() {
		k := len(t.Outputs)
		vals := t.Values[int(n.Leaf)*k : int(n.Leaf+1)*k]
		for j, o := range t.Outputs {
			mean[o] += scale * vals[j]
		}
		return
	}
	if n.Cover <= 0 {
		return
	}
	for _, c := range [2]int32{n.Yes, n.No} {
		if w := t.Nodes[c].Cover; w > 0 {
			nodeMean(t, c, scale*w/n.Cover, mean)
		}
	}
}

// Forest returns the forest explained.
func (p *PathDependent) Forest() *Forest { return p.f }

// Expected returns the expected raw margin per output (the bias term, what
// shap calls expected_value): Base plus each tree's cover-weighted mean
// leaf value. The slice is p's; do not modify it.
func (p *PathDependent) Expected() []float64 { return p.expected }

// Values computes the SHAP values of rows rows of x (row-major, NumFeatures
// columns, raw input values: the forest's input rules are applied here)
// into out, laid out [row][feature][output] (len rows × NumFeatures ×
// NumOutputs), which it overwrites. Per row and output, the values sum to
// the row's margin minus Expected(). workers <= 0 means GOMAXPROCS.
func (p *PathDependent) Values(ctx context.Context, x []float64, rows int, out []float64, workers int) error {
	f := p.f
	nf, k := f.NumFeatures, f.NumOutputs
	if err := checkSizes(x, rows, nf, out, nf*k); err != nil {
		return err
	}
	clear(out[:rows*nf*k])
	return forRows(ctx, rows, workers, func() rowFunc {
		w := &pathWorker{
			f:      f,
			r:      p.r,
			stride: p.depth + 2,
			buf:    make([]pathElem, (p.depth+2)*(p.depth+2)),
			row:    make([]float64, nf),
		}
		return func(r int) {
			copy(w.row, x[r*nf:(r+1)*nf])
			f.PrepareRow(w.row)
			w.phi = out[r*nf*k : (r+1)*nf*k]
			w.k = k
			for ti := range f.Trees {
				w.t = &f.Trees[ti]
				w.recurse(0, 0, 0, 1, 1, -1)
			}
		}
	})
}

func checkSizes(x []float64, rows, nf int, out []float64, perRow int) error {
	if rows < 0 || len(x) < rows*nf {
		return fmt.Errorf("tree: %d values for %d rows of %d features", len(x), rows, nf)
	}
	if len(out) < rows*perRow {
		return fmt.Errorf("tree: output of %d values for %d rows of %d", len(out), rows, perRow)
	}
	return nil
}

// pathElem is one feature on the path from the root to a node, with the
// fraction of the "zero" paths (the feature is left out: cover-weighted)
// and "one" paths (the feature is known: 1 if x goes this way, else 0)
// that flow through the splits on it, and the path's weights: weight[i]
// is the Shapley-weighted proportion of feature subsets of size i among
// the path's features.
type pathElem struct {
	feature   int32
	zero, one float64
	weight    float64
}

// pathWorker is one goroutine's scratch space. buf holds one path per
// depth (stride elements each): a child's path starts as a copy of its
// parent's, so nothing is allocated while walking.
type pathWorker struct {
	f      *Forest
	r      *ratios
	t      *Tree
	stride int
	buf    []pathElem
	row    []float64
	phi    []float64
	k      int
}

// ratios holds, for every path length l+1 up to a forest's deepest, the
// factors extend and unwind multiply by, so the walk divides nothing:
// up = (j+1)/(l+1), down = (l-j)/(l+1), and their inverses.
type ratios struct {
	stride                  int
	up, down, upInv, downIn []float64 // [l*stride + j]
}

func newRatios(depth int) *ratios {
	s := depth + 2
	r := &ratios{stride: s, up: make([]float64, s*s), down: make([]float64, s*s), upInv: make([]float64, s*s), downIn: make([]float64, s*s)}
	for l := range s {
		for j := 0; j <= l; j++ {
			den := float64(l + 1)
			r.up[l*s+j] = float64(j+1) / den
			r.down[l*s+j] = float64(l-j) / den
			r.upInv[l*s+j] = den / float64(j+1)
			if l > j {
				r.downIn[l*s+j] = den / float64(l-j)
			}
		}
	}
	return r
}

// extend appends a feature with fractions (zero, one) to the path m of
// length l (m has room for l+1 elements) and updates the subset weights.
func (r *ratios) extend(m []pathElem, l int, zero, one float64, feature int32) {
	w := 0.0
	if l == 0 {
		w = 1
	}
	m[l] = pathElem{feature: feature, zero: zero, one: one, weight: w}
	up, down := r.up[l*r.stride:][:l+1], r.down[l*r.stride:][:l+1]
	for i := l - 1; i >= 0; i-- {
		m[i+1].weight += one * m[i].weight * up[i]
		m[i].weight = zero * m[i].weight * down[i]
	}
}

// unwind removes element i from the path m (length l+1), undoing its
// extend.
func (r *ratios) unwind(m []pathElem, i int) {
	l := len(m) - 1
	one, zero := m[i].one, m[i].zero
	upInv, down := r.upInv[l*r.stride:][:l+1], r.down[l*r.stride:][:l+1]
	if one != 0 {
		n := m[l].weight
		inv := 1 / one
		for j := l - 1; j >= 0; j-- {
			t := m[j].weight
			m[j].weight = n * upInv[j] * inv
			n = t - m[j].weight*zero*down[j]
		}
	} else {
		downIn := r.downIn[l*r.stride:][:l+1]
		inv := 1 / zero
		for j := l - 1; j >= 0; j-- {
			m[j].weight *= downIn[j] * inv
		}
	}
	for j := i; j < l; j++ {
		m[j].feature, m[j].zero, m[j].one = m[j+1].feature, m[j+1].zero, m[j+1].one
	}
}

// unwoundSum is the total weight of the path m with element i unwound,
// without changing m.
func (r *ratios) unwoundSum(m []pathElem, i int) float64 {
	l := len(m) - 1
	one, zero := m[i].one, m[i].zero
	total := 0.0
	if one == 0 {
		return r.coldSum(m) / zero
	}
	upInv, down := r.upInv[l*r.stride:][:l+1], r.down[l*r.stride:][:l+1]
	n := m[l].weight
	if one == 1 { // always, in practice: one fractions are 0 or 1
		for j := l - 1; j >= 0; j-- {
			t := n * upInv[j]
			total += t
			n = m[j].weight - t*(zero*down[j])
		}
		return total
	}
	inv := 1 / one
	for j := l - 1; j >= 0; j-- {
		t := n * upInv[j] * inv
		total += t
		n = m[j].weight - t*zero*down[j]
	}
	return total
}

// coldSum is, for any element i with one fraction 0, unwoundSum(m, i)
// times its zero fraction: the same for all of them, so a leaf computes
// it once.
func (r *ratios) coldSum(m []pathElem) float64 {
	l := len(m) - 1
	downIn := r.downIn[l*r.stride:][:l+1]
	total := 0.0
	for j := l - 1; j >= 0; j-- {
		total += m[j].weight * downIn[j]
	}
	return total
}

// recurse walks the subtree at node. The parent's path is the first
// parentLen elements of depth-1's segment; (zero, one, feature) is the
// split that led here.
func (w *pathWorker) recurse(node int32, depth, parentLen int, zero, one float64, feature int32) {
	seg := w.buf[depth*w.stride : (depth+1)*w.stride]
	m := seg[:parentLen+1]
	if depth > 0 {
		copy(m, w.buf[(depth-1)*w.stride:(depth-1)*w.stride+parentLen])
	}
	w.r.extend(m, parentLen, zero, one, feature)
	t := w.t
	n := &t.Nodes[node]
	if n.IsLeaf() {
		k := len(t.Outputs)
		vals := t.Values[int(n.Leaf)*k : int(n.Leaf+1)*k]
		cold := math.NaN() // coldSum(m), once needed
		for i := 1; i < len(m); i++ {
			e := &m[i]
			if e.one == e.zero {
				continue
			}
			var u float64
			if e.one == 0 {
				if cold != cold {
					cold = w.r.coldSum(m)
				}
				u = cold / e.zero
			} else {
				u = w.r.unwoundSum(m, i)
			}
			s := u * (e.one - e.zero) * t.Weight
			if s == 0 {
				continue
			}
			base := int(m[i].feature) * w.k
			for j, o := range t.Outputs {
				w.phi[base+int(o)] += s * vals[j]
			}
		}
		return
	}
	hot, cold := n.No, n.Yes
	if t.yes(n, w.row[n.Feature]) {
		hot, cold = n.Yes, n.No
	}
	// A feature split on again higher up: undo its element, and carry its
	// fractions into this split's.
	iz, io := 1.0, 1.0
	l := len(m)
	for i := 1; i < l; i++ {
		if m[i].feature == n.Feature {
			iz, io = m[i].zero, m[i].one
			w.r.unwind(m, i)
			l--
			break
		}
	}
	var hz, cz float64
	if n.Cover > 0 {
		hz = iz * t.Nodes[hot].Cover / n.Cover
		cz = iz * t.Nodes[cold].Cover / n.Cover
	}
	if hz != 0 || io != 0 {
		w.recurse(hot, depth+1, l, hz, io, n.Feature)
	}
	if cz != 0 {
		w.recurse(cold, depth+1, l, cz, 0, n.Feature)
	}
}

// rowFunc explains one row; makeWorker returns one per goroutine.
type rowFunc func(r int)

// forRows runs the rows over workers goroutines (GOMAXPROCS when <= 0),
// each with its own rowFunc, checking ctx between rows.
func forRows(ctx context.Context, rows, workers int, makeWorker func() rowFunc) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = max(1, min(workers, rows))
	if rows == 0 {
		return ctx.Err()
	}
	if workers == 1 {
		fn := makeWorker()
		for r := range rows {
			if r%16 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			fn(r)
		}
		return ctx.Err()
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn := makeWorker()
			for {
				if ctx.Err() != nil {
					return
				}
				r := int(next.Add(1) - 1)
				if r >= rows {
					return
				}
				fn(r)
			}
		}()
	}
	wg.Wait()
	return ctx.Err()
}
