// Package filter parses MLflow's search language: the filter strings of
// search-runs, search-experiments, the registry searches and logged-model
// search ("metrics.rmse < 1 and params.model = 'xgb'"), order_by clauses
// ("metrics.rmse DESC") and page tokens.
//
// The grammar and the error messages follow MLflow's SearchUtils
// (mlflow/utils/search_utils.py): a filter is comparisons joined by AND,
// without OR or grouping parentheses. Parsing and the entity-generic type
// checks (metrics compare with numbers, params and tags with quoted strings)
// happen here; each domain package decides which attributes and operators it
// allows and compiles clauses to parameterised SQL itself.
package filter

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/errdefs"
)

// Entity is what a clause's key refers to.
type Entity int

// The entities a key can name, selected by its prefix ("metrics.", …).
const (
	Attribute Entity = iota
	Metric
	Param
	Tag
	Dataset
)

var entityNames = [...]string{"attributes", "metrics", "params", "tags", "datasets"}

// String returns the entity's canonical prefix without the dot ("metrics").
func (e Entity) String() string {
	if e >= 0 && int(e) < len(entityNames) {
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

// The comparison operators. "<>" parses as Ne.
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

// The comparator sets of MLflow's error messages, in a fixed order.
const (
	metricOps  = "{'>', '>=', '!=', '=', '<', '<='}"
	stringOps  = "{'!=', '=', 'LIKE', 'ILIKE'}"
	datasetOps = "{'!=', '=', 'LIKE', 'ILIKE', 'IN', 'NOT IN'}"
	allOps     = "{'>', '>=', '!=', '=', '<', '<=', 'LIKE', 'ILIKE', 'IN', 'NOT IN'}"
)

// Value is a clause's right-hand side: a number (IsNum, Num), a string (Str)
// or, for IN and NOT IN, a non-empty list of strings (List). IS NULL and IS
// NOT NULL have the zero Value.
type Value struct {
	Str   string
	Num   float64
	IsNum bool
	List  []string
}

// Clause is one comparison of a filter. Key is unquoted and without the
// entity prefix; attribute keys are kept as written (aliases such as
// "created" or "run name" are the domain's to canonicalise).
type Clause struct {
	Entity Entity
	Key    string
	Op     Op
	Value  Value
}

// String renders the clause in canonical syntax, which Parse accepts and
// parses back to the same clause.
func (c Clause) String() string {
	var b strings.Builder
	b.WriteString(c.Entity.String())
	b.WriteString(".")
	b.WriteString(quoteWith(c.Key, '`'))
	b.WriteString(" ")
	b.WriteString(string(c.Op))
	switch {
	case c.Op == IsNull || c.Op == IsNotNull:
	case c.Value.List != nil:
		b.WriteString(" (")
		for i, s := range c.Value.List {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(quoteWith(s, '\''))
		}
		b.WriteString(")")
	case c.Value.IsNum:
		b.WriteString(" ")
		b.WriteString(strconv.FormatFloat(c.Value.Num, 'g', -1, 64))
	default:
		b.WriteString(" ")
		b.WriteString(quoteWith(c.Value.Str, '\''))
	}
	return b.String()
}

// quoteWith quotes s with q, doubling any q inside (SQL style) and, for
// quotes other than the backtick, any backslash.
func quoteWith(s string, q byte) string {
	qs := string(q)
	s = strings.ReplaceAll(s, qs, qs+qs)
	if q != '`' {
		s = strings.ReplaceAll(s, `\`, `\\`)
	}
	return qs + s + qs
}

// Parse parses a filter string of AND-joined comparisons. An empty filter
// yields no clauses. Errors are errdefs.Invalid with MLflow's messages.
//
// Like MLflow, Parse tolerates stray ANDs ("a = 'x' AND", "AND a = 'x'").
// Inside a quoted string, the quote is written twice to stand for itself,
// as in SQL.
func Parse(filter string) ([]Clause, error) {
	p := &parser{src: filter}
	var out []Clause
	for {
		p.skipAnds()
		if p.eof() {
			return out, nil
		}
		c, err := p.clause()
		if err != nil {
			return nil, err
		}
		out = append(out, c)
		p.space()
		if p.eof() {
			return out, nil
		}
		at := p.pos
		w := p.peekWord()
		if strings.EqualFold(w, "or") {
			return nil, errdefs.Invalid("Invalid clause(s) in filter string: 'OR'")
		}
		if !strings.EqualFold(w, "and") {
			return nil, p.invalidClauses(at)
		}
	}
}

type parser struct {
	src string
	pos int
}

func (p *parser) eof() bool { return p.pos >= len(p.src) }

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

func (p *parser) space() {
	for p.pos < len(p.src) && isSpace(p.src[p.pos]) {
		p.pos++
	}
}

// isWordByte reports whether c can be part of a bare word: letters, digits,
// _ - : / . and any non-ASCII byte.
func isWordByte(c byte) bool {
	return c == '_' || c == '-' || c == ':' || c == '/' || c == '.' ||
		(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80
}

func isOpByte(c byte) bool { return c == '<' || c == '>' || c == '=' || c == '!' || c == '~' }

// peekWord returns the bare word at the current position without consuming it.
func (p *parser) peekWord() string {
	end := p.pos
	for end < len(p.src) && isWordByte(p.src[end]) {
		end++
	}
	return p.src[p.pos:end]
}

// word consumes and returns the bare word after any space, possibly empty.
func (p *parser) word() string {
	p.space()
	w := p.peekWord()
	p.pos += len(w)
	return w
}

// skipAnds consumes space and any number of AND keywords.
func (p *parser) skipAnds() {
	for {
		p.space()
		if w := p.peekWord(); strings.EqualFold(w, "and") {
			p.pos += len(w)
			continue
		}
		return
	}
}

// invalidClauses reports the tokens from byte offset from up to the next AND
// (or the end) as MLflow does: "Invalid clause(s) in filter string: 'a', '>'".
func (p *parser) invalidClauses(from int) error {
	toks := lex(p.src[from:])
	var parts []string
	for _, t := range toks {
		if strings.EqualFold(t, "and") && len(parts) > 0 {
			break
		}
		parts = append(parts, "'"+t+"'")
	}
	if len(parts) == 0 {
		parts = []string{"''"}
	}
	return errdefs.Invalid("Invalid clause(s) in filter string: %s", strings.Join(parts, ", "))
}

// lex splits s into rough SQL tokens for error messages: quoted strings,
// parenthesised groups, operator runs, bare words and single other bytes.
// It never fails: an unterminated quote or parenthesis runs to the end.
func lex(s string) []string {
	var toks []string
	i := 0
	for i < len(s) {
		c := s[i]
		start := i
		switch {
		case isSpace(c):
			i++
			continue
		case c == '\'' || c == '"' || c == '`':
			i, _ = skipQuoted(s, i)
		case c == '(':
			i, _ = skipParens(s, i)
		case isOpByte(c):
			for i < len(s) && isOpByte(s[i]) {
				i++
			}
		case isWordByte(c):
			// An identifier may mix bare and quoted parts: metrics.`a b`.
			for i < len(s) {
				if isWordByte(s[i]) {
					i++
				} else if (s[i] == '`' || s[i] == '"') && s[i-1] == '.' {
					i, _ = skipQuoted(s, i)
				} else {
					break
				}
			}
		default:
			i++
		}
		toks = append(toks, s[start:i])
	}
	return toks
}

// skipQuoted returns the offset just past the quoted string starting at i
// and whether it is terminated; an unterminated string runs to the end.
// Inside, a doubled quote stands for one; in '…' and "…" (not in `…`), as
// in sqlparse, a backslash escapes the quote or a backslash.
func skipQuoted(s string, i int) (int, bool) {
	q := s[i]
	i++
	for i < len(s) {
		if s[i] == '\\' && q != '`' && i+1 < len(s) && (s[i+1] == q || s[i+1] == '\\') {
			i += 2
			continue
		}
		if s[i] == q {
			if i+1 < len(s) && s[i+1] == q {
				i += 2
				continue
			}
			return i + 1, true
		}
		i++
	}
	return len(s), false
}

// skipParens returns the offset just past the parenthesised group starting
// at i and whether it is closed; an unclosed group runs to the end.
func skipParens(s string, i int) (int, bool) {
	depth := 0
	for i < len(s) {
		switch s[i] {
		case '\'', '"', '`':
			end, ok := skipQuoted(s, i)
			if !ok {
				return end, false
			}
			i = end
			continue
		case '(':
			depth++
		case ')':
			depth--
		}
		i++
		if depth == 0 {
			return i, true
		}
	}
	return len(s), false
}

// quoted reads a string quoted with the quote at the current position. A
// doubled quote inside stands for one. ok is false when it is unterminated.
func (p *parser) quoted() (string, bool) {
	q := p.src[p.pos]
	end, ok := skipQuoted(p.src, p.pos)
	if !ok {
		return "", false
	}
	raw := p.src[p.pos+1 : end-1]
	p.pos = end
	if !strings.ContainsRune(raw, rune(q)) && !strings.Contains(raw, "\\") {
		return raw, true
	}
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if (c == q || (c == '\\' && q != '`')) && i+1 < len(raw) && (raw[i+1] == q || raw[i+1] == c) {
			i++ // '' or \' or \\ stands for its second byte
			c = raw[i]
		}
		b.WriteByte(c)
	}
	return b.String(), true
}

// identifier reads prefix.key, key, or quoted forms of either part. ok is
// false when no identifier starts at the current position.
func (p *parser) identifier() (e Entity, key string, ok bool, err error) {
	p.space()
	var parts []string
	for {
		if p.eof() {
			return 0, "", false, nil
		}
		c := p.src[p.pos]
		if c == '"' || c == '`' {
			s, ok := p.quoted()
			if !ok {
				return 0, "", false, nil
			}
			parts = append(parts, s)
		} else {
			start := p.pos
			for p.pos < len(p.src) && isWordByte(p.src[p.pos]) && p.src[p.pos] != '.' {
				p.pos++
			}
			if p.pos == start {
				return 0, "", false, nil
			}
			parts = append(parts, p.src[start:p.pos])
		}
		if p.eof() || p.src[p.pos] != '.' {
			break
		}
		p.pos++
	}
	if len(parts) == 1 {
		if parts[0] == "" {
			return 0, "", false, nil
		}
		return Attribute, parts[0], true, nil
	}
	e, known := prefixes[strings.ToLower(parts[0])]
	if !known {
		return 0, "", false, errdefs.Invalid("Invalid entity type '%s'. Valid values are ['metric', 'parameter', 'tag', 'attribute', 'dataset']", parts[0])
	}
	key = strings.Join(parts[1:], ".")
	if key == "" {
		return 0, "", false, nil
	}
	return e, key, true, nil
}

// op reads a comparator. raw is the unrecognised operator text, if any.
func (p *parser) op() (op Op, raw string, ok bool) {
	p.space()
	if p.eof() {
		return "", "", false
	}
	if isOpByte(p.src[p.pos]) {
		start := p.pos
		for p.pos < len(p.src) && isOpByte(p.src[p.pos]) {
			p.pos++
		}
		switch s := p.src[start:p.pos]; s {
		case "=":
			return Eq, s, true
		case "!=", "<>":
			return Ne, s, true
		case ">":
			return Gt, s, true
		case ">=":
			return Ge, s, true
		case "<":
			return Lt, s, true
		case "<=":
			return Le, s, true
		default:
			return "", s, false
		}
	}
	save := p.pos
	switch strings.ToUpper(p.word()) {
	case "LIKE":
		return Like, "", true
	case "ILIKE":
		return ILike, "", true
	case "IN":
		return In, "", true
	case "NOT":
		if strings.EqualFold(p.word(), "IN") {
			return NotIn, "", true
		}
	case "IS":
		switch strings.ToUpper(p.word()) {
		case "NULL":
			return IsNull, "", true
		case "NOT":
			if strings.EqualFold(p.word(), "NULL") {
				return IsNotNull, "", true
			}
		}
	}
	p.pos = save
	return "", "", false
}

// valueKind classifies a parsed right-hand side.
type valueKind int

const (
	noValue   valueKind = iota // nothing usable: the clause is malformed
	numValue                   // a numeric literal
	strValue                   // a quoted string
	listValue                  // a parenthesised list of quoted strings
	bareWord                   // an unquoted word such as NaN or abc
)

// value reads a right-hand side, returning its raw text for messages.
func (p *parser) value() (Value, valueKind, string, error) {
	p.space()
	if p.eof() {
		return Value{}, noValue, "", nil
	}
	start := p.pos
	c := p.src[p.pos]
	switch {
	case c == '\'' || c == '"':
		s, ok := p.quoted()
		if !ok {
			return Value{}, noValue, "", nil
		}
		return Value{Str: s}, strValue, p.src[start:p.pos], nil
	case c == '(':
		return p.list()
	}
	if n := numberLen(p.src[p.pos:]); n > 0 && (p.pos+n == len(p.src) || !isWordByte(p.src[p.pos+n])) {
		raw := p.src[p.pos : p.pos+n]
		f, err := strconv.ParseFloat(raw, 64)
		if err == nil && !math.IsInf(f, 0) {
			p.pos += n
			return Value{Num: f, IsNum: true}, numValue, raw, nil
		}
	}
	if w := p.peekWord(); w != "" && !strings.EqualFold(w, "and") {
		p.pos += len(w)
		return Value{}, bareWord, w, nil
	}
	return Value{}, noValue, "", nil
}

// numberLen returns the length of the numeric literal at the start of s
// (-?(digits[.digits]|.digits)([eE][+-]?digits)?), or 0.
func numberLen(s string) int {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
			n++
		}
		return n
	}
	n := digits()
	if i < len(s) && s[i] == '.' {
		i++
		n += digits()
	}
	if n == 0 {
		return 0
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			i = j
		}
	}
	return i
}

// list reads a parenthesised list of quoted strings; a trailing comma is
// allowed, as in MLflow.
func (p *parser) list() (Value, valueKind, string, error) {
	start := p.pos
	end, closed := skipParens(p.src, start)
	if !closed {
		return Value{}, noValue, "", nil
	}
	raw := p.src[start:end]
	p.pos++
	list := []string{}
	for {
		p.space()
		if p.src[p.pos] == ')' {
			p.pos++
			break
		}
		q := p.src[p.pos]
		if q != '\'' && q != '"' {
			return Value{}, noValue, "", errdefs.Invalid("While parsing a list in the query, expected string value, punctuation, or whitespace, but got different type in list: %s", raw)
		}
		s, _ := p.quoted() // terminated: lex matched the closing parenthesis
		list = append(list, s)
		p.space()
		switch p.src[p.pos] {
		case ',':
			p.pos++
		case ')':
		default:
			return Value{}, noValue, "", errdefs.Invalid("While parsing a list in the query, expected string value, punctuation, or whitespace, but got different type in list: %s", raw)
		}
	}
	if len(list) == 0 {
		return Value{}, noValue, "", errdefs.Invalid("While parsing a list in the query, expected a non-empty list of string values, but got empty list")
	}
	return Value{List: list}, listValue, raw, nil
}

func (p *parser) clause() (Clause, error) {
	p.space()
	start := p.pos
	e, key, ok, err := p.identifier()
	if err != nil {
		return Clause{}, err
	}
	if !ok {
		return Clause{}, p.invalidClauses(start)
	}
	op, rawOp, ok := p.op()
	if !ok {
		if rawOp == "" {
			return Clause{}, p.invalidClauses(start)
		}
		return Clause{}, invalidComparator(e, rawOp)
	}
	c := Clause{Entity: e, Key: key, Op: op}
	if op == IsNull || op == IsNotNull {
		return c, check(c, noValue, "")
	}
	v, kind, raw, err := p.value()
	if err != nil {
		return Clause{}, err
	}
	if kind == noValue || ((op == In || op == NotIn) && kind != listValue) {
		return Clause{}, p.invalidClauses(start)
	}
	c.Value = v
	return c, check(c, kind, raw)
}

func invalidComparator(e Entity, op string) error {
	set := allOps
	switch e {
	case Metric:
		set = metricOps
	case Param, Tag:
		set = stringOps
	case Dataset:
		set = datasetOps
	}
	return errdefs.Invalid("Invalid comparator '%s' not one of '%s'", op, set)
}

// check applies the entity-generic type rules, value type first and then
// the comparator, in MLflow's order and with its messages.
func check(c Clause, kind valueKind, raw string) error {
	switch c.Entity {
	case Metric:
		if kind != numValue && kind != noValue {
			return errdefs.Invalid("Expected numeric value type for metric. Found %s", raw)
		}
		if !c.Op.Numeric() {
			return invalidComparator(c.Entity, string(c.Op))
		}
	case Param, Tag:
		name := "parameter"
		if c.Entity == Tag {
			name = "tag"
		}
		switch kind {
		case numValue, listValue:
			return errdefs.Invalid("Expected a quoted string value for %s (e.g. 'my-value'). Got value %s", name, raw)
		case bareWord:
			return notQuoted(raw)
		}
		switch c.Op {
		case Eq, Ne, Like, ILike, IsNull, IsNotNull:
		default:
			return invalidComparator(c.Entity, string(c.Op))
		}
	case Dataset:
		switch kind {
		case numValue:
			return errdefs.Invalid("Expected a quoted string value for dataset attributes. Got value %s", raw)
		case bareWord:
			return notQuoted(raw)
		}
		switch c.Op {
		case Eq, Ne, Like, ILike, In, NotIn:
		default:
			return invalidComparator(c.Entity, string(c.Op))
		}
	default:
		if kind == bareWord {
			return notQuoted(raw)
		}
	}
	if kind == listValue && c.Op != In && c.Op != NotIn {
		return errdefs.Invalid("Invalid comparator '%s' for a list of values: only IN and NOT IN take a list", c.Op)
	}
	return nil
}

func notQuoted(raw string) error {
	return errdefs.Invalid("Parameter value is either not quoted or unidentified quote types used for string value %s. Use either single or double quotes.", raw)
}

// OrderBy is one parsed order_by clause.
type OrderBy struct {
	Entity    Entity
	Key       string
	Ascending bool
}

// ParseOrderBy parses "<identifier> [ASC|DESC]" (case-insensitive); the
// default is ascending. Keys may be quoted with backticks or double quotes.
func ParseOrderBy(s string) (OrderBy, error) {
	bad := errdefs.Invalid("Invalid order_by clause '%s'. Could not be parsed.", s)
	p := &parser{src: s}
	e, key, ok, err := p.identifier()
	if err != nil {
		return OrderBy{}, err
	}
	if !ok {
		return OrderBy{}, bad
	}
	ob := OrderBy{Entity: e, Key: key, Ascending: true}
	p.space()
	if p.eof() {
		return ob, nil
	}
	if !isSpace(p.src[p.pos-1]) {
		return OrderBy{}, bad
	}
	w := p.word()
	p.space()
	if w == "" || !p.eof() {
		return OrderBy{}, bad
	}
	switch strings.ToUpper(w) {
	case "ASC":
	case "DESC":
		ob.Ascending = false
	default:
		return OrderBy{}, errdefs.Invalid("Invalid ordering key in order_by clause '%s'.", s)
	}
	return ob, nil
}

// EncodePageToken returns MLflow's page token for a result offset:
// base64 of the JSON {"offset": N}, byte for byte as MLflow writes it.
func EncodePageToken(offset int) string {
	return base64.StdEncoding.EncodeToString(fmt.Appendf(nil, `{"offset": %d}`, offset))
}

// DecodePageToken returns the offset of a page token; "" is offset 0. Like
// MLflow it accepts the offset as a JSON number or a numeric string.
func DecodePageToken(tok string) (int, error) {
	if tok == "" {
		return 0, nil
	}
	raw, err := base64.StdEncoding.DecodeString(tok)
	if err != nil {
		if raw, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(tok, "=")); err != nil {
			if raw, err = base64.URLEncoding.DecodeString(tok); err != nil {
				return 0, errdefs.Invalid("Invalid page token, could not base64-decode")
			}
		}
	}
	var v map[string]json.RawMessage
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, errdefs.Invalid("Invalid page token, decoded value=%s", raw)
	}
	off, ok := v["offset"]
	if !ok || string(off) == "null" {
		return 0, errdefs.Invalid("Invalid page token, parsed value=%s", raw)
	}
	var n int
	if err := json.Unmarshal(off, &n); err != nil {
		var s string
		if json.Unmarshal(off, &s) != nil {
			return 0, errdefs.Invalid("Invalid page token, parsed value=%s", raw)
		}
		if n, err = strconv.Atoi(strings.TrimSpace(s)); err != nil {
			return 0, errdefs.Invalid("Invalid page token, not stringable %s", s)
		}
	}
	if n < 0 {
		return 0, errdefs.Invalid("Invalid page token, parsed value=%s", raw)
	}
	return n, nil
}
