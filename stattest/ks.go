package stattest

import (
	"math"

	"github.com/kiln-ml/kiln/errdefs"
)

// ksExactMax is the largest sample size for which KS computes the exact
// p-value (scipy's method="auto" threshold).
const ksExactMax = 10000

// KS returns the two-sided two-sample Kolmogorov–Smirnov statistic
// D = sup |F_a − F_b| and its p-value, as scipy.stats.ks_2samp(a, b) does
// with its default method "auto":
//
//   - when neither sample has more than 10,000 observations, the exact
//     p-value P(D ≥ d) under the permutation null (all interleavings of
//     the two samples equally likely), with d rounded to a multiple of
//     1/lcm(n_a, n_b) as scipy rounds it;
//   - otherwise the one-sample Kolmogorov distribution for
//     n = round(n_a·n_b/(n_a+n_b)) observations (kstwo.sf).
//
// The exact p-value is the probability that a uniformly random lattice path
// from (0,0) to (n_a,n_b) touches the band |x/n_a − y/n_b| ≥ d, summed
// over first touches (positive terms, so small p-values keep their
// relative precision). Weighted samples use weighted distribution functions
// and their weight totals, rounded, as sample sizes.
func KS(a, b *Sample) (d, p float64, err error) {
	if a.Len() == 0 || b.Len() == 0 {
		return math.NaN(), math.NaN(), errdefs.Invalid("stattest: KS needs two non-empty samples")
	}
	d = ksStatistic(a, b)
	n1, n2 := sampleSize(a), sampleSize(b)
	if max(n1, n2) <= ksExactMax {
		g := gcd(n1, n2)
		lcm := int64(n1/g) * int64(n2)
		h := int64(math.RoundToEven(d * float64(lcm)))
		d = float64(h) / float64(lcm)
		if h == 0 {
			return d, 1, nil
		}
		return d, clamp01(ksLatticeOutside(n1, n2, g, h)), nil
	}
	m, n := float64(max(n1, n2)), float64(min(n1, n2))
	en := math.RoundToEven(m * n / (m + n))
	return d, clamp01(kolmogorovSF(int(en), d)), nil
}

func sampleSize(s *Sample) int {
	if s.weights == nil {
		return len(s.values)
	}
	return max(1, int(math.RoundToEven(s.total)))
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// ksStatistic returns sup |F_a − F_b| over the values of both samples.
func ksStatistic(a, b *Sample) float64 {
	var i, j int
	var ca, cb float64 // cumulative weights
	maxS, minS := 0.0, 0.0
	for i < len(a.values) || j < len(b.values) {
		var v float64
		switch {
		case j >= len(b.values):
			v = a.values[i]
		case i >= len(a.values):
			v = b.values[j]
		default:
			v = min(a.values[i], b.values[j])
		}
		for i < len(a.values) && a.values[i] <= v {
			ca += a.weight(i)
			i++
		}
		for j < len(b.values) && b.values[j] <= v {
			cb += b.weight(j)
			j++
		}
		diff := ca/a.total - cb/b.total
		maxS = max(maxS, diff)
		minS = min(minS, diff)
	}
	return clamp01(max(maxS, -minS))
}

// ksLatticeOutside returns the probability that a uniformly random lattice
// path from (0,0) to (m,n), with unit steps right (a value of the first
// sample) or up (one of the second), reaches a point where
// |x·(n/g) − y·(m/g)| ≥ h, i.e. where |x/m − y/n| ≥ h/lcm(m,n).
//
// It walks the path's distribution column by column: mass at an inside
// point moves right with probability (m−x)/(m−x+n−y) and up otherwise (the
// chance that the next value of a random interleaving comes from either
// sample); mass that steps onto the band is absorbed and summed.
func ksLatticeOutside(m, n, g int, h int64) float64 {
	A, B := int64(m/g), int64(n/g) // |x·B − y·A| < h is inside
	lo := func(x int64) int64 {    // smallest inside y of column x
		return max(0, floorDiv(x*B-h, A)+1)
	}
	hi := func(x int64) int64 { // largest inside y of column x
		return min(int64(n), ceilDiv(x*B+h, A)-1)
	}
	prev := make([]float64, n+1)
	cur := make([]float64, n+1)
	var absorbed, comp float64
	add := func(v float64) { // Neumaier summation of positive terms
		s := absorbed + v
		if absorbed >= v {
			comp += (absorbed - s) + v
		} else {
			comp += (v - s) + absorbed
		}
		absorbed = s
	}
	fm, fn := float64(m), float64(n)
	plo, phi := int64(0), int64(-1) // inside range of the previous column
	for x := int64(0); x <= int64(m); x++ {
		clo, chi := lo(x), hi(x)
		fx := float64(x)
		for y := clo; y <= chi; y++ {
			cur[y] = 0
		}
		// Mass of the previous column stepping right.
		for y := plo; y <= phi; y++ {
			w := prev[y] * (fm - fx + 1) / (fm - fx + 1 + fn - float64(y))
			if y < clo || y > chi {
				add(w)
			} else {
				cur[y] += w
			}
			prev[y] = 0
		}
		if x == 0 {
			cur[0] = 1
		}
		// Mass stepping up within the column.
		for y := clo + 1; y <= chi; y++ {
			cur[y] += cur[y-1] * (fn - float64(y-1)) / (fm - fx + fn - float64(y-1))
		}
		if chi >= clo && chi < int64(n) {
			add(cur[chi] * (fn - float64(chi)) / (fm - fx + fn - float64(chi)))
		}
		prev, cur = cur, prev
		plo, phi = clo, chi
	}
	return absorbed + comp
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func ceilDiv(a, b int64) int64 { return -floorDiv(-a, b) }
