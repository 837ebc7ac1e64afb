package registry_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/registry"
	"github.com/kiln-ml/kiln/store/storetest"
)

// fakeSource stands in for tracking.Store.
type fakeSource struct {
	mu     sync.Mutex
	models map[string][2]string // model id → artifact location, source run
	runs   map[string]string    // run id → artifact URI
	tags   map[string]map[string]string
}

func newFakeSource() *fakeSource {
	return &fakeSource{
		models: map[string][2]string{
			"m-0123456789abcdef0123456789abcdef": {"s3://bucket/0/models/m-0123456789abcdef0123456789abcdef/artifacts", "run1"},
			"m-local":                            {"file:///srv/art/0/models/m-local/artifacts", "run1"},
		},
		runs: map[string]string{"run1": "s3://bucket/0/run1/artifacts/", "run2": "mlflow-artifacts:/0/run2/artifacts", "runlocal": "file:///srv/art/0/runlocal/artifacts"},
		tags: map[string]map[string]string{},
	}
}

func (f *fakeSource) LoggedModelLocation(_ context.Context, id string) (string, string, error) {
	m, ok := f.models[id]
	if !ok {
		return "", "", errdefs.NotFound("Logged model with ID '%s' not found.", id)
	}
	return m[0], m[1], nil
}

func (f *fakeSource) RunArtifactURI(_ context.Context, id string) (string, error) {
	u, ok := f.runs[id]
	if !ok {
		return "", errdefs.NotFound("Run with id=%s not found", id)
	}
	return u, nil
}

func (f *fakeSource) SetLoggedModelTag(_ context.Context, id, key, value string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tags[id] == nil {
		f.tags[id] = map[string]string{}
	}
	f.tags[id][key] = value
	return nil
}

func (f *fakeSource) tag(id, key string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tags[id][key]
}

type env struct {
	reg *registry.Store
	src *fakeSource
}

func forEachDB(t *testing.T, fn func(t *testing.T, e env)) {
	for name, open := range storetest.TestDatabases(t) {
		t.Run(name, func(t *testing.T) {
			src := newFakeSource()
			fn(t, env{registry.New(open(t), src), src})
		})
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

// wantErr checks err's kind and that its message contains msg.
func wantErr(t *testing.T, err, kind error, msg string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("got error %v, want kind %v", err, kind)
	}
	if !strings.Contains(err.Error(), msg) {
		t.Fatalf("error %q does not contain %q", err, msg)
	}
}

var ctx = context.Background()

func newVersion(t *testing.T, r *registry.Store, name, source string) *registry.ModelVersion {
	t.Helper()
	v, err := r.CreateModelVersion(ctx, registry.CreateModelVersionInput{Name: name, Source: source})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestRegisteredModels(t *testing.T) {
	forEachDB(t, func(t *testing.T, e env) {
		r := e.reg
		m := must[*registry.RegisteredModel](t)(r.CreateRegisteredModel(ctx, "churn", "first", []registry.KV{{"team", "risk"}}))
		if m.Name != "churn" || m.Description != "first" || m.CreationTime == 0 || m.LastUpdatedTime != m.CreationTime ||
			!reflect.DeepEqual(m.Tags, []registry.KV{{"team", "risk"}}) {
			t.Fatalf("created %+v", m)
		}
		_, err := r.CreateRegisteredModel(ctx, "churn", "", nil)
		wantErr(t, err, errdefs.ErrAlreadyExists, "Registered Model (name=churn) already exists.")
		_, err = r.CreateRegisteredModel(ctx, "", "", nil)
		wantErr(t, err, errdefs.ErrInvalidArgument, "Missing value for required parameter 'name'.")
		_, err = r.CreateRegisteredModel(ctx, "x", "", []registry.KV{{"../k", "v"}})
		wantErr(t, err, errdefs.ErrInvalidArgument, `Invalid value "../k" for parameter 'key' supplied`)
		_, err = r.CreateRegisteredModel(ctx, "x", "", []registry.KV{{"k", strings.Repeat("v", 5001)}})
		wantErr(t, err, errdefs.ErrInvalidArgument, "'value' exceeds the maximum length of 5000 characters")
		if _, err := r.GetRegisteredModel(ctx, "x"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("rejected model was created: %v", err)
		}

		m = must[*registry.RegisteredModel](t)(r.UpdateRegisteredModel(ctx, "churn", "second"))
		if m.Description != "second" || m.LastUpdatedTime < m.CreationTime {
			t.Fatalf("updated %+v", m)
		}
		_, err = r.UpdateRegisteredModel(ctx, "nope", "d")
		wantErr(t, err, errdefs.ErrNotFound, "Registered Model with name=nope not found")

		if err := r.SetRegisteredModelTag(ctx, "churn", "team", "ml"); err != nil {
			t.Fatal(err)
		}
		if err := r.SetRegisteredModelTag(ctx, "churn", "owner", "ana"); err != nil {
			t.Fatal(err)
		}
		wantErr(t, r.SetRegisteredModelTag(ctx, "nope", "k", "v"), errdefs.ErrNotFound, "name=nope not found")
		if err := r.DeleteRegisteredModelTag(ctx, "churn", "owner"); err != nil {
			t.Fatal(err)
		}
		if err := r.DeleteRegisteredModelTag(ctx, "churn", "never-set"); err != nil {
			t.Fatalf("deleting an absent tag: %v", err)
		}
		m = must[*registry.RegisteredModel](t)(r.GetRegisteredModel(ctx, "churn"))
		if !reflect.DeepEqual(m.Tags, []registry.KV{{"team", "ml"}}) {
			t.Fatalf("tags %+v", m.Tags)
		}

		// Rename carries versions (and their tags), model tags and aliases.
		newVersion(t, r, "churn", "s3://b/1")
		newVersion(t, r, "churn", "s3://b/2")
		must[*registry.ModelVersion](t)(r.TransitionStage(ctx, "churn", 2, "Staging", false))
		if err := r.SetModelVersionTag(ctx, "churn", 1, "k", "v"); err != nil {
			t.Fatal(err)
		}
		if err := r.SetAlias(ctx, "churn", "champion", 1); err != nil {
			t.Fatal(err)
		}
		must[*registry.RegisteredModel](t)(r.CreateRegisteredModel(ctx, "other", "", nil))
		_, err = r.RenameRegisteredModel(ctx, "churn", "other")
		wantErr(t, err, errdefs.ErrAlreadyExists, "Registered Model (name=other) already exists.")
		_, err = r.RenameRegisteredModel(ctx, "churn", "")
		wantErr(t, err, errdefs.ErrInvalidArgument, "Missing value for required parameter 'new_name'.")
		_, err = r.RenameRegisteredModel(ctx, "nope", "x")
		wantErr(t, err, errdefs.ErrNotFound, "name=nope not found")

		m = must[*registry.RegisteredModel](t)(r.RenameRegisteredModel(ctx, "churn", "churn-v2"))
		if m.Name != "churn-v2" || !reflect.DeepEqual(m.Tags, []registry.KV{{"team", "ml"}}) ||
			!reflect.DeepEqual(m.Aliases, []registry.Alias{{"champion", 1}}) || len(m.LatestVersions) != 2 {
			t.Fatalf("renamed %+v", m)
		}
		for _, v := range m.LatestVersions {
			if v.Name != "churn-v2" {
				t.Fatalf("latest version keeps old name: %+v", v)
			}
		}
		v1 := must[*registry.ModelVersion](t)(r.GetModelVersion(ctx, "churn-v2", 1))
		if !reflect.DeepEqual(v1.Tags, []registry.KV{{"k", "v"}}) || !reflect.DeepEqual(v1.Aliases, []string{"champion"}) {
			t.Fatalf("version after rename %+v", v1)
		}
		if _, err := r.GetRegisteredModel(ctx, "churn"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("old name still resolves: %v", err)
		}
		if _, err := r.GetModelVersion(ctx, "churn", 1); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("old name's version still resolves: %v", err)
		}
		// The old name is free again, with no versions.
		must[*registry.RegisteredModel](t)(r.CreateRegisteredModel(ctx, "churn", "", nil))
		if v := newVersion(t, r, "churn", "s3://b/new"); v.Version != 1 {
			t.Fatalf("first version of reused name = %d", v.Version)
		}

		// Delete removes versions, tags and aliases.
		if err := r.DeleteRegisteredModel(ctx, "churn-v2"); err != nil {
			t.Fatal(err)
		}
		wantErr(t, r.DeleteRegisteredModel(ctx, "churn-v2"), errdefs.ErrNotFound, "name=churn-v2 not found")
		if _, err := r.GetModelVersion(ctx, "churn-v2", 1); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("version of deleted model: %v", err)
		}
		must[*registry.RegisteredModel](t)(r.CreateRegisteredModel(ctx, "churn-v2", "", nil))
		m = must[*registry.RegisteredModel](t)(r.GetRegisteredModel(ctx, "churn-v2"))
		if len(m.Tags) != 0 || len(m.Aliases) != 0 || len(m.LatestVersions) != 0 {
			t.Fatalf("recreated model inherits %+v", m)
		}
	})
}

func TestAliases(t *testing.T) {
	forEachDB(t, func(t *testing.T, e env) {
		r := e.reg
		must[*registry.RegisteredModel](t)(r.CreateRegisteredModel(ctx, "m", "", nil))
		newVersion(t, r, "m", "s3://b/1")
		newVersion(t, r, "m", "s3://b/2")
		bad := []struct{ alias, msg string }{
			{"", "Registered model alias name cannot be empty."},
			{"has space", "Invalid alias name: 'has space'. Names may only contain alphanumerics, underscores (_), and dashes (-)."},
			{"a.b", "Invalid alias name: 'a.b'."},
			{strings.Repeat("a", 256), "'Registered model alias name' exceeds the maximum length of 255 characters"},
			{"latest", "'latest' alias name (case insensitive) is reserved."},
			{"LaTeSt", "'latest' alias name (case insensitive) is reserved."},
			{"v3", "Version alias name 'v3' is reserved."},
			{"V12", "Version alias name 'V12' is reserved."},
		}
		for _, tt := range bad {
			wantErr(t, r.SetAlias(ctx, "m", tt.alias, 1), errdefs.ErrInvalidArgument, tt.msg)
		}
		for _, good := range []string{"champion", "v1x", "vv1", "a-b_c", strings.Repeat("a", 255), "número"} {
			if err := r.SetAlias(ctx, "m", good, 1); err != nil {
				t.Errorf("alias %q: %v", good, err)
			}
		}
		wantErr(t, r.SetAlias(ctx, "m", "x", 9), errdefs.ErrNotFound, "Model Version (name=m, version=9) not found")
		wantErr(t, r.SetAlias(ctx, "nope", "x", 1), errdefs.ErrNotFound, "not found")

		// Reassigning moves the alias.
		if err := r.SetAlias(ctx, "m", "champion", 2); err != nil {
			t.Fatal(err)
		}
		v := must[*registry.ModelVersion](t)(r.GetVersionByAlias(ctx, "m", "champion"))
		if v.Version != 2 || !reflect.DeepEqual(v.Aliases, []string{"champion"}) {
			t.Fatalf("by alias %+v", v)
		}
		_, err := r.GetVersionByAlias(ctx, "m", "ghost")
		wantErr(t, err, errdefs.ErrNotFound, "Registered model alias ghost not found.")
		_, err = r.GetVersionByAlias(ctx, "nope", "champion")
		wantErr(t, err, errdefs.ErrNotFound, "Registered Model with name=nope not found")

		if err := r.DeleteAlias(ctx, "m", "vv1"); err != nil {
			t.Fatal(err)
		}
		if _, err := r.GetVersionByAlias(ctx, "m", "vv1"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("deleted alias: %v", err)
		}
		// Deleting a version drops the aliases that point at it.
		if err := r.DeleteModelVersion(ctx, "m", 2); err != nil {
			t.Fatal(err)
		}
		if _, err := r.GetVersionByAlias(ctx, "m", "champion"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("alias of deleted version: %v", err)
		}
		m := must[*registry.RegisteredModel](t)(r.GetRegisteredModel(ctx, "m"))
		for _, a := range m.Aliases {
			if a.Version != 1 {
				t.Fatalf("alias %+v survives its version", a)
			}
		}
	})
}

func TestCreateModelVersionSources(t *testing.T) {
	const mid = "m-0123456789abcdef0123456789abcdef"
	tests := []struct {
		name        string
		in          registry.CreateModelVersionInput
		storage     string
		runID       string
		errKind     error
		errContains string
	}{
		{name: "logged model", in: registry.CreateModelVersionInput{Source: "models:/" + mid, ModelID: mid},
			storage: "s3://bucket/0/models/" + mid + "/artifacts", runID: "run1"},
		{name: "logged model keeps given run id", in: registry.CreateModelVersionInput{Source: "models:/" + mid, ModelID: mid, RunID: "run2"},
			storage: "s3://bucket/0/models/" + mid + "/artifacts", runID: "run2"},
		{name: "runs uri", in: registry.CreateModelVersionInput{Source: "runs:/run2/model"},
			storage: "mlflow-artifacts:/0/run2/artifacts/model", runID: "run2"},
		{name: "runs uri, trailing slash on artifact uri", in: registry.CreateModelVersionInput{Source: "runs:/run1/sub/model"},
			storage: "s3://bucket/0/run1/artifacts/sub/model", runID: "run1"},
		{name: "plain uri", in: registry.CreateModelVersionInput{Source: "s3://b/path/model", RunID: "run1"}, storage: "s3://b/path/model", runID: "run1"},
		{name: "local path inside the run's artifacts", in: registry.CreateModelVersionInput{Source: "file:///srv/art/0/runlocal/artifacts/model", RunID: "runlocal"},
			storage: "file:///srv/art/0/runlocal/artifacts/model", runID: "runlocal"},
		{name: "local path inside the logged model", in: registry.CreateModelVersionInput{Source: "/srv/art/0/models/m-local/artifacts", ModelID: "m-local"},
			storage: "/srv/art/0/models/m-local/artifacts"},
		{name: "prompt skips source checks", in: registry.CreateModelVersionInput{Source: "dummy-source", Tags: []registry.KV{{"mlflow.prompt.is_prompt", "true"}}},
			storage: "dummy-source"},

		{name: "missing source", in: registry.CreateModelVersionInput{}, errKind: errdefs.ErrInvalidArgument,
			errContains: "Missing value for required parameter 'source'."},
		{name: "dot-dot", in: registry.CreateModelVersionInput{Source: "s3://b/../x"}, errKind: errdefs.ErrInvalidArgument,
			errContains: "Invalid model version source: 's3://b/../x'. If supplying a source as an http, https, local file path, ftp, objectstore, or mlflow-artifacts uri, an absolute path must be provided without relative path references present. Please provide an absolute path."},
		{name: "encoded dot-dot", in: registry.CreateModelVersionInput{Source: "mlflow-artifacts://host:5000/..%2f..%2fetc"}, errKind: errdefs.ErrInvalidArgument, errContains: "Invalid model version source"},
		{name: "double-encoded dot-dot", in: registry.CreateModelVersionInput{Source: "http://h/a/%252e%252e/b"}, errKind: errdefs.ErrInvalidArgument, errContains: "Invalid model version source"},
		{name: "encoded NUL", in: registry.CreateModelVersionInput{Source: "http://h/api/2.0/mlflow-artifacts/artifacts%00"}, errKind: errdefs.ErrInvalidArgument, errContains: "Invalid model version source"},
		{name: "dot segment", in: registry.CreateModelVersionInput{Source: "s3://b/./x"}, errKind: errdefs.ErrInvalidArgument, errContains: "Invalid model version source"},
		{name: "local path without a run", in: registry.CreateModelVersionInput{Source: "/etc/passwd"}, errKind: errdefs.ErrInvalidArgument,
			errContains: "Invalid model version source: '/etc/passwd'. To use a local path as a model version source, the run_id request parameter has to be specified and the local path has to be contained within the artifact directory of the run specified by the run_id."},
		{name: "local path outside the run", in: registry.CreateModelVersionInput{Source: "file:///srv/art/0/other", RunID: "runlocal"}, errKind: errdefs.ErrInvalidArgument,
			errContains: "Invalid model version source: '/srv/art/0/other'."},
		{name: "local path escaping the run", in: registry.CreateModelVersionInput{Source: "/srv/art/0/runlocal/artifacts/../../x", RunID: "runlocal"}, errKind: errdefs.ErrInvalidArgument,
			errContains: "Invalid model version source"},
		{name: "local path, remote run", in: registry.CreateModelVersionInput{Source: "/srv/x", RunID: "run1"}, errKind: errdefs.ErrInvalidArgument, errContains: "Invalid model version source"},
		{name: "local path outside the model", in: registry.CreateModelVersionInput{Source: "/srv/x", ModelID: "m-local"}, errKind: errdefs.ErrInvalidArgument,
			errContains: "the model_id request parameter has to be specified"},
		{name: "file uri with remote host", in: registry.CreateModelVersionInput{Source: "file://evil.com/x"}, errKind: errdefs.ErrInvalidArgument, errContains: "is not a valid remote uri"},
		{name: "unknown logged model", in: registry.CreateModelVersionInput{Source: "models:/m-ffffffffffffffffffffffffffffffff"}, errKind: errdefs.ErrNotFound},
		{name: "unknown run", in: registry.CreateModelVersionInput{Source: "runs:/nope/model"}, errKind: errdefs.ErrNotFound},
		{name: "bad tag", in: registry.CreateModelVersionInput{Source: "s3://b/x", Tags: []registry.KV{{"", "v"}}}, errKind: errdefs.ErrInvalidArgument, errContains: "parameter 'key'"},
	}
	forEachDB(t, func(t *testing.T, e env) {
		must[*registry.RegisteredModel](t)(e.reg.CreateRegisteredModel(ctx, "m", "", nil))
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				in := tt.in
				in.Name = "m"
				v, err := e.reg.CreateModelVersion(ctx, in)
				if tt.errKind != nil {
					wantErr(t, err, tt.errKind, tt.errContains)
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if v.Source != in.Source || v.StorageLocation != tt.storage || v.RunID != tt.runID || v.Status != "READY" || v.CurrentStage != "None" {
					t.Fatalf("got %+v", v)
				}
				if uri := must[string](t)(e.reg.GetDownloadURI(ctx, "m", v.Version)); uri != tt.storage {
					t.Fatalf("download uri %q, want %q", uri, tt.storage)
				}
			})
		}
		_, err := e.reg.CreateModelVersion(ctx, registry.CreateModelVersionInput{Name: "nope", Source: "s3://x/y"})
		wantErr(t, err, errdefs.ErrNotFound, "Registered Model with name=nope not found")

		// The logged model lists its registrations, as MLflow's json.dumps.
		if got, want := e.src.tag(mid, "mlflow.modelVersions"), `[{"name": "m", "version": 1}, {"name": "m", "version": 2}]`; got != want {
			t.Fatalf("registrations tag %q, want %q", got, want)
		}
		must[*registry.RegisteredModel](t)(e.reg.CreateRegisteredModel(ctx, "ü\"2", "", nil))
		v := must[*registry.ModelVersion](t)(e.reg.CreateModelVersion(ctx, registry.CreateModelVersionInput{Name: "ü\"2", Source: "models:/" + mid, ModelID: mid}))
		if got, want := e.src.tag(mid, "mlflow.modelVersions"), `[{"name": "m", "version": 1}, {"name": "m", "version": 2}, {"name": "\u00fc\"2", "version": 1}]`; got != want {
			t.Fatalf("registrations tag %q, want %q", got, want)
		}
		if err := e.reg.DeleteModelVersion(ctx, "m", 1); err != nil {
			t.Fatal(err)
		}
		if got, want := e.src.tag(mid, "mlflow.modelVersions"), `[{"name": "m", "version": 2}, {"name": "\u00fc\"2", "version": 1}]`; got != want {
			t.Fatalf("registrations tag after delete %q, want %q", got, want)
		}
		if v.ModelID != mid {
			t.Fatalf("model id %q", v.ModelID)
		}
	})
}

func TestConcurrentVersionNumbers(t *testing.T) {
	forEachDB(t, func(t *testing.T, e env) {
		must[*registry.RegisteredModel](t)(e.reg.CreateRegisteredModel(ctx, "m", "", nil))
		const n = 20
		var wg sync.WaitGroup
		versions := make([]int64, n)
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				v, err := e.reg.CreateModelVersion(ctx, registry.CreateModelVersionInput{Name: "m", Source: fmt.Sprintf("s3://b/%d", i)})
				if err != nil {
					errs[i] = err
					return
				}
				versions[i] = v.Version
			}()
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

func TestStagesAndVersions(t *testing.T) {
	forEachDB(t, func(t *testing.T, e env) {
		r := e.reg
		must[*registry.RegisteredModel](t)(r.CreateRegisteredModel(ctx, "m", "", nil))
		for i := 1; i <= 4; i++ {
			newVersion(t, r, "m", fmt.Sprintf("s3://b/%d", i))
		}
		stage := func(v int64) string {
			t.Helper()
			return must[*registry.ModelVersion](t)(r.GetModelVersion(ctx, "m", v)).CurrentStage
		}
		must[*registry.ModelVersion](t)(r.TransitionStage(ctx, "m", 1, "production", false))
		must[*registry.ModelVersion](t)(r.TransitionStage(ctx, "m", 2, "PRODUCTION", false))
		must[*registry.ModelVersion](t)(r.TransitionStage(ctx, "m", 3, "staging", false))
		if stage(1) != "Production" || stage(2) != "Production" || stage(3) != "Staging" {
			t.Fatalf("stages %s %s %s", stage(1), stage(2), stage(3))
		}
		v := must[*registry.ModelVersion](t)(r.TransitionStage(ctx, "m", 4, "Production", true))
		if v.CurrentStage != "Production" || stage(1) != "Archived" || stage(2) != "Archived" || stage(3) != "Staging" {
			t.Fatalf("archive_existing: %s %s %s %s", stage(1), stage(2), stage(3), v.CurrentStage)
		}
		_, err := r.TransitionStage(ctx, "m", 1, "Prod", false)
		wantErr(t, err, errdefs.ErrInvalidArgument, "Invalid Model Version stage: Prod. Value must be one of None, Staging, Production, Archived.")
		_, err = r.TransitionStage(ctx, "m", 1, "archived", true)
		wantErr(t, err, errdefs.ErrInvalidArgument, "Model version transition cannot archive existing model versions because 'archived' is not an Active stage. Valid stages are ['Staging', 'Production']")
		_, err = r.TransitionStage(ctx, "m", 9, "None", false)
		wantErr(t, err, errdefs.ErrNotFound, "Model Version (name=m, version=9) not found")

		latest := func(stages ...string) map[string]int64 {
			t.Helper()
			out := map[string]int64{}
			for _, v := range must[[]*registry.ModelVersion](t)(r.GetLatestVersions(ctx, "m", stages)) {
				out[v.CurrentStage] = v.Version
			}
			return out
		}
		if got, want := latest(), map[string]int64{"Archived": 2, "Staging": 3, "Production": 4}; !reflect.DeepEqual(got, want) {
			t.Fatalf("latest %v, want %v", got, want)
		}
		if got, want := latest("production", "None"), map[string]int64{"Production": 4}; !reflect.DeepEqual(got, want) {
			t.Fatalf("latest production %v, want %v", got, want)
		}
		if _, err := r.GetLatestVersions(ctx, "m", []string{"bogus"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("bogus stage: %v", err)
		}
		if _, err := r.GetLatestVersions(ctx, "nope", nil); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("latest of missing model: %v", err)
		}

		// Update, tags, delete.
		v = must[*registry.ModelVersion](t)(r.UpdateModelVersion(ctx, "m", 3, "better"))
		if v.Description != "better" {
			t.Fatalf("update %+v", v)
		}
		_, err = r.UpdateModelVersion(ctx, "m", 9, "x")
		wantErr(t, err, errdefs.ErrNotFound, "Model Version (name=m, version=9) not found")
		if err := r.SetModelVersionTag(ctx, "m", 3, "a", "1"); err != nil {
			t.Fatal(err)
		}
		if err := r.SetModelVersionTag(ctx, "m", 3, "a", "2"); err != nil {
			t.Fatal(err)
		}
		if err := r.SetModelVersionTag(ctx, "m", 3, "b", "x"); err != nil {
			t.Fatal(err)
		}
		wantErr(t, r.SetModelVersionTag(ctx, "m", 9, "a", "1"), errdefs.ErrNotFound, "version=9")
		wantErr(t, r.SetModelVersionTag(ctx, "m", 3, strings.Repeat("k", 251), "1"), errdefs.ErrInvalidArgument, "'key' exceeds the maximum length of 250 characters")
		if err := r.DeleteModelVersionTag(ctx, "m", 3, "b"); err != nil {
			t.Fatal(err)
		}
		if got := must[*registry.ModelVersion](t)(r.GetModelVersion(ctx, "m", 3)).Tags; !reflect.DeepEqual(got, []registry.KV{{"a", "2"}}) {
			t.Fatalf("version tags %+v", got)
		}
		if err := r.DeleteModelVersion(ctx, "m", 4); err != nil {
			t.Fatal(err)
		}
		wantErr(t, r.DeleteModelVersion(ctx, "m", 4), errdefs.ErrNotFound, "Model Version (name=m, version=4) not found")
		if _, err := r.GetDownloadURI(ctx, "m", 4); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("download uri of deleted version: %v", err)
		}
		if got := latest(); got["Production"] != 0 {
			t.Fatalf("deleted version still latest: %v", got)
		}
		if v := newVersion(t, r, "m", "s3://b/5"); v.Version != 5 {
			t.Fatalf("version after delete = %d, want 5 (numbers are never reused)", v.Version)
		}
	})
}

func TestParseVersion(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		ok   bool
	}{{"1", 1, true}, {" 12 ", 12, true}, {"-1", -1, true}, {"x", 0, false}, {"1.5", 0, false}, {"", 0, false}} {
		got, err := registry.ParseVersion(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseVersion(%q) = %d, %v", tt.in, got, err)
		}
		if err != nil && !strings.Contains(err.Error(), "Parameter 'version' must be an integer, got '"+tt.in+"'.") {
			t.Errorf("message %q", err)
		}
	}
}

func TestSearch(t *testing.T) {
	forEachDB(t, func(t *testing.T, e env) {
		for i, n := range []string{"alpha", "beta", "Gamma", "delta"} {
			must[*registry.RegisteredModel](t)(e.reg.CreateRegisteredModel(ctx, n, "", []registry.KV{{"tier", fmt.Sprint(i % 2)}}))
			for j := 0; j <= i; j++ {
				must[*registry.ModelVersion](t)(e.reg.CreateModelVersion(ctx, registry.CreateModelVersionInput{
					Name: n, Source: fmt.Sprintf("s3://b/%s/%d", n, j), RunID: fmt.Sprintf("run%d", j),
					Tags: []registry.KV{{"j", fmt.Sprint(j)}}}))
				time.Sleep(2 * time.Millisecond) // distinct timestamps for the orderings below
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
		for _, tt := range []struct {
			q    registry.SearchQuery
			want []string
		}{
			{registry.SearchQuery{}, []string{"Gamma", "alpha", "beta", "delta"}},
			{registry.SearchQuery{Filter: "name = 'beta'"}, []string{"beta"}},
			{registry.SearchQuery{Filter: "name != 'beta'"}, []string{"Gamma", "alpha", "delta"}},
			{registry.SearchQuery{Filter: "name LIKE '%a'"}, []string{"Gamma", "alpha", "beta", "delta"}},
			{registry.SearchQuery{Filter: "name LIKE 'g%'"}, nil},
			{registry.SearchQuery{Filter: "name ILIKE 'g%'"}, []string{"Gamma"}},
			{registry.SearchQuery{Filter: "tags.tier = '1'", OrderBy: []string{"name DESC"}}, []string{"delta", "beta"}},
			{registry.SearchQuery{Filter: "tags.tier LIKE '1%' and name ILIKE '%E%'"}, []string{"beta", "delta"}},
			{registry.SearchQuery{Filter: "tags.tier != '1' and tags.`mlflow.prompt.is_prompt` != 'true'"}, []string{"Gamma", "alpha"}},
			{registry.SearchQuery{OrderBy: []string{"creation_timestamp DESC"}}, []string{"delta", "Gamma", "beta", "alpha"}},
			{registry.SearchQuery{OrderBy: []string{"last_updated_timestamp ASC"}}, []string{"alpha", "beta", "Gamma", "delta"}},
		} {
			if got := models(tt.q); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%+v: got %v, want %v", tt.q, got, tt.want)
			}
		}
		first, next, err := e.reg.SearchRegisteredModels(ctx, registry.SearchQuery{MaxResults: 3})
		if err != nil || len(first) != 3 || next == "" {
			t.Fatalf("page 1: %d %q %v", len(first), next, err)
		}
		rest, next2, _ := e.reg.SearchRegisteredModels(ctx, registry.SearchQuery{MaxResults: 3, PageToken: next})
		if len(rest) != 1 || rest[0].Name != "delta" || next2 != "" || len(rest[0].LatestVersions) != 1 || rest[0].LatestVersions[0].Version != 4 {
			t.Fatalf("page 2: %+v %q", rest, next2)
		}

		versions := func(q registry.SearchQuery) []string {
			t.Helper()
			vs, _, err := e.reg.SearchModelVersions(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, v := range vs {
				out = append(out, fmt.Sprintf("%s/%d", v.Name, v.Version))
			}
			return out
		}
		asc := []string{"name ASC", "version_number ASC"}
		for _, tt := range []struct {
			q    registry.SearchQuery
			want []string
		}{
			{registry.SearchQuery{Filter: "name = 'delta' and version_number >= 3", OrderBy: []string{"version_number ASC"}}, []string{"delta/3", "delta/4"}},
			{registry.SearchQuery{Filter: "run_id IN ('run2', 'run3')", OrderBy: asc}, []string{"Gamma/3", "delta/3", "delta/4"}},
			{registry.SearchQuery{Filter: "run_id = 'run3'"}, []string{"delta/4"}},
			{registry.SearchQuery{Filter: "source_path LIKE 's3://b/beta/%'", OrderBy: asc}, []string{"beta/1", "beta/2"}},
			{registry.SearchQuery{Filter: "tags.j = '2'", OrderBy: asc}, []string{"Gamma/3", "delta/3"}},
			{registry.SearchQuery{Filter: "name = 'alpha' and tags.j != '0'"}, nil},
			{registry.SearchQuery{Filter: "version_number IN ('1', '2') and name ILIKE 'GAMMA'", OrderBy: []string{"version_number DESC"}}, []string{"Gamma/2", "Gamma/1"}},
			{registry.SearchQuery{Filter: "name = 'beta'", OrderBy: []string{"creation_timestamp DESC"}}, []string{"beta/2", "beta/1"}},
		} {
			if got := versions(tt.q); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%+v: got %v, want %v", tt.q, got, tt.want)
			}
		}
		page, tok, err := e.reg.SearchModelVersions(ctx, registry.SearchQuery{MaxResults: 6, OrderBy: asc})
		if err != nil || len(page) != 6 || tok == "" {
			t.Fatalf("version page 1: %d %q %v", len(page), tok, err)
		}
		page, tok, err = e.reg.SearchModelVersions(ctx, registry.SearchQuery{MaxResults: 6, OrderBy: asc, PageToken: tok})
		if err != nil || len(page) != 4 || tok != "" || page[3].Name != "delta" || page[3].Version != 4 {
			t.Fatalf("version page 2: %d %q %v", len(page), tok, err)
		}
		// Deleted versions are not found.
		if err := e.reg.DeleteModelVersion(ctx, "delta", 4); err != nil {
			t.Fatal(err)
		}
		if got := versions(registry.SearchQuery{Filter: "name = 'delta'", OrderBy: asc}); !reflect.DeepEqual(got, []string{"delta/1", "delta/2", "delta/3"}) {
			t.Fatalf("after delete: %v", got)
		}

		for _, tt := range []struct {
			models bool
			q      registry.SearchQuery
			msg    string
		}{
			{true, registry.SearchQuery{Filter: "description = 'x'"}, "Invalid attribute name: description"},
			{true, registry.SearchQuery{Filter: "name > 'x'"}, "Invalid comparator for attribute: >"},
			{true, registry.SearchQuery{Filter: "metrics.x > 1"}, "Invalid entity type"},
			{true, registry.SearchQuery{Filter: "name = 1"}, "Expected a quoted string value for attributes"},
			{true, registry.SearchQuery{MaxResults: 1001}, "It must be at most 1000, but got value 1001"},
			{true, registry.SearchQuery{OrderBy: []string{"version_number"}}, "Invalid order by key 'version_number' specified."},
			{true, registry.SearchQuery{OrderBy: []string{"name", "name DESC"}}, "`order_by` contains duplicate fields: ['name', 'name DESC']"},
			{true, registry.SearchQuery{PageToken: "!!"}, ""},
			{false, registry.SearchQuery{Filter: "name IN ('a')"}, "Invalid comparator for attribute: IN"},
			{false, registry.SearchQuery{Filter: "status = 'READY'"}, "Invalid attribute name: status"},
			{false, registry.SearchQuery{Filter: "version_number LIKE '1'"}, "Invalid comparator for attribute: LIKE"},
			{false, registry.SearchQuery{Filter: "version_number = '1'"}, "Expected numeric value type for version_number"},
			{false, registry.SearchQuery{Filter: "tags.j IN ('1')"}, ""},
			{false, registry.SearchQuery{MaxResults: 200001}, "It must be at most 200000, but got value 200001"},
		} {
			var err error
			if tt.models {
				_, _, err = e.reg.SearchRegisteredModels(ctx, tt.q)
			} else {
				_, _, err = e.reg.SearchModelVersions(ctx, tt.q)
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("%+v: got %v, want INVALID %q", tt.q, err, tt.msg)
			}
		}
	})
}
