package lightgbm

import (
	"fmt"
	"math"
	"strconv"

	etree "github.com/kiln-ml/kiln/explain/tree"
	"github.com/kiln-ml/kiln/runtime"
)

// counts are the training sample counts of a Booster's nodes and leaves
// (internal_count, leaf_count), parallel to Booster.nodes and
// Booster.leaves: the covers of path-dependent TreeSHAP, as LightGBM's own
// pred_contrib uses them. A tree without them gets NaN.
type counts struct {
	nodes, leaves []float64
}

// addCounts keeps the counts of the tree being added (numLeaves leaves,
// numLeaves-1 internal nodes).
func (b *Booster) addCounts(t *treeParser, numLeaves int) {
	add := func(dst []float64, f, n int) []float64 {
		var vals []int64
		if t.has(f) && n > 0 {
			vals, _ = t.intsOf(f, n, 0, math.MaxInt64)
		}
		for i := range n {
			c := math.NaN()
			if i < len(vals) {
				c = float64(vals[i])
			}
			dst = append(dst, c)
		}
		return dst
	}
	b.counts.leaves = add(b.counts.leaves, fLeafCount, numLeaves)
	b.counts.nodes = add(b.counts.nodes, fInternalCount, numLeaves-1)
}

var _ etree.Forester = (*model)(nil)

// Forest exports the model's trees for explanations (see package
// explain/tree): LightGBM's rule x <= threshold with each split's missing
// type (None: NaN reads as 0; Zero: 0 and NaN take the default child;
// NaN: NaN does), categorical splits (the categories in the bitset go
// left), the C API's zero band, the training sample counts as covers, and
// 1/iterations as the tree weight of an averaging (random forest) model.
// Linear trees are not exported: their leaves are not constants.
func (m *model) Forest() (*etree.Forest, error) { return m.b.Forest() }

// Forest exports the booster's trees; see the model's Forest.
func (b *Booster) Forest() (*etree.Forest, error) {
	out := &etree.Forest{
		NumFeatures:  b.numFeatures,
		NumOutputs:   b.treesPerIter,
		ZeroBand:     kZeroThreshold,
		FeatureNames: b.FeatureNames(),
		Link:         linkName(b.objective.link),
		Source:       "lightgbm",
		Trees:        make([]etree.Tree, 0, len(b.trees)),
	}
	if b.treesPerIter > 1 {
		out.OutputNames = make([]string, b.treesPerIter)
		for i := range out.OutputNames {
			out.OutputNames[i] = strconv.Itoa(i)
		}
	}
	weight := 1.0
	if b.averageOut && b.numIter > 0 {
		weight = 1 / float64(b.numIter)
	}
	covered := len(b.counts.nodes) == len(b.nodes) && len(b.counts.leaves) == len(b.leaves)
	for i := range b.trees {
		bt := &b.trees[i]
		if bt.linear {
			return nil, fmt.Errorf("lightgbm: %w: tree %d is a linear tree (linear_tree=true); its leaves are not constants", runtime.ErrUnsupported, i)
		}
		tr := etree.Tree{Outputs: []int32{int32(i % b.treesPerIter)}, Weight: weight}
		b.exportNode(&tr, bt.root, covered)
		if len(tr.Nodes) == 1 && !(tr.Nodes[0].Cover > 0) {
			tr.Nodes[0].Cover = 1 // a constant tree: its cover does not matter
		}
		out.Trees = append(out.Trees, tr)
	}
	return out, nil
}

// exportNode appends the subtree at c (a node index, or ^leaf) to tr and
// returns its index there.
func (b *Booster) exportNode(tr *etree.Tree, c int32, covered bool) int32 {
	i := int32(len(tr.Nodes))
	tr.Nodes = append(tr.Nodes, etree.Node{})
	if c < 0 {
		leaf := ^c
		n := etree.Node{Feature: -1, Leaf: int32(len(tr.Values))}
		if covered {
			n.Cover = b.counts.leaves[leaf]
		}
		tr.Values = append(tr.Values, b.leaves[leaf])
		tr.Nodes[i] = n
		return i
	}
	nd := &b.nodes[c]
	n := etree.Node{Feature: nd.feature, Op: etree.LE, Threshold: nd.threshold}
	if covered {
		n.Cover = b.counts.nodes[c]
	}
	switch nd.kind {
	case numNone:
		n.Missing = etree.MissingAsZero
	case numZeroL:
		n.Missing, n.ZeroIsMissing = etree.MissingYes, true
	case numZeroR:
		n.Missing, n.ZeroIsMissing = etree.MissingNo, true
	case numNaNL:
		n.Missing = etree.MissingYes
	case numNaNR:
		n.Missing = etree.MissingNo
	case catSplit:
		// goLeft: NaN and values <= -1 go right; others are truncated and
		// looked up in the bitset.
		n.Op, n.Threshold, n.Missing = etree.In, 0, etree.MissingNo
		n.Set = int32(len(tr.Sets))
		r := b.cats[c]
		s := etree.Set{Trunc: true, Lo: math.Nextafter(-1, 0), Hi: math.Inf(1)}
		for w, word := range b.catWords[r.start : r.start+r.n] {
			for bit := range 32 {
				if word&(1<<bit) != 0 {
					s.Members = append(s.Members, float64(w*32+bit))
				}
			}
		}
		tr.Sets = append(tr.Sets, s)
	}
	n.Yes = b.exportNode(tr, nd.left, covered)
	n.No = b.exportNode(tr, nd.right, covered)
	tr.Nodes[i] = n
	return i
}

func linkName(link uint8) string {
	switch link {
	case linkSigmoid, linkOVASigmoid, linkLogistic:
		return "logistic"
	case linkSoftmax:
		return "softmax"
	case linkExp:
		return "exp"
	case linkSignSquare:
		return "sign_square"
	case linkSoftplus:
		return "softplus"
	}
	return "identity"
}
