package reference

import (
	"encoding/json"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// The parts of an OpenAPI 3.0 document that the reference renders. Maps
// keep the document's order.

type document struct {
	OpenAPI    string             `yaml:"openapi"`
	Info       info               `yaml:"info"`
	Tags       []tag              `yaml:"tags"`
	Paths      ordered[*pathItem] `yaml:"paths"`
	Components components         `yaml:"components"`
}

type info struct {
	Title       string `yaml:"title"`
	Version     string `yaml:"version"`
	Description string `yaml:"description"`
}

type tag struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
}

type components struct {
	Parameters    ordered[*parameter]   `yaml:"parameters"`
	RequestBodies ordered[*requestBody] `yaml:"requestBodies"`
	Responses     ordered[*response]    `yaml:"responses"`
	Schemas       ordered[*schema]      `yaml:"schemas"`
}

// methods are the operations of a path item, in the order they are listed.
var methods = []string{"get", "put", "post", "delete", "patch", "head", "options"}

type pathItem struct {
	Parameters []*parameter
	// Operations in the document's order, with their (lower-case) method.
	Operations []*operation
}

func (p *pathItem) UnmarshalYAML(n *yaml.Node) error {
	var m ordered[yaml.Node]
	if err := n.Decode(&m); err != nil {
		return err
	}
	for _, k := range m.Keys {
		v := m.Values[k]
		switch {
		case k == "parameters":
			if err := v.Decode(&p.Parameters); err != nil {
				return err
			}
		case isMethod(k):
			op := &operation{Method: k}
			if err := v.Decode(op); err != nil {
				return err
			}
			p.Operations = append(p.Operations, op)
		case k == "summary" || k == "description" || strings.HasPrefix(k, "x-"):
		default:
			return fmt.Errorf("line %d: path item field %q is not supported", v.Line, k)
		}
	}
	return nil
}

func isMethod(k string) bool {
	for _, m := range methods {
		if k == m {
			return true
		}
	}
	return false
}

type operation struct {
	Method      string                 `yaml:"-"`
	Tags        []string               `yaml:"tags"`
	OperationID string                 `yaml:"operationId"`
	Summary     string                 `yaml:"summary"`
	Description string                 `yaml:"description"`
	Parameters  []*parameter           `yaml:"parameters"`
	RequestBody *requestBody           `yaml:"requestBody"`
	Responses   ordered[*response]     `yaml:"responses"`
	Security    *[]map[string][]string `yaml:"security"`
	Deprecated  bool                   `yaml:"deprecated"`
}

type parameter struct {
	Ref         string  `yaml:"$ref"`
	Name        string  `yaml:"name"`
	In          string  `yaml:"in"`
	Required    bool    `yaml:"required"`
	Description string  `yaml:"description"`
	Schema      *schema `yaml:"schema"`
}

type requestBody struct {
	Ref         string              `yaml:"$ref"`
	Description string              `yaml:"description"`
	Required    bool                `yaml:"required"`
	Content     ordered[*mediaType] `yaml:"content"`
}

type response struct {
	Ref         string              `yaml:"$ref"`
	Description string              `yaml:"description"`
	Headers     ordered[*header]    `yaml:"headers"`
	Content     ordered[*mediaType] `yaml:"content"`
}

type header struct {
	Description string  `yaml:"description"`
	Schema      *schema `yaml:"schema"`
}

type mediaType struct {
	Schema *schema `yaml:"schema"`
}

type schema struct {
	Ref                  string           `yaml:"$ref"`
	Type                 string           `yaml:"type"`
	Format               string           `yaml:"format"`
	Description          string           `yaml:"description"`
	Enum                 []any            `yaml:"enum"`
	Default              any              `yaml:"default"`
	Example              any              `yaml:"example"`
	Nullable             bool             `yaml:"nullable"`
	Pattern              string           `yaml:"pattern"`
	Minimum              *float64         `yaml:"minimum"`
	Maximum              *float64         `yaml:"maximum"`
	ExclusiveMinimum     bool             `yaml:"exclusiveMinimum"`
	ExclusiveMaximum     bool             `yaml:"exclusiveMaximum"`
	MinLength            *int             `yaml:"minLength"`
	MaxLength            *int             `yaml:"maxLength"`
	MinItems             *int             `yaml:"minItems"`
	MaxItems             *int             `yaml:"maxItems"`
	Required             []string         `yaml:"required"`
	Properties           ordered[*schema] `yaml:"properties"`
	Items                *schema          `yaml:"items"`
	AdditionalProperties *additional      `yaml:"additionalProperties"`
	OneOf                []*schema        `yaml:"oneOf"`
	AnyOf                []*schema        `yaml:"anyOf"`
	AllOf                []*schema        `yaml:"allOf"`
	ReadOnly             bool             `yaml:"readOnly"`
	WriteOnly            bool             `yaml:"writeOnly"`
	Deprecated           bool             `yaml:"deprecated"`
}

// schemaFields are the keys a schema may have; anything else is an error,
// so that the reference never silently drops a constraint.
var schemaFields = map[string]bool{
	"$ref": true, "type": true, "format": true, "description": true, "enum": true,
	"default": true, "example": true, "nullable": true, "pattern": true,
	"minimum": true, "maximum": true, "exclusiveMinimum": true, "exclusiveMaximum": true,
	"minLength": true, "maxLength": true, "minItems": true, "maxItems": true,
	"required": true, "properties": true, "items": true, "additionalProperties": true,
	"oneOf": true, "anyOf": true, "allOf": true, "readOnly": true, "writeOnly": true,
	"deprecated": true, "title": true,
}

func (s *schema) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a schema is not a mapping", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i].Value
		if !schemaFields[k] && !strings.HasPrefix(k, "x-") {
			return fmt.Errorf("line %d: schema field %q is not supported by the reference generator", n.Content[i].Line, k)
		}
	}
	type plain schema
	return n.Decode((*plain)(s))
}

// additional is additionalProperties: a boolean or a schema.
type additional struct {
	Allowed bool
	Schema  *schema
}

func (a *additional) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return n.Decode(&a.Allowed)
	}
	a.Allowed = true
	a.Schema = &schema{}
	return n.Decode(a.Schema)
}

// ordered is a YAML mapping that keeps its keys' order.
type ordered[T any] struct {
	Keys   []string
	Values map[string]T
}

func (o *ordered[T]) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: expected a mapping", n.Line)
	}
	o.Values = make(map[string]T, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i].Value
		var v T
		if err := n.Content[i+1].Decode(&v); err != nil {
			return err
		}
		if _, dup := o.Values[k]; dup {
			return fmt.Errorf("line %d: duplicate key %q", n.Content[i].Line, k)
		}
		o.Keys = append(o.Keys, k)
		o.Values[k] = v
	}
	return nil
}

// literal renders a YAML value as text: strings as they are, anything
// else as JSON.
func literal(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// refName is the last segment of a local reference, and its section:
// "#/components/schemas/Dataset" → ("schemas", "Dataset").
func refName(ref string) (section, name string, err error) {
	rest, ok := strings.CutPrefix(ref, "#/components/")
	if !ok {
		return "", "", fmt.Errorf("reference %q is not local to components", ref)
	}
	section, name, ok = strings.Cut(rest, "/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return "", "", fmt.Errorf("reference %q is malformed", ref)
	}
	return section, name, nil
}
