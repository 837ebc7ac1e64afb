package xgboost

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
)

// encodeUBJ writes v as UBJSON the way XGBoost does: objects with 'L'
// length-prefixed keys, typed arrays for numeric slices, counted arrays
// otherwise. It is test-only, for synthetic models.
func encodeUBJ(v any) []byte {
	var b []byte
	be64 := func(n int64) { b = binary.BigEndian.AppendUint64(b, uint64(n)) }
	str := func(s string) { b = append(b, 'L'); be64(int64(len(s))); b = append(b, s...) }
	var enc func(v any)
	typed := func(t byte, n int, each func(i int)) {
		b = append(b, '[', '$', t, '#', 'L')
		be64(int64(n))
		for i := range n {
			each(i)
		}
	}
	enc = func(v any) {
		switch x := v.(type) {
		case nil:
			b = append(b, 'Z')
		case bool:
			if x {
				b = append(b, 'T')
			} else {
				b = append(b, 'F')
			}
		case string:
			b = append(b, 'S')
			str(x)
		case int:
			b = append(b, 'L')
			be64(int64(x))
		case float32:
			b = append(b, 'd')
			b = binary.BigEndian.AppendUint32(b, math.Float32bits(x))
		case float64:
			b = append(b, 'D')
			b = binary.BigEndian.AppendUint64(b, math.Float64bits(x))
		case []float32:
			typed('d', len(x), func(i int) { b = binary.BigEndian.AppendUint32(b, math.Float32bits(x[i])) })
		case []int32:
			typed('l', len(x), func(i int) { b = binary.BigEndian.AppendUint32(b, uint32(x[i])) })
		case []int64:
			typed('L', len(x), func(i int) { b = binary.BigEndian.AppendUint64(b, uint64(x[i])) })
		case u8s:
			typed('U', len(x), func(i int) { b = append(b, x[i]) })
		case []any:
			b = append(b, '[', '#', 'L')
			be64(int64(len(x)))
			for _, e := range x {
				enc(e)
			}
		case map[string]any:
			b = append(b, '{')
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				str(k)
				enc(x[k])
			}
			b = append(b, '}')
		default:
			panic(fmt.Sprintf("encodeUBJ: %T", v))
		}
	}
	enc(v)
	return b
}

// u8s is a uint8 array: a typed 'U' array in UBJSON, numbers in JSON
// (encoding/json would write a []uint8 as base64).
type u8s []uint8

func (u u8s) MarshalJSON() ([]byte, error) {
	n := make([]int, len(u))
	for i, v := range u {
		n[i] = int(v)
	}
	return json.Marshal(n)
}

// synthModel builds an XGBoost 3.x model document (binary:logistic, gbtree)
// of complete trees of the given depth over features features, with
// random splits, default directions and leaf values.
func synthModel(trees, depth, features int, seed uint64) map[string]any {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var list []any
	info := make([]any, trees)
	indptr := make([]any, trees+1)
	for t := range trees {
		n := 1<<(depth+1) - 1
		left, right, parents := make([]int32, n), make([]int32, n), make([]int32, n)
		idx := make([]int32, n)
		cond, weights, loss, hess := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)
		dl, st := make(u8s, n), make(u8s, n)
		for i := range n {
			parents[i] = int32((i - 1) / 2)
			if i == 0 {
				parents[i] = math.MaxInt32
			}
			if 2*i+1 < n {
				left[i], right[i] = int32(2*i+1), int32(2*i+2)
				idx[i] = int32(rng.IntN(features))
				cond[i] = float32(rng.NormFloat64())
				dl[i] = uint8(rng.IntN(2))
			} else {
				left[i], right[i] = -1, -1
				cond[i] = float32(rng.NormFloat64() * 0.1)
			}
			weights[i], hess[i] = cond[i], 1
		}
		list = append(list, map[string]any{
			"id": t, "base_weights": weights, "categories": []int32{}, "categories_nodes": []int32{},
			"categories_segments": []int64{}, "categories_sizes": []int64{}, "default_left": dl,
			"left_children": left, "right_children": right, "parents": parents, "loss_changes": loss,
			"split_conditions": cond, "split_indices": idx, "split_type": st, "sum_hessian": hess,
			"tree_param": map[string]any{"num_deleted": "0", "num_feature": fmt.Sprint(features),
				"num_nodes": fmt.Sprint(n), "size_leaf_vector": "1"},
		})
		info[t] = 0
		indptr[t+1] = t + 1
	}
	indptr[0] = 0
	return map[string]any{
		"version": []any{3, 2, 0},
		"learner": map[string]any{
			"attributes":    map[string]any{},
			"feature_names": []any{}, "feature_types": []any{},
			"gradient_booster": map[string]any{"name": "gbtree", "model": map[string]any{
				"gbtree_model_param": map[string]any{"num_parallel_tree": "1", "num_trees": fmt.Sprint(trees)},
				"iteration_indptr":   indptr, "tree_info": info, "trees": list,
				"cats": map[string]any{"enc": []any{}, "feature_segments": []int64{}, "sorted_idx": []int64{}},
			}},
			"learner_model_param": map[string]any{"base_score": "[5E-1]", "boost_from_average": "1",
				"num_class": "0", "num_feature": fmt.Sprint(features), "num_target": "1"},
			"objective": map[string]any{"name": "binary:logistic", "reg_loss_param": map[string]any{"scale_pos_weight": "1"}},
		},
	}
}

func synthJSON(trees, depth, features int, seed uint64) []byte {
	b, err := json.Marshal(synthModel(trees, depth, features, seed))
	if err != nil {
		panic(err)
	}
	return b
}

// naiveMargin walks a synthetic model's document directly, the slow and
// obvious way, for cross-checking the flattened trees.
func naiveMargin(doc map[string]any, row []float32) float32 {
	lm := doc["learner"].(map[string]any)
	trees := lm["gradient_booster"].(map[string]any)["model"].(map[string]any)["trees"].([]any)
	sum := float32(0) // logit(0.5)
	for _, tv := range trees {
		t := tv.(map[string]any)
		left, right := t["left_children"].([]int32), t["right_children"].([]int32)
		idx, cond, dl := t["split_indices"].([]int32), t["split_conditions"].([]float32), t["default_left"].(u8s)
		i := int32(0)
		for left[i] != -1 {
			x := row[idx[i]]
			switch {
			case math.IsNaN(float64(x)) && dl[i] == 1:
				i = left[i]
			case math.IsNaN(float64(x)):
				i = right[i]
			case x < cond[i]:
				i = left[i]
			default:
				i = right[i]
			}
		}
		sum += cond[i]
	}
	return sum
}
