package lineage_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/deploy"
	"github.com/kiln-ml/kiln/deploy/gate"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/lineage"
	"github.com/kiln-ml/kiln/model"
	"github.com/kiln-ml/kiln/monitor"
	"github.com/kiln-ml/kiln/registry"
	"github.com/kiln-ml/kiln/store/storetest"
	"github.com/kiln-ml/kiln/tracking"
)

const cardMLmodel = `artifact_path: model
flavors:
  python_function:
    loader_module: mlflow.sklearn
    python_version: 3.11.9
  sklearn:
    pickled_model: model.pkl
    sklearn_version: 1.5.0
signature:
  inputs: '[{"type": "double", "name": "amount", "required": true}, {"type": "string", "name": "region", "required": false}]'
  outputs: '[{"type": "long", "required": true}]'
`

type fakeGates struct{ results []*gate.Result }

func (f fakeGates) Results(context.Context, string, int64, string) ([]*gate.Result, error) {
	return f.results, nil
}

type fakeEndpoints struct{ states []*deploy.State }

func (f fakeEndpoints) List(context.Context) ([]*deploy.State, error) { return f.states, nil }

type fakeMonitors struct {
	byEndpoint map[string][]*monitor.StoredMonitor
	latest     map[string]*monitor.Result
}

func (f fakeMonitors) List(_ context.Context, ep string) ([]*monitor.StoredMonitor, error) {
	return f.byEndpoint[ep], nil
}
func (f fakeMonitors) Latest(_ context.Context, name string) (*monitor.Result, error) {
	return f.latest[name], nil
}

func ptr[T any](v T) *T { return &v }

// cardFixture is a run with params and metrics, its dataset version, a
// registered model version with an MLmodel file, a gate result and a
// monitored endpoint serving it.
type cardFixture struct {
	cards *lineage.Cards
	reg   *registry.Store
	runID string
}

func newCardFixture(t *testing.T, open func(testing.TB) (*tracking.Store, *registry.Store, *dataset.Store)) cardFixture {
	t.Helper()
	ctx := context.Background()
	trk, reg, ds := open(t)
	exp, err := trk.CreateExperiment(ctx, "churn-exp", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	run, err := trk.CreateRun(ctx, tracking.CreateRunInput{ExperimentID: exp, UserID: "alice", RunName: "train", StartTime: time.Now().UnixMilli()})
	if err != nil {
		t.Fatal(err)
	}
	id := run.Info.RunID
	now := time.Now().UnixMilli()
	if err := trk.LogBatch(ctx, id, []tracking.Metric{
		{Key: "accuracy", Value: 0.5, Timestamp: now, Step: 0},
		{Key: "accuracy", Value: 0.91, Timestamp: now + 1, Step: 1},
		{Key: "accuracy/slice/region:eu", Value: 0.88, Timestamp: now},
	}, []tracking.KV{{Key: "max_depth", Value: "4"}, {Key: "n_estimators", Value: "100"}},
		[]tracking.KV{{Key: "estimator_class", Value: "sklearn.ensemble.RandomForestClassifier"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := ds.CreateDataset(ctx, "train", "", nil); err != nil {
		t.Fatal(err)
	}
	content := "amount,region,y\n1,eu,0\n"
	m, err := dataset.NewManifest(dataset.KindFile, []dataset.Entry{{Path: "data.csv", Size: int64(len(content)), Digest: dataset.Sum([]byte(content))}})
	if err != nil {
		t.Fatal(err)
	}
	v, _, err := ds.CreateVersion(ctx, dataset.NewVersion{Dataset: "train", Manifest: m})
	if err != nil {
		t.Fatal(err)
	}
	if err := ds.LinkRun(ctx, dataset.RunLink{Version: v.Ref(), RunID: id, Context: "training"}); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.CreateRegisteredModel(ctx, "churn", "Predicts churn.", nil); err != nil {
		t.Fatal(err)
	}
	mv, err := reg.CreateModelVersion(ctx, registry.CreateModelVersionInput{Name: "churn", Source: "runs:/" + id + "/model", RunID: id, UserID: "bob",
		Tags: []registry.KV{{Key: "team", Value: "retention"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.SetAlias(ctx, "churn", "champion", mv.Version); err != nil {
		t.Fatal(err)
	}
	b, err := blob.Open(ctx, "file://"+t.TempDir(), blob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	u, err := model.ParseURI(mv.StorageLocation)
	if err != nil || u.Kind != model.URIArtifact {
		t.Fatalf("storage location %q: %v", mv.StorageLocation, err)
	}
	if _, err := b.Put(ctx, u.Path+"/MLmodel", strings.NewReader(cardMLmodel), ""); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	cards := &lineage.Cards{
		Registry: reg, Tracking: trk, Datasets: ds, Artifacts: b,
		Gates: fakeGates{[]*gate.Result{
			{Policy: "quality", Passed: false, Time: 1, Data: gate.DataInfo{Ref: "eval@1"}, Metrics: []gate.MetricValue{{Name: "roc_auc", Candidate: ptr(0.70)}}},
			{Policy: "quality", Passed: true, Time: 2, Data: gate.DataInfo{Ref: "eval@1"}, Metrics: []gate.MetricValue{{Name: "roc_auc", Candidate: ptr(0.83)}},
				Slices: []gate.SliceReport{{Column: "region", Slices: []gate.SliceValues{{Key: "us", Rows: 40, Values: map[string]*float64{"roc_auc": ptr(0.79)}}}}}},
		}},
		Endpoints: fakeEndpoints{[]*deploy.State{
			// The version has all the traffic since before the window.
			{Endpoint: deploy.Endpoint{Metadata: deploy.Metadata{Name: "churn-api"}}, Status: deploy.Status{UpdatedAt: start.Add(-time.Hour).UnixMilli(),
				Routes: []deploy.LiveRoute{{Name: "stable", Model: "churn", Version: mv.Version, Weight: 1}}}},
			// Another model.
			{Endpoint: deploy.Endpoint{Metadata: deploy.Metadata{Name: "other"}}, Status: deploy.Status{Routes: []deploy.LiveRoute{{Name: "stable", Model: "other", Version: 1, Weight: 1}}}},
			// A canary of the version, its monitor sliced by model_version.
			{Endpoint: deploy.Endpoint{Metadata: deploy.Metadata{Name: "canary-ep"}}, Status: deploy.Status{Routes: []deploy.LiveRoute{
				{Name: "stable", Model: "churn", Version: 7, Weight: 90}, {Name: "canary", Model: "churn", Version: mv.Version, Weight: 10}}}},
			// The version since the middle of the window.
			{Endpoint: deploy.Endpoint{Metadata: deploy.Metadata{Name: "stale-ep"}}, Status: deploy.Status{UpdatedAt: start.Add(30 * time.Minute).UnixMilli(),
				Routes: []deploy.LiveRoute{{Name: "stable", Model: "churn", Version: mv.Version, Weight: 1}}}},
			// The version kept loaded for a rollback only.
			{Endpoint: deploy.Endpoint{Metadata: deploy.Metadata{Name: "prev-ep"}}, Status: deploy.Status{Routes: []deploy.LiveRoute{
				{Name: "stable", Model: "churn", Version: 7, Weight: 1}, {Name: "previous", Model: "churn", Version: mv.Version, Weight: 0}}}},
		}},
		Monitors: fakeMonitors{
			byEndpoint: map[string][]*monitor.StoredMonitor{
				"churn-api": {{Monitor: &monitor.Monitor{Metadata: monitor.Metadata{Name: "churn-quality"}}}},
				"other":     {{Monitor: &monitor.Monitor{Metadata: monitor.Metadata{Name: "other-quality"}}}},
				"canary-ep": {{Monitor: &monitor.Monitor{Metadata: monitor.Metadata{Name: "canary-quality"}}}},
				"stale-ep":  {{Monitor: &monitor.Monitor{Metadata: monitor.Metadata{Name: "stale-quality"}}}},
				"prev-ep":   {{Monitor: &monitor.Monitor{Metadata: monitor.Metadata{Name: "prev-quality"}}}},
			},
			latest: map[string]*monitor.Result{
				"churn-quality": {WindowStart: start, WindowEnd: start.Add(time.Hour), Performance: &monitor.Performance{Labelled: 50,
					Metrics: map[string]float64{"f1": 0.8}, Slices: map[string]map[string]map[string]float64{"segment": {"smb": {"f1": 0.7}}}}},
				"other-quality": {Performance: &monitor.Performance{Metrics: map[string]float64{"f1": 0.1}}},
				"canary-quality": {WindowStart: start, WindowEnd: start.Add(time.Hour), Performance: &monitor.Performance{Metrics: map[string]float64{"f1": 0.2},
					Slices: map[string]map[string]map[string]float64{"model_version": {"1": {"f1": 0.75}, "7": {"f1": 0.1}}, "route": {"canary": {"f1": 0.75}}}}},
				"stale-quality": {WindowStart: start, WindowEnd: start.Add(time.Hour), Performance: &monitor.Performance{Metrics: map[string]float64{"f1": 0.3}}},
				"prev-quality":  {WindowStart: start, WindowEnd: start.Add(time.Hour), Performance: &monitor.Performance{Metrics: map[string]float64{"f1": 0.4}}},
			},
		},
		Now: func() time.Time { return start },
	}
	return cardFixture{cards: cards, reg: reg, runID: id}
}

func realStores(t *testing.T) map[string]func(testing.TB) (*tracking.Store, *registry.Store, *dataset.Store) {
	out := map[string]func(testing.TB) (*tracking.Store, *registry.Store, *dataset.Store){}
	for name, open := range storetest.TestDatabases(t) {
		out[name] = func(t testing.TB) (*tracking.Store, *registry.Store, *dataset.Store) {
			db := open(t)
			trk := tracking.New(db, tracking.Options{})
			return trk, registry.New(db, trk), dataset.NewStore(db)
		}
	}
	return out
}

func findMetric(c *lineage.ModelCard, typ, slice, source string) (lineage.PerformanceMetric, bool) {
	for _, m := range c.QuantitativeAnalysis.PerformanceMetrics {
		if m.Type == typ && m.Slice == slice && m.Source == source {
			return m, true
		}
	}
	return lineage.PerformanceMetric{}, false
}

func TestCardBuilder(t *testing.T) {
	for name, open := range realStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			f := newCardFixture(t, open)
			card, err := f.cards.Card(ctx, "churn", 1)
			if err != nil {
				t.Fatal(err)
			}
			d := card.ModelDetails
			if d.Name != "churn" || d.Version != 1 || d.Description != "Predicts churn." || d.RunID != f.runID || d.VersionDate == "" ||
				d.Stage != "None" || strings.Join(d.Aliases, ",") != "champion" || d.Tags["team"] != "retention" ||
				strings.Join(d.Endpoints, ",") != "canary-ep,churn-api,stale-ep" {
				t.Errorf("details: %+v", d)
			}
			if len(d.Owners) != 2 || d.Owners[0].Name != "bob" || d.Owners[1].Name != "alice" {
				t.Errorf("owners: %+v", d.Owners)
			}
			p := card.ModelParameters
			if p.ModelArchitecture != "sklearn.ensemble.RandomForestClassifier" || strings.Join(p.Flavors, ",") != "python_function,sklearn" {
				t.Errorf("architecture %q flavors %v", p.ModelArchitecture, p.Flavors)
			}
			if len(p.Params) != 2 || p.Params[0] != (lineage.Param{Name: "max_depth", Value: "4"}) {
				t.Errorf("params: %+v", p.Params)
			}
			if len(p.Input) != 2 || p.Input[0] != (lineage.SignatureField{Name: "amount", Type: "double"}) || p.Input[1].Type != "string (optional)" ||
				len(p.Output) != 1 || p.Output[0].Type != "long" {
				t.Errorf("signature: %+v → %+v", p.Input, p.Output)
			}
			if len(p.Data) != 1 || p.Data[0].Name != "train@1" || p.Data[0].Via != "run" || p.Data[0].Context != "training" || p.Data[0].RunID != f.runID {
				t.Errorf("data: %+v", p.Data)
			}
			want := []struct {
				typ, slice, source string
				value              float64
			}{
				{"accuracy", "", "run:" + f.runID, 0.91}, // the latest value
				{"accuracy", "region=eu", "run:" + f.runID, 0.88},
				{"roc_auc", "", "gate:quality", 0.83}, // the latest result only
				{"roc_auc", "region=us", "gate:quality", 0.79},
				{"f1", "", "monitor:churn-quality", 0.8},
				{"f1", "segment=smb", "monitor:churn-quality", 0.7},
				{"f1", "", "monitor:canary-quality", 0.75}, // its model_version slice, nothing else
			}
			for _, w := range want {
				m, ok := findMetric(card, w.typ, w.slice, w.source)
				if !ok || m.Value != w.value {
					t.Errorf("metric %s[%s] from %s: %+v (found %v)", w.typ, w.slice, w.source, m, ok)
				}
			}
			if n := len(card.QuantitativeAnalysis.PerformanceMetrics); n != len(want) {
				t.Errorf("%d metrics, want %d: %+v", n, len(want), card.QuantitativeAnalysis.PerformanceMetrics)
			}
			if m, _ := findMetric(card, "f1", "", "monitor:churn-quality"); m.Window != "2026-12-01T00:00:00Z/2026-12-01T01:00:00Z" || m.Dataset != "endpoint:churn-api" {
				t.Errorf("monitor metric: %+v", m)
			}
			if m, _ := findMetric(card, "f1", "", "monitor:canary-quality"); !strings.Contains(m.Note, "model_version=1") {
				t.Errorf("canary metric: %+v", m)
			}
			// The window that began before the version served is left out, and said so.
			if len(card.Notes) != 1 || !strings.Contains(card.Notes[0], "monitor stale-quality of endpoint stale-ep") {
				t.Errorf("notes: %v", card.Notes)
			}

			// Edit: set, then change one field and clear another.
			edit := lineage.CardEdit{Overview: ptr("Scores <b>accounts</b>."), License: ptr("Apache-2.0"),
				Considerations: &lineage.ConsiderationsEdit{Users: &[]string{"retention team", " "}, Limitations: &[]string{"EU and US only"}}}
			card, err = f.cards.EditCard(ctx, "churn", 1, edit, "carol")
			if err != nil {
				t.Fatal(err)
			}
			c := card.Considerations
			if card.ModelDetails.Overview != "Scores <b>accounts</b>." || len(card.ModelDetails.Licenses) != 1 || card.ModelDetails.Licenses[0].Identifier != "Apache-2.0" ||
				strings.Join(c.Users, "|") != "retention team" || strings.Join(c.Limitations, "|") != "EU and US only" ||
				card.ModelDetails.TextUpdatedBy != "carol" || card.ModelDetails.TextUpdatedAt != "2026-12-01T00:00:00Z" {
				t.Errorf("after edit: %+v %+v", card.ModelDetails, c)
			}
			if _, ok := card.ModelDetails.Tags["kiln.card.overview"]; ok {
				t.Errorf("card tags are listed with the version's tags: %v", card.ModelDetails.Tags)
			}
			card, err = f.cards.EditCard(ctx, "churn", 1, lineage.CardEdit{Considerations: &lineage.ConsiderationsEdit{
				Limitations: &[]string{}, Tradeoffs: &[]string{"recall over precision"}}}, "dave")
			if err != nil {
				t.Fatal(err)
			}
			c = card.Considerations
			if c.Limitations != nil || strings.Join(c.Tradeoffs, "|") != "recall over precision" || strings.Join(c.Users, "|") != "retention team" ||
				card.ModelDetails.Overview == "" || card.ModelDetails.TextUpdatedBy != "dave" {
				t.Errorf("second edit: %+v %+v", card.ModelDetails, c)
			}
			// The text is stored: a new builder reads it back.
			again, err := (&lineage.Cards{Registry: f.reg}).Card(ctx, "churn", 1)
			if err != nil || strings.Join(again.Considerations.Tradeoffs, "|") != "recall over precision" {
				t.Errorf("stored: %+v %v", again, err)
			}

			// Bad edits are refused before anything is written.
			bad := []lineage.CardEdit{
				{},
				{Overview: ptr(strings.Repeat("x", lineage.MaxCardText+1))},
				{Overview: ptr("ok"), Considerations: &lineage.ConsiderationsEdit{Users: &[]string{"a\x00b"}}},
				{Considerations: &lineage.ConsiderationsEdit{UseCases: &[]string{strings.Repeat("y", 3000), strings.Repeat("z", 3000)}}},
			}
			for i, e := range bad {
				if _, err := f.cards.EditCard(ctx, "churn", 1, e, "eve"); !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Errorf("bad edit %d: %v", i, err)
				}
			}
			if card, _ := f.cards.Card(ctx, "churn", 1); card.ModelDetails.TextUpdatedBy != "dave" || card.ModelDetails.Overview != "Scores <b>accounts</b>." {
				t.Errorf("a refused edit wrote: %+v", card.ModelDetails)
			}
			if _, err := f.cards.Card(ctx, "churn", 9); !errors.Is(err, errdefs.ErrNotFound) {
				t.Errorf("missing version: %v", err)
			}
			if _, err := f.cards.EditCard(ctx, "nope", 1, lineage.CardEdit{Overview: ptr("x")}, "eve"); !errors.Is(err, errdefs.ErrNotFound) {
				t.Errorf("edit of a missing version: %v", err)
			}
			// The JSON form has the Model Card Toolkit's section names.
			data, _ := json.Marshal(card)
			for _, k := range []string{`"model_details"`, `"model_parameters"`, `"quantitative_analysis"`, `"performance_metrics"`, `"considerations"`, `"version_date"`} {
				if !strings.Contains(string(data), k) {
					t.Errorf("JSON has no %s: %s", k, data)
				}
			}
		})
	}
}

// A version registered from a file outside the artifact store still has a
// card; what could not be read is said in a note.
func TestCardWithoutArtifacts(t *testing.T) {
	ctx := context.Background()
	trk, reg, _ := realStores(t)["sqlite"](t)
	if _, err := reg.CreateRegisteredModel(ctx, "m", "", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.CreateModelVersion(ctx, registry.CreateModelVersionInput{Name: "m", Source: "s3://bucket/models/m"}); err != nil {
		t.Fatal(err)
	}
	b, err := blob.Open(ctx, "file://"+t.TempDir(), blob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	card, err := (&lineage.Cards{Registry: reg, Tracking: trk, Artifacts: b}).Card(ctx, "m", 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(card.Notes) != 1 || !strings.Contains(card.Notes[0], "not in Kiln's artifact store") || card.QuantitativeAnalysis.PerformanceMetrics == nil {
		t.Errorf("card: %+v", card)
	}
	if _, err := (&lineage.Cards{}).Card(ctx, "m", 1); !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Errorf("no registry: %v", err)
	}
}

// An MLflow 3 version: its logged model's metrics, params and type are
// the model's own; a run metric of the same key is not repeated.
func TestCardLoggedModel(t *testing.T) {
	for name, open := range realStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			trk, reg, _ := open(t)
			exp, err := trk.CreateExperiment(ctx, "lm", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			run, err := trk.CreateRun(ctx, tracking.CreateRunInput{ExperimentID: exp, StartTime: 1})
			if err != nil {
				t.Fatal(err)
			}
			id := run.Info.RunID
			lm, err := trk.CreateLoggedModel(ctx, tracking.CreateLoggedModelInput{ExperimentID: exp, Name: "model", ModelType: "xgboost.XGBClassifier",
				SourceRunID: id, Params: []tracking.KV{{Key: "eta", Value: "0.3"}}})
			if err != nil {
				t.Fatal(err)
			}
			if err := trk.LogBatch(ctx, id, []tracking.Metric{
				{Key: "auc", Value: 0.7, Timestamp: 1, Step: 0, ModelID: lm.ID},
				{Key: "auc", Value: 0.8, Timestamp: 2, Step: 1, ModelID: lm.ID},
				{Key: "auc/slice/plan:pro", Value: 0.6, Timestamp: 2, Step: 1, ModelID: lm.ID},
				{Key: "loss", Value: 0.4, Timestamp: 2},
			}, nil, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := reg.CreateRegisteredModel(ctx, "x", "", nil); err != nil {
				t.Fatal(err)
			}
			if _, err := reg.CreateModelVersion(ctx, registry.CreateModelVersionInput{Name: "x", Source: "models:/" + lm.ID, ModelID: lm.ID}); err != nil {
				t.Fatal(err)
			}
			card, err := (&lineage.Cards{Registry: reg, Tracking: trk}).Card(ctx, "x", 1)
			if err != nil {
				t.Fatal(err)
			}
			if card.ModelDetails.RunID != id || card.ModelDetails.ModelID != lm.ID || card.ModelParameters.ModelArchitecture != "xgboost.XGBClassifier" ||
				len(card.ModelParameters.Params) != 1 || card.ModelParameters.Params[0].Name != "eta" {
				t.Errorf("card: %+v %+v", card.ModelDetails, card.ModelParameters)
			}
			got := map[string]float64{}
			for _, m := range card.QuantitativeAnalysis.PerformanceMetrics {
				got[m.Source+" "+m.Type+"["+m.Slice+"]"] = m.Value
			}
			want := map[string]float64{"logged-model:" + lm.ID + " auc[]": 0.8, "logged-model:" + lm.ID + " auc[plan=pro]": 0.6, "run:" + id + " loss[]": 0.4}
			if len(got) != len(want) {
				t.Errorf("metrics %v, want %v", got, want)
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("metric %s = %v, want %v (all: %v)", k, got[k], v, got)
				}
			}
		})
	}
}
