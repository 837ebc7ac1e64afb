package drift

import (
	"encoding/json"
	"testing"
)

// FuzzReportJSON: decoding any document never panics, and what decodes
// encodes and decodes to the same JSON again.
func FuzzReportJSON(f *testing.F) {
	f.Add([]byte(`{"features":[{"name":"a","method":"ks","score":0.5,"statistic":"Infinity","threshold":0.05,"p_value":true,"drift":false,"ref_count":3,"cur_count":4,"histogram":{"edges":[0,1],"ref":[1],"cur":[1]}}],"drifted":0,"total":1,"share":0,"drift_share":0.5,"dataset_drift":false}`))
	f.Add([]byte(`{"features":[{"name":"b","score":"NaN","statistic":"-Infinity","error":"x"}]}`))
	f.Add([]byte(`{"features":[{"score":"nope"}]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Report
		if json.Unmarshal(data, &r) != nil {
			return
		}
		b, err := json.Marshal(&r)
		if err != nil {
			t.Fatalf("marshal of a decoded report: %v", err)
		}
		var back Report
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("re-decode: %v: %s", err, b)
		}
		b2, _ := json.Marshal(&back)
		if string(b) != string(b2) {
			t.Fatalf("not stable:\n%s\n%s", b, b2)
		}
	})
}
