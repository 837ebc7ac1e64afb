package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/monitor/feedback"
	"github.com/kiln-ml/kiln/monitor/predlog"
	"github.com/kiln-ml/kiln/store/storetest"
)

// cliPredictions logs requests r0…r5 a minute apart from t0, one row each,
// predicting the value 10·i.
type cliPredictions struct{ t0 time.Time }

func (p cliPredictions) Scan(ctx context.Context, endpoint string, from, to time.Time, fn func(table.Schema, *table.Batch) error) error {
	s := table.Schema{Fields: []table.Field{
		{Name: predlog.ColTimestamp, Type: table.Timestamp, Unit: table.Millisecond},
		{Name: predlog.ColRequestID, Type: table.String},
		{Name: "outputs.predictions", Type: table.Float64},
	}}
	b := &table.Batch{Len: 6, Columns: []table.Column{{Type: table.Timestamp}, {Type: table.String}, {Type: table.Float64}}}
	for i := 0; i < 6; i++ {
		b.Columns[0].Ints = append(b.Columns[0].Ints, p.t0.Add(time.Duration(i)*time.Minute).UnixMilli())
		b.Columns[1].Strs.AppendString("r" + string(rune('0'+i)))
		b.Columns[2].Floats = append(b.Columns[2].Floats, float64(10*i))
	}
	return fn(s, b)
}

func runFeedbackCmd(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := newRootCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetIn(strings.NewReader(`{"request_id":"r5","label":52}` + "\n"))
	cmd.SetArgs(args)
	code := 0
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		var msg error
		code, msg = exitCode(err)
		if msg != nil {
			errOut.WriteString("kiln: " + msg.Error())
		}
	}
	return out.String(), errOut.String(), code
}

func TestFeedbackCommands(t *testing.T) {
	db := storetest.TestDatabases(t)["sqlite"](t)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Minute)
	svc := feedback.NewService(feedback.NewStore(db), cliPredictions{t0: t0})
	mux := http.NewServeMux()
	api.New(api.Deps{Feedback: svc, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	t.Setenv("KILN_URL", srv.URL)
	dir := t.TempDir()

	// Truth 10·i + 1 for r0…r4 (r5 comes from stdin): MAE 1 before r5.
	if out, errOut, code := runFeedbackCmd(t, "feedback", "send", "ep", "--request-id", "r0", "--label", "1"); code != 0 || !strings.Contains(out, "1 label accepted") {
		t.Fatalf("send one: %d %s %s", code, out, errOut)
	}
	csvPath := filepath.Join(dir, "labels.csv")
	os.WriteFile(csvPath, []byte("id,truth\nr1,11\nr2,21\n"), 0o644)
	if out, errOut, code := runFeedbackCmd(t, "feedback", "send", "ep", "-f", csvPath, "--id-column", "id", "--label-column", "truth", "-o", "json"); code != 0 || !strings.Contains(out, `"accepted": 2`) {
		t.Fatalf("send csv: %d %s %s", code, out, errOut)
	}
	var pq bytes.Buffer
	w, _ := table.NewParquetWriter(&pq, table.Schema{Fields: []table.Field{{Name: "request_id", Type: table.String}, {Name: "label", Type: table.Float64}}}, table.ParquetWriterOptions{})
	b := &table.Batch{Len: 2, Columns: []table.Column{{Type: table.String}, {Type: table.Float64, Floats: []float64{31, 41}}}}
	b.Columns[0].Strs.AppendString("r3")
	b.Columns[0].Strs.AppendString("r4")
	w.Write(b)
	w.Close()
	pqPath := filepath.Join(dir, "labels.parquet")
	os.WriteFile(pqPath, pq.Bytes(), 0o644)
	if out, errOut, code := runFeedbackCmd(t, "feedback", "send", "ep", "-f", pqPath); code != 0 || !strings.Contains(out, "2 labels accepted") {
		t.Fatalf("send parquet: %d %s %s", code, out, errOut)
	}
	if out, errOut, code := runFeedbackCmd(t, "feedback", "send", "ep", "-f", "-"); code != 0 || !strings.Contains(out, "1 label accepted") {
		t.Fatalf("send stdin: %d %s %s", code, out, errOut)
	}
	// A bad file: the server's error, naming the line.
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("request_id,label\nr9,\n"), 0o644)
	if _, errOut, code := runFeedbackCmd(t, "feedback", "send", "ep", "-f", bad); code == 0 || !strings.Contains(errOut, "line 2: empty label") {
		t.Fatalf("bad csv: %d %s", code, errOut)
	}
	if _, errOut, code := runFeedbackCmd(t, "feedback", "send", "ep", "--label", "1"); code == 0 || !strings.Contains(errOut, "--request-id") {
		t.Fatalf("no request id: %d %s", code, errOut)
	}

	out, errOut, code := runFeedbackCmd(t, "feedback", "get", "ep", "r3")
	if code != 0 || !strings.Contains(out, "ROW") || !strings.Contains(out, "31") || !strings.Contains(out, "parquet") {
		t.Fatalf("get: %d %s %s", code, out, errOut)
	}
	if _, errOut, code := runFeedbackCmd(t, "feedback", "get", "ep", "nope"); code == 0 || !strings.Contains(errOut, "No label") {
		t.Fatalf("get missing: %d %s", code, errOut)
	}

	// Every prediction is off by 1 except r5 (off by 2): MAE 7/6.
	out, errOut, code = runFeedbackCmd(t, "feedback", "performance", "ep", "--from", "2h", "--metrics", "mae,rmse", "-o", "json")
	if code != 0 {
		t.Fatalf("performance: %d %s", code, errOut)
	}
	var p feedback.Performance
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatal(err)
	}
	if p.Task != "regression" || p.Labelled != 6 || len(p.Windows) != 1 {
		t.Fatalf("performance: %s", out)
	}
	if mae := p.Windows[0].Metrics["mae"]; mae < 7.0/6-1e-12 || mae > 7.0/6+1e-12 {
		t.Fatalf("mae %v", mae)
	}
	out, _, code = runFeedbackCmd(t, "feedback", "performance", "ep", "--from", t0.Format(time.RFC3339), "--to", t0.Add(6*time.Minute).Format(time.RFC3339), "--window", "3m")
	if code != 0 || !strings.Contains(out, "MAE") || strings.Count(out, "all") != 2 || !strings.Contains(out, "1.0000") {
		t.Fatalf("performance table: %d\n%s", code, out)
	}
	if _, errOut, code := runFeedbackCmd(t, "feedback", "performance", "ep", "--from", "yesterday"); code == 0 || !strings.Contains(errOut, "invalid --from") {
		t.Fatalf("bad from: %d %s", code, errOut)
	}
}
