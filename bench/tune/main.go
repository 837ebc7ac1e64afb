// Command tune-bench runs Kiln's TPE and random samplers (package tune,
// called directly) on standard test functions, several seeds at a fixed
// budget, and writes one JSON line per study: the best value found, the
// whole study's time per trial and the sampler's share of it. bench.py
// runs Optuna on the same functions and budget and prints both side by
// side; run.sh runs the two.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/kiln-ml/kiln/tune"
)

// branin is the Branin-Hoo function on x ∈ [-5, 10], y ∈ [0, 15]
// (minimum 0.397887).
func branin(x, y float64) float64 {
	b, c, t := 5.1/(4*math.Pi*math.Pi), 5/math.Pi, 1/(8*math.Pi)
	return math.Pow(y-b*x*x+c*x-6, 2) + 10*(1-t)*math.Cos(x) + 10
}

// hartmann6 is the 6-dimensional Hartmann function on [0, 1]^6 (minimum
// -3.32237).
func hartmann6(x []float64) float64 {
	alpha := [4]float64{1.0, 1.2, 3.0, 3.2}
	a := [4][6]float64{{10, 3, 17, 3.5, 1.7, 8}, {0.05, 10, 17, 0.1, 8, 14}, {3, 3.5, 1.7, 10, 17, 8}, {17, 8, 0.05, 10, 0.1, 14}}
	p := [4][6]float64{{1312, 1696, 5569, 124, 8283, 5886}, {2329, 4135, 8307, 3736, 1004, 9991}, {2348, 1451, 3522, 2883, 3047, 6650}, {4047, 8828, 8732, 5743, 1091, 381}}
	s := 0.0
	for i := range 4 {
		e := 0.0
		for j := range 6 {
			d := x[j] - p[i][j]*1e-4
			e += a[i][j] * d * d
		}
		s += alpha[i] * math.Exp(-e)
	}
	return -s
}

type problem struct {
	name  string
	space []tune.Param
	f     func(t *tune.Trial) float64
}

var problems = []problem{
	{"branin", []tune.Param{tune.Float("x", -5, 10), tune.Float("y", 0, 15)},
		func(t *tune.Trial) float64 { return branin(t.Float("x"), t.Float("y")) }},
	{"hartmann6", []tune.Param{tune.Float("x0", 0, 1), tune.Float("x1", 0, 1), tune.Float("x2", 0, 1),
		tune.Float("x3", 0, 1), tune.Float("x4", 0, 1), tune.Float("x5", 0, 1)},
		func(t *tune.Trial) float64 {
			x := make([]float64, 6)
			for i := range x {
				x[i] = t.Float(fmt.Sprintf("x%d", i))
			}
			return hartmann6(x)
		}},
	// A shifted sphere over mixed parameters: three floats, a log-scale
	// float and an int (minimum 0).
	{"sphere5", []tune.Param{tune.Float("a", -10, 10), tune.Float("b", -10, 10), tune.Float("c", -10, 10),
		tune.LogFloat("d", 1e-3, 1e3), tune.Int("e", -20, 20)},
		func(t *tune.Trial) float64 {
			a, b, c := t.Float("a")-1.5, t.Float("b")+2, t.Float("c")-3
			d := math.Log10(t.Float("d")) - 1
			e := float64(t.Int("e") - 7)
			return a*a + b*b + c*c + d*d + e*e/10
		}},
}

// timed measures the time a sampler spends sampling.
type timed struct {
	tune.Sampler
	mu sync.Mutex
	d  time.Duration
}

func (s *timed) Sample(space *tune.Space, trials []tune.FrozenTrial, n int, d tune.Direction) (tune.Params, error) {
	t0 := time.Now()
	p, err := s.Sampler.Sample(space, trials, n, d)
	s.mu.Lock()
	s.d += time.Since(t0)
	s.mu.Unlock()
	return p, err
}

// Row is one study's outcome.
type Row struct {
	Impl           string  `json:"impl"`
	Problem        string  `json:"problem"`
	Sampler        string  `json:"sampler"`
	Seed           int64   `json:"seed"`
	Trials         int     `json:"trials"`
	Best           float64 `json:"best"`
	MsPerTrial     float64 `json:"ms_per_trial"`
	SampleMsPerTri float64 `json:"sample_ms_per_trial"`
}

func run(ctx context.Context, p problem, sampler string, seed int64, trials int) (Row, error) {
	space, err := tune.NewSpace(p.space...)
	if err != nil {
		return Row{}, err
	}
	var s tune.Sampler = &tune.RandomSampler{Seed: seed}
	if sampler == "tpe" {
		s = tune.NewTPESampler(seed)
	}
	ts := &timed{Sampler: s}
	o := &tune.Optimizer{Space: space, Sampler: ts, Trials: trials, Seed: seed}
	t0 := time.Now()
	res, err := o.Optimize(ctx, tune.ObjectiveFunc(func(_ context.Context, t *tune.Trial) (float64, error) { return p.f(t), nil }))
	elapsed := time.Since(t0)
	if err != nil {
		return Row{}, err
	}
	if res.Best == nil {
		return Row{}, fmt.Errorf("%s %s seed %d: no trial completed", p.name, sampler, seed)
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(trials) }
	return Row{Impl: "kiln", Problem: p.name, Sampler: sampler, Seed: seed, Trials: trials, Best: *res.Best.Value,
		MsPerTrial: ms(elapsed), SampleMsPerTri: ms(ts.d)}, nil
}

func main() {
	seeds := flag.Int("seeds", 20, "seeds per problem and sampler (0 … seeds-1)")
	trials := flag.Int("trials", 60, "trials per study")
	only := flag.String("problems", "branin,hartmann6,sphere5", "comma-separated problems")
	flag.Parse()
	want := map[string]bool{}
	for _, n := range strings.Split(*only, ",") {
		want[strings.TrimSpace(n)] = true
	}
	enc := json.NewEncoder(os.Stdout)
	ctx := context.Background()
	for _, p := range problems {
		if !want[p.name] {
			continue
		}
		for _, sampler := range []string{"tpe", "random"} {
			for seed := range int64(*seeds) {
				row, err := run(ctx, p, sampler, seed, *trials)
				if err != nil {
					slog.Error("study failed", "err", err)
					os.Exit(1)
				}
				if err := enc.Encode(row); err != nil {
					slog.Error("writing", "err", err)
					os.Exit(1)
				}
			}
		}
	}
}
