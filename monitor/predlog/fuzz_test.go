package predlog

import (
	"reflect"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/tensor"
)

// FuzzDecodeFrame feeds the segment record decoder arbitrary bytes: it
// must never panic, and what it accepts must re-encode to the same frame.
func FuzzDecodeFrame(f *testing.F) {
	f.Add(appendFrame(nil, &record{Time: time.Unix(1, 2), ID: "a", Status: 200}))
	f.Add(appendFrame(nil, &record{
		Time: time.Unix(1700000000, 0), ID: "r", Route: "main", Model: "m/1", Protocol: "mlflow", Error: "e", Subject: "s",
		Inputs:    []*tensor.Tensor{{Name: "x", DType: tensor.Float32, Shape: []int64{2, 2}, Data: []float32{1, 2, 3, 4}}},
		InputCols: [][]string{{"a", "b"}},
		Outputs: []*tensor.Tensor{{Name: "y", DType: tensor.String, Shape: []int64{2}, Data: []string{"p", "q"}},
			{Name: "z", DType: tensor.Bool, Shape: []int64{1}, Data: []bool{true}}},
	}))
	f.Add([]byte{})
	f.Add([]byte{255, 255, 255, 255, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r record
		n, err := decodeFrame(b, &r)
		if err != nil {
			return
		}
		// The segment reader's path (shared strings, slab) decodes the
		// same record.
		var rs record
		if m, err := decodeFrameLike(b, &rs, &r, &slab{}); err != nil || m != n || !reflect.DeepEqual(rs, r) {
			t.Fatalf("slab decode differs: %v\n%+v\n%+v", err, rs, r)
		}
		again := appendFrame(nil, &r)
		var r2 record
		if m, err := decodeFrame(again, &r2); err != nil || m != len(again) {
			t.Fatalf("re-encoded record does not decode: %v", err)
		}
		// The converter takes any decoded record.
		c := newConverter("ep", []record{r}, map[string]Range{"x": {0, 1}})
		s := c.newSummary()
		if err := c.batches(s.addBatch); err != nil {
			t.Fatalf("convert: %v", err)
		}
	})
}

func FuzzSegmentHeader(f *testing.F) {
	f.Add(appendSegmentHeader(nil, "fraud"))
	f.Add([]byte("KPLS\x01\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ep, n, err := parseSegmentHeader(b)
		if err == nil && (n > len(b) || string(appendSegmentHeader(nil, ep)) != string(b[:n])) {
			t.Fatalf("header %q parsed as %q (%d bytes)", b, ep, n)
		}
	})
}
