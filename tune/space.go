package tune

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/errdefs"
)

// ParamType is the kind of a search-space parameter.
type ParamType string

// The parameter types.
const (
	TypeFloat       ParamType = "float"
	TypeInt         ParamType = "int"
	TypeCategorical ParamType = "categorical"
)

// Param is one dimension of a search space.
//
// A float is drawn from [Low, High] (uniformly, or log-uniformly with
// Log), on a grid of Step when Step > 0. An int is drawn from Low, Low+Step,
// … ≤ High (Step defaults to 1; Log draws log-uniformly and needs Step 1).
// A categorical takes one of Choices (strings, numbers or booleans).
//
// When makes the parameter conditional: it is sampled only in trials where
// every named parameter (one defined before it) is active and has the
// given value — or one of the values, for a list.
type Param struct {
	Name    string         `json:"name"`
	Type    ParamType      `json:"type"`
	Low     float64        `json:"low,omitempty"`
	High    float64        `json:"high,omitempty"`
	Log     bool           `json:"log,omitempty"`
	Step    float64        `json:"step,omitempty"`
	Choices []any          `json:"choices,omitempty"`
	When    map[string]any `json:"when,omitempty"`
}

// Float is a float parameter uniform on [low, high].
func Float(name string, low, high float64) Param {
	return Param{Name: name, Type: TypeFloat, Low: low, High: high}
}

// LogFloat is a float parameter log-uniform on [low, high] (low > 0).
func LogFloat(name string, low, high float64) Param {
	return Param{Name: name, Type: TypeFloat, Low: low, High: high, Log: true}
}

// Int is an integer parameter on [low, high] with step 1.
func Int(name string, low, high int64) Param {
	return Param{Name: name, Type: TypeInt, Low: float64(low), High: float64(high), Step: 1}
}

// Categorical is a parameter taking one of choices.
func Categorical(name string, choices ...any) Param {
	return Param{Name: name, Type: TypeCategorical, Choices: choices}
}

// WithStep returns p on a grid of step.
func (p Param) WithStep(step float64) Param { p.Step = step; return p }

// WithLog returns p drawn log-uniformly.
func (p Param) WithLog() Param { p.Log = true; return p }

// If returns p conditional on parameter name having value (several If
// calls must all hold).
func (p Param) If(name string, value any) Param {
	w := make(map[string]any, len(p.When)+1)
	for k, v := range p.When {
		w[k] = v
	}
	w[name] = value
	p.When = w
	return p
}

// Space is a validated search space: parameters in the order they are
// sampled.
type Space struct {
	params []Param
	index  map[string]int
	// when[i] are parameter i's conditions: the index of the parameter
	// each names and the accepted values in canonical form.
	when [][]condition
}

type condition struct {
	param  int
	values map[string]bool
}

// Limits of a search space.
const (
	MaxParams  = 100
	MaxChoices = 1000
)

// NewSpace validates params and returns their space.
func NewSpace(params ...Param) (*Space, error) {
	v := &validator{}
	s := v.space("", params)
	if len(v.errs) > 0 {
		return nil, errdefs.InvalidFields("search space", v.errs)
	}
	return s, nil
}

// space checks params (paths under prefix, "spec.parameters") and builds
// the space; problems go to v.
func (v *validator) space(prefix string, params []Param) *Space {
	path := func(i int, field string) string {
		p := fmt.Sprintf("parameters[%d]", i)
		if prefix != "" {
			p = prefix + "[" + strconv.Itoa(i) + "]"
		}
		if field != "" {
			p += "." + field
		}
		return p
	}
	s := &Space{index: map[string]int{}}
	if len(params) == 0 {
		v.fail(strings.TrimSuffix(prefix, "."), "needs at least one parameter")
	}
	if len(params) > MaxParams {
		v.fail(prefix, "more than %d parameters", MaxParams)
		return s
	}
	for i, p := range params {
		switch {
		case !paramNameRE.MatchString(p.Name):
			v.fail(path(i, "name"), "%q is not a parameter name (letters, digits and _, starting with a letter, at most 64)", clip(p.Name))
		case s.has(p.Name):
			v.fail(path(i, "name"), "parameter %q is defined twice", p.Name)
		}
		finite := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) && math.Abs(f) < 1e300 }
		switch p.Type {
		case TypeFloat, TypeInt:
			if len(p.Choices) > 0 {
				v.fail(path(i, "choices"), "applies to categorical parameters only")
			}
			if !finite(p.Low) || !finite(p.High) {
				v.fail(path(i, "low"), "low and high must be finite numbers")
				break
			}
			if p.Low > p.High {
				v.fail(path(i, "high"), "must be ≥ low (%g)", p.Low)
			}
			if p.Log && p.Low <= 0 {
				v.fail(path(i, "low"), "must be > 0 for a log-scale parameter")
			}
			if p.Step < 0 || !finite(p.Step) {
				v.fail(path(i, "step"), "must be a positive number")
			}
			if p.Type == TypeInt {
				if p.Step == 0 {
					p.Step = 1
				}
				if p.Low != math.Trunc(p.Low) || p.High != math.Trunc(p.High) || p.Step != math.Trunc(p.Step) {
					v.fail(path(i, "low"), "low, high and step of an int parameter must be integers")
				}
				if math.Abs(p.Low) > 1<<53 || math.Abs(p.High) > 1<<53 {
					v.fail(path(i, "low"), "low and high must be within ±2^53")
				}
				if p.Log && p.Step != 1 {
					v.fail(path(i, "step"), "a log-scale int parameter has step 1")
				}
			} else if p.Log && p.Step != 0 {
				v.fail(path(i, "step"), "a log-scale float parameter has no step")
			}
		case TypeCategorical:
			if p.Low != 0 || p.High != 0 || p.Log || p.Step != 0 {
				v.fail(path(i, "type"), "a categorical parameter has choices, not low, high, log or step")
			}
			if len(p.Choices) == 0 {
				v.fail(path(i, "choices"), "needs at least one choice")
			}
			if len(p.Choices) > MaxChoices {
				v.fail(path(i, "choices"), "more than %d choices", MaxChoices)
				break
			}
			seen := map[string]bool{}
			for j, c := range p.Choices {
				k, ok := canonical(c)
				switch {
				case !ok:
					v.fail(fmt.Sprintf("%s[%d]", path(i, "choices"), j), "must be a string, number or boolean")
				case seen[k]:
					v.fail(fmt.Sprintf("%s[%d]", path(i, "choices"), j), "%q is listed twice", clip(k))
				}
				seen[k] = true
			}
		case "":
			v.fail(path(i, "type"), "is required: float, int or categorical")
		default:
			v.fail(path(i, "type"), "must be float, int or categorical, not %q", clip(string(p.Type)))
		}
		var conds []condition
		names := make([]string, 0, len(p.When))
		for k := range p.When {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			j, ok := s.index[k]
			if !ok {
				v.fail(path(i, "when."+clip(k)), "names no parameter defined before %q", clip(p.Name))
				continue
			}
			c := condition{param: j, values: map[string]bool{}}
			vals, isList := p.When[k].([]any)
			if !isList {
				vals = []any{p.When[k]}
			}
			if len(vals) == 0 {
				v.fail(path(i, "when."+k), "needs a value")
			}
			for _, val := range vals {
				cv, ok := canonical(val)
				if !ok {
					v.fail(path(i, "when."+k), "values must be strings, numbers or booleans")
					continue
				}
				if !s.params[j].admits(val) {
					v.fail(path(i, "when."+k), "%s never takes the value %q", k, clip(cv))
				}
				c.values[cv] = true
			}
			conds = append(conds, c)
		}
		s.index[p.Name] = len(s.params)
		s.params = append(s.params, p)
		s.when = append(s.when, conds)
	}
	return s
}

func (s *Space) has(name string) bool { _, ok := s.index[name]; return ok }

// admits says whether p can take the value v.
func (p *Param) admits(v any) bool {
	if p.Type == TypeCategorical {
		_, ok := p.choiceIndex(v)
		return ok
	}
	f, ok := number(v)
	if !ok || f < p.Low || f > p.High {
		return false
	}
	if p.Step > 0 {
		k := (f - p.Low) / p.Step
		return math.Abs(k-math.Round(k)) < 1e-9
	}
	return p.Type == TypeFloat || f == math.Trunc(f)
}

func (p *Param) choiceIndex(v any) (int, bool) {
	k, ok := canonical(v)
	if !ok {
		return 0, false
	}
	for i, c := range p.Choices {
		if ck, _ := canonical(c); ck == k {
			return i, true
		}
	}
	return 0, false
}

// Params returns the space's parameters in sampling order.
func (s *Space) Params() []Param { return s.params }

// Param returns the parameter called name.
func (s *Space) Param(name string) (Param, bool) {
	i, ok := s.index[name]
	if !ok {
		return Param{}, false
	}
	return s.params[i], true
}

// active says whether parameter i is sampled given the values so far.
func (s *Space) active(i int, vals Params) bool {
	for _, c := range s.when[i] {
		v, ok := vals[s.params[c.param].Name]
		if !ok {
			return false
		}
		k, _ := canonical(v)
		if !c.values[k] {
			return false
		}
	}
	return true
}

// Params are a trial's parameter values by name: float64 for float
// parameters, int64 for ints, the choice itself for categoricals. An
// inactive conditional parameter is absent.
type Params map[string]any

// String formats the value of name as commands and MLflow see it ("" when
// absent).
func (p Params) String(name string) string {
	v, ok := p[name]
	if !ok {
		return ""
	}
	s, _ := canonical(v)
	return s
}

// external converts an internal value (the number itself; a categorical's
// index) to a Params value, rounding ints and steps.
func (p *Param) external(x float64) any {
	switch p.Type {
	case TypeCategorical:
		i := int(x)
		i = max(0, min(i, len(p.Choices)-1))
		return normChoice(p.Choices[i])
	case TypeInt:
		return int64(p.snap(x))
	}
	return p.snap(x)
}

// snap rounds x to the parameter's grid and clips it to its bounds.
func (p *Param) snap(x float64) float64 {
	if p.Step > 0 {
		x = p.Low + math.Round((x-p.Low)/p.Step)*p.Step
		if x > p.High {
			x -= p.Step // the grid's last point may lie below High
		}
	}
	return math.Max(p.Low, math.Min(p.High, x))
}

// internal converts a Params value to its internal number.
func (p *Param) internal(v any) (float64, bool) {
	if p.Type == TypeCategorical {
		i, ok := p.choiceIndex(v)
		return float64(i), ok
	}
	return number(v)
}

// canonical formats a scalar as parameters are compared and passed on:
// strings as they are, booleans true/false, numbers in their shortest
// form (2, 0.5, 1e-05).
func canonical(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case int:
		return strconv.Itoa(x), true
	case int64:
		return strconv.FormatInt(x, 10), true
	case uint64:
		return strconv.FormatUint(x, 10), true
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "", false
		}
		return strconv.FormatFloat(x, 'g', -1, 64), true
	case float32:
		return canonical(float64(x))
	}
	return "", false
}

// normChoice gives a categorical value one Go type per kind: int64 for
// integers, float64, string, bool.
func normChoice(v any) any {
	switch x := v.(type) {
	case int:
		return int64(x)
	case uint64:
		return int64(x)
	case float32:
		return float64(x)
	}
	return v
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, !math.IsNaN(x)
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	}
	return 0, false
}
