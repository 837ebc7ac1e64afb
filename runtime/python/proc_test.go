package python

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/tensor"
)

// TestCodecRoundTrip encodes a request and decodes its tensors back: the
// request and the answer share one tensor encoding.
func TestCodecRoundTrip(t *testing.T) {
	inputs := []*tensor.Tensor{
		{Name: "f64", DType: tensor.Float64, Shape: []int64{2, 2}, Data: []float64{1.5, -2, 3e300, 0}},
		{Name: "f32", DType: tensor.Float32, Shape: []int64{3}, Data: []float32{1, 2, 3}},
		{Name: "h", DType: tensor.Float16, Shape: []int64{1}, Data: []uint16{0x3c00}},
		{Name: "i8", DType: tensor.Int8, Shape: []int64{2}, Data: []int8{-1, 1}},
		{Name: "u64", DType: tensor.Uint64, Shape: []int64{1}, Data: []uint64{1 << 63}},
		{Name: "b", DType: tensor.Bool, Shape: []int64{3}, Data: []bool{true, false, true}},
		{Name: `odd "name"\` + "\x01é", DType: tensor.String, Shape: []int64{3}, Data: []string{"", "héllo", "a\x00b"}},
		{Name: "scalar", DType: tensor.Int32, Shape: []int64{}, Data: []int32{7}},
	}
	var buf bytes.Buffer
	p := &proc{w: bufio.NewWriter(&buf)}
	if err := p.sendPredict(42, inputs, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	f, err := readFrame(&buf)
	if err != nil {
		t.Fatal(err)
	}
	var msg struct {
		Op     string `json:"op"`
		ID     uint64 `json:"id"`
		Inputs []spec `json:"inputs"`
	}
	if err := json.Unmarshal(f.header, &msg); err != nil {
		t.Fatalf("header %s: %v", f.header, err)
	}
	if msg.Op != "predict" || msg.ID != 42 || len(msg.Inputs) != len(inputs) {
		t.Fatalf("header %s", f.header)
	}
	got, err := decodeTensors(msg.Inputs, f.payload)
	if err != nil {
		t.Fatal(err)
	}
	for i, in := range inputs {
		if !reflect.DeepEqual(got[i], in) {
			t.Errorf("tensor %d: got %+v, want %+v", i, got[i], in)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		specs   []spec
		payload []byte
	}{
		{[]spec{{Name: "x", DataType: "FP32", Shape: []int64{2}}}, []byte{0, 0, 0, 0}},
		{[]spec{{Name: "x", DataType: "FP32", Shape: []int64{-1}}}, nil},
		{[]spec{{Name: "x", DataType: "COMPLEX", Shape: []int64{1}}}, make([]byte, 8)},
		{[]spec{{Name: "s", DataType: "BYTES", Shape: []int64{1}}}, []byte{9, 0, 0, 0, 'a'}},
		{[]spec{{Name: "x", DataType: "UINT8", Shape: []int64{1}}}, []byte{1, 2}},
	}
	for i, tc := range tests {
		if _, err := decodeTensors(tc.specs, tc.payload); !errors.Is(err, errProtocol) {
			t.Errorf("case %d: %v", i, err)
		}
	}
	if _, err := readFrame(bytes.NewReader([]byte{0, 0, 0, 0, 0, 0, 0, 0})); !errors.Is(err, errProtocol) {
		t.Errorf("empty header: %v", err)
	}
	if _, err := readFrame(bytes.NewReader([]byte{5, 0, 0, 0, 0, 0, 0, 0, '{'})); !errors.Is(err, errProtocol) {
		t.Errorf("truncated frame: %v", err)
	}
}

// FuzzWorkerFrame feeds arbitrary worker output to the frame reader and
// the answer decoder: errors, never a panic or an allocation larger than
// the payload.
func FuzzWorkerFrame(f *testing.F) {
	f.Add([]byte(`{"op":"result","id":1,"outputs":[{"name":"p","datatype":"INT64","shape":[1]}]}`), []byte{1, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte(`{"op":"result","id":1,"outputs":[{"name":"s","datatype":"BYTES","shape":[2]}]}`), []byte{1, 0, 0, 0, 'a', 0, 0, 0, 0})
	f.Add([]byte(`{"op":"error","id":1,"kind":"input","message":"bad"}`), []byte(nil))
	f.Add([]byte(`{"op":"result","id":1,"outputs":[{"name":"x","datatype":"FP32","shape":[1000000000000]}]}`), []byte(nil))
	f.Fuzz(func(t *testing.T, header, payload []byte) {
		p := &proc{}
		p.result(frame{header: header, payload: payload}, 1)
	})
}
