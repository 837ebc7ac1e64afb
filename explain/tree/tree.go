// Package tree is the backend-neutral form of a tree ensemble that Kiln's
// explanations work on, and the TreeSHAP algorithms over it.
//
// The runtimes that hold tree ensembles (runtime/xgboost, runtime/lightgbm,
// runtime/onnx) export their trees as a Forest through the Forester
// interface: every split with the comparison, missing-value rule and
// precision its library uses, so a Forest routes a row exactly as the
// runtime's Predict does; leaf values per output; and, when the library
// stores it, each node's cover (XGBoost's sum of training hessians,
// LightGBM's training sample count). The ensemble's raw margin is
// Base + Σ_trees Weight·leaf value, before the objective's link (sigmoid,
// softmax, exp) maps it to a prediction; explanations are in that margin
// space, as shap.TreeExplainer's default model_output="raw" is.
//
// Two algorithms explain a Forest:
//
//   - NewPathDependent: exact path-dependent TreeSHAP (Lundberg, Erion and
//     Lee, "Consistent Individualized Feature Attribution for Tree
//     Ensembles", 2018, algorithm 2), which needs covers. It is what
//     shap.TreeExplainer(model) computes with its default
//     feature_perturbation="tree_path_dependent".
//   - NewInterventional: exact interventional TreeSHAP against background
//     rows, which needs no covers: the Shapley values of the game
//     v(S) = mean over background rows z of f(x_S, z_rest), what
//     shap.TreeExplainer(model, data, feature_perturbation="interventional")
//     computes.
//
// Both are polynomial in the tree size, allocate nothing per node or row,
// and spread rows over goroutines.
package tree

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// Forester is implemented by models whose predictions are a tree ensemble
// they can export.
type Forester interface {
	// Forest returns the model's trees. The Forest is the caller's, but may
	// share slices with other calls: treat it as read-only.
	Forest() (*Forest, error)
}

// Op is the comparison a split makes; its Yes child takes the rows for
// which it holds.
type Op uint8

// The comparisons.
const (
	LT Op = iota // x < Threshold (XGBoost)
	LE           // x <= Threshold (LightGBM, scikit-learn / ONNX BRANCH_LEQ)
	GT           // x > Threshold
	GE           // x >= Threshold
	EQ           // x == Threshold
	NE           // x != Threshold
	In           // x is a member of the tree's Sets[Node.Set] (categorical splits)
)

var opNames = [...]string{LT: "<", LE: "<=", GT: ">", GE: ">=", EQ: "==", NE: "!=", In: "in"}

func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return fmt.Sprintf("Op(%d)", o)
}

// Missing is what a split does with a missing value (NaN, and 0 when
// Node.ZeroIsMissing).
type Missing uint8

// The missing-value rules.
const (
	// MissingCompare compares NaN like any number: false for the ordered
	// comparisons, EQ and In, true for NE (ONNX without
	// nodes_missing_value_tracks_true).
	MissingCompare Missing = iota
	MissingYes             // a missing value takes the Yes child
	MissingNo              // a missing value takes the No child
	// MissingAsZero reads NaN as 0 before comparing (LightGBM's missing
	// type None).
	MissingAsZero
)

// Node is one node of a tree. A leaf has Feature -1.
type Node struct {
	Feature int32 // split feature (an input column), -1 for a leaf
	Op      Op
	Missing Missing
	// ZeroIsMissing makes 0 a missing value too (LightGBM's missing type
	// Zero); only with MissingYes or MissingNo.
	ZeroIsMissing bool
	Threshold     float64
	Set           int32 // with Op In: index in Tree.Sets
	Yes, No       int32 // children, indices in Tree.Nodes
	// Cover is the training weight that reached the node: the hessian sum
	// (XGBoost) or sample count (LightGBM). Zero when unknown.
	Cover float64
	// Leaf is, for a leaf, its number: its values are
	// Tree.Values[Leaf*len(Tree.Outputs):][:len(Tree.Outputs)].
	Leaf int32
}

// IsLeaf reports whether n is a leaf.
func (n *Node) IsLeaf() bool { return n.Feature < 0 }

// Set is the category set of a categorical split.
type Set struct {
	Members []float64 // sorted ascending
	// Trunc: x in [Lo, Hi] is truncated toward zero and then looked up;
	// x outside (and NaN) is never a member. Without Trunc, x must equal
	// a member.
	Trunc  bool
	Lo, Hi float64
}

// Has reports whether x is a member.
func (s *Set) Has(x float64) bool {
	if s.Trunc {
		if !(x >= s.Lo && x <= s.Hi) {
			return false
		}
		x = math.Trunc(x)
	}
	_, found := slices.BinarySearch(s.Members, x)
	return found
}

// Tree is one tree. Nodes[0] is the root.
type Tree struct {
	Nodes []Node
	// Outputs are the model outputs (classes, targets) each leaf holds a
	// value for: one for a boosted tree, one per class for a random
	// forest's leaves in ONNX.
	Outputs []int32
	Values  []float64 // per leaf, len(Outputs) values
	Sets    []Set
	// Weight multiplies every leaf value: 1, DART's weight_drop, or
	// 1/trees for an averaging forest.
	Weight float64
}

// Forest is a tree ensemble: raw margin[k] = Base[k] + Σ over trees of
// Weight × the value for output k of the leaf the row reaches.
type Forest struct {
	Trees       []Tree
	NumFeatures int
	NumOutputs  int
	Base        []float64 // per output; nil means zeros
	// Float32 says the library compares in single precision: inputs are
	// rounded to float32 before they meet thresholds (which are then
	// float32 values too).
	Float32 bool
	// ZeroBand makes inputs with |x| <= ZeroBand read as exactly 0
	// (LightGBM's C API drops them from dense rows); 0 for none.
	ZeroBand float64
	// FeatureNames names the input columns when the model does (may be
	// nil); OutputNames the outputs (classes, targets).
	FeatureNames []string
	OutputNames  []string
	// Link is how the library turns the margin into its prediction:
	// "identity", "logistic", "softmax", "exp", ... (informational).
	Link string
	// Source names the library, e.g. "xgboost".
	Source string
}

// Errors of a Forest that cannot be explained.
var (
	ErrInvalid = errors.New("invalid forest")
	// ErrNoCover is returned by NewPathDependent for a forest without
	// covers (ONNX tree ensembles carry none): explain it against
	// background data with NewInterventional instead.
	ErrNoCover = errors.New("the forest has no node covers")
)

// MaxDepth bounds the depth of the trees explained.
const MaxDepth = 512

// HasCover reports whether the forest carries covers, as path-dependent
// TreeSHAP needs: every root's is positive, and none is negative, NaN or
// infinite.
func (f *Forest) HasCover() bool {
	for i := range f.Trees {
		nodes := f.Trees[i].Nodes
		if len(nodes) == 0 || !(nodes[0].Cover > 0) {
			return false
		}
		for j := range nodes {
			if !(nodes[j].Cover >= 0) || math.IsInf(nodes[j].Cover, 0) {
				return false
			}
		}
	}
	return true
}

// Check validates the forest (children in range and forming trees,
// features and outputs in range, leaf values present) and returns the
// depth of its deepest tree.
func (f *Forest) Check() (depth int, err error) {
	if f.NumFeatures < 0 || f.NumOutputs < 1 {
		return 0, fmt.Errorf("%w: %d features, %d outputs", ErrInvalid, f.NumFeatures, f.NumOutputs)
	}
	if f.Base != nil && len(f.Base) != f.NumOutputs {
		return 0, fmt.Errorf("%w: %d base values for %d outputs", ErrInvalid, len(f.Base), f.NumOutputs)
	}
	var seen []bool
	var stack []int32
	var depths []int32
	for ti := range f.Trees {
		t := &f.Trees[ti]
		n := len(t.Nodes)
		if n == 0 || n > math.MaxInt32 {
			return 0, fmt.Errorf("%w: tree %d has %d nodes", ErrInvalid, ti, n)
		}
		if len(t.Outputs) == 0 {
			return 0, fmt.Errorf("%w: tree %d has no outputs", ErrInvalid, ti)
		}
		for _, o := range t.Outputs {
			if o < 0 || int(o) >= f.NumOutputs {
				return 0, fmt.Errorf("%w: tree %d adds to output %d of %d", ErrInvalid, ti, o, f.NumOutputs)
			}
		}
		if math.IsNaN(t.Weight) {
			return 0, fmt.Errorf("%w: tree %d has weight NaN", ErrInvalid, ti)
		}
		seen = slices.Grow(seen[:0], n)[:n]
		clear(seen)
		depths = slices.Grow(depths[:0], n)[:n]
		stack = append(stack[:0], 0)
		seen[0] = true
		depths[0] = 0
		reached := 0
		for len(stack) > 0 {
			i := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			reached++
			nd := &t.Nodes[i]
			d := int(depths[i])
			depth = max(depth, d)
			if nd.IsLeaf() {
				stride := len(t.Outputs)
				if nd.Leaf < 0 || (int(nd.Leaf)+1)*stride > len(t.Values) {
					return 0, fmt.Errorf("%w: tree %d node %d: leaf %d has no values", ErrInvalid, ti, i, nd.Leaf)
				}
				continue
			}
			if int(nd.Feature) >= f.NumFeatures {
				return 0, fmt.Errorf("%w: tree %d node %d splits on feature %d of %d", ErrInvalid, ti, i, nd.Feature, f.NumFeatures)
			}
			if nd.Op > In || nd.Missing > MissingAsZero {
				return 0, fmt.Errorf("%w: tree %d node %d: unknown comparison or missing rule", ErrInvalid, ti, i)
			}
			if nd.Op == In && (nd.Set < 0 || int(nd.Set) >= len(t.Sets)) {
				return 0, fmt.Errorf("%w: tree %d node %d: category set %d of %d", ErrInvalid, ti, i, nd.Set, len(t.Sets))
			}
			if d+1 > MaxDepth {
				return 0, fmt.Errorf("%w: tree %d is deeper than %d", ErrInvalid, ti, MaxDepth)
			}
			for _, c := range [2]int32{nd.Yes, nd.No} {
				if c < 0 || int(c) >= n || seen[c] {
					return 0, fmt.Errorf("%w: tree %d node %d: child %d is out of range or reached twice", ErrInvalid, ti, i, c)
				}
				seen[c] = true
				depths[c] = int32(d + 1)
				stack = append(stack, c)
			}
		}
		_ = reached // unreachable nodes are allowed and ignored
	}
	return depth, nil
}

// prepare applies the forest's input rules to a row value.
func (f *Forest) prepare(x float64) float64 {
	if f.Float32 {
		x = float64(float32(x))
	}
	if f.ZeroBand > 0 && math.Abs(x) <= f.ZeroBand {
		x = 0
	}
	return x
}

// PrepareRow applies the forest's input rules (single precision, the zero
// band) to row in place. The explainers do it themselves; Margin expects
// prepared rows.
func (f *Forest) PrepareRow(row []float64) {
	for i, x := range row {
		row[i] = f.prepare(x)
	}
}

// yes reports whether x (prepared) takes node n's Yes child.
func (t *Tree) yes(n *Node, x float64) bool {
	if x != x || (n.ZeroIsMissing && x == 0) {
		switch n.Missing {
		case MissingYes:
			return true
		case MissingNo:
			return false
		case MissingAsZero:
			x = 0
		}
	}
	v := n.Threshold
	switch n.Op {
	case LT:
		return x < v
	case LE:
		return x <= v
	case GT:
		return x > v
	case GE:
		return x >= v
	case EQ:
		return x == v
	case NE:
		return x != v
	}
	return t.Sets[n.Set].Has(x)
}

// next returns the child of node n that x takes.
func (t *Tree) next(n *Node, x float64) int32 {
	if t.yes(n, x) {
		return n.Yes
	}
	return n.No
}

// leaf returns the leaf node that row reaches.
func (t *Tree) leaf(row []float64) *Node {
	n := &t.Nodes[0]
	for !n.IsLeaf() {
		n = &t.Nodes[t.next(n, row[n.Feature])]
	}
	return n
}

// Margin computes the raw margin of a prepared row (see PrepareRow) into
// out (len NumOutputs). The forest must have passed Check.
func (f *Forest) Margin(row, out []float64) {
	out = out[:f.NumOutputs]
	if f.Base != nil {
		copy(out, f.Base)
	} else {
		clear(out)
	}
	for ti := range f.Trees {
		t := &f.Trees[ti]
		n := t.leaf(row)
		k := len(t.Outputs)
		vals := t.Values[int(n.Leaf)*k : int(n.Leaf+1)*k]
		for j, o := range t.Outputs {
			out[o] += t.Weight * vals[j]
		}
	}
}
