package profile

import (
	"encoding/json"
	"testing"

	"github.com/kiln-ml/kiln/dataset/table"
)

// FuzzProfileJSON decodes stored profiles (outside input): decoding must
// never panic, and a decoded profile must summarise, merge and encode.
func FuzzProfileJSON(f *testing.F) {
	p := New(table.Schema{Fields: []table.Field{
		{Name: "x", Type: table.Float64},
		{Name: "s", Type: table.String},
		{Name: "t", Type: table.Timestamp, Unit: table.Nanosecond},
		{Name: "b", Type: table.Bool},
	}}, Options{})
	b := &table.Batch{Len: 3, Columns: []table.Column{
		{Type: table.Float64, Floats: []float64{1, 2.5, -3}},
		{Type: table.String, Strs: table.Strings{Data: []byte("abbc"), Offsets: []int32{0, 1, 3, 4}}},
		{Type: table.Timestamp, Ints: []int64{1, 2, 3}, Valid: table.Bitmap{5}},
		{Type: table.Bool, Bools: []bool{true, false, true}},
	}}
	if err := p.Add(b); err != nil {
		f.Fatal(err)
	}
	p.Refresh()
	seed, err := json.Marshal(p)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"rows":1,"columns":[{"field":{"name":"a","type":"int64","nullable":false},"sketches":{"n":1,"kll":"AQ==","hll":"AXMA","freq":"AQ=="}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var p Profile
		if err := json.Unmarshal(data, &p); err != nil {
			return
		}
		p.Refresh()
		m, err := Merge(&p, &p)
		if err != nil {
			return
		}
		if _, err := json.Marshal(m); err != nil {
			t.Fatalf("re-encoding a decoded profile: %v", err)
		}
	})
}

// FuzzSketches decodes each sketch's binary form.
func FuzzSketches(f *testing.F) {
	h := NewHLL()
	k := NewKLL(16)
	q := NewFreq(8)
	for i := range 100 {
		h.Add(mix64(uint64(i)))
		k.Add(float64(i))
		q.Add(uint64(i%10), 1, nil)
	}
	for _, s := range []interface{ MarshalBinary() ([]byte, error) }{h, k, q} {
		b, _ := s.MarshalBinary()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var h HLL
		if h.UnmarshalBinary(data) == nil {
			h.Estimate()
			h.Merge(NewHLL())
		}
		var k KLL
		if k.UnmarshalBinary(data) == nil {
			k.Quantiles([]float64{0, 0.5, 1})
			k.CDF([]float64{0})
			k.AddBatch([]float64{1, 2, 3})
		}
		var q Freq
		if q.UnmarshalBinary(data) == nil {
			q.Top(3)
			q.Add(1, 1, nil)
		}
	})
}
