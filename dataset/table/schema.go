package table

import (
	"encoding/json"
	"fmt"
	"slices"
)

// Type is the logical type of a column.
type Type uint8

// Column types. Each has one physical vector in a Column (see Column).
const (
	Invalid   Type = iota
	Bool           // Column.Bools
	Int64          // Column.Ints
	Float64        // Column.Floats
	String         // Column.Data/Offsets (or dictionary codes)
	Timestamp      // Column.Ints in the field's Unit since the Unix epoch
	Date           // Column.Ints: days since 1970-01-01
)

var typeNames = [...]string{
	Invalid:   "invalid",
	Bool:      "bool",
	Int64:     "int64",
	Float64:   "float64",
	String:    "string",
	Timestamp: "timestamp",
	Date:      "date",
}

// String returns the type's name as it appears in JSON: "bool", "int64",
// "float64", "string", "timestamp" or "date".
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// ParseType is the inverse of Type.String.
func ParseType(s string) (Type, error) {
	for i, n := range typeNames {
		if n == s && i != int(Invalid) {
			return Type(i), nil
		}
	}
	return Invalid, invalidf(ErrSchema, "unknown column type %q", s)
}

// Numeric reports whether values of t are ordered numbers (every type but
// bool and string); timestamps and dates count as numbers in their unit.
func (t Type) Numeric() bool {
	return t == Int64 || t == Float64 || t == Timestamp || t == Date
}

// MarshalText implements encoding.TextMarshaler.
func (t Type) MarshalText() ([]byte, error) {
	if t == Invalid || int(t) >= len(typeNames) {
		return nil, fmt.Errorf("table: cannot marshal %v", t)
	}
	return []byte(t.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (t *Type) UnmarshalText(b []byte) error {
	v, err := ParseType(string(b))
	if err != nil {
		return err
	}
	*t = v
	return nil
}

// TimeUnit is the resolution of a Timestamp column's int64 values.
type TimeUnit string

// Time units.
const (
	Millisecond TimeUnit = "ms"
	Microsecond TimeUnit = "us"
	Nanosecond  TimeUnit = "ns"
)

// PerSecond returns how many units make one second (0 for an unknown unit).
func (u TimeUnit) PerSecond() int64 {
	switch u {
	case Millisecond:
		return 1e3
	case Microsecond:
		return 1e6
	case Nanosecond:
		return 1e9
	}
	return 0
}

// Field describes one column.
type Field struct {
	Name string `json:"name"`
	Type Type   `json:"type"`
	// Nullable says the column may hold nulls: declared so by the file
	// (Parquet OPTIONAL) or seen in the rows that were inspected (CSV and
	// JSON Lines samples, Infer). Readers accept nulls in any column.
	Nullable bool `json:"nullable"`
	// Unit is the resolution of a Timestamp column.
	Unit TimeUnit `json:"unit,omitempty"`
	// UTC marks a timezone-aware Timestamp column: its values are instants
	// (UTC). A naive column holds wall-clock times stored as if in UTC.
	UTC bool `json:"utc,omitempty"`
	// TimeZone is the zone name that pandas recorded for an aware column
	// ("Europe/Paris"), when known. Values are UTC regardless.
	TimeZone string `json:"time_zone,omitempty"`
	// Categorical marks a column with a small domain: dictionary-encoded
	// categoricals written by pandas (category dtype), or a string/int
	// column that Infer found to have few distinct values.
	Categorical bool `json:"categorical,omitempty"`
	// Categories is the categorical domain when known, sorted (as strings
	// for string columns, decimal text for int columns).
	Categories []string `json:"categories,omitempty"`
	// Note records a lossy conversion, e.g. a Parquet DECIMAL read as
	// float64, or an unsigned 64-bit column.
	Note string `json:"note,omitempty"`
}

// Schema is the ordered list of a table's columns.
type Schema struct {
	Fields []Field `json:"fields"`
}

// Index returns the position of the column named name, or -1.
func (s Schema) Index(name string) int {
	for i := range s.Fields {
		if s.Fields[i].Name == name {
			return i
		}
	}
	return -1
}

// Names returns the column names in order.
func (s Schema) Names() []string {
	out := make([]string, len(s.Fields))
	for i, f := range s.Fields {
		out[i] = f.Name
	}
	return out
}

// Clone returns a deep copy of s.
func (s Schema) Clone() Schema {
	out := Schema{Fields: slices.Clone(s.Fields)}
	for i := range out.Fields {
		out.Fields[i].Categories = slices.Clone(out.Fields[i].Categories)
	}
	return out
}

// Validate checks that s can describe a table: at least one column, unique
// non-empty names, known types, and a unit on every timestamp.
func (s Schema) Validate() error {
	if len(s.Fields) == 0 {
		return invalidf(ErrSchema, "schema has no columns")
	}
	seen := make(map[string]bool, len(s.Fields))
	for i, f := range s.Fields {
		if f.Name == "" {
			return invalidf(ErrSchema, "column %d has no name", i)
		}
		if seen[f.Name] {
			return invalidf(ErrSchema, "duplicate column name %q", f.Name)
		}
		seen[f.Name] = true
		if f.Type == Invalid || int(f.Type) >= len(typeNames) {
			return invalidf(ErrSchema, "column %q has no valid type", f.Name)
		}
		if f.Type == Timestamp && f.Unit.PerSecond() == 0 {
			return invalidf(ErrSchema, "timestamp column %q has unknown unit %q", f.Name, f.Unit)
		}
	}
	return nil
}

// UnmarshalJSON decodes a schema and validates it.
func (s *Schema) UnmarshalJSON(b []byte) error {
	type plain Schema
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	if err := Schema(p).Validate(); err != nil {
		return err
	}
	*s = Schema(p)
	return nil
}

// ChangeKind names one kind of difference between two schemas.
type ChangeKind string

// Kinds of schema change.
const (
	ColumnAdded       ChangeKind = "added"
	ColumnRemoved     ChangeKind = "removed"
	TypeChanged       ChangeKind = "type_changed"
	NullabilityChange ChangeKind = "nullability_changed"
	DomainChanged     ChangeKind = "categories_changed"
)

// Change is one difference found by Diff.
type Change struct {
	Kind   ChangeKind `json:"kind"`
	Column string     `json:"column"`
	// From and To describe the column before and after: the type (with unit
	// and zone for timestamps) for type changes, "nullable"/"not null" for
	// nullability changes; empty for added/removed columns.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Added and Removed list the categories gained and lost.
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
}

func (c Change) String() string {
	switch c.Kind {
	case ColumnAdded, ColumnRemoved:
		return fmt.Sprintf("%s %s", c.Kind, c.Column)
	case DomainChanged:
		return fmt.Sprintf("%s %s: +%v -%v", c.Kind, c.Column, c.Added, c.Removed)
	}
	return fmt.Sprintf("%s %s: %s -> %s", c.Kind, c.Column, c.From, c.To)
}

// typeDesc describes a field's type with its timestamp details.
func typeDesc(f Field) string {
	if f.Type != Timestamp {
		return f.Type.String()
	}
	s := "timestamp[" + string(f.Unit)
	if f.UTC {
		s += ", utc"
	}
	if f.TimeZone != "" {
		s += ", " + f.TimeZone
	}
	return s + "]"
}

// Diff lists the differences from schema a to schema b: columns removed
// (in a's order), then added (in b's order), then per common column (in
// b's order) type, nullability and categorical-domain changes. Column order
// alone is not a change.
func Diff(a, b Schema) []Change {
	var out []Change
	for _, f := range a.Fields {
		if b.Index(f.Name) < 0 {
			out = append(out, Change{Kind: ColumnRemoved, Column: f.Name})
		}
	}
	for _, f := range b.Fields {
		if a.Index(f.Name) < 0 {
			out = append(out, Change{Kind: ColumnAdded, Column: f.Name})
		}
	}
	for _, fb := range b.Fields {
		i := a.Index(fb.Name)
		if i < 0 {
			continue
		}
		fa := a.Fields[i]
		if da, db := typeDesc(fa), typeDesc(fb); da != db {
			out = append(out, Change{Kind: TypeChanged, Column: fb.Name, From: da, To: db})
		}
		if fa.Nullable != fb.Nullable {
			out = append(out, Change{Kind: NullabilityChange, Column: fb.Name, From: nullDesc(fa.Nullable), To: nullDesc(fb.Nullable)})
		}
		if fa.Categorical && fb.Categorical && (fa.Categories != nil || fb.Categories != nil) {
			added, removed := setDiff(fa.Categories, fb.Categories)
			if len(added) > 0 || len(removed) > 0 {
				out = append(out, Change{Kind: DomainChanged, Column: fb.Name, Added: added, Removed: removed})
			}
		}
	}
	return out
}

func nullDesc(n bool) string {
	if n {
		return "nullable"
	}
	return "not null"
}

// setDiff returns the elements of b missing from a (added) and of a
// missing from b (removed).
func setDiff(a, b []string) (added, removed []string) {
	in := func(s []string, v string) bool { return slices.Contains(s, v) }
	for _, v := range b {
		if !in(a, v) {
			added = append(added, v)
		}
	}
	for _, v := range a {
		if !in(b, v) {
			removed = append(removed, v)
		}
	}
	return added, removed
}
