package validate

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/dataset/table"
)

// wideBatch is 1,000 rows of an int, a float, a plain string, a
// dictionary string and a timestamp column.
func wideBatch(t testing.TB) (*memSource, *table.Batch) {
	rng := rand.New(rand.NewPCG(1, 1))
	cols := []col{
		{name: "id", typ: table.Int64}, {name: "v", typ: table.Float64}, {name: "s", typ: table.String},
		{name: "d", typ: table.String, dict: true}, {name: "t", typ: table.Timestamp},
	}
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	rows := make([][]any, 1000)
	for i := range rows {
		var s any = fmt.Sprintf("s%03d", rng.IntN(1200))
		if i%97 == 0 {
			s = nil
		}
		rows[i] = []any{i % 900, rng.NormFloat64(), s, []string{"red", "green", "blue", "??"}[rng.IntN(4)], base.Add(time.Duration(i) * time.Minute)}
	}
	src := build(t, cols, 1000, rows...)
	return src, src.batches[0]
}

const wideRules = `  - {check: type, column: id, type: int}
  - {check: type, column: s, type: float}
  - {check: not_null, column: s}
  - {check: range, column: v, min: -1, max: 1}
  - {check: range, column: t, min: 2024-01-01T06:00:00Z}
  - {check: in_set, column: d, values: [red, green, blue]}
  - {check: in_set, column: s, values: [s001, s002]}
  - {check: regex, column: s, pattern: '^s0\d\d$'}
  - {check: regex, column: d, pattern: '^[a-z]+$'}
  - {check: unique, columns: [id, d]}
  - {check: freshness, column: t, max_age: 1d}
  - {check: distribution, column: v}
  - {check: distribution, column: d}
`

// TestNoAllocationsPerValue checks that, once warm, checking a batch with
// every row-level rule allocates nothing.
func TestNoAllocationsPerValue(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	src, b := wideBatch(t)
	s := mustParse(t, "kind: ValidationSuite\nrules:\n"+wideRules)
	e := &env{schema: src.Schema(), opts: &Options{SampleSize: 100}, maxEx: DefaultExamples}
	var rules []rowRule
	for i := range s.Rules {
		c, err := compile(e, &s.Rules[i])
		if err != nil {
			t.Fatalf("%s: %v", s.Rules[i].Name, err)
		}
		rules = append(rules, c.(rowRule))
	}
	for _, r := range rules { // warm up: examples, dictionaries, key table
		r.observe(b, 0)
	}
	allocs := testing.AllocsPerRun(20, func() {
		for _, r := range rules {
			r.observe(b, 0)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per batch of %d rows; want 0", allocs, b.Len)
		for i, r := range rules {
			if a := testing.AllocsPerRun(5, func() { r.observe(b, 0) }); a != 0 {
				t.Errorf("rule %s: %v allocations", s.Rules[i].Name, a)
			}
		}
	}
}

// TestRunOnCSV validates a real CSV file read by the table package.
func TestRunOnCSV(t *testing.T) {
	csv := `id,fare,payment,zip,pickup
1,12.5,card,75001,2024-05-01 10:00:00
2,-3,cash,7500,2024-05-01 11:00:00
3,,card,75002,2024-05-01 12:00:00
3,900,bitcoin,75003,2024-05-01 13:00:00
`
	r, err := table.OpenReaderAt(context.Background(), strings.NewReader(csv), int64(len(csv)), "trips.csv", table.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := mustParse(t, `kind: ValidationSuite
name: trips
rules:
  - {check: type, column: fare, type: float}
  - {check: not_null, column: fare}
  - {check: range, column: fare, min: 0, max: 500}
  - {check: in_set, column: payment, values: [card, cash]}
  - {check: regex, column: zip, pattern: '^\d{5}$'}
  - {check: unique, column: id}
  - {check: row_count, min: 4, max: 4}
  - {check: freshness, column: pickup, max_age: 3h}
`)
	now := time.Date(2024, 5, 1, 15, 0, 0, 0, time.UTC)
	rep, err := Run(context.Background(), s, r, Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		status     Status
		unexpected int64
		rows       string
	}{
		"type(fare)":        {StatusPassed, 0, ""},
		"not_null(fare)":    {StatusFailed, 1, "2"},
		"range(fare)":       {StatusFailed, 2, "1 3"},
		"in_set(payment)":   {StatusFailed, 1, "3"},
		"unique(id)":        {StatusFailed, 1, "3"},
		"row_count":         {StatusPassed, 0, ""},
		"freshness(pickup)": {StatusPassed, 0, ""},
	}
	for _, res := range rep.Results {
		w, ok := want[res.Rule]
		if !ok {
			continue
		}
		var rows []string
		for _, e := range res.Examples {
			rows = append(rows, fmt.Sprint(e.Row))
		}
		if res.Status != w.status || res.Unexpected != w.unexpected || strings.Join(rows, " ") != w.rows {
			t.Errorf("%s: %s; want %s, %d unexpected at rows %q", res.Rule, describeResult(res), w.status, w.unexpected, w.rows)
		}
	}
	// The zip column is read as integers by inference: the regex rule says
	// so rather than crashing.
	for _, res := range rep.Results {
		if res.Rule == "regex(zip)" && (res.Status != StatusError || !strings.Contains(res.Error, "needs a string column")) {
			t.Errorf("regex on an int column: %s", describeResult(res))
		}
	}
	var out bytes.Buffer
	if err := rep.WriteText(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "trips: FAILED") {
		t.Errorf("text:\n%s", out.String())
	}
}

func BenchmarkRun(b *testing.B) {
	src, batch := wideBatch(b)
	s := mustParse(b, "kind: ValidationSuite\nrules:\n"+wideRules)
	many := &memSource{schema: src.schema}
	for i := 0; i < 100; i++ {
		many.batches = append(many.batches, batch)
	}
	b.SetBytes(0)
	for b.Loop() {
		many.i = 0
		if _, err := Run(context.Background(), s, many, Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(100*batch.Len)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func TestMalformedBatchIsAnError(t *testing.T) {
	src := build(t, intCol, 10, one(1, 2, 3)...)
	src.batches[0].Len = 5 // the vectors hold 3 rows
	s := mustParse(t, "kind: ValidationSuite\nrules:\n  - {check: range, column: x, min: 0}\n")
	if _, err := Run(context.Background(), s, src, Options{}); err == nil || !strings.Contains(err.Error(), `column "x"`) {
		t.Errorf("Run on a malformed batch: %v", err)
	}
}

func TestReferenceFromTables(t *testing.T) {
	opened := 0
	resolve := ReferenceFromTables(func(_ context.Context, name string) (Source, error) {
		opened++
		if name != "v1" {
			return nil, fmt.Errorf("no version %q", name)
		}
		return floatsTable(t, numbers(1, 400, 0)), nil
	}, ProfileOptions{})
	s := mustParse(t, `kind: ValidationSuite
reference: v1
rules:
  - {check: distribution, column: x}
  - {check: distribution, column: x, test: psi, name: psi}
  - {check: distribution, column: x, reference: v2, name: other}
`)
	rep, err := Run(context.Background(), s, floatsTable(t, numbers(2, 300, 0)), Options{References: resolve})
	if err != nil {
		t.Fatal(err)
	}
	if opened != 2 {
		t.Errorf("opened %d tables; want one per reference", opened)
	}
	if rep.Results[0].Status != StatusPassed || rep.Results[1].Status != StatusPassed || rep.Results[2].Status != StatusError ||
		!strings.Contains(rep.Results[2].Error, `no version "v2"`) {
		t.Errorf("results %+v", rep.Results)
	}
}

func TestReadSuite(t *testing.T) {
	if _, err := ReadSuite(strings.NewReader(fullSuite)); err != nil {
		t.Fatal(err)
	}
	big := strings.NewReader("kind: ValidationSuite\n#" + strings.Repeat("x", MaxSuiteBytes))
	if _, err := ReadSuite(big); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("oversized suite: %v", err)
	}
}
