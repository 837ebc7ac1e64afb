package main

import (
	"context"
	"encoding/json"
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
	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/deploy"
	"github.com/kiln-ml/kiln/monitor/predlog"
	"github.com/kiln-ml/kiln/serving"
	"github.com/kiln-ml/kiln/store/storetest"
)

type cliSubjectSettings struct{}

func (cliSubjectSettings) Logging(string) (deploy.Logging, bool) {
	return (&deploy.Logging{SubjectHeader: "X-Customer"}).Effective(), true
}

func TestPredictionsEraseCommand(t *testing.T) {
	ctx := context.Background()
	db := storetest.TestDatabases(t)["sqlite"](t)
	dir := t.TempDir()
	b, err := blob.Open(ctx, "file://"+filepath.Join(dir, "bucket"), blob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	l, err := predlog.Open(ctx, predlog.Options{Dir: filepath.Join(dir, "segments"), Bucket: b, DB: db, Settings: cliSubjectSettings{}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	mux := http.NewServeMux()
	api.New(api.Deps{Predictions: predlog.NewService(l), Logger: quiet}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	t.Setenv("KILN_URL", srv.URL)

	for i, who := range []string{"cust-1", "cust-2", "cust-1"} {
		l.Observe(metadata.NewIncomingContext(ctx, metadata.Pairs("x-customer", who)), &serving.Call{
			Model: &serving.Model{Name: "churn", Version: "1"}, ID: string(rune('a' + i)), Status: 200, Start: time.Now(), Duration: time.Millisecond})
	}
	out, errOut, code := runFeedbackCmd(t, "predictions", "erase", "churn", "--subject", "cust-1")
	flat := strings.Join(strings.Fields(out), " ")
	if code != 0 || !strings.Contains(flat, "records deleted: 2 rows deleted: 2") || !strings.Contains(flat, "segments rewritten: 1") ||
		!strings.Contains(out, access.Digest([]byte("cust-1"))) {
		t.Fatalf("erase: %d %q %s", code, out, errOut)
	}
	// Again, as JSON: nothing left of cust-1; the other subject is kept.
	out, errOut, code = runFeedbackCmd(t, "predictions", "erase", "churn", "--subject", "cust-1", "-o", "json")
	var rep api.ErasePredictionsResponse
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.RecordsDeleted != 0 || rep.SegmentsScanned != 1 {
		t.Fatalf("erase again: %d %q %s", code, out, errOut)
	}
	segs, err := l.Index().Segments(ctx, "churn", time.Time{}, time.Time{})
	if err != nil || len(segs) != 1 || segs[0].Requests != 1 {
		t.Fatalf("segments: %+v %v", segs, err)
	}
	// The key from stdin (runFeedbackCmd's stdin is a JSON line: its
	// subject matches nothing), as YAML.
	if out, errOut, code := runFeedbackCmd(t, "predictions", "erase", "churn", "--subject", "-", "-o", "yaml"); code != 0 || !strings.Contains(out, "records_deleted: 0") {
		t.Fatalf("erase from stdin: %d %q %s", code, out, errOut)
	}
	for _, args := range [][]string{
		{"predictions", "erase", "churn"},
		{"predictions", "erase", "churn", "--subject", "x", "-o", "xml"},
		{"predictions", "erase", "Bad_Name", "--subject", "x"},
	} {
		if _, errOut, code := runFeedbackCmd(t, args...); code == 0 || errOut == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut)
		}
	}
}

// spec.logging.retention in a manifest, as kiln apply reads it: days
// accepted, a negative value refused at its line.
func TestManifestLoggingRetention(t *testing.T) {
	const doc = "kind: Endpoint\nmetadata: {name: churn}\nspec:\n  model: churn\n  routes: [{version: \"1\", weight: 100}]\n  logging:\n    retention: %s\n"
	docs, err := parseManifests("e.yaml", []byte(strings.Replace(doc, "%s", "30d", 1)))
	if err != nil || len(docs) != 1 || docs[0].Endpoint.Spec.Logging.Retention.D() != 30*24*time.Hour {
		t.Fatalf("30d: %v %+v", err, docs)
	}
	if !strings.Contains(string(docs[0].JSON), `"retention":"720h0m0s"`) {
		t.Fatalf("sent as %s", docs[0].JSON)
	}
	for in, want := range map[string]string{
		"-1d":     "e.yaml:7:16: spec.logging.retention: must not be negative", // at the value
		"30 days": "invalid duration",
	} {
		_, err := parseManifests("e.yaml", []byte(strings.Replace(doc, "%s", in, 1)))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("retention %q: %v, want an error with %q", in, err, want)
		}
	}
}
