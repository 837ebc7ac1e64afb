package onnx

import (
	"context"
	"fmt"
	"math"

	"github.com/kiln-ml/kiln/tensor"
)

func init() {
	register(mlDomain, "TreeEnsembleClassifier", newMLTreeClassifier)
	register(mlDomain, "TreeEnsembleRegressor", newMLTreeRegressor)
	register(mlDomain, "TreeEnsemble", newMLTreeEnsemble)
}

// mlMaxTargets bounds n_targets, which sizes the outputs and the scratch
// scores.
const mlMaxTargets = 1 << 20

// mlParseV3Forest reads the nodes_* attributes of TreeEnsembleClassifier
// and TreeEnsembleRegressor, and the leaf weights from the attributes
// prefix+"ids", prefix+"nodeids", prefix+"treeids", prefix+"weights"
// ("class_" or "target_").
func mlParseV3Forest(n *Node, prefix string, nTargets int) (*mlRawForest, error) {
	ints := func(name string) []int64 {
		v, _ := n.Ints(name)
		return v
	}
	for _, name := range []string{"nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_truenodeids",
		"nodes_falsenodeids", "nodes_missing_value_tracks_true", prefix + "ids", prefix + "nodeids", prefix + "treeids"} {
		if _, err := n.Ints(name); err != nil {
			return nil, err
		}
	}
	treeIDs := ints("nodes_treeids")
	nodeIDs := ints("nodes_nodeids")
	featIDs := ints("nodes_featureids")
	trueIDs := ints("nodes_truenodeids")
	falseIDs := ints("nodes_falsenodeids")
	missing := ints("nodes_missing_value_tracks_true")
	modes, err := n.Strings("nodes_modes")
	if err != nil {
		return nil, err
	}
	values, _, err := mlFloatsOrTensor(n, "nodes_values")
	if err != nil {
		return nil, err
	}
	if _, _, err := mlFloatsOrTensor(n, "nodes_hitrates"); err != nil {
		return nil, err
	}
	nn := len(treeIDs)
	if nn == 0 {
		return nil, n.Errorf("attribute \"nodes_treeids\" is empty: the ensemble has no nodes")
	}
	for _, a := range []struct {
		name string
		n    int
	}{{"nodes_nodeids", len(nodeIDs)}, {"nodes_featureids", len(featIDs)}, {"nodes_modes", len(modes)},
		{"nodes_truenodeids", len(trueIDs)}, {"nodes_falsenodeids", len(falseIDs)}, {"nodes_values", len(values)}} {
		if err := mlCheckLen(n, a.name, a.n, nn); err != nil {
			return nil, err
		}
	}
	if len(missing) > nn {
		return nil, mlCheckLen(n, "nodes_missing_value_tracks_true", len(missing), nn)
	}
	wTargets := ints(prefix + "ids")
	wNodes := ints(prefix + "nodeids")
	wTrees := ints(prefix + "treeids")
	wValues, _, err := mlFloatsOrTensor(n, prefix+"weights")
	if err != nil {
		return nil, err
	}
	nw := len(wTargets)
	for _, a := range []struct {
		name string
		n    int
	}{{prefix + "nodeids", len(wNodes)}, {prefix + "treeids", len(wTrees)}, {prefix + "weights", len(wValues)}} {
		if err := mlCheckLen(n, a.name, a.n, nw); err != nil {
			return nil, err
		}
	}

	type key struct{ tree, node int64 }
	pos := make(map[key]int32, nn)
	isLeaf := make([]bool, nn)
	index := make([]int32, nn) // interior or leaf number of each position
	var nInt, nLeaves int32
	for i := 0; i < nn; i++ {
		k := key{treeIDs[i], nodeIDs[i]}
		if _, dup := pos[k]; dup {
			return nil, n.Errorf("node %d of tree %d is defined twice", k.node, k.tree)
		}
		pos[k] = int32(i)
		if modes[i] == "LEAF" {
			isLeaf[i] = true
			index[i] = nLeaves
			nLeaves++
		} else {
			if _, ok := mlModeNames[modes[i]]; !ok {
				return nil, n.Errorf("attribute \"nodes_modes\": node %d of tree %d has unknown mode %q", k.node, k.tree, modes[i])
			}
			index[i] = nInt
			nInt++
		}
	}
	raw := &mlRawForest{
		feat:     make([]int32, 0, nInt),
		flags:    make([]uint8, 0, nInt),
		thr:      make([]float64, 0, nInt),
		sets:     make([][]float64, nInt),
		tru:      make([]int32, 0, nInt),
		fls:      make([]int32, 0, nInt),
		nTargets: nTargets,
	}
	intPos := make([]int32, 0, nInt) // position of each interior node
	ref := func(p int32) int32 {
		if isLeaf[p] {
			return ^index[p]
		}
		return index[p]
	}
	for i := 0; i < nn; i++ {
		if isLeaf[i] {
			continue
		}
		child := func(id int64, which string) (int32, error) {
			p, ok := pos[key{treeIDs[i], id}]
			if !ok {
				return 0, n.Errorf("node %d of tree %d: %s node %d does not exist", nodeIDs[i], treeIDs[i], which, id)
			}
			if int(p) == i {
				return 0, n.Errorf("node %d of tree %d: %s node points to itself", nodeIDs[i], treeIDs[i], which)
			}
			return ref(p), nil
		}
		t, err := child(trueIDs[i], "true")
		if err != nil {
			return nil, err
		}
		f, err := child(falseIDs[i], "false")
		if err != nil {
			return nil, err
		}
		if featIDs[i] < 0 || featIDs[i] > math.MaxInt32 {
			return nil, n.Errorf("node %d of tree %d: invalid feature id %d", nodeIDs[i], treeIDs[i], featIDs[i])
		}
		fl := mlModeNames[modes[i]]
		if i < len(missing) && missing[i] == 1 {
			fl |= mlMissingTrue
		}
		raw.feat = append(raw.feat, int32(featIDs[i]))
		raw.flags = append(raw.flags, fl)
		raw.thr = append(raw.thr, values[i])
		raw.tru = append(raw.tru, t)
		raw.fls = append(raw.fls, f)
		intPos = append(intPos, int32(i))
	}
	raw.names = func(i int) string {
		p := intPos[i]
		return fmt.Sprintf("node %d of tree %d", nodeIDs[p], treeIDs[p])
	}
	// A tree's root is its first node, a tree being a run of equal
	// nodes_treeids (as onnxruntime reads it).
	for i := 0; i < nn; i++ {
		if i == 0 || treeIDs[i] != treeIDs[i-1] {
			raw.roots = append(raw.roots, ref(int32(i)))
		}
	}
	// Group the weights by leaf, keeping their order; weights on interior
	// nodes are ignored as onnxruntime does (old onnxmltools wrote some).
	leafOf := make([]int32, nw)
	count := make([]int32, nLeaves+1)
	for j := 0; j < nw; j++ {
		p, ok := pos[key{wTrees[j], wNodes[j]}]
		if !ok {
			return nil, n.Errorf("attribute %q: weight %d is for node %d of tree %d, which does not exist", prefix+"nodeids", j, wNodes[j], wTrees[j])
		}
		if wTargets[j] < 0 || wTargets[j] >= int64(nTargets) {
			return nil, n.Errorf("attribute %q: weight %d is for target or class %d, outside [0, %d)", prefix+"ids", j, wTargets[j], nTargets)
		}
		if !isLeaf[p] {
			leafOf[j] = -1
			continue
		}
		leafOf[j] = index[p]
		count[index[p]+1]++
	}
	for l := int32(0); l < nLeaves; l++ {
		count[l+1] += count[l]
	}
	raw.leafStart = append([]int32(nil), count...)
	raw.wTarget = make([]int32, count[nLeaves])
	raw.wValue = make([]float64, count[nLeaves])
	next := count[:nLeaves]
	for j := 0; j < nw; j++ {
		l := leafOf[j]
		if l < 0 {
			continue
		}
		raw.wTarget[next[l]] = int32(wTargets[j])
		raw.wValue[next[l]] = wValues[j]
		next[l]++
	}
	return raw, nil
}

func mlParseAgg(n *Node) (mlAgg, error) {
	s, err := n.String("aggregate_function", "SUM")
	if err != nil {
		return 0, err
	}
	switch s {
	case "AVERAGE":
		return mlAggAverage, nil
	case "SUM":
		return mlAggSum, nil
	case "MIN":
		return mlAggMin, nil
	case "MAX":
		return mlAggMax, nil
	}
	return 0, n.Errorf("attribute aggregate_function: unknown value %q (want AVERAGE, SUM, MIN or MAX)", s)
}

// mlTreeRegressor is TreeEnsembleRegressor (ai.onnx.ml 1 and 3).
type mlTreeRegressor struct {
	node *Node
	f    *mlForest
	agg  mlAgg
	post mlPost
}

func newMLTreeRegressor(n *Node, _ int64) (Kernel, error) {
	nt, err := n.Int("n_targets", 1)
	if err != nil {
		return nil, err
	}
	if nt < 1 || nt > mlMaxTargets {
		return nil, n.Errorf("attribute \"n_targets\" is %d, want 1 to %d", nt, mlMaxTargets)
	}
	agg, err := mlParseAgg(n)
	if err != nil {
		return nil, err
	}
	post, err := mlParsePost(n)
	if err != nil {
		return nil, err
	}
	base, _, err := mlFloatsOrTensor(n, "base_values")
	if err != nil {
		return nil, err
	}
	if len(base) != 0 && len(base) != int(nt) {
		return nil, n.Errorf("attribute \"base_values\" has %d values, want 0 or n_targets (%d)", len(base), nt)
	}
	raw, err := mlParseV3Forest(n, "target_", int(nt))
	if err != nil {
		return nil, err
	}
	f, err := mlCompile(n, raw, base)
	if err != nil {
		return nil, err
	}
	return &mlTreeRegressor{node: n, f: f, agg: agg, post: post}, nil
}

// Run implements Kernel.
func (k *mlTreeRegressor) Run(ctx context.Context, in []Value) ([]Value, error) {
	out := make([]Value, 1)
	if err := k.RunInto(ctx, in, out); err != nil {
		return nil, err
	}
	return out, nil
}

// RunInto writes the outputs into out (the executor's allocation-free
// form of Run).
func (k *mlTreeRegressor) RunInto(_ context.Context, in, res []Value) error {
	fi, err := mlReadForestInput(k.node, k.f, in)
	if err != nil {
		return err
	}
	out := make([]float32, fi.rows*k.f.nTargets)
	if fi.x64 != nil {
		mlRegressorOut(k.f, &k.f.p64, k.agg, k.post, fi.x64, fi.rows, fi.cols, func(i int, v float32, _ float64) { out[i] = v })
	} else {
		mlRegressorOut(k.f, &k.f.p32, k.agg, k.post, fi.x32, fi.rows, fi.cols, func(i int, v float32, _ float32) { out[i] = v })
	}
	return mlPut(res, mlFloatTensor(out, int64(fi.rows), int64(k.f.nTargets)))
}

// mlTreeClassifier is TreeEnsembleClassifier (ai.onnx.ml 1 and 3), with
// onnxruntime's handling of binary models: when only one class carries
// weights the single score s is written as [1-s, s] (all weights
// non-negative, label threshold 0.5) or [-s, s] / [σ(-s), σ(s)] (mixed
// signs, threshold 0).
type mlTreeClassifier struct {
	node        *Node
	f           *mlForest
	labels      mlLabels
	post        mlPost
	binary      bool // two classes, weights for one class only
	allPositive bool
}

func newMLTreeClassifier(n *Node, _ int64) (Kernel, error) {
	labels, err := mlReadLabels(n, "classlabels_int64s", "classlabels_strings")
	if err != nil {
		return nil, err
	}
	nc := labels.len()
	if nc < 2 {
		return nil, n.Errorf("%d class label(s); a classifier needs at least 2", nc)
	}
	post, err := mlParsePost(n)
	if err != nil {
		return nil, err
	}
	base, _, err := mlFloatsOrTensor(n, "base_values")
	if err != nil {
		return nil, err
	}
	if nc == 2 && len(base) > 2 {
		return nil, n.Errorf("attribute \"base_values\" has %d values, want at most 2 for a binary classifier", len(base))
	}
	if nc > 2 && len(base) != 0 && len(base) != nc {
		return nil, n.Errorf("attribute \"base_values\" has %d values, want 0 or one per class (%d)", len(base), nc)
	}
	raw, err := mlParseV3Forest(n, "class_", nc)
	if err != nil {
		return nil, err
	}
	f, err := mlCompile(n, raw, base)
	if err != nil {
		return nil, err
	}
	k := &mlTreeClassifier{node: n, f: f, labels: labels, post: post, allPositive: true}
	// onnxruntime looks at every class weight, including weights it
	// ignores because they sit on interior nodes.
	ids, _ := n.Ints("class_ids")
	weights, _, _ := mlFloatsOrTensor(n, "class_weights")
	classes := map[int64]bool{}
	for i, c := range ids {
		classes[c] = true
		if weights[i] < 0 {
			k.allPositive = false
		}
	}
	k.binary = nc == 2 && len(classes) == 1
	return k, nil
}

// Run implements Kernel.
func (k *mlTreeClassifier) Run(ctx context.Context, in []Value) ([]Value, error) {
	out := make([]Value, 2)
	if err := k.RunInto(ctx, in, out); err != nil {
		return nil, err
	}
	return out, nil
}

// RunInto writes the outputs into out (the executor's allocation-free
// form of Run).
func (k *mlTreeClassifier) RunInto(_ context.Context, in, res []Value) error {
	fi, err := mlReadForestInput(k.node, k.f, in)
	if err != nil {
		return err
	}
	nc := k.labels.len()
	scores := make([]float32, fi.rows*nc)
	labels := k.labels.newOutput(fi.rows)
	if fi.x64 != nil {
		mlClassify(k, &k.f.p64, fi.x64, fi.rows, fi.cols, scores, labels)
	} else {
		mlClassify(k, &k.f.p32, fi.x32, fi.rows, fi.cols, scores, labels)
	}
	return mlPut(res, labels.tensor(fi.rows), mlFloatTensor(scores, int64(fi.rows), int64(nc)))
}

// mlClassify scores rows rows, following onnxruntime's
// TreeAggregatorClassifier (FinalizeScores) and write_scores: a score
// counts as 0 unless a leaf (or, for three or more classes, a base value)
// set it.
func mlClassify[T mlFloat](k *mlTreeClassifier, p *mlTreeParams[T], x []T, rows, cols int, scores []float32, labels mlLabelOutput) {
	nc := k.labels.len()
	block := min(rows, mlBlock)
	bs := make([]T, block*nc)
	bhas := make([]bool, block*nc)
	for r0 := 0; r0 < rows; r0 += block {
		r1 := min(rows, r0+block)
		mlAccumulate(k.f, p, mlAggSum, x, cols, r0, r1, bs, bhas)
		for i := r0; i < r1; i++ {
			mlClassFinalize(k, p.base, bs[(i-r0)*nc:(i-r0+1)*nc], bhas[(i-r0)*nc:(i-r0+1)*nc], scores[i*nc:(i+1)*nc], labels, i)
		}
	}
}

// mlClassFinalize turns the class scores s (has: set by a leaf) of row i
// into its label and output scores z.
func mlClassFinalize[T mlFloat](k *mlTreeClassifier, base, s []T, has []bool, z []float32, labels mlLabelOutput, i int) {
	nc := len(s)
	if nc > 2 {
		for j, b := range base {
			if !has[j] {
				has[j] = true
				s[j] = b
			} else {
				s[j] += b
			}
		}
		best := -1
		for j := range s {
			if has[j] && (best == -1 || s[j] > s[best]) {
				best = j
			}
		}
		if best < 0 {
			best = 0
		}
		labels.setIndex(k.labels, i, best)
		for j := range s {
			if has[j] {
				z[j] = float32(s[j])
			} else {
				z[j] = 0
			}
		}
		mlTransform(k.post, z)
		return
	}
	// Two classes.
	size := 2
	mode := -1
	switch len(base) {
	case 2:
		if has[1] {
			// onnxruntime uses base_values[1] and the score of class 0.
			s[1] = base[1] + s[0]
			s[0] = -s[1]
			has[1] = true
		} else {
			s[1] += base[1]
			s[0] += base[0]
		}
	case 1:
		s[0] += base[0]
		if !has[1] {
			size = 1
		}
	case 0:
		mode = 3
		if !has[1] {
			size = 1
		}
	}
	var pos T
	switch {
	case size == 2 && has[1]:
		pos = s[1]
	case has[0]:
		pos = s[0]
	}
	if k.binary {
		switch {
		case k.allPositive && pos > 0.5:
			mode = 0
			labels.setIndex(k.labels, i, 1)
		case k.allPositive:
			mode = 1
			labels.setIndex(k.labels, i, 0)
		case pos > 0:
			mode = 2
			labels.setIndex(k.labels, i, 1)
		default:
			mode = 3
			labels.setIndex(k.labels, i, 0)
		}
	} else {
		// Not onnxruntime's binary case: it answers its default labels
		// 1 and 0 (for string labels, the first or second label).
		v := int64(0)
		if pos > 0 {
			v = 1
		}
		if k.labels.strings != nil {
			labels.setIndex(k.labels, i, int(v))
		} else {
			labels.setRaw(i, v)
		}
	}
	e0 := float32(0)
	if has[0] {
		e0 = float32(s[0])
	}
	if size == 2 {
		z[0] = e0
		z[1] = 0
		if has[1] {
			z[1] = float32(s[1])
		}
		mlTransform(k.post, z)
		return
	}
	if k.post == mlPostProbit {
		z[0], z[1] = mlProbit(e0), 0
		return
	}
	z[1] = 0
	mlSecondClass(mode, k.post, e0, z)
}

// mlV5Post maps TreeEnsemble's integer post_transform to a transform.
// The ONNX spec numbers them NONE 0, SOFTMAX 1, LOGISTIC 2, SOFTMAX_ZERO 3,
// PROBIT 4, but onnxruntime (checked against 1.32) casts the number to its
// own enum, where 1 is LOGISTIC and 2 is SOFTMAX; models are tested
// against onnxruntime, so this follows it.
var mlV5Post = map[int64]mlPost{0: mlPostNone, 1: mlPostLogistic, 2: mlPostSoftmax, 3: mlPostSoftmaxZero, 4: mlPostProbit}

// mlTreeEnsemble is TreeEnsemble (ai.onnx.ml 5): output [N, n_targets] of
// the input's type.
type mlTreeEnsemble struct {
	node *Node
	f    *mlForest
	agg  mlAgg
	post mlPost
}

func newMLTreeEnsemble(n *Node, _ int64) (Kernel, error) {
	ints := map[string][]int64{}
	for _, name := range []string{"nodes_featureids", "nodes_truenodeids", "nodes_trueleafs", "nodes_falsenodeids",
		"nodes_falseleafs", "nodes_missing_value_tracks_true", "tree_roots", "leaf_targetids"} {
		v, err := n.Ints(name)
		if err != nil {
			return nil, err
		}
		ints[name] = v
	}
	nt, err := n.Int("n_targets", 0)
	if err != nil {
		return nil, err
	}
	if nt < 1 || nt > mlMaxTargets {
		return nil, n.Errorf("attribute \"n_targets\" is %d, want 1 to %d", nt, mlMaxTargets)
	}
	aggI, err := n.Int("aggregate_function", 1)
	if err != nil {
		return nil, err
	}
	if aggI < 0 || aggI > 3 {
		return nil, n.Errorf("attribute \"aggregate_function\" is %d, want 0 (AVERAGE), 1 (SUM), 2 (MIN) or 3 (MAX)", aggI)
	}
	postI, err := n.Int("post_transform", 0)
	if err != nil {
		return nil, err
	}
	post, ok := mlV5Post[postI]
	if !ok {
		return nil, n.Errorf("attribute \"post_transform\" is %d, want 0 to 4", postI)
	}
	modesT, err := n.TensorAttr("nodes_modes")
	if err != nil {
		return nil, err
	}
	if modesT == nil {
		return nil, n.Errorf("attribute \"nodes_modes\" is required")
	}
	modes, ok := modesT.Data.([]uint8)
	if !ok {
		return nil, n.Errorf("attribute \"nodes_modes\" is a %v tensor, want uint8", modesT.DType)
	}
	splits, err := mlTensorFloats(n, "nodes_splits")
	if err != nil {
		return nil, err
	}
	weights, err := mlTensorFloats(n, "leaf_weights")
	if err != nil {
		return nil, err
	}
	members, err := mlTensorFloats(n, "membership_values")
	if err != nil {
		return nil, err
	}
	feat := ints["nodes_featureids"]
	nn := len(feat)
	if nn == 0 {
		return nil, n.Errorf("attribute \"nodes_featureids\" is empty: the ensemble has no nodes")
	}
	for _, a := range []struct {
		name string
		n    int
	}{{"nodes_modes", len(modes)}, {"nodes_splits", len(splits)}, {"nodes_truenodeids", len(ints["nodes_truenodeids"])},
		{"nodes_trueleafs", len(ints["nodes_trueleafs"])}, {"nodes_falsenodeids", len(ints["nodes_falsenodeids"])},
		{"nodes_falseleafs", len(ints["nodes_falseleafs"])}} {
		if err := mlCheckLen(n, a.name, a.n, nn); err != nil {
			return nil, err
		}
	}
	missing := ints["nodes_missing_value_tracks_true"]
	if len(missing) != 0 {
		if err := mlCheckLen(n, "nodes_missing_value_tracks_true", len(missing), nn); err != nil {
			return nil, err
		}
	}
	targets := ints["leaf_targetids"]
	nl := len(targets)
	if err := mlCheckLen(n, "leaf_weights", len(weights), nl); err != nil {
		return nil, err
	}
	if nl == 0 {
		return nil, n.Errorf("attribute \"leaf_targetids\" is empty: the ensemble has no leaves")
	}
	raw := &mlRawForest{
		feat:     make([]int32, nn),
		flags:    make([]uint8, nn),
		thr:      splits,
		sets:     make([][]float64, nn),
		tru:      make([]int32, nn),
		fls:      make([]int32, nn),
		nTargets: int(nt),
		names:    func(i int) string { return fmt.Sprintf("node %d", i) },
	}
	child := func(i int, ids, leafs string) (int32, error) {
		id, leaf := ints[ids][i], ints[leafs][i] != 0
		limit := nn
		if leaf {
			limit = nl
		}
		if id < 0 || id >= int64(limit) {
			return 0, n.Errorf("attribute %q: node %d refers to %d, outside [0, %d)", ids, i, id, limit)
		}
		if leaf {
			return ^int32(id), nil
		}
		if id == int64(i) {
			return 0, n.Errorf("attribute %q: node %d refers to itself", ids, i)
		}
		return int32(id), nil
	}
	mi := 0
	for i := 0; i < nn; i++ {
		if feat[i] < 0 || feat[i] > math.MaxInt32 {
			return nil, n.Errorf("attribute \"nodes_featureids\": node %d has invalid feature id %d", i, feat[i])
		}
		raw.feat[i] = int32(feat[i])
		if modes[i] > mlModeMember {
			return nil, n.Errorf("attribute \"nodes_modes\": node %d has unknown mode %d", i, modes[i])
		}
		raw.flags[i] = modes[i]
		if len(missing) != 0 && missing[i] == 1 {
			raw.flags[i] |= mlMissingTrue
		}
		if modes[i] == mlModeMember {
			// membership_values lists the sets in node order, each ended
			// by a NaN.
			var set []float64
			for mi < len(members) && !math.IsNaN(members[mi]) {
				set = append(set, members[mi])
				mi++
			}
			mi++
			raw.sets[i] = set
		}
		if raw.tru[i], err = child(i, "nodes_truenodeids", "nodes_trueleafs"); err != nil {
			return nil, err
		}
		if raw.fls[i], err = child(i, "nodes_falsenodeids", "nodes_falseleafs"); err != nil {
			return nil, err
		}
	}
	roots := ints["tree_roots"]
	if len(roots) == 0 {
		return nil, n.Errorf("attribute \"tree_roots\" is empty")
	}
	for _, r := range roots {
		if r < 0 || r >= int64(nn) {
			return nil, n.Errorf("attribute \"tree_roots\": root %d outside [0, %d)", r, nn)
		}
		// A tree that is a single leaf is a node whose two branches are
		// the same leaf.
		if raw.tru[r] == raw.fls[r] && raw.tru[r] < 0 {
			raw.roots = append(raw.roots, raw.tru[r])
		} else {
			raw.roots = append(raw.roots, int32(r))
		}
	}
	raw.leafStart = make([]int32, nl+1)
	raw.wTarget = make([]int32, nl)
	for l := 0; l < nl; l++ {
		raw.leafStart[l+1] = int32(l + 1)
		if targets[l] < 0 || targets[l] >= nt {
			return nil, n.Errorf("attribute \"leaf_targetids\": leaf %d is for target %d, outside [0, %d)", l, targets[l], nt)
		}
		raw.wTarget[l] = int32(targets[l])
	}
	raw.wValue = weights
	f, err := mlCompile(n, raw, nil)
	if err != nil {
		return nil, err
	}
	return &mlTreeEnsemble{node: n, f: f, agg: mlAgg(aggI), post: post}, nil
}

// Run implements Kernel.
func (k *mlTreeEnsemble) Run(ctx context.Context, in []Value) ([]Value, error) {
	out := make([]Value, 1)
	if err := k.RunInto(ctx, in, out); err != nil {
		return nil, err
	}
	return out, nil
}

// RunInto writes the outputs into out (the executor's allocation-free
// form of Run).
func (k *mlTreeEnsemble) RunInto(_ context.Context, in, res []Value) error {
	fi, err := mlReadForestInput(k.node, k.f, in)
	if err != nil {
		return err
	}
	nT := k.f.nTargets
	shape := []int64{int64(fi.rows), int64(nT)}
	switch fi.dtype {
	case tensor.Float64:
		out := make([]float64, fi.rows*nT)
		mlRegressorOut(k.f, &k.f.p64, k.agg, k.post, fi.x64, fi.rows, fi.cols, func(i int, _ float32, v float64) { out[i] = v })
		return mlPut(res, &tensor.Tensor{DType: tensor.Float64, Shape: shape, Data: out})
	case tensor.Float16:
		out := make([]uint16, fi.rows*nT)
		mlRegressorOut(k.f, &k.f.p32, k.agg, k.post, fi.x32, fi.rows, fi.cols, func(i int, v float32, _ float32) { out[i] = tensor.Float32ToHalf(v) })
		return mlPut(res, &tensor.Tensor{DType: tensor.Float16, Shape: shape, Data: out})
	case tensor.Float32:
		out := make([]float32, fi.rows*nT)
		mlRegressorOut(k.f, &k.f.p32, k.agg, k.post, fi.x32, fi.rows, fi.cols, func(i int, v float32, _ float32) { out[i] = v })
		return mlPut(res, mlFloatTensor(out, shape...))
	}
	return k.node.Errorf("input of type %v; TreeEnsemble takes float, double or float16", fi.dtype)
}
