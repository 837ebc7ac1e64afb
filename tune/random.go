package tune

import (
	"math"
	"math/rand/v2"
)

// RandomSampler draws every parameter independently: floats uniformly (or
// log-uniformly), ints and stepped floats uniformly on their grid,
// categoricals uniformly. Trial n's draws depend only on Seed and n, so a
// study is reproducible whatever the parallelism.
type RandomSampler struct {
	Seed int64
}

// trialRNG is the random source of trial number n of a seeded study; salt
// separates the streams of different uses.
func trialRNG(seed int64, n int, salt uint64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed)^0x9e3779b97f4a7c15, uint64(n)<<8|salt))
}

// Sample implements Sampler.
func (r *RandomSampler) Sample(space *Space, _ []FrozenTrial, number int, _ Direction) (Params, error) {
	rng := trialRNG(r.Seed, number, 1)
	p := Params{}
	for i := range space.params {
		if !space.active(i, p) {
			continue
		}
		q := &space.params[i]
		p[q.Name] = q.external(q.random(rng))
	}
	return p, nil
}

// random draws an internal value of p uniformly.
func (p *Param) random(rng *rand.Rand) float64 {
	switch {
	case p.Type == TypeCategorical:
		return float64(rng.IntN(len(p.Choices)))
	case p.Log && p.Type == TypeInt:
		// Log-uniform over [low-½, high+½], rounded: each integer gets the
		// mass of its cell on the log scale.
		lo, hi := math.Log(p.Low-0.5), math.Log(p.High+0.5)
		return math.Exp(lo + rng.Float64()*(hi-lo))
	case p.Log:
		lo, hi := math.Log(p.Low), math.Log(p.High)
		return math.Exp(lo + rng.Float64()*(hi-lo))
	case p.Step > 0:
		n := p.gridPoints()
		return p.Low + float64(rng.IntN(n))*p.Step
	}
	return p.Low + rng.Float64()*(p.High-p.Low)
}

// gridPoints is the number of values of a stepped parameter.
func (p *Param) gridPoints() int {
	n := math.Floor((p.High-p.Low)/p.Step+1e-9) + 1
	if n > 1<<30 {
		return 1 << 30
	}
	return int(n)
}
