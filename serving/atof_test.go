package serving

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// checkParseFloat compares parseFloat, the reader's float and decodeCell
// with strconv bit for bit.
func checkParseFloat(t testing.TB, s string) {
	t.Helper()
	for _, size := range []int{32, 64} {
		want, err := strconv.ParseFloat(s, size)
		got, ok := parseFloat([]byte(s), size)
		if ok != (err == nil) || math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("parseFloat(%q, %d) = %v (%x), %v; strconv: %v (%x), %v",
				s, size, got, math.Float64bits(got), ok, want, math.Float64bits(want), err)
		}
		// The same through the reader's one-pass scan.
		if got, err := (&jsonReader{b: []byte(s)}).float(size); err != nil || math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("float(%q, %d) = %v (%x), %v; strconv: %v (%x)",
				s, size, got, math.Float64bits(got), err, want, math.Float64bits(want))
		}
	}
	// And as a dataframe cell: an integer where it fits in an int64, else
	// a float64.
	c, err := decodeCell(&jsonReader{b: []byte(s)})
	if err != nil {
		t.Fatalf("decodeCell(%q): %v", s, err)
	}
	if want, err := strconv.ParseInt(s, 10, 64); err == nil {
		if c.kind != cellInt || c.i != want {
			t.Fatalf("decodeCell(%q) = %+v, want the integer %d", s, c, want)
		}
	} else if want, _ := strconv.ParseFloat(s, 64); c.kind != cellFloat || math.Float64bits(c.f) != math.Float64bits(want) {
		t.Fatalf("decodeCell(%q) = %+v, want the float %v", s, c, want)
	}
}

func TestParseFloat(t *testing.T) {
	for _, s := range []string{
		"0", "-0", "0.0", "-0.0", "0e5", "1", "-1", "0.1", "0.5", "1.5", "123456789",
		"9007199254740992", "9007199254740993", "9007199254740995",
		"16777216", "16777217", "16777219", "0.6331574530916286", "-1.2e-05",
		"1e22", "1e23", "1e-22", "1e-23", "1.7976931348623157e308", "1.8e308",
		"2.2250738585072014e-308", "4.9e-324", "1e-400", "3.4028235e38", "3.5e38",
		"1.1754944e-38", "1e-45", "12345678901234567890", "1234567890123456789012345",
		"0.000000000000000000000000000001", "1.00000000000000011102230246251565404236316680908203125",
		"1.00000000000000011102230246251565404236316680908203124",
		"1.00000005960464477539062500", "1.000000059604644775390624",
		"1.000000059604644775390626", "7.038531e-26", "1e+5", "1E-5", "2.5e+0",
		"100000000000000000000000", "9223372036854775807", "-9223372036854775808",
		"9223372036854775808", "-9223372036854775809", "18446744073709551615", "1e99999999", "1e-99999999",
		"-0e-0", "0.00000000000000000001234567890123456789", "0.1000000000000000055511151231257827021181583404541015625",
	} {
		checkParseFloat(t, s)
	}
	// Random values as Python and Go print them (shortest repr), at both
	// precisions, and random digit strings of every length.
	rng := rand.New(rand.NewPCG(7, 8))
	for range 60000 {
		v := math.Float64frombits(rng.Uint64())
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		checkParseFloat(t, strconv.FormatFloat(v, 'g', -1, 64))
		f := float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(20)-10)))
		checkParseFloat(t, strconv.FormatFloat(float64(f), 'g', -1, 32))
		checkParseFloat(t, strconv.FormatFloat(rng.NormFloat64()*3, 'g', -1, 64))
		digits := make([]byte, 2+rng.IntN(24))
		for i := range digits {
			digits[i] = byte('0' + rng.IntN(10))
		}
		s := string(digits[:1]) + "." + string(digits[1:]) + "e" + strconv.Itoa(rng.IntN(90)-45)
		checkParseFloat(t, s)
	}
}

func FuzzParseFloat(f *testing.F) {
	for _, s := range []string{"0", "-1.5", "0.6331574530916286", "1e22", "123456789012345678901", "3.4028235e38"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := &jsonReader{b: []byte(s)}
		tok, kind, err := r.number()
		if err != nil || kind == numSpecial || r.pos != len(s) {
			return
		}
		checkParseFloat(t, string(tok))
	})
}

func TestEightDigits(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 10000 {
		n := rng.Uint64N(1e8)
		s := strconv.FormatUint(n+1e8, 10)[1:] // 8 digits with leading zeros
		x := uint64(0)
		for i := 7; i >= 0; i-- {
			x = x<<8 | uint64(s[i])
		}
		if !eightDigits(x) || eightDigitsValue(x) != n {
			t.Fatalf("%s: %v %d", s, eightDigits(x), eightDigitsValue(x))
		}
		// One byte that is not a digit.
		b := []byte(s)
		b[rng.IntN(8)] = "./:e-+ \x00\xb0"[rng.IntN(9)]
		x = 0
		for i := 7; i >= 0; i-- {
			x = x<<8 | uint64(b[i])
		}
		if eightDigits(x) {
			t.Fatalf("%q read as digits", b)
		}
	}
}

func parseF32(r *jsonReader) (float32, error) {
	f, err := parseFloatElem(r, 32)
	return float32(f), err
}

func parseF64(r *jsonReader) (float64, error) { return parseFloatElem(r, 64) }

// checkDecodeFloats compares decodeFloats with decodeList over
// parseFloatElem, the general path it shortcuts: the same values, or the
// same error.
func checkDecodeFloats(t testing.TB, s string) {
	t.Helper()
	got, gerr := decodeFloats(&jsonReader{b: []byte(s)}, []float32(nil), 32)
	want, werr := decodeList(&jsonReader{b: []byte(s)}, []float32(nil), parseF32)
	if (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) {
		t.Fatalf("%q: error %v, want %v", s, gerr, werr)
	}
	if len(got) != len(want) {
		t.Fatalf("%q: %v, want %v", s, got, want)
	}
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("%q: %v, want %v", s, got, want)
		}
	}
	got64, gerr := decodeFloats(&jsonReader{b: []byte(s)}, []float64(nil), 64)
	want64, werr := decodeList(&jsonReader{b: []byte(s)}, []float64(nil), parseF64)
	if (gerr == nil) != (werr == nil) || len(got64) != len(want64) {
		t.Fatalf("%q: float64 %v %v, want %v %v", s, got64, gerr, want64, werr)
	}
	for i := range got64 {
		if math.Float64bits(got64[i]) != math.Float64bits(want64[i]) {
			t.Fatalf("%q: %v, want %v", s, got64, want64)
		}
	}
}

func TestDecodeFloats(t *testing.T) {
	for _, s := range []string{
		"[]", "[1]", "[1,2.5,-3e2]", "[[1,2],[3,4]]", "[ 1 , 2 ]", "[1,null,true,false,NaN,-Infinity]",
		"1.5", "null", "[1,]", "[1,-]", "[1,,2]", "[1 2]", "[1,\"a\"]", "[1,[2,[3]],4]", "[1,2", "[-0,0.1,1e400]",
		"[01]", "[1,-x]", "[[1,2],3,[4]]",
	} {
		checkDecodeFloats(t, s)
	}
}

func FuzzDecodeFloats(f *testing.F) {
	for _, s := range []string{"[1,2.5,-3e2]", "[[1,2],[3,4]]", "[1,null,true]", "[1,-]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) { checkDecodeFloats(t, s) })
}

// refRows is decodeRows without its fast path: every element through
// nextElem and decodeCell.
func refRows(r *jsonReader) (cells []cell, rows int, err error) {
	if err := r.beginArray(); err != nil {
		return nil, 0, err
	}
	for first := true; ; first = false {
		done, err := r.nextElem(first)
		if err != nil || done {
			return cells, rows, err
		}
		if err := r.beginArray(); err != nil {
			return nil, 0, err
		}
		n := 0
		for first := true; ; first = false {
			done, err := r.nextElem(first)
			if err != nil {
				return nil, 0, err
			}
			if done {
				break
			}
			c, err := decodeCell(r)
			if err != nil {
				return nil, 0, invalidInput("row %d, column %d: %v", rows, n, err)
			}
			cells = append(cells, c)
			n++
		}
		rows++
	}
}

func TestDecodeRows(t *testing.T) {
	for _, s := range []string{
		"[[1,2.5,-3],[4,5,6]]", "[[1, 2],[3 ,4]]", "[[1,-0.0,1e400,-9223372036854775809]]", "[[1,\"a\",null,true]]",
		"[[1,-]]", "[[1,]]", "[[1,,2]]", "[[1,-x]]", "[[1,2],[3,4]", "[[0.6331574530916286,-1.2e-05,12345678901234567890]]",
	} {
		want, wrows, werr := refRows(&jsonReader{b: []byte(s)})
		got, grows, _, gerr := decodeRows(&jsonReader{b: []byte(s)})
		if (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) {
			t.Fatalf("%q: error %v, want %v", s, gerr, werr)
		}
		if gerr != nil {
			continue
		}
		if grows != wrows || len(got) != len(want) {
			t.Fatalf("%q: %d rows %v, want %d rows %v", s, grows, got, wrows, want)
		}
		for i := range got {
			if got[i].kind != want[i].kind || got[i].i != want[i].i || got[i].s != want[i].s || got[i].b != want[i].b ||
				math.Float64bits(got[i].f) != math.Float64bits(want[i].f) {
				t.Fatalf("%q: cell %d is %+v, want %+v", s, i, got[i], want[i])
			}
		}
	}
}
