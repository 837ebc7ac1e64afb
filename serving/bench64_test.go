package serving

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// sumModel takes [-1, w] float32 rows and answers each row's sum: a model
// whose Predict costs next to nothing, so benchmarks over it measure the
// protocol.
type sumModel struct{ w int }

func (m sumModel) Signature() runtime.Signature {
	return runtime.Signature{
		Inputs:  []runtime.TensorSpec{{Name: "X", DType: tensor.Float32, Shape: []int64{-1, int64(m.w)}}},
		Outputs: []runtime.TensorSpec{{Name: "y", DType: tensor.Float32, Shape: []int64{-1}}},
	}
}

func (m sumModel) Predict(ctx context.Context, in []*tensor.Tensor) ([]*tensor.Tensor, error) {
	x := in[0].Data.([]float32)
	n := len(x) / m.w
	y := make([]float32, n)
	for r := range n {
		for _, v := range x[r*m.w : (r+1)*m.w] {
			y[r] += v
		}
	}
	return []*tensor.Tensor{{Name: "y", DType: tensor.Float32, Shape: []int64{int64(n)}, Data: y}}, nil
}

// wideRows are n rows of w float64 values printed as Python's json module
// prints them (shortest repr, ~17 significant digits), like the bodies of
// bench/serving.
func wideRows(n, w int) [][]string {
	rng := rand.New(rand.NewPCG(1, 2))
	rows := make([][]string, n)
	for i := range rows {
		for range w {
			rows[i] = append(rows[i], strconv.FormatFloat(rng.NormFloat64()*2, 'g', -1, 64))
		}
	}
	return rows
}

// The 64 × 24 requests of bench/serving's 64-row cases.
func BenchmarkV2Infer64x24(b *testing.B) {
	s, _ := testServer(b, Options{}, &Model{Name: "m", Version: "1", Runtime: sumModel{24}})
	var data []string
	for _, r := range wideRows(64, 24) {
		data = append(data, r...)
	}
	body := fmt.Sprintf(`{"inputs":[{"name":"X","shape":[64,24],"datatype":"FP32","data":[%s]}]}`, strings.Join(data, ","))
	benchHandler(b, s.Handler(), "/v2/models/m/infer", "application/json", []byte(body))
}

func BenchmarkInvocations64x24(b *testing.B) {
	s, _ := testServer(b, Options{}, &Model{Name: "m", Runtime: sumModel{24}})
	var cols, rows []string
	for j := range 24 {
		cols = append(cols, strconv.Quote(strconv.Itoa(j)))
	}
	for _, r := range wideRows(64, 24) {
		rows = append(rows, "["+strings.Join(r, ",")+"]")
	}
	body := fmt.Sprintf(`{"dataframe_split":{"columns":[%s],"data":[%s]}}`, strings.Join(cols, ","), strings.Join(rows, ","))
	benchHandler(b, s.Handler(), "/invocations", "application/json", []byte(body))
}

func (sumModel) Close() error { return nil }

// BenchmarkDecodeF32 is the decoding of a 64 × 24 body's numbers alone.
func BenchmarkDecodeF32(b *testing.B) {
	var data []string
	for _, r := range wideRows(64, 24) {
		data = append(data, r...)
	}
	body := []byte("[" + strings.Join(data, ",") + "]")
	dst := make([]float32, 0, 64*24)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		r := &jsonReader{b: body}
		var err error
		if dst, err = decodeFloats(r, dst[:0], 32); err != nil || len(dst) != 64*24 {
			b.Fatal(err, len(dst))
		}
	}
}
