package tune

import (
	"math"
	"math/rand/v2"
	"sort"
)

// TPE defaults, as Optuna's TPESampler has them.
const (
	DefaultStartupTrials = 10
	DefaultEICandidates  = 24
	DefaultPriorWeight   = 1.0
)

// DefaultGamma is the size of TPE's "good" group among n finished trials:
// min(⌈0.1·n⌉, 25).
func DefaultGamma(n int) int { return min(int(math.Ceil(0.1*float64(n))), 25) }

// DefaultWeights are the weights of n observations, oldest first: 1 each
// up to 25, then a ramp from 1/n to 1 for the older ones and 1 for the 25
// newest.
func DefaultWeights(n int) []float64 {
	w := make([]float64, n)
	if n < 25 {
		for i := range w {
			w[i] = 1
		}
		return w
	}
	ramp := n - 25
	for i := 0; i < ramp; i++ {
		if ramp == 1 {
			w[i] = 1.0 / float64(n)
		} else {
			w[i] = 1.0/float64(n) + (1-1.0/float64(n))*float64(i)/float64(ramp-1)
		}
	}
	for i := ramp; i < n; i++ {
		w[i] = 1
	}
	return w
}

// TPESampler is the (univariate) Tree-structured Parzen Estimator with
// Optuna's defaults: NStartupTrials random trials first, then for each
// parameter a Parzen estimator l(x) of the best Gamma(n) finished trials
// and g(x) of the others (prior weight 1, magic-clipped bandwidths, log
// space for log parameters, a smoothed distribution for categoricals);
// NEICandidates draws from l, and the one maximizing l(x)/g(x) wins.
//
// Pruned trials count as finished: they fill the good group after the
// completed ones, those that got further and had better last values
// first. With ConstantLiar, running trials join the bad group, so that
// parallel trials spread out instead of sampling the same point.
//
// Trial n's draws depend on Seed, n and the finished trials only.
type TPESampler struct {
	Seed           int64
	NStartupTrials int
	NEICandidates  int
	Gamma          func(n int) int
	Weights        func(n int) []float64
	PriorWeight    float64
	ConstantLiar   bool
}

// NewTPESampler returns a TPE sampler with Optuna's defaults.
func NewTPESampler(seed int64) *TPESampler {
	return &TPESampler{Seed: seed, NStartupTrials: DefaultStartupTrials, NEICandidates: DefaultEICandidates,
		Gamma: DefaultGamma, Weights: DefaultWeights, PriorWeight: DefaultPriorWeight}
}

// Sample implements Sampler.
func (s *TPESampler) Sample(space *Space, trials []FrozenTrial, number int, d Direction) (Params, error) {
	var finished, running []*FrozenTrial
	for i := range trials {
		switch t := &trials[i]; t.State {
		case Completed, Pruned:
			finished = append(finished, t)
		case Running:
			if t.Number != number {
				running = append(running, t)
			}
		}
	}
	if len(finished) < s.NStartupTrials {
		return (&RandomSampler{Seed: s.Seed}).Sample(space, trials, number, d)
	}
	gamma, weights := s.Gamma, s.Weights
	if gamma == nil {
		gamma = DefaultGamma
	}
	if weights == nil {
		weights = DefaultWeights
	}
	cands := s.NEICandidates
	if cands <= 0 {
		cands = DefaultEICandidates
	}
	prior := s.PriorWeight
	if prior <= 0 {
		prior = DefaultPriorWeight
	}
	below, above := splitTrials(finished, gamma(len(finished)), d)
	if s.ConstantLiar {
		above = append(above, running...)
		sort.Slice(above, func(i, j int) bool { return above[i].Number < above[j].Number })
	}
	rng := trialRNG(s.Seed, number, 2)
	p := Params{}
	for i := range space.params {
		if !space.active(i, p) {
			continue
		}
		q := &space.params[i]
		lo := newParzen(q, observations(below, q.Name), weights, prior)
		hi := newParzen(q, observations(above, q.Name), weights, prior)
		best, bestScore := 0.0, math.Inf(-1)
		for k := 0; k < cands; k++ {
			x := lo.sample(rng)
			score := lo.logPDF(x) - hi.logPDF(x)
			if k == 0 || score > bestScore {
				best, bestScore = x, score
			}
		}
		p[q.Name] = q.external(lo.untransform(best))
	}
	return p, nil
}

// splitTrials divides finished trials into the nBelow best and the rest,
// each in trial order: completed ones by value first, then pruned ones by
// (furthest step, best last value).
func splitTrials(finished []*FrozenTrial, nBelow int, d Direction) (below, above []*FrozenTrial) {
	var complete, pruned []*FrozenTrial
	for _, t := range finished {
		if t.State == Completed {
			complete = append(complete, t)
		} else {
			pruned = append(pruned, t)
		}
	}
	sort.SliceStable(complete, func(i, j int) bool {
		a, b := *complete[i].Value, *complete[j].Value
		if d == Maximize {
			return a > b
		}
		return a < b
	})
	n := min(nBelow, len(complete))
	below = append(below, complete[:n]...)
	above = append(above, complete[n:]...)
	type score struct{ step, v float64 }
	key := func(t *FrozenTrial) score {
		step, ok := t.LastStep()
		if !ok {
			return score{1, 0}
		}
		v := t.Intermediate[len(t.Intermediate)-1].Value
		switch {
		case math.IsNaN(v):
			v = math.Inf(1)
		case d == Maximize:
			v = -v
		}
		return score{-float64(step), v}
	}
	sort.SliceStable(pruned, func(i, j int) bool {
		a, b := key(pruned[i]), key(pruned[j])
		if a.step != b.step {
			return a.step < b.step
		}
		return a.v < b.v
	})
	m := min(max(nBelow-n, 0), len(pruned))
	below = append(below, pruned[:m]...)
	above = append(above, pruned[m:]...)
	byNumber := func(ts []*FrozenTrial) {
		sort.Slice(ts, func(i, j int) bool { return ts[i].Number < ts[j].Number })
	}
	byNumber(below)
	byNumber(above)
	return below, above
}

// observations are the internal values of parameter name in trials that
// have it, in trial order.
func observations(trials []*FrozenTrial, name string) []float64 {
	var xs []float64
	for _, t := range trials {
		if x, ok := t.x[name]; ok {
			xs = append(xs, x)
		}
	}
	return xs
}

// parzen is a one-dimensional Parzen estimator: a weighted mixture of
// truncated normals (numbers, on the transformed scale) or of smoothed
// one-hot distributions (categoricals); the last component is the prior.
type parzen struct {
	p       *Param
	log     bool
	weights []float64 // mixture weights, summing to 1
	// numbers
	mus, sigmas []float64
	low, high   float64 // on the transformed scale
	step        float64 // 0: continuous
	// categoricals: probs[k][c]
	probs [][]float64
}

func newParzen(p *Param, obs []float64, weightsFn func(int) []float64, prior float64) *parzen {
	z := &parzen{p: p}
	n := len(obs)
	if n == 0 {
		z.weights = []float64{1}
	} else {
		w := weightsFn(n)
		z.weights = append(append([]float64(nil), w[:n]...), prior)
		sum := 0.0
		for _, x := range z.weights {
			sum += x
		}
		for i := range z.weights {
			z.weights[i] /= sum
		}
	}
	if p.Type == TypeCategorical {
		c := len(p.Choices)
		if n == 0 {
			row := make([]float64, c)
			for j := range row {
				row[j] = 1 / float64(c)
			}
			z.probs = [][]float64{row}
			return z
		}
		kernels := n + 1
		z.probs = make([][]float64, kernels)
		for k := range z.probs {
			row := make([]float64, c)
			for j := range row {
				row[j] = prior / float64(kernels)
			}
			if k < n {
				row[int(obs[k])]++
			}
			sum := 0.0
			for _, v := range row {
				sum += v
			}
			for j := range row {
				row[j] /= sum
			}
			z.probs[k] = row
		}
		return z
	}
	z.low, z.high, z.step = p.Low, p.High, p.Step
	if p.Type == TypeFloat && !p.Log && p.Step == 0 {
		z.step = 0
	}
	if p.Log {
		z.log = true
		if p.Type == TypeInt {
			// Integers on the log scale: a continuous density over the
			// integers' cells, rounded afterwards.
			z.low, z.high = math.Log(p.Low-p.Step/2), math.Log(p.High+p.Step/2)
		} else {
			z.low, z.high = math.Log(p.Low), math.Log(p.High)
		}
		z.step = 0
	}
	mus := make([]float64, n)
	for i, x := range obs {
		if z.log {
			x = math.Log(x)
		}
		mus[i] = x
	}
	span := z.high - z.low + z.step
	mid := 0.5 * (z.low + z.high)
	// Bandwidths: each kernel's distance to its farther neighbour among
	// the observations, the prior's mean and the bounds (the outermost
	// kernels look inwards only), clipped to [span/min(100, n+2), span].
	sorted := append(append([]float64(nil), mus...), mid)
	order := make([]int, len(sorted))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return sorted[order[a]] < sorted[order[b]] })
	pts := make([]float64, len(sorted)+2)
	pts[0] = z.low - z.step/2
	for i, o := range order {
		pts[i+1] = sorted[o]
	}
	pts[len(pts)-1] = z.high + z.step/2
	sig := make([]float64, len(sorted))
	for i := range sig {
		sig[i] = math.Max(pts[i+1]-pts[i], pts[i+2]-pts[i+1])
	}
	if len(pts) >= 4 {
		sig[0] = pts[2] - pts[1]
		sig[len(sig)-1] = pts[len(pts)-2] - pts[len(pts)-3]
	}
	minSigma := span / math.Min(100, float64(n+2))
	sigmas := make([]float64, len(sorted))
	for i, o := range order {
		sigmas[o] = math.Max(minSigma, math.Min(span, sig[i]))
	}
	z.mus = append(mus, mid)
	z.sigmas = append(sigmas[:n], span)
	if span == 0 { // low == high: a point mass
		for i := range z.sigmas {
			z.sigmas[i] = 1
		}
	}
	return z
}

// pick draws a mixture component.
func (z *parzen) pick(rng *rand.Rand) int {
	u := rng.Float64()
	for k, w := range z.weights {
		if u < w {
			return k
		}
		u -= w
	}
	return len(z.weights) - 1
}

// sample draws a value on the transformed scale (a categorical's index).
func (z *parzen) sample(rng *rand.Rand) float64 {
	k := z.pick(rng)
	if z.probs != nil {
		u := rng.Float64()
		row := z.probs[k]
		for j, pj := range row {
			if u < pj {
				return float64(j)
			}
			u -= pj
		}
		return float64(len(row) - 1)
	}
	mu, sigma := z.mus[k], z.sigmas[k]
	a := (z.low - z.step/2 - mu) / sigma
	b := (z.high + z.step/2 - mu) / sigma
	x := mu + sigma*truncNormPPF(rng.Float64(), a, b)
	if z.step > 0 {
		x = z.low + math.Round((x-z.low)/z.step)*z.step
		x = math.Max(z.low, math.Min(z.high, x))
	}
	return x
}

// untransform maps a transformed value back to the parameter's scale.
func (z *parzen) untransform(x float64) float64 {
	if z.log {
		return math.Exp(x)
	}
	return x
}

// logPDF is the log density (log mass for discrete parameters) at x on the
// transformed scale.
func (z *parzen) logPDF(x float64) float64 {
	terms := make([]float64, len(z.weights))
	for k, w := range z.weights {
		lw := math.Log(w)
		switch {
		case z.probs != nil:
			terms[k] = lw + math.Log(z.probs[k][int(x)])
		case z.step > 0:
			mu, s := z.mus[k], z.sigmas[k]
			terms[k] = lw + logGaussMass((x-z.step/2-mu)/s, (x+z.step/2-mu)/s) -
				logGaussMass((z.low-z.step/2-mu)/s, (z.high+z.step/2-mu)/s)
		default:
			mu, s := z.mus[k], z.sigmas[k]
			u := (x - mu) / s
			terms[k] = lw - 0.5*u*u - 0.5*math.Log(2*math.Pi) - math.Log(s) - logGaussMass((z.low-mu)/s, (z.high-mu)/s)
		}
	}
	return logSumExp(terms)
}

func logSumExp(xs []float64) float64 {
	m := math.Inf(-1)
	for _, x := range xs {
		m = math.Max(m, x)
	}
	if math.IsInf(m, -1) {
		return m
	}
	s := 0.0
	for _, x := range xs {
		s += math.Exp(x - m)
	}
	return m + math.Log(s)
}

// logNormCDF is log Φ(x), accurate far into the lower tail.
func logNormCDF(x float64) float64 {
	if x > -30 {
		return math.Log(0.5 * math.Erfc(-x/math.Sqrt2))
	}
	// Asymptotic expansion of the Mills ratio.
	x2 := x * x
	return -0.5*x2 - math.Log(-x) - 0.5*math.Log(2*math.Pi) + math.Log1p(-1/x2+3/(x2*x2)-15/(x2*x2*x2))
}

// logGaussMass is log(Φ(b) − Φ(a)) for a ≤ b, stable in both tails.
func logGaussMass(a, b float64) float64 {
	switch {
	case b <= 0:
		lb, la := logNormCDF(b), logNormCDF(a)
		if la >= lb {
			return math.Inf(-1)
		}
		return lb + math.Log1p(-math.Exp(la-lb))
	case a >= 0:
		return logGaussMass(-b, -a)
	}
	// a < 0 < b: 1 − Φ(a) − Φ(−b), both terms below ½.
	return math.Log1p(-0.5*math.Erfc(-a/math.Sqrt2) - 0.5*math.Erfc(b/math.Sqrt2))
}

// truncNormPPF is the u-quantile of the standard normal truncated to
// [a, b], computed on the side of the tail for accuracy.
func truncNormPPF(u, a, b float64) float64 {
	if a >= 0 {
		// Upper tail: work with survival probabilities Φ(−x).
		qa, qb := 0.5*math.Erfc(a/math.Sqrt2), 0.5*math.Erfc(b/math.Sqrt2)
		q := qa - u*(qa-qb)
		if q <= 0 {
			return b
		}
		return clampF(math.Sqrt2*math.Erfcinv(2*q), a, b)
	}
	if b <= 0 {
		pa, pb := 0.5*math.Erfc(-a/math.Sqrt2), 0.5*math.Erfc(-b/math.Sqrt2)
		pp := pa + u*(pb-pa)
		if pp <= 0 {
			return a
		}
		return clampF(-math.Sqrt2*math.Erfcinv(2*pp), a, b)
	}
	pa, pb := 0.5*math.Erfc(-a/math.Sqrt2), 0.5*math.Erfc(-b/math.Sqrt2)
	pp := pa + u*(pb-pa)
	if pp <= 0 {
		return a
	}
	if pp >= 1 {
		return b
	}
	return clampF(-math.Sqrt2*math.Erfcinv(2*pp), a, b)
}

func clampF(x, lo, hi float64) float64 { return math.Max(lo, math.Min(hi, x)) }
