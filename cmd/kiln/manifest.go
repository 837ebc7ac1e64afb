package main

// Reading declarative documents (kiln apply -f, kiln delete -f): files,
// folders or standard input holding one or more YAML (or JSON) documents
// separated by ---, each with a kind. Every problem is reported as
// FILE:LINE:COL: message, pointing at the YAML node at fault, the way a
// compiler reports errors: unknown fields, values of the wrong type, and
// the field errors of the kind's own validation (deploy.Endpoint.Validate
// returns field paths such as spec.routes[1].weight, which are mapped
// back to the lines they came from).

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/kiln-ml/kiln/deploy"
	"github.com/kiln-ml/kiln/deploy/gate"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/feature"
	"github.com/kiln-ml/kiln/monitor"
	"github.com/kiln-ml/kiln/pipeline"
)

// Limits of the manifest reader.
const (
	// maxManifestBytes bounds one file (or standard input).
	maxManifestBytes = 4 << 20
	// maxManifestNodes bounds the YAML nodes visited in one document,
	// aliases included (a "billion laughs" document ends here).
	maxManifestNodes = 100000
	// maxManifestErrors bounds the problems reported for one document.
	maxManifestErrors = 50
)

// Document kinds that kiln apply knows.
const kindGatePolicy = "GatePolicy"

var manifestKinds = []string{deploy.KindEndpoint, kindGatePolicy, monitor.KindMonitor, monitor.KindAlertReceiver, pipeline.KindPipeline,
	feature.KindEntity, feature.KindFeatureView}

// manifestDoc is one document of a manifest.
type manifestDoc struct {
	// Source is the file the document came from ("stdin" for -).
	Source string
	// Index is the document's position in its file, from 1.
	Index     int
	Line, Col int
	Kind      string
	Name      string
	// Endpoint is the document of kind Endpoint, normalized.
	Endpoint *deploy.Endpoint
	// Policy is the document of kind GatePolicy.
	Policy *gate.Policy
	// Monitor and Receiver are the documents of kinds Monitor and
	// AlertReceiver.
	Monitor  *monitor.Monitor
	Receiver *monitor.AlertReceiver
	// Pipeline is the document of kind Pipeline, normalized.
	Pipeline *pipeline.Pipeline
	// Entity and FeatureView are the documents of those kinds, normalized.
	Entity      *feature.Entity
	FeatureView *feature.FeatureView
	// JSON is the document as the API takes it.
	JSON json.RawMessage
	// pos maps the field paths of the document to where they are.
	pos map[string]docPos
}

type docPos struct{ line, col int }

// Ref names the document's object as kiln prints it: endpoint/churn.
func (d *manifestDoc) Ref() string { return strings.ToLower(d.Kind) + "/" + d.Name }

// where returns the position of a field path, or of its nearest
// enclosing field that the document has (spec.routes[0].model, when the
// route names no model, is reported at the route).
func (d *manifestDoc) where(path string) docPos {
	for {
		if p, ok := d.pos[path]; ok {
			return p
		}
		i := strings.LastIndexAny(path, ".[")
		if i <= 0 {
			return docPos{d.Line, d.Col}
		}
		path = path[:i]
	}
}

// manifestError is one problem of a manifest, at a position.
type manifestError struct {
	Source    string
	Line, Col int
	Msg       string
}

func (e *manifestError) Error() string {
	switch {
	case e.Line > 0 && e.Col > 0:
		return fmt.Sprintf("%s:%d:%d: %s", e.Source, e.Line, e.Col, e.Msg)
	case e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.Source, e.Line, e.Msg)
	}
	return e.Source + ": " + e.Msg
}

// manifestErrors are the problems of one or more manifests, in the order
// of the files and lines.
type manifestErrors []*manifestError

func (es manifestErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// readManifests reads the documents of the files, folders (their .yaml,
// .yml and .json files, in name order, not recursively) and "-" (stdin)
// named by paths. All the documents are read and checked before any is
// used: the error, a manifestErrors when documents are at fault, lists
// every problem found.
func readManifests(paths []string, stdin io.Reader) ([]*manifestDoc, error) {
	if len(paths) == 0 {
		return nil, errors.New("no manifest given: use -f FILE, -f DIR or -f - (standard input)")
	}
	var docs []*manifestDoc
	var errs manifestErrors
	seenStdin := false
	for _, p := range paths {
		var files []string
		switch st, err := os.Stat(p); {
		case p == "-":
			if seenStdin {
				return nil, errors.New("-f - (standard input) is given twice")
			}
			seenStdin = true
			files = []string{"-"}
		case err != nil:
			return nil, fmt.Errorf("read manifest: %w", err)
		case st.IsDir():
			entries, err := os.ReadDir(p)
			if err != nil {
				return nil, fmt.Errorf("read manifest folder: %w", err)
			}
			for _, e := range entries {
				switch strings.ToLower(filepath.Ext(e.Name())) {
				case ".yaml", ".yml", ".json":
					if !e.IsDir() {
						files = append(files, filepath.Join(p, e.Name()))
					}
				}
			}
			sort.Strings(files)
			if len(files) == 0 {
				return nil, fmt.Errorf("folder %s holds no .yaml, .yml or .json file", p)
			}
		default:
			files = []string{p}
		}
		for _, f := range files {
			source, data, err := readManifestFile(f, stdin)
			if err != nil {
				return nil, err
			}
			ds, err := parseManifests(source, data)
			var es manifestErrors
			if errors.As(err, &es) {
				errs = append(errs, es...)
			} else if err != nil {
				return nil, err
			}
			docs = append(docs, ds...)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("no documents in %s", strings.Join(paths, ", "))
	}
	return docs, nil
}

func readManifestFile(path string, stdin io.Reader) (string, []byte, error) {
	source, r := path, stdin
	if path == "-" {
		source = "stdin"
	} else {
		f, err := os.Open(path)
		if err != nil {
			return "", nil, fmt.Errorf("read manifest: %w", err)
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxManifestBytes+1))
	if err != nil {
		return "", nil, fmt.Errorf("read manifest %s: %w", source, err)
	}
	if len(data) > maxManifestBytes {
		return "", nil, fmt.Errorf("manifest %s is larger than %d MiB", source, maxManifestBytes>>20)
	}
	return source, data, nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseManifests parses the documents of one file. Empty documents (a
// leading or trailing ---, comments only) are skipped. The error lists
// every problem of every document (a manifestErrors); a YAML syntax error
// ends the file.
func parseManifests(source string, data []byte) ([]*manifestDoc, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*manifestDoc
	var errs manifestErrors
	for index := 1; ; index++ {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			e := &manifestError{Source: source, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
			if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
				e.Line, _ = strconv.Atoi(m[1])
				e.Msg = m[2]
				// yaml.v3 counts the lines of parser errors (unlike those
				// of scanner errors) from 0.
				if strings.HasPrefix(e.Msg, "did not find expected") && e.Line < bytes.Count(data, []byte("\n"))+1 {
					e.Line++
				}
			}
			errs = append(errs, e)
			break
		}
		if len(n.Content) == 0 || n.Content[0].Kind == yaml.ScalarNode && n.Content[0].ShortTag() == "!!null" {
			continue
		}
		d, es := parseDocument(source, index, n.Content[0])
		// Validation reports by field; people read by line.
		sort.SliceStable(es, func(i, j int) bool {
			if es[i].Line != es[j].Line {
				return es[i].Line < es[j].Line
			}
			return es[i].Col < es[j].Col
		})
		errs = append(errs, es...)
		if d != nil {
			docs = append(docs, d)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return docs, nil
}

// parseDocument checks and decodes one document by its kind.
func parseDocument(source string, index int, root *yaml.Node) (*manifestDoc, manifestErrors) {
	d := &manifestDoc{Source: source, Index: index, Line: root.Line, Col: root.Column, pos: map[string]docPos{}}
	c := &checker{doc: d}
	if root.Kind != yaml.MappingNode {
		c.failAt(root, "a document must be a mapping (apiVersion, kind, metadata, spec), got %s", describeNode(root))
		return nil, c.errs
	}
	kindNode := mappingValue(root, "kind")
	switch {
	case kindNode == nil:
		c.failAt(root, "document %d has no kind (known kinds: %s)", index, strings.Join(manifestKinds, ", "))
		return nil, c.errs
	case kindNode.Kind != yaml.ScalarNode:
		c.failAt(kindNode, "kind must be a string, got %s", describeNode(kindNode))
		return nil, c.errs
	}
	d.Kind = kindNode.Value
	switch d.Kind {
	case deploy.KindEndpoint:
		c.check("", root, reflect.TypeOf(deploy.Endpoint{}))
		if len(c.errs) > 0 {
			return nil, c.errs
		}
		var e deploy.Endpoint
		if err := root.Decode(&e); err != nil {
			c.failAt(root, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
			return nil, c.errs
		}
		e.Normalize()
		var fes deploy.FieldErrors
		if err := e.Validate(); errors.As(err, &fes) {
			for _, fe := range fes {
				c.failPath(fe.Path, "%s: %s", fe.Path, fe.Msg)
			}
			return nil, c.errs
		} else if err != nil {
			c.failAt(root, "%v", err)
			return nil, c.errs
		}
		data, err := json.Marshal(&e)
		if err != nil {
			c.failAt(root, "%v", err)
			return nil, c.errs
		}
		d.Endpoint, d.Name, d.JSON = &e, e.Metadata.Name, data
	case kindGatePolicy:
		// Checked here as the gate-policy API will check it; sent as it
		// is written.
		c.check("", root, reflect.TypeOf(gate.Policy{}))
		if len(c.errs) > 0 {
			return nil, c.errs
		}
		var p gate.Policy
		if err := root.Decode(&p); err != nil {
			c.failAt(root, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
			return nil, c.errs
		}
		var fes gate.FieldErrors
		if err := p.Validate(); errors.As(err, &fes) {
			for _, fe := range fes {
				if fe.Path == "" {
					c.failAt(root, "%s", fe.Msg)
				} else {
					c.failPath(fe.Path, "%s: %s", fe.Path, fe.Msg)
				}
			}
			return nil, c.errs
		} else if err != nil {
			c.failAt(root, "%s", errdefs.Message(err))
			return nil, c.errs
		}
		v := c.toJSON("", root)
		if len(c.errs) > 0 {
			return nil, c.errs
		}
		data, err := json.Marshal(v)
		if err != nil {
			c.failAt(root, "%v", err)
			return nil, c.errs
		}
		d.Policy, d.Name, d.JSON = &p, p.Metadata.Name, data
	case monitor.KindMonitor, monitor.KindAlertReceiver:
		// Checked here as the monitor API will check it; sent as JSON.
		var v interface{ Validate() error }
		if d.Kind == monitor.KindMonitor {
			c.check("", root, reflect.TypeOf(monitor.Monitor{}))
			v = &monitor.Monitor{}
		} else {
			c.check("", root, reflect.TypeOf(monitor.AlertReceiver{}))
			v = &monitor.AlertReceiver{}
		}
		if len(c.errs) > 0 {
			return nil, c.errs
		}
		if err := root.Decode(v); err != nil {
			c.failAt(root, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
			return nil, c.errs
		}
		switch x := v.(type) {
		case *monitor.Monitor:
			x.Normalize()
		case *monitor.AlertReceiver:
			if x.APIVersion == "" {
				x.APIVersion = monitor.APIVersion
			}
		}
		var fes monitor.FieldErrors
		if err := v.Validate(); errors.As(err, &fes) {
			for _, fe := range fes {
				if fe.Path == "" {
					c.failAt(root, "%s", fe.Msg)
				} else {
					c.failPath(fe.Path, "%s: %s", fe.Path, fe.Msg)
				}
			}
			return nil, c.errs
		} else if err != nil {
			c.failAt(root, "%s", errdefs.Message(err))
			return nil, c.errs
		}
		data, err := json.Marshal(v)
		if err != nil {
			c.failAt(root, "%v", err)
			return nil, c.errs
		}
		switch x := v.(type) {
		case *monitor.Monitor:
			d.Monitor, d.Name = x, x.Metadata.Name
		case *monitor.AlertReceiver:
			d.Receiver, d.Name = x, x.Metadata.Name
		}
		d.JSON = data
	case pipeline.KindPipeline:
		// Checked here as the pipeline API will check it; sent as JSON.
		c.check("", root, reflect.TypeOf(pipeline.Pipeline{}))
		if len(c.errs) > 0 {
			return nil, c.errs
		}
		var p pipeline.Pipeline
		if err := root.Decode(&p); err != nil {
			c.failAt(root, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
			return nil, c.errs
		}
		p.Normalize()
		var fes errdefs.FieldErrors
		if err := p.Validate(); errors.As(err, &fes) {
			for _, fe := range fes {
				if fe.Path == "" {
					c.failAt(root, "%s", fe.Msg)
				} else {
					c.failPath(fe.Path, "%s: %s", fe.Path, fe.Msg)
				}
			}
			return nil, c.errs
		} else if err != nil {
			c.failAt(root, "%s", errdefs.Message(err))
			return nil, c.errs
		}
		data, err := json.Marshal(&p)
		if err != nil {
			c.failAt(root, "%v", err)
			return nil, c.errs
		}
		d.Pipeline, d.Name, d.JSON = &p, p.Metadata.Name, data
	case feature.KindEntity, feature.KindFeatureView:
		// Checked here as the feature-store API will check it (that a
		// view's entities and source columns exist is checked there).
		var v interface {
			Normalize()
			Validate() error
		}
		if d.Kind == feature.KindEntity {
			c.check("", root, reflect.TypeOf(feature.Entity{}))
			v = &feature.Entity{}
		} else {
			c.check("", root, reflect.TypeOf(feature.FeatureView{}))
			v = &feature.FeatureView{}
		}
		if len(c.errs) > 0 {
			return nil, c.errs
		}
		if err := root.Decode(v); err != nil {
			c.failAt(root, "%s", strings.TrimPrefix(err.Error(), "yaml: "))
			return nil, c.errs
		}
		v.Normalize()
		var fes errdefs.FieldErrors
		if err := v.Validate(); errors.As(err, &fes) {
			for _, fe := range fes {
				if fe.Path == "" {
					c.failAt(root, "%s", fe.Msg)
				} else {
					c.failPath(fe.Path, "%s: %s", fe.Path, fe.Msg)
				}
			}
			return nil, c.errs
		} else if err != nil {
			c.failAt(root, "%s", errdefs.Message(err))
			return nil, c.errs
		}
		data, err := json.Marshal(v)
		if err != nil {
			c.failAt(root, "%v", err)
			return nil, c.errs
		}
		switch x := v.(type) {
		case *feature.Entity:
			d.Entity, d.Name = x, x.Metadata.Name
		case *feature.FeatureView:
			x.Canonical()
			d.FeatureView, d.Name = x, x.Metadata.Name
		}
		d.JSON = data
	default:
		c.failAt(kindNode, "unknown kind %q (known kinds: %s)", clipString(d.Kind), strings.Join(manifestKinds, ", "))
		return nil, c.errs
	}
	return d, nil
}

// mappingValue returns the value of key in a mapping node, or nil.
func mappingValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// checker walks a document's node tree against a Go type, records where
// each field path is and reports what would not decode, or would decode
// silently wrong (unknown fields, duplicate keys, wrong kinds of value).
// What it accepts, yaml.Node.Decode decodes without error.
type checker struct {
	doc   *manifestDoc
	errs  manifestErrors
	nodes int
}

func (c *checker) failAt(n *yaml.Node, format string, args ...any) {
	if len(c.errs) >= maxManifestErrors {
		return
	}
	line, col := c.doc.Line, c.doc.Col
	if n != nil && n.Line > 0 {
		line, col = n.Line, n.Column
	}
	c.errs = append(c.errs, &manifestError{Source: c.doc.Source, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)})
}

func (c *checker) failPath(path, format string, args ...any) {
	if len(c.errs) >= maxManifestErrors {
		return
	}
	p := c.doc.where(path)
	c.errs = append(c.errs, &manifestError{Source: c.doc.Source, Line: p.line, Col: p.col, Msg: fmt.Sprintf(format, args...)})
}

// visit counts a node against the budget and resolves aliases; it
// returns nil when the budget is spent.
func (c *checker) visit(n *yaml.Node) *yaml.Node {
	for depth := 0; n.Kind == yaml.AliasNode; depth++ {
		if n.Alias == nil || depth > 100 {
			c.failAt(n, "unresolved alias")
			return nil
		}
		n = n.Alias
	}
	c.nodes++
	if c.nodes == maxManifestNodes+1 {
		c.failAt(n, "document too large or too deeply aliased (more than %d nodes)", maxManifestNodes)
	}
	if c.nodes > maxManifestNodes {
		return nil
	}
	return n
}

var (
	durationType        = reflect.TypeOf(deploy.Duration(0))
	textUnmarshalerType = reflect.TypeOf((*encoding.TextUnmarshaler)(nil)).Elem()
)

// structField is a field of a struct as the document names it, with
// inline structs flattened.
type structField struct {
	name  string
	index []int
	typ   reflect.Type
}

func structFields(t reflect.Type) []structField {
	var out []structField
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		if tag == "" {
			tag = f.Tag.Get("json")
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(","+opts+",", ",inline,") && f.Type.Kind() == reflect.Struct {
			for _, sf := range structFields(f.Type) {
				sf.index = append([]int{i}, sf.index...)
				out = append(out, sf)
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out = append(out, structField{name: name, index: []int{i}, typ: f.Type})
	}
	return out
}

func joinField(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func (c *checker) record(path string, n *yaml.Node) {
	if _, ok := c.doc.pos[path]; !ok {
		c.doc.pos[path] = docPos{n.Line, n.Column}
	}
}

func (c *checker) check(path string, n *yaml.Node, t reflect.Type) {
	c.record(path, n)
	if n = c.visit(n); n == nil {
		return
	}
	null := n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if null {
		return // the zero value
	}
	where := func() string {
		if path == "" {
			return ""
		}
		return path + ": "
	}
	if t == durationType || reflect.PointerTo(t).Implements(textUnmarshalerType) {
		if n.Kind != yaml.ScalarNode {
			c.failAt(n, "%smust be a string, got %s", where(), describeNode(n))
			return
		}
		v := reflect.New(t).Interface().(encoding.TextUnmarshaler)
		if err := v.UnmarshalText([]byte(n.Value)); err != nil {
			c.failAt(n, "%s%v", where(), err)
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			c.failAt(n, "%smust be a mapping, got %s", where(), describeNode(n))
			return
		}
		fields := structFields(t)
		byName := make(map[string]structField, len(fields))
		for _, f := range fields {
			byName[f.name] = f
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				c.failAt(k, "%sfield names must be strings, got %s", where(), describeNode(k))
				continue
			}
			if line, dup := seen[k.Value]; dup {
				c.failAt(k, "duplicate field %q%s (first at line %d)", clipString(k.Value), inPath(path), line)
				continue
			}
			seen[k.Value] = k.Line
			f, ok := byName[k.Value]
			if !ok {
				msg := fmt.Sprintf("unknown field %q%s", clipString(k.Value), inPath(path))
				if s := suggest(k.Value, fields); s != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", s)
				}
				c.failAt(k, "%s", msg)
				continue
			}
			c.check(joinField(path, k.Value), v, f.typ)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			c.failAt(n, "%smust be a mapping, got %s", where(), describeNode(n))
			return
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!null" {
				c.failAt(k, "%skeys must be strings, got %s", where(), describeNode(k))
				continue
			}
			if line, dup := seen[k.Value]; dup {
				c.failAt(k, "duplicate key %q%s (first at line %d)", clipString(k.Value), inPath(path), line)
				continue
			}
			seen[k.Value] = k.Line
			c.check(joinField(path, k.Value), v, t.Elem())
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			c.failAt(n, "%smust be a list, got %s", where(), describeNode(n))
			return
		}
		for i, e := range n.Content {
			c.check(path+"["+strconv.Itoa(i)+"]", e, t.Elem())
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			c.failAt(n, "%smust be a string, got %s", where(), describeNode(n))
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			c.failAt(n, "%smust be true or false, got %s", where(), describeNode(n))
		}
	case reflect.Float32, reflect.Float64:
		var v float64
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!float" && n.ShortTag() != "!!int") || n.Decode(&v) != nil {
			c.failAt(n, "%smust be a number, got %s", where(), describeNode(n))
			return
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			c.failAt(n, "%smust be a finite number, got %s", where(), n.Value)
		}
	case reflect.Int, reflect.Int64, reflect.Int32:
		var v int64
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			c.failAt(n, "%smust be an integer, got %s", where(), describeNode(n))
			return
		}
		if err := n.Decode(&v); err != nil || reflect.Zero(t).OverflowInt(v) {
			c.failAt(n, "%sinteger out of range: %s", where(), clipString(n.Value))
		}
	case reflect.Interface:
		// Any value that JSON can carry (a pipeline parameter's default).
		c.toJSON(path, n)
	default:
		c.failAt(n, "%sunsupported field type %v", where(), t)
	}
}

func inPath(path string) string {
	if path == "" {
		return ""
	}
	return " in " + path
}

// toJSON converts a node tree to values that encoding/json writes,
// recording positions and reporting what JSON cannot carry.
func (c *checker) toJSON(path string, n *yaml.Node) any {
	c.record(path, n)
	if n = c.visit(n); n == nil {
		return nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!null" {
				c.failAt(k, "keys must be strings, got %s", describeNode(k))
				continue
			}
			if _, dup := m[k.Value]; dup {
				c.failAt(k, "duplicate key %q%s", clipString(k.Value), inPath(path))
				continue
			}
			if k.Value == "<<" {
				c.failAt(k, "merge keys (<<) are not supported")
				continue
			}
			m[k.Value] = c.toJSON(joinField(path, k.Value), v)
		}
		return m
	case yaml.SequenceNode:
		l := make([]any, len(n.Content))
		for i, e := range n.Content {
			l[i] = c.toJSON(path+"["+strconv.Itoa(i)+"]", e)
		}
		return l
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil
		case "!!bool":
			var b bool
			if n.Decode(&b) == nil {
				return b
			}
		case "!!int":
			var i int64
			if n.Decode(&i) == nil {
				return i
			}
			var u uint64
			if n.Decode(&u) == nil {
				return u
			}
		case "!!float":
			var f float64
			if n.Decode(&f) == nil {
				if math.IsNaN(f) || math.IsInf(f, 0) {
					c.failAt(n, "%s: must be a finite number, got %s", path, n.Value)
					return nil
				}
				return f
			}
		}
		return n.Value
	}
	c.failAt(n, "unsupported YAML node")
	return nil
}

// describeNode says what a node is, for messages: a mapping, a list, or
// the scalar itself.
func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	if n.ShortTag() == "!!str" {
		return strconv.Quote(clipString(n.Value))
	}
	return clipString(n.Value)
}

func clipString(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

// suggest returns the known field closest to an unknown one, when it is
// a likely typo (at most two edits away).
func suggest(name string, fields []structField) string {
	best, bestD := "", 3
	for _, f := range fields {
		if d := editDistance(strings.ToLower(name), f.name); d < bestD {
			best, bestD = f.name, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of two short strings (long
// ones are far from every field name).
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
