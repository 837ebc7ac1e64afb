package mlflowapi

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"testing"
)

// flat renders a logBatchReq with pointers dereferenced and NaN made
// comparable, so that the fast and the general decoders can be compared.
func flat(r logBatchReq) string {
	s := fmt.Sprintf("run=%q\n", r.RunID)
	for _, m := range r.Metrics {
		s += "m:"
		if m.Key != nil {
			s += fmt.Sprintf("k=%q ", *m.Key)
		}
		if m.Value != nil {
			s += fmt.Sprintf("v=%x ", math.Float64bits(float64(*m.Value)))
		}
		if m.Timestamp != nil {
			s += fmt.Sprintf("t=%d ", *m.Timestamp)
		}
		s += fmt.Sprintf("s=%d %q %q %q\n", m.Step, m.ModelID, m.DatasetName, m.DatasetDigest)
	}
	for _, group := range [][]kvReq{r.Params, r.Tags} {
		s += fmt.Sprintf("group of %d:", len(group))
		for _, kv := range group {
			if kv.Key != nil {
				s += fmt.Sprintf("k=%q ", *kv.Key)
			}
			if kv.Value != nil {
				s += fmt.Sprintf("v=%q ", *kv.Value)
			}
			s += ";"
		}
		s += "\n"
	}
	return s
}

func TestParseLogBatch(t *testing.T) {
	tests := []struct {
		body string
		ok   bool
	}{
		{`{"run_id":"abc","metrics":[{"key":"m","value":1.5,"timestamp":1700000000000,"step":3}],"params":[{"key":"p","value":"v"}],"tags":[]}`, true},
		{` { "run_uuid" : "x", "run_id":"a", "metrics" : [ {"key":"a\"b","value":"NaN","timestamp":"12","extra":{"x":[1,true,null]}} ] } `, true},
		{`{"metrics":null,"params":null}`, true},
		{`{"run_id":"a","metrics":[{"key":"k","value":1,"timestamp":1.5}]}`, false}, // non-integer timestamp: general path
		{`{"run_id":"a","metrics":[{"key":"k","value":1,"timestamp":1}]`, false},
		{`{"run_id":1}`, false},
		{`"{\"run_id\":\"a\"}"`, false},
		{`{"run_id":"a"} x`, false},
	}
	for _, tt := range tests {
		fast, ok := parseLogBatch([]byte(tt.body))
		if ok != tt.ok {
			t.Fatalf("parseLogBatch(%s) ok=%v, want %v", tt.body, ok, tt.ok)
		}
		if !ok {
			continue
		}
		var slow logBatchReq
		if err := decodeJSON([]byte(tt.body), &slow); err != nil {
			t.Fatalf("general decoder rejects %s: %v", tt.body, err)
		}
		if flat(fast) != flat(slow) {
			t.Fatalf("decoders disagree on %s:\nfast %s\nslow %s", tt.body, flat(fast), flat(slow))
		}
	}
}

// FuzzParseLogBatch: whatever the fast parser accepts, the general decoder
// accepts too, with the same result.
func FuzzParseLogBatch(f *testing.F) {
	for _, s := range []string{
		`{"run_id":"abc","metrics":[{"key":"m","value":1.5,"timestamp":1,"step":3,"model_id":"m-1"}],"params":[{"key":"p","value":"v"}],"tags":[{"key":"t","value":"\u00e9"}]}`,
		`{"metrics":[{"value":"-Infinity","timestamp":"5"}],"x":[{"y":"z"}]}`,
		`{"run_id":"a","tags":[{"key":"k"}]}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		fast, ok := parseLogBatch([]byte(body))
		if !ok {
			return
		}
		var slow logBatchReq
		if err := json.Unmarshal([]byte(body), &slow); err != nil {
			// encoding/json rejects invalid UTF-8 only by replacing it; other
			// rejections mean the fast path accepted something invalid.
			t.Fatalf("fast parser accepted %q, general decoder: %v", body, err)
		}
		if a, b := flat(fast), flat(slow); a != b && !reflect.DeepEqual(a, b) {
			t.Fatalf("decoders disagree on %q:\nfast %s\nslow %s", body, a, b)
		}
	})
}

func TestParseLogBatchRepeatedMembers(t *testing.T) {
	body := `{"metrics":[{"key":"a","value":1,"timestamp":1}],"metrics":[{"key":"b","value":2,"timestamp":2}],"tags":[{"key":"x","value":"1"}],"tags":null}`
	fast, ok := parseLogBatch([]byte(body))
	var slow logBatchReq
	if err := json.Unmarshal([]byte(body), &slow); err != nil || !ok || flat(fast) != flat(slow) {
		t.Fatalf("ok=%v err=%v\nfast %s\nslow %s", ok, err, flat(fast), flat(slow))
	}
}
