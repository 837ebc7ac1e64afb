package mlflowapi

import (
	"bytes"
	"crypto/sha256"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// do sends one request with a raw body and returns the response with its
// body read.
func do(t testing.TB, srv *httptest.Server, method, path string, body io.Reader, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, raw
}

func putArtifact(t testing.TB, srv *httptest.Server, key, body string) {
	t.Helper()
	resp, raw := do(t, srv, "PUT", "/api/2.0/mlflow-artifacts/artifacts/"+key, strings.NewReader(body))
	if resp.StatusCode != 200 || string(raw) != "{}\n" {
		t.Fatalf("PUT %s: %d %s", key, resp.StatusCode, raw)
	}
}

func TestRunArtifactListAndDownload(t *testing.T) {
	srv := newTestServer(t)
	r := call(t, srv, "POST", "/api/2.0/mlflow/runs/create", `{"experiment_id":"0"}`)
	info := r.body["run"].(map[string]any)["info"].(map[string]any)
	id, root := info["run_id"].(string), info["artifact_uri"].(string)
	if root != "mlflow-artifacts:/0/"+id+"/artifacts" {
		t.Fatalf("artifact_uri %q", root)
	}
	base := "0/" + id + "/artifacts/"
	putArtifact(t, srv, base+"notes.txt", "hello")
	putArtifact(t, srv, base+"model/MLmodel", "flavors: {}\n")
	putArtifact(t, srv, base+"model/data/coef.json", `[1,2]`)

	tests := []struct {
		name, path, want string
	}{
		{"root", "/api/2.0/mlflow/artifacts/list?run_id=" + id,
			`{"root_uri":"` + root + `","files":[{"path":"model","is_dir":true},{"path":"notes.txt","is_dir":false,"file_size":5}]}`},
		{"subdir paths are relative to the run root", "/api/2.0/mlflow/artifacts/list?run_id=" + id + "&path=model",
			`{"root_uri":"` + root + `","files":[{"path":"model/MLmodel","is_dir":false,"file_size":12},{"path":"model/data","is_dir":true}]}`},
		{"ajax twin and run_uuid", "/ajax-api/2.0/mlflow/artifacts/list?run_uuid=" + id + "&path=model/data/",
			`{"root_uri":"` + root + `","files":[{"path":"model/data/coef.json","is_dir":false,"file_size":5}]}`},
		{"empty directory", "/api/2.0/mlflow/artifacts/list?run_id=" + id + "&path=nothing",
			`{"root_uri":"` + root + `"}`},
		{"proxy list gives base names", "/api/2.0/mlflow-artifacts/artifacts?path=" + base + "model",
			`{"files":[{"path":"MLmodel","is_dir":false,"file_size":12},{"path":"data","is_dir":true}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, srv, "GET", tt.path, "")
			if r.status != 200 || r.raw != tt.want+"\n" {
				t.Fatalf("got %d %s\nwant %s", r.status, r.raw, tt.want)
			}
		})
	}

	for _, p := range []string{"/get-artifact?run_id=" + id + "&path=model/data/coef.json", "/ajax-api/2.0/mlflow/get-artifact?run_uuid=" + id + "&path=model/data/coef.json"} {
		resp, raw := do(t, srv, "GET", p, nil)
		if resp.StatusCode != 200 || string(raw) != "[1,2]" || resp.Header.Get("Content-Type") != "application/json" ||
			resp.Header.Get("X-Content-Type-Options") != "nosniff" || !strings.HasPrefix(resp.Header.Get("Content-Disposition"), "attachment") {
			t.Fatalf("GET %s: %d %q %v", p, resp.StatusCode, raw, resp.Header)
		}
	}
	resp, raw := do(t, srv, "GET", "/get-artifact?run_id="+id+"&path=model/MLmodel", nil)
	if resp.StatusCode != 200 || string(raw) != "flavors: {}\n" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("MLmodel: %d %q %q", resp.StatusCode, raw, resp.Header.Get("Content-Type"))
	}

	errs := []struct {
		name, path string
		status     int
		code       string
	}{
		{"traversal in list", "/api/2.0/mlflow/artifacts/list?run_id=" + id + "&path=../../other", 400, "INVALID_PARAMETER_VALUE"},
		{"absolute path in list", "/api/2.0/mlflow/artifacts/list?run_id=" + id + "&path=/etc", 400, "INVALID_PARAMETER_VALUE"},
		{"unknown run in list", "/api/2.0/mlflow/artifacts/list?run_id=0123456789abcdef0123456789abcdef", 404, "RESOURCE_DOES_NOT_EXIST"},
		{"traversal in download", "/get-artifact?run_id=" + id + "&path=../../../x", 400, "INVALID_PARAMETER_VALUE"},
		{"NUL in download", "/get-artifact?run_id=" + id + "&path=a%00b", 400, "INVALID_PARAMETER_VALUE"},
		{"missing file", "/get-artifact?run_id=" + id + "&path=nope.txt", 404, "RESOURCE_DOES_NOT_EXIST"},
		{"directory is not a file", "/get-artifact?run_id=" + id + "&path=model", 404, "RESOURCE_DOES_NOT_EXIST"},
		{"unknown run in download", "/get-artifact?run_id=0123456789abcdef0123456789abcdef&path=x", 404, "RESOURCE_DOES_NOT_EXIST"},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, srv, "GET", tt.path, "")
			if r.status != tt.status || r.body["error_code"] != tt.code {
				t.Fatalf("got %d %s, want %d %s", r.status, r.raw, tt.status, tt.code)
			}
		})
	}
}

func TestLoggedModelArtifacts(t *testing.T) {
	srv := newTestServer(t)
	r := call(t, srv, "POST", "/api/2.0/mlflow/logged-models", `{"experiment_id":"0","name":"clf"}`)
	if r.status != 200 {
		t.Fatalf("create logged model: %d %s", r.status, r.raw)
	}
	info := r.body["model"].(map[string]any)["info"].(map[string]any)
	id, root := info["model_id"].(string), info["artifact_uri"].(string)
	if root != "mlflow-artifacts:/0/models/"+id+"/artifacts" {
		t.Fatalf("artifact_uri %q", root)
	}
	putArtifact(t, srv, "0/models/"+id+"/artifacts/MLmodel", "flavors: {}\n")
	putArtifact(t, srv, "0/models/"+id+"/artifacts/metadata/requirements.txt", "scikit-learn\n")

	r = call(t, srv, "GET", "/api/2.0/mlflow/logged-models/"+id+"/artifacts/directories", "")
	want := `{"root_uri":"` + root + `","files":[{"path":"MLmodel","is_dir":false,"file_size":12},{"path":"metadata","is_dir":true}]}` + "\n"
	if r.status != 200 || r.raw != want {
		t.Fatalf("list: %d %s\nwant %s", r.status, r.raw, want)
	}
	r = call(t, srv, "GET", "/ajax-api/2.0/mlflow/logged-models/"+id+"/artifacts/directories?artifact_directory_path=metadata", "")
	if want := `"path":"metadata/requirements.txt"`; r.status != 200 || !strings.Contains(r.raw, want) {
		t.Fatalf("list metadata: %d %s", r.status, r.raw)
	}
	resp, raw := do(t, srv, "GET", "/ajax-api/2.0/mlflow/logged-models/"+id+"/artifacts/files?artifact_file_path=metadata/requirements.txt", nil)
	if resp.StatusCode != 200 || string(raw) != "scikit-learn\n" {
		t.Fatalf("download: %d %q", resp.StatusCode, raw)
	}
	for _, tt := range []struct {
		path   string
		status int
	}{
		{"/ajax-api/2.0/mlflow/logged-models/" + id + "/artifacts/files?artifact_file_path=../../x", 400},
		{"/ajax-api/2.0/mlflow/logged-models/" + id + "/artifacts/files?artifact_file_path=none", 404},
		{"/ajax-api/2.0/mlflow/logged-models/m-00000000000000000000000000000000/artifacts/files?artifact_file_path=MLmodel", 404},
		{"/api/2.0/mlflow/logged-models/" + id + "/artifacts/directories?artifact_directory_path=../..", 400},
		{"/api/2.0/mlflow/logged-models/m-00000000000000000000000000000000/artifacts/directories", 404},
	} {
		if r := call(t, srv, "GET", tt.path, ""); r.status != tt.status || r.body["error_code"] == nil {
			t.Errorf("GET %s: %d %s, want %d", tt.path, r.status, r.raw, tt.status)
		}
	}
}

func TestArtifactProxyErrors(t *testing.T) {
	srv := newTestServer(t)
	putArtifact(t, srv, "0/r/artifacts/a.txt", "a")
	tests := []struct {
		name, method, path string
		status             int
		code               string
	}{
		{"encoded traversal on PUT", "PUT", "/api/2.0/mlflow-artifacts/artifacts/0/%2E%2E/%2E%2E/escape.txt", 400, "INVALID_PARAMETER_VALUE"},
		{"encoded slash traversal on PUT", "PUT", "/api/2.0/mlflow-artifacts/artifacts/0/..%2F..%2Fescape.txt", 400, "INVALID_PARAMETER_VALUE"},
		{"NUL on PUT", "PUT", "/api/2.0/mlflow-artifacts/artifacts/0/a%00b", 400, "INVALID_PARAMETER_VALUE"},
		{"backslash traversal on PUT", "PUT", "/api/2.0/mlflow-artifacts/artifacts/0/..%5C..%5Cescape.txt", 400, "INVALID_PARAMETER_VALUE"},
		{"encoded traversal on GET", "GET", "/api/2.0/mlflow-artifacts/artifacts/%2E%2E/etc/passwd", 400, "INVALID_PARAMETER_VALUE"},
		{"encoded traversal on DELETE", "DELETE", "/api/2.0/mlflow-artifacts/artifacts/0/%2E%2E/%2E%2E", 400, "INVALID_PARAMETER_VALUE"},
		{"missing file", "GET", "/ajax-api/2.0/mlflow-artifacts/artifacts/0/r/artifacts/b.txt", 404, "RESOURCE_DOES_NOT_EXIST"},
		{"delete missing", "DELETE", "/api/2.0/mlflow-artifacts/artifacts/0/r/artifacts/b.txt", 404, "RESOURCE_DOES_NOT_EXIST"},
		{"multipart create", "POST", "/api/2.0/mlflow-artifacts/mpu/create/0/r/artifacts/big.bin", 501, "NOT_IMPLEMENTED"},
		{"multipart complete", "POST", "/api/2.0/mlflow-artifacts/mpu/complete/0/r/artifacts/big.bin", 501, "NOT_IMPLEMENTED"},
		{"multipart abort (ajax)", "POST", "/ajax-api/2.0/mlflow-artifacts/mpu/abort/0/r/artifacts/big.bin", 501, "NOT_IMPLEMENTED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := call(t, srv, tt.method, tt.path, `{"path":"x"}`)
			if r.status != tt.status || r.body["error_code"] != tt.code {
				t.Fatalf("got %d %s, want %d %s", r.status, r.raw, tt.status, tt.code)
			}
			if tt.code == "NOT_IMPLEMENTED" && !strings.HasPrefix(r.body["message"].(string), "Multipart upload is not supported for the current artifact repository") {
				t.Fatalf("message %q breaks the client's fallback", r.body["message"])
			}
		})
	}
	// Nothing escaped: the only object is the one put above.
	r := call(t, srv, "GET", "/api/2.0/mlflow-artifacts/artifacts", "")
	if r.raw != `{"files":[{"path":"0","is_dir":true}]}`+"\n" {
		t.Fatalf("root listing %s", r.raw)
	}
}

func TestArtifactDownloadRanges(t *testing.T) {
	srv := newTestServer(t)
	putArtifact(t, srv, "0/r/artifacts/digits.txt", "0123456789")
	const p = "/api/2.0/mlflow-artifacts/artifacts/0/r/artifacts/digits.txt"
	tests := []struct {
		rng          string
		status       int
		body, crange string
	}{
		{"", 200, "0123456789", ""},
		{"bytes=2-4", 206, "234", "bytes 2-4/10"},
		{"bytes=7-", 206, "789", "bytes 7-9/10"},
		{"bytes=-3", 206, "789", "bytes 7-9/10"},
		{"bytes=5-100", 206, "56789", "bytes 5-9/10"},
		{"bytes=0-0,5-6", 200, "0123456789", ""},
		{"bytes=10-", 416, "", "bytes */10"},
	}
	for _, tt := range tests {
		t.Run(tt.rng, func(t *testing.T) {
			var hdr []string
			if tt.rng != "" {
				hdr = []string{"Range", tt.rng}
			}
			resp, raw := do(t, srv, "GET", p, nil, hdr...)
			if resp.StatusCode != tt.status || resp.Header.Get("Content-Range") != tt.crange {
				t.Fatalf("status %d Content-Range %q, want %d %q", resp.StatusCode, resp.Header.Get("Content-Range"), tt.status, tt.crange)
			}
			if tt.status != 416 && (string(raw) != tt.body || resp.ContentLength != int64(len(tt.body))) {
				t.Fatalf("body %q (length %d), want %q", raw, resp.ContentLength, tt.body)
			}
		})
	}
	resp, raw := do(t, srv, "HEAD", p, nil)
	if resp.StatusCode != 200 || len(raw) != 0 || resp.ContentLength != 10 {
		t.Fatalf("HEAD: %d %d %q", resp.StatusCode, resp.ContentLength, raw)
	}
}

// TestArtifactStreaming uploads and downloads 128 MB through the proxy and
// checks that neither direction holds the file in memory.
func TestArtifactStreaming(t *testing.T) {
	if testing.Short() {
		t.Skip("large upload")
	}
	srv := newTestServer(t)
	const size = 128 << 20
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := int64(ms.HeapInuse)
	var peak int64
	var mu sync.Mutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			mu.Lock()
			peak = max(peak, int64(ms.HeapInuse)-base)
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	const p = "/api/2.0/mlflow-artifacts/artifacts/0/r/artifacts/model.bin"
	want := sha256.New()
	src := io.TeeReader(io.LimitReader(&counter{}, size), want)
	req, _ := http.NewRequest("PUT", srv.URL+p, src) // chunked: no length known up front
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("PUT: %d", resp.StatusCode)
	}
	resp, err = http.Get(srv.URL + p)
	if err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	n, err := io.Copy(got, resp.Body)
	resp.Body.Close()
	close(stop)
	wg.Wait()
	if err != nil || n != size || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatalf("download: %d bytes, %v, same content %v", n, err, bytes.Equal(got.Sum(nil), want.Sum(nil)))
	}
	if peak > 48<<20 {
		t.Fatalf("heap grew by %d MB moving a %d MB file: not streaming", peak>>20, size>>20)
	}
}

// counter yields an endless, position-dependent byte pattern.
type counter struct{ off int }

func (c *counter) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = byte(c.off*7 + c.off>>9)
		c.off++
	}
	return len(b), nil
}
