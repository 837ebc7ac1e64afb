package xgboost

import (
	"fmt"
	"math"
	"strconv"

	"github.com/kiln-ml/kiln/explain/tree"
	"github.com/kiln-ml/kiln/runtime"
)

var _ tree.Forester = (*Model)(nil)

// addCovers keeps a tree's node covers (sum_hessian, the training hessian
// sum that reached each node), in the flattened node order, for
// explanations. A tree without them gets NaN covers, which make the
// forest coverless.
func (f *forest) addCovers(t *value, order []int32) {
	var h []float32
	if v, ok := t.get("sum_hessian"); ok {
		h, _ = v.float32s("")
	}
	for _, i := range order {
		c := float32(math.NaN())
		if int(i) < len(h) {
			c = h[i]
		}
		f.covers = append(f.covers, c)
	}
}

// Forest exports the model's trees for explanations (see package
// explain/tree): the trees Predict uses, with XGBoost's rule x < threshold
// (in single precision), each split's default direction for missing
// values, categorical splits, the covers (sum_hessian) and the base margin
// per output group. A gblinear model has no trees.
func (m *Model) Forest() (*tree.Forest, error) {
	l := m.l
	f := l.forest
	if f == nil {
		return nil, fmt.Errorf("xgboost: %w: the %s booster has no trees to explain", runtime.ErrUnsupported, l.booster)
	}
	out := &tree.Forest{
		NumFeatures:  l.numFeature,
		NumOutputs:   l.numGroup,
		Base:         make([]float64, l.numGroup),
		Float32:      true,
		FeatureNames: m.FeatureNames(),
		Link:         linkName(l.obj.transform),
		Source:       "xgboost",
		Trees:        make([]tree.Tree, 0, m.ntrees),
	}
	for i, b := range l.base {
		out.Base[i] = float64(b)
	}
	if l.numGroup > 1 {
		out.OutputNames = make([]string, l.numGroup)
		for i := range out.OutputNames {
			out.OutputNames[i] = strconv.Itoa(i)
		}
	}
	covered := len(f.covers) == len(f.nodes)
	for t := range m.ntrees {
		start := int(f.roots[t])
		end := len(f.nodes)
		if t+1 < len(f.roots) {
			end = int(f.roots[t+1])
		}
		tr := tree.Tree{Outputs: []int32{f.groups[t]}, Weight: 1, Nodes: make([]tree.Node, end-start)}
		if f.weights != nil {
			tr.Weight = float64(f.weights[t])
		}
		for j := range tr.Nodes {
			nd := &f.nodes[start+j]
			n := &tr.Nodes[j]
			if covered {
				n.Cover = float64(f.covers[start+j])
			}
			if nd.right < 0 {
				n.Feature = -1
				n.Leaf = int32(len(tr.Values))
				tr.Values = append(tr.Values, float64(nd.value))
				continue
			}
			left, right := int32(j+1), nd.right-int32(start)
			defaultLeft := nd.feature&flagDefaultLeft != 0
			n.Feature = int32(nd.feature & featureMask)
			if nd.feature&flagCategorical == 0 {
				// x < threshold goes left.
				n.Op, n.Threshold, n.Yes, n.No = tree.LT, float64(nd.value), left, right
				n.Missing = tree.MissingNo
				if defaultLeft {
					n.Missing = tree.MissingYes
				}
				continue
			}
			// The listed categories go right.
			n.Op, n.Yes, n.No = tree.In, right, left
			n.Set = int32(len(tr.Sets))
			tr.Sets = append(tr.Sets, f.cats[nd.cat].export())
			n.Missing = tree.MissingYes
			if defaultLeft {
				n.Missing = tree.MissingNo
			}
		}
		out.Trees = append(out.Trees, tr)
	}
	return out, nil
}

// export converts a category set to the tree package's, with catSet.right's
// rule: x in [0, maxCategory] truncated to its category.
func (c *catSet) export() tree.Set {
	s := tree.Set{Trunc: true, Lo: 0, Hi: maxCategory}
	if c.bits != nil {
		for w, word := range c.bits {
			for b := range 64 {
				if word&(1<<b) != 0 {
					s.Members = append(s.Members, float64(w*64+b))
				}
			}
		}
		return s
	}
	for _, v := range c.sorted {
		s.Members = append(s.Members, float64(v))
	}
	return s
}

func linkName(t transform) string {
	switch t {
	case sigmoid:
		return "logistic"
	case exponent:
		return "exp"
	case hinge:
		return "hinge"
	case softprob:
		return "softmax"
	case softmaxIndex:
		return "argmax"
	case sortedQuantiles:
		return "sorted"
	}
	return "identity"
}
