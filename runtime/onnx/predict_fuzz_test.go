package onnx

import (
	"context"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/tensor"
)

// FuzzPredict runs the hand-built core fixtures on inputs whose variable
// dimensions (including 0) and values come from the fuzzer. Kernels may
// reject inputs, but must never panic (Predict reports a recovered panic
// as an internal error).
func FuzzPredict(f *testing.F) {
	dirs, _ := filepath.Glob("testdata/models/core_*")
	dirs = append(dirs, "testdata/models/text_ops")
	sort.Strings(dirs)
	var models []*Model
	for _, d := range dirs {
		data, err := os.ReadFile(filepath.Join(d, "model.onnx"))
		if err != nil {
			f.Fatal(err)
		}
		m, err := Load(data)
		if err != nil {
			f.Fatalf("%s: %v", d, err)
		}
		models = append(models, m)
	}
	for i := range models {
		f.Add(uint8(i), uint8(3), []byte{1, 2, 3, 4, 5, 6, 7, 8})
		f.Add(uint8(i), uint8(0), []byte{})
		f.Add(uint8(i), uint8(1), []byte{0xff, 0xff, 0xc0, 0x7f, 0, 0, 0x80, 0xff})
	}
	words := []string{"", "milk", "Crème", "a b", "ÉCOLE", "zz, yy!", "\x02"}
	f.Fuzz(func(t *testing.T, which, rows uint8, vals []byte) {
		m := models[int(which)%len(models)]
		n := int64(rows % 5)
		next := func() uint32 {
			if len(vals) < 4 {
				vals = append(vals, 1, 0, 0, 0)
			}
			v := binary.LittleEndian.Uint32(vals)
			vals = vals[4:]
			return v
		}
		var inputs []*tensor.Tensor
		for _, spec := range m.Signature().Inputs {
			shape := make([]int64, len(spec.Shape))
			for i, d := range spec.Shape {
				if d < 0 {
					d = n
				}
				shape[i] = d
			}
			cnt := tensor.NumElements(shape)
			x, err := tensor.New(spec.Name, spec.DType, shape...)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < cnt; i++ {
				v := next()
				switch d := x.Data.(type) {
				case []float32:
					d[i] = math.Float32frombits(v)
				case []float64:
					d[i] = float64(math.Float32frombits(v))
				case []int64:
					d[i] = int64(int32(v)) % 7
				case []int32:
					d[i] = int32(v) % 7
				case []bool:
					d[i] = v&1 == 1
				case []string:
					d[i] = words[int(v%uint32(len(words)))]
				}
			}
			inputs = append(inputs, x)
		}
		if _, err := m.Predict(context.Background(), inputs); err != nil && strings.Contains(err.Error(), "internal error") {
			t.Fatal(err)
		}
	})
}
