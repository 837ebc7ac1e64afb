package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		err  bool
	}{
		{"67108864", 64 << 20, false},
		{"64MiB", 64 << 20, false},
		{"512 KiB", 512 << 10, false},
		{"1GB", 1e9, false},
		{"10B", 10, false},
		{"0", 0, true},
		{"-1", 0, true},
		{"1TiB", 0, true},
		{"lots", 0, true},
	}
	for _, tt := range tests {
		var b byteSize
		err := b.Set(tt.in)
		if (err != nil) != tt.err || (!tt.err && int64(b) != tt.want) {
			t.Errorf("Set(%q) = %d, %v; want %d (error %v)", tt.in, b, err, tt.want, tt.err)
		}
	}
}

func TestDefaultModelName(t *testing.T) {
	tests := []struct{ uri, dir, want string }{
		{"./models/iris", "/abs/models/iris", "iris"},
		{"runs:/0123abcd/model", "/cache/x/artifacts", "model"},
		{"/tmp/mlruns/1/models/m-12/artifacts/", "/tmp/mlruns/1/models/m-12/artifacts", "m-12"},
		{"file:///srv/churn", "/srv/churn", "churn"},
		{".", "/work/here", "here"},
	}
	for _, tt := range tests {
		if got := defaultModelName(tt.uri, tt.dir); got != tt.want {
			t.Errorf("defaultModelName(%q, %q) = %q, want %q", tt.uri, tt.dir, got, tt.want)
		}
	}
}

func TestBackendForFile(t *testing.T) {
	for file, want := range map[string]string{
		"m.onnx": "onnx", "M.ONNX": "onnx", "b.json": "xgboost", "b.ubj": "xgboost",
		"lgb.txt": "lightgbm", "model.pkl": "",
	} {
		if got := backendForFile(file); got != want {
			t.Errorf("backendForFile(%q) = %q, want %q", file, got, want)
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestServeEndToEnd serves a real MLflow ONNX bundle (written by the
// mlflow client, in model/testdata), scores it over REST, and shuts down.
func TestServeEndToEnd(t *testing.T) {
	addr, grpcAddr := freeAddr(t), freeAddr(t)
	f := serveFlags{addr: addr, grpcAddr: grpcAddr, maxBodySize: 1 << 20, shutdownTimeout: 5 * time.Second, maxBatchSize: 8, maxBatchDelay: time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runServe(ctx, "../../model/testdata/onnx_logreg", f, slog.New(slog.DiscardHandler)) }()

	base := "http://" + addr
	var err error
	for range 200 {
		var res *http.Response
		if res, err = http.Get(base + "/v2/health/ready"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("server did not come up: %v", err)
	}
	post := func(path, ctype, body string) (int, string) {
		res, err := http.Post(base+path, ctype, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	code, body := post("/v2/models/onnx_logreg/infer", "application/json",
		`{"inputs":[{"name":"X","shape":[1,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2]}],"outputs":[{"name":"output_label"}]}`)
	if code != 200 || !strings.Contains(body, `"name":"output_label","datatype":"INT64","shape":[1],"data":[0]`) {
		t.Errorf("infer = %d %s", code, body)
	}
	code, body = post("/invocations", "application/json", `{"inputs":[[6.7,3.0,5.2,2.3]]}`)
	if code != 200 || !strings.HasPrefix(body, `{"predictions":{"output_label":[2],"output_probability":[{"0":`) {
		t.Errorf("invocations = %d %s", code, body)
	}
	if c, err := net.Dial("tcp", grpcAddr); err != nil {
		t.Errorf("gRPC port: %v", err)
	} else {
		c.Close()
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("runServe = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no shutdown")
	}
}

func TestServeBadURI(t *testing.T) {
	f := serveFlags{addr: "127.0.0.1:0"}
	err := runServe(context.Background(), "models:/churn/1", f, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "--tracking-uri") {
		t.Errorf("models:/ without a tracking server: %v", err)
	}
	err = runServe(context.Background(), "serve_test.go", f, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "cannot tell the model format") {
		t.Errorf("unknown extension: %v", err)
	}
}
