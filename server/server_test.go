package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kiln-ml/kiln/config"
	"github.com/kiln-ml/kiln/store"
)

func testConfig(t *testing.T) config.Config {
	c := config.Default()
	dir := t.TempDir()
	c.Store.URL = "sqlite://" + filepath.Join(dir, "kiln.db")
	c.Artifacts.URL = "file://" + filepath.Join(dir, "artifacts")
	c.Deploy.ModelCacheDir = filepath.Join(dir, "model-cache")
	c.Deploy.GRPCAddr = "" // no shared gRPC port between test servers
	c.Server.ShutdownTimeout = 10 * time.Second
	return c
}

// TestGracefulShutdown starts a slow artifact upload, cancels the server's
// context while the upload is in flight, and checks that the upload still
// completes, new connections are refused, Serve returns cleanly and the
// database was closed (it reopens without recovery work).
func TestGracefulShutdown(t *testing.T) {
	cfg := testConfig(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := New(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()

	pr, pw := io.Pipe()
	req, _ := http.NewRequest(http.MethodPut, url+"/api/2.0/mlflow-artifacts/artifacts/0/run/artifacts/slow.txt", pr)
	done := make(chan *http.Response, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("in-flight upload failed: %v", err)
			close(done)
			return
		}
		done <- resp
	}()
	io.WriteString(pw, "first half;")
	time.Sleep(200 * time.Millisecond) // the request is now being served
	cancel()
	time.Sleep(200 * time.Millisecond) // shutdown has begun
	if _, err := http.Get(url + "/health"); err == nil {
		t.Error("a new request was accepted after shutdown began")
	}
	io.WriteString(pw, "second half")
	pw.Close()
	resp := <-done
	if resp == nil {
		t.FailNow()
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("in-flight upload: status %d: %s", resp.StatusCode, b)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve returned %v", err)
	}

	// The upload is complete on disk, and the database reopens.
	db, err := store.Open(context.Background(), cfg.Store.URL)
	if err != nil {
		t.Fatalf("reopen database: %v", err)
	}
	db.Close()
	b, err := os.ReadFile(filepath.Join(strings.TrimPrefix(cfg.Artifacts.URL, "file://"), "0/run/artifacts/slow.txt"))
	if err != nil || string(b) != "first half;second half" {
		t.Fatalf("uploaded file = %q, %v", b, err)
	}
}

func TestMetricsAndPanicRecovery(t *testing.T) {
	srv, err := New(context.Background(), testConfig(t), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	h := srv.Handler()
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code, rec.Body.String()
	}
	if code, _ := get("/health"); code != 200 {
		t.Fatalf("/health: %d", code)
	}
	code, body := get("/metrics")
	if code != 200 || !strings.Contains(body, `kiln_http_requests_total{code="200",method="GET",route="GET /health"} 1`) {
		t.Fatalf("/metrics did not count the /health request:\n%s", body)
	}

	// A panicking handler is answered with a JSON 500, not a dropped connection.
	mux := http.NewServeMux()
	mux.HandleFunc("GET /boom", func(http.ResponseWriter, *http.Request) { panic("boom") })
	wrapped := withMiddleware(mux, slog.New(slog.NewTextHandler(io.Discard, nil)), newHTTPMetrics(prometheus.NewRegistry()))
	rec := httptest.NewRecorder()
	wrapped.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/boom", nil))
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), `"error_code":"INTERNAL_ERROR"`) {
		t.Fatalf("panic: got %d %s", rec.Code, rec.Body.String())
	}
}

// TestInferenceRoutesMounted checks that the endpoint routes reach their
// handlers: an unknown endpoint is "not found" in each protocol's format.
func TestInferenceRoutesMounted(t *testing.T) {
	srv, err := New(context.Background(), testConfig(t), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	h := srv.Handler()
	tests := []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"POST", "/endpoints/nope/explain", `{"inputs":[[1,2]]}`, 404, `"error_code":"`},
		{"POST", "/endpoints/nope/invocations", `{"inputs":[[1,2]]}`, 404, `"error_code":"ENDPOINT_NOT_FOUND"`},
		{"POST", "/v2/models/nope/infer", `{"inputs":[]}`, 404, `{"error":`},
		{"GET", "/v2/health/live", "", 200, ``},
	}
	for _, tc := range tests {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(rec, req)
		if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("%s %s: %d %s", tc.method, tc.path, rec.Code, rec.Body.String())
		}
	}
}
