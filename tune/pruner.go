package tune

import (
	"math"
	"sort"
	"sync"
)

// MedianPruner stops a trial whose best intermediate value so far is worse
// than the median of the completed trials' values at the same step, as
// Optuna's MedianPruner: not before NStartupTrials trials completed, not
// before step NWarmupSteps, and only at the first report in each window
// of IntervalSteps steps after the warm-up. A trial whose values are all
// NaN is pruned; NaNs are left out of the median. Fewer than NMinTrials
// (default 1) completed values at the step: no decision.
type MedianPruner struct {
	NStartupTrials int
	NWarmupSteps   int
	IntervalSteps  int
	NMinTrials     int
}

// NewMedianPruner returns a median pruner with Optuna's defaults (5
// startup trials, no warm-up, every step).
func NewMedianPruner() *MedianPruner {
	return &MedianPruner{NStartupTrials: 5, IntervalSteps: 1, NMinTrials: 1}
}

// Prune implements Pruner.
func (m *MedianPruner) Prune(d Direction, trials []FrozenTrial, t *FrozenTrial) bool {
	var completed []*FrozenTrial
	for i := range trials {
		if trials[i].State == Completed {
			completed = append(completed, &trials[i])
		}
	}
	if len(completed) == 0 || len(completed) < m.NStartupTrials {
		return false
	}
	step, ok := t.LastStep()
	if !ok || step < int64(m.NWarmupSteps) {
		return false
	}
	interval := int64(max(m.IntervalSteps, 1))
	warm := int64(m.NWarmupSteps)
	nearest := (step-warm)/interval*interval + warm
	second := int64(-1)
	for _, p := range t.Intermediate {
		if p.Step != step && p.Step > second {
			second = p.Step
		}
	}
	if second >= nearest {
		return false // not the first report in this interval
	}
	best := math.NaN()
	for _, p := range t.Intermediate {
		if math.IsNaN(p.Value) {
			continue
		}
		if math.IsNaN(best) || d.better(p.Value, best) {
			best = p.Value
		}
	}
	if math.IsNaN(best) {
		return true
	}
	var vals []float64
	n := 0
	for _, c := range completed {
		if v, ok := c.at(step); ok {
			n++
			if !math.IsNaN(v) {
				vals = append(vals, v)
			}
		}
	}
	if n < max(m.NMinTrials, 1) || len(vals) == 0 {
		return false
	}
	med := median(vals)
	if d == Maximize {
		return best < med
	}
	return best > med
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return 0.5 * (s[n/2-1] + s[n/2])
}

// SuccessiveHalvingPruner is asynchronous successive halving (ASHA) as
// Optuna's SuccessiveHalvingPruner: rung k is reached at step
// MinResource·ReductionFactor^(MinEarlyStoppingRate+k). A trial reaching
// a rung records its value there and goes on only if it is in the top
// 1/ReductionFactor of the values recorded at that rung so far (itself
// included; while fewer than ReductionFactor values are there, only if it
// is the best). A NaN at a rung prunes. Defaults (zero fields): 1, 3, 0.
type SuccessiveHalvingPruner struct {
	MinResource          int
	ReductionFactor      int
	MinEarlyStoppingRate int

	mu    sync.Mutex
	rungs map[int][]float64 // trial number -> its values at completed rungs
}

// Prune implements Pruner.
func (s *SuccessiveHalvingPruner) Prune(d Direction, trials []FrozenTrial, t *FrozenTrial) bool {
	step, ok := t.LastStep()
	if !ok {
		return false
	}
	value := t.Intermediate[len(t.Intermediate)-1].Value
	minR := int64(max(s.MinResource, 1))
	eta := max(s.ReductionFactor, 2)
	if s.ReductionFactor == 0 {
		eta = 3
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rungs == nil {
		s.rungs = map[int][]float64{}
	}
	for {
		rung := len(s.rungs[t.Number])
		at := minR
		for i := 0; i < s.MinEarlyStoppingRate+rung; i++ {
			if at > math.MaxInt64/int64(eta) {
				return false // a rung beyond any step
			}
			at *= int64(eta)
		}
		if step < at {
			return false
		}
		if math.IsNaN(value) {
			return true
		}
		competing := []float64{value}
		for n, vs := range s.rungs {
			if n != t.Number && len(vs) > rung {
				competing = append(competing, vs[rung])
			}
		}
		s.rungs[t.Number] = append(s.rungs[t.Number], value)
		if !promotable(value, competing, eta, d) {
			return true
		}
	}
}

// promotable says whether value is in the top 1/eta of competing.
func promotable(value float64, competing []float64, eta int, d Direction) bool {
	idx := len(competing)/eta - 1
	if idx < 0 {
		idx = 0
	}
	sort.Float64s(competing)
	if d == Maximize {
		return value >= competing[len(competing)-1-idx]
	}
	return value <= competing[idx]
}
