package onnx

// Tree ensembles: TreeEnsembleClassifier and TreeEnsembleRegressor
// (ai.onnx.ml 1 and 3) and TreeEnsemble (ai.onnx.ml 5).
//
// At load time every encoding is flattened into one forest of compact
// arrays: interior nodes renumbered in depth-first order (true child
// first), one array per field, children as indices (a negative child ^l
// is leaf l), leaf weights grouped per leaf. A forest made only of
// BRANCH_LEQ nodes without missing-value tracking (what the scikit-learn
// converters write) also gets its nodes packed into one record each, the
// fastest layout for its walk. Thresholds and weights are kept in float32
// and float64: onnxruntime compares and accumulates in float64 for double
// inputs and in float32 for every other input type, and so does this
// code. Rows are scored in blocks, tree by tree; scoring allocates only
// the block's score buffers and the outputs.

import (
	"math"
	"slices"

	"github.com/kiln-ml/kiln/tensor"
)

// Node comparison modes, numbered as TreeEnsemble's nodes_modes.
const (
	mlModeLEQ uint8 = iota
	mlModeLT
	mlModeGTE
	mlModeGT
	mlModeEQ
	mlModeNEQ
	mlModeMember
	mlModeMask     = 0x0f
	mlMissingTrue  = 0x80 // NaN follows the true branch
	mlMaxTreeDepth = 1 << 16
)

var mlModeNames = map[string]uint8{
	"BRANCH_LEQ": mlModeLEQ, "BRANCH_LT": mlModeLT, "BRANCH_GTE": mlModeGTE,
	"BRANCH_GT": mlModeGT, "BRANCH_EQ": mlModeEQ, "BRANCH_NEQ": mlModeNEQ,
}

// mlAgg is an aggregate_function.
type mlAgg uint8

const (
	mlAggAverage mlAgg = iota
	mlAggSum
	mlAggMin
	mlAggMax
)

// mlRawForest is a forest before compilation: interior nodes and leaves
// in the model's order, children encoded like the compiled form (>= 0 an
// interior node, < 0 ^leaf).
type mlRawForest struct {
	feat  []int32
	flags []uint8
	thr   []float64
	sets  [][]float64 // per interior node; nil unless BRANCH_MEMBER
	tru   []int32
	fls   []int32
	roots []int32

	leafStart []int32 // len = leaves + 1
	wTarget   []int32
	wValue    []float64

	nTargets int
	names    func(i int) string // names interior node i in errors
}

// mlSet is the member set of a BRANCH_MEMBER node. onnxruntime tests a
// small set (fewer than 31 values, all in [0, 30]) by exact equality and
// a larger one ("big set") by truncating the input to int32 first; sets
// are evaluated the same way here.
type mlSet[T mlFloat] struct {
	mask  uint64 // members when all are integers in [0, 64)
	small bool
	vals  []T     // sorted members of other small sets
	big   []int32 // sorted members of a big set
}

func (s *mlSet[T]) has(v T) bool {
	switch {
	case s.small:
		if v >= 0 && v < 64 {
			i := int(v)
			return T(i) == v && s.mask>>uint(i)&1 != 0
		}
		return false
	case s.big != nil:
		_, found := slices.BinarySearch(s.big, mlTruncInt32(v))
		return found
	}
	_, found := slices.BinarySearch(s.vals, v)
	return found
}

// mlTruncInt32 converts v to int32 as a C cast does on x86-64: truncation
// toward zero, and math.MinInt32 for NaN and values out of range.
func mlTruncInt32[T mlFloat](v T) int32 {
	if v != v || v <= -2147483649 || v >= 2147483648 {
		return math.MinInt32
	}
	return int32(v)
}

// mlBigSet reports whether onnxruntime treats a member set as a big set.
func mlBigSet(s []float64) bool {
	if len(s) >= 31 {
		return true
	}
	for _, v := range s {
		if v < 0 || v > 30 {
			return true
		}
	}
	return false
}

// mlLEQNode is an interior node of a forest made only of BRANCH_LEQ
// nodes without missing-value tracking (what scikit-learn, XGBoost and
// LightGBM converters mostly write), packed so one load brings the whole
// node.
type mlLEQNode[T mlFloat] struct {
	thr  T
	feat int32
	kids [2]int32 // false, true
}

// mlTreeParams holds the numbers of a forest in one precision.
type mlTreeParams[T mlFloat] struct {
	leq   []mlLEQNode[T] // the packed nodes when allLEQ
	thr   []T            // per interior node
	sets  []mlSet[T]
	w     []T // per weight
	first []T // first weight of each leaf (0 when it has none)
	base  []T // base_values
}

// mlForest is a compiled tree ensemble.
type mlForest struct {
	feat  []int32
	flags []uint8
	tru   []int32
	fls   []int32
	set   []int32 // member set per interior node (nil without BRANCH_MEMBER)
	roots []int32

	leafStart []int32
	wTarget   []int32

	nTargets   int
	maxFeature int
	allLEQ     bool // every node is BRANCH_LEQ without missing tracking

	p32 mlTreeParams[float32]
	p64 mlTreeParams[float64]
}

// mlCompile flattens raw into a forest. base is base_values.
func mlCompile(n *Node, raw *mlRawForest, base []float64) (*mlForest, error) {
	nInt := len(raw.feat)
	nLeaves := len(raw.leafStart) - 1
	checkChild := func(c int32) bool {
		if c >= 0 {
			return int(c) < nInt
		}
		return int(^c) < nLeaves
	}
	for i := 0; i < nInt; i++ {
		if !checkChild(raw.tru[i]) || !checkChild(raw.fls[i]) {
			return nil, n.Errorf("%s: child out of range", raw.names(i))
		}
		if raw.feat[i] < 0 {
			return nil, n.Errorf("%s: negative feature id %d", raw.names(i), raw.feat[i])
		}
	}
	for i, set := range raw.sets {
		if !mlBigSet(set) {
			continue
		}
		for _, v := range set {
			if v != math.Trunc(v) || v < math.MinInt32 || v > math.MaxInt32 {
				return nil, n.Errorf("%s: membership value %v: sets of more than 30 values or with values outside [0, 30] must hold int32 integers", raw.names(i), v)
			}
		}
	}
	for _, r := range raw.roots {
		if !checkChild(r) {
			return nil, n.Errorf("tree root out of range")
		}
	}
	for _, t := range raw.wTarget {
		if t < 0 || int(t) >= raw.nTargets {
			return nil, n.Errorf("weight for target or class %d, outside [0, %d)", t, raw.nTargets)
		}
	}
	f := &mlForest{
		leafStart: raw.leafStart,
		wTarget:   raw.wTarget,
		nTargets:  raw.nTargets,
		allLEQ:    true,
	}
	// Renumber the interior nodes reachable from the roots in depth-first
	// order, true child first, so a path mostly walks forward in memory.
	// The walk also rejects cycles, which would make a prediction loop.
	const (
		unseen uint8 = iota
		onStack
		done
	)
	state := make([]uint8, nInt)
	newID := make([]int32, nInt)
	order := make([]int32, 0, nInt)
	type frame struct {
		node  int32
		stage uint8
	}
	var stack []frame
	enter := func(c int32) {
		state[c] = onStack
		newID[c] = int32(len(order))
		order = append(order, c)
		stack = append(stack, frame{c, 0})
	}
	for _, r := range raw.roots {
		if r < 0 || state[r] != unseen {
			continue
		}
		enter(r)
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			if top.stage == 2 {
				state[top.node] = done
				stack = stack[:len(stack)-1]
				continue
			}
			c := raw.tru[top.node]
			if top.stage == 1 {
				c = raw.fls[top.node]
			}
			top.stage++
			if c < 0 {
				continue
			}
			switch state[c] {
			case onStack:
				return nil, n.Errorf("%s: the tree has a cycle", raw.names(int(c)))
			case unseen:
				if len(stack) >= mlMaxTreeDepth {
					return nil, n.Errorf("%s: tree deeper than %d", raw.names(int(c)), mlMaxTreeDepth)
				}
				enter(c)
			}
		}
	}
	remap := func(c int32) int32 {
		if c < 0 {
			return c
		}
		return newID[c]
	}
	m := len(order)
	f.feat = make([]int32, m)
	f.flags = make([]uint8, m)
	f.tru = make([]int32, m)
	f.fls = make([]int32, m)
	thr := make([]float64, m)
	var sets [][]float64
	for i, old := range order {
		f.feat[i] = raw.feat[old]
		f.flags[i] = raw.flags[old]
		f.tru[i] = remap(raw.tru[old])
		f.fls[i] = remap(raw.fls[old])
		thr[i] = raw.thr[old]
		if int(raw.feat[old]) > f.maxFeature {
			f.maxFeature = int(raw.feat[old])
		}
		if raw.flags[old] != mlModeLEQ {
			f.allLEQ = false
		}
		if raw.flags[old]&mlModeMask == mlModeMember {
			if f.set == nil {
				f.set = make([]int32, m)
			}
			f.set[i] = int32(len(sets))
			sets = append(sets, raw.sets[old])
		}
	}
	if m == 0 {
		f.maxFeature = -1
	}
	f.roots = make([]int32, len(raw.roots))
	for i, r := range raw.roots {
		f.roots[i] = remap(r)
	}
	mlFillParams(&f.p32, f, thr, sets, raw.wValue, base)
	mlFillParams(&f.p64, f, thr, sets, raw.wValue, base)
	return f, nil
}

func mlFillParams[T mlFloat](p *mlTreeParams[T], f *mlForest, thr []float64, sets [][]float64, w, base []float64) {
	p.thr = make([]T, len(thr))
	for i, v := range thr {
		p.thr[i] = T(v)
	}
	if f.allLEQ {
		p.leq = make([]mlLEQNode[T], len(thr))
		for i := range p.leq {
			p.leq[i] = mlLEQNode[T]{thr: p.thr[i], feat: f.feat[i], kids: [2]int32{f.fls[i], f.tru[i]}}
		}
	}
	p.w = make([]T, len(w))
	for i, v := range w {
		p.w[i] = T(v)
	}
	p.first = make([]T, len(f.leafStart)-1)
	for l := range p.first {
		if f.leafStart[l] < f.leafStart[l+1] {
			p.first[l] = p.w[f.leafStart[l]]
		}
	}
	if len(base) > 0 {
		p.base = make([]T, len(base))
		for i, v := range base {
			p.base[i] = T(v)
		}
	}
	p.sets = make([]mlSet[T], len(sets))
	for i, s := range sets {
		var set mlSet[T]
		switch {
		case mlBigSet(s):
			set.big = make([]int32, len(s))
			for j, v := range s {
				set.big[j] = int32(v) // integers, checked by mlCheckSets
			}
			slices.Sort(set.big)
		default:
			set.small = true
			for _, v := range s {
				if v != math.Trunc(v) {
					set.small = false
				}
			}
			if set.small {
				for _, v := range s {
					set.mask |= 1 << uint(v)
				}
				break
			}
			set.vals = make([]T, len(s))
			for j, v := range s {
				set.vals[j] = T(v)
			}
			slices.Sort(set.vals)
		}
		p.sets[i] = set
	}
}

// mlLeaf walks one tree from node and returns the leaf reached by x.
func mlLeaf[T mlFloat](f *mlForest, p *mlTreeParams[T], node int32, x []T) int32 {
	if p.leq != nil {
		nodes := p.leq
		for node >= 0 {
			nd := &nodes[node]
			// (A branch-free select measured several times slower: the
			// predicted branch lets the CPU run ahead into later levels
			// and trees.)
			if x[nd.feat] <= nd.thr {
				node = nd.kids[1]
			} else {
				node = nd.kids[0]
			}
		}
		return ^node
	}
	for node >= 0 {
		v := x[f.feat[node]]
		t := p.thr[node]
		fl := f.flags[node]
		var c bool
		switch fl & mlModeMask {
		case mlModeLEQ:
			c = v <= t
		case mlModeLT:
			c = v < t
		case mlModeGTE:
			c = v >= t
		case mlModeGT:
			c = v > t
		case mlModeEQ:
			c = v == t
		case mlModeNEQ:
			c = v != t
		case mlModeMember:
			c = p.sets[f.set[node]].has(v)
		}
		if c || (fl&mlMissingTrue != 0 && v != v) {
			node = f.tru[node]
		} else {
			node = f.fls[node]
		}
	}
	return ^node
}

// mlLanes is the number of rows walked through one tree at the same time
// by mlLeavesLEQ.
const mlLanes = 8

// mlLeavesLEQ walks one all-BRANCH_LEQ tree for rows [r0, r1) of x
// (r1-r0 >= mlLanes) and writes each row's leaf to out[row-r0]. mlLanes
// walks are interleaved: each step picks a child by index rather than by
// a branch, so the walks, each a chain of dependent loads, overlap instead
// of waiting on mispredicted comparisons one after another; a walk that
// reaches its leaf takes the next row, so mlLanes stay in flight until the
// rows run out, and only the last ones finish alone. (On the benchmark's
// 100-tree forest, 64 rows: 4 lanes that stopped at the first leaf 301
// µs, with refills 270, 6 lanes 255, 8 lanes 250, 12 lanes 238; 8 keeps
// requests of 8–11 rows on this path.) The code is written out per lane
// so that the compiler keeps every walk in registers.
func mlLeavesLEQ[T mlFloat](nodes []mlLEQNode[T], root int32, x []T, cols, r0, r1 int, out []int32) {
	x = x[:r1*cols]
	// Row i's features are x[o:o+cols], o = i*cols.
	o0, o1, o2, o3, o4, o5, o6, o7 := (r0+0)*cols, (r0+1)*cols, (r0+2)*cols, (r0+3)*cols, (r0+4)*cols, (r0+5)*cols, (r0+6)*cols, (r0+7)*cols
	n0, n1, n2, n3, n4, n5, n6, n7 := root, root, root, root, root, root, root, root
	next := (r0 + mlLanes) * cols
	end := r1 * cols
	for {
		nd0 := &nodes[n0]
		nd1 := &nodes[n1]
		nd2 := &nodes[n2]
		nd3 := &nodes[n3]
		nd4 := &nodes[n4]
		nd5 := &nodes[n5]
		nd6 := &nodes[n6]
		nd7 := &nodes[n7]
		n0 = nd0.kids[mlB2I(x[o0+int(nd0.feat)] <= nd0.thr)]
		n1 = nd1.kids[mlB2I(x[o1+int(nd1.feat)] <= nd1.thr)]
		n2 = nd2.kids[mlB2I(x[o2+int(nd2.feat)] <= nd2.thr)]
		n3 = nd3.kids[mlB2I(x[o3+int(nd3.feat)] <= nd3.thr)]
		n4 = nd4.kids[mlB2I(x[o4+int(nd4.feat)] <= nd4.thr)]
		n5 = nd5.kids[mlB2I(x[o5+int(nd5.feat)] <= nd5.thr)]
		n6 = nd6.kids[mlB2I(x[o6+int(nd6.feat)] <= nd6.thr)]
		n7 = nd7.kids[mlB2I(x[o7+int(nd7.feat)] <= nd7.thr)]
		if n0|n1|n2|n3|n4|n5|n6|n7 >= 0 {
			continue
		}
		// A walk reached its leaf: record it and start the next row.
		if n0 < 0 {
			out[o0/cols-r0] = ^n0
			if next < end {
				o0, n0 = next, root
				next += cols
			}
		}
		if n1 < 0 {
			out[o1/cols-r0] = ^n1
			if next < end {
				o1, n1 = next, root
				next += cols
			}
		}
		if n2 < 0 {
			out[o2/cols-r0] = ^n2
			if next < end {
				o2, n2 = next, root
				next += cols
			}
		}
		if n3 < 0 {
			out[o3/cols-r0] = ^n3
			if next < end {
				o3, n3 = next, root
				next += cols
			}
		}
		if n4 < 0 {
			out[o4/cols-r0] = ^n4
			if next < end {
				o4, n4 = next, root
				next += cols
			}
		}
		if n5 < 0 {
			out[o5/cols-r0] = ^n5
			if next < end {
				o5, n5 = next, root
				next += cols
			}
		}
		if n6 < 0 {
			out[o6/cols-r0] = ^n6
			if next < end {
				o6, n6 = next, root
				next += cols
			}
		}
		if n7 < 0 {
			out[o7/cols-r0] = ^n7
			if next < end {
				o7, n7 = next, root
				next += cols
			}
		}
		if n0|n1|n2|n3|n4|n5|n6|n7 < 0 {
			break // a walk ended with no row left to take
		}
	}
	// Finish the walks still inside the tree one by one.
	for _, w := range [mlLanes]struct {
		n int32
		o int
	}{{n0, o0}, {n1, o1}, {n2, o2}, {n3, o3}, {n4, o4}, {n5, o5}, {n6, o6}, {n7, o7}} {
		if w.n >= 0 {
			out[w.o/cols-r0] = mlWalkLEQ(nodes, w.n, x[w.o:w.o+cols])
		}
	}
}

func mlWalkLEQ[T mlFloat](nodes []mlLEQNode[T], node int32, x []T) int32 {
	for node >= 0 {
		nd := &nodes[node]
		if x[nd.feat] <= nd.thr {
			node = nd.kids[1]
		} else {
			node = nd.kids[0]
		}
	}
	return ^node
}

func mlB2I(b bool) int {
	if b {
		return 1
	}
	return 0
}

// mlBlock is the number of rows scored together: every tree is walked for
// all rows of a block before the next tree, so its nodes stay in cache
// (onnxruntime does the same). The order in which a row's scores add up,
// tree by tree, does not change.
const mlBlock = 128

// mlAccumulate walks every tree for rows [r0, r1) of x and aggregates the
// leaves into s and has (row i at (i-r0)*width, cleared first). With one
// target (width 1) each leaf contributes its first weight, as onnxruntime's
// ProcessTreeNodePrediction1 does; otherwise all its weights.
func mlAccumulate[T mlFloat](f *mlForest, p *mlTreeParams[T], agg mlAgg, x []T, cols, r0, r1 int, s []T, has []bool) {
	width := f.nTargets
	s, has = s[:(r1-r0)*width], has[:(r1-r0)*width]
	clear(s)
	clear(has)
	var leaves [mlBlock]int32 // the leaves of rows [r0, r1) in this tree
	walked := p.leq != nil && r1-r0 >= mlLanes
	for _, root := range f.roots {
		if walked {
			mlLeavesLEQ(p.leq, root, x, cols, r0, r1, leaves[:])
		}
		for i := r0; i < r1; i++ {
			var l int32
			if walked {
				l = leaves[i-r0]
			} else {
				l = mlLeaf(f, p, root, x[i*cols:(i+1)*cols])
			}
			o := (i - r0) * width
			lo, hi := f.leafStart[l], f.leafStart[l+1]
			if width == 1 {
				if lo == hi {
					continue
				}
				hi = lo + 1
			}
			for k := lo; k < hi; k++ {
				t, v := o+int(f.wTarget[k]), p.w[k]
				switch agg {
				case mlAggSum, mlAggAverage:
					s[t] += v
				case mlAggMin:
					if !has[t] || v < s[t] {
						s[t] = v
					}
				case mlAggMax:
					if !has[t] || v > s[t] {
						s[t] = v
					}
				}
				has[t] = true
			}
		}
	}
}

// mlForestInput converts the input of a forest to T = float32 or float64
// and checks its width.
type mlForestInput struct {
	rows, cols int
	x32        []float32
	x64        []float64
	dtype      tensor.DType
}

func mlReadForestInput(n *Node, f *mlForest, in []Value) (mlForestInput, error) {
	x, err := n.Tensor(in, 0)
	if err != nil {
		return mlForestInput{}, err
	}
	rows, cols, err := mlRowsCols(n, x)
	if err != nil {
		return mlForestInput{}, err
	}
	if f.maxFeature >= cols {
		return mlForestInput{}, n.Errorf("a tree uses feature %d but the input has %d features", f.maxFeature, cols)
	}
	fi := mlForestInput{rows: rows, cols: cols, dtype: x.DType}
	if d, ok := x.Data.([]float64); ok {
		fi.x64 = d
	} else {
		if fi.x32, err = mlFloat32s(n, x); err != nil {
			return mlForestInput{}, err
		}
	}
	return fi, nil
}

// mlRegressorOut computes the [rows, nTargets] output of a regressor
// forest (TreeEnsembleRegressor and TreeEnsemble) in T, writing through
// put(i, v) the final values after the post-transform, which onnxruntime
// computes in float32.
func mlRegressorOut[T mlFloat](f *mlForest, p *mlTreeParams[T], agg mlAgg, post mlPost, x []T, rows, cols int, put func(i int, v float32, w T)) {
	nT := f.nTargets
	nTrees := T(len(f.roots))
	block := min(rows, mlBlock)
	s := make([]T, block*nT)
	has := make([]bool, block*nT)
	var z []float32
	if nT > 1 {
		z = make([]float32, nT)
	}
	var origin T
	if len(p.base) == 1 {
		origin = p.base[0]
	}
	useBase := len(p.base) == nT
	for r0 := 0; r0 < rows; r0 += block {
		r1 := min(rows, r0+block)
		mlAccumulate(f, p, agg, x, cols, r0, r1, s, has)
		for i := r0; i < r1; i++ {
			row, rowHas := s[(i-r0)*nT:(i-r0+1)*nT], has[(i-r0)*nT:(i-r0+1)*nT]
			if nT == 1 {
				v := row[0]
				switch agg {
				case mlAggSum:
					v += origin
				case mlAggAverage:
					v = v/nTrees + origin
				default:
					if rowHas[0] {
						v += origin
					} else {
						v = origin
					}
				}
				if post == mlPostProbit {
					pv := mlProbit(float32(v))
					put(i, pv, T(pv))
				} else {
					put(i, float32(v), v)
				}
				continue
			}
			for j, v := range row {
				if agg == mlAggAverage {
					v /= nTrees
				}
				if useBase {
					v += p.base[j]
				}
				// onnxruntime writes targets no leaf reached as 0.
				if !rowHas[j] {
					v = 0
				}
				row[j] = v
				z[j] = float32(v)
			}
			if post == mlPostNone {
				for j, v := range row {
					put(i*nT+j, z[j], v)
				}
				continue
			}
			mlTransform(post, z)
			for j, v := range z {
				put(i*nT+j, v, T(v))
			}
		}
	}
}
