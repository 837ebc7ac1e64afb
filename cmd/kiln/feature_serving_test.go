package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/config"
	"github.com/kiln-ml/kiln/feature/online"
)

// TestFeatureServingEndToEnd runs feature serving through kiln server:
// an entity and a feature view over a CSV file, materialized into the
// embedded online store; an endpoint over the column-pipeline ONNX
// fixture whose age, income and city are the view's features; a request
// with only customer_id and plan predicts what the full rows predict on
// an endpoint without features, a missing customer is a 400 naming it,
// and the prediction log records the key with the filled-in features.
//
// It runs on the embedded store and on Redis (KILN_TEST_REDIS; required
// when CI=true); the Redis run first deletes the view's rows of any
// earlier run.
func TestFeatureServingEndToEnd(t *testing.T) {
	t.Run("embedded", func(t *testing.T) { testFeatureServing(t, declServer(t)) })
	t.Run("redis", func(t *testing.T) {
		u := os.Getenv("KILN_TEST_REDIS")
		if u == "" {
			if os.Getenv("CI") == "true" {
				t.Fatal("KILN_TEST_REDIS is not set; CI must run feature serving on Redis (scripts/redis.sh start)")
			}
			t.Skip("KILN_TEST_REDIS is not set")
		}
		// Rows of an earlier run in the same Redis would be served.
		rs, err := online.NewRedis(context.Background(), u)
		if err != nil {
			t.Fatal(err)
		}
		if err := rs.DeleteView(context.Background(), "customer_stats"); err != nil {
			t.Fatal(err)
		}
		rs.Close()
		testFeatureServing(t, declServerWith(t, func(c *config.Config) { c.Feature.OnlineStore = u }))
	})
}

func testFeatureServing(t *testing.T, base string) {
	registerONNXVersion(t, base, "pipe", "skl_pipeline_columns")

	var fx struct {
		Inputs []struct {
			Name string `json:"name"`
			Data []any  `json:"data"`
		} `json:"inputs"`
	}
	raw, err := os.ReadFile(filepath.Join("../../runtime/onnx/testdata/models/skl_pipeline_columns/inputs.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &fx); err != nil {
		t.Fatal(err)
	}
	col := map[string][]any{}
	for _, in := range fx.Inputs {
		col[in.Name] = in.Data
	}
	n := len(col["age"])
	// The view's source: a stale row of customer 100 (a later one wins),
	// then one current row per customer 100+i.
	csv := "customer_id,event_timestamp,age,income,city\n100,2020-01-01T00:00:00Z,1,1,nowhere\n"
	ts := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	for i := range n {
		csv += fmt.Sprintf("%d,%s,%v,%v,%v\n", 100+i, ts, col["age"][i], col["income"][i], col["city"][i])
	}
	src := filepath.Join(t.TempDir(), "customer_stats.csv")
	if err := os.WriteFile(src, []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}

	call := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	must := func(method, path, body string) string {
		t.Helper()
		code, out := call(method, path, body)
		if code/100 != 2 {
			t.Fatalf("%s %s: %d %s", method, path, code, out)
		}
		return out
	}
	must("PUT", "/api/v1/entities/customer", `{"apiVersion":"kiln.dev/v1","kind":"Entity","metadata":{"name":"customer"},"spec":{"join_keys":["customer_id"]}}`)
	must("PUT", "/api/v1/feature-views/customer_stats", `{"apiVersion":"kiln.dev/v1","kind":"FeatureView","metadata":{"name":"customer_stats"},
		"spec":{"entities":["customer"],"source":{"path":`+jsonString(src)+`,"format":"csv"},"timestamp_field":"event_timestamp","ttl":"30d",
		"features":[{"name":"age","type":"float64"},{"name":"income","type":"float64","default":30000},{"name":"city","type":"string"}]}}`)
	must("POST", "/api/v1/feature-views/customer_stats/materialize", `{}`)

	// An endpoint may only name features the store has.
	if code, out := call("PUT", "/api/v1/endpoints/bad", `{"spec":{"model":"pipe","routes":[{"version":"1","weight":100}],
		"features":{"refs":["customer_stats:zip"]}}}`); code != 400 || !strings.Contains(out, `has no feature \"zip\"`) {
		t.Fatalf("an unknown feature: %d %s", code, out)
	}
	must("PUT", "/api/v1/endpoints/plain", `{"spec":{"model":"pipe","routes":[{"version":"1","weight":100}]}}`)
	must("PUT", "/api/v1/endpoints/churn", `{"spec":{"model":"pipe","routes":[{"version":"1","weight":100}],
		"features":{"refs":["customer_stats:age","customer_stats:income","customer_stats:city"]}}}`)

	// The reference: the full rows on the plain endpoint.
	var rows [][]any
	var keyed [][]any
	for i := range n {
		rows = append(rows, []any{col["age"][i], col["income"][i], col["city"][i], col["plan"][i]})
		keyed = append(keyed, []any{100 + i, col["plan"][i]})
	}
	body := func(cols []string, data [][]any) string {
		b, _ := json.Marshal(map[string]any{"dataframe_split": map[string]any{"columns": cols, "data": data}})
		return string(b)
	}
	want := must("POST", "/endpoints/plain/invocations", body([]string{"age", "income", "city", "plan"}, rows))
	got := must("POST", "/endpoints/churn/invocations", body([]string{"customer_id", "plan"}, keyed))
	if got != want {
		t.Fatalf("with only the key:\n%s\nthe full rows:\n%s", got, want)
	}
	// V2, one row.
	v2 := `{"id":"r1","inputs":[{"name":"customer_id","datatype":"INT64","shape":[1],"data":[104]},{"name":"plan","datatype":"BYTES","shape":[1],"data":[` + jsonString(col["plan"][4].(string)) + `]}]}`
	out := must("POST", "/v2/models/churn/infer", v2)
	var resp struct {
		Outputs []struct {
			Name string    `json:"name"`
			Data []float64 `json:"data"`
		} `json:"outputs"`
	}
	json.Unmarshal([]byte(out), &resp)
	if len(resp.Outputs) == 0 || resp.Outputs[0].Name != "output_label" || resp.Outputs[0].Data[0] != 1 {
		t.Errorf("V2 answer %s (want output_label 1, the fixture's label of row 4)", out)
	}
	// A customer the store does not know.
	code, out := call("POST", "/v2/models/churn/infer", strings.Replace(v2, "[104]", "[999]", 1))
	if code != 400 || !strings.Contains(out, `no value of feature customer_stats:age for customer_id=999 (NOT_FOUND)`) {
		t.Errorf("a missing customer: %d %s", code, out)
	}
	// Sending the features itself, it is served.
	if code, out := call("POST", "/endpoints/churn/invocations", body([]string{"customer_id", "age", "income", "city", "plan"},
		[][]any{{999, col["age"][0], col["income"][0], col["city"][0], col["plan"][0]}})); code != 200 {
		t.Errorf("a missing customer with its features: %d %s", code, out)
	}

	// The prediction log has the key and the filled-in features.
	must("POST", "/api/v1/endpoints/churn/predictions/flush", `{}`)
	log := must("GET", "/api/v1/endpoints/churn/predictions?format=jsonl", "")
	var ok, failed map[string]any
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		var r map[string]any
		if json.Unmarshal([]byte(line), &r) != nil || r["request_id"] != "r1" {
			continue
		}
		switch r["status"] {
		case 200.0:
			ok = r
		case 400.0:
			failed = r
		}
	}
	if ok == nil || failed == nil {
		t.Fatalf("no records of request r1 in the log:\n%s", log)
	}
	for k, want := range map[string]any{"inputs.customer_id": 104.0, "inputs.city": col["city"][4], "inputs.age": col["age"][4], "inputs.plan": col["plan"][4]} {
		if ok[k] != want {
			t.Errorf("the logged %s is %v, want %v (record %v)", k, ok[k], want, ok)
		}
	}
	if failed["inputs.customer_id"] != 999.0 || !strings.Contains(fmt.Sprint(failed["error"]), "customer_id=999") {
		t.Errorf("the failed request's record %v", failed)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
