package tracking

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/store/storetest"
)

func forEachDB(t *testing.T, fn func(t *testing.T, s *Store)) {
	for name, open := range storetest.TestDatabases(t) {
		t.Run(name, func(t *testing.T) { fn(t, New(open(t), Options{})) })
	}
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func TestExperiments(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		id := must[string](t)(s.CreateExperiment(ctx, "fraud", "", []KV{{"team", "risk"}}))
		e := must[*Experiment](t)(s.GetExperiment(ctx, id))
		if e.Name != "fraud" || e.ArtifactLocation != "mlflow-artifacts:/"+id || !reflect.DeepEqual(e.Tags, []KV{{"team", "risk"}}) {
			t.Fatalf("got %+v", e)
		}
		if _, err := s.CreateExperiment(ctx, "fraud", "", nil); !errors.Is(err, errdefs.ErrAlreadyExists) {
			t.Fatalf("duplicate name: %v", err)
		}
		if _, err := s.CreateExperiment(ctx, "", "", nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("empty name: %v", err)
		}
		if _, err := s.GetExperiment(ctx, "424242"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("missing: %v", err)
		}
		if _, err := s.GetExperimentByName(ctx, "nope"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("missing by name: %v", err)
		}
		run := must[*Run](t)(s.CreateRun(ctx, CreateRunInput{ExperimentID: id}))
		if err := s.DeleteExperiment(ctx, id); err != nil {
			t.Fatal(err)
		}
		if r := must[*Run](t)(s.GetRun(ctx, run.Info.RunID)); r.Info.LifecycleStage != StageDeleted {
			t.Fatalf("deleting the experiment left its run %s", r.Info.LifecycleStage)
		}
		if _, err := s.CreateRun(ctx, CreateRunInput{ExperimentID: id}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("run in deleted experiment: %v", err)
		}
		// As MLflow: only an active experiment can be deleted, only a deleted one restored.
		if err := s.DeleteExperiment(ctx, id); !errors.Is(err, errdefs.ErrNotFound) || err.Error() != "No Experiment with id="+id+" exists" {
			t.Fatalf("deleting a deleted experiment: %v", err)
		}
		if err := s.RestoreExperiment(ctx, id); err != nil {
			t.Fatal(err)
		}
		if err := s.RestoreExperiment(ctx, id); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("restoring an active experiment: %v", err)
		}
		if err := s.DeleteExperiment(ctx, "424242"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("deleting a missing experiment: %v", err)
		}
		if r := must[*Run](t)(s.GetRun(ctx, run.Info.RunID)); r.Info.LifecycleStage != StageActive {
			t.Fatal("restore did not restore the run")
		}
		if err := s.RenameExperiment(ctx, id, "Default"); !errors.Is(err, errdefs.ErrAlreadyExists) {
			t.Fatalf("rename onto existing: %v", err)
		}
		for i := 0; i < 5; i++ {
			must[string](t)(s.CreateExperiment(ctx, fmt.Sprintf("page-%d", i), "", []KV{{"n", fmt.Sprint(i % 2)}}))
		}
		var names []string
		tok := ""
		for {
			page, next := searchExp(t, s, SearchExperimentsQuery{Filter: "name LIKE 'page-%' and tags.n = '0'", OrderBy: []string{"name DESC"}, MaxResults: 2, PageToken: tok})
			for _, e := range page {
				names = append(names, e.Name)
			}
			if tok = next; tok == "" {
				break
			}
		}
		if want := []string{"page-4", "page-2", "page-0"}; !reflect.DeepEqual(names, want) {
			t.Fatalf("search pages %v, want %v", names, want)
		}
	})
}

func searchExp(t *testing.T, s *Store, q SearchExperimentsQuery) ([]*Experiment, string) {
	t.Helper()
	out, next, err := s.SearchExperiments(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	return out, next
}

func TestLogBatchSemantics(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		run := must[*Run](t)(s.CreateRun(ctx, CreateRunInput{ExperimentID: "0", RunName: "r", Tags: []KV{{TagUser, "ana"}}}))
		id := run.Info.RunID
		if run.Info.UserID != "ana" || run.Info.ArtifactURI != "mlflow-artifacts:/0/"+id+"/artifacts" {
			t.Fatalf("run info %+v", run.Info)
		}
		err := s.LogBatch(ctx, id, []Metric{
			{Key: "loss", Value: 3, Timestamp: 10, Step: 0},
			{Key: "loss", Value: 1, Timestamp: 5, Step: 2}, // larger step wins over later timestamp
			{Key: "loss", Value: 2, Timestamp: 20, Step: 1},
			{Key: "nan", Value: math.NaN(), Timestamp: 1},
		}, []KV{{"lr", "0.1"}, {"lr", "0.1"}}, []KV{{"t", "a"}, {"t", "b"}})
		if err != nil {
			t.Fatal(err)
		}
		r := must[*Run](t)(s.GetRun(ctx, id))
		got := map[string]Metric{}
		for _, m := range r.Metrics {
			got[m.Key] = m
		}
		if got["loss"].Value != 1 || got["loss"].Step != 2 || !math.IsNaN(got["nan"].Value) {
			t.Fatalf("latest metrics %+v", r.Metrics)
		}
		if tv := tagValue(r.Tags, "t"); tv != "b" {
			t.Fatalf("tag last-wins: %q", tv)
		}
		hist, _, err := s.GetMetricHistory(ctx, id, "loss", "", 0)
		if err != nil || len(hist) != 3 || hist[0].Step != 0 || hist[2].Step != 2 {
			t.Fatalf("history %+v %v", hist, err)
		}

		bad := []struct {
			name    string
			metrics []Metric
			params  []KV
			tags    []KV
			want    string
		}{
			{"param change", nil, []KV{{"lr", "0.2"}}, nil, "Changing param values is not allowed"},
			{"duplicate params differ", nil, []KV{{"a", "1"}, {"a", "2"}}, nil, "Duplicate parameter keys"},
			{"too many metrics", make([]Metric, 1001), nil, nil, "at most 1000 metrics"},
			{"too many params", nil, make([]KV, 101), nil, "at most 100 params"},
			{"too many tags", nil, nil, make([]KV, 101), "at most 100 tags"},
			{"too many total", make([]Metric, 950), nil, make([]KV, 60), "at most 1000 total"},
			{"bad key", []Metric{{Key: "a/../b"}}, nil, nil, "must not resolve"},
			{"bad chars", []Metric{{Key: "a;b"}}, nil, nil, "may only contain"},
			{"long param", nil, []KV{{"p", strings.Repeat("x", 6001)}}, nil, "exceeded length limit of 6000"},
			{"long tag", nil, nil, []KV{{"t", strings.Repeat("x", 8001)}}, "exceeded length limit of 8000"},
		}
		for _, b := range bad {
			for i := range b.metrics {
				if b.metrics[i].Key == "" {
					b.metrics[i].Key = fmt.Sprintf("m%d", i)
				}
			}
			for i := range b.params {
				if b.params[i].Key == "" {
					b.params[i].Key = fmt.Sprintf("p%d", i)
				}
			}
			for i := range b.tags {
				if b.tags[i].Key == "" {
					b.tags[i].Key = fmt.Sprintf("t%d", i)
				}
			}
			err := s.LogBatch(ctx, id, b.metrics, b.params, b.tags)
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), b.want) {
				t.Errorf("%s: got %v, want invalid %q", b.name, err, b.want)
			}
		}
		// A rejected batch wrote nothing.
		r2 := must[*Run](t)(s.GetRun(ctx, id))
		if len(r2.Metrics) != 2 || len(r2.Params) != 1 {
			t.Fatalf("a rejected batch left data: %d metrics %d params", len(r2.Metrics), len(r2.Params))
		}
		if err := s.LogBatch(ctx, "0123456789abcdef0123456789abcdef", []Metric{{Key: "m"}}, nil, nil); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("unknown run: %v", err)
		}
		if err := s.DeleteRun(ctx, id); err != nil {
			t.Fatal(err)
		}
		if err := s.LogBatch(ctx, id, []Metric{{Key: "m"}}, nil, nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("deleted run: %v", err)
		}
	})
}

func TestSearchRuns(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		exp := must[string](t)(s.CreateExperiment(ctx, "search", "", nil))
		ids := make([]string, 10)
		for i := range ids {
			r := must[*Run](t)(s.CreateRun(ctx, CreateRunInput{ExperimentID: exp, RunName: fmt.Sprintf("run-%d", i), StartTime: int64(1000 + i)}))
			ids[i] = r.Info.RunID
			ms := []Metric{{Key: "acc", Value: float64(i) / 10, Timestamp: 1}}
			if i%3 == 0 {
				ms = append(ms, Metric{Key: "loss", Value: float64(10 - i), Timestamp: 1})
			}
			model := "XGBoost"
			if i%2 == 1 {
				model = "lightgbm"
			}
			if err := s.LogBatch(ctx, r.Info.RunID, ms, []KV{{"model", model}}, []KV{{"group", fmt.Sprint(i % 3)}}); err != nil {
				t.Fatal(err)
			}
		}
		must[*RunInfo](t)(s.UpdateRun(ctx, UpdateRunInput{RunID: ids[4], Status: "FAILED"}))
		pick := func(is ...int) []string {
			out := make([]string, len(is))
			for k, i := range is {
				out[k] = ids[i]
			}
			return out
		}
		tests := []struct {
			filter string
			order  []string
			want   []string
		}{
			{"", nil, pick(9, 8, 7, 6, 5, 4, 3, 2, 1, 0)}, // start_time DESC
			{"metrics.acc > 0.65", []string{"metrics.acc ASC"}, pick(7, 8, 9)},
			{"metrics.acc >= 0.5 and params.model = 'XGBoost'", []string{"metrics.acc DESC"}, pick(8, 6)},
			{"params.model LIKE 'XG%'", []string{"attributes.run_name ASC"}, pick(0, 2, 4, 6, 8)},
			{"params.model LIKE 'xg%'", nil, nil},
			{"params.model ILIKE 'xg%'", []string{"run_name"}, pick(0, 2, 4, 6, 8)},
			{"tags.group = '0' and metrics.loss < 5", nil, pick(9, 6)},
			{"attributes.status = 'FAILED'", nil, pick(4)},
			{"run_name = 'run-3'", nil, pick(3)},
			{"attributes.run_id IN ('" + ids[1] + "','" + ids[2] + "')", []string{"start_time ASC"}, pick(1, 2)},
			{"attributes.run_id NOT IN ('" + ids[0] + "') and metrics.loss >= 4", nil, pick(6, 3)},
			{"attributes.start_time >= 1008", nil, pick(9, 8)},
			{"tags.group != '1' and params.model != 'XGBoost'", []string{"metrics.acc DESC"}, pick(9, 5, 3)},
			// Ordering by a metric some runs lack puts them last.
			{"metrics.acc < 0.45", []string{"metrics.loss DESC", "run_name ASC"}, pick(0, 3, 1, 2, 4)},
			{"", []string{"params.model DESC", "metrics.acc DESC"}, pick(9, 7, 5, 3, 1, 8, 6, 4, 2, 0)},
		}
		for _, tt := range tests {
			runs, _, err := s.SearchRuns(ctx, SearchRunsQuery{ExperimentIDs: []string{exp}, Filter: tt.filter, OrderBy: tt.order})
			if err != nil {
				t.Errorf("%q: %v", tt.filter, err)
				continue
			}
			var got []string
			for _, r := range runs {
				got = append(got, r.Info.RunID)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("filter %q order %v:\n got  %v\n want %v", tt.filter, tt.order, names(runs), tt.want)
			}
		}
		// Pages stitch to the full ordered result.
		var paged []string
		tok := ""
		for {
			runs, next, err := s.SearchRuns(ctx, SearchRunsQuery{ExperimentIDs: []string{exp}, OrderBy: []string{"metrics.acc DESC"}, MaxResults: 3, PageToken: tok})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range runs {
				paged = append(paged, r.Info.RunID)
			}
			if tok = next; tok == "" {
				break
			}
		}
		if want := pick(9, 8, 7, 6, 5, 4, 3, 2, 1, 0); !reflect.DeepEqual(paged, want) {
			t.Fatalf("paged %v, want %v", paged, want)
		}
		for _, bad := range []string{"metrics.acc > 'x'", "attributes.nope = 'x'", "attributes.run_name IN ('a')", "a = 1 OR b = 2", "datasets.color = 'x'"} {
			if _, _, err := s.SearchRuns(ctx, SearchRunsQuery{ExperimentIDs: []string{exp}, Filter: bad}); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("filter %q: %v, want invalid", bad, err)
			}
		}
		if _, _, err := s.SearchRuns(ctx, SearchRunsQuery{ExperimentIDs: []string{exp}, MaxResults: 50001}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("max_results over limit: %v", err)
		}
		// Each returned run carries its params, tags and latest metrics.
		runs, _, _ := s.SearchRuns(ctx, SearchRunsQuery{ExperimentIDs: []string{exp}, Filter: "run_name = 'run-6'"})
		if len(runs) != 1 || len(runs[0].Metrics) != 2 || tagValue(runs[0].Params, "model") != "XGBoost" || tagValue(runs[0].Tags, "group") != "0" {
			t.Fatalf("run data not loaded: %+v", runs)
		}
	})
}

func names(runs []*Run) []string {
	var out []string
	for _, r := range runs {
		out = append(out, r.Info.RunName)
	}
	return out
}

func TestInputsAndLoggedModels(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		run := must[*Run](t)(s.CreateRun(ctx, CreateRunInput{ExperimentID: "0"}))
		id := run.Info.RunID
		ds := DatasetInput{Tags: []KV{{"mlflow.data.context", "train"}}, Dataset: Dataset{Name: "iris", Digest: "abc123", SourceType: "local", Source: "{}"}}
		for i := 0; i < 2; i++ { // logging the same dataset twice is idempotent
			if err := s.LogInputs(ctx, id, []DatasetInput{ds}, nil); err != nil {
				t.Fatal(err)
			}
		}
		m := must[*LoggedModel](t)(s.CreateLoggedModel(ctx, CreateLoggedModelInput{ExperimentID: "0", Name: "model", SourceRunID: id, Params: []KV{{"alpha", "1"}}}))
		if !modelIDs.MatchString(m.ID) || m.Status != ModelPending || m.ArtifactLocation != "mlflow-artifacts:/0/models/"+m.ID+"/artifacts" {
			t.Fatalf("logged model %+v", m)
		}
		if err := s.LogOutputs(ctx, id, []ModelOutput{{ModelID: m.ID, Step: 3}}); err != nil {
			t.Fatal(err)
		}
		if err := s.LogBatch(ctx, id, []Metric{{Key: "acc", Value: 0.9, Timestamp: 1, ModelID: m.ID}}, nil, nil); err != nil {
			t.Fatal(err)
		}
		r := must[*Run](t)(s.GetRun(ctx, id))
		if len(r.DatasetInputs) != 1 || r.DatasetInputs[0].Dataset.Name != "iris" || tagValue(r.DatasetInputs[0].Tags, "mlflow.data.context") != "train" {
			t.Fatalf("inputs %+v", r.DatasetInputs)
		}
		if !reflect.DeepEqual(r.ModelOutputs, []ModelOutput{{m.ID, 3}}) {
			t.Fatalf("outputs %+v", r.ModelOutputs)
		}
		found, _, err := s.SearchRuns(ctx, SearchRunsQuery{ExperimentIDs: []string{"0"}, Filter: "datasets.name = 'iris' and datasets.context = 'train'"})
		if err != nil || len(found) != 1 {
			t.Fatalf("dataset search: %v %d", err, len(found))
		}
		m = must[*LoggedModel](t)(s.FinalizeLoggedModel(ctx, m.ID, ModelReady))
		if m.Status != ModelReady || len(m.Metrics) != 1 || m.Metrics[0].Value != 0.9 || tagValue(m.Params, "alpha") != "1" {
			t.Fatalf("finalized model %+v", m)
		}
		if err := s.SetLoggedModelTag(ctx, m.ID, "mlflow.modelVersions", `[{"name":"x","version":"1"}]`); err != nil {
			t.Fatal(err)
		}
		loc, src, err := s.LoggedModelLocation(ctx, m.ID)
		if err != nil || loc != m.ArtifactLocation || src != id {
			t.Fatalf("location %q %q %v", loc, src, err)
		}
		models, _, err := s.SearchLoggedModels(ctx, SearchLoggedModelsQuery{ExperimentIDs: []string{"0"}, Filter: "name = 'model' and metrics.acc > 0.5 and status = 'READY'"})
		if err != nil || len(models) != 1 || models[0].ID != m.ID {
			t.Fatalf("search logged models: %v %v", models, err)
		}
		if err := s.DeleteLoggedModel(ctx, m.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetLoggedModel(ctx, m.ID); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("deleted model still visible: %v", err)
		}
	})
}

func TestBulkIntervalSampling(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		a := must[*Run](t)(s.CreateRun(ctx, CreateRunInput{ExperimentID: "0"})).Info.RunID
		b := must[*Run](t)(s.CreateRun(ctx, CreateRunInput{ExperimentID: "0"})).Info.RunID
		var ma, mb []Metric
		for i := 0; i < 1000; i++ {
			ma = append(ma, Metric{Key: "loss", Value: float64(i), Timestamp: int64(i), Step: int64(i)})
			if i%10 == 0 {
				mb = append(mb, Metric{Key: "loss", Value: float64(i), Timestamp: int64(i), Step: int64(i)})
			}
		}
		mb = append(mb, Metric{Key: "loss", Value: 1, Timestamp: 1, Step: 1001}, Metric{Key: "loss", Value: 1, Timestamp: 1, Step: -5})
		for _, l := range []struct {
			run string
			ms  []Metric
		}{{a, ma}, {b, mb}} {
			for k := 0; k < len(l.ms); k += 1000 {
				if err := s.LogBatch(ctx, l.run, l.ms[k:min(k+1000, len(l.ms))], nil, nil); err != nil {
					t.Fatal(err)
				}
			}
		}
		type point struct {
			run  string
			step int64
		}
		points := func(ms []Metric) []point {
			var out []point
			for _, m := range ms {
				out = append(out, point{m.RunID, m.Step})
			}
			return out
		}
		step := func(v int64) *int64 { return &v }

		// One run, a range: 800 steps sampled every 16th from the first, plus the last.
		got, err := s.GetMetricHistoryBulkInterval(ctx, []string{a}, "loss", step(100), step(899), 50)
		if err != nil {
			t.Fatal(err)
		}
		var want []point
		for st := int64(100); st <= 884; st += 16 {
			want = append(want, point{a, st})
		}
		want = append(want, point{a, 899})
		if !reflect.DeepEqual(points(got), want) {
			t.Fatalf("range sample:\n got %v\nwant %v", points(got), want)
		}

		// Two runs, no range (0 to the largest step): one set of steps sampled
		// over the union, plus each run's own first and last step; run order kept.
		got, err = s.GetMetricHistoryBulkInterval(ctx, []string{a, b}, "loss", nil, nil, 10)
		if err != nil {
			t.Fatal(err)
		}
		want = nil
		for _, r := range []string{a, b} {
			for st := int64(0); st <= 900; st += 100 {
				want = append(want, point{r, st})
			}
		}
		want = slices.Insert(want, 10, point{a, 999})
		want = append(want, point{b, 1001})
		if !reflect.DeepEqual(points(got), want) {
			t.Fatalf("union sample:\n got %v\nwant %v", points(got), want)
		}

		for _, tc := range []struct {
			name       string
			start, end *int64
			max        int
			msg        string
		}{
			{"start only", step(1), nil, 0, "If either start step or end step are specified, both must be specified."},
			{"reversed", step(5), step(1), 0, "end_step must be greater than start_step. Found start_step=5 and end_step=1."},
			{"too many", nil, nil, 2501, "max_results must be between 1 and 2500."},
			{"negative", nil, nil, -1, "max_results must be between 1 and 2500."},
		} {
			_, err := s.GetMetricHistoryBulkInterval(ctx, []string{a}, "loss", tc.start, tc.end, tc.max)
			if !errors.Is(err, errdefs.ErrInvalidArgument) || err.Error() != tc.msg {
				t.Errorf("%s: %v", tc.name, err)
			}
		}
	})
}

// TestRelogSamePoint: a point logged again (MLflow 3's log_model re-logs
// a run's metrics with model_id) stays one point in the history, before and
// after compaction, as in MLflow's store; a different value at the same
// step is a second point.
func TestRelogSamePoint(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		run := must[*Run](t)(s.CreateRun(ctx, CreateRunInput{ExperimentID: "0"}))
		log := func(ms ...Metric) {
			if err := s.LogBatch(ctx, run.Info.RunID, ms, nil, nil); err != nil {
				t.Fatal(err)
			}
		}
		log(Metric{Key: "acc", Value: 0.9, Timestamp: 10, Step: 0})
		log(Metric{Key: "acc", Value: 0.9, Timestamp: 10, Step: 0, ModelID: "m-1"})
		log(Metric{Key: "acc", Value: 0.8, Timestamp: 10, Step: 0})
		for _, compact := range []bool{false, true} {
			if compact {
				if _, err := s.CompactMetrics(ctx); err != nil {
					t.Fatal(err)
				}
			}
			hist, _, err := s.GetMetricHistory(ctx, run.Info.RunID, "acc", "", 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(hist) != 2 || hist[0].Value != 0.8 || hist[1].Value != 0.9 || hist[1].ModelID != "" {
				t.Errorf("compacted %v: history %+v, want 0.8 and the first-logged 0.9", compact, hist)
			}
		}
	})
}

func TestCompactMetricsKeepsHistory(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		run := must[*Run](t)(s.CreateRun(ctx, CreateRunInput{ExperimentID: "0"}))
		logSteps := func(from, to int) {
			var ms []Metric
			for i := from; i < to; i++ {
				ms = append(ms, Metric{Key: "loss", Value: float64(i), Timestamp: int64(i), Step: int64(i)}, Metric{Key: "acc", Value: 1, Timestamp: 1, Step: int64(i)})
			}
			if err := s.LogBatch(ctx, run.Info.RunID, ms, nil, nil); err != nil {
				t.Fatal(err)
			}
		}
		history := func() []int64 {
			hist, _, err := s.GetMetricHistory(ctx, run.Info.RunID, "loss", "", 0)
			if err != nil {
				t.Fatal(err)
			}
			var steps []int64
			for _, m := range hist {
				steps = append(steps, m.Step)
			}
			return steps
		}
		logSteps(0, 5)
		before := history()
		n, err := s.CompactMetrics(ctx)
		if err != nil || n != 10 {
			t.Fatalf("compacted %d, %v; want 10", n, err)
		}
		if after := history(); !reflect.DeepEqual(after, before) {
			t.Fatalf("history changed by compaction: %v -> %v", before, after)
		}
		logSteps(5, 8) // some compacted, some recent: one ordered history
		if got := history(); !reflect.DeepEqual(got, []int64{0, 1, 2, 3, 4, 5, 6, 7}) {
			t.Fatalf("mixed history %v", got)
		}
		if n, _ := s.CompactMetrics(ctx); n != 6 {
			t.Fatalf("second compaction moved %d, want 6", n)
		}
		if n, _ := s.CompactMetrics(ctx); n != 0 {
			t.Fatalf("idle compaction moved %d", n)
		}
		page, next, err := s.GetMetricHistory(ctx, run.Info.RunID, "loss", "", 3)
		if err != nil || len(page) != 3 || next == "" || page[2].Step != 2 {
			t.Fatalf("paged history %v %q %v", page, next, err)
		}
	})
}

func TestPackMetricsRoundTrip(t *testing.T) {
	in := []Metric{{Key: "loss", Value: 0.25, Timestamp: 1700000000000, Step: -3, ModelID: "m-1", DatasetName: "d", DatasetDigest: "x"},
		{Key: "a/b c", Value: math.Inf(-1), Timestamp: 0, Step: 1 << 40}}
	out, err := unpackMetrics(packMetrics(in), "r")
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		in[i].RunID = "r"
	}
	if !reflect.DeepEqual(out, in) {
		t.Fatalf("round trip:\n%+v\n%+v", in, out)
	}
}

func FuzzUnpackMetrics(f *testing.F) {
	f.Add(packMetrics([]Metric{{Key: "k", Value: 1, Step: 2}}))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := unpackMetrics(b, "r")
		if err != nil {
			return
		}
		again, err := unpackMetrics(packMetrics(ms), "r")
		if err != nil || len(again) != len(ms) {
			t.Fatalf("re-pack of %d metrics: %d, %v", len(ms), len(again), err)
		}
	})
}

func TestValidateKeyMatchesPathClean(t *testing.T) {
	for _, k := range []string{"a", "a/b", "a//b", "a/", "/a", "./a", "a/.", "a/./b", "a/../b", "..", ".", "..a", "a..b", "a/.b", "a b:c-d_e.f", "ключ", "a;b", "a\\b"} {
		err := validateKey("metric", k)
		// MLflow's path_not_unique: normpath must not change the name, nor be
		// ".", nor start with ".." or "/".
		want := keyRe.MatchString(k) && path.Clean(k) == k && !strings.HasPrefix(k, "/") && k != "." && !strings.HasPrefix(k, "..")
		if (err == nil) != want {
			t.Errorf("validateKey(%q) = %v, want ok=%v", k, err, want)
		}
	}
}

// TestCompactInterleavedRuns: batches of several runs arrive interleaved
// and are compacted together, over more than one transaction
// (compactChunk batches each); every run keeps exactly its own history, in
// step order, with one chunk per run and key per transaction.
func TestCompactInterleavedRuns(t *testing.T) {
	forEachDB(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		var runs []string
		for i := 0; i < 3; i++ {
			runs = append(runs, must[*Run](t)(s.CreateRun(ctx, CreateRunInput{ExperimentID: "0"})).Info.RunID)
		}
		steps := compactChunk/len(runs) + 40 // 3 × steps batches: two transactions
		for step := 0; step < steps; step++ {
			for r, run := range runs {
				ms := []Metric{{Key: "loss", Value: float64(r*10000 + step), Timestamp: 1, Step: int64(step)},
					{Key: "acc", Value: float64(r), Timestamp: 1, Step: int64(step)}}
				if err := s.LogBatch(ctx, run, ms, nil, nil); err != nil {
					t.Fatal(err)
				}
			}
		}
		n, err := s.CompactMetrics(ctx)
		if err != nil || n != int64(2*len(runs)*steps) {
			t.Fatalf("compacted %d, %v; want %d", n, err, 2*len(runs)*steps)
		}
		var recent, chunks int
		if err := s.db.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM metrics_recent`).Scan(&recent); err != nil {
			t.Fatal(err)
		}
		if err := s.db.R.QueryRowContext(ctx, `SELECT COUNT(*) FROM metric_chunks`).Scan(&chunks); err != nil {
			t.Fatal(err)
		}
		if recent != 0 || chunks != 2*2*len(runs) {
			t.Errorf("after compaction: %d recent rows, %d chunks; want 0 and %d (2 transactions × runs × keys)", recent, chunks, 2*2*len(runs))
		}
		for r, run := range runs {
			hist, _, err := s.GetMetricHistory(ctx, run, "loss", "", 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(hist) != steps {
				t.Fatalf("run %d: %d points, want %d", r, len(hist), steps)
			}
			for i, m := range hist {
				if m.Step != int64(i) || m.Value != float64(r*10000+i) || m.RunID != run {
					t.Fatalf("run %d point %d: %+v", r, i, m)
				}
			}
		}
	})
}
