package api_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/kiln-ml/kiln/access"
	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/api/client"
	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/deploy"
	"github.com/kiln-ml/kiln/monitor/predlog"
	"github.com/kiln-ml/kiln/serving"
	"github.com/kiln-ml/kiln/store"
	"github.com/kiln-ml/kiln/tensor"
)

// subjectSettings logs every endpoint with the subject header X-Customer.
type subjectSettings struct{}

func (subjectSettings) Logging(string) (deploy.Logging, bool) {
	return (&deploy.Logging{SubjectHeader: "X-Customer"}).Effective(), true
}

func TestErasePredictionsAPI(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		dir := t.TempDir()
		b, err := blob.Open(ctx, "file://"+filepath.Join(dir, "bucket"), blob.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
		l, err := predlog.Open(ctx, predlog.Options{Dir: filepath.Join(dir, "segments"), Bucket: b, DB: db, Settings: subjectSettings{}, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		audit := access.NewAudit(db)
		mux := http.NewServeMux()
		api.New(api.Deps{Predictions: predlog.NewService(l), Access: &api.Access{Audit: audit}, Logger: quiet}).Register(mux)
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		c, err := client.New(srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}

		const subject = "customer-4711"
		t0 := time.Now().Add(-time.Minute)
		for i, who := range []string{subject, "customer-9", subject} {
			in := metadata.NewIncomingContext(ctx, metadata.Pairs("x-customer", who))
			x := &tensor.Tensor{Name: "x", DType: tensor.Float64, Shape: []int64{2}, Data: []float64{float64(i), 1}}
			l.Observe(in, &serving.Call{Model: &serving.Model{Name: "fraud", Version: "1", Source: "fraud/1"}, Protocol: "mlflow",
				ID: who, Inputs: []*tensor.Tensor{x}, Outputs: []*tensor.Tensor{x}, Status: 200, Start: t0.Add(time.Duration(i) * time.Second), Duration: time.Millisecond})
		}
		rep, err := c.ErasePredictions(ctx, "fraud", subject)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Endpoint != "fraud" || rep.RecordsDeleted != 2 || rep.RowsDeleted != 4 || rep.SegmentsScanned != 1 || rep.SegmentsRewritten != 1 ||
			rep.SubjectDigest != access.Digest([]byte(subject)) {
			t.Fatalf("report %+v", rep)
		}
		segs, err := c.PredictionSegments(ctx, "fraud", client.PredictionWindow{})
		if err != nil || len(segs) != 1 || segs[0].Requests != 1 || segs[0].Rows != 2 {
			t.Fatalf("segments after erasure: %+v %v", segs, err)
		}
		var jl strings.Builder
		if _, err := c.DownloadPredictions(ctx, "fraud", client.PredictionWindow{}, "jsonl", &jl); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(jl.String(), subject) || strings.Count(jl.String(), `"subject":"customer-9"`) != 2 {
			t.Fatalf("rows after erasure: %s", jl.String())
		}

		// The audit log has the result, with the digest and not the key.
		evs, err := audit.List(ctx, access.AuditQuery{})
		if err != nil {
			t.Fatal(err)
		}
		var found *access.Event
		for _, e := range evs {
			if e.Action == api.ErasureAuditAction {
				found = e
			}
		}
		if found == nil || found.Resource != "endpoint/fraud" || found.Status != 200 ||
			!strings.Contains(found.Detail, `"subject_digest":"`+access.Digest([]byte(subject))+`"`) ||
			!strings.Contains(found.Detail, `"records_deleted":2`) || !strings.Contains(found.Detail, `"segments_rewritten":1`) {
			t.Fatalf("audit events %+v", evs)
		}
		for _, e := range evs {
			if strings.Contains(e.Detail, subject) || strings.Contains(e.Path, subject) {
				t.Fatalf("the audit log holds the subject key: %+v", e)
			}
		}

		for _, tt := range []struct{ path, body, want string }{
			{"/api/v1/endpoints/fraud/predictions/erase", `{}`, "Missing 'subject'"},
			{"/api/v1/endpoints/fraud/predictions/erase", ``, "needs a JSON body"},
			{"/api/v1/endpoints/fraud/predictions/erase", `{"subject":"a","all":true}`, "unknown field"},
			{"/api/v1/endpoints/fraud/predictions/erase", `{"subject":"` + strings.Repeat("x", 5000) + `"}`, "longer than"},
			{"/api/v1/endpoints/Bad_Name/predictions/erase", `{"subject":"a"}`, "Invalid endpoint name"},
		} {
			resp, err := http.Post(srv.URL+tt.path, "application/json", strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 400 || !strings.Contains(string(body), tt.want) {
				t.Errorf("%s %s: %d %s", tt.path, eraseClip(tt.body), resp.StatusCode, body)
			}
		}
	})
}

func eraseClip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
