package stattest

import (
	"math"

	"github.com/kiln-ml/kiln/errdefs"
)

// ChiSquare returns Evidently's chi-square drift test on aligned category
// counts: the expected count of category i is ref_i · (Σcur / Σref), and the
// statistic Σ (cur_i − exp_i)² / exp_i is referred to χ² with k−1 degrees
// of freedom (scipy.stats.chisquare(cur, expected)). A category seen only in
// cur has an expected count of zero, which makes the statistic infinite and
// the p-value 0. With a single category there is nothing to compare: the
// p-value is 1 (scipy would return NaN).
func ChiSquare(ref, cur []float64) (stat, p float64, err error) {
	if len(ref) != len(cur) {
		return math.NaN(), math.NaN(), errdefs.Invalid("stattest: chi-square needs aligned counts (%d and %d)", len(ref), len(cur))
	}
	nr, nc := sum(ref), sum(cur)
	if nr <= 0 || nc <= 0 {
		return math.NaN(), math.NaN(), errdefs.Invalid("stattest: chi-square needs two non-empty samples")
	}
	k := nc / nr
	for i := range ref {
		e := ref[i] * k
		d := cur[i] - e
		switch {
		case e == 0 && d == 0:
		case e == 0:
			stat = math.Inf(1)
		default:
			stat += d * d / e
		}
	}
	if len(ref) < 2 {
		return stat, 1, nil
	}
	return stat, chi2SF(stat, float64(len(ref)-1)), nil
}

// ChiSquareContingency returns Pearson's chi-square test of independence
// on an r×c table of counts, as scipy.stats.chi2_contingency(table,
// correction) does: expected counts from the margins, (r−1)(c−1) degrees
// of freedom, and, when correction is set and there is one degree of
// freedom, Yates' continuity correction (each |observed − expected| moved
// 0.5 towards zero, no further than zero).
func ChiSquareContingency(table [][]float64, correction bool) (stat, p float64, dof int, err error) {
	r := len(table)
	if r == 0 || len(table[0]) == 0 {
		return math.NaN(), math.NaN(), 0, errdefs.Invalid("stattest: empty contingency table")
	}
	c := len(table[0])
	rows := make([]float64, r)
	cols := make([]float64, c)
	total := 0.0
	for i, row := range table {
		if len(row) != c {
			return math.NaN(), math.NaN(), 0, errdefs.Invalid("stattest: contingency table rows differ in length")
		}
		for j, v := range row {
			if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
				return math.NaN(), math.NaN(), 0, errdefs.Invalid("stattest: contingency table holds %v", v)
			}
			rows[i] += v
			cols[j] += v
			total += v
		}
	}
	for _, m := range append(append([]float64(nil), rows...), cols...) {
		if m == 0 {
			return math.NaN(), math.NaN(), 0, errdefs.Invalid("stattest: contingency table has a zero margin")
		}
	}
	dof = (r - 1) * (c - 1)
	if dof == 0 {
		return 0, 1, 0, nil
	}
	for i := range table {
		for j, o := range table[i] {
			e := rows[i] * cols[j] / total
			d := o - e
			if correction && dof == 1 {
				ad := math.Max(0, math.Abs(d)-0.5)
				d = math.Copysign(ad, d)
			}
			stat += d * d / e
		}
	}
	return stat, chi2SF(stat, float64(dof)), dof, nil
}

// ZTest returns Evidently's two-proportion Z-test on aligned category
// counts (categories in ascending order): the proportion compared is the
// share of observations that are not the first category. The statistic is
// the pooled z = (p₁ − p₂)/√(P(1−P)(1/n₁ + 1/n₂)) and the p-value two-sided,
// 2·P(Z > |z|). When both samples hold the same single value the p-value is
// 1.
func ZTest(ref, cur []float64) (z, p float64, err error) {
	if len(ref) != len(cur) {
		return math.NaN(), math.NaN(), errdefs.Invalid("stattest: Z-test needs aligned counts (%d and %d)", len(ref), len(cur))
	}
	n1, n2 := sum(ref), sum(cur)
	if n1 <= 0 || n2 <= 0 || len(ref) == 0 {
		return math.NaN(), math.NaN(), errdefs.Invalid("stattest: Z-test needs two non-empty samples")
	}
	nonzero := func(v []float64) (int, int) {
		cnt, at := 0, -1
		for i, x := range v {
			if x > 0 {
				cnt++
				at = i
			}
		}
		return cnt, at
	}
	c1, i1 := nonzero(ref)
	c2, i2 := nonzero(cur)
	if c1 == 1 && c2 == 1 && i1 == i2 {
		return 0, 1, nil
	}
	p1 := (n1 - ref[0]) / n1
	p2 := (n2 - cur[0]) / n2
	P := (p1*n1 + p2*n2) / (n1 + n2)
	z = (p1 - p2) / math.Sqrt(P*(1-P)*(1/n1+1/n2))
	return z, 2 * normalSF(math.Abs(z)), nil
}
