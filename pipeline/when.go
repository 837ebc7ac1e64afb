package pipeline

import (
	"errors"
	"regexp"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/errdefs"
)

// Limits of a when expression.
const (
	maxWhenBytes = 4096
	maxWhenDepth = 64
)

// EvalWhen evaluates a step's condition. The expression is split into
// tokens first and each operand's templates are expanded afterwards, so a
// value holding spaces or operators stays one operand. Operators:
// == != < <= > >= (numerically when both sides are numbers, else as
// strings; true and false compare case-insensitively), && || ! ( ), and
// `x in [a, b, …]`. Operands are 'quoted' or "quoted" strings, numbers,
// templates and bare words (strings: succeeded, churn@latest); an operand
// standing alone is true if it is true, 1, t (any case), false if it is
// false, 0, f or empty, and otherwise an error. && and || short-circuit,
// so the right side's templates are expanded only when needed. An empty
// expression is true. Errors are errdefs invalid.
func EvalWhen(expr string, sc *Scope) (bool, error) {
	if expr == "" {
		return true, nil
	}
	n, err := parseWhen(expr)
	if err != nil {
		return false, err
	}
	ev := &whenEval{sc: sc}
	v, err := ev.eval(n)
	if err != nil {
		return false, errdefs.Invalid("when %q: %s", clipText(expr), errdefs.Message(err))
	}
	return v, nil
}

// CheckWhen checks the syntax of expr (and of its templates) without
// evaluating it. An empty expression is valid.
func CheckWhen(expr string) error {
	if expr == "" {
		return nil
	}
	_, err := parseWhen(expr)
	return err
}

// whenRefs returns the references of a parsed expression.
func whenRefs(expr string) ([]Ref, error) {
	if expr == "" {
		return nil, nil
	}
	n, err := parseWhen(expr)
	if err != nil {
		return nil, err
	}
	var refs []Ref
	var walk func(n *whenNode)
	walk = func(n *whenNode) {
		if n == nil {
			return
		}
		refs = append(refs, n.refs...)
		for _, k := range n.kids {
			walk(k)
		}
	}
	walk(n)
	return refs, nil
}

// Token kinds.
const (
	whenTokEOF    = iota
	whenTokOp     // == != < <= > >= && || ! ( ) [ ] ,
	whenTokWord   // a bare word (templates included)
	whenTokString // a quoted string
)

type whenToken struct {
	kind int
	text string // the operator, or the raw operand (quotes removed)
	pos  int
}

func tokenizeWhen(s string) ([]whenToken, error) {
	var toks []whenToken
	i := 0
	for i < len(s) {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')' || c == '[' || c == ']' || c == ',':
			toks = append(toks, whenToken{whenTokOp, string(c), i})
			i++
		case c == '=' || c == '!' || c == '<' || c == '>':
			if i+1 < len(s) && s[i+1] == '=' {
				toks = append(toks, whenToken{whenTokOp, s[i : i+2], i})
				i += 2
			} else if c == '=' {
				return nil, errdefs.Invalid("at %d: use == to compare, not =", i+1)
			} else {
				toks = append(toks, whenToken{whenTokOp, string(c), i})
				i++
			}
		case c == '&' || c == '|':
			if i+1 < len(s) && s[i+1] == c {
				toks = append(toks, whenToken{whenTokOp, s[i : i+2], i})
				i += 2
			} else {
				return nil, errdefs.Invalid("at %d: use %c%c, not %c", i+1, c, c, c)
			}
		case c == '\'' || c == '"':
			j, err := whenScanQuoted(s, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, whenToken{whenTokString, s[i+1 : j-1], i})
			i = j
		default:
			j, err := whenScanWord(s, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, whenToken{whenTokWord, s[i:j], i})
			i = j
		}
	}
	return append(toks, whenToken{kind: whenTokEOF, pos: len(s)}), nil
}

// scanQuoted returns the end (after the closing quote) of the quoted
// string at s[i]; templates inside may contain that quote.
func whenScanQuoted(s string, i int) (int, error) {
	q := s[i]
	j := i + 1
	for j < len(s) {
		if strings.HasPrefix(s[j:], "{{") {
			k, err := whenScanBraces(s, j)
			if err != nil {
				return 0, err
			}
			j = k
			continue
		}
		if s[j] == q {
			return j + 1, nil
		}
		j++
	}
	return 0, errdefs.Invalid("at %d: unterminated string", i+1)
}

// scanWord returns the end of the bare word at s[i]: up to a space, an
// operator or a quote, templates included whole.
func whenScanWord(s string, i int) (int, error) {
	j := i
	for j < len(s) {
		if strings.HasPrefix(s[j:], "{{") {
			k, err := whenScanBraces(s, j)
			if err != nil {
				return 0, err
			}
			j = k
			continue
		}
		if strings.IndexByte(" \t\r\n()[],=!<>&|'\"", s[j]) >= 0 {
			break
		}
		j++
	}
	return j, nil
}

// scanBraces returns the end of the template at s[i] ("{{"), skipping a
// quoted string inside it.
func whenScanBraces(s string, i int) (int, error) {
	j := i + 2
	for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
		j++
	}
	if j < len(s) && (s[j] == '"' || s[j] == '\'') {
		k := strings.IndexByte(s[j+1:], s[j])
		if k < 0 {
			return 0, errdefs.Invalid("at %d: unterminated quote in template", i+1)
		}
		j += k + 2
	}
	k := strings.Index(s[j:], "}}")
	if k < 0 {
		return 0, errdefs.Invalid("at %d: unclosed template: missing }}", i+1)
	}
	return j + k + 2, nil
}

// Node kinds.
const (
	whenOr = iota
	whenAnd
	whenNot
	whenCmp   // kids[0] op kids[1]
	whenIn    // kids[0] in kids[1:]
	whenValue // an operand
)

type whenNode struct {
	kind int
	op   string
	kids []*whenNode
	// An operand: its text and whether it was quoted; refs are its
	// templates.
	text string
	refs []Ref
}

type whenParser struct {
	toks  []whenToken
	i     int
	depth int
}

func parseWhen(expr string) (*whenNode, error) {
	if len(expr) > maxWhenBytes {
		return nil, errdefs.Invalid("when: longer than %d bytes", maxWhenBytes)
	}
	fail := func(err error) (*whenNode, error) {
		return nil, errdefs.Invalid("when %q: %s", clipText(expr), errdefs.Message(err))
	}
	toks, err := tokenizeWhen(expr)
	if err != nil {
		return fail(err)
	}
	p := &whenParser{toks: toks}
	if p.peek().kind == whenTokEOF {
		return fail(errdefs.Invalid("empty expression"))
	}
	n, err := p.or()
	if err != nil {
		return fail(err)
	}
	if t := p.peek(); t.kind != whenTokEOF {
		return fail(p.unexpected(t))
	}
	return n, nil
}

func (p *whenParser) peek() whenToken { return p.toks[p.i] }
func (p *whenParser) next() whenToken { t := p.toks[p.i]; p.i++; return t }

func (p *whenParser) isOp(op string) bool {
	t := p.peek()
	return t.kind == whenTokOp && t.text == op
}

func (p *whenParser) unexpected(t whenToken) error {
	if t.kind == whenTokEOF {
		return errdefs.Invalid("unexpected end of expression")
	}
	text := t.text
	if t.kind == whenTokString {
		text = "'" + text + "'"
	}
	return errdefs.Invalid("at %d: unexpected %q", t.pos+1, clipText(text))
}

func (p *whenParser) enter() error {
	p.depth++
	if p.depth > maxWhenDepth {
		return errdefs.Invalid("nested more than %d deep", maxWhenDepth)
	}
	return nil
}

func (p *whenParser) or() (*whenNode, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	defer func() { p.depth-- }()
	n, err := p.and()
	if err != nil {
		return nil, err
	}
	for p.isOp("||") {
		p.next()
		r, err := p.and()
		if err != nil {
			return nil, err
		}
		n = &whenNode{kind: whenOr, kids: []*whenNode{n, r}}
	}
	return n, nil
}

func (p *whenParser) and() (*whenNode, error) {
	n, err := p.not()
	if err != nil {
		return nil, err
	}
	for p.isOp("&&") {
		p.next()
		r, err := p.not()
		if err != nil {
			return nil, err
		}
		n = &whenNode{kind: whenAnd, kids: []*whenNode{n, r}}
	}
	return n, nil
}

func (p *whenParser) not() (*whenNode, error) {
	if p.isOp("!") {
		p.next()
		if err := p.enter(); err != nil {
			return nil, err
		}
		defer func() { p.depth-- }()
		n, err := p.not()
		if err != nil {
			return nil, err
		}
		return &whenNode{kind: whenNot, kids: []*whenNode{n}}, nil
	}
	return p.cmp()
}

func (p *whenParser) cmp() (*whenNode, error) {
	l, err := p.primary()
	if err != nil {
		return nil, err
	}
	t := p.peek()
	switch {
	case t.kind == whenTokOp && (t.text == "==" || t.text == "!=" || t.text == "<" || t.text == "<=" || t.text == ">" || t.text == ">="):
		p.next()
		r, err := p.primary()
		if err != nil {
			return nil, err
		}
		if r.kind != whenValue || l.kind != whenValue {
			return nil, errdefs.Invalid("at %d: %s compares two values, not conditions", t.pos+1, t.text)
		}
		return &whenNode{kind: whenCmp, op: t.text, kids: []*whenNode{l, r}}, nil
	case t.kind == whenTokWord && t.text == "in":
		p.next()
		if l.kind != whenValue {
			return nil, errdefs.Invalid("at %d: in needs a value on its left", t.pos+1)
		}
		if !p.isOp("[") {
			return nil, errdefs.Invalid("at %d: in needs a list: x in [a, b]", t.pos+1)
		}
		p.next()
		n := &whenNode{kind: whenIn, kids: []*whenNode{l}}
		for !p.isOp("]") {
			if len(n.kids) > 1 {
				if !p.isOp(",") {
					return nil, p.unexpected(p.peek())
				}
				p.next()
			}
			v, err := p.operand()
			if err != nil {
				return nil, err
			}
			n.kids = append(n.kids, v)
		}
		p.next()
		return n, nil
	}
	return l, nil
}

func (p *whenParser) primary() (*whenNode, error) {
	if p.isOp("(") {
		p.next()
		n, err := p.or()
		if err != nil {
			return nil, err
		}
		if !p.isOp(")") {
			return nil, p.unexpected(p.peek())
		}
		p.next()
		return n, nil
	}
	return p.operand()
}

func (p *whenParser) operand() (*whenNode, error) {
	t := p.peek()
	if t.kind != whenTokWord && t.kind != whenTokString {
		return nil, p.unexpected(t)
	}
	if t.kind == whenTokWord && t.text == "in" {
		return nil, errdefs.Invalid("at %d: in needs a value on its left (quote 'in' to mean the word)", t.pos+1)
	}
	p.next()
	refs, err := References(t.text)
	if err != nil {
		return nil, errdefs.Invalid("at %d: %s", t.pos+1, errdefs.Message(err))
	}
	return &whenNode{kind: whenValue, text: t.text, refs: refs}, nil
}

type whenEval struct{ sc *Scope }

func (e *whenEval) value(n *whenNode) (string, error) {
	if len(n.refs) == 0 && !strings.Contains(n.text, "{{") {
		return n.text, nil
	}
	return Expand(n.text, e.sc)
}

func (e *whenEval) eval(n *whenNode) (bool, error) {
	switch n.kind {
	case whenOr, whenAnd:
		l, err := e.eval(n.kids[0])
		if err != nil {
			return false, err
		}
		if (n.kind == whenOr) == l {
			return l, nil
		}
		return e.eval(n.kids[1])
	case whenNot:
		v, err := e.eval(n.kids[0])
		return !v, err
	case whenCmp:
		l, err := e.value(n.kids[0])
		if err != nil {
			return false, err
		}
		r, err := e.value(n.kids[1])
		if err != nil {
			return false, err
		}
		return whenCompare(l, n.op, r), nil
	case whenIn:
		l, err := e.value(n.kids[0])
		if err != nil {
			return false, err
		}
		for _, k := range n.kids[1:] {
			r, err := e.value(k)
			if err != nil {
				return false, err
			}
			if whenCompare(l, "==", r) {
				return true, nil
			}
		}
		return false, nil
	}
	v, err := e.value(n)
	if err != nil {
		return false, err
	}
	switch strings.ToLower(v) {
	case "true", "t", "1":
		return true, nil
	case "false", "f", "0", "":
		return false, nil
	}
	return false, errdefs.Invalid("%q is not a condition: compare it (== != < <= > >=) or use true or false", clipText(v))
}

var whenNumberRE = regexp.MustCompile(`^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$`)

// number parses a decimal number (no NaN, Inf or hex).
func whenNumber(s string) (float64, bool) {
	if !whenNumberRE.MatchString(s) {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	// Out of range is ±Inf or 0, which still compare sensibly.
	return f, err == nil || errors.Is(err, strconv.ErrRange)
}

func whenIsBool(s string) bool {
	return strings.EqualFold(s, "true") || strings.EqualFold(s, "false")
}

// compare applies op to two operand values: numerically when both are
// numbers, case-insensitively when both are true/false, else as strings.
func whenCompare(l, op, r string) bool {
	c := 0
	if a, ok := whenNumber(l); ok {
		if b, ok := whenNumber(r); ok {
			switch {
			case a < b:
				c = -1
			case a > b:
				c = 1
			}
			return whenCmpResult(c, op)
		}
	}
	if whenIsBool(l) && whenIsBool(r) {
		l, r = strings.ToLower(l), strings.ToLower(r)
	}
	return whenCmpResult(strings.Compare(l, r), op)
}

func whenCmpResult(c int, op string) bool {
	switch op {
	case "==":
		return c == 0
	case "!=":
		return c != 0
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	case ">":
		return c > 0
	case ">=":
		return c >= 0
	}
	return false
}
