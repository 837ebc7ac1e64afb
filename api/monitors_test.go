package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/monitor"
	"github.com/kiln-ml/kiln/monitor/alert"
	"github.com/kiln-ml/kiln/store/storetest"
)

// reportingService is a monitor.Service whose report is a fixed page (the
// report package is tested on its own).
type reportingService struct{ *monitor.Service }

func (s reportingService) Report(ctx context.Context, name string, w io.Writer) error {
	if _, err := s.Get(ctx, name); err != nil {
		return err
	}
	_, err := io.WriteString(w, "<!doctype html><title>"+name+"</title>")
	return err
}

type emptyWindows struct{}

func (emptyWindows) Summarize(ctx context.Context, endpoint string, from, to time.Time) (*monitor.Window, error) {
	return &monitor.Window{}, nil
}

func newMonitorServer(t *testing.T) string {
	t.Helper()
	db := storetest.TestDatabases(t)["sqlite"](t)
	eng := alert.NewEngine(alert.EngineOptions{DB: db})
	t.Cleanup(eng.Close)
	svc, err := monitor.NewService(monitor.ServiceOptions{DB: db, Index: emptyWindows{}, Alerts: eng})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.New(api.Deps{Monitors: reportingService{svc}}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + api.Prefix
}

func monitorCall(t *testing.T, method, url, body string, out any) (int, api.ErrorBody) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var eb api.ErrorBody
	if resp.StatusCode/100 != 2 {
		json.Unmarshal(data, &eb)
	} else if out != nil {
		if s, ok := out.(*string); ok {
			*s = string(data)
		} else if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, url, err, data)
		}
	}
	return resp.StatusCode, eb
}

func TestMonitorsAPI(t *testing.T) {
	base := newMonitorServer(t)
	doc := `apiVersion: kiln.dev/v1
kind: Monitor
spec:
  endpoint: churn
  reference: {dataset: train@1}
  alerts:
    - {name: drift, expr: "drift_share >= 0.5", receivers: [oncall]}
`
	var applied api.ApplyMonitorResponse
	if code, eb := monitorCall(t, "PUT", base+"/monitors/churn-drift", doc, &applied); code != 201 || !applied.Created || applied.Monitor.Generation != 1 {
		t.Fatalf("create: %d %+v %+v", code, eb, applied)
	}
	if code, _ := monitorCall(t, "PUT", base+"/monitors/churn-drift", doc, &applied); code != 200 || applied.Changed {
		t.Fatalf("put again: %d %+v", code, applied)
	}
	code, eb := monitorCall(t, "PUT", base+"/monitors/bad", `{"spec": {"endpoint": "churn", "drift": {"drift_share": 3}}}`, nil)
	if code != 400 || eb.Error.Code != api.CodeInvalidArgument || len(eb.Error.Details) != 1 || eb.Error.Details[0].Path != "spec.drift.drift_share" {
		t.Fatalf("invalid document: %d %+v", code, eb)
	}
	if code, eb := monitorCall(t, "PUT", base+"/monitors/Bad_Name", doc, nil); code != 400 {
		t.Fatalf("bad name: %d %+v", code, eb)
	}

	var res monitor.Result
	if code, eb := monitorCall(t, "POST", base+"/monitors/churn-drift/run", "", &res); code != 200 || res.Status != monitor.StatusNoData {
		t.Fatalf("run: %d %+v %+v", code, eb, res)
	}
	var list api.MonitorList
	if code, _ := monitorCall(t, "GET", base+"/monitors?endpoint=churn", "", &list); code != 200 || len(list.Monitors) != 1 || list.Monitors[0].Latest == nil || list.Monitors[0].Latest.ID != res.ID {
		t.Fatalf("list: %+v", list)
	}
	var results api.MonitorResults
	if code, _ := monitorCall(t, "GET", base+"/monitors/churn-drift/results?limit=5&from=0", "", &results); code != 200 || len(results.Results) != 1 {
		t.Fatalf("results: %d %+v", code, results)
	}
	if code, eb := monitorCall(t, "GET", base+"/monitors/churn-drift/results?from=yesterday", "", nil); code != 400 {
		t.Fatalf("bad from: %d %+v", code, eb)
	}
	var html string
	if code, _ := monitorCall(t, "GET", base+"/monitors/churn-drift/report", "", &html); code != 200 || !strings.Contains(html, "churn-drift") {
		t.Fatalf("report: %d %q", code, html)
	}
	if code, _ := monitorCall(t, "GET", base+"/monitors/nope/report", "", nil); code != 404 {
		t.Fatalf("report of a missing monitor: %d", code)
	}

	// Receivers: the secret is never shown, and putting the masked document
	// back changes nothing.
	rdoc := `{"kind": "AlertReceiver", "spec": {"type": "webhook", "url": "http://127.0.0.1:1/hook", "secret": "s3cr3t"}}`
	var ar api.ApplyReceiverResponse
	if code, eb := monitorCall(t, "PUT", base+"/alert-receivers/oncall", rdoc, &ar); code != 201 || ar.Receiver.Spec.Secret != monitor.Masked {
		t.Fatalf("receiver: %d %+v %+v", code, eb, ar)
	}
	var got monitor.AlertReceiver
	monitorCall(t, "GET", base+"/alert-receivers/oncall", "", &got)
	back, _ := json.Marshal(got)
	if strings.Contains(string(back), "s3cr3t") {
		t.Fatal("GET shows the secret")
	}
	if code, _ := monitorCall(t, "PUT", base+"/alert-receivers/oncall", string(back), &ar); code != 200 || ar.Changed {
		t.Fatalf("masked document put back: %d %+v", code, ar)
	}
	if code, eb := monitorCall(t, "PUT", base+"/alert-receivers/other", `{"spec": {"type": "pager", "url": "http://x"}}`, nil); code != 400 || len(eb.Error.Details) == 0 {
		t.Fatalf("bad receiver: %d %+v", code, eb)
	}
	var rl api.ReceiverList
	if monitorCall(t, "GET", base+"/alert-receivers", "", &rl); len(rl.Receivers) != 1 {
		t.Fatalf("receivers: %+v", rl)
	}
	var al api.AlertList
	if code, _ := monitorCall(t, "GET", base+"/alerts?monitor=churn-drift", "", &al); code != 200 || len(al.Alerts) != 0 {
		t.Fatalf("alerts: %d %+v", code, al)
	}
	var hist api.AlertHistory
	if code, _ := monitorCall(t, "GET", base+"/alerts/history?limit=10", "", &hist); code != 200 {
		t.Fatalf("history: %d", code)
	}
	if code, _ := monitorCall(t, "DELETE", base+"/alert-receivers/oncall", "", nil); code != 200 {
		t.Fatal("delete receiver")
	}
	if code, _ := monitorCall(t, "DELETE", base+"/monitors/churn-drift", "", nil); code != 200 {
		t.Fatal("delete")
	}
	if code, _ := monitorCall(t, "GET", base+"/monitors/churn-drift", "", nil); code != 404 {
		t.Fatalf("deleted monitor: %d", code)
	}
}

func TestMonitorsNotImplemented(t *testing.T) {
	mux := http.NewServeMux()
	api.New(api.Deps{}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	if code, eb := monitorCall(t, "GET", srv.URL+api.Prefix+"/monitors", "", nil); code != 501 || eb.Error.Code != api.CodeNotImplemented {
		t.Fatalf("%d %+v", code, eb)
	}
}
