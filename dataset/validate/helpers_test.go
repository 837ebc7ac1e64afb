package validate

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/dataset/table"
)

// memSource streams prepared batches.
type memSource struct {
	schema  table.Schema
	batches []*table.Batch
	i       int
}

func (m *memSource) Schema() table.Schema { return m.schema }

func (m *memSource) Next(context.Context) (*table.Batch, error) {
	if m.i >= len(m.batches) {
		return nil, io.EOF
	}
	m.i++
	return m.batches[m.i-1], nil
}

// col declares a column of a test table. dict makes a String column
// dictionary-encoded (one dictionary shared by every batch).
type col struct {
	name string
	typ  table.Type
	unit table.TimeUnit
	dict bool
}

// build makes a table of rows (nil is a null) cut into batches of
// batchRows. Values: bool, int (int64 for Int64/Timestamp/Date), float64,
// string, time.Time (Timestamp in the column's unit, Date as a day).
func build(t testing.TB, cols []col, batchRows int, rows ...[]any) *memSource {
	t.Helper()
	s := table.Schema{}
	for _, c := range cols {
		f := table.Field{Name: c.name, Type: c.typ, Nullable: true}
		if c.typ == table.Timestamp {
			f.Unit = c.unit
			if f.Unit == "" {
				f.Unit = table.Nanosecond
			}
			f.UTC = true
		}
		s.Fields = append(s.Fields, f)
	}
	dicts := make([]*table.Strings, len(cols))
	dictIndex := make([]map[string]int32, len(cols))
	for k, c := range cols {
		if c.dict {
			dicts[k] = &table.Strings{}
			dictIndex[k] = map[string]int32{}
		}
	}
	src := &memSource{schema: s}
	for startRow := 0; startRow < len(rows) || (startRow == 0 && len(rows) == 0); startRow += batchRows {
		end := min(startRow+batchRows, len(rows))
		part := rows[startRow:end]
		b := &table.Batch{Len: len(part)}
		for k, c := range cols {
			tc := table.Column{Type: c.typ, Valid: table.NewBitmap(len(part))}
			for i, r := range part {
				v := r[k]
				if v == nil {
					tc.Valid.Set(i, false)
				}
				switch c.typ {
				case table.Bool:
					x, _ := v.(bool)
					tc.Bools = append(tc.Bools, x)
				case table.Int64:
					x, _ := v.(int)
					tc.Ints = append(tc.Ints, int64(x))
				case table.Float64:
					x, _ := v.(float64)
					tc.Floats = append(tc.Floats, x)
				case table.String:
					x, _ := v.(string)
					if c.dict {
						code, ok := dictIndex[k][x]
						if !ok {
							code = int32(dicts[k].Len())
							dicts[k].AppendString(x)
							dictIndex[k][x] = code
						}
						tc.Codes = append(tc.Codes, code)
						tc.Dict = dicts[k]
					} else {
						tc.Strs.AppendString(x)
					}
				case table.Timestamp:
					x, _ := v.(time.Time)
					tc.Ints = append(tc.Ints, x.UnixNano()/(1e9/s.Fields[k].Unit.PerSecond()))
				case table.Date:
					x, _ := v.(time.Time)
					tc.Ints = append(tc.Ints, x.Unix()/86400)
				}
			}
			if c.typ == table.String && c.dict && tc.Dict == nil {
				tc.Dict = dicts[k]
			}
			b.Columns = append(b.Columns, tc)
		}
		if err := b.Check(s); err != nil && len(part) > 0 {
			t.Fatalf("test batch: %v", err)
		}
		src.batches = append(src.batches, b)
		if len(rows) == 0 {
			break
		}
	}
	return src
}

func mustParse(t testing.TB, yml string) *Suite {
	t.Helper()
	s, err := ParseSuite([]byte(yml))
	if err != nil {
		t.Fatalf("ParseSuite: %v\n%s", err, yml)
	}
	return s
}

// runRules runs a suite made of the given rules (YAML list items).
func runRules(t testing.TB, src Source, opts Options, rules string) *Report {
	t.Helper()
	s := mustParse(t, "kind: ValidationSuite\nname: t\nrules:\n"+rules)
	rep, err := Run(context.Background(), s, src, opts)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return rep
}

func ints(v ...int) [][]any {
	out := make([][]any, len(v))
	for i, x := range v {
		out[i] = []any{x}
	}
	return out
}

func one(vals ...any) [][]any {
	out := make([][]any, len(vals))
	for i, x := range vals {
		out[i] = []any{x}
	}
	return out
}

func describeResult(r Result) string {
	return fmt.Sprintf("status=%s elements=%d unexpected=%d observed=%q expected=%q error=%q examples=%v",
		r.Status, r.Elements, r.Unexpected, r.Observed, r.Expected, r.Error, r.Examples)
}
