package alert

import (
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/errdefs"
)

// Sample is one value a monitor emitted in an evaluation: a metric name,
// its labels (monitor, endpoint, feature, …) and the value.
type Sample struct {
	Metric string            `json:"metric"`
	Labels map[string]string `json:"labels,omitempty"`
	Value  float64           `json:"value"`
}

// Expr is a parsed rule expression:
//
//	expr       = and { "or" and }
//	and        = comparison { "and" comparison }
//	comparison = selector op number
//	selector   = metric [ "{" [ matcher { "," matcher } [ "," ] ] "}" ]
//	matcher    = label ( "=" | "!=" | "=~" | "!~" ) string
//	op         = ">" | ">=" | "<" | "<=" | "==" | "!="
//
// "and" binds tighter than "or"; there are no parentheses. Strings are
// double- or single-quoted with Go escapes; regular expressions (RE2) are
// anchored at both ends, as in PromQL. Keywords are case-insensitive.
type Expr struct {
	or [][]comparison // a disjunction of conjunctions
}

// Matcher operators.
const (
	MatchEqual    = "="
	MatchNotEqual = "!="
	MatchRegexp   = "=~"
	MatchNotRegex = "!~"
)

type matcher struct {
	label, op, value string
	re               *regexp.Regexp
}

type comparison struct {
	metric    string
	matchers  []matcher
	op        string
	threshold float64
}

// maxExprLen bounds the expressions accepted (they are user input).
const maxExprLen = 4096

// ParseError is a syntax error of an expression at a 1-based column.
type ParseError struct {
	Column int
	Msg    string
}

func (e *ParseError) Error() string { return fmt.Sprintf("column %d: %s", e.Column, e.Msg) }

// ParseExpr parses a rule expression. Errors wrap errdefs.ErrInvalidArgument
// and carry a *ParseError with the column.
func ParseExpr(s string) (*Expr, error) {
	if len(s) > maxExprLen {
		return nil, errdefs.Invalid("expression is longer than %d bytes", maxExprLen)
	}
	p := &parser{src: s}
	e, err := p.parse()
	if err != nil {
		return nil, &errdefs.Error{Kind: errdefs.ErrInvalidArgument, Msg: err.Error(), Err: err}
	}
	return e, nil
}

type parser struct {
	src string
	pos int
}

func (p *parser) errf(pos int, format string, args ...any) error {
	return &ParseError{Column: pos + 1, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) skipSpace() {
	for p.pos < len(p.src) && strings.IndexByte(" \t\r\n", p.src[p.pos]) >= 0 {
		p.pos++
	}
}

func isIdentStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isIdent(c byte) bool      { return isIdentStart(c) || c >= '0' && c <= '9' }

func (p *parser) ident() string {
	start := p.pos
	if p.pos < len(p.src) && isIdentStart(p.src[p.pos]) {
		p.pos++
		for p.pos < len(p.src) && isIdent(p.src[p.pos]) {
			p.pos++
		}
	}
	return p.src[start:p.pos]
}

// keyword consumes word (case-insensitive) when it is the next token.
func (p *parser) keyword(word string) bool {
	p.skipSpace()
	end := p.pos + len(word)
	if end > len(p.src) || !strings.EqualFold(p.src[p.pos:end], word) {
		return false
	}
	if end < len(p.src) && isIdent(p.src[end]) {
		return false
	}
	p.pos = end
	return true
}

func (p *parser) parse() (*Expr, error) {
	p.skipSpace()
	if p.pos == len(p.src) {
		return nil, p.errf(p.pos, "empty expression")
	}
	e := &Expr{}
	for {
		var conj []comparison
		for {
			c, err := p.comparison()
			if err != nil {
				return nil, err
			}
			conj = append(conj, c)
			if !p.keyword("and") {
				break
			}
		}
		e.or = append(e.or, conj)
		if !p.keyword("or") {
			break
		}
	}
	p.skipSpace()
	if p.pos < len(p.src) {
		return nil, p.errf(p.pos, "unexpected %q (want and, or or the end)", p.token())
	}
	return e, nil
}

// token returns the text at pos up to the next space, for messages.
func (p *parser) token() string {
	end := p.pos
	for end < len(p.src) && strings.IndexByte(" \t\r\n", p.src[end]) < 0 && end-p.pos < 20 {
		end++
	}
	return p.src[p.pos:end]
}

func (p *parser) comparison() (comparison, error) {
	var c comparison
	p.skipSpace()
	start := p.pos
	c.metric = p.ident()
	if c.metric == "" {
		if p.pos == len(p.src) {
			return c, p.errf(p.pos, "unexpected end of expression (want a metric name)")
		}
		return c, p.errf(p.pos, "unexpected %q (want a metric name)", p.token())
	}
	if l := strings.ToLower(c.metric); l == "and" || l == "or" {
		return c, p.errf(start, "unexpected %q (want a metric name)", c.metric)
	}
	p.skipSpace()
	if p.pos < len(p.src) && p.src[p.pos] == '{' {
		p.pos++
		if err := p.matchers(&c); err != nil {
			return c, err
		}
	}
	p.skipSpace()
	opPos := p.pos
	for _, op := range []string{">=", "<=", "==", "!=", ">", "<"} {
		if strings.HasPrefix(p.src[p.pos:], op) {
			c.op = op
			p.pos += len(op)
			break
		}
	}
	if c.op == "" {
		if p.pos == len(p.src) {
			return c, p.errf(p.pos, "unexpected end of expression after %s (want > >= < <= == !=)", c.metric)
		}
		return c, p.errf(opPos, "unexpected %q (want > >= < <= == !=)", p.token())
	}
	p.skipSpace()
	numPos := p.pos
	end := scanNumber(p.src, p.pos)
	if end == p.pos {
		if p.pos == len(p.src) {
			return c, p.errf(p.pos, "unexpected end of expression (want a number)")
		}
		return c, p.errf(numPos, "unexpected %q (want a number)", p.token())
	}
	f, err := strconv.ParseFloat(p.src[p.pos:end], 64)
	if err != nil || math.IsNaN(f) {
		return c, p.errf(numPos, "%q is not a number", p.src[p.pos:end])
	}
	c.threshold = f
	p.pos = end
	return c, nil
}

// scanNumber returns the end of the number at i: an optional sign, then
// "Inf"/"Infinity" or decimal digits with an optional fraction and
// exponent.
func scanNumber(s string, i int) int {
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	if i < len(s) && isIdentStart(s[i]) {
		j := i
		for j < len(s) && isIdent(s[j]) {
			j++
		}
		if w := strings.ToLower(s[i:j]); w == "inf" || w == "infinity" {
			return j
		}
		return i
	}
	digits := func() {
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	start := i
	digits()
	if i < len(s) && s[i] == '.' {
		i++
		digits()
	}
	if i == start {
		return start
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if j < len(s) && s[j] >= '0' && s[j] <= '9' {
			i = j
			digits()
		}
	}
	return i
}

func (p *parser) matchers(c *comparison) error {
	for {
		p.skipSpace()
		if p.pos < len(p.src) && p.src[p.pos] == '}' {
			p.pos++
			return nil
		}
		lpos := p.pos
		var m matcher
		m.label = p.ident()
		if m.label == "" {
			if p.pos == len(p.src) {
				return p.errf(p.pos, "unexpected end of expression (want a label name or })")
			}
			return p.errf(lpos, "unexpected %q (want a label name or })", p.token())
		}
		p.skipSpace()
		opPos := p.pos
		for _, op := range []string{MatchRegexp, MatchNotRegex, MatchNotEqual, MatchEqual} {
			if strings.HasPrefix(p.src[p.pos:], op) {
				m.op = op
				p.pos += len(op)
				break
			}
		}
		if m.op == "" || strings.HasPrefix(p.src[p.pos:], "=") {
			return p.errf(opPos, "unexpected %q after label %s (want = != =~ !~)", p.token(), m.label)
		}
		p.skipSpace()
		spos := p.pos
		v, err := p.str()
		if err != nil {
			return err
		}
		m.value = v
		if m.op == MatchRegexp || m.op == MatchNotRegex {
			re, err := regexp.Compile("^(?:" + v + ")$")
			if err != nil {
				return p.errf(spos, "bad regular expression %q: %v", v, err)
			}
			m.re = re
		}
		c.matchers = append(c.matchers, m)
		p.skipSpace()
		if p.pos < len(p.src) && p.src[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.pos < len(p.src) && p.src[p.pos] == '}' {
			p.pos++
			return nil
		}
		if p.pos == len(p.src) {
			return p.errf(p.pos, "unexpected end of expression (want , or })")
		}
		return p.errf(p.pos, "unexpected %q (want , or })", p.token())
	}
}

func (p *parser) str() (string, error) {
	if p.pos == len(p.src) {
		return "", p.errf(p.pos, "unexpected end of expression (want a quoted string)")
	}
	q := p.src[p.pos]
	if q != '"' && q != '\'' {
		return "", p.errf(p.pos, "unexpected %q (want a quoted string)", p.token())
	}
	start := p.pos
	i := p.pos + 1
	for ; i < len(p.src); i++ {
		if p.src[i] == '\\' {
			i++
			continue
		}
		if p.src[i] == q {
			break
		}
	}
	if i >= len(p.src) {
		return "", p.errf(start, "unterminated string")
	}
	raw := p.src[start+1 : i]
	if q == '\'' {
		// Go has no single-quoted strings: re-quote the body.
		raw = strings.ReplaceAll(raw, `\'`, `'`)
		raw = strings.ReplaceAll(raw, `"`, `\"`)
	}
	s, err := strconv.Unquote(`"` + raw + `"`)
	if err != nil {
		return "", p.errf(start, "bad string %s: invalid escape", p.src[start:i+1])
	}
	p.pos = i + 1
	return s, nil
}

// String returns the expression in canonical form.
func (e *Expr) String() string {
	var b strings.Builder
	for i, conj := range e.or {
		if i > 0 {
			b.WriteString(" or ")
		}
		for j, c := range conj {
			if j > 0 {
				b.WriteString(" and ")
			}
			b.WriteString(c.metric)
			if len(c.matchers) > 0 {
				b.WriteByte('{')
				for k, m := range c.matchers {
					if k > 0 {
						b.WriteString(", ")
					}
					b.WriteString(m.label + m.op + strconv.Quote(m.value))
				}
				b.WriteByte('}')
			}
			b.WriteString(" " + c.op + " " + strconv.FormatFloat(c.threshold, 'g', -1, 64))
		}
	}
	return b.String()
}

// Metrics returns the metric names the expression reads, sorted.
func (e *Expr) Metrics() []string {
	set := map[string]bool{}
	for _, conj := range e.or {
		for _, c := range conj {
			set[c.metric] = true
		}
	}
	out := make([]string, 0, len(set))
	for m := range set {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

// Result is one series that an expression selects, with whether the
// condition holds for it and the value shown in the alert (the value of
// the first comparison that holds, else of the first comparison).
type Result struct {
	Labels map[string]string
	Value  float64
	True   bool
}

func (m *matcher) matches(labels map[string]string) bool {
	v := labels[m.label]
	switch m.op {
	case MatchEqual:
		return v == m.value
	case MatchNotEqual:
		return v != m.value
	case MatchRegexp:
		return m.re.MatchString(v)
	default:
		return !m.re.MatchString(v)
	}
}

func compare(op string, v, t float64) bool {
	switch op {
	case ">":
		return v > t
	case ">=":
		return v >= t
	case "<":
		return v < t
	case "<=":
		return v <= t
	case "==":
		return v == t
	default:
		return v != t
	}
}

// Eval evaluates the expression over samples. Each comparison selects the
// samples of its metric whose labels match (a missing label reads as "");
// samples whose value is NaN are no data and are skipped. "a and b" pairs
// each series of a with each series of b whose shared label names agree
// (the pair's labels are their union) and holds when both hold; a series
// of a with no partner in b is kept, false. "a or b" pairs the same way
// and holds when either holds; series without a partner on either side
// are kept as they are. Results with the same label set are merged (true
// wins).
func (e *Expr) Eval(samples []Sample) []Result {
	var acc []Result
	for i, conj := range e.or {
		var cur []Result
		for j, c := range conj {
			r := c.eval(samples)
			if j == 0 {
				cur = r
			} else {
				cur = join(cur, r, true)
			}
		}
		if i == 0 {
			acc = cur
		} else {
			acc = join(acc, cur, false)
		}
	}
	return dedupe(acc)
}

func (c *comparison) eval(samples []Sample) []Result {
	var out []Result
	for _, s := range samples {
		if s.Metric != c.metric || math.IsNaN(s.Value) {
			continue
		}
		ok := true
		for k := range c.matchers {
			if !c.matchers[k].matches(s.Labels) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, Result{Labels: s.Labels, Value: s.Value, True: compare(c.op, s.Value, c.threshold)})
		}
	}
	return out
}

func compatible(a, b map[string]string) bool {
	if len(b) < len(a) {
		a, b = b, a
	}
	for k, v := range a {
		if w, ok := b[k]; ok && w != v {
			return false
		}
	}
	return true
}

func union(a, b map[string]string) map[string]string {
	out := make(map[string]string, len(a)+len(b))
	for k, v := range b {
		out[k] = v
	}
	for k, v := range a {
		out[k] = v
	}
	return out
}

func join(l, r []Result, and bool) []Result {
	var out []Result
	rMatched := make([]bool, len(r))
	for _, a := range l {
		matched := false
		for j, b := range r {
			if !compatible(a.Labels, b.Labels) {
				continue
			}
			matched = true
			rMatched[j] = true
			res := Result{Labels: union(a.Labels, b.Labels), Value: a.Value}
			if and {
				res.True = a.True && b.True
			} else {
				res.True = a.True || b.True
				if !a.True && b.True {
					res.Value = b.Value
				}
			}
			out = append(out, res)
		}
		if !matched {
			if and {
				a.True = false
			}
			out = append(out, a)
		}
	}
	if !and {
		for j, b := range r {
			if !rMatched[j] {
				out = append(out, b)
			}
		}
	}
	return out
}

func dedupe(rs []Result) []Result {
	idx := make(map[string]int, len(rs))
	out := rs[:0:0]
	for _, r := range rs {
		fp := Fingerprint(r.Labels)
		if i, ok := idx[fp]; ok {
			if r.True && !out[i].True {
				out[i] = r
			}
			continue
		}
		idx[fp] = len(out)
		out = append(out, r)
	}
	return out
}
