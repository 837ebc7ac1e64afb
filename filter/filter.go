// Package filter parses MLflow's search language: the filter strings of
// search-runs, search-experiments, the registry searches and logged-model
// search ("metrics.rmse < 1 and params.model = 'xgb'"), order_by clauses
// ("metrics.rmse DESC") and page tokens.
//
// Parsing is generic; each domain package decides which attributes and
// operators it allows and compiles clauses to parameterised SQL itself.
package filter

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/errdefs"
)

// Entity is what a clause's key refers to.
type Entity int

const (
	Attribute Entity = iota
	Metric
	Param
	Tag
	Dataset
)

var entityNames = [...]string{"attributes", "metrics", "params", "tags", "datasets"}

func (e Entity) String() string {
	if int(e) < len(entityNames) {
		return entityNames[e]
	}
	return "entity(" + strconv.Itoa(int(e)) + ")"
}

// prefixes maps every accepted identifier prefix to its entity.
var prefixes = map[string]Entity{
	"attribute": Attribute, "attributes": Attribute, "attr": Attribute, "run": Attribute,
	"metric": Metric, "metrics": Metric,
	"param": Param, "params": Param, "parameter": Param, "parameters": Param,
	"tag": Tag, "tags": Tag,
	"dataset": Dataset, "datasets": Dataset,
}

// Op is a comparison operator.
type Op string

const (
	Eq        Op = "="
	Ne        Op = "!="
	Gt        Op = ">"
	Ge        Op = ">="
	Lt        Op = "<"
	Le        Op = "<="
	Like      Op = "LIKE"
	ILike     Op = "ILIKE"
	In        Op = "IN"
	NotIn     Op = "NOT IN"
	IsNull    Op = "IS NULL"
	IsNotNull Op = "IS NOT NULL"
)

// Numeric reports whether op compares numbers (= != > >= < <=).
func (op Op) Numeric() bool {
	switch op {
	case Eq, Ne, Gt, Ge, Lt, Le:
		return true
	}
	return false
}

// Value is a clause's right-hand side: a number, a string or a list of strings.
type Value struct {
	Str   string
	Num   float64
	IsNum bool
	List  []string
}

// Clause is one comparison of a filter.
type Clause struct {
	Entity Entity
	Key    string
	Op     Op
	Value  Value
}

// String renders the clause in canonical syntax, which Parse accepts.
func (c Clause) String() string {
	var b strings.Builder
	b.WriteString(c.Entity.String())
	b.WriteString(".`")
	b.WriteString(c.Key)
	b.WriteString("` ")
	b.WriteString(string(c.Op))
	switch {
	case c.Op == IsNull || c.Op == IsNotNull:
	case c.Op == In || c.Op == NotIn:
		b.WriteString(" (")
		for i, s := range c.Value.List {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(quote(s))
		}
		b.WriteString(")")
	case c.Value.IsNum:
		b.WriteString(" ")
		b.WriteString(strconv.FormatFloat(c.Value.Num, 'g', -1, 64))
	default:
		b.WriteString(" ")
		b.WriteString(quote(c.Value.Str))
	}
	return b.String()
}

func quote(s string) string {
	if !strings.Contains(s, "'") {
		return "'" + s + "'"
	}
	return `"` + s + `"`
}

// Parse parses a filter string of AND-joined comparisons. An empty filter
// yields no clauses.
func Parse(filter string) ([]Clause, error) {
	if strings.TrimSpace(filter) == "" {
		return nil, nil
	}
	p := &parser{src: filter}
	var out []Clause
	for {
		c, err := p.clause()
		if err != nil {
			return nil, err
		}
		out = append(out, c)
		p.space()
		if p.eof() {
			return out, nil
		}
		w := p.word()
		if !strings.EqualFold(w, "and") {
			if strings.EqualFold(w, "or") {
				return nil, errdefs.Invalid("Invalid clause(s) in filter string: 'OR'. Only AND is supported: %q", filter)
			}
			return nil, errdefs.Invalid("Invalid clause(s) in filter string: %q", p.rest(p.pos-len(w)))
		}
	}
}

type parser struct {
	src string
	pos int
}

func (p *parser) eof() bool { return p.pos >= len(p.src) }

func (p *parser) rest(from int) string {
	if from < 0 {
		from = 0
	}
	if from > len(p.src) {
		from = len(p.src)
	}
	return p.src[from:]
}

func (p *parser) space() {
	for p.pos < len(p.src) {
		switch p.src[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func isWordByte(c byte) bool {
	return c == '_' || c == '-' || c == ':' || c == '/' || c == '.' ||
		(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80
}

// word reads a bare word (letters, digits and _-:/.), possibly empty.
func (p *parser) word() string {
	p.space()
	start := p.pos
	for p.pos < len(p.src) && isWordByte(p.src[p.pos]) {
		p.pos++
	}
	return p.src[start:p.pos]
}

// quoted reads a string quoted with q, starting at the opening quote. A
// doubled quote inside stands for one.
func (p *parser) quoted(q byte) (string, error) {
	start := p.pos
	p.pos++
	var b strings.Builder
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		p.pos++
		if c == q {
			if p.pos < len(p.src) && p.src[p.pos] == q {
				b.WriteByte(q)
				p.pos++
				continue
			}
			return b.String(), nil
		}
		b.WriteByte(c)
	}
	return "", errdefs.Invalid("Invalid filter string: unterminated quote at %q", p.rest(start))
}

// identifier reads `prefix.key`, `key`, or quoted forms of either part.
func (p *parser) identifier() (Entity, string, error) {
	p.space()
	start := p.pos
	var parts []string
	afterDot := false
	for {
		if p.eof() {
			if afterDot {
				return 0, "", errdefs.Invalid("Invalid filter string %q: empty key after %q", p.src, parts[0])
			}
			break
		}
		c := p.src[p.pos]
		if c == '"' || c == '`' {
			s, err := p.quoted(c)
			if err != nil {
				return 0, "", err
			}
			parts = append(parts, s)
		} else {
			w := p.wordNoDot()
			if w == "" {
				if afterDot {
					return 0, "", errdefs.Invalid("Invalid filter string %q: empty key after %q", p.src, parts[0])
				}
				break
			}
			parts = append(parts, w)
		}
		afterDot = p.pos < len(p.src) && p.src[p.pos] == '.'
		if !afterDot {
			break
		}
		p.pos++
	}
	if len(parts) == 0 || (len(parts) == 1 && parts[0] == "") {
		return 0, "", errdefs.Invalid("Invalid filter string %q: expected an identifier at %q", p.src, p.rest(start))
	}
	if len(parts) >= 2 {
		if e, ok := prefixes[strings.ToLower(parts[0])]; ok {
			key := strings.Join(parts[1:], ".")
			if key == "" {
				return 0, "", errdefs.Invalid("Invalid filter string %q: empty key after %q", p.src, parts[0])
			}
			return e, key, nil
		}
	}
	return Attribute, strings.Join(parts, "."), nil
}

func (p *parser) wordNoDot() string {
	start := p.pos
	for p.pos < len(p.src) && isWordByte(p.src[p.pos]) && p.src[p.pos] != '.' {
		p.pos++
	}
	return p.src[start:p.pos]
}

func (p *parser) op() (Op, error) {
	p.space()
	start := p.pos
	if p.eof() {
		return "", errdefs.Invalid("Invalid filter string %q: expected a comparator at the end", p.src)
	}
	switch c := p.src[p.pos]; c {
	case '=':
		p.pos++
		if p.pos < len(p.src) && p.src[p.pos] == '=' {
			p.pos++
		}
		return Eq, nil
	case '!':
		if strings.HasPrefix(p.src[p.pos:], "!=") {
			p.pos += 2
			return Ne, nil
		}
	case '<':
		switch {
		case strings.HasPrefix(p.src[p.pos:], "<="):
			p.pos += 2
			return Le, nil
		case strings.HasPrefix(p.src[p.pos:], "<>"):
			p.pos += 2
			return Ne, nil
		}
		p.pos++
		return Lt, nil
	case '>':
		if strings.HasPrefix(p.src[p.pos:], ">=") {
			p.pos += 2
			return Ge, nil
		}
		p.pos++
		return Gt, nil
	}
	w := strings.ToUpper(p.word())
	switch w {
	case "LIKE":
		return Like, nil
	case "ILIKE":
		return ILike, nil
	case "IN":
		return In, nil
	case "NOT":
		if strings.ToUpper(p.word()) == "IN" {
			return NotIn, nil
		}
	case "IS":
		save := p.pos
		w2 := strings.ToUpper(p.word())
		if w2 == "NULL" {
			return IsNull, nil
		}
		if w2 == "NOT" && strings.ToUpper(p.word()) == "NULL" {
			return IsNotNull, nil
		}
		p.pos = save
	}
	return "", errdefs.Invalid("Invalid comparator in filter string %q at %q", p.src, p.rest(start))
}

func (p *parser) value(op Op) (Value, error) {
	p.space()
	start := p.pos
	if p.eof() {
		return Value{}, errdefs.Invalid("Invalid filter string %q: missing value after %s", p.src, op)
	}
	c := p.src[p.pos]
	switch {
	case c == '\'' || c == '"':
		s, err := p.quoted(c)
		return Value{Str: s}, err
	case c == '(':
		p.pos++
		var list []string
		for {
			p.space()
			if p.eof() {
				return Value{}, errdefs.Invalid("Invalid filter string %q: unterminated list", p.src)
			}
			q := p.src[p.pos]
			if q != '\'' && q != '"' {
				return Value{}, errdefs.Invalid("Invalid filter string %q: list values must be quoted strings, at %q", p.src, p.rest(p.pos))
			}
			s, err := p.quoted(q)
			if err != nil {
				return Value{}, err
			}
			list = append(list, s)
			p.space()
			if p.eof() {
				return Value{}, errdefs.Invalid("Invalid filter string %q: unterminated list", p.src)
			}
			if p.src[p.pos] == ',' {
				p.pos++
				continue
			}
			if p.src[p.pos] == ')' {
				p.pos++
				return Value{List: list}, nil
			}
			return Value{}, errdefs.Invalid("Invalid filter string %q: expected ',' or ')' at %q", p.src, p.rest(p.pos))
		}
	}
	// A number: sign, digits, fraction, exponent.
	for p.pos < len(p.src) && strings.IndexByte("+-0123456789.eE", p.src[p.pos]) >= 0 {
		p.pos++
	}
	num := p.src[start:p.pos]
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || num == "" {
		return Value{}, errdefs.Invalid("Invalid filter string %q: expected a number or a quoted string at %q", p.src, p.rest(start))
	}
	return Value{Num: f, IsNum: true}, nil
}

func (p *parser) clause() (Clause, error) {
	p.space()
	if !p.eof() && p.src[p.pos] == '(' {
		return Clause{}, errdefs.Invalid("Invalid filter string %q: parentheses are not supported", p.src)
	}
	e, key, err := p.identifier()
	if err != nil {
		return Clause{}, err
	}
	op, err := p.op()
	if err != nil {
		return Clause{}, err
	}
	c := Clause{Entity: e, Key: key, Op: op}
	if op != IsNull && op != IsNotNull {
		if c.Value, err = p.value(op); err != nil {
			return Clause{}, err
		}
	}
	return c, check(p.src, c)
}

// check applies the entity-generic type rules.
func check(src string, c Clause) error {
	listOp := c.Op == In || c.Op == NotIn
	if listOp != (c.Value.List != nil) {
		if listOp {
			return errdefs.Invalid("Invalid filter string %q: %s needs a parenthesised list of quoted strings", src, c.Op)
		}
		return errdefs.Invalid("Invalid filter string %q: a list value needs IN or NOT IN", src)
	}
	switch c.Entity {
	case Metric:
		if !c.Op.Numeric() || !c.Value.IsNum {
			return errdefs.Invalid("Invalid filter string %q: metric %q must be compared to a number with one of =, !=, >, >=, <, <=", src, c.Key)
		}
	case Param, Tag:
		switch c.Op {
		case Eq, Ne, Like, ILike:
			if c.Value.IsNum {
				return errdefs.Invalid("Invalid filter string %q: expected a quoted string value for %s.%s", src, c.Entity, c.Key)
			}
		case IsNull, IsNotNull:
		default:
			return errdefs.Invalid("Invalid comparator '%s' for %s %q: use one of =, !=, LIKE, ILIKE", c.Op, strings.TrimSuffix(c.Entity.String(), "s"), c.Key)
		}
	}
	return nil
}

// OrderBy is one parsed order_by clause.
type OrderBy struct {
	Entity    Entity
	Key       string
	Ascending bool
}

// ParseOrderBy parses "<identifier> [ASC|DESC]"; the default is ascending.
func ParseOrderBy(s string) (OrderBy, error) {
	p := &parser{src: s}
	e, key, err := p.identifier()
	if err != nil {
		return OrderBy{}, errdefs.Invalid("Invalid order_by clause '%s'. Could not be parsed.", s)
	}
	ob := OrderBy{Entity: e, Key: key, Ascending: true}
	switch strings.ToUpper(p.word()) {
	case "", "ASC":
	case "DESC":
		ob.Ascending = false
	default:
		return OrderBy{}, errdefs.Invalid("Invalid order_by clause '%s'. Could not be parsed.", s)
	}
	p.space()
	if !p.eof() {
		return OrderBy{}, errdefs.Invalid("Invalid order_by clause '%s'. Could not be parsed.", s)
	}
	return ob, nil
}

// EncodePageToken returns MLflow's page token for a result offset.
func EncodePageToken(offset int) string {
	b, _ := json.Marshal(map[string]int{"offset": offset})
	return base64.StdEncoding.EncodeToString(b)
}

// DecodePageToken returns the offset of a page token; "" is offset 0.
func DecodePageToken(tok string) (int, error) {
	if tok == "" {
		return 0, nil
	}
	raw, err := base64.StdEncoding.DecodeString(tok)
	if err != nil {
		if raw, err = base64.URLEncoding.DecodeString(tok); err != nil {
			return 0, errdefs.Invalid("Invalid page token, could not base64-decode: %q", tok)
		}
	}
	var v struct {
		Offset *int `json:"offset"`
	}
	if err := json.Unmarshal(raw, &v); err != nil || v.Offset == nil || *v.Offset < 0 {
		return 0, errdefs.Invalid("Invalid page token %q: %s", tok, fmt.Sprint("expected an offset"))
	}
	return *v.Offset, nil
}
