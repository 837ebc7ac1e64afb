package tensor

import (
	"errors"
	"math"
	"reflect"
	"testing"
)

func TestParseDType(t *testing.T) {
	for d := Bool; d <= String; d++ {
		got, err := ParseDType(d.String())
		if err != nil || got != d {
			t.Errorf("ParseDType(%q) = %v, %v; want %v", d.String(), got, err, d)
		}
	}
	if d, err := ParseDType("fp32"); err != nil || d != Float32 {
		t.Errorf("lower case: %v %v", d, err)
	}
	for _, bad := range []string{"", "FLOAT", "INVALID", "BF16"} {
		if _, err := ParseDType(bad); !errors.Is(err, ErrDType) {
			t.Errorf("ParseDType(%q) err = %v, want ErrDType", bad, err)
		}
	}
}

func TestNumElements(t *testing.T) {
	tests := []struct {
		shape []int64
		want  int
	}{
		{nil, 1}, {[]int64{0}, 0}, {[]int64{2, 3}, 6}, {[]int64{2, -1}, -1},
		{[]int64{1 << 40, 1 << 40}, -1}, {[]int64{0, 1 << 62}, 0},
	}
	for _, tt := range tests {
		if got := NumElements(tt.shape); got != tt.want {
			t.Errorf("NumElements(%v) = %d, want %d", tt.shape, got, tt.want)
		}
	}
}

func TestFromSliceAndValidate(t *testing.T) {
	x, err := FromSlice("x", []float32{1, 2, 3, 4, 5, 6}, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if x.DType != Float32 || x.Rows() != 2 || x.Len() != 6 {
		t.Fatalf("got %+v", x)
	}
	if err := x.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := FromSlice("x", []float32{1, 2, 3}, 2, 2); !errors.Is(err, ErrShape) {
		t.Errorf("want ErrShape, got %v", err)
	}
	if _, err := FromSlice("x", []complex64{1}); !errors.Is(err, ErrDType) {
		t.Errorf("want ErrDType, got %v", err)
	}
	bad := &Tensor{Name: "b", DType: Int64, Shape: []int64{2}, Data: []int32{1, 2}}
	if err := bad.Validate(); err == nil {
		t.Error("Validate accepted int32 data for INT64")
	}
	c := x.Clone()
	c.Data.([]float32)[0] = 9
	c.Shape[0] = 7
	if x.Data.([]float32)[0] != 1 || x.Shape[0] != 2 {
		t.Error("Clone shares memory with the original")
	}
}

func TestNew(t *testing.T) {
	for d := Bool; d <= String; d++ {
		x, err := New("x", d, 2, 2)
		if err != nil {
			t.Fatalf("%v: %v", d, err)
		}
		if err := x.Validate(); err != nil {
			t.Errorf("%v: %v", d, err)
		}
	}
	if _, err := New("x", Float32, -1); !errors.Is(err, ErrShape) {
		t.Errorf("negative dim: %v", err)
	}
}

func TestCast(t *testing.T) {
	tests := []struct {
		name string
		in   any
		to   DType
		want any
	}{
		{"f32 to i64 truncates", []float32{1.9, -1.9, 0}, Int64, []int64{1, -1, 0}},
		{"f64 NaN to i32 is 0", []float64{math.NaN(), 3}, Int32, []int32{0, 3}},
		{"i64 to f32", []int64{1, -2}, Float32, []float32{1, -2}},
		{"bool to f64", []bool{true, false}, Float64, []float64{1, 0}},
		{"f32 to bool", []float32{0, 0.5, -1}, Bool, []bool{false, true, true}},
		{"string to f32", []string{"1.5", "NaN", "-3"}, Float32, []float32{1.5, float32(math.NaN()), -3}},
		{"i64 to string", []int64{7, -1}, String, []string{"7", "-1"}},
		{"f32 to string", []float32{0.1, 2}, String, []string{"0.1", "2"}},
		{"bool to string", []bool{true}, String, []string{"true"}},
		{"large i64 to u64 exact", []int64{1<<53 + 1}, Uint64, []uint64{1<<53 + 1}},
		{"u8 to i8 wraps", []uint8{255}, Int8, []int8{-1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x, err := FromSlice("x", tt.in)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Cast(x, tt.to)
			if err != nil {
				t.Fatal(err)
			}
			if got.DType != tt.to {
				t.Fatalf("dtype %v", got.DType)
			}
			if f, ok := tt.want.([]float32); ok && math.IsNaN(float64(f[1])) {
				g := got.Data.([]float32)
				if g[0] != f[0] || !math.IsNaN(float64(g[1])) || g[2] != f[2] {
					t.Fatalf("got %v", g)
				}
				return
			}
			if !reflect.DeepEqual(got.Data, tt.want) {
				t.Fatalf("got %v, want %v", got.Data, tt.want)
			}
		})
	}
	x, _ := FromSlice("x", []string{"abc"})
	if _, err := Cast(x, Float32); err == nil {
		t.Error("cast of a non-number string succeeded")
	}
}

func TestHalf(t *testing.T) {
	tests := []struct {
		f float32
		h uint16
	}{
		{0, 0}, {1, 0x3c00}, {-2, 0xc000}, {65504, 0x7bff}, {float32(math.Inf(1)), 0x7c00},
		{6.103515625e-05, 0x0400}, {5.960464477539063e-08, 0x0001}, {0.333251953125, 0x3555},
	}
	for _, tt := range tests {
		if got := Float32ToHalf(tt.f); got != tt.h {
			t.Errorf("Float32ToHalf(%g) = %#04x, want %#04x", tt.f, got, tt.h)
		}
		if got := HalfToFloat32(tt.h); got != tt.f {
			t.Errorf("HalfToFloat32(%#04x) = %g, want %g", tt.h, got, tt.f)
		}
	}
	if !math.IsNaN(float64(HalfToFloat32(Float32ToHalf(float32(math.NaN()))))) {
		t.Error("NaN does not round-trip")
	}
	if Float32ToHalf(1e6) != 0x7c00 {
		t.Error("overflow is not +Inf")
	}
	// Every finite half value round-trips through float32.
	for h := 0; h < 0x10000; h++ {
		if h&0x7c00 == 0x7c00 {
			continue
		}
		if got := Float32ToHalf(HalfToFloat32(uint16(h))); got != uint16(h) {
			t.Fatalf("%#04x round-trips to %#04x", h, got)
		}
	}
}
