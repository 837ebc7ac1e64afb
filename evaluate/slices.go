package evaluate

import (
	"math"
)

// DefaultMaxSlices bounds the distinct values of a slicing column.
const DefaultMaxSlices = 1000

// Slices keeps one accumulator per value of a slicing column.
type Slices[A Accumulator] struct {
	newAcc func() A
	by     map[string]A
	keys   []string
	max    int
}

// NewSlices returns empty Slices whose accumulators newAcc makes; max
// bounds the distinct keys (DefaultMaxSlices when 0).
func NewSlices[A Accumulator](max int, newAcc func() A) *Slices[A] {
	if max <= 0 {
		max = DefaultMaxSlices
	}
	return &Slices[A]{newAcc: newAcc, by: map[string]A{}, max: max}
}

// Get returns the accumulator of key, creating it when new.
func (s *Slices[A]) Get(key string) (A, error) {
	if a, ok := s.by[key]; ok {
		return a, nil
	}
	if len(s.keys) >= s.max {
		var zero A
		return zero, invalidf(ErrInvalidInput, "more than %d slices (%q is one too many): slice by a column with fewer distinct values", s.max, clip(key))
	}
	a := s.newAcc()
	s.by[key] = a
	s.keys = append(s.keys, key)
	return a, nil
}

// Keys returns the slice keys in sklearn's label order.
func (s *Slices[A]) Keys() []string { return sortLabels(s.keys) }

// Len returns the number of slices.
func (s *Slices[A]) Len() int { return len(s.keys) }

// Disparity is how much a metric differs across slices.
type Disparity struct {
	Metric   string  `json:"metric"`
	Min      float64 `json:"min"`
	Max      float64 `json:"max"`
	MinSlice string  `json:"min_slice"`
	MaxSlice string  `json:"max_slice"`
	// Difference is Max − Min.
	Difference float64 `json:"difference"`
	// Ratio is Min / Max: 1 when the slices agree, smaller the more
	// they differ. Nil when it is not defined (a negative value, or Max
	// of 0 with a smaller Min).
	Ratio *float64 `json:"ratio,omitempty"`
	// Slices is the number of slices compared.
	Slices int `json:"slices"`
}

// ComputeDisparity compares a metric's values across slices (keys in the
// order given; values[i] belongs to keys[i]). Non-finite values are left
// out. With no value, Slices is 0 and the rest is zero.
func ComputeDisparity(metric string, keys []string, values []float64) Disparity {
	d := Disparity{Metric: metric}
	for i, v := range values {
		if !finite(v) {
			continue
		}
		if d.Slices == 0 || v < d.Min {
			d.Min, d.MinSlice = v, keys[i]
		}
		if d.Slices == 0 || v > d.Max {
			d.Max, d.MaxSlice = v, keys[i]
		}
		d.Slices++
	}
	if d.Slices == 0 {
		return d
	}
	d.Difference = d.Max - d.Min
	switch {
	case d.Min < 0:
	case d.Max == 0:
		one := 1.0
		d.Ratio = &one
	default:
		r := d.Min / d.Max
		if !math.IsNaN(r) {
			d.Ratio = &r
		}
	}
	return d
}
