package tune

import (
	"context"
	"math"
	"testing"
)

// Standard test functions (minimized).

func branin(x, y float64) float64 {
	a, b, c := 1.0, 5.1/(4*math.Pi*math.Pi), 5/math.Pi
	r, s, t := 6.0, 10.0, 1/(8*math.Pi)
	return a*math.Pow(y-b*x*x+c*x-r, 2) + s*(1-t)*math.Cos(x) + s
}

func hartmann6(x []float64) float64 {
	alpha := []float64{1.0, 1.2, 3.0, 3.2}
	A := [4][6]float64{{10, 3, 17, 3.5, 1.7, 8}, {0.05, 10, 17, 0.1, 8, 14}, {3, 3.5, 1.7, 10, 17, 8}, {17, 8, 0.05, 10, 0.1, 14}}
	P := [4][6]float64{{1312, 1696, 5569, 124, 8283, 5886}, {2329, 4135, 8307, 3736, 1004, 9991}, {2348, 1451, 3522, 2883, 3047, 6650}, {4047, 8828, 8732, 5743, 1091, 381}}
	s := 0.0
	for i := 0; i < 4; i++ {
		e := 0.0
		for j := 0; j < 6; j++ {
			d := x[j] - P[i][j]*1e-4
			e += A[i][j] * d * d
		}
		s += alpha[i] * math.Exp(-e)
	}
	return -s
}

type benchFn struct {
	name  string
	space []Param
	f     func(t *Trial) float64
}

var benchFns = []benchFn{
	{"branin", []Param{Float("x", -5, 10), Float("y", 0, 15)}, func(t *Trial) float64 { return branin(t.Float("x"), t.Float("y")) }},
	{"hartmann6", []Param{Float("x0", 0, 1), Float("x1", 0, 1), Float("x2", 0, 1), Float("x3", 0, 1), Float("x4", 0, 1), Float("x5", 0, 1)},
		func(t *Trial) float64 {
			x := make([]float64, 6)
			for i := range x {
				x[i] = t.Float("x" + string(rune('0'+i)))
			}
			return hartmann6(x)
		}},
	{"sphere5", []Param{Float("a", -10, 10), Float("b", -10, 10), Float("c", -10, 10), LogFloat("d", 1e-3, 1e3), Int("e", -20, 20)},
		func(t *Trial) float64 {
			a, b, c := t.Float("a")-1.5, t.Float("b")+2, t.Float("c")-3
			d := math.Log10(t.Float("d")) - 1
			e := float64(t.Int("e") - 7)
			return a*a + b*b + c*c + d*d + e*e/10
		}},
}

func bestOf(t testing.TB, fn benchFn, s Sampler, trials int) float64 {
	t.Helper()
	space, err := NewSpace(fn.space...)
	if err != nil {
		t.Fatal(err)
	}
	o := &Optimizer{Space: space, Sampler: s, Trials: trials}
	res, err := o.Optimize(context.Background(), ObjectiveFunc(func(_ context.Context, tr *Trial) (float64, error) { return fn.f(tr), nil }))
	if err != nil {
		t.Fatal(err)
	}
	return *res.Best.Value
}

func nanF() float64 { return math.NaN() }
