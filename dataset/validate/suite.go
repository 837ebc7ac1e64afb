package validate

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/stattest"
)

// SuiteKind is the value of a suite document's kind key.
const SuiteKind = "ValidationSuite"

// Check names a kind of rule.
type Check string

// The checks.
const (
	CheckType         Check = "type"
	CheckNotNull      Check = "not_null"
	CheckRange        Check = "range"
	CheckInSet        Check = "in_set"
	CheckRegex        Check = "regex"
	CheckUnique       Check = "unique"
	CheckRowCount     Check = "row_count"
	CheckFreshness    Check = "freshness"
	CheckDistribution Check = "distribution"
)

// Severity says whether a failing rule fails the suite.
type Severity string

// Severities.
const (
	SeverityError   Severity = "error"   // a failure fails the suite (the default)
	SeverityWarning Severity = "warning" // a failure is reported, the suite still passes
)

// Limits on what a suite may ask for.
const (
	MaxSuiteBytes = 4 << 20
	MaxRules      = 10000
	MaxSetValues  = 100000
	MaxSampleSize = 10_000_000
)

// Suite is a named list of rules, decoded from YAML by ParseSuite.
type Suite struct {
	Name        string
	Description string
	// Reference is the default reference of distribution rules that name
	// none: a dataset version, spelled as the caller's resolver expects.
	Reference string
	Rules     []Rule
}

// Rule is one check. Which fields apply depends on Check; ParseSuite
// rejects the keys that do not.
type Rule struct {
	Name        string // unique in the suite; generated from check and columns when the YAML has none
	Check       Check
	Description string
	Severity    Severity
	Line        int // line of the rule in the YAML

	// Columns holds the rule's column (unique: the key columns). Empty for
	// row_count.
	Columns []string
	// Mostly is the fraction of checked values that must pass (type,
	// not_null, range, in_set, regex, unique); 1 when absent.
	Mostly Fraction

	Type string // type: bool, int, float, string, timestamp or date

	Min, Max             *Bound // range (at least one)
	StrictMin, StrictMax bool   // range: exclusive bounds

	Values []string // in_set: the allowed values, as written

	Pattern string         // regex: RE2 syntax, unanchored
	Regexp  *regexp.Regexp // regex: compiled Pattern

	MinRows, MaxRows *int64 // row_count (at least one)

	MaxAge time.Duration // freshness

	Test       stattest.Method // distribution: empty picks Evidently's default
	Threshold  float64         // distribution: 0 is the test's default
	Reference  string          // distribution: empty uses the suite's
	SampleSize int             // distribution: values sampled per side; 0 is DefaultSampleSize
	Kind       stattest.Kind   // distribution: 0 decides from the column type
}

// Fraction is an exact decimal fraction in [0, 1] (a rule's mostly).
type Fraction struct{ r *big.Rat }

// One is the fraction 1.
func One() Fraction { return Fraction{big.NewRat(1, 1)} }

// ParseFraction parses a decimal such as "0.95" or "1e-3" exactly.
func ParseFraction(s string) (Fraction, error) {
	r, ok := new(big.Rat).SetString(strings.TrimSpace(s))
	if !ok {
		return Fraction{}, fmt.Errorf("%q is not a number", s)
	}
	if r.Sign() < 0 || r.Cmp(big.NewRat(1, 1)) > 0 {
		return Fraction{}, fmt.Errorf("%s is not between 0 and 1", s)
	}
	return Fraction{r}, nil
}

func (f Fraction) rat() *big.Rat {
	if f.r == nil {
		return big.NewRat(1, 1)
	}
	return f.r
}

// Float returns the fraction as a float64.
func (f Fraction) Float() float64 { v, _ := f.rat().Float64(); return v }

// String returns the fraction as a decimal.
func (f Fraction) String() string {
	return strconv.FormatFloat(f.Float(), 'g', -1, 64)
}

// Met reports whether passed/total ≥ f, exactly. An empty total meets any
// fraction.
func (f Fraction) Met(passed, total int64) bool {
	if total <= 0 {
		return true
	}
	r := f.rat()
	lhs := new(big.Int).Mul(big.NewInt(passed), r.Denom())
	rhs := new(big.Int).Mul(r.Num(), big.NewInt(total))
	return lhs.Cmp(rhs) >= 0
}

// Bound is a range rule's limit: a number, or an instant for timestamp and
// date columns.
type Bound struct {
	Text   string  // as written
	Number float64 // when !IsTime
	// Int says the bound is an integer that fits int64, IntValue, compared
	// exactly with int columns.
	Int      bool
	IntValue int64
	IsTime   bool      // a timestamp or date
	Time     time.Time // when IsTime (UTC; a bound without a zone is read as UTC)
}

// ReadSuite reads a suite from r (at most MaxSuiteBytes) and parses it.
func ReadSuite(r io.Reader) (*Suite, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxSuiteBytes+1))
	if err != nil {
		return nil, fmt.Errorf("validation suite: %w", err)
	}
	return ParseSuite(data)
}

// ParseSuite decodes a suite from YAML. Decoding is strict: an unknown key,
// a key that the rule's check does not take, a missing required key, a
// value of the wrong type, an invalid regex or an impossible range is an
// error naming the line. Every problem found is reported, joined. Errors
// wrap errdefs.ErrInvalidArgument.
func ParseSuite(data []byte) (*Suite, error) {
	if len(data) > MaxSuiteBytes {
		return nil, errdefs.TooLarge("validation suite is %d bytes; at most %d", len(data), MaxSuiteBytes)
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errdefs.Invalid("validation suite is empty")
		}
		return nil, errdefs.Invalid("validation suite: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, errdefs.Invalid("validation suite: line %d: a second YAML document; a file holds one suite", extra.Line)
	} else if !errors.Is(err, io.EOF) {
		return nil, errdefs.Invalid("validation suite: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	p := &parser{}
	s := p.suite(&doc)
	if len(p.errs) > 0 {
		msgs := make([]string, len(p.errs))
		for i, e := range p.errs {
			msgs[i] = e.Error()
		}
		return nil, &errdefs.Error{Kind: errdefs.ErrInvalidArgument,
			Msg: "validation suite: " + strings.Join(msgs, "\n"), Err: errors.Join(p.errs...)}
	}
	return s, nil
}

const maxErrors = 25

type parser struct{ errs []error }

func (p *parser) errorf(n *yaml.Node, format string, args ...any) {
	if len(p.errs) >= maxErrors {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if n != nil {
		msg = fmt.Sprintf("line %d: %s", n.Line, msg)
	}
	p.errs = append(p.errs, errors.New(msg))
}

// mapping returns the key/value pairs of a mapping node, checking each key
// against allowed and rejecting duplicates. what names the mapping in
// messages.
func (p *parser) mapping(n *yaml.Node, what string, allowed []string) map[string]*yaml.Node {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s must be a mapping", what)
		return nil
	}
	out := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.errorf(k, "%s: keys must be plain names", what)
			continue
		}
		if k.Value == "<<" {
			p.errorf(k, "%s: merge keys (<<) are not supported", what)
			continue
		}
		if !slices.Contains(allowed, k.Value) {
			p.errorf(k, "unknown key %q in %s (allowed: %s)", k.Value, what, strings.Join(allowed, ", "))
			continue
		}
		if _, dup := out[k.Value]; dup {
			p.errorf(k, "key %q given twice in %s", k.Value, what)
			continue
		}
		if v.Kind == yaml.AliasNode {
			v = v.Alias
		}
		out[k.Value] = v
	}
	return out
}

func (p *parser) scalar(n *yaml.Node, key string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.errorf(n, "%s must be a single value", key)
		return "", false
	}
	return n.Value, true
}

func (p *parser) str(n *yaml.Node, key string) string {
	v, _ := p.scalar(n, key)
	return v
}

func (p *parser) name(n *yaml.Node, key string) string {
	v, ok := p.scalar(n, key)
	if ok && strings.TrimSpace(v) == "" {
		p.errorf(n, "%s must not be empty", key)
	}
	return v
}

func (p *parser) boolean(n *yaml.Node, key string) bool {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		p.errorf(n, "%s must be true or false", key)
		return false
	}
	var b bool
	if err := n.Decode(&b); err != nil {
		p.errorf(n, "%s must be true or false", key)
	}
	return b
}

func (p *parser) number(n *yaml.Node, key string) (float64, bool) {
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") {
		p.errorf(n, "%s must be a number, not %s", key, describe(n))
		return 0, false
	}
	var f float64
	if err := n.Decode(&f); err != nil || math.IsNaN(f) {
		p.errorf(n, "%s must be a number, not %q", key, n.Value)
		return 0, false
	}
	return f, true
}

func (p *parser) integer(n *yaml.Node, key string) (int64, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		p.errorf(n, "%s must be an integer, not %s", key, describe(n))
		return 0, false
	}
	var v int64
	if err := n.Decode(&v); err != nil {
		p.errorf(n, "%s must be an integer that fits 64 bits, not %q", key, n.Value)
		return 0, false
	}
	return v, true
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	if n.Tag == "!!null" {
		return "null"
	}
	return strconv.Quote(n.Value)
}

func (p *parser) suite(doc *yaml.Node) *Suite {
	root := doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			p.errorf(nil, "validation suite is empty")
			return nil
		}
		root = root.Content[0]
	}
	m := p.mapping(root, "the suite", []string{"kind", "name", "description", "reference", "rules"})
	if m == nil {
		return nil
	}
	s := &Suite{}
	if k, ok := m["kind"]; !ok {
		p.errorf(root, "missing key \"kind\" (kind: %s)", SuiteKind)
	} else if v := p.str(k, "kind"); v != SuiteKind && v != "" {
		p.errorf(k, "kind is %q; a validation suite has kind: %s", v, SuiteKind)
	}
	if n, ok := m["name"]; ok {
		s.Name = p.name(n, "name")
	}
	if n, ok := m["description"]; ok {
		s.Description = p.str(n, "description")
	}
	if n, ok := m["reference"]; ok {
		s.Reference = p.name(n, "reference")
	}
	rules, ok := m["rules"]
	if !ok {
		p.errorf(root, "missing key \"rules\"")
		return s
	}
	if rules.Kind != yaml.SequenceNode {
		p.errorf(rules, "rules must be a list")
		return s
	}
	if len(rules.Content) == 0 {
		p.errorf(rules, "rules is empty")
	}
	if len(rules.Content) > MaxRules {
		p.errorf(rules, "%d rules; at most %d", len(rules.Content), MaxRules)
		return s
	}
	names := map[string]int{}
	for _, rn := range rules.Content {
		r, ok := p.rule(rn)
		if !ok {
			continue
		}
		if r.Name != "" {
			if line, dup := names[r.Name]; dup {
				p.errorf(rn, "rule name %q already used at line %d", r.Name, line)
			}
			names[r.Name] = r.Line
		}
		s.Rules = append(s.Rules, r)
	}
	// Generated names: check(columns), numbered when repeated.
	for i := range s.Rules {
		r := &s.Rules[i]
		if r.Name != "" {
			continue
		}
		base := string(r.Check)
		if len(r.Columns) > 0 {
			base += "(" + strings.Join(r.Columns, ",") + ")"
		}
		name := base
		for k := 2; ; k++ {
			if _, taken := names[name]; !taken {
				break
			}
			name = fmt.Sprintf("%s#%d", base, k)
		}
		r.Name = name
		names[name] = r.Line
	}
	return s
}

var common = []string{"check", "name", "description", "severity"}

// keys lists the keys each check takes besides the common ones.
var keys = map[Check][]string{
	CheckType:         {"column", "type", "mostly"},
	CheckNotNull:      {"column", "mostly"},
	CheckRange:        {"column", "min", "max", "strict_min", "strict_max", "mostly"},
	CheckInSet:        {"column", "values", "mostly"},
	CheckRegex:        {"column", "pattern", "mostly"},
	CheckUnique:       {"column", "columns", "mostly"},
	CheckRowCount:     {"min", "max"},
	CheckFreshness:    {"column", "max_age"},
	CheckDistribution: {"column", "test", "threshold", "reference", "sample", "kind"},
}

func checkNames() []string {
	out := make([]string, 0, len(keys))
	for c := range keys {
		out = append(out, string(c))
	}
	slices.Sort(out)
	return out
}

// TypeNames are the types a type rule may expect.
var TypeNames = []string{"bool", "int", "float", "string", "timestamp", "date"}

func (p *parser) rule(n *yaml.Node) (Rule, bool) {
	r := Rule{Line: n.Line, Severity: SeverityError, Mostly: One()}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "a rule must be a mapping with a check key")
		return r, false
	}
	var checkNode *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		switch n.Content[i].Value {
		case "check":
			checkNode = n.Content[i+1]
		case "<<":
			p.errorf(n.Content[i], "rule: merge keys (<<) are not supported")
			return r, false
		}
	}
	if checkNode == nil {
		p.errorf(n, "rule has no check key (one of %s)", strings.Join(checkNames(), ", "))
		return r, false
	}
	r.Check = Check(p.str(checkNode, "check"))
	extra, known := keys[r.Check]
	if !known {
		p.errorf(checkNode, "unknown check %q (one of %s)", r.Check, strings.Join(checkNames(), ", "))
		return r, false
	}
	before := len(p.errs)
	what := string(r.Check) + " rule"
	m := p.mapping(n, what, append(slices.Clone(common), extra...))
	if v, ok := m["name"]; ok {
		r.Name = p.name(v, "name")
	}
	if v, ok := m["description"]; ok {
		r.Description = p.str(v, "description")
	}
	if v, ok := m["severity"]; ok {
		switch s := Severity(p.str(v, "severity")); s {
		case SeverityError, SeverityWarning:
			r.Severity = s
		default:
			p.errorf(v, "severity is %q; one of error, warning", s)
		}
	}
	if v, ok := m["mostly"]; ok {
		if text, ok := p.scalar(v, "mostly"); ok {
			if v.Tag != "!!int" && v.Tag != "!!float" {
				p.errorf(v, "mostly must be a number between 0 and 1, not %q", text)
			} else if f, err := ParseFraction(text); err != nil {
				p.errorf(v, "mostly: %v", err)
			} else {
				r.Mostly = f
			}
		}
	}
	if v, ok := m["column"]; ok {
		r.Columns = []string{p.name(v, "column")}
	}
	needColumn := func() {
		if _, ok := m["column"]; !ok && r.Check != CheckUnique {
			p.errorf(n, "%s needs a column", what)
		}
	}
	switch r.Check {
	case CheckType:
		needColumn()
		if v, ok := m["type"]; !ok {
			p.errorf(n, "type rule needs type (one of %s)", strings.Join(TypeNames, ", "))
		} else {
			t := p.str(v, "type")
			if canon, ok := canonicalType(t); ok {
				r.Type = canon
			} else if t != "" {
				p.errorf(v, "unknown type %q (one of %s)", t, strings.Join(TypeNames, ", "))
			}
		}
	case CheckNotNull:
		needColumn()
	case CheckRange:
		needColumn()
		if v, ok := m["min"]; ok {
			r.Min = p.bound(v, "min")
		}
		if v, ok := m["max"]; ok {
			r.Max = p.bound(v, "max")
		}
		if v, ok := m["strict_min"]; ok {
			r.StrictMin = p.boolean(v, "strict_min")
		}
		if v, ok := m["strict_max"]; ok {
			r.StrictMax = p.boolean(v, "strict_max")
		}
		_, hasMin := m["min"]
		_, hasMax := m["max"]
		switch {
		case !hasMin && !hasMax:
			p.errorf(n, "range rule needs min, max or both")
		case r.Min != nil && r.Max != nil:
			if r.Min.IsTime != r.Max.IsTime {
				p.errorf(n, "range: min and max must both be numbers or both be timestamps")
			} else if c := compareBounds(r.Min, r.Max); c > 0 || (c == 0 && (r.StrictMin || r.StrictMax)) {
				p.errorf(n, "range: no value can lie between min %s and max %s", r.Min.Text, r.Max.Text)
			}
		}
	case CheckInSet:
		needColumn()
		v, ok := m["values"]
		switch {
		case !ok:
			p.errorf(n, "in_set rule needs values (a list)")
		case v.Kind != yaml.SequenceNode:
			p.errorf(v, "values must be a list")
		case len(v.Content) == 0:
			p.errorf(v, "values is empty")
		case len(v.Content) > MaxSetValues:
			p.errorf(v, "values has %d entries; at most %d", len(v.Content), MaxSetValues)
		default:
			for _, e := range v.Content {
				if e.Kind == yaml.AliasNode {
					e = e.Alias
				}
				if s, ok := p.scalar(e, "each of values"); ok {
					r.Values = append(r.Values, s)
				}
			}
		}
	case CheckRegex:
		needColumn()
		if v, ok := m["pattern"]; !ok {
			p.errorf(n, "regex rule needs pattern")
		} else if pat, ok := p.scalar(v, "pattern"); ok {
			re, err := CompileRegex(pat)
			if err != nil {
				p.errorf(v, "pattern: %v", err)
			}
			r.Pattern, r.Regexp = pat, re
		}
	case CheckUnique:
		v, hasCols := m["columns"]
		_, hasCol := m["column"]
		switch {
		case hasCols && hasCol:
			p.errorf(n, "unique rule takes column or columns, not both")
		case hasCols:
			if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
				p.errorf(v, "columns must be a non-empty list of column names")
				break
			}
			for _, e := range v.Content {
				if e.Kind == yaml.AliasNode {
					e = e.Alias
				}
				c := p.name(e, "each of columns")
				if slices.Contains(r.Columns, c) {
					p.errorf(e, "column %q listed twice", c)
				}
				r.Columns = append(r.Columns, c)
			}
		case !hasCol:
			p.errorf(n, "unique rule needs column or columns")
		}
	case CheckRowCount:
		if v, ok := m["min"]; ok {
			if x, ok := p.integer(v, "min"); ok {
				r.MinRows = &x
			}
		}
		if v, ok := m["max"]; ok {
			if x, ok := p.integer(v, "max"); ok {
				r.MaxRows = &x
			}
		}
		_, hasMin := m["min"]
		_, hasMax := m["max"]
		switch {
		case !hasMin && !hasMax:
			p.errorf(n, "row_count rule needs min, max or both")
		case r.MinRows != nil && *r.MinRows < 0:
			p.errorf(m["min"], "min must not be negative")
		case r.MaxRows != nil && *r.MaxRows < 0:
			p.errorf(m["max"], "max must not be negative")
		case r.MinRows != nil && r.MaxRows != nil && *r.MinRows > *r.MaxRows:
			p.errorf(n, "row_count: min %d is above max %d", *r.MinRows, *r.MaxRows)
		}
	case CheckFreshness:
		needColumn()
		if v, ok := m["max_age"]; !ok {
			p.errorf(n, "freshness rule needs max_age (such as 24h or 7d)")
		} else if s, ok := p.scalar(v, "max_age"); ok {
			d, err := ParseAge(s)
			if err != nil {
				p.errorf(v, "max_age: %v", err)
			}
			r.MaxAge = d
		}
	case CheckDistribution:
		needColumn()
		if v, ok := m["test"]; ok {
			meth, err := stattest.ParseMethod(p.str(v, "test"))
			if err != nil {
				p.errorf(v, "test: %s", errdefs.Message(err))
			}
			r.Test = meth
		}
		if v, ok := m["threshold"]; ok {
			if f, ok := p.number(v, "threshold"); ok {
				switch {
				case !(f > 0) || math.IsInf(f, 0):
					p.errorf(v, "threshold must be a positive number")
				case r.Test.PValue() && f > 1:
					p.errorf(v, "threshold %g: a p-value threshold is at most 1", f)
				}
				r.Threshold = f
			}
		}
		if v, ok := m["reference"]; ok {
			r.Reference = p.name(v, "reference")
		}
		if v, ok := m["sample"]; ok {
			if x, ok := p.integer(v, "sample"); ok {
				if x < 1 || x > MaxSampleSize {
					p.errorf(v, "sample must be between 1 and %d", MaxSampleSize)
				}
				r.SampleSize = int(x)
			}
		}
		if v, ok := m["kind"]; ok {
			switch k := p.str(v, "kind"); k {
			case "numerical", "numeric":
				r.Kind = stattest.Numerical
			case "categorical":
				r.Kind = stattest.Categorical
			default:
				p.errorf(v, "kind is %q; one of numerical, categorical", k)
			}
		}
		if r.Kind == stattest.Categorical && r.Test.NumericOnly() {
			p.errorf(n, "test %s needs a numerical column", r.Test)
		}
	}
	return r, len(p.errs) == before
}

func canonicalType(t string) (string, bool) {
	switch strings.ToLower(t) {
	case "bool", "boolean":
		return "bool", true
	case "int", "int64", "integer":
		return "int", true
	case "float", "float64", "double", "number":
		return "float", true
	case "string", "str", "text":
		return "string", true
	case "timestamp", "datetime":
		return "timestamp", true
	case "date":
		return "date", true
	}
	return "", false
}

// CompileRegex compiles a regex rule's pattern (Go's RE2 syntax). Perl
// features that RE2 leaves out — lookahead, lookbehind, backreferences —
// get an error that says so.
func CompileRegex(pattern string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(pattern)
	if err == nil {
		return re, nil
	}
	msg := err.Error()
	for _, perl := range []string{"(?=", "(?!", "(?<=", "(?<!"} {
		if strings.Contains(pattern, perl) {
			return nil, fmt.Errorf("%s (RE2 syntax has no lookahead or lookbehind)", msg)
		}
	}
	if backref.MatchString(pattern) {
		return nil, fmt.Errorf("%s (RE2 syntax has no backreferences)", msg)
	}
	return nil, errors.New(msg)
}

var backref = regexp.MustCompile(`\\[1-9]`)

// ParseTime reads an instant written YYYY-MM-DD, optionally followed by
// T or a space, HH:MM, optional :SS and fraction, and optional zone (Z or
// ±HH:MM); without a zone the time is read as UTC. It does not allocate.
func ParseTime(s string) (time.Time, bool) {
	t, _, ok := parseTime(strings.TrimSpace(s))
	return t, ok
}

// parseTime parses what ParseTime accepts and reports whether s was a
// date alone.
func parseTime(s string) (t time.Time, dateOnly, ok bool) {
	num := func(s string) (int, bool) {
		n := 0
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return 0, false
			}
			n = n*10 + int(s[i]-'0')
		}
		return n, len(s) > 0
	}
	if len(s) < 10 || s[4] != '-' || s[7] != '-' {
		return time.Time{}, false, false
	}
	year, ok1 := num(s[0:4])
	month, ok2 := num(s[5:7])
	day, ok3 := num(s[8:10])
	if !ok1 || !ok2 || !ok3 || month < 1 || month > 12 || day < 1 || day > daysIn(time.Month(month), year) {
		return time.Time{}, false, false
	}
	if len(s) == 10 {
		return time.Date(year, time.Month(month), day, 0, 0, 0, 0, time.UTC), true, true
	}
	rest := s[10:]
	if rest[0] != 'T' && rest[0] != 't' && rest[0] != ' ' {
		return time.Time{}, false, false
	}
	rest = rest[1:]
	if len(rest) < 5 || rest[2] != ':' {
		return time.Time{}, false, false
	}
	hour, ok1 := num(rest[0:2])
	minute, ok2 := num(rest[3:5])
	if !ok1 || !ok2 || hour > 23 || minute > 59 {
		return time.Time{}, false, false
	}
	rest = rest[5:]
	sec, nsec := 0, 0
	if len(rest) >= 3 && rest[0] == ':' {
		var ok bool
		if sec, ok = num(rest[1:3]); !ok || sec > 59 {
			return time.Time{}, false, false
		}
		rest = rest[3:]
		if len(rest) > 0 && (rest[0] == '.' || rest[0] == ',') {
			i := 1
			for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
				if i <= 9 {
					nsec = nsec*10 + int(rest[i]-'0')
				}
				i++
			}
			if i == 1 {
				return time.Time{}, false, false
			}
			for k := i; k <= 9; k++ {
				nsec *= 10
			}
			rest = rest[i:]
		}
	}
	offset := 0
	switch {
	case rest == "":
	case rest == "Z" || rest == "z":
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, ok1 := num(rest[1:3])
		om, ok2 := num(rest[4:6])
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return time.Time{}, false, false
		}
		offset = oh*3600 + om*60
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return time.Time{}, false, false
	}
	t = time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC).Add(-time.Duration(offset) * time.Second)
	return t, false, true
}

func daysIn(m time.Month, year int) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

func (p *parser) bound(n *yaml.Node, key string) *Bound {
	text, ok := p.scalar(n, key)
	if !ok {
		return nil
	}
	switch n.Tag {
	case "!!int", "!!float":
		var f float64
		if err := n.Decode(&f); err != nil || math.IsNaN(f) {
			p.errorf(n, "%s: %q is not a number", key, text)
			return nil
		}
		b := &Bound{Text: text, Number: f}
		if n.Tag == "!!int" {
			var iv int64
			if err := n.Decode(&iv); err == nil {
				b.Int, b.IntValue = true, iv
			}
		}
		return b
	case "!!timestamp", "!!str":
		t, ok := ParseTime(text)
		if !ok {
			p.errorf(n, "%s: %q is neither a number nor a timestamp (such as 2024-01-31 or 2024-01-31T12:00:00Z)", key, text)
			return nil
		}
		return &Bound{Text: text, IsTime: true, Time: t}
	}
	p.errorf(n, "%s must be a number or a timestamp, not %s", key, describe(n))
	return nil
}

func compareBounds(a, b *Bound) int {
	if a.IsTime {
		return a.Time.Compare(b.Time)
	}
	switch {
	case a.Number < b.Number:
		return -1
	case a.Number > b.Number:
		return 1
	}
	return 0
}

// ParseAge parses a freshness rule's max_age: Go's duration syntax
// ("36h", "90m", "1h30m") extended with days ("d", 24h) and weeks ("w").
// It must be positive.
func ParseAge(s string) (time.Duration, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return 0, errors.New("empty duration")
	}
	var total time.Duration
	rest := in
	for rest != "" {
		i := 0
		for i < len(rest) && (rest[i] == '.' || (rest[i] >= '0' && rest[i] <= '9')) {
			i++
		}
		j := i
		for j < len(rest) && !(rest[j] == '.' || (rest[j] >= '0' && rest[j] <= '9')) {
			j++
		}
		num, unit := rest[:i], rest[i:j]
		rest = rest[j:]
		if num == "" || unit == "" {
			return 0, fmt.Errorf("%q is not a duration (such as 24h, 90m or 7d)", s)
		}
		var d time.Duration
		switch unit {
		case "d", "w":
			f, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("%q is not a duration", s)
			}
			hours := f * 24
			if unit == "w" {
				hours *= 7
			}
			if hours > float64(math.MaxInt64)/float64(time.Hour) {
				return 0, fmt.Errorf("%q is too long", s)
			}
			d = time.Duration(hours * float64(time.Hour))
		default:
			var err error
			d, err = time.ParseDuration(num + unit)
			if err != nil {
				return 0, fmt.Errorf("%q is not a duration (such as 24h, 90m or 7d)", s)
			}
		}
		if total > math.MaxInt64-d {
			return 0, fmt.Errorf("%q is too long", s)
		}
		total += d
	}
	if total <= 0 {
		return 0, fmt.Errorf("%q is not a positive duration", s)
	}
	return total, nil
}
