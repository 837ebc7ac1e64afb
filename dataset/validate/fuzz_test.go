package validate

import (
	"context"
	"math"
	"strconv"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kiln-ml/kiln/dataset/table"
)

// fuzzTable has a column of every type, with nulls, NaN and duplicates.
func fuzzTable(t testing.TB) *memSource {
	cols := []col{
		{name: "a", typ: table.Int64}, {name: "b", typ: table.Float64}, {name: "c", typ: table.String},
		{name: "d", typ: table.String, dict: true}, {name: "e", typ: table.Bool},
		{name: "f", typ: table.Timestamp, unit: table.Microsecond}, {name: "g", typ: table.Date},
	}
	ts := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	return build(t, cols, 3,
		[]any{1, 0.5, "x", "p", true, ts, ts},
		[]any{nil, math.NaN(), nil, nil, nil, nil, nil},
		[]any{1, -2.5, "yy", "p", false, ts.Add(time.Hour), ts.Add(48 * time.Hour)},
		[]any{math.MaxInt64, math.Inf(1), "", "q", true, ts.Add(-time.Hour), ts},
	)
}

func fuzzRun(t *testing.T, s *Suite) {
	rep, err := Run(context.Background(), s, fuzzTable(t), Options{MaxUniqueKeys: 2})
	if err != nil {
		t.Fatalf("Run on an in-memory table: %v", err)
	}
	if len(rep.Results) != len(s.Rules) {
		t.Fatalf("%d results for %d rules", len(rep.Results), len(s.Rules))
	}
	for _, r := range rep.Results {
		switch r.Status {
		case StatusPassed, StatusFailed, StatusError:
		default:
			t.Fatalf("rule %s: status %q", r.Rule, r.Status)
		}
	}
	var sink discard
	if err := rep.WriteText(&sink); err != nil {
		t.Fatal(err)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func FuzzParseSuite(f *testing.F) {
	f.Add([]byte(fullSuite))
	f.Add([]byte("kind: ValidationSuite\nrules:\n  - {check: range, column: a, min: 0, max: 1.5e3}\n"))
	f.Add([]byte("kind: ValidationSuite\nrules:\n  - {check: unique, columns: [a, c, f]}\n  - {check: in_set, column: g, values: [2024-03-01]}\n"))
	f.Add([]byte("kind: ValidationSuite\nrules:\n  - &r {check: not_null, column: b}\n  - *r\n"))
	f.Add([]byte("kind: ValidationSuite\nrules:\n  - {check: regex, column: d, pattern: '(?i)^P$'}\n  - {check: type, column: c, type: timestamp, mostly: 0.5}\n"))
	f.Add([]byte("kind: ValidationSuite\nrules:\n  - {check: freshness, column: f, max_age: 1w}\n  - {check: distribution, column: b, test: psi}\n"))
	f.Add([]byte("kind: [\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSuite(data)
		if err != nil {
			if s != nil {
				t.Fatal("a suite and an error")
			}
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		names := map[string]bool{}
		for _, r := range s.Rules {
			if r.Name == "" || names[r.Name] {
				t.Fatalf("rule name %q empty or repeated", r.Name)
			}
			names[r.Name] = true
		}
		fuzzRun(t, s)
	})
}

// FuzzCompileRules fuzzes regex patterns and range bounds through parsing
// and compilation against columns of every type.
func FuzzCompileRules(f *testing.F) {
	f.Add(`^\d+$`, "0", "10", false, "1")
	f.Add(`(?=a)`, "2024-01-01", "2024-12-31T00:00:00Z", true, "0.5")
	f.Add(`[[:alpha:]]{1,1000}`, "-1e308", "1e308", false, "0")
	f.Add(`\p{Greek}`, "9223372036854775807", "9223372036854775808", true, "0.99999999999999999999")
	f.Add(`a{1001}`, "nan", "inf", false, "2")
	f.Fuzz(func(t *testing.T, pattern, min, max string, strict bool, mostly string) {
		if re, err := CompileRegex(pattern); err == nil && re.String() != pattern {
			t.Fatalf("compiled %q as %q", pattern, re.String())
		}
		scalar := func(s string) any {
			if v, err := strconv.ParseInt(s, 10, 64); err == nil {
				return v
			}
			if v, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(v) && !math.IsInf(v, 0) {
				return v
			}
			return s
		}
		type rule map[string]any
		var rules []rule
		for _, c := range []string{"a", "b", "c", "d", "e", "f", "g"} {
			rules = append(rules,
				rule{"check": "regex", "column": c, "pattern": pattern},
				rule{"check": "range", "column": c, "min": scalar(min), "max": scalar(max), "strict_min": strict, "mostly": scalar(mostly)},
				rule{"check": "range", "column": c, "min": scalar(min), "strict_max": strict},
				rule{"check": "in_set", "column": c, "values": []any{scalar(min), scalar(max), pattern}},
			)
		}
		doc, err := yaml.Marshal(map[string]any{"kind": SuiteKind, "rules": rules})
		if err != nil {
			t.Skip("not representable in YAML")
		}
		s, err := ParseSuite(doc)
		if err != nil {
			return
		}
		fuzzRun(t, s)
	})
}
