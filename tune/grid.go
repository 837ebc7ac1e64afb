package tune

import (
	"github.com/kiln-ml/kiln/errdefs"
)

// MaxGridSize is the most points a grid may have.
const MaxGridSize = 100000

// GridSampler tries every combination of the parameters' values in turn:
// categorical choices, ints on their step, floats on their step (a float
// without one has no grid). Conditional parameters are only combined where
// they are active, so each distinct trial appears once. Trial n gets point
// n; after the last point the sampler is exhausted.
type GridSampler struct {
	points []Params
}

// NewGridSampler enumerates space's grid.
func NewGridSampler(space *Space) (*GridSampler, error) {
	for _, p := range space.params {
		if p.Type == TypeFloat && p.Step <= 0 {
			return nil, errdefs.Invalid("the grid sampler needs a step for float parameter %q", p.Name)
		}
		if p.Type != TypeCategorical && p.gridPoints() > MaxGridSize {
			return nil, errdefs.Invalid("parameter %q has more than %d grid points", p.Name, MaxGridSize)
		}
	}
	g := &GridSampler{}
	var walk func(i int, cur Params) error
	walk = func(i int, cur Params) error {
		if i == len(space.params) {
			p := make(Params, len(cur))
			for k, v := range cur {
				p[k] = v
			}
			if len(g.points) >= MaxGridSize {
				return errdefs.Invalid("the grid has more than %d points", MaxGridSize)
			}
			g.points = append(g.points, p)
			return nil
		}
		if !space.active(i, cur) {
			return walk(i+1, cur)
		}
		q := &space.params[i]
		n := len(q.Choices)
		if q.Type != TypeCategorical {
			n = q.gridPoints()
		}
		for k := 0; k < n; k++ {
			x := float64(k)
			if q.Type != TypeCategorical {
				x = q.Low + float64(k)*q.Step
			}
			cur[q.Name] = q.external(x)
			if err := walk(i+1, cur); err != nil {
				return err
			}
		}
		delete(cur, q.Name)
		return nil
	}
	if err := walk(0, Params{}); err != nil {
		return nil, err
	}
	return g, nil
}

// Size is the number of grid points.
func (g *GridSampler) Size() int { return len(g.points) }

// Sample implements Sampler.
func (g *GridSampler) Sample(_ *Space, _ []FrozenTrial, number int, _ Direction) (Params, error) {
	if number >= len(g.points) {
		return nil, ErrExhausted
	}
	p := make(Params, len(g.points[number]))
	for k, v := range g.points[number] {
		p[k] = v
	}
	return p, nil
}
