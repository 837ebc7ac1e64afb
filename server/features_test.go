package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/api/client"
	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/feature"
	"github.com/kiln-ml/kiln/store/storetest"
)

// pushVersion adds a version of dataset name holding one CSV file.
func pushVersion(t *testing.T, c *client.Client, name, csv string) int64 {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rows.csv"), []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	src, _ := dataset.NewLocalSource(dir)
	m, _, err := dataset.Hash(ctx, src, dataset.HashOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dataset.Push(ctx, src, m, c.Remote(), dataset.TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	cv, err := c.CreateVersion(ctx, name, api.CreateVersionRequest{Manifest: m.Digest().String()})
	if err != nil {
		t.Fatal(err)
	}
	return cv.Version.Version
}

// TestFeatureStoreHTTP drives the feature store over HTTP: an entity and a
// view over a CSV dataset version, a full materialization, online lookups
// (latest values, TTL, unknown keys, defaults, GET), then a newer dataset
// version picked up by an incremental materialization.
func TestFeatureStoreHTTP(t *testing.T) {
	configs := map[string]func(t *testing.T) string{"sqlite": func(t *testing.T) string { return testConfig(t).Store.URL }}
	if pg := os.Getenv("KILN_TEST_POSTGRES"); pg != "" {
		configs["postgres"] = func(t *testing.T) string { return storetest.NewPostgresURL(t, pg) }
	} else {
		storetest.TestDatabases(t) // fails under CI=true without PostgreSQL
	}
	for name, dbURL := range configs {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Store.URL = dbURL(t)
			srv, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			hs := httptest.NewServer(srv.Handler())
			defer hs.Close()
			testFeatureFlow(t, hs.URL)
		})
	}
}

func testFeatureFlow(t *testing.T, base string) {
	ctx := context.Background()
	c, err := client.New(base, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	at := func(d time.Duration) string { return now.Add(-d).Format(time.RFC3339) }
	header := "customer_id,event_timestamp,orders_7d,spend_7d\n"
	v1 := header +
		fmt.Sprintf("1,%s,1,10.5\n", at(3*time.Hour)) +
		fmt.Sprintf("1,%s,2,20.5\n", at(time.Hour)) +
		fmt.Sprintf("2,%s,5,50\n", at(10*24*time.Hour))
	pushVersion(t, c, "customer-stats", v1)

	ent := &feature.Entity{Metadata: feature.Metadata{Name: "customer"}, Spec: feature.EntitySpec{JoinKeys: []string{"customer_id"}}}
	view := &feature.FeatureView{Metadata: feature.Metadata{Name: "customer_stats"}, Spec: feature.FeatureViewSpec{
		Entities: []string{"customer"}, Source: feature.Source{Dataset: "customer-stats@latest"}, TimestampField: "event_timestamp",
		TTL:      feature.Duration(48 * time.Hour),
		Features: []feature.Feature{{Name: "orders_7d", Type: feature.TypeInt64, Default: 0}, {Name: "spend_7d", Type: feature.TypeFloat64}},
	}}
	// A view before its entity, then with a column the source lacks.
	if _, err := c.ApplyFeatureView(ctx, view, "ann"); !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "entity \"customer\" does not exist") {
		t.Fatalf("view before entity: %v", err)
	}
	if out, err := c.ApplyEntity(ctx, ent, "ann"); err != nil || out.Version != 1 || !out.Changed {
		t.Fatalf("entity: %+v %v", out, err)
	}
	bad := *view
	bad.Spec.Features = []feature.Feature{{Name: "orders_30d", Type: feature.TypeInt64}}
	_, err = c.ApplyFeatureView(ctx, &bad, "ann")
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), `no column "orders_30d"`) {
		t.Fatalf("missing column: %v", err)
	}
	// A YAML body; the error's details name the field.
	req, _ := http.NewRequest("PUT", base+"/api/v1/feature-views/customer_stats", strings.NewReader(
		"kind: FeatureView\nspec:\n  entities: [customer]\n  source: {dataset: customer-stats}\n  timestamp_field: event_timestamp\n  features: [{name: spend_7d, type: int64}]\n"))
	req.Header.Set("Content-Type", "application/yaml")
	yresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var yeb api.ErrorBody
	json.NewDecoder(yresp.Body).Decode(&yeb)
	yresp.Body.Close()
	if yresp.StatusCode != 400 || len(yeb.Error.Details) != 1 || yeb.Error.Details[0].Path != "spec.features[0].type" ||
		!strings.Contains(yeb.Error.Details[0].Message, `column "spend_7d" of the source is float64`) {
		t.Fatalf("YAML view with a wrong type: %d %+v", yresp.StatusCode, yeb)
	}
	out, err := c.ApplyFeatureView(ctx, view, "ann")
	if err != nil || out.Version != 1 || !out.Changed || out.FeatureView.Status.CreatedBy != "ann" {
		t.Fatalf("view: %+v %v", out, err)
	}
	if again, err := c.ApplyFeatureView(ctx, view, "ann"); err != nil || again.Version != 1 || again.Changed {
		t.Fatalf("view again: %+v %v", again, err)
	}
	if err := c.DeleteEntity(ctx, "customer"); !errors.Is(err, errdefs.ErrInvalidState) {
		t.Fatalf("deleting a used entity: %v", err)
	}

	// Materialize up to 45 minutes ago.
	m, err := c.Materialize(ctx, "customer_stats", api.MaterializeRequest{End: at(45 * time.Minute)})
	if err != nil || m.State != feature.StateSucceeded || m.RowsRead != 3 || m.KeysWritten != 2 || m.Source != "customer-stats@1" || m.Store != "embedded" {
		t.Fatalf("materialize: %+v %v", m, err)
	}
	res, err := c.OnlineFeatures(ctx, []string{"customer_stats:orders_7d", "customer_stats:spend_7d"}, map[string][]any{"customer_id": {1, "2", 99.0}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := res.Metadata.FeatureNames, []string{"customer_id", "customer_stats:orders_7d", "customer_stats:spend_7d"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("names %v", got)
	}
	if got, want := fmt.Sprint(res.Results[1].Values, res.Results[1].Statuses), "[2 <nil> <nil>] [PRESENT OUTSIDE_MAX_AGE NOT_FOUND]"; got != want {
		t.Errorf("orders %s, want %s", got, want)
	}
	if got := res.Results[2].Values[0]; got != 20.5 {
		t.Errorf("spend of 1: %v", got)
	}
	if ev := res.Results[1].EventTimestamps[0]; ev.Format(time.RFC3339) != at(time.Hour) {
		t.Errorf("event time %v, want %s", ev, at(time.Hour))
	}
	res, err = c.OnlineFeatures(ctx, []string{"customer_stats:orders_7d"}, map[string][]any{"customer_id": {2, 99}}, true)
	if err != nil || fmt.Sprint(res.Results[1].Values, res.Results[1].Statuses) != "[0 0] [DEFAULT DEFAULT]" {
		t.Errorf("defaults: %+v %v", res, err)
	}
	// GET, as Feast's feature server is often called.
	resp, err := http.Get(base + "/api/v1/features/online?features=customer_stats:orders_7d,customer_stats:spend_7d&customer_id=1&customer_id=3")
	if err != nil {
		t.Fatal(err)
	}
	var got api.OnlineFeaturesResponse
	json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if resp.StatusCode != 200 || fmt.Sprint(got.Results[1].Values, got.Results[1].Statuses) != "[2 <nil>] [PRESENT NOT_FOUND]" {
		t.Errorf("GET: %d %+v", resp.StatusCode, got)
	}
	// Errors in the API's format.
	resp, err = http.Post(base+"/api/v1/features/online", "application/json", strings.NewReader(`{"features":["customer_stats:nope"],"entities":{"customer_id":[1]}}`))
	if err != nil {
		t.Fatal(err)
	}
	var eb api.ErrorBody
	json.NewDecoder(resp.Body).Decode(&eb)
	resp.Body.Close()
	if resp.StatusCode != 404 || eb.Error.Code == "" || !strings.Contains(eb.Error.Message, "no feature 'nope'") {
		t.Errorf("unknown feature: %d %+v", resp.StatusCode, eb)
	}

	// A newer dataset version; the incremental run starts 45 minutes ago.
	pushVersion(t, c, "customer-stats", v1+
		fmt.Sprintf("1,%s,3,30.5\n", at(30*time.Minute))+
		fmt.Sprintf("3,%s,7,70\n", at(20*time.Minute)))
	m, err = c.Materialize(ctx, "customer_stats", api.MaterializeRequest{Incremental: true})
	if err != nil || m.Start == nil || m.Start.Format(time.RFC3339) != at(45*time.Minute) || m.Source != "customer-stats@2" || m.KeysWritten != 2 {
		t.Fatalf("incremental: %+v %v", m, err)
	}
	res, err = c.OnlineFeatures(ctx, []string{"customer_stats:orders_7d"}, map[string][]any{"customer_id": {1, 3}}, false)
	if err != nil || fmt.Sprint(res.Results[1].Values, res.Results[1].Statuses) != "[3 7] [PRESENT PRESENT]" {
		t.Fatalf("after incremental: %+v %v", res, err)
	}
	ms, err := c.Materializations(ctx, "customer_stats", 0)
	if err != nil || len(ms) != 2 || ms[0].ID != m.ID {
		t.Fatalf("materializations: %+v %v", ms, err)
	}
	// Listing, versions, delete.
	vs, err := c.FeatureViews(ctx)
	if err != nil || len(vs) != 1 || vs[0].Spec.TTL.D() != 48*time.Hour {
		t.Fatalf("views: %+v %v", vs, err)
	}
	if err := c.DeleteFeatureView(ctx, "customer_stats"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.OnlineFeatures(ctx, []string{"customer_stats:orders_7d"}, map[string][]any{"customer_id": {1}}, false); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("lookup of a deleted view: %v", err)
	}
	hist, err := c.FeatureViewVersions(ctx, "customer_stats")
	if err != nil || len(hist) != 2 || !hist[0].Status.Deleted {
		t.Fatalf("versions: %+v %v", hist, err)
	}
	if err := c.DeleteEntity(ctx, "customer"); err != nil {
		t.Fatalf("deleting an unused entity: %v", err)
	}
}
