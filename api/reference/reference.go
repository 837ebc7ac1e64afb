// Package reference renders Kiln's OpenAPI document (api/openapi.yaml) as
// a Markdown reference, docs/api.md: every path and method with its
// parameters, request body, responses and their schemas, in tables, then
// every named schema. `kiln docs api --out docs/api.md` writes it, and a
// test fails when the committed file is out of date.
package reference

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"
)

// maxDepth bounds how deep inline objects are flattened into dotted field
// names; deeper ones are shown as "object".
const maxDepth = 6

// Markdown renders the OpenAPI 3 document doc as a Markdown reference.
func Markdown(doc []byte) ([]byte, error) {
	var d document
	if err := yaml.Unmarshal(doc, &d); err != nil {
		return nil, fmt.Errorf("openapi document: %w", err)
	}
	if !strings.HasPrefix(d.OpenAPI, "3.") {
		return nil, fmt.Errorf("openapi document: version %q, want 3.x", d.OpenAPI)
	}
	// Twice: the first pass learns the anchors of the schemas' headings,
	// which come after the operations that link to them.
	first := &renderer{doc: &d, slugs: map[string]int{}, schemaSlugs: map[string]string{}}
	if err := first.render(); err != nil {
		return nil, err
	}
	r := &renderer{doc: &d, slugs: map[string]int{}, schemaSlugs: first.schemaSlugs}
	if err := r.render(); err != nil {
		return nil, err
	}
	return r.out.Bytes(), nil
}

type renderer struct {
	doc   *document
	out   bytes.Buffer
	body  bytes.Buffer
	slugs map[string]int
	// schemaSlugs are the anchors of the named schemas' headings.
	schemaSlugs map[string]string
	err         error
}

// group is the operations of one tag.
type group struct {
	tag  tag
	ops  []op
	slug string
}

type op struct {
	path string
	item *pathItem
	*operation
	slug string
}

func (r *renderer) render() error {
	d := r.doc
	groups := r.groups()
	title := d.Info.Title
	if title == "" {
		title = "API"
	}
	fmt.Fprintf(&r.out, "# %s reference\n\n", title)
	r.out.WriteString("Generated from [api/openapi.yaml](../api/openapi.yaml) by `kiln docs api --out docs/api.md`;\n")
	r.out.WriteString("do not edit by hand. A running server serves the document itself at\n")
	r.out.WriteString("`GET /api/v1/openapi.yaml`.\n\n")
	if d.Info.Description != "" {
		r.out.WriteString(Escape(strings.TrimSpace(d.Info.Description)) + "\n\n")
	}
	r.slug("Contents")
	// The body first, so that every heading's anchor is known.
	errSlug := r.errorsSection()
	for i := range groups {
		r.groupSection(&groups[i])
	}
	schemasSlug := r.schemasSection()
	if r.err != nil {
		return r.err
	}

	r.out.WriteString("## Contents\n\n")
	fmt.Fprintf(&r.out, "- [Errors](#%s)\n", errSlug)
	for _, g := range groups {
		fmt.Fprintf(&r.out, "- [%s](#%s)\n", groupTitle(g.tag), g.slug)
		for _, o := range g.ops {
			fmt.Fprintf(&r.out, "  - [`%s %s`](#%s) — %s\n", strings.ToUpper(o.Method), o.path, o.slug, text(o.Summary))
		}
	}
	fmt.Fprintf(&r.out, "- [Schemas](#%s)\n\n", schemasSlug)
	r.out.Write(r.body.Bytes())
	return nil
}

// groups sorts the operations by tag: the document's tags in their order,
// then tags used but not declared, in the order they first appear, then
// untagged operations. Within a tag, operations keep the document's order.
func (r *renderer) groups() []group {
	var gs []group
	index := map[string]int{}
	add := func(t tag) int {
		if i, ok := index[t.Name]; ok {
			return i
		}
		index[t.Name] = len(gs)
		gs = append(gs, group{tag: t})
		return len(gs) - 1
	}
	for _, t := range r.doc.Tags {
		add(t)
	}
	for _, p := range r.doc.Paths.Keys {
		item := r.doc.Paths.Values[p]
		for _, o := range item.Operations {
			name := ""
			if len(o.Tags) > 0 {
				name = o.Tags[0]
			}
			i := add(tag{Name: name})
			gs[i].ops = append(gs[i].ops, op{path: p, item: item, operation: o})
		}
	}
	// Untagged operations go last.
	if i, ok := index[""]; ok {
		g := gs[i]
		gs = append(append(gs[:i:i], gs[i+1:]...), g)
	}
	out := gs[:0]
	for _, g := range gs {
		if len(g.ops) > 0 {
			out = append(out, g)
		}
	}
	return out
}

func groupTitle(t tag) string {
	if t.Name == "" {
		return "Other"
	}
	s := strings.ReplaceAll(t.Name, "-", " ")
	return strings.ToUpper(s[:1]) + s[1:]
}

func (r *renderer) errorsSection() string {
	slug := r.heading(2, "Errors")
	r.body.WriteString("Every error answer has the same body, in the format below, and the\n")
	r.body.WriteString("HTTP status that its code maps to (see above). Operations list it as\n")
	r.body.WriteString("their `default` response.\n\n")
	if s, ok := r.doc.Components.Schemas.Values["Error"]; ok {
		r.fieldTable(s)
	}
	return slug
}

func (r *renderer) groupSection(g *group) {
	g.slug = r.heading(2, groupTitle(g.tag))
	if g.tag.Description != "" {
		r.body.WriteString(sentence(g.tag.Description) + "\n\n")
	}
	for i := range g.ops {
		g.ops[i].slug = r.operationSection(g.ops[i])
	}
}

func (r *renderer) operationSection(o op) string {
	slug := r.heading(3, strings.ToUpper(o.Method)+" "+o.path)
	b := &r.body
	if o.Summary != "" {
		b.WriteString(sentence(o.Summary) + "\n\n")
	}
	if o.Description != "" {
		b.WriteString(Escape(strings.TrimSpace(o.Description)) + "\n\n")
	}
	var notes []string
	if o.OperationID != "" {
		notes = append(notes, "operation `"+o.OperationID+"`")
	}
	if o.Security != nil && len(*o.Security) == 0 {
		notes = append(notes, "no sign-in needed")
	}
	if o.Deprecated {
		notes = append(notes, "**deprecated**")
	}
	if len(notes) > 0 {
		b.WriteString(strings.Join(notes, "; ") + "\n\n")
	}
	r.parameters(o)
	if o.RequestBody != nil {
		r.requestBody(o.RequestBody)
	}
	r.responses(o)
	return slug
}

// parameters renders the path item's and the operation's parameters; an
// operation's parameter replaces the path item's one of the same name and
// location.
func (r *renderer) parameters(o op) {
	var ps []*parameter
	seen := map[string]int{}
	for _, list := range [][]*parameter{o.item.Parameters, o.Parameters} {
		for _, p := range list {
			p = r.param(p)
			if p == nil {
				continue
			}
			key := p.In + "\x00" + p.Name
			if i, ok := seen[key]; ok {
				ps[i] = p
				continue
			}
			seen[key] = len(ps)
			ps = append(ps, p)
		}
	}
	if len(ps) == 0 {
		return
	}
	b := &r.body
	b.WriteString("**Parameters**\n\n| name | in | type | required | description |\n|---|---|---|---|---|\n")
	for _, p := range ps {
		typ, desc := "", p.Description
		if p.Schema != nil {
			typ = r.typeOf(p.Schema)
			desc = join(desc, p.Schema.Description, constraints(p.Schema))
		}
		fmt.Fprintf(b, "| `%s` | %s | %s | %s | %s |\n", p.Name, p.In, typ, yes(p.Required || p.In == "path"), cell(desc))
	}
	b.WriteString("\n")
}

func (r *renderer) param(p *parameter) *parameter {
	if p.Ref == "" {
		return p
	}
	section, name, err := refName(p.Ref)
	if err != nil || section != "parameters" {
		r.fail(fmt.Errorf("parameter reference %q: want #/components/parameters/NAME", p.Ref))
		return nil
	}
	q, ok := r.doc.Components.Parameters.Values[name]
	if !ok {
		r.fail(fmt.Errorf("parameter reference %q: no such parameter", p.Ref))
		return nil
	}
	return q
}

func (r *renderer) requestBody(rb *requestBody) {
	if rb.Ref != "" {
		section, name, err := refName(rb.Ref)
		q, ok := r.doc.Components.RequestBodies.Values[name]
		if err != nil || section != "requestBodies" || !ok {
			r.fail(fmt.Errorf("request body reference %q: no such request body", rb.Ref))
			return
		}
		rb = q
	}
	b := &r.body
	req := "optional"
	if rb.Required {
		req = "required"
	}
	fmt.Fprintf(b, "**Request body** (%s)", req)
	if rb.Description != "" {
		b.WriteString(": " + text(rb.Description))
	}
	b.WriteString("\n\n")
	r.contents(rb.Content)
}

// contents renders each media type of a body and its schema.
func (r *renderer) contents(c ordered[*mediaType]) {
	for _, mt := range c.Keys {
		m := c.Values[mt]
		if m == nil || m.Schema == nil {
			fmt.Fprintf(&r.body, "`%s`\n\n", mt)
			continue
		}
		s := m.Schema
		if objectWithFields(s) {
			fmt.Fprintf(&r.body, "`%s`: %s\n\n", mt, r.typeOf(s))
			r.fieldTable(s)
			continue
		}
		fmt.Fprintf(&r.body, "`%s`: %s", mt, r.typeOf(s))
		if d := join(s.Description, constraints(s)); d != "" {
			r.body.WriteString(" — " + text(d))
		}
		r.body.WriteString("\n\n")
		if s.Ref == "" && len(s.OneOf) > 0 {
			for i, alt := range s.OneOf {
				if objectWithFields(alt) {
					fmt.Fprintf(&r.body, "Alternative %d, %s:\n\n", i+1, r.typeOf(alt))
					r.fieldTable(alt)
				}
			}
		}
	}
}

func (r *renderer) responses(o op) {
	b := &r.body
	if len(o.Responses.Keys) == 0 {
		return
	}
	type resolved struct {
		status string
		*response
	}
	var rs []resolved
	b.WriteString("**Responses**\n\n| status | description | body |\n|---|---|---|\n")
	for _, status := range o.Responses.Keys {
		resp := r.response(o.Responses.Values[status])
		if resp == nil {
			continue
		}
		rs = append(rs, resolved{status, resp})
		var bodies []string
		for _, mt := range resp.Content.Keys {
			m := resp.Content.Values[mt]
			t := "`" + mt + "`"
			if m != nil && m.Schema != nil {
				if objectWithFields(m.Schema) {
					t += ": object, fields below"
				} else {
					t += ": " + r.typeOf(m.Schema)
				}
			}
			bodies = append(bodies, t)
		}
		desc := resp.Description
		for _, h := range resp.Headers.Keys {
			desc = strings.TrimSuffix(strings.TrimSpace(desc), ".") + "; header `" + h + "`: " + resp.Headers.Values[h].Description
		}
		fmt.Fprintf(b, "| %s | %s | %s |\n", status, cell(desc), strings.Join(bodies, "<br>"))
	}
	b.WriteString("\n")
	shown := map[*response]string{}
	for _, resp := range rs {
		tables := false
		for _, m := range resp.Content.Values {
			tables = tables || m != nil && m.Schema != nil && objectWithFields(m.Schema)
		}
		if !tables {
			continue
		}
		if first, ok := shown[resp.response]; ok {
			fmt.Fprintf(b, "Response %s: as %s.\n\n", resp.status, first)
			continue
		}
		shown[resp.response] = resp.status
		for _, mt := range resp.Content.Keys {
			m := resp.Content.Values[mt]
			if m != nil && m.Schema != nil && objectWithFields(m.Schema) {
				fmt.Fprintf(b, "Response %s (`%s`):\n\n", resp.status, mt)
				r.fieldTable(m.Schema)
			}
		}
	}
}

func (r *renderer) response(resp *response) *response {
	if resp == nil || resp.Ref == "" {
		return resp
	}
	section, name, err := refName(resp.Ref)
	q, ok := r.doc.Components.Responses.Values[name]
	if err != nil || section != "responses" || !ok {
		r.fail(fmt.Errorf("response reference %q: no such response", resp.Ref))
		return nil
	}
	return q
}

func (r *renderer) schemasSection() string {
	slug := r.heading(2, "Schemas")
	r.body.WriteString("The named schemas that operations refer to.\n\n")
	s := r.doc.Components.Schemas
	for _, name := range s.Keys {
		r.schemaSlugs[name] = r.heading(3, name)
		sc := s.Values[name]
		if sc.Description != "" {
			r.body.WriteString(sentence(sc.Description) + "\n\n")
		}
		if objectWithFields(sc) {
			for _, base := range sc.AllOf {
				if base.Ref != "" {
					fmt.Fprintf(&r.body, "Every field of %s, and:\n\n", r.typeOf(base))
				}
			}
			r.fieldTable(sc)
			continue
		}
		fmt.Fprintf(&r.body, "Type: %s", r.typeOf(sc))
		if c := constraints(sc); c != "" {
			r.body.WriteString(" — " + text(c))
		}
		r.body.WriteString("\n\n")
	}
	return slug
}

// objectWithFields reports whether s is an inline object whose fields are
// worth a table.
func objectWithFields(s *schema) bool {
	if s.Ref != "" {
		return false
	}
	if len(s.Properties.Keys) > 0 {
		return true
	}
	for _, a := range s.AllOf {
		if a.Ref == "" && len(a.Properties.Keys) > 0 {
			return true
		}
	}
	return false
}

// fieldTable renders the fields of an object schema, inline objects
// flattened into dotted names (items of arrays as name[].field).
func (r *renderer) fieldTable(s *schema) {
	b := &r.body
	b.WriteString("| field | type | required | description |\n|---|---|---|---|\n")
	r.fields(s, "", 0)
	b.WriteString("\n")
}

func (r *renderer) fields(s *schema, prefix string, depth int) {
	props := []*schema{s}
	for _, a := range s.AllOf {
		if a.Ref == "" {
			props = append(props, a)
		}
	}
	for _, ps := range props {
		req := map[string]bool{}
		for _, n := range ps.Required {
			req[n] = true
		}
		for _, n := range s.Required {
			req[n] = true
		}
		for _, name := range ps.Properties.Keys {
			f := ps.Properties.Values[name]
			if f == nil {
				f = &schema{}
			}
			desc := join(f.Description, constraints(f))
			fmt.Fprintf(&r.body, "| `%s%s` | %s | %s | %s |\n", prefix, name, r.typeOf(f), yes(req[name]), cell(desc))
			if depth+1 >= maxDepth {
				continue
			}
			switch {
			case objectWithFields(f):
				r.fields(f, prefix+name+".", depth+1)
			case f.Ref == "" && f.Items != nil && objectWithFields(f.Items):
				r.fields(f.Items, prefix+name+"[].", depth+1)
			case f.Ref == "" && f.AdditionalProperties != nil && f.AdditionalProperties.Schema != nil && objectWithFields(f.AdditionalProperties.Schema):
				r.fields(f.AdditionalProperties.Schema, prefix+name+".*.", depth+1)
			}
		}
	}
}

// typeOf renders a schema's type as short Markdown: links for named
// schemas, "array of X", "map of X", alternatives joined with "or".
func (r *renderer) typeOf(s *schema) string {
	t := r.baseType(s)
	if s.Nullable {
		t += " or null"
	}
	return t
}

func (r *renderer) baseType(s *schema) string {
	if s == nil {
		return "any"
	}
	if s.Ref != "" {
		section, name, err := refName(s.Ref)
		if err != nil || section != "schemas" {
			r.fail(fmt.Errorf("schema reference %q: want #/components/schemas/NAME", s.Ref))
			return name
		}
		if _, ok := r.doc.Components.Schemas.Values[name]; !ok {
			r.fail(fmt.Errorf("schema reference %q: no such schema", s.Ref))
		}
		slug, ok := r.schemaSlugs[name]
		if !ok {
			slug = githubSlug(name)
		}
		return "[" + name + "](#" + slug + ")"
	}
	if alts := s.OneOf; len(alts) > 0 || len(s.AnyOf) > 0 {
		alts = append(alts, s.AnyOf...)
		var ts []string
		for _, a := range alts {
			ts = append(ts, r.typeOf(a))
		}
		return strings.Join(ts, " or ")
	}
	if len(s.AllOf) > 0 {
		var ts []string
		for _, a := range s.AllOf {
			if a.Ref != "" || len(a.Properties.Keys) == 0 {
				ts = append(ts, r.typeOf(a))
			}
		}
		if len(s.Properties.Keys) > 0 || len(ts) < len(s.AllOf) {
			ts = append(ts, "more fields")
		}
		return strings.Join(ts, " + ")
	}
	switch s.Type {
	case "array":
		return "array of " + r.typeOf(s.Items)
	case "object", "":
		if s.Type == "" && len(s.Properties.Keys) == 0 && s.AdditionalProperties == nil {
			return "any"
		}
		if ap := s.AdditionalProperties; ap != nil && ap.Schema != nil && len(s.Properties.Keys) == 0 {
			return "map of " + r.typeOf(ap.Schema)
		}
		return "object"
	}
	if s.Format != "" {
		return s.Type + " (" + s.Format + ")"
	}
	return s.Type
}

// constraints renders a schema's enum, bounds, pattern, default and
// example as one phrase.
func constraints(s *schema) string {
	var parts []string
	if len(s.Enum) > 0 {
		vs := make([]string, len(s.Enum))
		for i, v := range s.Enum {
			vs[i] = code(literal(v))
		}
		if len(vs) == 1 {
			parts = append(parts, "always "+vs[0])
		} else {
			parts = append(parts, "one of "+strings.Join(vs, ", "))
		}
	}
	if s.Minimum != nil || s.Maximum != nil {
		lo, hi := "", ""
		if s.Minimum != nil {
			op := "≥ "
			if s.ExclusiveMinimum {
				op = "> "
			}
			lo = op + num(*s.Minimum)
		}
		if s.Maximum != nil {
			op := "≤ "
			if s.ExclusiveMaximum {
				op = "< "
			}
			hi = op + num(*s.Maximum)
		}
		parts = append(parts, strings.TrimSpace(strings.Join([]string{lo, hi}, ", ")))
	}
	if b := bounds("length", s.MinLength, s.MaxLength); b != "" {
		parts = append(parts, b)
	}
	if b := bounds("items", s.MinItems, s.MaxItems); b != "" {
		parts = append(parts, b)
	}
	if s.Pattern != "" {
		parts = append(parts, "pattern "+code(s.Pattern))
	}
	if s.Default != nil {
		parts = append(parts, "default "+code(literal(s.Default)))
	}
	if s.Example != nil {
		parts = append(parts, "e.g. "+code(literal(s.Example)))
	}
	if s.ReadOnly {
		parts = append(parts, "read-only")
	}
	if s.WriteOnly {
		parts = append(parts, "write-only")
	}
	if s.Deprecated {
		parts = append(parts, "deprecated")
	}
	for i, p := range parts {
		parts[i] = strings.Trim(p, ", ")
	}
	if len(parts) == 0 {
		return ""
	}
	return strings.Join(parts, "; ")
}

func bounds(what string, lo, hi *int) string {
	switch {
	case lo != nil && hi != nil:
		return fmt.Sprintf("%s %d to %d", what, *lo, *hi)
	case lo != nil:
		return fmt.Sprintf("%s ≥ %d", what, *lo)
	case hi != nil:
		return fmt.Sprintf("%s ≤ %d", what, *hi)
	}
	return ""
}

func num(f float64) string {
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// heading writes a heading into the body and returns its anchor, as
// GitHub makes it (duplicates get -1, -2 …).
func (r *renderer) heading(level int, title string) string {
	fmt.Fprintf(&r.body, "%s %s\n\n", strings.Repeat("#", level), title)
	return r.slug(title)
}

func (r *renderer) slug(title string) string {
	s := githubSlug(title)
	n := r.slugs[s]
	r.slugs[s] = n + 1
	if n > 0 {
		s += "-" + strconv.Itoa(n)
	}
	return s
}

// githubSlug is the anchor GitHub gives a heading: lower case, punctuation
// other than - and _ removed, spaces as -.
func githubSlug(title string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(title) {
		switch {
		case c == ' ':
			b.WriteByte('-')
		case c == '-' || c == '_' || unicode.IsLetter(c) || unicode.IsDigit(c) || unicode.Is(unicode.Mn, c):
			b.WriteRune(c)
		}
	}
	return b.String()
}

func (r *renderer) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

var spaces = regexp.MustCompile(`\s+`)

// text flattens a description onto one line, as literal Markdown.
func text(s string) string {
	return Escape(spaces.ReplaceAllString(strings.TrimSpace(s), " "))
}

// Escape escapes what Markdown would take for HTML or emphasis (<, >, *)
// outside code spans, which it leaves as they are.
func Escape(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		i := strings.IndexByte(s, '`')
		if i < 0 {
			b.WriteString(proseEscaper.Replace(s))
			break
		}
		b.WriteString(proseEscaper.Replace(s[:i]))
		s = s[i:]
		n := len(s) - len(strings.TrimLeft(s, "`"))
		fence := s[:n]
		end := strings.Index(s[n:], fence)
		if end < 0 {
			// An unclosed run of backticks is literal text.
			b.WriteString(fence)
			s = s[n:]
			continue
		}
		b.WriteString(s[:n+end+n])
		s = s[n+end+n:]
	}
	return b.String()
}

var proseEscaper = strings.NewReplacer("<", "&lt;", ">", "&gt;", "*", `\*`)

// cell makes text safe in a table cell.
func cell(s string) string {
	return strings.ReplaceAll(text(s), "|", `\|`)
}

// sentence starts with a capital and ends with a full stop.
func sentence(s string) string {
	s = text(s)
	if s == "" {
		return s
	}
	if !strings.HasSuffix(s, ".") && !strings.HasSuffix(s, ")") && !strings.HasSuffix(s, "`") {
		s += "."
	}
	first := []rune(s)[0]
	return string(unicode.ToUpper(first)) + s[len(string(first)):]
}

// code wraps s in a code span that survives backticks inside (cell
// escapes pipes in tables).
func code(s string) string {
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		return fence + " " + s + " " + fence
	}
	return fence + s + fence
}

func join(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, strings.TrimSuffix(p, "."))
		}
	}
	return strings.Join(out, ". ")
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return ""
}
