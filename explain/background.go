package explain

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/kiln-ml/kiln/tensor"
)

// Background summaries: the methods that need background data cost time
// linear in its rows, so larger backgrounds are summarised. Trees take a
// seeded sample of rows (interventional TreeSHAP is exact against the
// rows it is given; a sample keeps them real rows); Kernel SHAP takes
// weighted k-means centroids with each coordinate rounded to the nearest
// value the column holds, as shap.kmeans does, or a sample when a column
// is not numeric or holds missing values.

// sampleRows returns k rows of x (rows × nf, row-major) picked without
// replacement by a generator seeded with seed, in their original order.
func sampleRows(x []float64, rows, nf, k int, seed uint64) []float64 {
	idx := sampleIndices(rows, k, seed)
	out := make([]float64, 0, k*nf)
	for _, i := range idx {
		out = append(out, x[i*nf:(i+1)*nf]...)
	}
	return out
}

// sampleIndices picks k of n indices without replacement, sorted.
func sampleIndices(n, k int, seed uint64) []int {
	rng := rand.New(rand.NewPCG(seed, 0x6b696c6e))
	perm := make([]int, n)
	for i := range perm {
		perm[i] = i
	}
	for i := range k {
		j := i + rng.IntN(n-i)
		perm[i], perm[j] = perm[j], perm[i]
	}
	idx := perm[:k]
	slices.Sort(idx)
	return idx
}

// gatherRows returns the rows idx of t (first dimension).
func gatherRows(t *tensor.Tensor, idx []int) (*tensor.Tensor, error) {
	width := 1
	for _, d := range t.Shape[1:] {
		width *= int(d)
	}
	shape := append([]int64{int64(len(idx))}, t.Shape[1:]...)
	var data any
	switch d := t.Data.(type) {
	case []bool:
		data = gather(d, width, idx)
	case []uint8:
		data = gather(d, width, idx)
	case []uint16:
		data = gather(d, width, idx)
	case []uint32:
		data = gather(d, width, idx)
	case []uint64:
		data = gather(d, width, idx)
	case []int8:
		data = gather(d, width, idx)
	case []int16:
		data = gather(d, width, idx)
	case []int32:
		data = gather(d, width, idx)
	case []int64:
		data = gather(d, width, idx)
	case []float32:
		data = gather(d, width, idx)
	case []float64:
		data = gather(d, width, idx)
	case []string:
		data = gather(d, width, idx)
	default:
		return nil, fmt.Errorf("%w: input %q: datatype %v", ErrInvalidInput, t.Name, t.DType)
	}
	return &tensor.Tensor{Name: t.Name, DType: t.DType, Shape: shape, Data: data}, nil
}

func gather[T any](s []T, width int, idx []int) []T {
	out := make([]T, 0, len(idx)*width)
	for _, i := range idx {
		out = append(out, s[i*width:(i+1)*width]...)
	}
	return out
}

// kmeans clusters the rows of x (rows × nf) into at most k clusters with
// k-means++ seeding (seeded) and Lloyd's iterations, then moves each
// centroid coordinate to the nearest value of its column, as shap.kmeans
// does with round_values=True. It returns the centroids and the number
// of rows in each (empty clusters dropped).
func kmeans(x []float64, rows, nf, k int, seed uint64) ([]float64, []float64) {
	rng := rand.New(rand.NewPCG(seed, 0x6b6d65616e73))
	k = min(k, rows)
	cent := make([]float64, 0, k*nf)
	dist := make([]float64, rows)
	for i := range dist {
		dist[i] = math.Inf(1)
	}
	first := rng.IntN(rows)
	cent = append(cent, x[first*nf:(first+1)*nf]...)
	for len(cent) < k*nf {
		c := cent[len(cent)-nf:]
		total := 0.0
		for i := range rows {
			dist[i] = min(dist[i], sqDist(x[i*nf:(i+1)*nf], c))
			total += dist[i]
		}
		if total == 0 {
			break // fewer distinct rows than k
		}
		u := rng.Float64() * total
		next := rows - 1
		for i := range rows {
			u -= dist[i]
			if u < 0 {
				next = i
				break
			}
		}
		cent = append(cent, x[next*nf:(next+1)*nf]...)
	}
	k = len(cent) / nf
	assign := make([]int, rows)
	for i := range assign {
		assign[i] = -1
	}
	sums := make([]float64, k*nf)
	counts := make([]float64, k)
	for iter := 0; iter < 100; iter++ {
		changed := false
		for i := range rows {
			row := x[i*nf : (i+1)*nf]
			best, bd := 0, math.Inf(1)
			for c := range k {
				if d := sqDist(row, cent[c*nf:(c+1)*nf]); d < bd {
					best, bd = c, d
				}
			}
			if assign[i] != best {
				assign[i], changed = best, true
			}
		}
		if !changed {
			break
		}
		clear(sums)
		clear(counts)
		for i, c := range assign {
			counts[c]++
			for j := range nf {
				sums[c*nf+j] += x[i*nf+j]
			}
		}
		for c := range k {
			if counts[c] == 0 {
				continue // keep the old centroid
			}
			for j := range nf {
				cent[c*nf+j] = sums[c*nf+j] / counts[c]
			}
		}
	}
	clear(counts)
	for _, c := range assign {
		counts[c]++
	}
	// Round each coordinate to the nearest value of the column.
	col := make([]float64, rows)
	for j := range nf {
		for i := range rows {
			col[i] = x[i*nf+j]
		}
		slices.Sort(col)
		for c := range k {
			cent[c*nf+j] = nearest(col, cent[c*nf+j])
		}
	}
	out := cent[:0]
	var weights []float64
	for c := range k {
		if counts[c] > 0 {
			out = append(out, cent[c*nf:(c+1)*nf]...)
			weights = append(weights, counts[c])
		}
	}
	return out, weights
}

func sqDist(a, b []float64) float64 {
	s := 0.0
	for i, v := range a {
		d := v - b[i]
		s += d * d
	}
	return s
}

// nearest returns the value of sorted closest to v (the lower on a tie).
func nearest(sorted []float64, v float64) float64 {
	i, _ := slices.BinarySearch(sorted, v)
	switch {
	case i == 0:
		return sorted[0]
	case i == len(sorted):
		return sorted[len(sorted)-1]
	}
	if v-sorted[i-1] <= sorted[i]-v {
		return sorted[i-1]
	}
	return sorted[i]
}
