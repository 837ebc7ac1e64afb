package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/store/storetest"
)

// buildKiln builds the kiln binary once per test binary.
var buildKiln = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "kiln-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "kiln")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

type proc struct {
	cmd *exec.Cmd
	url string
}

func startKiln(t *testing.T, args ...string) *proc {
	t.Helper()
	bin, err := buildKiln()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, append([]string{"server", "--addr", addr, "--grpc-addr", "", "--model-cache", filepath.Join(t.TempDir(), "model-cache")}, args...)...)
	var logBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logBuf, &logBuf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, url: "http://" + addr}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logBuf.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if r, err := http.Get(p.url + "/health"); err == nil {
			r.Body.Close()
			return p
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("kiln did not start:\n%s", logBuf.String())
	return nil
}

func post(url string, body any) (map[string]any, int, error) {
	b, _ := json.Marshal(body)
	r, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		return nil, 0, err
	}
	defer r.Body.Close()
	var out map[string]any
	json.NewDecoder(r.Body).Decode(&out)
	return out, r.StatusCode, nil
}

// TestSIGKILLLosesNothingAcknowledged logs metrics continuously from several
// writers, kills the server with SIGKILL mid-stream, restarts it on the same
// database and checks that every metric whose request was acknowledged is
// there.
func TestSIGKILLLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dbs := map[string]func(t *testing.T) string{
		"sqlite": func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "kiln.db") },
	}
	if pg := os.Getenv("KILN_TEST_POSTGRES"); pg != "" {
		dbs["postgres"] = func(t *testing.T) string { return storetest.NewPostgresURL(t, pg) }
	} else if os.Getenv("CI") == "true" {
		t.Fatal("KILN_TEST_POSTGRES is not set in CI")
	}
	for name, dbURL := range dbs {
		t.Run(name, func(t *testing.T) {
			db := dbURL(t)
			args := []string{"--db", db, "--artifacts", "file://" + t.TempDir()}
			k := startKiln(t, args...)
			run, code, err := post(k.url+"/api/2.0/mlflow/runs/create", map[string]any{"experiment_id": "0"})
			if err != nil || code != 200 {
				t.Fatalf("create run: %v %d %v", err, code, run)
			}
			runID := run["run"].(map[string]any)["info"].(map[string]any)["run_id"].(string)

			const writers = 4
			acked := make([][]int, writers)
			var wg sync.WaitGroup
			stop := make(chan struct{})
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						body := map[string]any{"run_id": runID, "metrics": []map[string]any{
							{"key": fmt.Sprintf("w%d", w), "value": float64(i), "timestamp": time.Now().UnixMilli(), "step": i},
							{"key": fmt.Sprintf("w%d_sq", w), "value": float64(i * i), "timestamp": time.Now().UnixMilli(), "step": i},
						}}
						_, code, err := post(k.url+"/api/2.0/mlflow/runs/log-batch", body)
						if err != nil {
							return // the server died under us: this one was not acknowledged
						}
						if code == 200 {
							acked[w] = append(acked[w], i)
						}
					}
				}(w)
			}
			time.Sleep(1500 * time.Millisecond)
			k.cmd.Process.Signal(syscall.SIGKILL)
			k.cmd.Wait()
			close(stop)
			wg.Wait()

			total := 0
			for _, a := range acked {
				total += len(a)
			}
			if total < 20 {
				t.Fatalf("only %d batches acknowledged before the kill; test is not meaningful", total)
			}
			k2 := startKiln(t, args...)
			for w := 0; w < writers; w++ {
				for _, key := range []string{fmt.Sprintf("w%d", w), fmt.Sprintf("w%d_sq", w)} {
					r, err := http.Get(fmt.Sprintf("%s/api/2.0/mlflow/metrics/get-history?run_id=%s&metric_key=%s", k2.url, runID, key))
					if err != nil {
						t.Fatal(err)
					}
					var hist struct {
						Metrics []struct {
							Step int `json:"step"`
						} `json:"metrics"`
					}
					json.NewDecoder(r.Body).Decode(&hist)
					r.Body.Close()
					have := map[int]bool{}
					for _, m := range hist.Metrics {
						have[m.Step] = true
					}
					for _, i := range acked[w] {
						if !have[i] {
							t.Fatalf("%s step %d was acknowledged but is missing after SIGKILL (%d acked, %d present)", key, i, len(acked[w]), len(have))
						}
					}
				}
			}
			t.Logf("%d acknowledged batches all present after SIGKILL", total)
		})
	}
}
