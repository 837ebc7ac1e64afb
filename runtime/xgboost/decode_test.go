package xgboost

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

// show renders a decoded value compactly for comparisons: numbers with %g,
// strings quoted, numeric arrays as #[...].
func show(v *value) string {
	var b strings.Builder
	var walk func(v *value)
	walk = func(v *value) {
		switch v.kind {
		case kindNull:
			b.WriteString("null")
		case kindBool:
			if v.num != 0 {
				b.WriteString("true")
			} else {
				b.WriteString("false")
			}
		case kindNumber:
			b.WriteString(fmtNum(v.num))
		case kindString:
			b.WriteString(`"` + v.str() + `"`)
		case kindNumbers:
			b.WriteString("#[")
			for i, n := range v.numberArray() {
				if i > 0 {
					b.WriteString(",")
				}
				b.WriteString(fmtNum(n))
			}
			b.WriteString("]")
		case kindArray:
			b.WriteString("[")
			for i := range v.array() {
				if i > 0 {
					b.WriteString(",")
				}
				walk(&v.array()[i])
			}
			b.WriteString("]")
		case kindObject:
			o := v.ref.(*object)
			b.WriteString("{")
			for i, k := range o.keys {
				if i > 0 {
					b.WriteString(",")
				}
				b.WriteString(k + ":")
				walk(&o.items[i])
			}
			b.WriteString("}")
		}
	}
	walk(v)
	return b.String()
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func TestDecodeUBJ(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"null", "Z", "null"},
		{"booleans", "[TF]", "[true,false]"},
		{"int8", "i\xfb", "-5"},
		{"uint8", "U\xc8", "200"},
		{"int16", "I\xfe\xd4", "-300"},
		{"int32", "l\x00\x01\x00\x00", "65536"},
		{"int64", "L\xff\xff\xff\xff\xff\xff\xff\xfe", "-2"},
		{"float32", "d\x3f\xc0\x00\x00", "1.5"},
		{"float64", "D\x40\x09\x21\xfb\x54\x44\x2d\x18", "3.141592653589793"},
		{"char", "Ca", "97"},
		{"high precision", "Hi\x043.25", "3.25"},
		{"string", "Si\x05hello", `"hello"`},
		{"string with uint8 length", "SU\x02ok", `"ok"`},
		{"no-op before a value", "NNi\x07", "7"},
		{"array of numbers", "[i\x01U\x02d\x3f\x80\x00\x00]", "#[1,2,1]"},
		{"array with no-ops", "[Ni\x01Ni\x02N]", "#[1,2]"},
		{"counted array", "[#i\x02Si\x01aSi\x01b", `["a","b"]`},
		{"typed float32 array", "[$d#i\x02\x3f\x80\x00\x00\xc0\x00\x00\x00", "#[1,-2]"},
		{"typed uint8 array", "[$U#L\x00\x00\x00\x00\x00\x00\x00\x03\x00\x01\x02", "#[0,1,2]"},
		{"typed int64 array", "[$L#i\x01\x00\x00\x00\x00\x00\x00\x01\x00", "#[256]"},
		{"typed int16 array", "[$I#i\x01\xff\xff", "#[-1]"},
		{"typed char array", "[$C#i\x02ab", "#[97,98]"},
		{"typed empty array", "[$l#i\x00", "#[]"},
		{"typed string array", "[$S#i\x02i\x01xi\x01y", `["x","y"]`},
		{"typed boolean array", "[$T#i\x02", "[true,true]"},
		{"mixed array", "[Si\x01ai\x01]", `["a",1]`},
		{"empty array", "[]", "[]"},
		{"nested arrays", "[[i\x01][]]", "[#[1],[]]"},
		{"object", "{i\x01ai\x01i\x01bSi\x01c}", `{a:1,b:"c"}`},
		{"object with L keys", "{L\x00\x00\x00\x00\x00\x00\x00\x03keyT}", "{key:true}"},
		{"counted object", "{#i\x01i\x01ki\x02", "{k:2}"},
		{"typed object", "{$i#i\x02i\x01a\x05i\x01b\x06", "{a:5,b:6}"},
		{"empty object", "{}", "{}"},
		{"object of arrays", "{i\x01x[$d#i\x01\x3f\x80\x00\x00}", "{x:#[1]}"},
		{"trailing no-op", "i\x01N", "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := decodeUBJ([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if got := show(&v); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestDecodeUBJErrors(t *testing.T) {
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"unknown marker", "X"},
		{"truncated number", "l\x00\x01"},
		{"truncated string", "Si\x05abc"},
		{"string without length", "S"},
		{"string length not an integer", "Sd\x00\x00\x00\x00"},
		{"negative length", "Si\xff"},
		{"count beyond the input", "[#L\x00\x00\x00\x00\x7f\xff\xff\xffZ"},
		{"typed array beyond the input", "[$d#i\x03\x00\x00\x00\x00"},
		{"huge typed array", "[$D#L\x7f\xff\xff\xff\xff\xff\xff\xff"},
		{"type without count", "[$i\x01\x02]"},
		{"bad element type", "[$N#i\x01"},
		{"unterminated array", "[i\x01"},
		{"unterminated object", "{i\x01ai\x01"},
		{"object key without length", "{Sa}"},
		{"bad high precision number", "Hi\x03abc"},
		{"trailing data", "i\x01i\x02"},
		{"deep nesting", strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1)},
		{"many nulls", "[$Z#l\x40\x00\x00\x00"},
		{"nulls past the budget", "[#i\x02" + strings.Repeat("[$Z#l\x00\x0f\xff\xff", 2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := decodeUBJ([]byte(tt.in))
			if !errors.Is(err, errSyntax) {
				t.Fatalf("got %s, %v; want a syntax error", show(&v), err)
			}
		})
	}
}

// TestBoxedBudget checks that documents of many small values fail before
// they cost much more memory than their size.
func TestBoxedBudget(t *testing.T) {
	const n = 300000
	for name, doc := range map[string]string{
		"UBJSON nulls":        "[#i\x02" + strings.Repeat("[$Z#l\x00\x0f\xff\xff", 2),
		"UBJSON empty arrays": "[" + strings.Repeat("[]", n) + "]",
		"JSON empty arrays":   "[" + strings.Repeat("[],", n) + "[]]",
	} {
		var err error
		if strings.HasPrefix(name, "JSON") {
			_, err = decodeJSON([]byte(doc))
		} else {
			_, err = decodeUBJ([]byte(doc))
		}
		if err == nil || !strings.Contains(err.Error(), "more values than") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"numbers", `[1, -2, 0.5, 1E-1, 2.5e3, -0]`, "#[1,-2,0.5," + fmtNum(float64(float32(0.1))) + ",2500,-0]"},
		{"reals round to float32", `[0.1]`, "#[" + fmtNum(float64(float32(0.1))) + "]"},
		{"non-finite literals", `[NaN, Infinity, -Infinity]`, "#[NaN,+Inf,-Inf]"},
		{"big integer", `[12345678901234567890]`, "#[" + fmtNum(float64(float32(1.2345678901234567e19))) + "]"},
		{"mixed array", `[1, "a", null, true]`, `[1,"a",null,true]`},
		{"nested", ` {"a": {"b": [[], {}]}, "c": "d"} `, `{a:{b:[[],{}]},c:"d"}`},
		{"escapes", `"a\"b\\c\/d\n\t\r\b\f"`, "\"a\"b\\c/d\n\t\r\b\f\""},
		{"unicode escapes", `"\u00e9\ud83d\ude00"`, `"é😀"`},
		{"lone surrogate", `"\ud83dx"`, "\"\uFFFDx\""},
		{"raw UTF-8", `"héllo"`, `"héllo"`},
		{"literals", `[true,false,null]`, "[true,false,null]"},
		{"empty", `[]`, "[]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := decodeJSON([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if got := show(&v); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestDecodeJSONErrors(t *testing.T) {
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"unterminated string", `"abc`},
		{"bad escape", `"\x"`},
		{"bad unicode escape", `"\u12"`},
		{"control character", "\"a\x01\""},
		{"trailing comma in array", `[1,]`},
		{"trailing comma in object", `{"a":1,}`},
		{"missing colon", `{"a" 1}`},
		{"unquoted key", `{a:1}`},
		{"bad literal", `[nul]`},
		{"bad number", `[1.2.3]`},
		{"lone minus", `[-]`},
		{"nan in lowercase", `[nan]`},
		{"trailing data", `{} {}`},
		{"unterminated array", `[1, 2`},
		{"unterminated object", `{"a": 1`},
		{"deep nesting", strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := decodeJSON([]byte(tt.in))
			if !errors.Is(err, errSyntax) {
				t.Fatalf("got %s, %v; want a syntax error", show(&v), err)
			}
		})
	}
}

func TestDetect(t *testing.T) {
	tests := []struct {
		in   string
		want format
	}{
		{`{"learner": {}}`, formatJSON},
		{" \n{ \"learner\": {}}", formatJSON},
		{"\xef\xbb\xbf{\"learner\": {}}", formatJSON},
		{"{L\x00\x00\x00\x00\x00\x00\x00\x07learner{}}", formatUBJ},
		{"{i\x07learner{}}", formatUBJ},
		{"{U\x07learner{}}", formatUBJ},
		{"{#i\x01i\x01a{}", formatUBJ},
	}
	for _, tt := range tests {
		got, err := detect([]byte(tt.in))
		if err != nil || got != tt.want {
			t.Errorf("detect(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}
