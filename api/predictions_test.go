package api_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/api/client"
	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/monitor/predlog"
	"github.com/kiln-ml/kiln/serving"
	"github.com/kiln-ml/kiln/store"
	"github.com/kiln-ml/kiln/tensor"
)

// newPredictionsEnv serves the API over a prediction log on db.
func newPredictionsEnv(t *testing.T, db *store.DB) (*predlog.Log, *client.Client, string) {
	t.Helper()
	dir := t.TempDir()
	b, err := blob.Open(context.Background(), "file://"+filepath.Join(dir, "bucket"), blob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	l, err := predlog.Open(context.Background(), predlog.Options{Dir: filepath.Join(dir, "segments"), Bucket: b, DB: db,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	mux := http.NewServeMux()
	api.New(api.Deps{Predictions: predlog.NewService(l), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	c, err := client.New(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	return l, c, srv.URL
}

func observe(l *predlog.Log, ep, id string, start time.Time, x ...float64) {
	in := &tensor.Tensor{Name: "x", DType: tensor.Float64, Shape: []int64{int64(len(x))}, Data: x}
	out := &tensor.Tensor{Name: "y", DType: tensor.Int64, Shape: []int64{int64(len(x))}, Data: make([]int64, len(x))}
	l.Observe(context.Background(), &serving.Call{Model: &serving.Model{Name: ep, Version: "1", Source: ep + "/1"},
		Protocol: "mlflow", ID: id, Inputs: []*tensor.Tensor{in}, Outputs: []*tensor.Tensor{out}, Status: 200,
		Start: start, Duration: time.Millisecond})
}

func TestPredictionsAPI(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		l, c, base := newPredictionsEnv(t, db)
		t0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
		observe(l, "fraud", "a", t0, 1, 2)
		observe(l, "fraud", "b", t0.Add(time.Minute), 3)
		observe(l, "other", "c", t0, 9)
		if err := c.FlushPredictions(ctx, "fraud"); err != nil {
			t.Fatal(err)
		}
		segs, err := c.PredictionSegments(ctx, "fraud", client.PredictionWindow{})
		if err != nil || len(segs) != 1 || segs[0].Requests != 2 || segs[0].Rows != 3 {
			t.Fatalf("segments: %+v %v", segs, err)
		}
		// "other" was not flushed.
		if segs, err := c.PredictionSegments(ctx, "other", client.PredictionWindow{}); err != nil || len(segs) != 0 {
			t.Fatalf("other's segments: %+v %v", segs, err)
		}

		var pq bytes.Buffer
		if _, err := c.DownloadPredictions(ctx, "fraud", client.PredictionWindow{}, "parquet", &pq); err != nil {
			t.Fatal(err)
		}
		r, err := table.OpenReaderAt(ctx, bytes.NewReader(pq.Bytes()), int64(pq.Len()), "p.parquet", table.Options{})
		if err != nil {
			t.Fatal(err)
		}
		bs, err := table.ReadAll(ctx, r)
		if err != nil || len(bs) != 1 || bs[0].Len != 3 {
			t.Fatalf("parquet: %v batches, %v", len(bs), err)
		}
		s := r.Schema()
		if x := s.Index("inputs.x"); x < 0 || bs[0].Columns[x].Floats[2] != 3 {
			t.Fatalf("inputs.x: schema %v", s.Names())
		}
		if id := s.Index(predlog.ColRequestID); bs[0].Columns[id].Str(0) != "a" || bs[0].Columns[id].Str(2) != "b" {
			t.Fatal("request ids")
		}

		// A window that holds only request b, as JSON Lines.
		var jl bytes.Buffer
		w := client.PredictionWindow{From: t0.Add(30 * time.Second), To: t0.Add(2 * time.Minute)}
		if _, err := c.DownloadPredictions(ctx, "fraud", w, "jsonl", &jl); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(jl.String()), "\n")
		if len(lines) != 1 || !strings.Contains(lines[0], `"request_id":"b"`) || !strings.Contains(lines[0], `"inputs.x":3`) {
			t.Fatalf("jsonl: %q", jl.String())
		}

		// An empty window: a valid Parquet file without rows.
		pq.Reset()
		if _, err := c.DownloadPredictions(ctx, "nothing", client.PredictionWindow{}, "", &pq); err != nil {
			t.Fatal(err)
		}
		if r, err := table.OpenReaderAt(ctx, bytes.NewReader(pq.Bytes()), int64(pq.Len()), "p.parquet", table.Options{}); err != nil || r.Schema().Index(predlog.ColTimestamp) != 0 {
			t.Fatalf("empty download: %v", err)
		}

		for _, tt := range []struct{ path, want string }{
			{"/api/v1/endpoints/fraud/predictions?format=csv", "Invalid format"},
			{"/api/v1/endpoints/fraud/predictions?from=yesterday", "Invalid 'from'"},
			{"/api/v1/endpoints/fraud/predictions?from=2000&to=1000", "Invalid window"},
			{"/api/v1/endpoints/Bad_Name/predictions/segments", "Invalid endpoint name"},
		} {
			resp, err := http.Get(base + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 400 || !strings.Contains(string(body), "INVALID_ARGUMENT") || !strings.Contains(string(body), tt.want) {
				t.Errorf("%s: %d %s", tt.path, resp.StatusCode, body)
			}
		}
	})
}

func TestPredictionsAPINotServed(t *testing.T) {
	mux := http.NewServeMux()
	api.New(api.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c, _ := client.New(srv.URL, nil)
	if err := c.FlushPredictions(context.Background(), "fraud"); !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Fatalf("flush without a log: %v", err)
	}
}
