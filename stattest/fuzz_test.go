package stattest

import (
	"math"
	"testing"
)

// FuzzTest runs every test on samples decoded from the input: scores must
// be numbers in their ranges and nothing may panic.
func FuzzTest(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9}, uint8(4))
	f.Add([]byte{0, 0, 0, 0, 0, 0}, uint8(3))
	f.Add([]byte{255, 1, 128, 7, 7, 7, 200, 3}, uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, split uint8) {
		if len(data) < 2 || len(data) > 1000 {
			return
		}
		k := 1 + int(split)%(len(data)-1)
		conv := func(b []byte) []float64 {
			v := make([]float64, len(b))
			for i, x := range b {
				v[i] = float64(int8(x)) / 4
			}
			return v
		}
		cats := func(b []byte) map[string]float64 {
			m := map[string]float64{}
			for _, x := range b {
				m[string(rune('a'+x%7))]++
			}
			return m
		}
		num := [2]Column{{Kind: Numerical, Sample: NewSample(conv(data[:k]))}, {Kind: Numerical, Sample: NewSample(conv(data[k:]))}}
		cat := [2]Column{{Kind: Categorical, Counts: cats(data[:k])}, {Kind: Categorical, Counts: cats(data[k:])}}
		for _, m := range append([]Method{""}, Methods...) {
			for _, side := range [][2]Column{num, cat} {
				r, err := Test(side[0], side[1], m, 0)
				if err != nil {
					if side[0].Kind == Categorical && m.NumericOnly() {
						continue
					}
					t.Fatalf("%s on %v: %v", m, side[0].Kind, err)
				}
				if math.IsNaN(r.Score) || math.IsInf(r.Score, 0) || r.Score < 0 {
					t.Fatalf("%s on %v: score %v", m, side[0].Kind, r.Score)
				}
				if r.PValue && r.Score > 1 {
					t.Fatalf("%s: p-value %v", m, r.Score)
				}
				if math.IsNaN(r.Statistic) {
					t.Fatalf("%s: NaN statistic", m)
				}
			}
		}
	})
}
