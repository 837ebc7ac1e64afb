package stattest

import "math"

// This file holds the distribution functions behind the p-values: the
// normal survival function, the chi-square survival function (regularised
// upper incomplete gamma) and the two-sided one-sample Kolmogorov–Smirnov
// distribution for n observations, computed as Simard & L'Ecuyer (2011)
// choose between exact and asymptotic methods.

// normalSF returns P(Z > z) for a standard normal Z, without the
// cancellation of 1 − Φ(z).
func normalSF(z float64) float64 { return 0.5 * math.Erfc(z/math.Sqrt2) }

// chi2SF returns P(X > x) for X ~ χ²(df).
func chi2SF(x, df float64) float64 {
	if math.IsNaN(x) || df <= 0 {
		return math.NaN()
	}
	return gammaQ(df/2, x/2)
}

// gammaQ is the regularised upper incomplete gamma function
// Q(a, x) = Γ(a, x)/Γ(a), a > 0, x ≥ 0: the power series of P = 1 − Q
// below x = a+1, the continued fraction of Q (modified Lentz) above.
func gammaQ(a, x float64) float64 {
	switch {
	case math.IsNaN(a) || math.IsNaN(x) || a <= 0 || x < 0:
		return math.NaN()
	case x == 0:
		return 1
	case math.IsInf(x, 1):
		return 0
	}
	lg, _ := math.Lgamma(a)
	logPrefix := a*math.Log(x) - x - lg // log(x^a e^-x / Γ(a))
	const eps = 1e-17
	const maxIter = 1_000_000
	if x < a+1 {
		// P(a, x) = x^a e^-x / Γ(a+1) · Σ x^n / ((a+1)…(a+n)).
		term := 1 / a
		sum := term
		for n := 1; n < maxIter; n++ {
			term *= x / (a + float64(n))
			sum += term
			if math.Abs(term) < math.Abs(sum)*eps {
				break
			}
		}
		return 1 - sum*math.Exp(logPrefix)
	}
	// Q(a, x) = x^a e^-x / Γ(a) · 1/(x+1−a − 1(1−a)/(x+3−a − 2(2−a)/(x+5−a − …))).
	const tiny = 1e-300
	b := x + 1 - a
	c := 1 / tiny
	d := 1 / b
	h := d
	for i := 1; i < maxIter; i++ {
		an := -float64(i) * (float64(i) - a)
		b += 2
		d = an*d + b
		if math.Abs(d) < tiny {
			d = tiny
		}
		c = b + an/c
		if math.Abs(c) < tiny {
			c = tiny
		}
		d = 1 / d
		delta := d * c
		h *= delta
		if math.Abs(delta-1) < eps {
			break
		}
	}
	return math.Exp(logPrefix) * h
}

// kolmogorovSF returns P(D_n ≥ x), where D_n = sup |F_n − F| is the
// two-sided one-sample Kolmogorov–Smirnov statistic of n observations
// (scipy.stats.kstwo.sf). The method is chosen by n and x as in Simard &
// L'Ecuyer (2011), "Computing the Two-Sided Kolmogorov-Smirnov
// Distribution": Ruben–Gambino's closed forms at the ends, twice Smirnov's
// one-sided tail where the two tails cannot both be crossed (or nearly),
// Durbin's matrix (Marsaglia–Tsang–Wang) for small n·x², and the Pelz–Good
// expansion for large n.
func kolmogorovSF(n int, x float64) float64 {
	switch {
	case n <= 0 || math.IsNaN(x):
		return math.NaN()
	case x >= 1:
		return 0
	case x <= 0:
		return 1
	}
	fn := float64(n)
	t := fn * x
	if t <= 1 {
		if t <= 0.5 {
			return 1
		}
		var cdf float64
		if n <= 140 {
			cdf = 1
			for i := 1; i <= n; i++ {
				cdf *= float64(i) / fn * (2*t - 1)
			}
		} else {
			cdf = math.Exp(logFactorialOverPower(n) + fn*math.Log(2*t-1))
		}
		return clamp01(1 - cdf)
	}
	if t >= fn-1 {
		return clamp01(2 * math.Pow(1-x, fn))
	}
	if x >= 0.5 {
		return clamp01(2 * smirnovSF(n, x))
	}
	nx2 := t * x
	if n <= 140 {
		if nx2 <= 4 {
			// Simard & L'Ecuyer use Durbin's matrix below 0.754693 and
			// Pomeranz's recursion up to 4; both are exact, and the
			// matrix stays accurate over this whole range for n ≤ 140.
			return clamp01(1 - durbinCDF(n, x))
		}
		return clamp01(2 * smirnovSF(n, x))
	}
	if nx2 >= 370 {
		return 0
	}
	if nx2 >= 2.2 {
		return clamp01(2 * smirnovSF(n, x))
	}
	var cdf float64
	switch {
	case nx2 >= 18:
		cdf = 1
	case n <= 100000 && fn*math.Pow(x, 1.5) <= 1.4:
		cdf = durbinCDF(n, x)
	default:
		cdf = pelzGoodCDF(n, x)
	}
	return clamp01(1 - cdf)
}

func clamp01(p float64) float64 {
	switch {
	case p < 0:
		return 0
	case p > 1:
		return 1
	}
	return p
}

// logFactorialOverPower returns log(n!/nⁿ) by Stirling's series, with the
// n·log n terms cancelled analytically.
func logFactorialOverPower(n int) float64 {
	// Stirling coefficients B_2j / (2j(2j−1)), j = 1…8.
	coef := [...]float64{
		1.0 / 12, -1.0 / 360, 1.0 / 1260, -1.0 / 1680,
		1.0 / 1188, -691.0 / 360360, 1.0 / 156, -3617.0 / 122400,
	}
	fn := float64(n)
	r := 1 / fn
	r2 := r * r
	s := 0.0
	for j := len(coef) - 1; j >= 0; j-- {
		s = s*r2 + coef[j]
	}
	return math.Log(fn)/2 - fn + math.Log(2*math.Pi)/2 + r*s
}

// smirnovSF returns P(D⁺_n ≥ x), the one-sided Kolmogorov–Smirnov tail, by
// the Birnbaum–Tingey sum
//
//	x · Σ_{j=0}^{⌊n(1−x)⌋} C(n,j) (1 − x − j/n)^(n−j) (x + j/n)^(j−1),
//
// whose terms are all positive. Terms are formed in log space. For n above
// a million it uses the approximation exp(−(6nx+1)²/(18n)), as scipy does.
func smirnovSF(n int, x float64) float64 {
	switch {
	case n <= 0 || math.IsNaN(x) || x < 0 || x > 1:
		return math.NaN()
	case n == 1:
		return 1 - x
	case x == 0:
		return 1
	case x == 1:
		return 0
	}
	fn := float64(n)
	nx := fn * x
	nxFloor := math.Floor(nx)
	if nxFloor == 0 || (nxFloor == 1 && nx == 1) {
		// x ≤ 1/n: P(D⁺ < x) = x (1+x)^(n−1).
		return 1 - x*math.Pow(1+x, fn-1)
	}
	if -2*fn*x*x < -708.3964185322641 {
		return 0
	}
	if nxFloor >= fn-1 {
		return math.Pow(1-x, fn)
	}
	if n > 1_000_000 {
		return math.Exp(-math.Pow(6*nx+1, 2) / 18 / fn)
	}
	last := int(math.Floor(fn * (1 - x)))
	if float64(last) >= fn*(1-x) { // the term with 1 − x − j/n = 0 vanishes
		last--
	}
	// Term j, divided by x, in logs. With p = j/n, Stirling's formula for
	// C(n,j) cancels the n·H(p) parts analytically:
	//   (n−j)·log1p(−x·n/(n−j)) + j·log1p(x·n/j) − log(x + j/n)
	//   + ½·log(n/(2π·j·(n−j))) + δ(n) − δ(j) − δ(n−j),
	// where δ is Stirling's remainder; what is left is of the order of n·x,
	// not n, so the terms keep their relative precision for large n.
	logTerm := func(j int) float64 {
		if j == 0 {
			return fn*math.Log1p(-x) - math.Log(x)
		}
		fj, fnj := float64(j), float64(n-j)
		return fnj*math.Log1p(-x*fn/fnj) + fj*math.Log1p(x*fn/fj) - math.Log(x+fj/fn) +
			0.5*math.Log(fn/(2*math.Pi*fj*fnj)) + stirlingDelta(fn) - stirlingDelta(fj) - stirlingDelta(fnj)
	}
	var sum, comp float64 // Neumaier summation
	prev := math.Inf(1)
	for j := 0; j <= last; j++ {
		if x*fn >= float64(n-j) {
			break
		}
		term := math.Exp(logTerm(j))
		s := sum + term
		if math.Abs(sum) >= math.Abs(term) {
			comp += (sum - s) + term
		} else {
			comp += (term - s) + sum
		}
		sum = s
		if term < prev && term*float64(last-j+1) < 1e-18*(sum+comp) {
			break
		}
		prev = term
	}
	return x * (sum + comp)
}

// stirlingDelta returns log(k!) − (k·log k − k + ½·log(2πk)), k ≥ 1.
func stirlingDelta(k float64) float64 {
	if k < 10 {
		lg, _ := math.Lgamma(k + 1)
		return lg - (k*math.Log(k) - k + 0.5*math.Log(2*math.Pi*k))
	}
	r := 1 / k
	r2 := r * r
	// Σ B_2j / (2j(2j−1)) / k^(2j−1), j = 1…7: the remainder is below
	// 1e-17 for k ≥ 10.
	return r * (1.0/12 + r2*(-1.0/360+r2*(1.0/1260+r2*(-1.0/1680+r2*(1.0/1188+r2*(-691.0/360360+r2*(1.0/156)))))))
}

// durbinCDF returns P(D_n < d) by Durbin's matrix formula as evaluated by
// Marsaglia, Tsang & Wang (2003): with d = (k−h)/n, k a positive integer,
// 0 ≤ h < 1, P = n!/nⁿ · (Hⁿ)_{kk} for an m×m matrix H, m = 2k−1.
// Powers are kept in range by scaling with powers of two.
func durbinCDF(n int, d float64) float64 {
	fn := float64(n)
	if d >= 1 {
		return 1
	}
	nd := fn * d
	if nd <= 0.5 {
		return 0
	}
	k := int(math.Ceil(nd))
	h := float64(k) - nd
	m := 2*k - 1

	H := make([]float64, m*m)
	// H[i][j] = 1/(i−j+1)! for i−j+1 ≥ 0, with the first column and the
	// last row corrected by the powers of h.
	fact := make([]float64, m+1) // fact[i] = 1/i!
	fact[0] = 1
	for i := 1; i <= m; i++ {
		fact[i] = fact[i-1] / float64(i)
	}
	for i := 0; i < m; i++ {
		for j := 0; j < m; j++ {
			if i-j+1 >= 0 {
				H[i*m+j] = fact[i-j+1]
			}
		}
	}
	for i := 0; i < m; i++ {
		hp := math.Pow(h, float64(i+1))
		H[i*m] = (1 - hp) * fact[i+1]
		H[(m-1)*m+(m-1-i)] = (1 - hp) * fact[i+1]
	}
	corner := 1 - 2*math.Pow(h, float64(m))
	if 2*h-1 > 0 {
		corner += math.Pow(2*h-1, float64(m))
	}
	H[(m-1)*m] = corner * fact[m]

	// Binary powering, tracking a power-of-two exponent for both the
	// running power of H and the accumulated product.
	result := make([]float64, m*m)
	for i := 0; i < m; i++ {
		result[i*m+i] = 1
	}
	resExp, hExp := 0, 0
	tmp := make([]float64, m*m)
	for e := n; e > 0; e >>= 1 {
		if e&1 == 1 {
			matMul(tmp, result, H, m)
			result, tmp = tmp, result
			resExp += hExp
			resExp += rescale(result)
		}
		if e > 1 {
			matMul(tmp, H, H, m)
			H, tmp = tmp, H
			hExp *= 2
			hExp += rescale(H)
		}
	}
	p := result[(k-1)*m+(k-1)]
	// Multiply by n!/nⁿ = Π i/n, rescaling to stay in range.
	for i := 1; i <= n; i++ {
		p = float64(i) * p / fn
		if p != 0 && math.Abs(p) < 0x1p-128 {
			p *= 0x1p128
			resExp -= 128
		}
	}
	return clamp01(math.Ldexp(p, resExp))
}

// matMul sets dst = a·b for m×m row-major matrices.
func matMul(dst, a, b []float64, m int) {
	for i := range dst {
		dst[i] = 0
	}
	for i := 0; i < m; i++ {
		row := dst[i*m : (i+1)*m]
		for l := 0; l < m; l++ {
			v := a[i*m+l]
			if v == 0 {
				continue
			}
			brow := b[l*m : (l+1)*m]
			for j := range row {
				row[j] += v * brow[j]
			}
		}
	}
}

// rescale divides a by a power of two so that its largest entry lies in
// [0.5, 1), and returns that power.
func rescale(a []float64) int {
	mx := 0.0
	for _, v := range a {
		mx = math.Max(mx, math.Abs(v))
	}
	if mx == 0 || math.IsInf(mx, 0) || math.IsNaN(mx) {
		return 0
	}
	_, e := math.Frexp(mx)
	if e == 0 {
		return 0
	}
	for i := range a {
		a[i] = math.Ldexp(a[i], -e)
	}
	return e
}

// pelzGoodCDF returns the Pelz–Good (1976) approximation of P(D_n ≤ x):
// the Li-Chien/Korolyuk expansion K0(z) + K1(z)/√n + K2(z)/n + K3(z)/n^1.5
// in z = x√n, with each K transformed (Jacobi theta) into a series that
// converges fast for small z.
func pelzGoodCDF(n int, x float64) float64 {
	if x <= 0 {
		return 0
	}
	if x >= 1 {
		return 1
	}
	fn := float64(n)
	z := math.Sqrt(fn) * x
	z2 := z * z
	z3, z4, z6 := z2*z, z2*z2, z2*z2*z2
	pi2 := math.Pi * math.Pi
	pi4, pi6 := pi2*pi2, pi2*pi2*pi2

	qlog := -pi2 / 8 / z2
	if qlog < -708 {
		return 0
	}
	q := math.Exp(qlog)

	k1a, k1b := -z2, pi2/4
	k2a := 6*z6 + 2*z4
	k2b := (2*z4 - 5*z2) * pi2 / 4
	k2c := pi4 * (1 - 2*z2) / 16
	k3d := pi6 * (5 - 30*z2) / 64
	k3c := pi4 * (-60*z2 + 212*z4) / 16
	k3b := pi2 * (135*z4 - 96*z6) / 4
	k3a := -30*z6 - 90*z4*z4

	// Σ over odd m = 2k−1 of c_i(m) q^(m²), by a Horner scheme in q^(8k).
	var K [4]float64
	maxk := int(math.Ceil(16 * z / math.Pi))
	for k := maxk; k >= 1; k-- {
		m := float64(2*k - 1)
		m2 := m * m
		m4, m6 := m2*m2, m2*m2*m2
		qp := math.Pow(q, float64(8*k))
		c := [4]float64{
			1,
			k1a + k1b*m2,
			k2a + k2b*m2 + k2c*m4,
			k3a + k3b*m2 + k3c*m4 + k3d*m6,
		}
		for i := range K {
			K[i] = K[i]*qp + c[i]
		}
	}
	sqrt2pi := math.Sqrt(2 * math.Pi)
	den := [4]float64{z, 6 * z4, 72 * z4 * z3, 6480 * z4 * z6}
	for i := range K {
		K[i] *= q * sqrt2pi / den[i]
	}
	// The extra sums of K2 and K3 over all integers k, in q' = exp(−π²/(2z²)).
	q2 := math.Exp(-pi2 / 2 / z2)
	sqrt3z := math.Sqrt(3) * z
	var k2extra, k3extra float64
	for k := maxk; k >= 1; k-- {
		fk := float64(k)
		k2 := fk * fk
		qp := math.Pow(q2, k2)
		k2extra += k2 * qp
		kpi := math.Pi * fk
		k3extra += (sqrt3z + kpi) * (sqrt3z - kpi) * k2 * qp
	}
	K[2] += k2extra * pi2 * sqrt2pi / (-36 * z3)
	K[3] += k3extra * pi2 * sqrt2pi / (216 * z6)
	sum := 0.0
	for i := range K {
		sum += K[i] / math.Pow(fn, float64(i)/2)
	}
	return sum
}
