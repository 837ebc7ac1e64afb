package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/kiln-ml/kiln/explain"
	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/serving"
)

// explainFixture is explain's xgb_binary fixture: the model and shap's
// values for its rows.
type explainFixture struct {
	model string
	rows  [][]*float64
	shap  [][][]float64
	ev    []float64
}

func loadExplainFixture(t *testing.T, name, model string) explainFixture {
	t.Helper()
	dir := filepath.Join("..", "..", "explain", "testdata")
	b, err := os.ReadFile(filepath.Join(dir, name+".case.json"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		X    [][]*float64  `json:"x"`
		Shap [][][]float64 `json:"shap_values"`
		EV   []float64     `json:"expected_value"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return explainFixture{model: filepath.Join(dir, model), rows: c.X, shap: c.Shap, ev: c.EV}
}

// writeRowsCSV writes rows under the header a..e.
func writeRowsCSV(t *testing.T, rows [][]*float64) string {
	t.Helper()
	var sb strings.Builder
	sb.WriteString("a,b,c,d,e\n")
	for _, r := range rows {
		for j, v := range r {
			if j > 0 {
				sb.WriteByte(',')
			}
			if v != nil {
				sb.WriteString(jsonNumber(*v))
			}
		}
		sb.WriteByte('\n')
	}
	p := filepath.Join(t.TempDir(), "rows.csv")
	if err := os.WriteFile(p, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func jsonNumber(v float64) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func checkResponse(t *testing.T, out []byte, fx explainFixture, rows int) {
	t.Helper()
	var r struct {
		ExpectedValue float64     `json:"expected_value"`
		ShapValues    [][]float64 `json:"shap_values"`
		FeatureNames  []string    `json:"feature_names"`
		Method        string      `json:"method"`
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	if r.Method != explain.MethodTreePathDependent || strings.Join(r.FeatureNames, ",") != "a,b,c,d,e" || len(r.ShapValues) != rows {
		t.Fatalf("response %+v", r)
	}
	if math.Abs(r.ExpectedValue-fx.ev[0]) > 1e-5 {
		t.Errorf("expected value %v, shap %v", r.ExpectedValue, fx.ev[0])
	}
	for i, row := range r.ShapValues {
		for j, v := range row {
			if w := fx.shap[i][j][0]; math.Abs(v-w) > 1e-5*(1+math.Abs(w)) {
				t.Fatalf("row %d feature %d: %v, shap %v", i, j, v, w)
			}
		}
	}
}

func TestExplainLocal(t *testing.T) {
	ctx := context.Background()
	fx := loadExplainFixture(t, "xgb_binary", "xgb_binary.json")
	in := writeRowsCSV(t, fx.rows[:6])

	var out, errOut bytes.Buffer
	if err := runExplain(ctx, &out, &errOut, explainFlags{model: fx.model, input: in, output: "json", logLevel: "warn"}); err != nil {
		t.Fatal(err)
	}
	checkResponse(t, out.Bytes(), fx, 6)

	out.Reset()
	if err := runExplain(ctx, &out, &errOut, explainFlags{model: fx.model, input: in, output: "table", logLevel: "warn"}); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, "tree_path_dependent") || !strings.Contains(s, "OUTPUT") || strings.Count(s, "\n") != 8 {
		t.Errorf("table:\n%s", s)
	}

	out.Reset()
	if err := runExplain(ctx, &out, &errOut, explainFlags{model: fx.model, input: in, output: "table", importance: true, logLevel: "warn"}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 6 || !strings.Contains(lines[0], "6 rows") || !strings.Contains(lines[1], strings.Repeat("█", 40)) {
		t.Errorf("importance chart:\n%s", out.String())
	}
}

func TestExplainErrors(t *testing.T) {
	ctx := context.Background()
	fx := loadExplainFixture(t, "xgb_binary", "xgb_binary.json")
	in := writeRowsCSV(t, fx.rows[:2])
	twoColumns := filepath.Join(t.TempDir(), "two.csv")
	if err := os.WriteFile(twoColumns, []byte("a,b\n1,2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		f    explainFlags
		msg  string
	}{
		{"neither", explainFlags{input: in, output: "table"}, "exactly one of --model"},
		{"both", explainFlags{model: fx.model, endpoint: "e", input: in, output: "table"}, "exactly one of --model"},
		{"no input", explainFlags{model: fx.model, output: "table"}, "--input is required"},
		{"output", explainFlags{model: fx.model, input: in, output: "xml"}, "unknown --output"},
		{"store URI", explainFlags{model: fx.model, input: in, output: "table", store: "models:/churn@champion"}, "models:/NAME/VERSION"},
		{"missing file", explainFlags{model: fx.model, input: in + ".nope", output: "table"}, "no such file"},
		{"wrong columns", explainFlags{model: fx.model, input: twoColumns, output: "table", logLevel: "warn"}, "5 columns"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := runExplain(ctx, io.Discard, io.Discard, tc.f)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %v, want one containing %q", err, tc.msg)
			}
		})
	}
}

// TestExplainEndpointAndStore explains through a server's explain
// handler and stores the importance through its set-tag endpoint.
func TestExplainEndpointAndStore(t *testing.T) {
	ctx := context.Background()
	fx := loadExplainFixture(t, "xgb_binary", "xgb_binary.json")
	m, err := runtime.Load(ctx, "xgboost", runtime.Source{Path: fx.model})
	if err != nil {
		t.Fatal(err)
	}
	sm := &serving.Model{Name: "churn", Version: "4", Runtime: m}
	var mu sync.Mutex
	var tag map[string]string
	mux := http.NewServeMux()
	mux.Handle("POST /endpoints/{endpoint}/explain", explain.NewHandler(func(_ context.Context, e string) (*serving.Model, error) {
		if e != "churn" {
			return nil, serving.ErrModelNotFound
		}
		return sm, nil
	}, nil))
	mux.HandleFunc("POST /api/2.0/mlflow/model-versions/set-tag", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		json.NewDecoder(r.Body).Decode(&tag)
		w.Write([]byte("{}"))
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	in := writeRowsCSV(t, fx.rows[:5])

	var out bytes.Buffer
	if err := runExplain(ctx, &out, io.Discard, explainFlags{endpoint: "churn", input: in, output: "json", server: srv.URL}); err != nil {
		t.Fatal(err)
	}
	checkResponse(t, out.Bytes(), fx, 5)
	if !strings.Contains(out.String(), `"model_version":"4"`) {
		t.Errorf("response without the model version: %s", out.String())
	}

	var errOut bytes.Buffer
	out.Reset()
	if err := runExplain(ctx, &out, &errOut, explainFlags{endpoint: "churn", input: in, output: "table", server: srv.URL, store: "models:/churn/4"}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := tag
	mu.Unlock()
	if got["name"] != "churn" || got["version"] != "4" || got["key"] != explain.ImportanceTag {
		t.Fatalf("set-tag request %v", got)
	}
	imp, err := explain.ParseImportanceTag(got["value"])
	if err != nil || len(imp.Features) != 5 || imp.Rows != 5 {
		t.Fatalf("stored importance %+v (%v)", imp, err)
	}
	if !strings.Contains(errOut.String(), "stored the importance") {
		t.Errorf("stderr %q", errOut.String())
	}

	err = runExplain(ctx, io.Discard, io.Discard, explainFlags{endpoint: "nope", input: in, output: "json", server: srv.URL})
	if err == nil || !strings.Contains(err.Error(), "HTTP 404") || !strings.Contains(err.Error(), "ENDPOINT_NOT_FOUND") {
		t.Errorf("unknown endpoint: %v", err)
	}
}
