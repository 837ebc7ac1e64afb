package runtime

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/kiln-ml/kiln/tensor"
)

type echoBackend struct{ name string }

func (b echoBackend) Name() string { return b.name }
func (b echoBackend) Load(ctx context.Context, src Source) (Model, error) {
	if _, err := src.ReadFile(""); err != nil {
		return nil, err
	}
	return nil, nil
}

func TestRegistry(t *testing.T) {
	Register(echoBackend{"test-echo"})
	b, err := Lookup("test-echo")
	if err != nil || b.Name() != "test-echo" {
		t.Fatalf("Lookup = %v, %v", b, err)
	}
	if _, err := Lookup("nope"); !errors.Is(err, ErrNoBackend) {
		t.Errorf("Lookup(nope) err = %v", err)
	}
	if _, err := Load(context.Background(), "nope", Source{}); !errors.Is(err, ErrNoBackend) {
		t.Errorf("Load(nope) err = %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("duplicate Register did not panic")
		}
	}()
	Register(echoBackend{"test-echo"})
}

func TestSourceReadFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "model.bin"), []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := (Source{Path: dir}).ReadFile("model.bin"); err != nil || string(b) != "abc" {
		t.Errorf("dir+name: %q %v", b, err)
	}
	if b, err := (Source{Path: filepath.Join(dir, "model.bin")}).ReadFile(""); err != nil || string(b) != "abc" {
		t.Errorf("file: %q %v", b, err)
	}
	fsys := fstest.MapFS{"m/model.bin": {Data: []byte("xyz")}}
	if b, err := (Source{FS: fsys, Path: "m"}).ReadFile("model.bin"); err != nil || string(b) != "xyz" {
		t.Errorf("fs: %q %v", b, err)
	}
}

func TestMatchInputs(t *testing.T) {
	sig := Signature{Inputs: []TensorSpec{
		{Name: "a", DType: tensor.Float32, Shape: []int64{-1, 2}},
		{Name: "b", DType: tensor.String, Shape: []int64{-1, 1}},
	}}
	a, _ := tensor.FromSlice("a", []float32{1, 2, 3, 4}, 2, 2)
	b, _ := tensor.FromSlice("b", []string{"x", "y"}, 2, 1)
	got, err := MatchInputs(sig, []*tensor.Tensor{b, a})
	if err != nil || got[0] != a || got[1] != b {
		t.Fatalf("by name: %v %v", got, err)
	}
	ua, ub := *a, *b
	ua.Name, ub.Name = "", ""
	if got, err := MatchInputs(sig, []*tensor.Tensor{&ua, &ub}); err != nil || got[0] != &ua {
		t.Fatalf("by position: %v %v", got, err)
	}
	wide, _ := tensor.FromSlice("a", []float32{1, 2, 3}, 1, 3)
	i64, _ := tensor.FromSlice("a", []int64{1, 2}, 1, 2)
	flat, _ := tensor.FromSlice("a", []float32{1, 2})
	bad := []struct {
		name string
		in   []*tensor.Tensor
	}{
		{"count", []*tensor.Tensor{a}},
		{"dtype", []*tensor.Tensor{i64, b}},
		{"fixed dim", []*tensor.Tensor{wide, b}},
		{"rank", []*tensor.Tensor{flat, b}},
		{"twice", []*tensor.Tensor{a, a}},
		{"data", []*tensor.Tensor{{Name: "a", DType: tensor.Float32, Shape: []int64{1, 2}, Data: []float32{1}}, b}},
	}
	for _, tt := range bad {
		if _, err := MatchInputs(sig, tt.in); !errors.Is(err, ErrInvalidInput) {
			t.Errorf("%s: err = %v, want ErrInvalidInput", tt.name, err)
		}
	}
}
