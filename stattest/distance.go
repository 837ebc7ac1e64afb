package stattest

import (
	"math"
	"sort"

	"github.com/kiln-ml/kiln/errdefs"
)

// Wasserstein returns the first Wasserstein (earth mover's) distance between
// the two samples' distributions, ∫ |F_a(x) − F_b(x)| dx, as
// scipy.stats.wasserstein_distance(a, b[, a_weights, b_weights]).
func Wasserstein(a, b *Sample) (float64, error) {
	if a.Len() == 0 || b.Len() == 0 {
		return math.NaN(), errdefs.Invalid("stattest: Wasserstein distance needs two non-empty samples")
	}
	var i, j int
	var ca, cb float64
	dist := 0.0
	have := false
	var last float64
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
		if have {
			dist += math.Abs(ca/a.total-cb/b.total) * (v - last)
		}
		for i < len(a.values) && a.values[i] <= v {
			ca += a.weight(i)
			i++
		}
		for j < len(b.values) && b.values[j] <= v {
			cb += b.weight(j)
			j++
		}
		last, have = v, true
	}
	return dist, nil
}

// minStd is the floor of the reference standard deviation that normalises
// the Wasserstein distance (Evidently's 0.001).
const minStd = 0.001

// WassersteinNorm returns Evidently's normed Wasserstein distance:
// Wasserstein(ref, cur) / max(std, 0.001), where std is the population
// standard deviation of the reference (refStd when it is a positive finite
// number, as a profile's exact moments give it, else that of ref).
func WassersteinNorm(ref, cur *Sample, refStd float64) (float64, error) {
	w, err := Wasserstein(ref, cur)
	if err != nil {
		return w, err
	}
	if !(refStd > 0) || math.IsInf(refStd, 0) {
		refStd = ref.Std()
	}
	return w / math.Max(refStd, minStd), nil
}

// sturgesBins is the number of equal-width bins Evidently uses for numeric
// columns with more than 20 distinct reference values: numpy's "sturges"
// rule on the concatenated samples, ceil(ptp / (ptp/(log2(N)+1))).
func sturgesEdges(lo, hi float64, n float64) []float64 {
	if lo == hi { // numpy widens an empty range by ±0.5, one bin
		return []float64{lo - 0.5, hi + 0.5}
	}
	ptp := hi - lo
	width := ptp / (math.Log2(n) + 1)
	nb := 1
	if width > 0 {
		nb = int(math.Ceil(ptp / width))
	}
	edges := make([]float64, nb+1)
	step := ptp / float64(nb)
	for i := range edges {
		edges[i] = float64(i)*step + lo
	}
	edges[nb] = hi
	return edges
}

// histogram returns the weight of s in each bin of edges: bin i holds
// [edges[i], edges[i+1]), the last bin also its right edge (np.histogram).
func histogram(s *Sample, edges []float64) []float64 {
	nb := len(edges) - 1
	out := make([]float64, nb)
	for i, v := range s.values {
		if v < edges[0] || v > edges[nb] {
			continue
		}
		// Largest k with edges[k] <= v, capped at the last bin.
		k := sort.Search(nb+1, func(k int) bool { return edges[k] > v }) - 1
		if k >= nb {
			k = nb - 1
		}
		out[k] += s.weight(i)
	}
	return out
}

// binnedPercents returns the share of each sample in common bins, as
// Evidently's get_binned_data: for a numeric column whose reference has
// more than 20 distinct values, Sturges bins over the range of both samples
// (the bin count from their combined size); otherwise one bin per distinct
// value of either. With fillZeros, empty bins get min(nonzero)/10⁶ when the
// smallest non-zero share is at most 10⁻⁴, else 10⁻⁴ (the vectors are not
// renormalised).
func binnedPercents(ref, cur *Sample, fillZeros bool) (p, q []float64) {
	if ref.Unique() > 20 {
		edges := sturgesEdges(math.Min(ref.Min(), cur.Min()), math.Max(ref.Max(), cur.Max()),
			math.RoundToEven(ref.total+cur.total))
		p, q = histogram(ref, edges), histogram(cur, edges)
	} else {
		p, q = valueCounts(ref, cur)
	}
	return percents(p, ref.total, fillZeros), percents(q, cur.total, fillZeros)
}

// valueCounts aligns the weights of the distinct values of two samples
// over their union, in ascending order.
func valueCounts(a, b *Sample) (ca, cb []float64) {
	av, aw := a.uniqueCounts()
	bv, bw := b.uniqueCounts()
	var i, j int
	for i < len(av) || j < len(bv) {
		switch {
		case j >= len(bv) || (i < len(av) && av[i] < bv[j]):
			ca, cb = append(ca, aw[i]), append(cb, 0)
			i++
		case i >= len(av) || bv[j] < av[i]:
			ca, cb = append(ca, 0), append(cb, bw[j])
			j++
		default:
			ca, cb = append(ca, aw[i]), append(cb, bw[j])
			i++
			j++
		}
	}
	return ca, cb
}

func percents(counts []float64, total float64, fillZeros bool) []float64 {
	out := make([]float64, len(counts))
	minNZ := math.Inf(1)
	for i, c := range counts {
		out[i] = c / total
		if out[i] != 0 {
			minNZ = math.Min(minNZ, out[i])
		}
	}
	if fillZeros && !math.IsInf(minNZ, 1) {
		fill := 0.0001
		if minNZ <= 0.0001 {
			fill = minNZ / 1e6
		}
		for i := range out {
			if out[i] == 0 {
				out[i] = fill
			}
		}
	}
	return out
}

// PSI returns the population stability index Σ (p_i − q_i)·ln(p_i/q_i) of
// two share vectors (Evidently's psi on zero-filled bins). p_i and q_i must
// be positive.
func PSI(p, q []float64) float64 {
	s := 0.0
	for i := range p {
		s += (p[i] - q[i]) * math.Log(p[i]/q[i])
	}
	return s
}

// KLDivergence returns Σ p_i ln(p_i/q_i) after normalising p and q to sum
// to one (scipy.stats.entropy(p, q)).
func KLDivergence(p, q []float64) float64 {
	sp, sq := sum(p), sum(q)
	s := 0.0
	for i := range p {
		s += relEntr(p[i]/sp, q[i]/sq)
	}
	return s
}

// JensenShannon returns the Jensen–Shannon distance (the square root of the
// divergence, natural logarithm) of p and q after normalising each to sum
// to one, as scipy.spatial.distance.jensenshannon(p, q).
func JensenShannon(p, q []float64) float64 {
	sp, sq := sum(p), sum(q)
	js := 0.0
	for i := range p {
		a, b := p[i]/sp, q[i]/sq
		m := (a + b) / 2
		js += relEntr(a, m) + relEntr(b, m)
	}
	return math.Sqrt(js / 2)
}

// Hellinger returns the Hellinger distance sqrt(Σ (√p_i − √q_i)² / 2) of two
// share vectors that each sum to one; it equals sqrt(1 − Σ √(p_i q_i)).
func Hellinger(p, q []float64) float64 {
	s := 0.0
	for i := range p {
		d := math.Sqrt(p[i]) - math.Sqrt(q[i])
		s += d * d
	}
	return math.Min(1, math.Sqrt(s/2))
}

// relEntr is scipy.special.rel_entr: x ln(x/y), 0 when x is 0.
func relEntr(x, y float64) float64 {
	switch {
	case x == 0 && y >= 0:
		return 0
	case x > 0 && y > 0:
		return x * math.Log(x/y)
	}
	return math.Inf(1)
}

func sum(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s
}
