package tune

import (
	"context"
	"reflect"
	"sort"
	"testing"
)

func TestSamplersDeterministicBySeed(t *testing.T) {
	fn := benchFns[0]
	for _, mk := range []func(int64) Sampler{
		func(s int64) Sampler { return &RandomSampler{Seed: s} },
		func(s int64) Sampler { return NewTPESampler(s) },
	} {
		a, b, c := bestOf(t, fn, mk(3), 25), bestOf(t, fn, mk(3), 25), bestOf(t, fn, mk(4), 25)
		if a != b {
			t.Errorf("same seed, different results: %v %v", a, b)
		}
		if a == c {
			t.Errorf("different seeds, same result %v", a)
		}
	}
}

// TestTPEBeatsRandom: the median best value over fixed seeds at equal
// budget is lower with TPE on each standard function.
func TestTPEBeatsRandom(t *testing.T) {
	for _, fn := range benchFns {
		var tp, rn []float64
		for seed := int64(0); seed < 9; seed++ {
			tp = append(tp, bestOf(t, fn, NewTPESampler(seed), 50))
			rn = append(rn, bestOf(t, fn, &RandomSampler{Seed: seed}, 50))
		}
		sort.Float64s(tp)
		sort.Float64s(rn)
		if tp[4] >= rn[4] {
			t.Errorf("%s: TPE median %g, random %g", fn.name, tp[4], rn[4])
		}
	}
}

func TestGridCoversConditional(t *testing.T) {
	space, err := NewSpace(Categorical("opt", "sgd", "adam"), Float("m", 0, 1).WithStep(0.5).If("opt", "sgd"), Int("l", 1, 2))
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGridSampler(space)
	if err != nil {
		t.Fatal(err)
	}
	if g.Size() != 8 { // sgd: 3 m × 2 l; adam: 2 l
		t.Fatalf("grid size %d, want 8", g.Size())
	}
	o := &Optimizer{Space: space, Sampler: g}
	res, err := o.Optimize(context.Background(), ObjectiveFunc(func(_ context.Context, tr *Trial) (float64, error) {
		if tr.String("opt") == "adam" && tr.Has("m") {
			t.Errorf("inactive parameter m in %v", tr.Params())
		}
		return tr.Float("m"), nil
	}))
	if err != nil || len(res.Trials) != 8 || res.Stopped != "exhausted" {
		t.Fatalf("%v %d %q", err, len(res.Trials), res.Stopped)
	}
	seen := map[string]bool{}
	for _, tr := range res.Trials {
		seen[tr.Params.String("opt")+tr.Params.String("m")+tr.Params.String("l")] = true
	}
	if len(seen) != 8 {
		t.Errorf("grid points repeat: %v", seen)
	}
}

func vals(steps ...float64) []Point {
	ps := make([]Point, len(steps))
	for i, v := range steps {
		ps[i] = Point{Step: int64(i), Value: v}
	}
	return ps
}

func TestMedianPruner(t *testing.T) {
	done := []FrozenTrial{}
	for i, v := range []float64{1, 2, 3, 4, 5} {
		done = append(done, FrozenTrial{Number: i, State: Completed, Intermediate: vals(v, v)})
	}
	cases := []struct {
		name   string
		trials []FrozenTrial
		cur    []Point
		want   bool
	}{
		{"worse than median", done, vals(10, 10), true},
		{"better than median", done, vals(0.5, 0.5), false},
		{"best so far counts", done, vals(2, 10), false},
		{"too few startup trials", done[:4], vals(10, 10), false},
		{"all NaN", done, vals(nanF(), nanF()), true},
	}
	for _, c := range cases {
		cur := FrozenTrial{Number: 99, State: Running, Intermediate: c.cur}
		trials := append(append([]FrozenTrial(nil), c.trials...), cur)
		if got := NewMedianPruner().Prune(Minimize, trials, &trials[len(trials)-1]); got != c.want {
			t.Errorf("%s: prune = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestASHAPruner(t *testing.T) {
	// eta 3, rung 0 at step 1: the first trial reaching a rung is promoted
	// if best; of 3 values, only the best.
	p := &SuccessiveHalvingPruner{MinResource: 1, ReductionFactor: 3}
	report := func(n int, v float64) bool {
		ft := FrozenTrial{Number: n, State: Running, Intermediate: []Point{{Step: 1, Value: v}}}
		return p.Prune(Minimize, nil, &ft)
	}
	for _, c := range []struct {
		v    float64
		want bool
	}{{5, false}, {6, true}, {4, false}, {7, true}} {
		if got := report(int(c.v), c.v); got != c.want {
			t.Errorf("value %v: prune = %v, want %v", c.v, got, c.want)
		}
	}
}

func TestParseStudyErrors(t *testing.T) {
	_, err := ParseStudy([]byte("kind: Study\nmetadata: {name: s}\nspec:\n  objective: {metric: loss}\n  command: [echo, '{{params.y}}']\n  parameters: [{name: x, type: float, low: 2, high: 1}]\n  trials: 3\n  bogus: 1\n"), "")
	if err == nil {
		t.Fatal("no error")
	}
	_, err = ParseStudy([]byte("kind: Study\nmetadata: {name: s}\nspec:\n  objective: {metric: loss}\n  command: [echo, '{{params.y}}']\n  parameters: [{name: x, type: float, low: 2, high: 1}]\n  trials: 3\n"), "")
	if err == nil || !contains(err.Error(), "spec.parameters[0].high") || !contains(err.Error(), "spec.command[1]") {
		t.Fatalf("err = %v", err)
	}
	s, err := ParseStudy([]byte("kind: Study\nmetadata: {name: s}\nspec:\n  objective: {metric: loss}\n  command: [echo, '{{params.x}}']\n  parameters: [{name: x, type: int, low: 1, high: 4}]\n  trials: 3\n"), "")
	if err != nil || s.Spec.Sampler.Type != "tpe" || *s.Spec.Sampler.NStartupTrials != 10 || !reflect.DeepEqual(s.Spec.Experiment, "studies/s") {
		t.Fatalf("%v %+v", err, s)
	}
}

func FuzzParseStudy(f *testing.F) {
	f.Add([]byte("kind: Study\nmetadata: {name: s}\nspec:\n  objective: {metric: loss}\n  command: [echo]\n  parameters: [{name: x, type: float, low: 0, high: 1}, {name: c, type: categorical, choices: [a, 1], when: {x: 0}}]\n  sampler: {type: grid}\n  trials: 3\n"))
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseStudy(data, "n")
		if err == nil {
			if _, err := s.Optimizer(1); err != nil {
				t.Fatalf("valid study, no optimizer: %v", err)
			}
		}
	})
}

func contains(s, sub string) bool {
	return len(s) >= len(sub) && (s == sub || len(sub) == 0 || indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}
