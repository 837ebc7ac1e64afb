package filter

import (
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/errdefs"
)

func num(f float64) Value    { return Value{Num: f, IsNum: true} }
func str(s string) Value     { return Value{Str: s} }
func list(s ...string) Value { return Value{List: s} }

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want []Clause
	}{
		{"", nil},
		{"  \t\n", nil},
		{"AND", nil},
		// Metrics: numbers in every form, every numeric comparator.
		{"metrics.rmse < 1", []Clause{{Metric, "rmse", Lt, num(1)}}},
		{"metric.rmse>=-1.5e2", []Clause{{Metric, "rmse", Ge, num(-150)}}},
		{"metrics.a <= 3.25E-1", []Clause{{Metric, "a", Le, num(0.325)}}},
		{"metrics.a > .5", []Clause{{Metric, "a", Gt, num(0.5)}}},
		{"metrics.a = 5.", []Clause{{Metric, "a", Eq, num(5)}}},
		{"metrics.a != -0", []Clause{{Metric, "a", Ne, num(0)}}},
		{"metrics.a <> 3", []Clause{{Metric, "a", Ne, num(3)}}},
		{"metrics.a=1e+3", []Clause{{Metric, "a", Eq, num(1000)}}},
		{"metrics.a<1", []Clause{{Metric, "a", Lt, num(1)}}},
		// Params and tags: single- or double-quoted strings, string comparators.
		{"params.model = 'xgb' and tags.team != \"risk\"", []Clause{{Param, "model", Eq, str("xgb")}, {Tag, "team", Ne, str("risk")}}},
		{"param.lr like '0.1%' AND parameter.x ILIKE '%A_'", []Clause{{Param, "lr", Like, str("0.1%")}, {Param, "x", ILike, str("%A_")}}},
		{"parameters.p = ''", []Clause{{Param, "p", Eq, str("")}}},
		{"tag.t = 'a b c'", []Clause{{Tag, "t", Eq, str("a b c")}}},
		{"params.q = 'it''s'", []Clause{{Param, "q", Eq, str("it's")}}},
		{`params.q = 'it\'s'`, []Clause{{Param, "q", Eq, str("it's")}}},
		{`params.q = "say ""hi"""`, []Clause{{Param, "q", Eq, str(`say "hi"`)}}},
		{`params.path = 'C:\data\x'`, []Clause{{Param, "path", Eq, str(`C:\data\x`)}}},
		{`params.path = 'a\\'`, []Clause{{Param, "path", Eq, str(`a\`)}}},
		{"params.q = 'and' AND tags.r = 'or'", []Clause{{Param, "q", Eq, str("and")}, {Tag, "r", Eq, str("or")}}},
		{"params.u = 'ünïcode ✓'", []Clause{{Param, "u", Eq, str("ünïcode ✓")}}},
		{"tags.x IS NULL and tags.y is not null", []Clause{{Tag, "x", IsNull, Value{}}, {Tag, "y", IsNotNull, Value{}}}},
		// Keys: dotted, quoted with backticks or double quotes, special characters.
		{"tags.mlflow.parentRunId = 'abc'", []Clause{{Tag, "mlflow.parentRunId", Eq, str("abc")}}},
		{"metrics.train.loss < 0.1", []Clause{{Metric, "train.loss", Lt, num(0.1)}}},
		{"metrics.`my metric` > 0 AND params.\"a b\" LIKE '%x%'", []Clause{{Metric, "my metric", Gt, num(0)}, {Param, "a b", Like, str("%x%")}}},
		{"metrics.`a.b-c:d/e` > 1", []Clause{{Metric, "a.b-c:d/e", Gt, num(1)}}},
		{"metrics.`a``b` > 1", []Clause{{Metric, "a`b", Gt, num(1)}}},
		{"`metrics`.`x` = 1", []Clause{{Metric, "x", Eq, num(1)}}},
		{"METRICS.x = 1", []Clause{{Metric, "x", Eq, num(1)}}},
		{"metrics.f1-score > 0.5", []Clause{{Metric, "f1-score", Gt, num(0.5)}}},
		{"metrics.ünï > 0", []Clause{{Metric, "ünï", Gt, num(0)}}},
		// Attributes: bare keys, every prefix, aliases kept as written.
		{"status = 'FINISHED'", []Clause{{Attribute, "status", Eq, str("FINISHED")}}},
		{"attribute.status = 'A' and attributes.status = 'B' and attr.status = 'C' and run.status = 'D'", []Clause{
			{Attribute, "status", Eq, str("A")}, {Attribute, "status", Eq, str("B")},
			{Attribute, "status", Eq, str("C")}, {Attribute, "status", Eq, str("D")}}},
		{"`run name` = 'r1'", []Clause{{Attribute, "run name", Eq, str("r1")}}},
		{"attributes.`Run Name` = 'r1'", []Clause{{Attribute, "Run Name", Eq, str("r1")}}},
		{"Created > 5", []Clause{{Attribute, "Created", Gt, num(5)}}},
		{"attr.start_time >= 1700000000000", []Clause{{Attribute, "start_time", Ge, num(1700000000000)}}},
		{"name LIKE 'exp-%'", []Clause{{Attribute, "name", Like, str("exp-%")}}},
		{"run_id > 'a'", []Clause{{Attribute, "run_id", Gt, str("a")}}},
		// Lists.
		{"attributes.run_id IN ('a', 'b')", []Clause{{Attribute, "run_id", In, list("a", "b")}}},
		{"run_id not in ('a')", []Clause{{Attribute, "run_id", NotIn, list("a")}}},
		{"run_id NOT  IN(\"a\",'b',)", []Clause{{Attribute, "run_id", NotIn, list("a", "b")}}},
		{"run_id IN (' x ', 'y)')", []Clause{{Attribute, "run_id", In, list(" x ", "y)")}}},
		// Datasets.
		{"datasets.name = 'train' AND dataset.context = 'training'", []Clause{{Dataset, "name", Eq, str("train")}, {Dataset, "context", Eq, str("training")}}},
		{"datasets.digest IN ('a', 'b')", []Clause{{Dataset, "digest", In, list("a", "b")}}},
		// AND: any case; stray ANDs are tolerated as in MLflow.
		{"metrics.a > 1 aNd metrics.b < 2", []Clause{{Metric, "a", Gt, num(1)}, {Metric, "b", Lt, num(2)}}},
		{"metrics.a > 1 and", []Clause{{Metric, "a", Gt, num(1)}}},
		{"AND metrics.a = 1 AND AND metrics.b = 2", []Clause{{Metric, "a", Eq, num(1)}, {Metric, "b", Eq, num(2)}}},
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
	tests := []struct{ in, want string }{
		// Messages as MLflow's SearchUtils gives them (comparator sets in a fixed order).
		{"metrics.a > 1 OR metrics.b < 2", "Invalid clause(s) in filter string: 'OR'"},
		{"metrics.a > 1 or metrics.b < 2", "Invalid clause(s) in filter string: 'OR'"},
		{"(metrics.a > 1)", "Invalid clause(s) in filter string: '(metrics.a > 1)'"},
		{"start_time > 1 and (params.a = 'b')", "Invalid clause(s) in filter string: '(params.a = 'b')'"},
		{"metrics.a >", "Invalid clause(s) in filter string: 'metrics.a', '>'"},
		{"metrics.a > and metrics.b < 1", "Invalid clause(s) in filter string: 'metrics.a', '>'"},
		{"metrics.a", "Invalid clause(s) in filter string: 'metrics.a'"},
		{"= 'x'", "Invalid clause(s) in filter string: '=', ''x''"},
		{"metrics.a > 1;", "Invalid clause(s) in filter string: ';'"},
		{"metrics.a > 1 --comment", "Invalid clause(s) in filter string: '--comment'"},
		{"metrics.a > 1 metrics.b < 2", "Invalid clause(s) in filter string: 'metrics.b', '<', '2'"},
		{"metrics.a = +1", "Invalid clause(s) in filter string: 'metrics.a', '=', '+', '1'"},
		{"run_id IN 'a'", "Invalid clause(s) in filter string: 'run_id', 'IN', ''a''"},
		{"run_id NOT 'a'", "Invalid clause(s) in filter string: 'run_id', 'NOT', ''a''"},
		{"tags.a = 'unterminated", "Invalid clause(s) in filter string: 'tags.a', '=', ''unterminated'"},
		{"tags.`a = 'x'", "Invalid clause(s) in filter string: 'tags.`a = 'x''"},
		{"run_id IN ('a'", "Invalid clause(s) in filter string: 'run_id', 'IN', '('a''"},
		{"metrics. > 1", "Invalid clause(s) in filter string: 'metrics.', '>', '1'"},
		{"metrics.`` > 1", "Invalid clause(s) in filter string: 'metrics.``', '>', '1'"},
		{"metrics.a > 1 and", ""}, // accepted: see TestParse
		{"foo.a = 'x'", "Invalid entity type 'foo'. Valid values are ['metric', 'parameter', 'tag', 'attribute', 'dataset']"},
		{"metrics.a > 'x'", "Expected numeric value type for metric. Found 'x'"},
		{"metrics.a > \"1\"", "Expected numeric value type for metric. Found \"1\""},
		{"metrics.a = NaN", "Expected numeric value type for metric. Found NaN"},
		{"metrics.a IN ('a')", "Expected numeric value type for metric. Found ('a')"},
		{"metrics.a > 1e999", "Expected numeric value type for metric. Found 1e999"},
		{"metrics.a LIKE 1", "Invalid comparator 'LIKE' not one of '{'>', '>=', '!=', '=', '<', '<='}'"},
		{"metrics.a IS NULL", "Invalid comparator 'IS NULL' not one of '{'>', '>=', '!=', '=', '<', '<='}'"},
		{"metrics.a ~ 1", "Invalid comparator '~' not one of '{'>', '>=', '!=', '=', '<', '<='}'"},
		{"params.a == 'x'", "Invalid comparator '==' not one of '{'!=', '=', 'LIKE', 'ILIKE'}'"},
		{"params.a > 'x'", "Invalid comparator '>' not one of '{'!=', '=', 'LIKE', 'ILIKE'}'"},
		{"tags.a NOT IN ('x')", "Expected a quoted string value for tag (e.g. 'my-value'). Got value ('x')"},
		{"params.a = 1", "Expected a quoted string value for parameter (e.g. 'my-value'). Got value 1"},
		{"tags.a > 5", "Expected a quoted string value for tag (e.g. 'my-value'). Got value 5"},
		{"params.a = abc", "Parameter value is either not quoted or unidentified quote types used for string value abc. Use either single or double quotes."},
		{"status = FINISHED", "Parameter value is either not quoted or unidentified quote types used for string value FINISHED. Use either single or double quotes."},
		{"datasets.name = 1", "Expected a quoted string value for dataset attributes. Got value 1"},
		{"datasets.context > 'x'", "Invalid comparator '>' not one of '{'!=', '=', 'LIKE', 'ILIKE', 'IN', 'NOT IN'}'"},
		{"status ~= 'x'", "Invalid comparator '~=' not one of '{'>', '>=', '!=', '=', '<', '<=', 'LIKE', 'ILIKE', 'IN', 'NOT IN'}'"},
		{"run_id IN ()", "While parsing a list in the query, expected a non-empty list of string values, but got empty list"},
		{"run_id IN (1, 2)", "While parsing a list in the query, expected string value, punctuation, or whitespace, but got different type in list: (1, 2)"},
		{"run_id IN ('a' 'b')", "While parsing a list in the query, expected string value, punctuation, or whitespace, but got different type in list: ('a' 'b')"},
		{"run_id IN (('a'))", "While parsing a list in the query, expected string value, punctuation, or whitespace, but got different type in list: (('a'))"},
		{"run_id = ('a')", "Invalid comparator '=' for a list of values: only IN and NOT IN take a list"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := Parse(tt.in)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Parse(%q): %v", tt.in, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse(%q) succeeded, want %q", tt.in, tt.want)
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("error %v is not ErrInvalidArgument", err)
			}
			if got := errdefs.Message(err); got != tt.want {
				t.Fatalf("Parse(%q) error\n got  %s\n want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestClauseString(t *testing.T) {
	tests := []struct {
		c    Clause
		want string
	}{
		{Clause{Metric, "rmse", Lt, num(0.5)}, "metrics.`rmse` < 0.5"},
		{Clause{Metric, "big", Ge, num(1e21)}, "metrics.`big` >= 1e+21"},
		{Clause{Param, "a`b", Eq, str(`it's a\b`)}, "params.`a``b` = 'it''s a\\\\b'"},
		{Clause{Attribute, "run_id", NotIn, list("x", "y'")}, "attributes.`run_id` NOT IN ('x', 'y''')"},
		{Clause{Tag, "t", IsNotNull, Value{}}, "tags.`t` IS NOT NULL"},
		{Clause{Dataset, "name", ILike, str("%a%")}, "datasets.`name` ILIKE '%a%'"},
	}
	for _, tt := range tests {
		if got := tt.c.String(); got != tt.want {
			t.Errorf("String() = %s, want %s", got, tt.want)
		}
		back, err := Parse(tt.c.String())
		if err != nil || len(back) != 1 || !reflect.DeepEqual(back[0], tt.c) {
			t.Errorf("Parse(%s) = %+v, %v; want %+v", tt.c, back, err, tt.c)
		}
	}
}

func TestParseOrderBy(t *testing.T) {
	tests := []struct {
		in   string
		want OrderBy
		err  string
	}{
		{"metrics.rmse DESC", OrderBy{Metric, "rmse", false}, ""},
		{"metrics.rmse desc", OrderBy{Metric, "rmse", false}, ""},
		{"params.`a b` asc", OrderBy{Param, "a b", true}, ""},
		{"params.\"a b\" ASC", OrderBy{Param, "a b", true}, ""},
		{"start_time", OrderBy{Attribute, "start_time", true}, ""},
		{"  start_time  ", OrderBy{Attribute, "start_time", true}, ""},
		{"`Run Name` DESC", OrderBy{Attribute, "Run Name", false}, ""},
		{"attributes.run_name desc", OrderBy{Attribute, "run_name", false}, ""},
		{"tags.mlflow.runName", OrderBy{Tag, "mlflow.runName", true}, ""},
		{"datasets.name", OrderBy{Dataset, "name", true}, ""},
		{"metrics.rmse sideways", OrderBy{}, "Invalid ordering key in order_by clause 'metrics.rmse sideways'."},
		{"metrics.rmse DESC extra", OrderBy{}, "Invalid order_by clause 'metrics.rmse DESC extra'. Could not be parsed."},
		{"metrics.`rmse`DESC", OrderBy{}, "Invalid order_by clause 'metrics.`rmse`DESC'. Could not be parsed."},
		{"metrics.rmse, params.a", OrderBy{}, "Invalid order_by clause 'metrics.rmse, params.a'. Could not be parsed."},
		{"", OrderBy{}, "Invalid order_by clause ''. Could not be parsed."},
		{"DESC", OrderBy{Attribute, "DESC", true}, ""}, // a key as far as parsing goes; domains reject it
		{"metrics.", OrderBy{}, "Invalid order_by clause 'metrics.'. Could not be parsed."},
		{"metrics.`a", OrderBy{}, "Invalid order_by clause 'metrics.`a'. Could not be parsed."},
		{"foo.bar", OrderBy{}, "Invalid entity type 'foo'. Valid values are ['metric', 'parameter', 'tag', 'attribute', 'dataset']"},
	}
	for _, tt := range tests {
		got, err := ParseOrderBy(tt.in)
		if tt.err != "" {
			if err == nil || !errors.Is(err, errdefs.ErrInvalidArgument) || errdefs.Message(err) != tt.err {
				t.Errorf("ParseOrderBy(%q) = %+v, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseOrderBy(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestPageToken(t *testing.T) {
	// Byte for byte what MLflow writes: base64.b64encode(json.dumps({"offset": 1000})).
	if got, want := EncodePageToken(1000), "eyJvZmZzZXQiOiAxMDAwfQ=="; got != want {
		t.Fatalf("EncodePageToken(1000) = %s, want %s", got, want)
	}
	for _, off := range []int{0, 1, 1000, 123456, 1 << 40} {
		got, err := DecodePageToken(EncodePageToken(off))
		if err != nil || got != off {
			t.Fatalf("round trip %d: %d, %v", off, got, err)
		}
	}
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	good := map[string]int{
		"":                      0,
		b64(`{"offset":7}`):     7,
		b64(`{"offset": "42"}`): 42, // MLflow int()s the value
		base64.RawStdEncoding.EncodeToString([]byte(`{"offset": 5}`)): 5,
	}
	for tok, want := range good {
		if got, err := DecodePageToken(tok); err != nil || got != want {
			t.Errorf("DecodePageToken(%q) = %d, %v; want %d", tok, got, err, want)
		}
	}
	bad := map[string]string{
		"!!!":                   "Invalid page token, could not base64-decode",
		b64("not json"):         "Invalid page token, decoded value=not json",
		b64(`{"page": 1}`):      `Invalid page token, parsed value={"page": 1}`,
		b64(`{"offset": -1}`):   `Invalid page token, parsed value={"offset": -1}`,
		b64(`{"offset": 1.5}`):  `Invalid page token, parsed value={"offset": 1.5}`,
		b64(`{"offset": "x"}`):  "Invalid page token, not stringable x",
		b64(`{"offset": null}`): `Invalid page token, parsed value={"offset": null}`,
		b64(`[1]`):              "Invalid page token, decoded value=[1]",
	}
	for tok, want := range bad {
		_, err := DecodePageToken(tok)
		if !errors.Is(err, errdefs.ErrInvalidArgument) || errdefs.Message(err) != want {
			t.Errorf("DecodePageToken(%q) = %v, want %q", tok, err, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"metrics.rmse < 1", "params.a = 'x' and tags.`b c` LIKE '%y'", "run_id IN ('a','b')",
		"tags.x IS NOT NULL", "attributes.start_time >= -1e3", "metrics.\"a\" != 2", `params.q = 'it''s \' \\'`,
		"datasets.name NOT IN (\"a\", 'b',)", "metrics.`a``b`.c <> .5 AND AND x = 'y'", "foo.bar = 1 OR (a = 'b')"} {
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
			if c.Key == "" {
				t.Fatalf("Parse(%q) gave an empty key: %+v", s, c)
			}
			parts[i] = c.String()
		}
		canon := strings.Join(parts, " AND ")
		again, err := Parse(canon)
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", canon, s, err)
		}
		if !reflect.DeepEqual(again, clauses) {
			t.Fatalf("round trip of %q via %q changed clauses:\n%+v\n%+v", s, canon, clauses, again)
		}
	})
}

func FuzzParseOrderBy(f *testing.F) {
	for _, s := range []string{"metrics.rmse DESC", "params.`a b`", "start_time asc", "tags.\"x\"\"y\".z desc"} {
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
		dir := " DESC"
		if ob.Ascending {
			dir = " ASC"
		}
		canon := ob.Entity.String() + "." + quoteWith(ob.Key, '`') + dir
		if again, err := ParseOrderBy(canon); err != nil || again != ob {
			t.Fatalf("round trip of %q via %q: %+v, %v; want %+v", s, canon, again, err, ob)
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
