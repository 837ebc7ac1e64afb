package pipeline

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/errdefs"
)

// Parameter types.
const (
	ParamString = "string"
	ParamInt    = "int"
	ParamFloat  = "float"
	ParamBool   = "bool"
)

// maxParamValueBytes bounds a parameter's value.
const maxParamValueBytes = 64 << 10

// ResolveParameters checks a run's parameters against the spec and fills
// in the defaults: an unknown name, a value that is not of the
// parameter's type (int, float, bool) and a missing parameter without a
// default are errors (errdefs invalid, wrapping FieldErrors with paths
// "parameters.<name>"). Values are normalized: ints in decimal, bools as
// true or false; strings and floats are kept as given.
func (s *Spec) ResolveParameters(given map[string]string) (map[string]string, error) {
	var es errdefs.FieldErrors
	known := make(map[string]*Parameter, len(s.Parameters))
	for i := range s.Parameters {
		known[s.Parameters[i].Name] = &s.Parameters[i]
	}
	names := make([]string, 0, len(given))
	for k := range given {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make(map[string]string, len(s.Parameters))
	for _, k := range names {
		p, ok := known[k]
		if !ok {
			es = append(es, errdefs.FieldError{Path: "parameters." + clipText(k), Msg: "the pipeline has no such parameter" + knownParams(s.Parameters)})
			continue
		}
		v, err := checkParamValue(p.Type, given[k])
		if err != nil {
			es = append(es, errdefs.FieldError{Path: "parameters." + k, Msg: err.Error()})
			continue
		}
		out[k] = v
	}
	for i := range s.Parameters {
		p := &s.Parameters[i]
		if _, ok := given[p.Name]; ok {
			continue
		}
		if p.Default == nil {
			es = append(es, errdefs.FieldError{Path: "parameters." + p.Name, Msg: "is required (it has no default)"})
			continue
		}
		v, err := defaultString(p.Type, p.Default)
		if err != nil {
			es = append(es, errdefs.FieldError{Path: "parameters." + p.Name, Msg: "default: " + err.Error()})
			continue
		}
		out[p.Name] = v
	}
	if len(es) > 0 {
		if len(es) > maxSpecFieldErrors {
			es = es[:maxSpecFieldErrors]
		}
		return nil, errdefs.InvalidFields("run parameters", es)
	}
	return out, nil
}

func knownParams(ps []Parameter) string {
	if len(ps) == 0 {
		return " (it has none)"
	}
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.Name
	}
	s := strings.Join(names, ", ")
	if len(s) > 200 {
		s = clipText(s)
	}
	return " (known: " + s + ")"
}

// checkParamValue checks a value given as a string against the type and
// returns its normal form.
func checkParamValue(typ, v string) (string, error) {
	if len(v) > maxParamValueBytes {
		return "", fmt.Errorf("longer than %d bytes", maxParamValueBytes)
	}
	switch typ {
	case "", ParamString:
		return v, nil
	case ParamInt:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return "", fmt.Errorf("%q is not an int", clipText(v))
		}
		return strconv.FormatInt(n, 10), nil
	case ParamFloat:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || !whenNumberRE.MatchString(v) {
			return "", fmt.Errorf("%q is not a float", clipText(v))
		}
		return v, nil
	case ParamBool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return "", fmt.Errorf("%q is not a bool (true or false)", clipText(v))
		}
		return strconv.FormatBool(b), nil
	}
	return "", fmt.Errorf("unknown parameter type %q", clipText(typ))
}

// defaultString turns a default, as YAML or JSON decoded it, into the
// parameter's value.
func defaultString(typ string, d any) (string, error) {
	var s string
	switch x := d.(type) {
	case string:
		s = x
	case bool:
		s = strconv.FormatBool(x)
	case int:
		s = strconv.Itoa(x)
	case int64:
		s = strconv.FormatInt(x, 10)
	case uint64:
		s = strconv.FormatUint(x, 10)
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return "", fmt.Errorf("%v is not a finite number", x)
		}
		if (typ == ParamInt) && x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			s = strconv.FormatInt(int64(x), 10)
		} else {
			s = strconv.FormatFloat(x, 'g', -1, 64)
		}
	default:
		return "", fmt.Errorf("must be a string, number or bool, not %T", d)
	}
	switch x := d.(type) {
	case bool:
		if typ == ParamInt || typ == ParamFloat {
			return "", fmt.Errorf("%v is not a number", x)
		}
	case int, int64, uint64, float64:
		if typ == ParamBool {
			return "", fmt.Errorf("%v is not a bool (true or false)", x)
		}
	}
	return checkParamValue(typ, s)
}

var (
	specIdentRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,62}$`)
	specEnvRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// EnvName is the environment variable suffix of a parameter or input
// name: upper-cased, every character but letters and digits as '_'
// (KILN_PARAM_<NAME>, KILN_INPUT_<NAME>).
func EnvName(name string) string {
	b := []byte(strings.ToUpper(name))
	for i, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}
