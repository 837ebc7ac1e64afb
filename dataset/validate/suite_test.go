package validate

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/stattest"
)

const fullSuite = `kind: ValidationSuite
name: trips
description: taxi trips
reference: trips@3
rules:
  - check: type
    column: fare
    type: float
  - check: not_null
    column: fare
    mostly: 0.99
    severity: warning
  - check: range
    name: fare in range
    column: fare
    min: 0
    max: 500.5
    strict_min: true
  - check: range
    column: pickup
    min: 2024-01-01
    max: "2024-12-31T23:59:59Z"
  - check: in_set
    column: payment
    values: [cash, card, 3]
  - check: regex
    column: zip
    pattern: '^\d{5}$'
  - check: unique
    columns: [vendor, trip_id]
  - check: unique
    column: trip_id
  - check: row_count
    min: 10
    max: 1_000_000
  - check: freshness
    column: pickup
    max_age: 1d12h
  - check: distribution
    column: fare
    test: psi
    threshold: 0.2
    sample: 5000
  - check: distribution
    column: payment
    kind: categorical
`

func TestParseSuite(t *testing.T) {
	s := mustParse(t, fullSuite)
	if s.Name != "trips" || s.Description != "taxi trips" || s.Reference != "trips@3" || len(s.Rules) != 12 {
		t.Fatalf("suite %+v", s)
	}
	r := s.Rules
	if r[0].Name != "type(fare)" || r[0].Type != "float" || r[0].Line != 6 || r[0].Severity != SeverityError {
		t.Errorf("rule 0: %+v", r[0])
	}
	if r[1].Severity != SeverityWarning || r[1].Mostly.String() != "0.99" {
		t.Errorf("rule 1: %+v", r[1])
	}
	if r[2].Name != "fare in range" || !r[2].Min.Int || r[2].Min.IntValue != 0 || r[2].Max.Number != 500.5 || !r[2].StrictMin || r[2].StrictMax {
		t.Errorf("rule 2: %+v min %+v max %+v", r[2], r[2].Min, r[2].Max)
	}
	if !r[3].Min.IsTime || !r[3].Min.Time.Equal(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)) || !r[3].Max.IsTime {
		t.Errorf("rule 3: min %+v max %+v", r[3].Min, r[3].Max)
	}
	if strings.Join(r[4].Values, "|") != "cash|card|3" {
		t.Errorf("rule 4 values %q", r[4].Values)
	}
	if r[5].Regexp == nil || !r[5].Regexp.MatchString("12345") {
		t.Errorf("rule 5: %+v", r[5])
	}
	if strings.Join(r[6].Columns, ",") != "vendor,trip_id" || r[6].Name != "unique(vendor,trip_id)" || r[7].Name != "unique(trip_id)" {
		t.Errorf("rules 6, 7: %+v %+v", r[6], r[7])
	}
	if *r[8].MinRows != 10 || *r[8].MaxRows != 1000000 {
		t.Errorf("rule 8: %+v", r[8])
	}
	if r[9].MaxAge != 36*time.Hour {
		t.Errorf("rule 9 max_age %v", r[9].MaxAge)
	}
	if r[10].Test != stattest.MethodPSI || r[10].Threshold != 0.2 || r[10].SampleSize != 5000 {
		t.Errorf("rule 10: %+v", r[10])
	}
	if r[11].Test != "" || r[11].Kind != stattest.Categorical {
		t.Errorf("rule 11: %+v", r[11])
	}
}

func TestGeneratedNamesAreUnique(t *testing.T) {
	s := mustParse(t, `kind: ValidationSuite
rules:
  - {check: not_null, column: a}
  - {check: not_null, column: a}
  - {check: not_null, column: a, name: "not_null(a)#3"}
  - {check: row_count, min: 1}
`)
	var names []string
	for _, r := range s.Rules {
		names = append(names, r.Name)
	}
	if got := strings.Join(names, " "); got != "not_null(a)#2 not_null(a)#4 not_null(a)#3 row_count" && got != "not_null(a) not_null(a)#2 not_null(a)#3 row_count" {
		t.Errorf("names %s", got)
	}
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			t.Errorf("duplicate generated name %q in %v", n, names)
		}
		seen[n] = true
	}
}

func TestParseSuiteErrors(t *testing.T) {
	head := "kind: ValidationSuite\nrules:\n"
	tests := []struct {
		name string
		yml  string
		want []string // substrings of the error
	}{
		{"empty", "", []string{"empty"}},
		{"not yaml", "kind: [", []string{"line"}},
		{"not a mapping", "- 1\n- 2\n", []string{"the suite must be a mapping"}},
		{"unknown top key", "kind: ValidationSuite\nrule:\n  - {check: row_count, min: 1}\n", []string{"line 2", `unknown key "rule"`, "allowed: kind, name"}},
		{"wrong kind", "kind: Suite\nrules:\n  - {check: row_count, min: 1}\n", []string{"line 1", "kind: ValidationSuite"}},
		{"missing kind", "rules:\n  - {check: row_count, min: 1}\n", []string{"missing key \"kind\""}},
		{"missing rules", "kind: ValidationSuite\n", []string{"missing key \"rules\""}},
		{"rules not a list", "kind: ValidationSuite\nrules: 3\n", []string{"line 2", "rules must be a list"}},
		{"empty rules", "kind: ValidationSuite\nrules: []\n", []string{"rules is empty"}},
		{"two documents", head + "  - {check: row_count, min: 1}\n---\nkind: ValidationSuite\n", []string{"second YAML document"}},
		{"duplicate key", head + "  - check: not_null\n    column: a\n    column: b\n", []string{"line 5", `key "column" given twice`}},
		{"no check", head + "  - column: a\n", []string{"line 3", "no check key"}},
		{"unknown check", head + "  - check: isnull\n    column: a\n", []string{"line 3", `unknown check "isnull"`, "not_null"}},
		{"unknown rule key", head + "  - check: not_null\n    column: a\n    mostlyy: 0.5\n", []string{"line 5", `unknown key "mostlyy" in not_null rule`, "allowed:"}},
		{"key of another check", head + "  - check: range\n    column: a\n    min: 0\n    pattern: x\n", []string{"line 6", `unknown key "pattern" in range rule`}},
		{"missing column", head + "  - check: not_null\n", []string{"line 3", "needs a column"}},
		{"column is a list", head + "  - check: not_null\n    column: [a]\n", []string{"line 4", "column must be a single value"}},
		{"mostly above 1", head + "  - {check: not_null, column: a, mostly: 1.5}\n", []string{"line 3", "mostly", "between 0 and 1"}},
		{"mostly negative", head + "  - {check: not_null, column: a, mostly: -0.1}\n", []string{"between 0 and 1"}},
		{"mostly text", head + "  - {check: not_null, column: a, mostly: most}\n", []string{"mostly must be a number"}},
		{"mostly on row_count", head + "  - {check: row_count, min: 1, mostly: 0.5}\n", []string{`unknown key "mostly" in row_count rule`}},
		{"bad type", head + "  - {check: type, column: a, type: decimal}\n", []string{`unknown type "decimal"`, "timestamp"}},
		{"type missing", head + "  - {check: type, column: a}\n", []string{"type rule needs type"}},
		{"range without bounds", head + "  - {check: range, column: a}\n", []string{"needs min, max or both"}},
		{"range min above max", head + "  - {check: range, column: a, min: 5, max: 1}\n", []string{"no value can lie between"}},
		{"range strict equal", head + "  - {check: range, column: a, min: 5, max: 5, strict_max: true}\n", []string{"no value can lie between"}},
		{"range mixed bounds", head + "  - {check: range, column: a, min: 5, max: 2024-01-01}\n", []string{"both be numbers or both be timestamps"}},
		{"range bad bound", head + "  - {check: range, column: a, min: abc}\n", []string{"neither a number nor a timestamp"}},
		{"range strict not bool", head + "  - {check: range, column: a, min: 1, strict_min: yes please}\n", []string{"strict_min must be true or false"}},
		{"values not a list", head + "  - {check: in_set, column: a, values: abc}\n", []string{"values must be a list"}},
		{"values empty", head + "  - {check: in_set, column: a, values: []}\n", []string{"values is empty"}},
		{"values nested", head + "  - {check: in_set, column: a, values: [[1]]}\n", []string{"each of values must be a single value"}},
		{"regex lookahead", head + "  - {check: regex, column: a, pattern: '^(?=a)'}\n", []string{"line 3", "pattern", "RE2", "lookahead"}},
		{"regex backreference", head + "  - {check: regex, column: a, pattern: '(a)\\1'}\n", []string{"backreferences"}},
		{"regex bad", head + "  - {check: regex, column: a, pattern: '[a-'}\n", []string{"missing closing ]"}},
		{"regex missing", head + "  - {check: regex, column: a}\n", []string{"needs pattern"}},
		{"unique both", head + "  - {check: unique, column: a, columns: [b]}\n", []string{"column or columns, not both"}},
		{"unique none", head + "  - {check: unique}\n", []string{"needs column or columns"}},
		{"unique repeated", head + "  - {check: unique, columns: [a, a]}\n", []string{`column "a" listed twice`}},
		{"row_count none", head + "  - {check: row_count}\n", []string{"needs min, max or both"}},
		{"row_count negative", head + "  - {check: row_count, min: -1}\n", []string{"must not be negative"}},
		{"row_count float", head + "  - {check: row_count, min: 1.5}\n", []string{"min must be an integer"}},
		{"row_count inverted", head + "  - {check: row_count, min: 10, max: 5}\n", []string{"min 10 is above max 5"}},
		{"freshness no age", head + "  - {check: freshness, column: t}\n", []string{"needs max_age"}},
		{"freshness bad age", head + "  - {check: freshness, column: t, max_age: soon}\n", []string{"max_age", "not a duration"}},
		{"freshness zero age", head + "  - {check: freshness, column: t, max_age: 0s}\n", []string{"not a positive duration"}},
		{"distribution bad test", head + "  - {check: distribution, column: a, test: anderson}\n", []string{`unknown drift test "anderson"`}},
		{"distribution p threshold", head + "  - {check: distribution, column: a, test: ks, threshold: 5}\n", []string{"p-value threshold is at most 1"}},
		{"distribution zero threshold", head + "  - {check: distribution, column: a, threshold: 0}\n", []string{"threshold must be a positive number"}},
		{"distribution bad sample", head + "  - {check: distribution, column: a, sample: 0}\n", []string{"sample must be between"}},
		{"distribution ks categorical", head + "  - {check: distribution, column: a, test: ks, kind: categorical}\n", []string{"needs a numerical column"}},
		{"severity", head + "  - {check: not_null, column: a, severity: fatal}\n", []string{`severity is "fatal"`}},
		{"duplicate names", head + "  - {check: not_null, column: a, name: x}\n  - {check: not_null, column: b, name: x}\n", []string{"line 4", `rule name "x" already used at line 3`}},
		{"several errors", head + "  - {check: not_null}\n  - {check: range, column: a}\n", []string{"line 3", "line 4"}},
		{"rule not a mapping", head + "  - not_null\n", []string{"a rule must be a mapping"}},
		{"merge key", head + "  - <<: {check: not_null}\n    column: a\n", []string{"merge keys"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSuite([]byte(tt.yml))
			if err == nil {
				t.Fatalf("ParseSuite succeeded; want an error with %q", tt.want)
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("error %v is not an invalid-argument error", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestFraction(t *testing.T) {
	tests := []struct {
		mostly        string
		passed, total int64
		want          bool
	}{
		{"0.75", 3, 4, true},
		{"0.75", 2, 4, false},
		{"0.76", 3, 4, false},
		{"1", 999999, 1000000, false},
		{"1", 5, 5, true},
		{"0", 0, 5, true},
		{"0.29", 29, 100, true}, // exact: 0.29 is not a binary fraction
		{"0.29", 28, 100, false},
		{"0.3333333333333333", 1, 3, true},
		{"1e-3", 1, 1000, true},
		{"0.5", 0, 0, true}, // nothing to check
	}
	for _, tt := range tests {
		f, err := ParseFraction(tt.mostly)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Met(tt.passed, tt.total); got != tt.want {
			t.Errorf("mostly %s: Met(%d, %d) = %v; want %v", tt.mostly, tt.passed, tt.total, got, tt.want)
		}
	}
	for _, bad := range []string{"", "x", "1.01", "-0.5", "1/0"} {
		if _, err := ParseFraction(bad); err == nil {
			t.Errorf("ParseFraction(%q): no error", bad)
		}
	}
}

func TestParseAge(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"24h": 24 * time.Hour, "90m": 90 * time.Minute, "1h30m": 90 * time.Minute,
		"7d": 7 * 24 * time.Hour, "1w": 7 * 24 * time.Hour, "1d12h": 36 * time.Hour,
		"0.5d": 12 * time.Hour, "1500ms": 1500 * time.Millisecond,
	} {
		got, err := ParseAge(in)
		if err != nil || got != want {
			t.Errorf("ParseAge(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "d", "7", "7x", "-1h", "0h", "1e400d", "99999999999999w"} {
		if d, err := ParseAge(bad); err == nil {
			t.Errorf("ParseAge(%q) = %v; want an error", bad, d)
		}
	}
}

func TestParseTime(t *testing.T) {
	utc := func(y int, mo time.Month, d, h, mi, s, ns int) time.Time {
		return time.Date(y, mo, d, h, mi, s, ns, time.UTC)
	}
	for in, want := range map[string]time.Time{
		"2024-02-29":                    utc(2024, 2, 29, 0, 0, 0, 0),
		"2024-01-02T03:04":              utc(2024, 1, 2, 3, 4, 0, 0),
		"2024-01-02 03:04:05":           utc(2024, 1, 2, 3, 4, 5, 0),
		"2024-01-02T03:04:05.5Z":        utc(2024, 1, 2, 3, 4, 5, 5e8),
		"2024-01-02T03:04:05.123456789": utc(2024, 1, 2, 3, 4, 5, 123456789),
		"2024-01-02T03:04:05+02:00":     utc(2024, 1, 2, 1, 4, 5, 0),
		"2024-01-02t03:04:05-01:30":     utc(2024, 1, 2, 4, 34, 5, 0),
		" 2024-01-02 ":                  utc(2024, 1, 2, 0, 0, 0, 0),
	} {
		got, ok := ParseTime(in)
		if !ok || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "2024", "2023-02-29", "2024-13-01", "2024-01-02X", "2024-01-02T25:00", "2024-01-02T03:04:05.", "2024-01-02T03:04+1", "24-01-02", "2024-1-2"} {
		if got, ok := ParseTime(bad); ok {
			t.Errorf("ParseTime(%q) = %v; want failure", bad, got)
		}
	}
}

func TestNumberSyntax(t *testing.T) {
	for _, s := range []string{"1", "-1", "+7", "9223372036854775807", "-9223372036854775808"} {
		if !isInt(s) {
			t.Errorf("isInt(%q) = false", s)
		}
	}
	for _, s := range []string{"", "-", "1.0", "1e3", "9223372036854775808", "0x10", "1_000", " 1"} {
		if isInt(s) {
			t.Errorf("isInt(%q) = true", s)
		}
	}
	for _, s := range []string{"1", "-1.5", ".5", "5.", "1e10", "1E-3", "NaN", "-inf", "Infinity", "1e400"} {
		if !isFloat(s) {
			t.Errorf("isFloat(%q) = false", s)
		}
	}
	for _, s := range []string{"", ".", "e5", "1e", "1.2.3", "abc", "0x1p3", "1,5", "- 1"} {
		if isFloat(s) {
			t.Errorf("isFloat(%q) = true", s)
		}
	}
}
