package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/monitor/feedback"
	"github.com/kiln-ml/kiln/monitor/predlog"
	"github.com/kiln-ml/kiln/store"
)

// memPredictions is a prediction log of one batch: request ids p0…p9
// (one row each) at t0 + i minutes, predicting label i%2, probability of
// class 1 0.1 + 0.08·i, routes a and b alternately.
type memPredictions struct {
	t0 time.Time
}

func (m memPredictions) Scan(ctx context.Context, endpoint string, from, to time.Time, fn func(table.Schema, *table.Batch) error) error {
	if endpoint != "churn" {
		return nil
	}
	s := table.Schema{Fields: []table.Field{
		{Name: predlog.ColTimestamp, Type: table.Timestamp, Unit: table.Millisecond},
		{Name: predlog.ColRequestID, Type: table.String},
		{Name: predlog.ColRow, Type: table.Int64},
		{Name: predlog.ColRoute, Type: table.String},
		{Name: "outputs.label", Type: table.Int64},
		{Name: "outputs.probabilities_0", Type: table.Float64},
		{Name: "outputs.probabilities_1", Type: table.Float64},
	}}
	b := &table.Batch{Columns: make([]table.Column, len(s.Fields))}
	for i, f := range s.Fields {
		b.Columns[i].Type = f.Type
	}
	for i := 0; i < 10; i++ {
		ts := m.t0.Add(time.Duration(i) * time.Minute)
		if ts.Before(from) || !ts.Before(to) {
			continue
		}
		b.Len++
		b.Columns[0].Ints = append(b.Columns[0].Ints, ts.UnixMilli())
		b.Columns[1].Strs.AppendString(fmt.Sprintf("p%d", i))
		b.Columns[2].Ints = append(b.Columns[2].Ints, 0)
		b.Columns[3].Strs.AppendString(map[bool]string{true: "a", false: "b"}[i%2 == 0])
		b.Columns[4].Ints = append(b.Columns[4].Ints, int64(i%2))
		p1 := 0.1 + 0.08*float64(i)
		b.Columns[5].Floats = append(b.Columns[5].Floats, 1-p1)
		b.Columns[6].Floats = append(b.Columns[6].Floats, p1)
	}
	return fn(s, b)
}

func parquetLabels(t *testing.T) []byte {
	t.Helper()
	s := table.Schema{Fields: []table.Field{{Name: "rid", Type: table.String}, {Name: "y", Type: table.Int64}}}
	b := &table.Batch{Len: 2, Columns: []table.Column{{Type: table.String}, {Type: table.Int64, Ints: []int64{1, 1}}}}
	b.Columns[0].Strs.AppendString("p8")
	b.Columns[0].Strs.AppendString("p9")
	var buf bytes.Buffer
	w, err := table.NewParquetWriter(&buf, s, table.ParquetWriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	w.Close()
	return buf.Bytes()
}

func TestFeedback(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		t0 := time.Now().Add(-time.Hour).Truncate(time.Minute)
		svc := feedback.NewService(feedback.NewStore(db), memPredictions{t0: t0})
		e := newEnv(t, db, func(d *api.Deps) { d.Feedback = svc })
		base := e.srv.URL + "/api/v1/endpoints/churn/feedback"
		post := func(ct, query, body string) (int, api.ErrorBody, []byte) {
			return rawRequest(t, "POST", base+query, ct, strings.NewReader(body))
		}
		// Labels: p0..p9 have the true labels 0 0 0 1 0 1 1 1 1 1, sent in
		// every format.
		for _, tc := range []struct {
			ct, query, body string
			n               int
		}{
			{"application/json", "", `{"request_id":"p0","label":0}`, 1},
			{"application/json", "", `[{"request_id":"p1","row":0,"label":0},{"request_id":"p2","label":1}]`, 2},
			{"application/json; charset=utf-8", "", `{"labels":[{"request_id":"p3","label":1}]}`, 1},
			{"text/csv", "?id_column=id&label_column=truth", "id,truth\np4,0\np5,1\n", 2},
			{"application/x-ndjson", "", "{\"request_id\":\"p6\",\"label\":1}\n{\"request_id\":\"p7\",\"label\":1}\n", 2},
			{"application/json", "", `{"request_id":"p2","label":0}`, 1}, // corrects p2
		} {
			code, eb, body := post(tc.ct, tc.query, tc.body)
			var r api.FeedbackResponse
			json.Unmarshal(body, &r)
			if code != 200 || r.Accepted != tc.n {
				t.Fatalf("%s %s: %d %+v %s", tc.ct, tc.body, code, eb, body)
			}
		}
		resp, err := e.c.SendFeedbackFile(ctx, "churn", "application/vnd.apache.parquet", bytes.NewReader(parquetLabels(t)),
			feedback.DecodeOptions{IDColumn: "rid", LabelColumn: "y"})
		if err != nil || resp.Accepted != 2 {
			t.Fatalf("parquet: %+v %v", resp, err)
		}
		// Bad input: 400 naming the place, and nothing stored.
		for _, tc := range []struct{ ct, body, msg string }{
			{"text/csv", "request_id,label\nq1,1\nq2,\n", "line 3: empty label"},
			{"application/x-ndjson", "{\"request_id\":\"q1\",\"label\":1}\n{\"label\":1}\n", `line 2: no "request_id" field`},
			{"application/json", `[{"request_id":"q1","label":1},{"request_id":"q2","row":-1,"label":1}]`, "label 2: request \"q2\": row -1 is negative"},
			{"application/json", `{"request_id":"q1","label":[1]}`, "want a string, a number or a bool"},
			{"application/json", `{"request_id":"q1"`, "invalid JSON"},
			{"text/plain", "x", "Unsupported Content-Type"},
			{"application/vnd.apache.parquet", "PAR1 no", "not a Parquet file"},
		} {
			code, eb, _ := post(tc.ct, "", tc.body)
			if code != 400 || eb.Error.Code != api.CodeInvalidArgument || !strings.Contains(eb.Error.Message, tc.msg) {
				t.Errorf("%s %q: %d %+v, want 400 with %q", tc.ct, tc.body, code, eb, tc.msg)
			}
		}
		// A body over the bound is a 413, whatever the decoder made of it.
		big := io.MultiReader(strings.NewReader("["), io.LimitReader(spaces{}, api.MaxFeedbackBytes+1))
		if code, eb, _ := rawRequest(t, "POST", base, "application/json", big); code != http.StatusRequestEntityTooLarge || eb.Error.Code != api.CodeTooLarge {
			t.Errorf("big body: %d %+v", code, eb)
		}
		if _, err := e.c.GetFeedback(ctx, "churn", "q1"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("q1 was stored: %v", err)
		}
		code, eb, _ := rawRequest(t, "POST", e.srv.URL+"/api/v1/endpoints/Not_A_Name/feedback", "application/json", strings.NewReader(`{"request_id":"a","label":1}`))
		if code != 400 || eb.Error.Code != api.CodeInvalidArgument {
			t.Fatalf("bad endpoint: %d %+v", code, eb)
		}

		got, err := e.c.GetFeedback(ctx, "churn", "p2")
		if err != nil || len(got.Labels) != 1 || got.Labels[0].Value != 0.0 || got.Labels[0].Source != "json" || got.RequestID != "p2" {
			t.Fatalf("get p2: %+v %v", got, err)
		}
		if _, err := e.c.SendFeedback(ctx, "churn", []feedback.Label{{RequestID: "p0", Value: 0}}); err != nil {
			t.Fatal(err)
		}

		// Performance: truth 0 0 0 1 0 1 1 1 1 1, predicted 0 1 0 1 0 1 0 1 0 1:
		// accuracy 0.7. The scores rise with i; negatives at 0,1,2,4, positives
		// at 3,5..9: one pair of 24 is inverted, so ROC AUC is 23/24.
		p, err := e.c.Performance(ctx, feedback.Query{Endpoint: "churn", From: t0, To: t0.Add(10 * time.Minute), Window: 5 * time.Minute,
			Metrics: []string{"accuracy", "roc_auc"}, SliceBy: []string{"route"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Windows) != 2 || p.Labelled != 10 || p.Predictions != 10 || p.Task != "classification" {
			t.Fatalf("performance: %+v", p)
		}
		whole, err := e.c.Performance(ctx, feedback.Query{Endpoint: "churn", From: t0, To: t0.Add(10 * time.Minute), Metrics: []string{"accuracy", "roc_auc"}})
		if err != nil {
			t.Fatal(err)
		}
		if m := whole.Windows[0].Metrics; m["accuracy"] != 0.7 || m["roc_auc"] != 23.0/24 {
			t.Fatalf("metrics %v", m)
		}
		// Route a has p0 p2 p4 p6 p8: truth 0 0 0 1 1, predicted 0 0 0 0 0.
		if v := p.Windows[0].Slices["route"]["a"]["accuracy"]; v != 1 {
			t.Fatalf("window 0 route a accuracy %v (%v)", v, p.Windows[0].Slices)
		}
		// The query parameters in their raw forms. Route b has p1 p3 p5 p7 p9:
		// truth 0 1 1 1 1, predicted 1 every time.
		u := fmt.Sprintf("%s/api/v1/endpoints/churn/performance?from=%d&to=%s&window=10m&metrics=accuracy,f1&route=b",
			e.srv.URL, t0.UnixMilli(), t0.Add(10*time.Minute).UTC().Format(time.RFC3339))
		code, eb, body := rawRequest(t, "GET", u, "", nil)
		var raw feedback.Performance
		json.Unmarshal(body, &raw)
		if code != 200 || len(raw.Windows) != 1 || raw.Labelled != 5 || raw.Windows[0].Metrics["accuracy"] != 0.8 {
			t.Fatalf("raw query: %d %+v %s", code, eb, body)
		}
		for q, msg := range map[string]string{
			"from=yesterday":       "Invalid from",
			"window=1x":            "Invalid window",
			"metrics=accuracy,bad": `Unknown metric "bad"`,
			"task=ranking":         "Unknown task",
			"from=2000&to=1000":    "range is empty",
		} {
			code, eb, _ := rawRequest(t, "GET", e.srv.URL+"/api/v1/endpoints/churn/performance?"+q, "", nil)
			if code != 400 || !strings.Contains(eb.Error.Message, msg) {
				t.Errorf("%s: %d %+v", q, code, eb)
			}
		}
	})
}

func TestFeedbackNotServed(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		code, eb, _ := rawRequest(t, "GET", e.srv.URL+"/api/v1/endpoints/churn/performance", "", nil)
		if code != http.StatusNotImplemented || eb.Error.Code != api.CodeNotImplemented {
			t.Fatalf("%d %+v", code, eb)
		}
	})
}

// spaces is an endless reader of blanks.
type spaces struct{}

func (spaces) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}
