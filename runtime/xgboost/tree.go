package xgboost

import (
	"fmt"
	"math"
	"slices"

	"github.com/kiln-ml/kiln/runtime"
)

// node is one node of a flattened tree, 16 bytes. Trees are laid out in
// depth-first order with the left child right after its parent, so only
// the right child is stored.
type node struct {
	value float32 // split threshold, or the leaf value of a leaf
	right int32   // index in forest.nodes of the right child; -1 marks a leaf
	// feature is the split feature in the low bits, and the flags.
	feature uint32
	cat     int32 // index in forest.cats of a categorical split
}

const (
	flagDefaultLeft = 1 << 31 // a missing value goes to the left child
	flagCategorical = 1 << 30 // a categorical split: cats[cat] go right
	featureMask     = 1<<30 - 1
)

// maxCategory is the largest category XGBoost represents exactly (its
// OutOfRangeCat() minus one); larger values and negative ones never match a
// category set.
const maxCategory = 1<<24 - 1

// catSet is the set of categories that a categorical split sends to the
// right child: a bitset when it is dense, a sorted list otherwise (so a
// hostile model cannot make a tiny file allocate a huge bitset).
type catSet struct {
	bits   []uint64
	sorted []int32
}

func newCatSet(cats []int32) catSet {
	if len(cats) == 0 {
		return catSet{}
	}
	hi := slices.Max(cats)
	if words := int(hi)/64 + 1; words <= 2*len(cats)+8 {
		bits := make([]uint64, words)
		for _, c := range cats {
			bits[c/64] |= 1 << (c % 64)
		}
		return catSet{bits: bits}
	}
	s := slices.Clone(cats)
	slices.Sort(s)
	return catSet{sorted: slices.Compact(s)}
}

// right reports whether category x goes to the right child, following
// XGBoost's common::Decision: the listed categories go right; everything
// else, including a negative or out-of-range value, goes left. A fractional
// value is truncated to its category.
func (c *catSet) right(x float32) bool {
	if !(x >= 0 && x <= maxCategory) {
		return false
	}
	v := int32(x)
	if c.bits != nil {
		w := int(v / 64)
		return w < len(c.bits) && c.bits[w]&(1<<(v%64)) != 0
	}
	_, found := slices.BinarySearch(c.sorted, v)
	return found
}

// forest is the trees of a gbtree or dart booster, flattened at load time.
type forest struct {
	nodes   []node
	cats    []catSet
	roots   []int32   // the root node of each tree
	groups  []int32   // the output group of each tree (tree_info)
	weights []float32 // dart's weight_drop, nil for gbtree
	indptr  []int     // iteration_indptr: trees[indptr[i]:indptr[i+1]] form iteration i
	covers  []float32 // per node, its sum_hessian, for explanations (see forest.go)
}

// leaf returns the leaf value that row reaches in the tree rooted at i.
func (f *forest) leaf(i int32, row []float32) float32 {
	nodes := f.nodes
	for {
		n := &nodes[i]
		if n.right < 0 {
			return n.value
		}
		x := row[n.feature&featureMask]
		switch {
		case n.feature&flagCategorical == 0 && x == x:
			// The common case, numeric and present, without branches
			// on the data.
			next := i + 1
			if !(x < n.value) {
				next = n.right
			}
			i = next
		case x != x: // missing: NaN
			if n.feature&flagDefaultLeft != 0 {
				i++
			} else {
				i = n.right
			}
		case f.cats[n.cat].right(x):
			i = n.right
		default:
			i++
		}
	}
}

// add adds the first ntrees trees' outputs for row to out, one element per
// output group, in tree order and in single precision as XGBoost does.
func (f *forest) add(row, out []float32, ntrees int) {
	if f.weights != nil {
		for t := range ntrees {
			// The product is rounded before the sum (no fused multiply-add),
			// as XGBoost computes it.
			out[f.groups[t]] += float32(f.leaf(f.roots[t], row) * f.weights[t])
		}
		return
	}
	if len(out) == 1 {
		sum := out[0]
		for _, r := range f.roots[:ntrees] {
			sum += f.leaf(r, row)
		}
		out[0] = sum
		return
	}
	for t := range ntrees {
		out[f.groups[t]] += f.leaf(f.roots[t], row)
	}
}

// maxNodes bounds the nodes of one tree.
const maxNodes = 1 << 30

// addTree flattens one tree of the JSON model into f. numFeature bounds the
// split features.
func (f *forest) addTree(t *value, p loc, numFeature int) error {
	tp, err := member(t, p, "tree_param")
	if err != nil {
		return err
	}
	v, err := member(tp, p.at("tree_param"), "num_nodes")
	if err != nil {
		return err
	}
	n64, err := v.asInt(p.at("tree_param/num_nodes"), 1, maxNodes)
	if err != nil {
		return err
	}
	n := int(n64)
	if v, ok := tp.get("size_leaf_vector"); ok {
		size, err := v.asInt(p.at("tree_param/size_leaf_vector"), 0, math.MaxInt32)
		if err != nil {
			return err
		}
		if size > 1 {
			return fmt.Errorf("%w: %s: multi-target trees (multi_strategy=multi_output_tree, size_leaf_vector %d)", runtime.ErrUnsupported, p, size)
		}
	}
	array := func(key string, lo, hi int64) ([]int32, error) {
		v, err := member(t, p, key)
		if err != nil {
			return nil, err
		}
		a, err := v.ints(p.at(key), lo, hi)
		if err != nil {
			return nil, err
		}
		if len(a) != n {
			return nil, fieldError(p.at(key), "has %d elements, want num_nodes %d", len(a), n)
		}
		return a, nil
	}
	left, err := array("left_children", -1, int64(n-1))
	if err != nil {
		return err
	}
	right, err := array("right_children", -1, int64(n-1))
	if err != nil {
		return err
	}
	feature, err := array("split_indices", 0, math.MaxInt32)
	if err != nil {
		return err
	}
	defaultLeft, err := array("default_left", 0, 1)
	if err != nil {
		return err
	}
	cv, err := member(t, p, "split_conditions")
	if err != nil {
		return err
	}
	cond, err := cv.float32s(p.at("split_conditions"))
	if err != nil {
		return err
	}
	if len(cond) != n {
		return fieldError(p.at("split_conditions"), "has %d elements, want num_nodes %d", len(cond), n)
	}
	var splitType []int32
	var catOf map[int32]catSet
	if _, ok := t.get("split_type"); ok {
		if splitType, err = array("split_type", 0, 1); err != nil {
			return err
		}
		if catOf, err = categories(t, p, splitType); err != nil {
			return err
		}
	}

	// Depth-first from the root, left child first; every node may be
	// reached once, so a corrupt file cannot make a cycle. Deleted
	// (unreachable) nodes are dropped.
	base := int32(len(f.nodes))
	if int(base)+n > math.MaxInt32 {
		return fieldError(p, "too many nodes in the model")
	}
	pos := make([]int32, n)
	for i := range pos {
		pos[i] = -1
	}
	order := make([]int32, 0, n)
	stack := []int32{0}
	for len(stack) > 0 {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if pos[i] >= 0 {
			return fieldError(p, "node %d is reached twice", i)
		}
		pos[i] = base + int32(len(order))
		order = append(order, i)
		if left[i] < 0 {
			continue
		}
		if right[i] < 0 {
			return fieldError(p.at("right_children"), "node %d has a left child but no right child", i)
		}
		stack = append(stack, right[i], left[i])
	}
	for k, i := range order {
		nd := node{value: cond[i], right: -1}
		if left[i] >= 0 {
			if int(feature[i]) >= numFeature {
				return fieldError(p.at("split_indices"), "node %d splits on feature %d, the model has %d", i, feature[i], numFeature)
			}
			if pos[left[i]] != base+int32(k)+1 {
				// The depth-first order guarantees it.
				return fieldError(p, "node %d: left child out of order", i)
			}
			nd.feature = uint32(feature[i])
			nd.right = pos[right[i]]
			if defaultLeft[i] != 0 {
				nd.feature |= flagDefaultLeft
			}
			if splitType != nil && splitType[i] == 1 {
				nd.feature |= flagCategorical
				nd.cat = int32(len(f.cats))
				f.cats = append(f.cats, catOf[i]) // absent: empty, always left
			}
		}
		f.nodes = append(f.nodes, nd)
	}
	f.addCovers(t, order)
	f.roots = append(f.roots, base)
	return nil
}

// categories reads the category sets of a tree's categorical splits.
// XGBoost lists, for each categorical node (categories_nodes, ascending), a
// segment of the categories array (categories_segments, categories_sizes).
func categories(t *value, p loc, splitType []int32) (map[int32]catSet, error) {
	get := func(key string, lo, hi int64) ([]int32, error) {
		v, err := member(t, p, key)
		if err != nil {
			return nil, err
		}
		return v.ints(p.at(key), lo, hi)
	}
	nodes, err := get("categories_nodes", 0, int64(len(splitType)-1))
	if err != nil {
		return nil, err
	}
	if len(nodes) == 0 {
		return nil, nil
	}
	segments, err := get("categories_segments", 0, math.MaxInt32)
	if err != nil {
		return nil, err
	}
	sizes, err := get("categories_sizes", 0, math.MaxInt32)
	if err != nil {
		return nil, err
	}
	cats, err := get("categories", 0, maxCategory)
	if err != nil {
		return nil, err
	}
	if len(segments) != len(nodes) || len(sizes) != len(nodes) {
		return nil, fieldError(p, "categories_nodes, categories_segments and categories_sizes differ in length (%d, %d, %d)", len(nodes), len(segments), len(sizes))
	}
	out := make(map[int32]catSet, len(nodes))
	for k, nd := range nodes {
		beg, size := int(segments[k]), int(sizes[k])
		if beg+size > len(cats) {
			return nil, fieldError(p.at("categories_segments"), "segment %d [%d, %d) is outside the %d categories", k, beg, beg+size, len(cats))
		}
		if splitType[nd] != 1 {
			return nil, fieldError(p.at("categories_nodes"), "node %d is not a categorical split", nd)
		}
		if _, dup := out[nd]; dup {
			return nil, fieldError(p.at("categories_nodes"), "node %d is listed twice", nd)
		}
		out[nd] = newCatSet(cats[beg : beg+size])
	}
	return out, nil
}
