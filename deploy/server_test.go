package deploy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/kiln-ml/kiln/config"
	"github.com/kiln-ml/kiln/server"
	"github.com/kiln-ml/kiln/serving/inferencepb"
)

// TestKilnServerServesEndpoints runs kiln server as `kiln server` does,
// registers a model through the MLflow REST API and the artifact proxy,
// applies an endpoint through /api/v1 and calls it over every protocol:
// OIP REST, /endpoints/{e}/invocations and OIP gRPC.
func TestKilnServerServesEndpoints(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	cfg.Store.URL = "sqlite://" + filepath.Join(dir, "kiln.db")
	cfg.Artifacts.URL = "file://" + filepath.Join(dir, "artifacts")
	cfg.Deploy.ModelCacheDir = filepath.Join(dir, "model-cache")
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Deploy.GRPCAddr = gl.Addr().String()
	gl.Close()
	srv, err := server.New(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	base := "http://" + ln.Addr().String()
	call := func(method, path string, body any, out any) int {
		t.Helper()
		var r io.Reader
		switch b := body.(type) {
		case nil:
		case []byte:
			r = bytes.NewReader(b)
		default:
			js, _ := json.Marshal(b)
			r = bytes.NewReader(js)
		}
		req, _ := http.NewRequest(method, base+path, r)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if out != nil {
			json.Unmarshal(b, out)
		}
		if resp.StatusCode != 200 {
			t.Logf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		return resp.StatusCode
	}
	var run struct {
		Run struct {
			Info struct {
				RunID string `json:"run_id"`
			} `json:"info"`
		} `json:"run"`
	}
	if call("POST", "/api/2.0/mlflow/runs/create", map[string]any{"experiment_id": "0"}, &run) != 200 {
		t.Fatal("create run")
	}
	id := run.Run.Info.RunID
	onnx, err := os.ReadFile("../runtime/onnx/testdata/models/skl_svc_rbf_multi/model.onnx")
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"MLmodel": []byte("flavors:\n  onnx:\n    data: model.onnx\n"), "model.onnx": onnx} {
		if call("PUT", "/api/2.0/mlflow-artifacts/artifacts/0/"+id+"/artifacts/model/"+name, b, nil) != 200 {
			t.Fatal("upload")
		}
	}
	if call("POST", "/api/2.0/mlflow/registered-models/create", map[string]any{"name": "clf"}, nil) != 200 ||
		call("POST", "/api/2.0/mlflow/model-versions/create", map[string]any{"name": "clf", "source": "runs:/" + id + "/model", "run_id": id}, nil) != 200 {
		t.Fatal("register")
	}
	doc := `{"apiVersion":"kiln.dev/v1","kind":"Endpoint","metadata":{"name":"iris"},"spec":{"model":"clf","routes":[{"name":"main","version":"1","weight":100}]}}`
	if code := call("PUT", "/api/v1/endpoints/iris", []byte(doc), nil); code != 200 && code != 201 {
		t.Fatalf("apply: %d", code)
	}

	in, _ := os.ReadFile("../runtime/onnx/testdata/models/skl_svc_rbf_multi/inputs.json")
	var infer struct {
		ModelName string `json:"model_name"`
		Outputs   []struct {
			Name string    `json:"name"`
			Data []float64 `json:"data"`
		} `json:"outputs"`
	}
	if call("POST", "/v2/models/iris/infer", in, &infer) != 200 || infer.ModelName != "iris" || len(infer.Outputs) == 0 {
		t.Fatalf("REST infer: %+v", infer)
	}
	var inputs struct {
		Inputs []struct {
			Data []float32 `json:"data"`
		} `json:"inputs"`
	}
	json.Unmarshal(in, &inputs)
	x := inputs.Inputs[0].Data
	var rows [][]float32
	for i := 0; i+4 <= len(x); i += 4 {
		rows = append(rows, x[i:i+4])
	}
	var preds map[string]any
	if call("POST", "/endpoints/iris/invocations", map[string]any{"inputs": rows}, &preds) != 200 || preds["predictions"] == nil {
		t.Fatalf("invocations: %v", preds)
	}
	conn, err := grpc.NewClient(cfg.Deploy.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	gctx, gcancel := context.WithTimeout(ctx, 10*time.Second)
	defer gcancel()
	resp, err := inferencepb.NewGRPCInferenceServiceClient(conn).ModelInfer(gctx, &inferencepb.ModelInferRequest{
		ModelName: "iris",
		Inputs: []*inferencepb.ModelInferRequest_InferInputTensor{{Name: "X", Datatype: "FP32", Shape: []int64{int64(len(rows)), 4},
			Contents: &inferencepb.InferTensorContents{Fp32Contents: x}}},
	}, grpc.WaitForReady(true))
	if err != nil {
		t.Fatalf("gRPC infer: %v", err)
	}
	labels := resp.Outputs[0].Contents.GetInt64Contents()
	for i, l := range labels {
		if float64(l) != infer.Outputs[0].Data[i] {
			t.Fatalf("gRPC label %d = %d, REST said %v", i, l, infer.Outputs[0].Data[i])
		}
	}
	mresp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	for _, want := range []string{`kiln_endpoint_requests_total{code="200",endpoint="iris",route="main"} 3`, "kiln_endpoint_route_weight", "kiln_model_cache_models 1"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
