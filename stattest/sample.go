package stattest

import (
	"math"
	"slices"
	"sort"

	"github.com/kiln-ml/kiln/errdefs"
)

// Sample is the finite values of one numeric column, sorted, each with a
// weight. Unweighted samples (every weight 1) are the raw values of a column
// or a uniform subsample of them; weighted samples are the items of a
// quantile sketch (each item stands for weight values), from which the
// tests compute the same statistics approximately.
type Sample struct {
	values  []float64 // ascending
	weights []float64 // nil: every weight is 1
	total   float64
}

// NewSample returns the sample of values, leaving out NaN and ±Inf (as
// Evidently drops them before any test). values is copied.
func NewSample(values []float64) *Sample {
	v := make([]float64, 0, len(values))
	for _, x := range values {
		if !math.IsNaN(x) && !math.IsInf(x, 0) {
			v = append(v, x)
		}
	}
	slices.Sort(v)
	return &Sample{values: v, total: float64(len(v))}
}

// NewWeightedSample returns a sample whose value i stands for weights[i]
// observations. Items with a non-finite value or a zero weight are left
// out; a negative or non-finite weight is an error.
func NewWeightedSample(values, weights []float64) (*Sample, error) {
	if len(values) != len(weights) {
		return nil, errdefs.Invalid("stattest: %d values but %d weights", len(values), len(weights))
	}
	type item struct{ v, w float64 }
	items := make([]item, 0, len(values))
	for i, x := range values {
		w := weights[i]
		if w < 0 || math.IsNaN(w) || math.IsInf(w, 0) {
			return nil, errdefs.Invalid("stattest: weight %v of value %v is not a finite non-negative number", w, x)
		}
		if w == 0 || math.IsNaN(x) || math.IsInf(x, 0) {
			continue
		}
		items = append(items, item{x, w})
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].v < items[j].v })
	s := &Sample{values: make([]float64, len(items)), weights: make([]float64, len(items))}
	for i, it := range items {
		s.values[i], s.weights[i] = it.v, it.w
		s.total += it.w
	}
	return s, nil
}

// Len returns the number of items held.
func (s *Sample) Len() int { return len(s.values) }

// Count returns the number of observations: the sum of the weights.
func (s *Sample) Count() float64 { return s.total }

// Values returns the sorted values; the slice must not be modified.
func (s *Sample) Values() []float64 { return s.values }

func (s *Sample) weight(i int) float64 {
	if s.weights == nil {
		return 1
	}
	return s.weights[i]
}

// Mean returns the weighted mean.
func (s *Sample) Mean() float64 {
	if s.total == 0 {
		return math.NaN()
	}
	sum := 0.0
	for i, v := range s.values {
		sum += s.weight(i) * v
	}
	return sum / s.total
}

// Std returns the population standard deviation (numpy's np.std, ddof 0).
func (s *Sample) Std() float64 {
	if s.total == 0 {
		return math.NaN()
	}
	m := s.Mean()
	ss := 0.0
	for i, v := range s.values {
		d := v - m
		ss += s.weight(i) * d * d
	}
	return math.Sqrt(ss / s.total)
}

// Unique returns the number of distinct values.
func (s *Sample) Unique() int {
	n := 0
	for i, v := range s.values {
		if i == 0 || v != s.values[i-1] {
			n++
		}
	}
	return n
}

// Min and Max return the extreme values (NaN when empty).
func (s *Sample) Min() float64 {
	if len(s.values) == 0 {
		return math.NaN()
	}
	return s.values[0]
}

// Max returns the largest value (NaN when empty).
func (s *Sample) Max() float64 {
	if len(s.values) == 0 {
		return math.NaN()
	}
	return s.values[len(s.values)-1]
}

// uniqueCounts returns the distinct values and the weight of each.
func (s *Sample) uniqueCounts() (vals, counts []float64) {
	for i, v := range s.values {
		if i == 0 || v != s.values[i-1] {
			vals = append(vals, v)
			counts = append(counts, 0)
		}
		counts[len(counts)-1] += s.weight(i)
	}
	return vals, counts
}
