package filter

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/errdefs"
)

func TestParse(t *testing.T) {
	num := func(f float64) Value { return Value{Num: f, IsNum: true} }
	str := func(s string) Value { return Value{Str: s} }
	tests := []struct {
		in   string
		want []Clause
	}{
		{"", nil},
		{"  ", nil},
		{"metrics.rmse < 1", []Clause{{Metric, "rmse", Lt, num(1)}}},
		{"metric.rmse>=-1.5e2", []Clause{{Metric, "rmse", Ge, num(-150)}}},
		{"params.model = 'xgb' and tags.team != \"risk\"", []Clause{{Param, "model", Eq, str("xgb")}, {Tag, "team", Ne, str("risk")}}},
		{"tags.mlflow.parentRunId = 'abc'", []Clause{{Tag, "mlflow.parentRunId", Eq, str("abc")}}},
		{"metrics.`my metric` > 0 AND params.\"a b\" LIKE '%x%'", []Clause{{Metric, "my metric", Gt, num(0)}, {Param, "a b", Like, str("%x%")}}},
		{"attributes.run_id IN ('a', 'b')", []Clause{{Attribute, "run_id", In, Value{List: []string{"a", "b"}}}}},
		{"run_id not in ('a')", []Clause{{Attribute, "run_id", NotIn, Value{List: []string{"a"}}}}},
		{"status = 'FINISHED'", []Clause{{Attribute, "status", Eq, str("FINISHED")}}},
		{"`run name` = 'r1'", []Clause{{Attribute, "run name", Eq, str("r1")}}},
		{"attr.start_time >= 1700000000000", []Clause{{Attribute, "start_time", Ge, num(1700000000000)}}},
		{"params.lr ilike 'O.1%'", []Clause{{Param, "lr", ILike, str("O.1%")}}},
		{"tags.x IS NULL and tags.y is not null", []Clause{{Tag, "x", IsNull, Value{}}, {Tag, "y", IsNotNull, Value{}}}},
		{"datasets.name = 'train' AND dataset.context = 'training'", []Clause{{Dataset, "name", Eq, str("train")}, {Dataset, "context", Eq, str("training")}}},
		{"metrics.a <> 3", []Clause{{Metric, "a", Ne, num(3)}}},
		{"params.q = 'it''s'", []Clause{{Param, "q", Eq, str("it's")}}},
		{"name LIKE 'exp-%'", []Clause{{Attribute, "name", Like, str("exp-%")}}},
		{"metrics.f1-score > 0.5", []Clause{{Metric, "f1-score", Gt, num(0.5)}}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Parse(%q)\n got  %+v\n want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ in, wantSub string }{
		{"metrics.a > 1 OR metrics.b < 2", "OR"},
		{"(metrics.a > 1)", "parentheses"},
		{"metrics.a >", "missing value"},
		{"metrics.a > 'x'", "must be compared to a number"},
		{"metrics.a LIKE 1", "must be compared to a number"},
		{"params.a > 'x'", "Invalid comparator"},
		{"params.a = 1", "quoted string"},
		{"params.a = 'x' params.b = 'y'", "Invalid clause"},
		{"tags.a = 'unterminated", "unterminated"},
		{"run_id IN 'a'", "IN needs"},
		{"run_id = ('a')", "list value"},
		{"run_id IN ('a' 'b')", "expected ','"},
		{"run_id IN (1, 2)", "quoted"},
		{"= 'x'", "expected an identifier"},
		{"metrics.a ~ 1", "Invalid comparator"},
		{"metrics. > 1", "empty key"},
		{"metrics.a > 1 and", "expected an identifier"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) succeeded", tt.in)
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("error %v is not ErrInvalidArgument", err)
			}
			if !strings.Contains(err.Error(), tt.wantSub) {
				t.Fatalf("error %q does not contain %q", err, tt.wantSub)
			}
		})
	}
}

func TestParseOrderBy(t *testing.T) {
	tests := []struct {
		in   string
		want OrderBy
		ok   bool
	}{
		{"metrics.rmse DESC", OrderBy{Metric, "rmse", false}, true},
		{"params.`a b` asc", OrderBy{Param, "a b", true}, true},
		{"start_time", OrderBy{Attribute, "start_time", true}, true},
		{"attributes.run_name desc", OrderBy{Attribute, "run_name", false}, true},
		{"tags.mlflow.runName", OrderBy{Tag, "mlflow.runName", true}, true},
		{"metrics.rmse sideways", OrderBy{}, false},
		{"metrics.rmse DESC extra", OrderBy{}, false},
		{"", OrderBy{}, false},
	}
	for _, tt := range tests {
		got, err := ParseOrderBy(tt.in)
		if (err == nil) != tt.ok {
			t.Fatalf("ParseOrderBy(%q) err = %v, want ok=%v", tt.in, err, tt.ok)
		}
		if tt.ok && got != tt.want {
			t.Fatalf("ParseOrderBy(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestPageToken(t *testing.T) {
	for _, off := range []int{0, 1, 1000, 123456} {
		got, err := DecodePageToken(EncodePageToken(off))
		if err != nil || got != off {
			t.Fatalf("round trip %d: %d, %v", off, got, err)
		}
	}
	if n, err := DecodePageToken(""); n != 0 || err != nil {
		t.Fatalf("empty token: %d %v", n, err)
	}
	for _, bad := range []string{"!!!", "bm90IGpzb24=", "eyJvZmZzZXQiOiAtMX0="} { // garbage, "not json", {"offset": -1}
		if _, err := DecodePageToken(bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("DecodePageToken(%q) = %v, want invalid", bad, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"metrics.rmse < 1", "params.a = 'x' and tags.`b c` LIKE '%y'", "run_id IN ('a','b')",
		"tags.x IS NOT NULL", "attributes.start_time >= -1e3", "metrics.\"a\" != 2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		clauses, err := Parse(s)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("error of the wrong kind: %v", err)
			}
			return
		}
		// A parsed filter rendered canonically parses to the same clauses.
		parts := make([]string, len(clauses))
		for i, c := range clauses {
			if strings.ContainsAny(c.Key, "`") || (strings.Contains(c.Value.Str, "'") && strings.Contains(c.Value.Str, `"`)) {
				return // not representable in the canonical quoting
			}
			for _, v := range c.Value.List {
				if strings.Contains(v, "'") && strings.Contains(v, `"`) {
					return
				}
			}
			parts[i] = c.String()
		}
		again, err := Parse(strings.Join(parts, " AND "))
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", strings.Join(parts, " AND "), s, err)
		}
		if !reflect.DeepEqual(again, clauses) && !(len(again) == 0 && len(clauses) == 0) {
			t.Fatalf("round trip of %q changed clauses:\n%+v\n%+v", s, clauses, again)
		}
	})
}

func FuzzParseOrderBy(f *testing.F) {
	for _, s := range []string{"metrics.rmse DESC", "params.`a b`", "start_time asc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ob, err := ParseOrderBy(s)
		if err != nil {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("error of the wrong kind: %v", err)
			}
			return
		}
		if ob.Key == "" {
			t.Fatalf("ParseOrderBy(%q) accepted an empty key", s)
		}
	})
}

func TestLikeToGlob(t *testing.T) {
	for in, want := range map[string]string{"XG%": "XG*", "a_c": "a?c", "50*%": "50[*]*", "[x]?": "[[]x][?]"} {
		if got := likeToGlob(in); got != want {
			t.Errorf("likeToGlob(%q) = %q, want %q", in, got, want)
		}
	}
}
