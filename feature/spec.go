package feature

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
)

// The document types of this package.
const (
	APIVersion      = "kiln.dev/v1"
	KindEntity      = "Entity"
	KindFeatureView = "FeatureView"
)

// Metadata names a document.
type Metadata struct {
	Name        string            `json:"name" yaml:"name"`
	Description string            `json:"description,omitempty" yaml:"description,omitempty"`
	Labels      map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
}

// Entity is an entity document: the thing features describe, and the
// columns that identify one (Feast's Entity):
//
//	apiVersion: kiln.dev/v1
//	kind: Entity
//	metadata: {name: customer}
//	spec: {join_keys: [customer_id]}
type Entity struct {
	APIVersion string     `json:"apiVersion" yaml:"apiVersion"`
	Kind       string     `json:"kind" yaml:"kind"`
	Metadata   Metadata   `json:"metadata" yaml:"metadata"`
	Spec       EntitySpec `json:"spec" yaml:"spec"`
}

// EntitySpec lists the join keys of an entity.
type EntitySpec struct {
	// JoinKeys are the columns whose values identify one entity, in
	// order (one for most entities; several for a composite key).
	JoinKeys []string `json:"join_keys" yaml:"join_keys"`
}

// FeatureView is a feature-view document: typed features read from a
// source table with an event-timestamp column, for one or more entities:
//
//	apiVersion: kiln.dev/v1
//	kind: FeatureView
//	metadata: {name: customer_stats}
//	spec:
//	  entities: [customer]
//	  source: {dataset: "customer-stats@latest"}   # or {path: s3://bucket/stats.parquet}
//	  timestamp_field: event_timestamp
//	  created_timestamp_field: created           # optional: breaks ties
//	  ttl: 30d                                   # optional: 0 = no limit
//	  features:
//	    - {name: orders_7d, type: int64}
//	    - {name: spend_7d, type: float64, default: 0}
//	  online: true                               # the default
type FeatureView struct {
	APIVersion string          `json:"apiVersion" yaml:"apiVersion"`
	Kind       string          `json:"kind" yaml:"kind"`
	Metadata   Metadata        `json:"metadata" yaml:"metadata"`
	Spec       FeatureViewSpec `json:"spec" yaml:"spec"`
}

// FeatureViewSpec is what a feature view reads and serves.
type FeatureViewSpec struct {
	// Entities name Entity documents; the view's join keys are theirs, in
	// this order.
	Entities []string `json:"entities" yaml:"entities"`
	Source   Source   `json:"source" yaml:"source"`
	// TimestampField is the source column with each row's event time.
	TimestampField string `json:"timestamp_field" yaml:"timestamp_field"`
	// CreatedTimestampField, if set, is the source column with the time a
	// row was written: among rows of one key with the same event time the
	// latest created wins.
	CreatedTimestampField string `json:"created_timestamp_field,omitempty" yaml:"created_timestamp_field,omitempty"`
	// TTL bounds how old a feature row may be relative to the time it is
	// asked for (the entity row's time in a training set; now online).
	// Zero means no limit.
	TTL      Duration  `json:"ttl,omitempty" yaml:"ttl,omitempty"`
	Features []Feature `json:"features" yaml:"features"`
	// Online, false, keeps the view out of the online store (training sets
	// only). Nil means true.
	Online *bool `json:"online,omitempty" yaml:"online,omitempty"`
}

// IsOnline says whether the view is materialized into the online store.
func (s *FeatureViewSpec) IsOnline() bool { return s.Online == nil || *s.Online }

// Source is where a feature view's rows are: exactly one of Dataset (a
// Kiln dataset version, "name@N" or "name@latest"; "name" means latest)
// and Path (a Parquet, CSV or JSON Lines file or folder: a local path or
// an s3://, gs://, azblob:// or file:// URL).
type Source struct {
	Dataset string `json:"dataset,omitempty" yaml:"dataset,omitempty"`
	Path    string `json:"path,omitempty" yaml:"path,omitempty"`
	// Format forces csv, parquet or jsonl; empty detects it.
	Format string `json:"format,omitempty" yaml:"format,omitempty"`
}

// Value types of a feature.
const (
	TypeInt64   = "int64"
	TypeFloat64 = "float64"
	TypeString  = "string"
	TypeBool    = "bool"
)

// Feature is one typed column of a view.
type Feature struct {
	Name string `json:"name" yaml:"name"`
	// Type is int64, float64, string or bool.
	Type        string `json:"type" yaml:"type"`
	Description string `json:"description,omitempty" yaml:"description,omitempty"`
	// Default, if set, is served online for an entity without a value
	// (when the endpoint or request asks for defaults).
	Default any `json:"default,omitempty" yaml:"default,omitempty"`
}

// Ref is a feature reference "view:feature".
type Ref struct{ View, Feature string }

func (r Ref) String() string { return r.View + ":" + r.Feature }

// ParseRef reads "view:feature".
func ParseRef(s string) (Ref, error) {
	v, f, ok := strings.Cut(s, ":")
	if !ok || !nameRE.MatchString(v) || !featureRE.MatchString(f) {
		return Ref{}, errdefs.Invalid("feature reference %q must be view:feature", clip(s))
	}
	return Ref{View: v, Feature: f}, nil
}

// Duration is a time.Duration written as "30s", "12h" or "30d".
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler; it takes a number of
// days too ("30d", "1d12h").
func (d *Duration) UnmarshalText(b []byte) error {
	s := string(b)
	var days float64
	if num, rest, ok := strings.Cut(s, "d"); ok {
		v, err := strconv.ParseFloat(num, 64)
		if err != nil || v < 0 || strings.ContainsAny(num, "+-eEinfINFxX_") {
			return fmt.Errorf("invalid duration %q (use e.g. 30m, 12h, 30d)", clip(s))
		}
		days, s = v, rest
	}
	var rest time.Duration
	if s != "" {
		v, err := time.ParseDuration(s)
		if err != nil || v < 0 {
			return fmt.Errorf("invalid duration %q (use e.g. 30m, 12h, 30d)", clip(string(b)))
		}
		rest = v
	}
	*d = Duration(time.Duration(days*float64(24*time.Hour)) + rest)
	return nil
}

var (
	nameRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	featureRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,127}$`)
)

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

type checker struct{ errs errdefs.FieldErrors }

func (c *checker) fail(path, format string, args ...any) {
	c.errs = append(c.errs, errdefs.FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (c *checker) header(apiVersion, kind, want, name string) {
	if apiVersion != APIVersion {
		c.fail("apiVersion", "must be %q, not %q", APIVersion, clip(apiVersion))
	}
	if kind != want {
		c.fail("kind", "must be %q, not %q", want, clip(kind))
	}
	if !nameRE.MatchString(name) {
		c.fail("metadata.name", "%q is not a valid name (letters, digits, _ . -; at most 128)", clip(name))
	}
}

func (c *checker) err(what string) error {
	if len(c.errs) == 0 {
		return nil
	}
	return errdefs.InvalidFields(what, c.errs)
}

// Normalize fills in the defaults of the header.
func (e *Entity) Normalize() {
	if e.APIVersion == "" {
		e.APIVersion = APIVersion
	}
	if e.Kind == "" {
		e.Kind = KindEntity
	}
}

// Validate checks the document on its own; problems come back as
// errdefs.FieldErrors inside an invalid-argument error.
func (e *Entity) Validate() error {
	var c checker
	c.header(e.APIVersion, e.Kind, KindEntity, e.Metadata.Name)
	if len(e.Spec.JoinKeys) == 0 {
		c.fail("spec.join_keys", "an entity needs at least one join key")
	}
	seen := map[string]bool{}
	for i, k := range e.Spec.JoinKeys {
		p := fmt.Sprintf("spec.join_keys[%d]", i)
		switch {
		case !featureRE.MatchString(k):
			c.fail(p, "%q is not a valid column name", clip(k))
		case seen[k]:
			c.fail(p, "join key %q is listed twice", k)
		}
		seen[k] = true
	}
	return c.err("entity")
}

// Normalize fills in the defaults of the header.
func (v *FeatureView) Normalize() {
	if v.APIVersion == "" {
		v.APIVersion = APIVersion
	}
	if v.Kind == "" {
		v.Kind = KindFeatureView
	}
}

// Validate checks the document on its own (that its entities exist and
// that its source has the columns is checked when it is applied).
func (v *FeatureView) Validate() error {
	var c checker
	s := &v.Spec
	c.header(v.APIVersion, v.Kind, KindFeatureView, v.Metadata.Name)
	if len(s.Entities) == 0 {
		c.fail("spec.entities", "a feature view needs at least one entity")
	}
	seenEntity := map[string]bool{}
	for i, e := range s.Entities {
		p := fmt.Sprintf("spec.entities[%d]", i)
		switch {
		case !nameRE.MatchString(e):
			c.fail(p, "%q is not a valid entity name", clip(e))
		case seenEntity[e]:
			c.fail(p, "entity %q is listed twice", e)
		}
		seenEntity[e] = true
	}
	switch {
	case s.Source.Dataset == "" && s.Source.Path == "":
		c.fail("spec.source", "set dataset (name@version) or path")
	case s.Source.Dataset != "" && s.Source.Path != "":
		c.fail("spec.source", "set one of dataset and path, not both")
	}
	switch s.Source.Format {
	case "", "csv", "parquet", "jsonl":
	default:
		c.fail("spec.source.format", "must be csv, parquet or jsonl, not %q", clip(s.Source.Format))
	}
	if !featureRE.MatchString(s.TimestampField) {
		c.fail("spec.timestamp_field", "name the event-timestamp column")
	}
	if s.CreatedTimestampField != "" && !featureRE.MatchString(s.CreatedTimestampField) {
		c.fail("spec.created_timestamp_field", "%q is not a valid column name", clip(s.CreatedTimestampField))
	}
	if s.CreatedTimestampField != "" && s.CreatedTimestampField == s.TimestampField {
		c.fail("spec.created_timestamp_field", "must differ from timestamp_field")
	}
	if s.TTL < 0 {
		c.fail("spec.ttl", "must not be negative")
	}
	if len(s.Features) == 0 {
		c.fail("spec.features", "a feature view needs at least one feature")
	}
	seen := map[string]bool{}
	for i, f := range s.Features {
		p := fmt.Sprintf("spec.features[%d]", i)
		switch {
		case !featureRE.MatchString(f.Name):
			c.fail(p+".name", "%q is not a valid feature name", clip(f.Name))
		case seen[f.Name]:
			c.fail(p+".name", "feature %q is listed twice", f.Name)
		case f.Name == s.TimestampField || f.Name == s.CreatedTimestampField:
			c.fail(p+".name", "%q is the view's timestamp column, not a feature", f.Name)
		}
		seen[f.Name] = true
		switch f.Type {
		case TypeInt64, TypeFloat64, TypeString, TypeBool:
			if f.Default != nil {
				if _, err := CoerceValue(f.Type, f.Default); err != nil {
					c.fail(p+".default", "%v", err)
				}
			}
		default:
			c.fail(p+".type", "must be int64, float64, string or bool, not %q", clip(f.Type))
		}
	}
	return c.err("feature view")
}

// CoerceValue converts a JSON or YAML value to the Go type of a feature
// type: int64, float64, string or bool. Whole floats become int64 and
// numbers become float64; nothing else converts.
func CoerceValue(typ string, v any) (any, error) {
	switch typ {
	case TypeInt64:
		switch x := v.(type) {
		case int:
			return int64(x), nil
		case int64:
			return x, nil
		case float64:
			if x == float64(int64(x)) {
				return int64(x), nil
			}
		}
	case TypeFloat64:
		switch x := v.(type) {
		case int:
			return float64(x), nil
		case int64:
			return float64(x), nil
		case float64:
			return x, nil
		}
	case TypeString:
		if x, ok := v.(string); ok {
			return x, nil
		}
	case TypeBool:
		if x, ok := v.(bool); ok {
			return x, nil
		}
	default:
		return nil, errors.New("unknown feature type " + strconv.Quote(typ))
	}
	return nil, fmt.Errorf("%v (%T) is not a %s", v, v, typ)
}
