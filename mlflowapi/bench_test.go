package mlflowapi

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkLogBatchHandler measures a log-batch of 100 metrics through the
// handler (decode, validate, store) without the network.
func BenchmarkLogBatchHandler(b *testing.B) {
	srv := newTestServer(b)
	r := call(b, srv, "POST", "/api/2.0/mlflow/runs/create", `{"experiment_id":"0"}`)
	id := r.body["run"].(map[string]any)["info"].(map[string]any)["run_id"].(string)
	h := srv.Config.Handler
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var sb strings.Builder
		fmt.Fprintf(&sb, `{"run_id":"%s","metrics":[`, id)
		for k := 0; k < 100; k++ {
			if k > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"key":"m%d","value":0.%d,"timestamp":1700000000000,"step":%d}`, k, i, i)
		}
		sb.WriteString("]}")
		req := httptest.NewRequest("POST", "/api/2.0/mlflow/runs/log-batch", strings.NewReader(sb.String()))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Body.String())
		}
	}
}
