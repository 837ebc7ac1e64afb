package alert

import (
	"errors"
	"math"
	"sort"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/errdefs"
)

func TestParseExpr(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"drift_share > 0.5", `drift_share > 0.5`},
		{"  drift_share>=0.5  ", `drift_share >= 0.5`},
		{`feature_drift_score{feature="age"} > 0.1`, `feature_drift_score{feature="age"} > 0.1`},
		{`feature_drift_score{feature=~"a.*", method!='psi',} > 1e-3`, `feature_drift_score{feature=~"a.*", method!="psi"} > 0.001`},
		{`x{a!~"b|c"} < -2`, `x{a!~"b|c"} < -2`},
		{`x{} == 1`, `x == 1`},
		{`x != +Inf`, `x != +Inf`},
		{`a > 1 and b < 2 or c == 3`, `a > 1 and b < 2 or c == 3`},
		{`a > 1 AND b < 2 OR c <= 3 and d >= 4`, `a > 1 and b < 2 or c <= 3 and d >= 4`},
		{`x{l="quote \" and 'single'"} > 0`, `x{l="quote \" and 'single'"} > 0`},
		{`x{l='it\'s'} > 0`, `x{l="it's"} > 0`},
		{"latency_p99_seconds > 2.5e-1", "latency_p99_seconds > 0.25"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			e, err := ParseExpr(tt.in)
			if err != nil {
				t.Fatalf("ParseExpr: %v", err)
			}
			if got := e.String(); got != tt.want {
				t.Fatalf("String() = %q, want %q", got, tt.want)
			}
			// The canonical form parses to itself.
			e2, err := ParseExpr(e.String())
			if err != nil || e2.String() != tt.want {
				t.Fatalf("round trip: %v %q", err, e2)
			}
		})
	}
}

func TestParseExprErrors(t *testing.T) {
	tests := []struct {
		in   string
		col  int
		want string
	}{
		{"", 1, "empty expression"},
		{"   ", 4, "empty expression"},
		{"drift_share", 12, "want > >= < <= == !="},
		{"drift_share >", 14, "want a number"},
		{"drift_share > abc", 15, "want a number"},
		{"drift_share > 0.5 0.6", 19, `unexpected "0.6"`},
		{"drift_share ~ 1", 13, `unexpected "~`},
		{"1x > 2", 1, "want a metric name"},
		{"a > 1 and", 10, "want a metric name"},
		{"a > 1 or or b > 2", 10, `unexpected "or"`},
		{`a{b="c" > 1`, 9, "want , or }"},
		{`a{b=c} > 1`, 5, "want a quoted string"},
		{`a{b="c} > 1`, 5, "unterminated string"},
		{`a{b=="c"} > 1`, 4, "want = != =~ !~"},
		{`a{b=~"("} > 1`, 6, "bad regular expression"},
		{`a{="x"} > 1`, 3, "want a label name"},
		{`a{b="\q"} > 1`, 5, "invalid escape"},
		{`a > NaN`, 5, "want a number"},
		{`a > 1e`, 6, `unexpected "e"`},
		{`a{b="c"`, 8, "want , or }"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParseExpr(tt.in)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("error %v is not invalid-argument", err)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v carries no ParseError", err)
			}
			if pe.Column != tt.col || !strings.Contains(pe.Msg, tt.want) {
				t.Fatalf("got %q (column %d), want column %d containing %q", err, pe.Column, tt.col, tt.want)
			}
		})
	}
	if _, err := ParseExpr(strings.Repeat("a", maxExprLen+1) + " > 1"); err == nil {
		t.Fatal("an overlong expression was accepted")
	}
}

func l(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestEval(t *testing.T) {
	samples := []Sample{
		{Metric: "drift_share", Labels: l("monitor", "m", "endpoint", "e"), Value: 0.6},
		{Metric: "feature_drift_score", Labels: l("monitor", "m", "feature", "age", "method", "ks"), Value: 0.01},
		{Metric: "feature_drift_score", Labels: l("monitor", "m", "feature", "income", "method", "psi"), Value: 0.3},
		{Metric: "feature_drift_score", Labels: l("monitor", "m", "feature", "zip", "method", "psi"), Value: math.NaN()},
		{Metric: "requests", Labels: l("monitor", "m", "endpoint", "e"), Value: 50},
		{Metric: "error_rate", Labels: l("monitor", "m", "endpoint", "e"), Value: 0.2},
		{Metric: "accuracy", Labels: l("monitor", "m", "slice", "US"), Value: 0.7},
		{Metric: "accuracy", Labels: l("monitor", "m", "slice", "EU"), Value: 0.9},
	}
	// want: fingerprint-independent rendering "label=value,...:true|false"
	tests := []struct {
		expr string
		want []string
	}{
		{"drift_share > 0.5", []string{"endpoint=e,monitor=m:true:0.6"}},
		{"drift_share > 0.7", []string{"endpoint=e,monitor=m:false:0.6"}},
		{"missing_metric > 0", nil},
		{`feature_drift_score{method="psi"} >= 0.2`, []string{"feature=income,method=psi,monitor=m:true:0.3"}}, // NaN is no data
		{`feature_drift_score{feature=~"a.*|inc.*"} > 0.1`, []string{"feature=age,method=ks,monitor=m:false:0.01", "feature=income,method=psi,monitor=m:true:0.3"}},
		{`feature_drift_score{feature!~"a.*", method!="ks"} > 0.1`, []string{"feature=income,method=psi,monitor=m:true:0.3"}},
		{`feature_drift_score{nolabel=""} > 0.1`, []string{"feature=age,method=ks,monitor=m:false:0.01", "feature=income,method=psi,monitor=m:true:0.3"}},
		{"error_rate > 0.1 and requests > 100", []string{"endpoint=e,monitor=m:false:0.2"}},
		{"error_rate > 0.1 and requests > 10", []string{"endpoint=e,monitor=m:true:0.2"}},
		{"error_rate > 0.1 and nothing > 10", []string{"endpoint=e,monitor=m:false:0.2"}},
		{"requests > 100 or error_rate > 0.1", []string{"endpoint=e,monitor=m:true:0.2"}},
		{"requests > 100 or error_rate > 0.5", []string{"endpoint=e,monitor=m:false:50"}},
		{"nothing > 1 or error_rate > 0.1", []string{"endpoint=e,monitor=m:true:0.2"}},
		{"accuracy < 0.8", []string{"monitor=m,slice=EU:false:0.9", "monitor=m,slice=US:true:0.7"}},
		// and binds tighter than or: (requests > 100 and error_rate > 0) or drift_share > 0.5
		{"requests > 100 and error_rate > 0 or drift_share > 0.5", []string{"endpoint=e,monitor=m:true:0.6"}},
		// A join on the shared label "monitor" gives the union of labels.
		{"drift_share > 0.5 and accuracy < 0.8", []string{"endpoint=e,monitor=m,slice=EU:false:0.6", "endpoint=e,monitor=m,slice=US:true:0.6"}},
		{"accuracy == 0.9", []string{"monitor=m,slice=EU:true:0.9", "monitor=m,slice=US:false:0.7"}},
		{"accuracy != 0.9", []string{"monitor=m,slice=EU:false:0.9", "monitor=m,slice=US:true:0.7"}},
		{"accuracy <= 0.7", []string{"monitor=m,slice=EU:false:0.9", "monitor=m,slice=US:true:0.7"}},
	}
	for _, tt := range tests {
		t.Run(tt.expr, func(t *testing.T) {
			e, err := ParseExpr(tt.expr)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range e.Eval(samples) {
				var kv []string
				for _, k := range sortedLabelKeys(r.Labels) {
					kv = append(kv, k+"="+r.Labels[k])
				}
				got = append(got, strings.Join(kv, ",")+":"+map[bool]string{true: "true", false: "false"}[r.True]+":"+formatValue(r.Value))
			}
			sort.Strings(got)
			if strings.Join(got, " | ") != strings.Join(tt.want, " | ") {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func sortedLabelKeys(m map[string]string) []string {
	k := make([]string, 0, len(m))
	for x := range m {
		k = append(k, x)
	}
	sort.Strings(k)
	return k
}

func TestFingerprint(t *testing.T) {
	a := Fingerprint(l("a", "1", "b", "2"))
	if a != Fingerprint(l("b", "2", "a", "1")) || len(a) != 16 {
		t.Fatalf("fingerprint %q is not stable", a)
	}
	// Pairs are delimited: {a: "1b", ...} differs from {a: "1", b: ...}.
	if Fingerprint(l("a", "1b")) == Fingerprint(l("a", "1", "b", "")) {
		t.Fatal("fingerprints collide")
	}
}

func FuzzParseExpr(f *testing.F) {
	for _, s := range []string{
		"drift_share > 0.5",
		`feature_drift_score{feature=~"a.*", method!='psi',} > 1e-3 and requests > 100 or x != -Inf`,
		`a{b="\u00e9\n"} <= 2`, `a{b!~"("} > 1`, "a > 1 and", `x{l='it\'s'} > 0`, "",
	} {
		f.Add(s)
	}
	samples := []Sample{{Metric: "a", Labels: l("b", "c"), Value: 1}, {Metric: "x", Value: math.Inf(1)}}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseExpr(s)
		if err != nil {
			var pe *ParseError
			if len(s) <= maxExprLen && !errors.As(err, &pe) {
				t.Fatalf("error without a column: %v", err)
			}
			if pe != nil && (pe.Column < 1 || pe.Column > len(s)+1) {
				t.Fatalf("column %d outside 1..%d", pe.Column, len(s)+1)
			}
			return
		}
		canon := e.String()
		e2, err := ParseExpr(canon)
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", canon, s, err)
		}
		if e2.String() != canon {
			t.Fatalf("canonical form is not stable: %q -> %q", canon, e2.String())
		}
		e.Eval(samples)
	})
}
