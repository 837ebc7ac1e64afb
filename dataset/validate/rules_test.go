package validate

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/dataset/table"
)

type ruleCase struct {
	name       string
	cols       []col
	rows       [][]any
	rule       string // one YAML list item
	opts       Options
	status     Status
	elements   int64 // -1: not checked
	unexpected int64
	exampleRow []int64 // rows of the examples, when set
	contains   string  // substring of Observed or Error
}

func runCases(t *testing.T, cases []ruleCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Every case runs in batches of 2 rows and in one batch, so that
			// row numbers and counts cannot depend on batching.
			for _, batch := range []int{2, 1000} {
				src := build(t, tc.cols, batch, tc.rows...)
				rep := runRules(t, src, tc.opts, tc.rule)
				if len(rep.Results) != 1 {
					t.Fatalf("%d results", len(rep.Results))
				}
				r := rep.Results[0]
				if r.Status != tc.status || (tc.elements >= 0 && r.Elements != tc.elements) || r.Unexpected != tc.unexpected {
					t.Errorf("batch %d: %s; want status=%s elements=%d unexpected=%d", batch, describeResult(r), tc.status, tc.elements, tc.unexpected)
				}
				if tc.exampleRow != nil {
					var rows []int64
					for _, e := range r.Examples {
						rows = append(rows, e.Row)
					}
					if len(rows) != len(tc.exampleRow) {
						t.Errorf("batch %d: example rows %v; want %v", batch, rows, tc.exampleRow)
					} else {
						for i := range rows {
							if rows[i] != tc.exampleRow[i] {
								t.Errorf("batch %d: example rows %v; want %v", batch, rows, tc.exampleRow)
								break
							}
						}
					}
				}
				if tc.contains != "" && !strings.Contains(r.Observed+" "+r.Error, tc.contains) {
					t.Errorf("batch %d: observed %q / error %q lacks %q", batch, r.Observed, r.Error, tc.contains)
				}
				if (r.Status == StatusPassed) != rep.Passed {
					t.Errorf("report passed %v with the only rule %s", rep.Passed, r.Status)
				}
			}
		})
	}
}

var (
	intCol   = []col{{name: "x", typ: table.Int64}}
	floatCol = []col{{name: "x", typ: table.Float64}}
	strCol   = []col{{name: "x", typ: table.String}}
	dictCol  = []col{{name: "x", typ: table.String, dict: true}}
	boolCol  = []col{{name: "x", typ: table.Bool}}
	tsCol    = []col{{name: "x", typ: table.Timestamp, unit: table.Millisecond}}
	dateCol  = []col{{name: "x", typ: table.Date}}
)

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func TestTypeRule(t *testing.T) {
	runCases(t, []ruleCase{
		{name: "int is int", cols: intCol, rows: one(1, 2, nil), rule: "  - {check: type, column: x, type: int}", status: StatusPassed, elements: 2},
		{name: "int is float", cols: intCol, rows: one(1, 2), rule: "  - {check: type, column: x, type: float}", status: StatusPassed, elements: 2},
		{name: "float is not bool", cols: floatCol, rows: one(1.0, nil, 0.0), rule: "  - {check: type, column: x, type: bool}", status: StatusFailed, elements: 2, unexpected: 2, exampleRow: []int64{0, 2}, contains: "float64"},
		{name: "strings parse as ints", cols: strCol, rows: one("1", " 22 ", "x", nil, "3.5"), rule: "  - {check: type, column: x, type: int}", status: StatusFailed, elements: 4, unexpected: 2, exampleRow: []int64{2, 4}},
		{name: "mostly met exactly", cols: strCol, rows: one("1", "2", "3", "x"), rule: "  - {check: type, column: x, type: int, mostly: 0.75}", status: StatusPassed, elements: 4, unexpected: 1},
		{name: "mostly missed", cols: strCol, rows: one("1", "2", "3", "x"), rule: "  - {check: type, column: x, type: int, mostly: 0.76}", status: StatusFailed, elements: 4, unexpected: 1},
		{name: "dictionary strings parse", cols: dictCol, rows: one("1.5", "nan", "a", "1.5", "a"), rule: "  - {check: type, column: x, type: float}", status: StatusFailed, elements: 5, unexpected: 2, exampleRow: []int64{2, 4}},
		{name: "strings as timestamps", cols: strCol, rows: one("2024-01-02", "2024-01-02T03:04:05Z", "yesterday"), rule: "  - {check: type, column: x, type: timestamp}", status: StatusFailed, elements: 3, unexpected: 1},
		{name: "strings as dates", cols: strCol, rows: one("2024-01-02", "2024-02-30"), rule: "  - {check: type, column: x, type: date}", status: StatusFailed, elements: 2, unexpected: 1},
		{name: "strings as bools", cols: strCol, rows: one("True", "false", "yes"), rule: "  - {check: type, column: x, type: bool}", status: StatusFailed, elements: 3, unexpected: 1},
		{name: "floats holding ints", cols: floatCol, rows: one(1.0, 2.5, math.NaN(), -3.0, math.Inf(1)), rule: "  - {check: type, column: x, type: int}", status: StatusFailed, elements: 5, unexpected: 3, exampleRow: []int64{1, 2, 4}},
		{name: "only nulls", cols: strCol, rows: one(nil, nil), rule: "  - {check: type, column: x, type: int}", status: StatusPassed, elements: 0},
		{name: "string column is string", cols: strCol, rows: one("a"), rule: "  - {check: type, column: x, type: string}", status: StatusPassed, elements: 1},
		{name: "timestamp column", cols: tsCol, rows: one(day(2024, 1, 1)), rule: "  - {check: type, column: x, type: timestamp}", status: StatusPassed, elements: 1},
		{name: "unknown column", cols: intCol, rows: one(1), rule: "  - {check: type, column: y, type: int}", status: StatusError, elements: 0, contains: `no column "y"`},
	})
}

func TestNotNullRule(t *testing.T) {
	runCases(t, []ruleCase{
		{name: "no nulls", cols: intCol, rows: one(1, 2, 3), rule: "  - {check: not_null, column: x}", status: StatusPassed, elements: 3},
		{name: "one null", cols: intCol, rows: one(1, nil, 3, 4), rule: "  - {check: not_null, column: x}", status: StatusFailed, elements: 4, unexpected: 1, exampleRow: []int64{1}},
		{name: "mostly edge met", cols: intCol, rows: one(1, nil, 3, 4), rule: "  - {check: not_null, column: x, mostly: 0.75}", status: StatusPassed, elements: 4, unexpected: 1},
		{name: "mostly edge missed", cols: intCol, rows: one(1, nil, 3, 4), rule: "  - {check: not_null, column: x, mostly: 0.7500001}", status: StatusFailed, elements: 4, unexpected: 1},
		{name: "mostly zero", cols: intCol, rows: one(nil, nil), rule: "  - {check: not_null, column: x, mostly: 0}", status: StatusPassed, elements: 2, unexpected: 2},
		{name: "NaN is missing", cols: floatCol, rows: one(1.0, math.NaN(), nil), rule: "  - {check: not_null, column: x}", status: StatusFailed, elements: 3, unexpected: 2},
		{name: "rows across batches", cols: strCol, rows: one("a", "b", "c", nil, "e", nil), rule: "  - {check: not_null, column: x}", status: StatusFailed, elements: 6, unexpected: 2, exampleRow: []int64{3, 5}},
		{name: "empty table", cols: strCol, rows: nil, rule: "  - {check: not_null, column: x}", status: StatusPassed, elements: 0},
		{name: "examples capped", cols: intCol, rows: one(nil, nil, nil, nil, nil, nil, nil), rule: "  - {check: not_null, column: x}", status: StatusFailed, elements: 7, unexpected: 7, exampleRow: []int64{0, 1, 2, 3, 4}},
		{name: "examples off", cols: intCol, rows: one(nil, nil), opts: Options{Examples: -1}, rule: "  - {check: not_null, column: x}", status: StatusFailed, elements: 2, unexpected: 2, exampleRow: []int64{}},
	})
}

func TestRangeRule(t *testing.T) {
	runCases(t, []ruleCase{
		{name: "ints inside", cols: intCol, rows: one(1, 5, 10, nil), rule: "  - {check: range, column: x, min: 1, max: 10}", status: StatusPassed, elements: 3, contains: "min 1, max 10"},
		{name: "strict min", cols: intCol, rows: one(1, 5, 10), rule: "  - {check: range, column: x, min: 1, max: 10, strict_min: true}", status: StatusFailed, elements: 3, unexpected: 1, exampleRow: []int64{0}},
		{name: "strict max", cols: intCol, rows: one(1, 5, 10), rule: "  - {check: range, column: x, max: 10, strict_max: true}", status: StatusFailed, elements: 3, unexpected: 1, exampleRow: []int64{2}},
		{name: "fractional bounds on ints", cols: intCol, rows: one(1, 2, 3), rule: "  - {check: range, column: x, min: 1.5, max: 2.5}", status: StatusFailed, elements: 3, unexpected: 2},
		{name: "strict fractional bound", cols: intCol, rows: one(1, 2, 3), rule: "  - {check: range, column: x, min: 1.5, strict_min: true}", status: StatusFailed, elements: 3, unexpected: 1},
		{name: "huge bound", cols: intCol, rows: one(1, math.MaxInt64), rule: "  - {check: range, column: x, max: 9223372036854775807}", status: StatusPassed, elements: 2},
		{name: "bound above int64", cols: intCol, rows: one(1), rule: "  - {check: range, column: x, min: 1e30}", status: StatusFailed, elements: 1, unexpected: 1},
		{name: "floats with NaN", cols: floatCol, rows: one(0.5, math.NaN(), -0.1, 1.0), rule: "  - {check: range, column: x, min: 0, max: 1}", status: StatusFailed, elements: 4, unexpected: 2, exampleRow: []int64{1, 2}},
		{name: "floats strict", cols: floatCol, rows: one(0.0, 0.5, 1.0), rule: "  - {check: range, column: x, min: 0, max: 1, strict_min: true, strict_max: true}", status: StatusFailed, elements: 3, unexpected: 2},
		{name: "mostly", cols: floatCol, rows: one(0.0, 0.5, 1.0, 2.0), rule: "  - {check: range, column: x, min: 0, max: 1, mostly: 0.75}", status: StatusPassed, elements: 4, unexpected: 1},
		{name: "timestamps", cols: tsCol, rows: one(day(2023, 12, 31), day(2024, 6, 1), day(2025, 1, 1), nil), rule: "  - {check: range, column: x, min: 2024-01-01, max: 2024-12-31}", status: StatusFailed, elements: 3, unexpected: 2, exampleRow: []int64{0, 2}},
		{name: "timestamp bound between units", cols: tsCol, rows: one(time.Date(2024, 1, 1, 0, 0, 0, 1e6, time.UTC)), rule: "  - {check: range, column: x, min: \"2024-01-01T00:00:00.0005Z\"}", status: StatusPassed, elements: 1},
		{name: "timestamp strict at value", cols: tsCol, rows: one(day(2024, 1, 1)), rule: "  - {check: range, column: x, min: 2024-01-01, strict_min: true}", status: StatusFailed, elements: 1, unexpected: 1},
		{name: "dates", cols: dateCol, rows: one(day(2024, 1, 1), day(2024, 1, 2)), rule: "  - {check: range, column: x, max: 2024-01-01}", status: StatusFailed, elements: 2, unexpected: 1, exampleRow: []int64{1}},
		{name: "date bound inside a day", cols: dateCol, rows: one(day(2024, 1, 1), day(2024, 1, 2)), rule: "  - {check: range, column: x, min: \"2024-01-01T12:00:00Z\"}", status: StatusFailed, elements: 2, unexpected: 1, exampleRow: []int64{0}},
		{name: "string column", cols: strCol, rows: one("a"), rule: "  - {check: range, column: x, min: 0}", status: StatusError, elements: 0, contains: "numeric, timestamp or date"},
		{name: "number bound on timestamps", cols: tsCol, rows: one(day(2024, 1, 1)), rule: "  - {check: range, column: x, min: 0}", status: StatusError, elements: 0, contains: "must be timestamps"},
		{name: "time bound on numbers", cols: intCol, rows: one(1), rule: "  - {check: range, column: x, min: 2024-01-01}", status: StatusError, elements: 0, contains: "must be numbers"},
		{name: "only nulls", cols: intCol, rows: one(nil), rule: "  - {check: range, column: x, min: 0}", status: StatusPassed, elements: 0, contains: "no values"},
	})
}

func TestInSetRule(t *testing.T) {
	runCases(t, []ruleCase{
		{name: "strings", cols: strCol, rows: one("a", "b", "c", nil), rule: "  - {check: in_set, column: x, values: [a, b]}", status: StatusFailed, elements: 3, unexpected: 1, exampleRow: []int64{2}},
		{name: "dictionary strings", cols: dictCol, rows: one("a", "b", "c", "c", nil), rule: "  - {check: in_set, column: x, values: [a, b]}", status: StatusFailed, elements: 4, unexpected: 2, exampleRow: []int64{2, 3}},
		{name: "strings mostly", cols: dictCol, rows: one("a", "b", "c", "a"), rule: "  - {check: in_set, column: x, values: [a, b], mostly: 0.75}", status: StatusPassed, elements: 4, unexpected: 1},
		{name: "ints", cols: intCol, rows: one(1, 2, 3), rule: "  - {check: in_set, column: x, values: [1, 3]}", status: StatusFailed, elements: 3, unexpected: 1, exampleRow: []int64{1}},
		{name: "ints written as strings", cols: intCol, rows: one(1, 2), rule: "  - {check: in_set, column: x, values: [\"1\", \"2\"]}", status: StatusPassed, elements: 2},
		{name: "floats", cols: floatCol, rows: one(0.5, 1.0, math.NaN()), rule: "  - {check: in_set, column: x, values: [0.5, 1]}", status: StatusFailed, elements: 3, unexpected: 1},
		{name: "floats with NaN allowed", cols: floatCol, rows: one(0.5, math.NaN()), rule: "  - {check: in_set, column: x, values: [0.5, .nan]}", status: StatusPassed, elements: 2},
		{name: "bools", cols: boolCol, rows: one(true, false, nil), rule: "  - {check: in_set, column: x, values: [true]}", status: StatusFailed, elements: 2, unexpected: 1, exampleRow: []int64{1}},
		{name: "timestamps", cols: tsCol, rows: one(day(2024, 1, 1), day(2024, 1, 2)), rule: "  - {check: in_set, column: x, values: [2024-01-01]}", status: StatusFailed, elements: 2, unexpected: 1},
		{name: "dates", cols: dateCol, rows: one(day(2024, 1, 1), day(2024, 1, 2)), rule: "  - {check: in_set, column: x, values: [2024-01-01, 2024-01-02]}", status: StatusPassed, elements: 2},
		{name: "value not an int", cols: intCol, rows: one(1), rule: "  - {check: in_set, column: x, values: [one]}", status: StatusError, elements: 0, contains: `"one" is not an integer`},
		{name: "value not a bool", cols: boolCol, rows: one(true), rule: "  - {check: in_set, column: x, values: [maybe]}", status: StatusError, elements: 0, contains: "true or false"},
	})
}

func TestRegexRule(t *testing.T) {
	runCases(t, []ruleCase{
		{name: "anchored", cols: strCol, rows: one("12345", "1234", "123456", nil, "abcde"), rule: "  - {check: regex, column: x, pattern: '^\\d{5}$'}", status: StatusFailed, elements: 4, unexpected: 3, exampleRow: []int64{1, 2, 4}},
		{name: "unanchored search", cols: strCol, rows: one("xay", "b"), rule: "  - {check: regex, column: x, pattern: a}", status: StatusFailed, elements: 2, unexpected: 1, exampleRow: []int64{1}},
		{name: "dictionary", cols: dictCol, rows: one("a@b.c", "nope", "a@b.c", "nope"), rule: "  - {check: regex, column: x, pattern: '^[^@]+@[^@]+$'}", status: StatusFailed, elements: 4, unexpected: 2, exampleRow: []int64{1, 3}},
		{name: "mostly", cols: strCol, rows: one("a", "a", "b"), rule: "  - {check: regex, column: x, pattern: '^a$', mostly: 0.6}", status: StatusPassed, elements: 3, unexpected: 1},
		{name: "unicode", cols: strCol, rows: one("héllo", "hello"), rule: "  - {check: regex, column: x, pattern: '^h\\p{L}llo$'}", status: StatusPassed, elements: 2},
		{name: "not a string column", cols: intCol, rows: one(1), rule: "  - {check: regex, column: x, pattern: '1'}", status: StatusError, elements: 0, contains: "needs a string column"},
	})
}

func TestUniqueRule(t *testing.T) {
	two := []col{{name: "a", typ: table.String}, {name: "b", typ: table.Int64}}
	runCases(t, []ruleCase{
		{name: "unique", cols: intCol, rows: one(1, 2, 3), rule: "  - {check: unique, column: x}", status: StatusPassed, elements: 3},
		{name: "repeats", cols: intCol, rows: one(1, 2, 1, 1, 3), rule: "  - {check: unique, column: x}", status: StatusFailed, elements: 5, unexpected: 2, exampleRow: []int64{2, 3}},
		{name: "nulls are not keys", cols: intCol, rows: one(nil, 1, nil), rule: "  - {check: unique, column: x}", status: StatusPassed, elements: 1},
		{name: "mostly", cols: intCol, rows: one(1, 2, 3, 1), rule: "  - {check: unique, column: x, mostly: 0.75}", status: StatusPassed, elements: 4, unexpected: 1},
		{name: "floats: -0 is 0, NaN is NaN", cols: floatCol, rows: one(0.0, math.Copysign(0, -1), math.NaN(), math.NaN()), rule: "  - {check: unique, column: x}", status: StatusFailed, elements: 4, unexpected: 2},
		{name: "dictionary strings", cols: dictCol, rows: one("a", "b", "a"), rule: "  - {check: unique, column: x}", status: StatusFailed, elements: 3, unexpected: 1, exampleRow: []int64{2}},
		{name: "compound", cols: two, rows: [][]any{{"a", 1}, {"a", 2}, {"b", 1}, {"a", 1}, {"a", nil}}, rule: "  - {check: unique, columns: [a, b]}", status: StatusFailed, elements: 4, unexpected: 1, exampleRow: []int64{3}},
		{name: "compound strings do not run together", cols: []col{{name: "a", typ: table.String}, {name: "b", typ: table.String}}, rows: [][]any{{"ab", "c"}, {"a", "bc"}}, rule: "  - {check: unique, columns: [a, b]}", status: StatusPassed, elements: 2},
		{name: "bools", cols: boolCol, rows: one(true, false, true), rule: "  - {check: unique, column: x}", status: StatusFailed, elements: 3, unexpected: 1},
		{name: "key limit", cols: intCol, rows: one(1, 2, 3, 4, 5), opts: Options{MaxUniqueKeys: 3}, rule: "  - {check: unique, column: x}", status: StatusError, elements: 3, contains: "more than 3 distinct keys"},
		{name: "unknown key column", cols: two, rows: [][]any{{"a", 1}}, rule: "  - {check: unique, columns: [a, c]}", status: StatusError, elements: 0, contains: `no column "c"`},
	})
}

func TestRowCountRule(t *testing.T) {
	runCases(t, []ruleCase{
		{name: "within", cols: intCol, rows: one(1, 2, 3), rule: "  - {check: row_count, min: 3, max: 3}", status: StatusPassed, elements: 3},
		{name: "too few", cols: intCol, rows: one(1, 2), rule: "  - {check: row_count, min: 3}", status: StatusFailed, elements: 2, contains: "2 rows"},
		{name: "too many", cols: intCol, rows: one(1, 2, 3, 4), rule: "  - {check: row_count, max: 3}", status: StatusFailed, elements: 4},
		{name: "empty", cols: intCol, rows: nil, rule: "  - {check: row_count, min: 0, max: 0}", status: StatusPassed, elements: 0},
	})
}

func TestFreshnessRule(t *testing.T) {
	now := time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)
	opts := Options{Now: func() time.Time { return now }}
	runCases(t, []ruleCase{
		{name: "fresh", cols: tsCol, rows: one(now.Add(-48*time.Hour), now.Add(-2*time.Hour), nil), opts: opts, rule: "  - {check: freshness, column: x, max_age: 3h}", status: StatusPassed, elements: 1, contains: "age 2h0m0s"},
		{name: "stale", cols: tsCol, rows: one(now.Add(-48*time.Hour), now.Add(-4*time.Hour)), opts: opts, rule: "  - {check: freshness, column: x, max_age: 3h}", status: StatusFailed, elements: 1, contains: "age 4h0m0s"},
		{name: "exactly max_age", cols: tsCol, rows: one(now.Add(-3 * time.Hour)), opts: opts, rule: "  - {check: freshness, column: x, max_age: 3h}", status: StatusPassed, elements: 1},
		{name: "future", cols: tsCol, rows: one(now.Add(time.Hour)), opts: opts, rule: "  - {check: freshness, column: x, max_age: 1m}", status: StatusPassed, elements: 1},
		{name: "date of yesterday", cols: dateCol, rows: one(day(2024, 5, 31)), opts: opts, rule: "  - {check: freshness, column: x, max_age: 1d}", status: StatusPassed, elements: 1},
		{name: "date of two days ago", cols: dateCol, rows: one(day(2024, 5, 30)), opts: opts, rule: "  - {check: freshness, column: x, max_age: 1d}", status: StatusFailed, elements: 1},
		{name: "no values", cols: tsCol, rows: one(nil), opts: opts, rule: "  - {check: freshness, column: x, max_age: 1d}", status: StatusFailed, elements: 0, contains: "no values"},
		{name: "not a timestamp", cols: intCol, rows: one(1), opts: opts, rule: "  - {check: freshness, column: x, max_age: 1d}", status: StatusError, elements: 0, contains: "timestamp or date"},
	})
}

func TestUnknownColumnDoesNotStopOthers(t *testing.T) {
	src := build(t, intCol, 10, one(1, 2, nil)...)
	rep := runRules(t, src, Options{}, `  - {check: not_null, column: nope}
  - {check: not_null, column: x, mostly: 0.5}
  - {check: range, column: x, min: 0, severity: warning}
  - {check: row_count, min: 5, severity: warning}
`)
	if rep.Passed || rep.Total != 4 || rep.Errors != 1 || rep.Succeeded != 2 || rep.Warnings != 1 || rep.Failed != 0 || rep.Rows != 3 {
		t.Errorf("report %+v", rep)
	}
	if rep.Results[0].Status != StatusError || rep.Results[1].Status != StatusPassed || rep.Results[3].Status != StatusFailed {
		t.Errorf("results %v", rep.Results)
	}
	if ExitCode(rep, nil) != ExitFailed {
		t.Errorf("exit code %d", ExitCode(rep, nil))
	}
	// Without the broken rule, warnings alone pass.
	rep = runRules(t, build(t, intCol, 10, one(1)...), Options{}, "  - {check: row_count, min: 5, severity: warning}\n")
	if !rep.Passed || ExitCode(rep, nil) != ExitPassed || rep.Warnings != 1 {
		t.Errorf("warning only: %+v", rep)
	}
}

func TestReadErrorIsReturned(t *testing.T) {
	s := mustParse(t, "kind: ValidationSuite\nrules:\n  - {check: row_count, min: 1}\n")
	r, err := table.OpenReaderAt(context.Background(), strings.NewReader("a\n1\n2\nx\n"), 8, "t.csv", table.Options{InferRows: 1})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(context.Background(), s, r, Options{})
	if err == nil || rep != nil {
		t.Fatalf("Run on a file with a bad row: report %v, error %v; want an error", rep, err)
	}
	if ExitCode(rep, err) != ExitError {
		t.Errorf("exit code %d; want %d", ExitCode(rep, err), ExitError)
	}
}
