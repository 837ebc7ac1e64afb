package registry_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"testing"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/registry"
	"github.com/kiln-ml/kiln/store/storetest"
	"github.com/kiln-ml/kiln/tracking"
)

type env struct {
	reg *registry.Store
	trk *tracking.Store
}

func forEachDB(t *testing.T, fn func(t *testing.T, e env)) {
	for name, open := range storetest.TestDatabases(t) {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if p := recover(); p != nil {
					f, isFailure := p.(failure)
					if !isFailure {
						panic(p)
					}
					t.Fatal(f.err)
				}
			}()
			db := open(t)
			trk := tracking.New(db, tracking.Options{})
			fn(t, env{registry.New(db, trk), trk})
		})
	}
}

// ok returns v, or fails the test (through forEachDB's recover) on err.
func ok[T any](v T, err error) T {
	if err != nil {
		panic(failure{err})
	}
	return v
}

type failure struct{ err error }

func TestModelsVersionsAliases(t *testing.T) {
	forEachDB(t, func(t *testing.T, e env) {
		ctx := context.Background()
		r := e.reg
		ok(r.CreateRegisteredModel(ctx, "churn", "first", []registry.KV{{"team", "risk"}}))
		if _, err := r.CreateRegisteredModel(ctx, "churn", "", nil); !errors.Is(err, errdefs.ErrAlreadyExists) {
			t.Fatalf("duplicate: %v", err)
		}
		run := ok(e.trk.CreateRun(ctx, tracking.CreateRunInput{ExperimentID: "0"}))
		lm := ok(e.trk.CreateLoggedModel(ctx, tracking.CreateLoggedModelInput{ExperimentID: "0", SourceRunID: run.Info.RunID}))

		v1 := ok(r.CreateModelVersion(ctx, registry.CreateModelVersionInput{Name: "churn", Source: "models:/" + lm.ID, ModelID: lm.ID}))
		if v1.Version != 1 || v1.StorageLocation != lm.ArtifactLocation || v1.RunID != run.Info.RunID || v1.Status != "READY" {
			t.Fatalf("v1 %+v", v1)
		}
		got := ok(e.trk.GetLoggedModel(ctx, lm.ID))
		if tag := tagOf(got.Tags, "mlflow.modelVersions"); tag != `[{"name":"churn","version":"1"}]` {
			t.Fatalf("logged model registrations tag %q", tag)
		}
		v2 := ok(r.CreateModelVersion(ctx, registry.CreateModelVersionInput{Name: "churn", Source: "runs:/" + run.Info.RunID + "/model"}))
		if v2.Version != 2 || v2.StorageLocation != run.Info.ArtifactURI+"/model" {
			t.Fatalf("v2 %+v", v2)
		}
		for _, bad := range []string{"s3://b/../x", "file:///x%00y"} {
			if _, err := r.CreateModelVersion(ctx, registry.CreateModelVersionInput{Name: "churn", Source: bad}); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("source %q: %v", bad, err)
			}
		}
		if _, err := r.CreateModelVersion(ctx, registry.CreateModelVersionInput{Name: "nope", Source: "s3://x"}); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("version of missing model: %v", err)
		}

		if err := r.SetAlias(ctx, "churn", "champion", 1); err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"latest", "LATEST", "v3", "has space", ""} {
			if err := r.SetAlias(ctx, "churn", bad, 1); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("alias %q: %v", bad, err)
			}
		}
		if err := r.SetAlias(ctx, "churn", "x", 9); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("alias to missing version: %v", err)
		}
		if v := ok(r.GetVersionByAlias(ctx, "churn", "champion")); v.Version != 1 || !reflect.DeepEqual(v.Aliases, []string{"champion"}) {
			t.Fatalf("by alias %+v", v)
		}

		// Stages.
		ok(r.TransitionStage(ctx, "churn", 1, "production", false))
		ok(r.TransitionStage(ctx, "churn", 2, "Production", true))
		if v := ok(r.GetModelVersion(ctx, "churn", 1)); v.CurrentStage != "Archived" {
			t.Fatalf("archive_existing: v1 is %s", v.CurrentStage)
		}
		latest := ok(r.GetLatestVersions(ctx, "churn", []string{"Production"}))
		if len(latest) != 1 || latest[0].Version != 2 {
			t.Fatalf("latest production %+v", latest)
		}
		if _, err := r.TransitionStage(ctx, "churn", 2, "Prod", false); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("bad stage: %v", err)
		}

		// Rename carries versions, tags and aliases.
		ok(r.RenameRegisteredModel(ctx, "churn", "churn-v2"))
		m := ok(r.GetRegisteredModel(ctx, "churn-v2"))
		if len(m.Tags) != 1 || len(m.Aliases) != 1 || m.Aliases[0].Version != 1 || len(m.LatestVersions) != 2 {
			t.Fatalf("renamed model %+v", m)
		}
		if _, err := r.GetRegisteredModel(ctx, "churn"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("old name still resolves: %v", err)
		}
		// Deleting a version drops its aliases; numbers are not reused.
		if err := r.DeleteModelVersion(ctx, "churn-v2", 1); err != nil {
			t.Fatal(err)
		}
		if _, err := r.GetVersionByAlias(ctx, "churn-v2", "champion"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("alias of deleted version: %v", err)
		}
		v3 := ok(r.CreateModelVersion(ctx, registry.CreateModelVersionInput{Name: "churn-v2", Source: "s3://b/m"}))
		if v3.Version != 3 {
			t.Fatalf("version after delete = %d, want 3", v3.Version)
		}
		if err := r.DeleteRegisteredModel(ctx, "churn-v2"); err != nil {
			t.Fatal(err)
		}
		if _, err := r.GetModelVersion(ctx, "churn-v2", 3); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("version of deleted model: %v", err)
		}
	})
}

func tagOf(tags []tracking.KV, k string) string {
	for _, t := range tags {
		if t.Key == k {
			return t.Value
		}
	}
	return ""
}

func TestConcurrentVersionNumbers(t *testing.T) {
	forEachDB(t, func(t *testing.T, e env) {
		ctx := context.Background()
		ok(e.reg.CreateRegisteredModel(ctx, "m", "", nil))
		const n = 20
		var wg sync.WaitGroup
		versions := make([]int64, n)
		errs := make([]error, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				v, err := e.reg.CreateModelVersion(ctx, registry.CreateModelVersionInput{Name: "m", Source: fmt.Sprintf("s3://b/%d", i)})
				if err != nil {
					errs[i] = err
					return
				}
				versions[i] = v.Version
			}(i)
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		sort.Slice(versions, func(i, j int) bool { return versions[i] < versions[j] })
		for i, v := range versions {
			if v != int64(i+1) {
				t.Fatalf("versions %v, want 1..%d without gaps or duplicates", versions, n)
			}
		}
	})
}

func TestSearch(t *testing.T) {
	forEachDB(t, func(t *testing.T, e env) {
		ctx := context.Background()
		for i, n := range []string{"alpha", "beta", "Gamma", "delta"} {
			ok(e.reg.CreateRegisteredModel(ctx, n, "", []registry.KV{{"tier", fmt.Sprint(i % 2)}}))
			for j := 0; j <= i; j++ {
				ok(e.reg.CreateModelVersion(ctx, registry.CreateModelVersionInput{Name: n, Source: fmt.Sprintf("s3://b/%s/%d", n, j), RunID: fmt.Sprintf("run%d", j)}))
			}
		}
		models := func(q registry.SearchQuery) []string {
			t.Helper()
			ms, _, err := e.reg.SearchRegisteredModels(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, m := range ms {
				out = append(out, m.Name)
			}
			return out
		}
		tests := []struct {
			q    registry.SearchQuery
			want []string
		}{
			{registry.SearchQuery{}, []string{"Gamma", "alpha", "beta", "delta"}},
			{registry.SearchQuery{Filter: "name LIKE '%a'"}, []string{"Gamma", "alpha", "beta", "delta"}},
			{registry.SearchQuery{Filter: "name LIKE 'g%'"}, nil},
			{registry.SearchQuery{Filter: "name ILIKE 'g%'"}, []string{"Gamma"}},
			{registry.SearchQuery{Filter: "tags.tier = '1'", OrderBy: []string{"name DESC"}}, []string{"delta", "beta"}},
			{registry.SearchQuery{Filter: "tags.tier != '1' and tags.`mlflow.prompt.is_prompt` != 'true'"}, []string{"Gamma", "alpha"}},
		}
		for _, tt := range tests {
			if got := models(tt.q); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%+v: got %v, want %v", tt.q, got, tt.want)
			}
		}
		first, next, err := e.reg.SearchRegisteredModels(ctx, registry.SearchQuery{MaxResults: 3})
		if err != nil || len(first) != 3 || next == "" {
			t.Fatalf("page 1: %d %q %v", len(first), next, err)
		}
		rest, next2, _ := e.reg.SearchRegisteredModels(ctx, registry.SearchQuery{MaxResults: 3, PageToken: next})
		if len(rest) != 1 || rest[0].Name != "delta" || next2 != "" {
			t.Fatalf("page 2: %+v %q", rest, next2)
		}
		vs, _, err := e.reg.SearchModelVersions(ctx, registry.SearchQuery{Filter: "name = 'delta' and version_number >= 3", OrderBy: []string{"version_number ASC"}})
		if err != nil || len(vs) != 2 || vs[0].Version != 3 || vs[1].Version != 4 {
			t.Fatalf("version search: %+v %v", vs, err)
		}
		vs, _, err = e.reg.SearchModelVersions(ctx, registry.SearchQuery{Filter: "run_id IN ('run2', 'run3')"})
		if err != nil || len(vs) != 3 { // Gamma v3, delta v3 and v4
			t.Fatalf("run_id IN: %d %v", len(vs), err)
		}
		if _, _, err := e.reg.SearchRegisteredModels(ctx, registry.SearchQuery{Filter: "description = 'x'"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("bad attribute: %v", err)
		}
	})
}
