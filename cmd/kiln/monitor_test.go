package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/monitor"
	"github.com/kiln-ml/kiln/monitor/alert"
	"github.com/kiln-ml/kiln/store/storetest"
)

type cliReportService struct{ *monitor.Service }

func (s cliReportService) Report(ctx context.Context, name string, w io.Writer) error {
	_, err := io.WriteString(w, "<!doctype html><p>"+name+"</p>")
	return err
}

type cliNoWindows struct{}

func (cliNoWindows) Summarize(ctx context.Context, endpoint string, from, to time.Time) (*monitor.Window, error) {
	return &monitor.Window{}, nil
}

// monitorServer is an API server with the monitor service only.
func monitorServer(t *testing.T) string {
	t.Helper()
	db := storetest.TestDatabases(t)["sqlite"](t)
	eng := alert.NewEngine(alert.EngineOptions{DB: db})
	t.Cleanup(eng.Close)
	svc, err := monitor.NewService(monitor.ServiceOptions{DB: db, Index: cliNoWindows{}, Alerts: eng})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.New(api.Deps{Monitors: cliReportService{svc}}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

const cliMonitorDocs = `apiVersion: kiln.dev/v1
kind: AlertReceiver
metadata: {name: oncall}
spec: {type: webhook, url: "http://127.0.0.1:1/hook", secret: s3cr3t}
---
apiVersion: kiln.dev/v1
kind: Monitor
metadata: {name: churn-drift}
spec:
  endpoint: churn
  reference: {dataset: train@1}
  schedule: {every: 1h}
  alerts:
    - {name: drift, expr: "drift_share >= 0.5", for: 0s, receivers: [oncall]}
`

func TestMonitorCLI(t *testing.T) {
	url := monitorServer(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "m.yaml")
	os.WriteFile(file, []byte(cliMonitorDocs), 0o644)
	out, errOut, code := runGate(t, "apply", "-f", file, "--server", url, "--no-diff")
	if code != 0 || !strings.Contains(out, "alertreceiver/oncall created") || !strings.Contains(out, "monitor/churn-drift created") {
		t.Fatalf("apply: %d %s %s", code, out, errOut)
	}
	if out, _, _ = runGate(t, "apply", "-f", file, "--server", url); !strings.Contains(out, "monitor/churn-drift unchanged") || !strings.Contains(out, "alertreceiver/oncall unchanged") {
		t.Fatalf("apply again: %s", out)
	}
	// A field error is reported at its line.
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("kind: Monitor\nmetadata: {name: x}\nspec:\n  endpoint: e\n  drift: {drift_share: 5}\n"), 0o644)
	if _, errOut, code := runGate(t, "apply", "-f", bad, "--server", url); code == 0 || !strings.Contains(errOut, "bad.yaml:5:") || !strings.Contains(errOut, "spec.drift.drift_share") {
		t.Fatalf("bad document: %d %s", code, errOut)
	}

	if out, errOut, code = runGate(t, "monitor", "run", "churn-drift", "--server", url); code != 0 || !strings.Contains(out, "no_data") {
		t.Fatalf("run: %d %s %s", code, out, errOut)
	}
	if out, _, _ = runGate(t, "monitor", "status", "--server", url); !strings.Contains(out, "churn-drift") || !strings.Contains(out, "no_data") {
		t.Fatalf("status: %s", out)
	}
	out, _, _ = runGate(t, "monitor", "history", "churn-drift", "--server", url, "-o", "json")
	var rs []monitor.Result
	if err := json.Unmarshal([]byte(out), &rs); err != nil || len(rs) != 1 {
		t.Fatalf("history json: %v %s", err, out)
	}
	report := filepath.Join(dir, "r.html")
	if _, errOut, code = runGate(t, "monitor", "report", "churn-drift", "-o", report, "--server", url); code != 0 {
		t.Fatalf("report: %s", errOut)
	}
	if b, _ := os.ReadFile(report); !strings.Contains(string(b), "churn-drift") {
		t.Fatalf("report file: %q", b)
	}
	if out, _, _ = runGate(t, "get", "alertreceiver", "oncall", "-o", "yaml", "--server", url); strings.Contains(out, "s3cr3t") || !strings.Contains(out, "'***'") && !strings.Contains(out, `"***"`) {
		t.Fatalf("get receiver: %s", out)
	}
	if out, _, _ = runGate(t, "get", "monitors", "--server", url); !strings.Contains(out, "dataset train@1") {
		t.Fatalf("get monitors: %s", out)
	}
	if out, _, code = runGate(t, "alerts", "list", "--server", url); code != 0 || !strings.Contains(out, "MONITOR") {
		t.Fatalf("alerts list: %s", out)
	}
	if out, _, code = runGate(t, "delete", "-f", file, "--server", url); code != 0 || !strings.Contains(out, "monitor/churn-drift deleted") {
		t.Fatalf("delete: %s", out)
	}
}

func TestSparkline(t *testing.T) {
	if got := sparkline([]float64{0, 0.5, 1, 2, -1}); got != "▁▄██▁" {
		t.Fatalf("%q", got)
	}
}
