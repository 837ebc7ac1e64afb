package explain_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/explain"
	"github.com/kiln-ml/kiln/serving"
)

// endpoints are the handler tests' models, by endpoint name.
func endpoints(t testing.TB) map[string]*serving.Model {
	t.Helper()
	out := map[string]*serving.Model{}
	for _, name := range []string{"xgb_binary", "xgb_multiclass", "onnx_rf_binary", "onnx_logreg_kernel"} {
		c, m := loadCase(t, filepath.Join("testdata", name+".case.json"))
		sm := &serving.Model{Name: name, Version: "3", Runtime: m}
		if name == "onnx_logreg_kernel" {
			// The background as the model's input example (pandas split).
			ex, _ := json.Marshal(map[string]any{"columns": []string{"a", "b", "c", "d", "e"}, "data": c.Background})
			sm.InputExample = ex
		}
		out[name] = sm
	}
	return out
}

func lookupIn(models map[string]*serving.Model) explain.Lookup {
	return func(_ context.Context, e string) (*serving.Model, error) {
		if e == "loading" {
			return nil, fmt.Errorf("%w: endpoint %q is loading", serving.ErrModelNotReady, e)
		}
		m, ok := models[e]
		if !ok {
			return nil, fmt.Errorf("%w: endpoint %q", serving.ErrModelNotFound, e)
		}
		return m, nil
	}
}

func splitBody(rows [][]*float64, extra string) string {
	b, _ := json.Marshal(map[string]any{"columns": []string{"a", "b", "c", "d", "e"}, "data": rows})
	return `{"dataframe_split": ` + string(b) + extra + `}`
}

func csvBody(rows [][]*float64) string {
	var sb strings.Builder
	sb.WriteString("a,b,c,d,e\n")
	for _, r := range rows {
		for j, v := range r {
			if j > 0 {
				sb.WriteByte(',')
			}
			if v != nil {
				fmt.Fprint(&sb, *v)
			}
		}
		sb.WriteByte('\n')
	}
	return sb.String()
}

type response struct {
	ExpectedValue json.RawMessage `json:"expected_value"`
	ShapValues    json.RawMessage `json:"shap_values"`
	FeatureNames  []string        `json:"feature_names"`
	OutputNames   []string        `json:"output_names"`
	Method        string          `json:"method"`
	ModelVersion  string          `json:"model_version"`
	ErrorCode     string          `json:"error_code"`
	Message       string          `json:"message"`
}

func post(t *testing.T, h http.Handler, path, ct, body string) (int, response) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var r response
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
		t.Fatalf("%s: status %d, body %q is not JSON: %v", path, rec.Code, rec.Body.String(), err)
	}
	if got := rec.Header().Get("Content-Type"); got != "application/json" {
		t.Errorf("%s: Content-Type %q", path, got)
	}
	return rec.Code, r
}

// shapRows reads the response's values as [output][row][feature].
func shapRows(t *testing.T, r response, outputs int) [][][]float64 {
	t.Helper()
	if outputs == 1 {
		var m [][]float64
		if err := json.Unmarshal(r.ShapValues, &m); err != nil {
			t.Fatal(err)
		}
		return [][][]float64{m}
	}
	var m [][][]float64
	if err := json.Unmarshal(r.ShapValues, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestHandler(t *testing.T) {
	models := endpoints(t)
	h := explain.NewHandler(lookupIn(models), nil)
	cases := map[string]shapCase{}
	for name := range models {
		c, _ := loadCase(t, filepath.Join("testdata", name+".case.json"))
		cases[name] = c
	}
	for _, tc := range []struct {
		name, endpoint, ct, body, query string
		method                          string
		outputs                         int
	}{
		{"tree, dataframe_split", "xgb_binary", "application/json", splitBody(cases["xgb_binary"].X[:4], ""), "", explain.MethodTreePathDependent, 1},
		{"tree, csv", "xgb_binary", "text/csv", csvBody(cases["xgb_binary"].X[:4]), "", explain.MethodTreePathDependent, 1},
		{"tree, multiclass", "xgb_multiclass", "application/json", splitBody(cases["xgb_multiclass"].X[:3], ""), "", explain.MethodTreePathDependent, 3},
		{"interventional, background in the body", "onnx_rf_binary", "application/json",
			splitBody(cases["onnx_rf_binary"].X[:5], `, "background": `+splitBody(cases["onnx_rf_binary"].Background, "")), "", explain.MethodTreeInterventional, 1},
		{"kernel, input example as background", "onnx_logreg_kernel", "application/json", splitBody(cases["onnx_logreg_kernel"].X[:3], ""), "?nsamples=32", explain.MethodKernel, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cases[tc.endpoint]
			status, r := post(t, h, "/endpoints/"+tc.endpoint+"/explain"+tc.query, tc.ct, tc.body)
			if status != http.StatusOK {
				t.Fatalf("status %d: %s %s", status, r.ErrorCode, r.Message)
			}
			if r.Method != tc.method || r.ModelVersion != "3" {
				t.Errorf("method %q version %q", r.Method, r.ModelVersion)
			}
			if strings.Join(r.FeatureNames, ",") != "a,b,c,d,e" {
				t.Errorf("feature names %q, want the request's columns", r.FeatureNames)
			}
			if tc.outputs > 1 && len(r.OutputNames) != tc.outputs {
				t.Errorf("output names %q", r.OutputNames)
			}
			var ev []float64
			if tc.outputs == 1 {
				var v float64
				if err := json.Unmarshal(r.ExpectedValue, &v); err != nil {
					t.Fatalf("expected_value %s: %v", r.ExpectedValue, err)
				}
				ev = []float64{v}
			} else if err := json.Unmarshal(r.ExpectedValue, &ev); err != nil {
				t.Fatalf("expected_value %s: %v", r.ExpectedValue, err)
			}
			for o := range tc.outputs {
				if math.Abs(ev[o]-c.ExpectedValue[o]) > 1e-5 {
					t.Errorf("expected value %d: %v, shap %v", o, ev[o], c.ExpectedValue[o])
				}
			}
			vals := shapRows(t, r, tc.outputs)
			for o := range tc.outputs {
				for row := range vals[o] {
					for f, v := range vals[o][row] {
						if want := c.ShapValues[row][f][o]; math.Abs(v-want) > 1e-5*(1+math.Abs(want)) {
							t.Fatalf("output %d row %d feature %d: %v, shap %v", o, row, f, v, want)
						}
					}
				}
			}
		})
	}
}

func TestHandlerErrors(t *testing.T) {
	models := endpoints(t)
	h := explain.NewHandler(lookupIn(models), nil)
	c, _ := loadCase(t, filepath.Join("testdata", "xgb_binary.case.json"))
	ok := splitBody(c.X[:2], "")
	many := make([][]*float64, explain.MaxRows+1)
	for i := range many {
		many[i] = c.X[0]
	}
	for _, tc := range []struct {
		name, path, ct, body string
		status               int
		code, msg            string
	}{
		{"unknown endpoint", "/endpoints/nope/explain", "application/json", ok, 404, "ENDPOINT_NOT_FOUND", "nope"},
		{"endpoint loading", "/endpoints/loading/explain", "application/json", ok, 503, "TEMPORARILY_UNAVAILABLE", "loading"},
		{"bad json", "/endpoints/xgb_binary/explain", "application/json", `{"dataframe_split": {`, 400, "BAD_REQUEST", "Invalid input"},
		{"no format", "/endpoints/xgb_binary/explain", "application/json", `{"rows": []}`, 400, "BAD_REQUEST", "dataframe_split"},
		{"wrong width", "/endpoints/xgb_binary/explain", "application/json", `{"instances": [[1, 2]]}`, 400, "BAD_REQUEST", "5"},
		{"content type", "/endpoints/xgb_binary/explain", "application/xml", `<x/>`, 415, "BAD_REQUEST", "content types"},
		{"too many rows", "/endpoints/xgb_binary/explain", "application/json", splitBody(many, ""), 400, "INVALID_PARAMETER_VALUE", "at most 1000 rows"},
		{"unknown method", "/endpoints/xgb_binary/explain?method=lime", "application/json", ok, 400, "INVALID_PARAMETER_VALUE", "lime"},
		{"bad nsamples", "/endpoints/xgb_binary/explain?nsamples=-3", "application/json", ok, 400, "INVALID_PARAMETER_VALUE", "nsamples"},
		{"no background", "/endpoints/onnx_rf_binary/explain", "application/json", ok, 400, "INVALID_PARAMETER_VALUE", "background"},
		{"bad background", "/endpoints/onnx_rf_binary/explain", "application/json", splitBody(c.X[:2], `, "background": {"instances": [[1]]}`), 400, "BAD_REQUEST", "background"},
		{"path-dependent without covers", "/endpoints/onnx_rf_binary/explain?method=tree_path_dependent", "application/json", ok, 400, "INVALID_PARAMETER_VALUE", "covers"},
		{"other path", "/endpoints/xgb_binary/invocations", "application/json", ok, 404, "ENDPOINT_NOT_FOUND", "explain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, r := post(t, h, tc.path, tc.ct, tc.body)
			if status != tc.status || r.ErrorCode != tc.code || !strings.Contains(r.Message, tc.msg) {
				t.Errorf("status %d %s %q, want %d %s containing %q", status, r.ErrorCode, r.Message, tc.status, tc.code, tc.msg)
			}
		})
	}
	// A body over the limit.
	req := httptest.NewRequest(http.MethodPost, "/endpoints/xgb_binary/explain", bytes.NewReader(make([]byte, explain.MaxBodySize+1)))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("oversized body: status %d", rec.Code)
	}
}

func FuzzExplainHandler(f *testing.F) {
	f.Add([]byte(`{"dataframe_split": {"columns": ["a","b","c","d","e"], "data": [[1, 2, 3, null, 5]]}}`), false)
	f.Add([]byte(`{"instances": [[1, 2, 3, 4, 5]], "background": {"instances": [[0, 0, 0, 0, 0]]}}`), false)
	f.Add([]byte("a,b,c,d,e\n1,2,3,4,5\n"), true)
	h := explain.NewHandler(lookupIn(endpoints(f)), nil)
	f.Fuzz(func(t *testing.T, body []byte, csv bool) {
		ct := "application/json"
		if csv {
			ct = "text/csv"
		}
		for _, e := range []string{"xgb_binary", "onnx_rf_binary"} {
			req := httptest.NewRequest(http.MethodPost, "/endpoints/"+e+"/explain", bytes.NewReader(body))
			req.Header.Set("Content-Type", ct)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code >= 500 {
				t.Fatalf("%s: status %d for %q: %s", e, rec.Code, body, rec.Body.String())
			}
			if !json.Valid(rec.Body.Bytes()) {
				t.Fatalf("%s: response is not JSON: %q", e, rec.Body.String())
			}
		}
	})
}
