package feature

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
)

func valueView() *FeatureView {
	return &FeatureView{Metadata: Metadata{Name: "v"}, Spec: FeatureViewSpec{Features: []Feature{
		{Name: "i", Type: TypeInt64}, {Name: "f", Type: TypeFloat64}, {Name: "s", Type: TypeString}, {Name: "b", Type: TypeBool},
	}}}
}

func TestEncodeValues(t *testing.T) {
	v := valueView()
	cases := []struct {
		name string
		in   []any
		want []any
		err  string
	}{
		{"typed", []any{int64(-42), 2.5, "héllo", true}, []any{int64(-42), 2.5, "héllo", true}, ""},
		{"nulls", []any{nil, nil, nil, nil}, []any{nil, nil, nil, nil}, ""},
		{"coerced", []any{float64(7), 3, "", false}, []any{int64(7), float64(3), "", false}, ""},
		{"extremes", []any{int64(math.MinInt64), math.Inf(-1), strings.Repeat("x", 300), nil}, []any{int64(math.MinInt64), math.Inf(-1), strings.Repeat("x", 300), nil}, ""},
		{"fraction for int", []any{1.5, 0.0, "", true}, nil, "feature i"},
		{"string for bool", []any{int64(1), 0.0, "", "yes"}, nil, "feature b"},
		{"too few", []any{int64(1)}, nil, "1 values for the 4 features"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := EncodeValues(v, c.in)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeValues(v, b)
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Fatalf("decoded %#v %v, want %#v", got, err, c.want)
			}
		})
	}
}

func TestDecodeValuesRejects(t *testing.T) {
	v := valueView()
	good, _ := EncodeValues(v, []any{int64(1), 2.0, "abc", true})
	other := &FeatureView{Spec: FeatureViewSpec{Features: []Feature{{Name: "i", Type: TypeString}, {Name: "f", Type: TypeFloat64}, {Name: "s", Type: TypeString}, {Name: "b", Type: TypeBool}}}}
	cases := []struct {
		name string
		view *FeatureView
		b    []byte
	}{
		{"empty", v, nil},
		{"format", v, append([]byte{9}, good[1:]...)},
		{"truncated", v, good[:len(good)-2]},
		{"trailing", v, append(append([]byte{}, good...), 0)},
		{"type changed", other, good},
		{"fewer features", &FeatureView{Spec: FeatureViewSpec{Features: v.Spec.Features[:3]}}, good},
	}
	for _, c := range cases {
		if _, err := DecodeValues(c.view, c.b); err == nil {
			t.Errorf("%s: decoded", c.name)
		}
	}
}

func FuzzDecodeValues(f *testing.F) {
	v := valueView()
	for _, in := range [][]any{{int64(1), 2.0, "abc", true}, {nil, nil, nil, nil}, {int64(-1), math.NaN(), "", false}} {
		b, _ := EncodeValues(v, in)
		f.Add(b)
	}
	f.Add([]byte{1, 4, 3, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		vals, err := DecodeValues(v, b)
		if err != nil {
			return
		}
		again, err := EncodeValues(v, vals)
		if err != nil {
			t.Fatalf("decoded values do not encode: %v", err)
		}
		back, err := DecodeValues(v, again)
		if err != nil {
			t.Fatalf("re-encoded values do not decode: %v", err)
		}
		// NaN != NaN: compare through JSON-ish bits.
		for i := range vals {
			if a, ok := vals[i].(float64); ok {
				if math.Float64bits(a) != math.Float64bits(back[i].(float64)) {
					t.Fatalf("value %d: %v then %v", i, vals[i], back[i])
				}
				continue
			}
			if vals[i] != back[i] {
				t.Fatalf("value %d: %v then %v", i, vals[i], back[i])
			}
		}
	})
}

func TestKeyText(t *testing.T) {
	cases := []struct {
		in   any
		want string
		err  bool
	}{
		{42, "42", false},
		{int64(42), "42", false},
		{42.0, "42", false},
		{"42", "42", false},
		{json.Number("42"), "42", false},
		{json.Number("42.0"), "42", false},
		{json.Number("9007199254740993"), "9007199254740993", false},
		{"042", "042", false},
		{true, "true", false},
		{42.5, "", true},
		{json.Number("1e30"), "", true},
		{nil, "", true},
		{[]any{1}, "", true},
	}
	for _, c := range cases {
		got, err := KeyText(c.in)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("KeyText(%#v) = %q, %v; want %q (error %v)", c.in, got, err, c.want, c.err)
		}
	}
}

func TestEntityKey(t *testing.T) {
	cases := []struct {
		in   []string
		want string
	}{
		{[]string{"42"}, "42"},
		{[]string{"a", "b"}, "a\x1fb"},
		{[]string{`a\`, "b"}, "a\\\\\x1fb"},
		{[]string{"a\x1fb"}, `a\ub`},
	}
	for _, c := range cases {
		if got := EntityKey(c.in); got != c.want {
			t.Errorf("EntityKey(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	// Distinct tuples give distinct keys.
	tuples := [][]string{{"a", "b"}, {"a\x1fb"}, {`a\`, "b"}, {"a", `\b`}, {`a\x1f`, "b"}, {"a", "", "b"}, {"a", "b", ""}}
	seen := map[string][]string{}
	for _, tu := range tuples {
		k := EntityKey(tu)
		if prev, ok := seen[k]; ok {
			t.Errorf("%q and %q share key %q", prev, tu, k)
		}
		seen[k] = tu
	}
}
