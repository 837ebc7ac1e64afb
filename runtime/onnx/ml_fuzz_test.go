package onnx

import (
	"context"
	"math"
	"slices"
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

// mostly returns good, and now and then (a byte of 255) another raw byte
// instead, so that most generated tables are valid forests and the
// rest probe the validation.
func (b *mlFuzzBytes) mostly(good int) int {
	if b.next() == 255 {
		return b.next() - 8
	}
	return good
}

func FuzzMLTreeEnsembleV3(f *testing.F) {
	f.Add([]byte{3, 0, 0, 0, 0, 1, 2, 1, 0, 0, 6, 0, 0, 2, 0, 0, 6, 0, 0, 2, 0, 1, 0, 2, 0, 9})
	f.Add([]byte{12, 1, 1, 0, 1, 0, 1, 0, 0, 1, 6, 0, 0, 1, 1, 0, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7})
	f.Add([]byte{20, 1, 1, 2, 3, 4, 1, 2, 3, 0, 1, 5, 6, 0, 0, 1, 0, 2, 3, 4, 4, 1, 0, 0, 1, 200, 13, 8, 9})
	modes := []string{"BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT", "BRANCH_EQ", "BRANCH_NEQ", "LEAF", "LEAF", "LEAF"}
	f.Fuzz(func(t *testing.T, data []byte) {
		b := mlFuzzBytes(data)
		n := 1 + b.small(32)
		split := b.small(n + 1) // nodes [0, split) are tree 0, the rest tree 1
		a := map[string]any{}
		var tree, node, feat, tru, fls, miss []int
		var mode []string
		var vals []float64
		var leaves [][2]int
		for i := 0; i < n; i++ {
			first, end := 0, split
			if i >= split {
				first, end = split, n
			}
			tree = append(tree, b.mostly(min(i/max(split, 1), 1)))
			node = append(node, b.mostly(i-first))
			feat = append(feat, b.mostly(b.small(4)))
			m := modes[b.small(len(modes))]
			if i == end-1 {
				m = "LEAF"
			}
			if b.next() == 255 {
				m = "BOGUS"
			}
			mode = append(mode, m)
			vals = append(vals, float64(b.next()-128)/16)
			rest := max(end-i-1, 1)
			tru = append(tru, b.mostly(i+1-first+b.small(rest)))
			fls = append(fls, b.mostly(i+1-first+b.small(rest)))
			miss = append(miss, b.small(2))
			if m == "LEAF" {
				leaves = append(leaves, [2]int{tree[i], node[i]})
			}
		}
		nt := 1 + b.small(3)
		var wt, wn, wi []int
		var ww []float64
		for _, l := range leaves {
			for j := 1 + b.small(2); j > 0; j-- {
				wt, wn = append(wt, b.mostly(l[0])), append(wn, b.mostly(l[1]))
				wi = append(wi, b.mostly(b.small(nt)))
				ww = append(ww, float64(b.next()-128)/8)
			}
		}
		a["nodes_treeids"], a["nodes_nodeids"], a["nodes_featureids"] = tree, node, feat
		a["nodes_modes"], a["nodes_values"], a["nodes_truenodeids"] = mode, vals, tru
		a["nodes_falsenodeids"], a["nodes_missing_value_tracks_true"] = fls, miss
		op := "TreeEnsembleRegressor"
		if b.small(2) == 0 {
			op = "TreeEnsembleClassifier"
			a["class_treeids"], a["class_nodeids"], a["class_ids"], a["class_weights"] = wt, wn, wi, ww
			a["classlabels_int64s"] = []int{0, 1, 2, 3}[:max(nt, 2)]
			a["post_transform"] = []string{"NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO", "PROBIT"}[b.small(5)]
		} else {
			a["target_treeids"], a["target_nodeids"], a["target_ids"], a["target_weights"] = wt, wn, wi, ww
			a["n_targets"] = nt
			a["aggregate_function"] = []string{"SUM", "AVERAGE", "MIN", "MAX"}[b.small(4)]
		}
		if b.small(2) == 0 {
			a["base_values"] = []float64{0.5, -1, 2, 3}[:b.small(5)]
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
	f.Add([]byte{9, 5, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 30, 31, 32, 33, 6, 6, 6})
	f.Fuzz(func(t *testing.T, data []byte) {
		b := mlFuzzBytes(data)
		n := 1 + b.small(16)
		nl := 1 + b.small(16)
		var modes []uint8
		var feat, tid, tleaf, fid, fleaf, miss []int
		var splits, members []float64
		for i := 0; i < n; i++ {
			modes = append(modes, uint8(b.mostly(b.small(7))))
			feat = append(feat, b.mostly(b.small(4)))
			splits = append(splits, float64(b.next()-128)/16)
			for _, c := range []struct{ ids, leafs *[]int }{{&tid, &tleaf}, {&fid, &fleaf}} {
				leaf := i == n-1 || b.small(3) == 0
				if leaf {
					*c.ids, *c.leafs = append(*c.ids, b.mostly(b.small(nl))), append(*c.leafs, 1)
				} else {
					*c.ids, *c.leafs = append(*c.ids, b.mostly(i+1+b.small(max(n-i-1, 1)))), append(*c.leafs, 0)
				}
			}
			miss = append(miss, b.small(2))
			for j := b.small(5); j > 0; j-- {
				members = append(members, float64(b.next()-64)/float64(1+b.small(2)))
			}
			members = append(members, math.NaN())
		}
		nt := 1 + b.small(3)
		var targets []int
		var weights []float64
		for i := 0; i < nl; i++ {
			targets = append(targets, b.mostly(b.small(nt)))
			weights = append(weights, float64(b.next()-128)/8)
		}
		roots := []int{0}
		for i := b.small(3); i > 0; i-- {
			roots = append(roots, b.mostly(b.small(n)))
		}
		a := map[string]any{
			"n_targets": nt, "aggregate_function": b.small(4), "post_transform": b.small(5),
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

// mlFuzzSchemas lists, per operator, the attributes the generic fuzzer
// sets: "f" float, "i" int, "s" string (from a small vocabulary), "F"
// floats, "I" ints, "S" strings, "T" a float tensor.
var mlFuzzSchemas = map[string]map[string]string{
	"LinearClassifier": {"coefficients": "F", "intercepts": "F", "classlabels_ints": "I", "classlabels_strings": "S", "post_transform": "s", "multi_class": "i"},
	"LinearRegressor":  {"coefficients": "F", "intercepts": "F", "targets": "i", "post_transform": "s"},
	"SVMClassifier": {"coefficients": "F", "rho": "F", "prob_a": "F", "prob_b": "F", "support_vectors": "F", "vectors_per_class": "I",
		"classlabels_ints": "I", "classlabels_strings": "S", "kernel_type": "s", "kernel_params": "F", "post_transform": "s"},
	"SVMRegressor":          {"coefficients": "F", "rho": "F", "support_vectors": "F", "n_supports": "i", "one_class": "i", "kernel_type": "s", "kernel_params": "F"},
	"Scaler":                {"offset": "F", "scale": "F"},
	"Normalizer":            {"norm": "s"},
	"Binarizer":             {"threshold": "f"},
	"Imputer":               {"imputed_value_floats": "F", "imputed_value_int64s": "I", "replaced_value_float": "f", "replaced_value_int64": "i"},
	"OneHotEncoder":         {"cats_int64s": "I", "cats_strings": "S", "zeros": "i"},
	"ArrayFeatureExtractor": {},
	"FeatureVectorizer":     {"inputdimensions": "I"},
	"LabelEncoder": {"keys_strings": "S", "keys_int64s": "I", "keys_floats": "F", "values_strings": "S", "values_int64s": "I",
		"values_floats": "F", "keys_tensor": "T", "values_tensor": "T", "default_tensor": "T", "default_string": "s", "default_int64": "i",
		"default_float": "f", "classes_strings": "S"},
	"CategoryMapper": {"cats_int64s": "I", "cats_strings": "S", "default_string": "s", "default_int64": "i"},
	"ZipMap":         {"classlabels_int64s": "I", "classlabels_strings": "S"},
	"DictVectorizer": {"int64_vocabulary": "I", "string_vocabulary": "S"},
	"CastMap":        {"cast_to": "s", "map_form": "s", "max_map": "i"},
}

var mlFuzzWords = []string{"NONE", "LOGISTIC", "SOFTMAX", "SOFTMAX_ZERO", "PROBIT", "LINEAR", "POLY", "RBF", "SIGMOID",
	"MAX", "L1", "L2", "TO_FLOAT", "TO_STRING", "TO_INT64", "DENSE", "SPARSE", "a", "b", ""}

// FuzzMLOperators compiles every other ai.onnx.ml operator from random
// attributes and runs what compiles on random inputs: errors are fine,
// panics are not.
func FuzzMLOperators(f *testing.F) {
	f.Add([]byte{0, 3, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{2, 7, 3, 2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20})
	f.Add([]byte{9, 1, 4, 1, 2, 3, 4, 8, 9, 10})
	var ops []string
	for op := range mlFuzzSchemas {
		ops = append(ops, op)
	}
	slices.Sort(ops)
	f.Fuzz(func(t *testing.T, data []byte) {
		b := mlFuzzBytes(data)
		op := ops[b.small(len(ops))]
		schema := mlFuzzSchemas[op]
		names := make([]string, 0, len(schema))
		for name := range schema {
			names = append(names, name)
		}
		slices.Sort(names)
		attrs := map[string]any{}
		for _, name := range names {
			if b.small(3) == 0 {
				continue
			}
			n := b.small(7)
			switch schema[name] {
			case "f":
				attrs[name] = float32(b.next()-128) / 16
			case "i":
				attrs[name] = b.small(8) - 1
			case "s":
				attrs[name] = mlFuzzWords[b.small(len(mlFuzzWords))]
			case "F":
				v := make([]float32, n)
				for i := range v {
					v[i] = float32(b.next()-128) / 16
				}
				attrs[name] = v
			case "I":
				v := make([]int64, n)
				for i := range v {
					v[i] = int64(b.small(6) - 1)
				}
				attrs[name] = v
			case "S":
				v := make([]string, n)
				for i := range v {
					v[i] = mlFuzzWords[15+b.small(5)]
				}
				attrs[name] = v
			case "T":
				v := make([]float64, n)
				for i := range v {
					v[i] = float64(b.small(5))
				}
				if b.small(2) == 0 {
					attrs[name] = mlT(v)
				} else {
					attrs[name] = mlT(mlConvert[int64](v))
				}
			}
		}
		k, err := mlCompileNode(t, op, int64(1+b.small(5)), attrs)
		if err != nil {
			return
		}
		rows, cols := 1+b.small(3), b.small(5)
		fl := make([]float32, rows*cols)
		for i := range fl {
			fl[i] = float32(b.small(5)) - 1
		}
		if b.small(4) == 0 && len(fl) > 0 {
			fl[0] = float32(math.NaN())
		}
		strs := make([]string, rows*cols)
		for i := range strs {
			strs[i] = mlFuzzWords[15+b.small(5)]
		}
		ints := make([]int64, rows*cols)
		for i := range ints {
			ints[i] = int64(b.small(6) - 1)
		}
		inputs := []Value{mlT(fl, int64(rows), int64(cols)), mlT(strs, int64(rows), int64(cols)),
			mlT(ints, int64(rows), int64(cols)), mlT(mlConvert[float64](fl), int64(len(fl))),
			&Map{Int64Keys: ints, Values: mlT(fl)}, &Map{StringKeys: strs, Values: mlT(mlConvert[float64](fl))}, nil}
		for _, x := range inputs {
			in := []Value{x}
			if op == "ArrayFeatureExtractor" || op == "FeatureVectorizer" {
				in = append(in, mlT(ints[:min(len(ints), 2)]))
			}
			_, _ = k.Run(context.Background(), in)
		}
	})
}
