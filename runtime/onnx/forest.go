package onnx

import (
	"fmt"
	"math"
	"slices"
	"strconv"

	etree "github.com/kiln-ml/kiln/explain/tree"
	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

var _ etree.Forester = (*Model)(nil)

// Forest exports the model's tree ensemble for explanations (see package
// explain/tree) when the model is one: exactly one TreeEnsembleClassifier,
// TreeEnsembleRegressor or TreeEnsemble node, fed by the graph's only
// input directly or through Cast (to float or double) and Identity nodes.
// A graph that computes the ensemble's input (a Scaler, a
// ColumnTransformer before the trees) is refused with
// runtime.ErrUnsupported: its trees do not split on the model's inputs.
// The forest is the ensemble's raw scores, before post_transform (and
// before ZipMap or any node after it), compared in the precision the
// operator uses for the input (float32 unless the input is double).
// ONNX stores no covers (nodes_hitrates is not filled by the converters),
// so the forest has none: it is explained against background data.
// Ensembles aggregated with MIN or MAX, and classifiers whose base_values
// onnxruntime applies in its peculiar binary way, are refused too.
func (m *Model) Forest() (*etree.Forest, error) {
	var tree *execNode
	for i := range m.nodes {
		switch m.nodes[i].kernel.(type) {
		case *mlTreeClassifier, *mlTreeRegressor, *mlTreeEnsemble:
			if tree != nil {
				return nil, fmt.Errorf("onnx: %w: the graph has more than one tree ensemble", runtime.ErrUnsupported)
			}
			tree = &m.nodes[i]
		}
	}
	if tree == nil {
		return nil, fmt.Errorf("onnx: %w: the graph has no tree ensemble (TreeEnsembleClassifier, TreeEnsembleRegressor, TreeEnsemble)", runtime.ErrUnsupported)
	}
	return m.forestOf(tree)
}

// forestOf exports the ensemble of one tree node.
func (m *Model) forestOf(tree *execNode) (*etree.Forest, error) {
	if len(m.sig.Inputs) != 1 || len(m.inSlots) != 1 {
		return nil, fmt.Errorf("onnx: %w: the model has %d inputs; a tree ensemble is explained over one", runtime.ErrUnsupported, len(m.sig.Inputs))
	}
	in := m.sig.Inputs[0]
	rounded, double, err := m.treeInput(tree, in.DType)
	if err != nil {
		return nil, err
	}
	nf := -1
	if len(in.Shape) == 2 && in.Shape[1] >= 0 {
		nf = int(in.Shape[1])
	}
	out := &etree.Forest{Float32: rounded, Source: "onnx", Link: "identity", NumFeatures: nf}
	var f *mlForest
	agg := mlAggSum
	var post mlPost
	var base []float64
	binaryLink := ""
	switch k := tree.kernel.(type) {
	case *mlTreeClassifier:
		f, post = k.f, k.post
		b := k.f.p64.base
		nc := k.labels.len()
		labels := make([]string, nc)
		for i := range labels {
			if k.labels.strings != nil {
				labels[i] = k.labels.strings[i]
			} else {
				labels[i] = strconv.FormatInt(k.labels.ints[i], 10)
			}
		}
		switch {
		case k.binary:
			// One class carries the weights; its score is the second
			// class's margin. onnxruntime's binary rules (mlClassFinalize)
			// are followed for the usual layouts only: weights for class
			// 0 (scikit-learn's converters) with at most one base value,
			// or for class 1 without base values.
			class := int32(0)
			if len(k.f.wTarget) > 0 {
				class = k.f.wTarget[0]
			}
			base = []float64{0}
			switch {
			case class == 0 && len(b) <= 1:
				if len(b) == 1 {
					base[0] = b[0]
				}
				binaryLink = "identity"
				switch post {
				case mlPostLogistic:
					binaryLink = "logistic"
				case mlPostProbit:
					binaryLink = "probit"
				}
			case class == 1 && len(b) == 0 && post != mlPostSoftmaxZero && post != mlPostProbit:
				binaryLink = "identity"
				if post != mlPostNone {
					binaryLink = "logistic" // LOGISTIC or SOFTMAX of [0, s]
				}
			default:
				return nil, fmt.Errorf("onnx: %w: a binary TreeEnsembleClassifier with weights for class %d, %d base_values and post_transform %s", runtime.ErrUnsupported, class, len(b), postName(post))
			}
			out.NumOutputs, out.OutputNames = 1, labels[1:2]
		case nc == 2 && len(b) == 2:
			return nil, fmt.Errorf("onnx: %w: a two-class TreeEnsembleClassifier with two base_values", runtime.ErrUnsupported)
		default:
			out.NumOutputs, out.OutputNames = nc, labels
			base = make([]float64, nc)
			copy(base, b)
		}
	case *mlTreeRegressor:
		f, post, agg = k.f, k.post, k.agg
		out.NumOutputs = f.nTargets
		base = regressorBase(f.p64.base, f.nTargets)
	case *mlTreeEnsemble:
		f, post, agg = k.f, k.post, k.agg
		out.NumOutputs = f.nTargets
		base = make([]float64, f.nTargets)
	}
	if agg != mlAggSum && agg != mlAggAverage {
		return nil, fmt.Errorf("onnx: %w: a tree ensemble aggregated by MIN or MAX is not additive", runtime.ErrUnsupported)
	}
	out.Base = base
	out.Link = postName(post)
	if binaryLink != "" {
		out.Link = binaryLink
	}
	if out.NumFeatures < 0 {
		out.NumFeatures = f.maxFeature + 1
	}
	if f.maxFeature >= out.NumFeatures {
		return nil, fmt.Errorf("onnx: %w: a tree splits on feature %d, the input has %d", runtime.ErrInvalidModel, f.maxFeature, out.NumFeatures)
	}
	weight := 1.0
	if agg == mlAggAverage && len(f.roots) > 0 {
		weight = 1 / float64(len(f.roots))
	}
	_, isClassifier := tree.kernel.(*mlTreeClassifier)
	binary := isClassifier && tree.kernel.(*mlTreeClassifier).binary
	if double {
		out.Trees = exportTrees(f, &f.p64, weight, binary)
	} else {
		out.Trees = exportTrees(f, &f.p32, weight, binary)
	}
	return out, nil
}

// treeInput follows the tree node's input back to the graph input through
// Cast and Identity nodes (Identity nodes are already gone: their readers
// read the input's slot). It reports whether the values reach the trees
// rounded to float32, and whether the trees compare in double precision.
func (m *Model) treeInput(tree *execNode, dt tensor.DType) (rounded, double bool, err error) {
	slot := tree.in[0]
	var casts []tensor.DType // from the tree back to the input
	for slot != m.inSlots[0] {
		var prod *execNode
		for i := range m.nodes {
			if slices.Contains(m.nodes[i].out, slot) {
				prod = &m.nodes[i]
				break
			}
		}
		if prod == nil || prod.node.OpType != "Cast" || prod.node.Domain != "" || len(prod.in) != 1 {
			what := "a constant"
			if prod != nil {
				what = prod.node.OpType
			}
			return false, false, fmt.Errorf("onnx: %w: the tree ensemble's input is computed by %s, not the model's input: explain the model with the model-agnostic method", runtime.ErrUnsupported, what)
		}
		to, _ := prod.node.Int("to", 0)
		switch to {
		case 1:
			casts = append(casts, tensor.Float32)
		case 11:
			casts = append(casts, tensor.Float64)
		default:
			return false, false, fmt.Errorf("onnx: %w: the tree ensemble's input is cast to ONNX type %d", runtime.ErrUnsupported, to)
		}
		slot = prod.in[0]
	}
	final := dt
	if len(casts) > 0 {
		final = casts[0]
	}
	rounded = dt != tensor.Float64 || slices.Contains(casts, tensor.Float32)
	return rounded, final == tensor.Float64, nil
}

func regressorBase(b []float64, n int) []float64 {
	out := make([]float64, n)
	if len(b) == n {
		copy(out, b)
	} else if n == 1 && len(b) == 1 {
		out[0] = b[0]
	}
	return out
}

func postName(p mlPost) string {
	switch p {
	case mlPostLogistic:
		return "logistic"
	case mlPostSoftmax:
		return "softmax"
	case mlPostSoftmaxZero:
		return "softmax_zero"
	case mlPostProbit:
		return "probit"
	}
	return "identity"
}

// exportTrees converts the compiled forest, with the thresholds and
// weights of one precision, into explain/tree trees. Each tree's outputs
// are the targets its leaves carry weights for; with binary, the one
// class that carries weights is output 0.
func exportTrees[T mlFloat](f *mlForest, p *mlTreeParams[T], weight float64, binary bool) []etree.Tree {
	trees := make([]etree.Tree, 0, len(f.roots))
	width := f.nTargets
	for _, root := range f.roots {
		e := treeExport[T]{f: f, p: p, binary: binary, slot: map[int32]int32{}}
		// The targets the tree's leaves carry weights for.
		e.walkLeaves(root, func(l int32) {
			lo, hi := f.leafStart[l], f.leafStart[l+1]
			if width == 1 && hi > lo {
				hi = lo + 1
			}
			for k := lo; k < hi; k++ {
				t := f.wTarget[k]
				if binary {
					t = 0
				}
				if _, ok := e.slot[t]; !ok {
					e.slot[t] = 0
					e.t.Outputs = append(e.t.Outputs, t)
				}
			}
		})
		if len(e.t.Outputs) == 0 {
			e.t.Outputs = []int32{0} // leaves without weights: a tree of zeros
		}
		slices.Sort(e.t.Outputs)
		for i, o := range e.t.Outputs {
			e.slot[o] = int32(i)
		}
		e.t.Weight = weight
		e.add(root)
		trees = append(trees, e.t)
	}
	return trees
}

type treeExport[T mlFloat] struct {
	f      *mlForest
	p      *mlTreeParams[T]
	binary bool
	t      etree.Tree
	slot   map[int32]int32 // output → index in t.Outputs
}

func (e *treeExport[T]) walkLeaves(c int32, fn func(l int32)) {
	if c < 0 {
		fn(^c)
		return
	}
	e.walkLeaves(e.f.tru[c], fn)
	e.walkLeaves(e.f.fls[c], fn)
}

// add appends the subtree at c (an interior node, or ^leaf) and returns
// its index.
func (e *treeExport[T]) add(c int32) int32 {
	f, p := e.f, e.p
	i := int32(len(e.t.Nodes))
	e.t.Nodes = append(e.t.Nodes, etree.Node{})
	if c < 0 {
		l := ^c
		k := len(e.t.Outputs)
		leaf := int32(len(e.t.Values) / k)
		vals := make([]float64, k)
		lo, hi := f.leafStart[l], f.leafStart[l+1]
		if f.nTargets == 1 && hi > lo {
			hi = lo + 1
		}
		for w := lo; w < hi; w++ {
			t := f.wTarget[w]
			if e.binary {
				t = 0
			}
			vals[e.slot[t]] += float64(p.w[w])
		}
		e.t.Values = append(e.t.Values, vals...)
		e.t.Nodes[i] = etree.Node{Feature: -1, Leaf: leaf}
		return i
	}
	fl := f.flags[c]
	n := etree.Node{Feature: f.feat[c], Threshold: float64(p.thr[c]), Missing: etree.MissingCompare}
	if fl&mlMissingTrue != 0 {
		n.Missing = etree.MissingYes
	}
	switch fl & mlModeMask {
	case mlModeLEQ:
		n.Op = etree.LE
	case mlModeLT:
		n.Op = etree.LT
	case mlModeGTE:
		n.Op = etree.GE
	case mlModeGT:
		n.Op = etree.GT
	case mlModeEQ:
		n.Op = etree.EQ
	case mlModeNEQ:
		n.Op = etree.NE
	case mlModeMember:
		n.Op, n.Threshold = etree.In, 0
		n.Set = int32(len(e.t.Sets))
		e.t.Sets = append(e.t.Sets, exportSet(&p.sets[f.set[c]]))
	}
	n.Yes = e.add(f.tru[c])
	n.No = e.add(f.fls[c])
	e.t.Nodes[i] = n
	return i
}

// exportSet converts a BRANCH_MEMBER set with mlSet.has's rules: exact
// equality for small sets, truncation to int32 for big ones.
func exportSet[T mlFloat](s *mlSet[T]) etree.Set {
	var out etree.Set
	switch {
	case s.small:
		for b := range 64 {
			if s.mask>>uint(b)&1 != 0 {
				out.Members = append(out.Members, float64(b))
			}
		}
	case s.big != nil:
		out.Trunc, out.Lo, out.Hi = true, math.MinInt32, math.Nextafter(math.MaxInt32+1, 0)
		for _, v := range s.big {
			out.Members = append(out.Members, float64(v))
		}
	default:
		for _, v := range s.vals {
			out.Members = append(out.Members, float64(v))
		}
	}
	slices.Sort(out.Members)
	out.Members = slices.Compact(out.Members)
	return out
}
