package onnx

import (
	"context"
	"math"
	"testing"
)

// The tree-ensemble factories read node tables from model files: any
// table must compile to a forest or be refused with an error, and a
// compiled forest must answer every input without panicking or looping.

// mlFuzzBytes hands out the fuzzer's bytes as small numbers.
type mlFuzzBytes []byte

func (b *mlFuzzBytes) next() int {
	if len(*b) == 0 {
		return 0
	}
	v := int((*b)[0])
	*b = (*b)[1:]
	return v
}

func (b *mlFuzzBytes) small(n int) int { return b.next() % n }

var mlFuzzRows = []float32{0, 1, -1, 0.5, float32(math.NaN()), 2, 3, -0.5, 7, 40.5, -2, 1e9}

func mlFuzzRun(t *testing.T, k Kernel) {
	for _, x := range []Value{mlT(mlFuzzRows, 3, 4), mlT(mlConvert[float64](mlFuzzRows), 4, 3), mlT([]int64{1, 2, 3, 4}, 1, 4)} {
		_, _ = k.Run(context.Background(), []Value{x})
	}
}

func FuzzMLTreeEnsembleV3(f *testing.F) {
	f.Add([]byte{3, 0, 0, 0, 0, 1, 2, 1, 0, 0, 6, 0, 0, 2, 0, 0, 6, 0, 0, 2, 0, 1, 0, 2, 0, 9})
	f.Add([]byte{2, 0, 0, 1, 1, 0, 1, 0, 0, 1, 6, 0, 0, 1, 1, 0})
	f.Add([]byte{5, 1, 1, 2, 3, 4, 1, 2, 3, 0, 1, 5, 6, 0, 0, 1, 0, 2, 3, 4, 4, 1, 0, 0, 1})
	modes := []string{"BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ", "LEAF", "LEAF", "BOGUS"}
	f.Fuzz(func(t *testing.T, data []byte) {
		b := mlFuzzBytes(data)
		n := 1 + b.small(24)
		a := map[string]any{}
		var tree, node, feat, tru, fls, miss []int
		var mode []string
		var vals []float64
		for i := 0; i < n; i++ {
			tree = append(tree, b.small(3))
			node = append(node, b.small(n+1))
			feat = append(feat, b.small(5))
			mode = append(mode, modes[b.small(len(modes))])
			vals = append(vals, float64(b.next()-128)/16)
			tru = append(tru, b.small(n+1))
			fls = append(fls, b.small(n+1))
			miss = append(miss, b.small(2))
		}
		nw := b.small(2 * n)
		var wt, wn, wi []int
		var ww []float64
		for i := 0; i < nw; i++ {
			wt = append(wt, b.small(3))
			wn = append(wn, b.small(n+1))
			wi = append(wi, b.small(3))
			ww = append(ww, float64(b.next()-128)/8)
		}
		a["nodes_treeids"], a["nodes_nodeids"], a["nodes_featureids"] = tree, node, feat
		a["nodes_modes"], a["nodes_values"], a["nodes_truenodeids"] = mode, vals, tru
		a["nodes_falsenodeids"], a["nodes_missing_value_tracks_true"] = fls, miss
		op := "TreeEnsembleRegressor"
		if b.small(2) == 0 {
			op = "TreeEnsembleClassifier"
			a["class_treeids"], a["class_nodeids"], a["class_ids"], a["class_weights"] = wt, wn, wi, ww
			a["classlabels_int64s"] = []int{0, 1, 2}[:2+b.small(2)]
			a["post_transform"] = []string{"NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO", "PROBIT"}[b.small(5)]
		} else {
			a["target_treeids"], a["target_nodeids"], a["target_ids"], a["target_weights"] = wt, wn, wi, ww
			a["n_targets"] = 1 + b.small(3)
			a["aggregate_function"] = []string{"SUM", "AVERAGE", "MIN", "MAX"}[b.small(4)]
		}
		if b.small(2) == 0 {
			a["base_values"] = []float64{0.5, -1, 2}[:b.small(4)]
		}
		k, err := mlCompileNode(t, op, 3, a)
		if err != nil {
			return
		}
		mlFuzzRun(t, k)
	})
}

func FuzzMLTreeEnsemble5(f *testing.F) {
	f.Add([]byte{2, 1, 6, 0, 1, 0, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 2, 3})
	f.Add([]byte{3, 2, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17})
	f.Fuzz(func(t *testing.T, data []byte) {
		b := mlFuzzBytes(data)
		n := 1 + b.small(12)
		nl := 1 + b.small(12)
		var modes []uint8
		var feat, tid, tleaf, fid, fleaf, miss []int
		var splits, members []float64
		for i := 0; i < n; i++ {
			modes = append(modes, uint8(b.small(8)))
			feat = append(feat, b.small(5))
			splits = append(splits, float64(b.next()-128)/16)
			tid, tleaf = append(tid, b.small(n+1)), append(tleaf, b.small(2))
			fid, fleaf = append(fid, b.small(n+1)), append(fleaf, b.small(2))
			miss = append(miss, b.small(2))
			for j := b.small(5); j > 0; j-- {
				members = append(members, float64(b.next()-64)/float64(1+b.small(2)))
			}
			members = append(members, math.NaN())
		}
		var targets []int
		var weights []float64
		for i := 0; i < nl; i++ {
			targets = append(targets, b.small(3))
			weights = append(weights, float64(b.next()-128)/8)
		}
		var roots []int
		for i := 1 + b.small(3); i > 0; i-- {
			roots = append(roots, b.small(n+1))
		}
		a := map[string]any{
			"n_targets": 1 + b.small(3), "aggregate_function": b.small(4), "post_transform": b.small(5),
			"tree_roots": roots, "nodes_modes": mlT(modes), "nodes_featureids": feat,
			"nodes_splits": mlT(splits), "membership_values": mlT(members),
			"nodes_truenodeids": tid, "nodes_trueleafs": tleaf, "nodes_falsenodeids": fid, "nodes_falseleafs": fleaf,
			"nodes_missing_value_tracks_true": miss, "leaf_targetids": targets, "leaf_weights": mlT(weights),
		}
		k, err := mlCompileNode(t, "TreeEnsemble", 5, a)
		if err != nil {
			return
		}
		mlFuzzRun(t, k)
	})
}
