package gate

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/kiln-ml/kiln/errdefs"
)

// FieldError is one problem of a spec: the field's path
// ("spec.metrics[1].threshold.min"), what is wrong with it, and the line
// of the document where the field is, when known.
type FieldError = errdefs.FieldError

// FieldErrors are the problems of a spec, in document order. It is
// wrapped in an errdefs invalid-argument error; get it back with
// errors.As.
type FieldErrors = errdefs.FieldErrors

// maxFieldErrors bounds the problems reported for one document.
const maxFieldErrors = 20

// decoder checks a YAML node tree against a Go type, by the types' json
// tags, before it is decoded: unknown fields, wrong kinds of value and
// numbers out of range become FieldErrors with paths and lines. What it
// accepts, yaml.Node.Decode decodes without error.
type decoder struct {
	errs  FieldErrors
	lines map[string]int
}

func (d *decoder) fail(path string, n *yaml.Node, format string, args ...any) {
	if len(d.errs) >= maxFieldErrors {
		return
	}
	line := 0
	if n != nil {
		line = n.Line
	}
	d.errs = append(d.errs, FieldError{Path: path, Msg: fmt.Sprintf(format, args...), Line: line})
}

func joinPath(base, field string) string {
	if base == "" {
		return field
	}
	return base + "." + field
}

// fieldName returns the JSON name of a struct field ("" for "-").
func fieldName(f reflect.StructField) string {
	tag := f.Tag.Get("json")
	name, _, _ := strings.Cut(tag, ",")
	if name == "-" {
		return ""
	}
	if name == "" {
		return f.Name
	}
	return name
}

func (d *decoder) check(path string, n *yaml.Node, t reflect.Type) {
	if d.lines != nil {
		d.lines[path] = n.Line
	}
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			d.fail(path, n, "empty document")
			return
		}
		d.check(path, n.Content[0], t)
		return
	}
	null := n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
	if t.Kind() == reflect.Pointer {
		if null {
			return
		}
		t = t.Elem()
	}
	if null {
		return // the zero value
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			d.fail(path, n, "must be an object")
			return
		}
		fields := map[string]reflect.StructField{}
		var names []string
		for i := range t.NumField() {
			f := t.Field(i)
			if name := fieldName(f); name != "" && f.IsExported() {
				fields[name] = f
				names = append(names, name)
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			f, ok := fields[k.Value]
			if !ok || k.Kind != yaml.ScalarNode {
				d.fail(joinPath(path, k.Value), k, "unknown field (known: %s)", strings.Join(names, ", "))
				continue
			}
			d.check(joinPath(path, k.Value), v, f.Type)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			d.fail(path, n, "must be an object")
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode {
				d.fail(path, k, "keys must be strings")
				continue
			}
			d.check(path+"."+k.Value, v, t.Elem())
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.fail(path, n, "must be a list")
			return
		}
		for i, c := range n.Content {
			d.check(path+"["+strconv.Itoa(i)+"]", c, t.Elem())
		}
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(path, n, "must be a string")
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			d.fail(path, n, "must be true or false")
		}
	case reflect.Float64:
		if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!float" && n.ShortTag() != "!!int") {
			d.fail(path, n, "must be a number")
			return
		}
		var v float64
		if err := n.Decode(&v); err != nil {
			d.fail(path, n, "must be a number")
		}
	case reflect.Int, reflect.Int64:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			d.fail(path, n, "must be an integer")
			return
		}
		var v int64
		if err := n.Decode(&v); err != nil {
			d.fail(path, n, "must be an integer that fits in 64 bits")
		}
	default:
		d.fail(path, n, "unsupported field type %v", t)
	}
}
