package lightgbm

import "math"

// kZeroThreshold is LightGBM's zero band: values within it count as zero
// for missing-type Zero splits, and the C API drops them from a dense row
// (so they reach the trees as exactly 0). LightGBM declares it as the float
// literal 1e-35f, so the band is the float32 nearest 1e-35.
const kZeroThreshold = float64(float32(1e-35))

// Node kinds: the decision a node makes, with its missing-value rule folded
// in at load time so that evaluation is one switch.
const (
	numNone  uint8 = iota // numerical, missing type None: NaN counts as 0
	numZeroL              // numerical, missing type Zero, zero (and NaN) go left
	numZeroR              // numerical, missing type Zero, zero (and NaN) go right
	numNaNL               // numerical, missing type NaN, NaN goes left
	numNaNR               // numerical, missing type NaN, NaN goes right
	catSplit              // categorical: categories in the bitset go left
)

// node is one internal node in the ensemble's flat node array. A child >= 0
// is the index of another node; a child < 0 is ^leaf, an index into the
// ensemble's leaf arrays.
type node struct {
	threshold   float64
	left, right int32
	feature     int32
	kind        uint8
}

// catRange locates a categorical node's bitset in Booster.catWords.
type catRange struct {
	start, n int32
}

// linearLeaf is a linear tree's leaf model: const + Σ coeff[i]·x[feat[i]]
// over linFeat/linCoeff[start:end].
type linearLeaf struct {
	constant   float64
	start, end int32
}

type tree struct {
	root   int32 // a node index, or ^leaf for a single-leaf tree
	linear bool
	// For linear trees: leaf l's model is linLeaf[linBase+l-leafBase].
	leafBase, linBase int32
}

// Booster is a parsed LightGBM model, compiled into flat arrays for
// evaluation. It is immutable after Parse and safe for concurrent use.
type Booster struct {
	numFeatures  int
	numClass     int
	treesPerIter int // K: raw scores per row
	numIter      int
	featureNames []string
	objective    objective
	averageOut   bool

	trees    []tree
	nodes    []node
	cats     []catRange // parallel to nodes; only categorical nodes use it
	catWords []uint32
	leaves   []float64 // leaf values
	linLeaf  []linearLeaf
	linFeat  []int32
	linCoeff []float64
	hasCat   bool
	counts   counts // training sample counts per node and leaf, for explanations (forest.go)
}

// NumFeatures is the number of input features (max_feature_idx + 1).
func (b *Booster) NumFeatures() int { return b.numFeatures }

// NumOutputs is the number of scores per row: 1, or the number of classes
// for multiclass models.
func (b *Booster) NumOutputs() int { return b.treesPerIter }

// NumClass is the model's num_class header.
func (b *Booster) NumClass() int { return b.numClass }

// NumTrees is the number of trees in the model.
func (b *Booster) NumTrees() int { return len(b.trees) }

// FeatureNames returns the model's feature names.
func (b *Booster) FeatureNames() []string { return append([]string(nil), b.featureNames...) }

// Objective is the model's objective name in LightGBM's spelling
// ("binary", "multiclass", "regression", ...), or "" when the model has none.
func (b *Booster) Objective() string { return b.objective.name }

// PredictRaw adds the trees' raw scores for one row x (len NumFeatures, as
// float64 after LightGBM's input rules: see Predict) into out (len
// NumOutputs), which it first zeroes. Averaging of random-forest models is
// applied; the objective's transform is not.
func (b *Booster) PredictRaw(x, out []float64) {
	k := b.treesPerIter
	out = out[:k]
	for i := range out {
		out[i] = 0
	}
	c := 0
	for i := range b.trees {
		out[c] += b.treeValue(&b.trees[i], x)
		c++
		if c == k {
			c = 0
		}
	}
	if b.averageOut && b.numIter > 0 {
		n := float64(b.numIter)
		for i := range out {
			out[i] /= n
		}
	}
}

// Predict computes the transformed prediction of one row into out (len
// NumOutputs): probabilities for binary and multiclass objectives, the mean
// for exp-link regressions, raw scores for ranking. x must hold
// NumFeatures values; it is read only, but values LightGBM's C API would
// drop as zeros (|v| <= 1e-35) must already be zero (the runtime Model
// does that).
func (b *Booster) Predict(x, out []float64) {
	b.PredictRaw(x, out)
	b.objective.transform(out[:b.treesPerIter])
}

func (b *Booster) treeValue(t *tree, x []float64) float64 {
	n := t.root
	if b.hasCat {
		for n >= 0 {
			nd := &b.nodes[n]
			if b.goLeft(nd, n, x[nd.feature]) {
				n = nd.left
			} else {
				n = nd.right
			}
		}
	} else {
		for n >= 0 {
			nd := &b.nodes[n]
			if numericalLeft(nd, x[nd.feature]) {
				n = nd.left
			} else {
				n = nd.right
			}
		}
	}
	leaf := ^n
	if !t.linear {
		return b.leaves[leaf]
	}
	ll := &b.linLeaf[t.linBase+leaf-t.leafBase]
	out := ll.constant
	feat := b.linFeat[ll.start:ll.end]
	coeff := b.linCoeff[ll.start:ll.end]
	for i, f := range feat {
		v := x[f]
		if v != v { // a NaN among the leaf's features: the plain leaf value
			return b.leaves[leaf]
		}
		out += coeff[i] * v
	}
	return out
}

func (b *Booster) goLeft(nd *node, idx int32, v float64) bool {
	if nd.kind != catSplit {
		return numericalLeft(nd, v)
	}
	// NaN and negative categories go right. Beyond the bitset, too.
	if !(v > -1) {
		return false
	}
	r := b.cats[idx]
	if v >= float64(r.n)*32 {
		return false
	}
	c := int32(v) // truncates toward zero like LightGBM's static_cast<int>
	return b.catWords[r.start+c>>5]>>(uint32(c)&31)&1 == 1
}

func numericalLeft(nd *node, v float64) bool {
	// Fast path: a number at a split whose missing rule only concerns NaN.
	if v == v && nd.kind != numZeroL && nd.kind != numZeroR {
		return v <= nd.threshold
	}
	switch nd.kind {
	case numNaNL:
		return true // v is NaN
	case numNaNR:
		return false
	case numZeroL, numZeroR:
		if v != v || (v >= -kZeroThreshold && v <= kZeroThreshold) {
			return nd.kind == numZeroL
		}
	default: // numNone: NaN counts as 0
		if v != v {
			v = 0
		}
	}
	return v <= nd.threshold
}

// clampZero applies the C API's dense-row rule: values within the zero band
// become exactly 0 (NaN stays NaN).
func clampZero(v float64) float64 {
	if math.Abs(v) <= kZeroThreshold {
		return 0
	}
	return v
}
