package api_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/api/client"
	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/blob/blobtest"
	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/registry"
	"github.com/kiln-ml/kiln/store"
	"github.com/kiln-ml/kiln/store/storetest"
	"github.com/kiln-ml/kiln/tracking"
)

// env is a server on a real database and a file:// artifact store, with
// a client of it.
type env struct {
	srv      *httptest.Server
	c        *client.Client
	db       *store.DB
	datasets *dataset.Store
	tracking *tracking.Store
	registry *registry.Store
	bucket   *blob.Bucket
}

func newEnv(t *testing.T, db *store.DB, mutate ...func(*api.Deps)) *env {
	t.Helper()
	b, err := blob.Open(context.Background(), "file://"+t.TempDir(), blob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	e := &env{db: db, datasets: dataset.NewStore(db), tracking: tracking.New(db, tracking.Options{}), bucket: b}
	e.registry = registry.New(db, e.tracking)
	deps := api.Deps{Datasets: e.datasets, Content: dataset.NewBucketRemote(b), Tracking: e.tracking, TempDir: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, m := range mutate {
		m(&deps)
	}
	mux := http.NewServeMux()
	api.New(deps).Register(mux)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	if e.c, err = client.New(e.srv.URL, nil); err != nil {
		t.Fatal(err)
	}
	return e
}

func forEachDB(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	for name, open := range storetest.TestDatabases(t) {
		t.Run(name, func(t *testing.T) { fn(t, open(t)) })
	}
}

// writeTree writes files under dir with modification times in the past.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	old := time.Now().Add(-time.Hour)
	for p, c := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(full, old, old)
	}
}

// add hashes dir, pushes it through the HTTP remote and creates a version.
func (e *env) add(t *testing.T, name, dir string) *api.CreateVersionResponse {
	t.Helper()
	ctx := context.Background()
	src, err := dataset.NewLocalSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := dataset.Hash(ctx, src, dataset.HashOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dataset.Push(ctx, src, m, e.c.Remote(), dataset.TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	resp, err := e.c.CreateVersion(ctx, name, api.CreateVersionRequest{Manifest: m.Digest().String(), Source: dir, CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

const trainV1 = "id,amount,label\n1,10.5,a\n2,20,b\n3,30,a\n4,40,b\n5,50,a\n"
const trainV2 = "id,amount,label,region\n1,10.5,a,eu\n2,20,b,us\n3,30,a,eu\n4,40,b,us\n5,50,a,eu\n6,60,b,us\n7,70,a,eu\n"

func TestDatasetLifecycle(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		ctx := context.Background()
		d, err := e.c.CreateDataset(ctx, api.CreateDatasetRequest{Name: "fraud", Description: "card fraud", Tags: map[string]string{"team": "risk"}})
		if err != nil {
			t.Fatal(err)
		}
		if d.Name != "fraud" || d.Tags["team"] != "risk" || d.LatestVersion != 0 {
			t.Fatalf("created %+v", d)
		}
		if _, err := e.c.CreateDataset(ctx, api.CreateDatasetRequest{Name: "fraud"}); !errors.Is(err, errdefs.ErrAlreadyExists) {
			t.Fatalf("duplicate: %v", err)
		}

		dir1 := t.TempDir()
		writeTree(t, dir1, map[string]string{"train.csv": trainV1, "README.md": "fraud data\n", "img/a.bin": "\x00\x01"})
		r1 := e.add(t, "fraud", dir1)
		if !r1.Created || r1.Version.Version != 1 || r1.Version.FileCount != 3 || r1.Version.CreatedBy != "test" {
			t.Fatalf("v1 %+v", r1.Version)
		}
		// The same content again creates nothing.
		if again := e.add(t, "fraud", dir1); again.Created || again.Version.Version != 1 {
			t.Fatalf("re-add: created %v, version %d", again.Created, again.Version.Version)
		}
		dir2 := t.TempDir()
		writeTree(t, dir2, map[string]string{"train.csv": trainV2, "README.md": "fraud data\n", "extra.jsonl": `{"a":1}` + "\n" + `{"a":2}` + "\n"})
		r2 := e.add(t, "fraud", dir2)
		if r2.Version.Version != 2 {
			t.Fatalf("v2 %+v", r2.Version)
		}

		// Listing and details.
		list, err := e.c.AllVersions(ctx, "fraud")
		if err != nil || len(list) != 2 || list[0].Version != 2 {
			t.Fatalf("versions %v %v", list, err)
		}
		det, err := e.c.GetVersion(ctx, dataset.VersionRef{Dataset: "fraud"})
		if err != nil {
			t.Fatal(err)
		}
		if det.Version.Version != 2 || det.URI != "kiln://datasets/fraud@2" || det.Manifest.FileCount != 3 || len(det.Manifest.Tables) != 2 || det.Lineage == nil || len(det.Validations) != 0 {
			t.Fatalf("detail %+v manifest %+v", det.Version, det.Manifest)
		}
		ds, err := e.c.AllDatasets(ctx, client.ListOptions{Prefix: "fr"})
		if err != nil || len(ds) != 1 || ds[0].LatestVersion != 2 {
			t.Fatalf("datasets %v %v", ds, err)
		}
		if ds, err := e.c.AllDatasets(ctx, client.ListOptions{Contains: "RAU"}); err != nil || len(ds) != 1 || ds[0].Name != "fraud" {
			t.Fatalf("datasets containing RAU: %v %v", ds, err)
		}
		if ds, err := e.c.AllDatasets(ctx, client.ListOptions{Contains: "%"}); err != nil || len(ds) != 0 {
			t.Fatalf("datasets containing %%: %v %v", ds, err)
		}

		// Updates: description and tags, on the dataset and a version.
		desc := "v1, before the region column"
		v, err := e.c.UpdateVersion(ctx, dataset.VersionRef{Dataset: "fraud", Version: 1}, api.UpdateRequest{Description: &desc, Tags: map[string]string{"stage": "raw"}})
		if err != nil || v.Description != desc || v.Tags["stage"] != "raw" {
			t.Fatalf("update version: %+v %v", v, err)
		}
		d, err = e.c.UpdateDataset(ctx, "fraud", api.UpdateRequest{Tags: map[string]string{"owner": "ana"}, DeleteTags: []string{"team"}})
		if err != nil || d.Tags["owner"] != "ana" || d.Tags["team"] != "" {
			t.Fatalf("update dataset: %+v %v", d, err)
		}
		// A bad tag changes nothing, not even the description.
		bad := "changed"
		if _, err := e.c.UpdateDataset(ctx, "fraud", api.UpdateRequest{Description: &bad, Tags: map[string]string{"": "x"}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("bad tag: %v", err)
		}
		if d, _ := e.c.GetDataset(ctx, "fraud"); d.Description != "card fraud" {
			t.Fatalf("description changed by a failed update: %q", d.Description)
		}

		// Diff v1 → v2: files, and for the changed CSV rows and schema.
		diff, err := e.c.Diff(ctx, dataset.VersionRef{Dataset: "fraud", Version: 2}, "", true)
		if err != nil {
			t.Fatal(err)
		}
		if diff.From == nil || diff.From.Version != 1 || len(diff.Files.Added) != 1 || len(diff.Files.Removed) != 1 || len(diff.Files.Changed) != 1 || diff.Files.Unchanged != 1 {
			t.Fatalf("diff files %+v", diff.Files)
		}
		byPath := map[string]api.TableDiff{}
		for _, td := range diff.Tables {
			byPath[td.Path] = td
		}
		tr := byPath["train.csv"]
		if tr.Status != "changed" || tr.OldRows == nil || *tr.OldRows != 5 || *tr.NewRows != 7 || tr.Error != "" {
			t.Fatalf("train.csv diff %+v", tr)
		}
		if len(tr.SchemaChanges) != 1 || tr.SchemaChanges[0].Kind != table.ColumnAdded || tr.SchemaChanges[0].Column != "region" {
			t.Fatalf("schema changes %+v", tr.SchemaChanges)
		}
		if ex := byPath["extra.jsonl"]; ex.Status != "added" || ex.NewRows == nil || *ex.NewRows != 2 || ex.OldRows != nil {
			t.Fatalf("extra.jsonl diff %+v", ex)
		}
		// Version 1 compared with nothing: everything added.
		first, err := e.c.Diff(ctx, dataset.VersionRef{Dataset: "fraud", Version: 1}, "", false)
		if err != nil || first.From != nil || len(first.Files.Added) != 3 || len(first.Tables) != 0 {
			t.Fatalf("first diff %+v %v", first, err)
		}
		// Explicit from, as a number.
		back, err := e.c.Diff(ctx, dataset.VersionRef{Dataset: "fraud", Version: 1}, "2", false)
		if err != nil || back.From.Version != 2 || len(back.Files.Removed) != 1 {
			t.Fatalf("diff from 2: %+v %v", back, err)
		}

		// Delete: the dataset goes, its objects stay.
		if err := e.c.DeleteDataset(ctx, "fraud"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.c.GetDataset(ctx, "fraud"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("deleted dataset: %v", err)
		}
		if m, err := e.c.Remote().GetManifest(ctx, r1.Version.Digest); err != nil || len(m.Files) != 3 {
			t.Fatalf("manifest after delete: %v", err)
		}
	})
}

func TestProfileValidateSplit(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		ctx := context.Background()
		var csv strings.Builder
		csv.WriteString("id,amount,label\n")
		for i := range 200 {
			label := "a"
			if i%4 == 0 {
				label = "b"
			}
			csv.WriteString(strings.Join([]string{itoa(i), itoa(i * 3), label}, ",") + "\n")
		}
		dir := t.TempDir()
		writeTree(t, dir, map[string]string{"part-0.csv": csv.String(), "part-1.csv": "id,amount,label\n1000,5,a\n1001,6,b\n"})
		ref := e.add(t, "sales", dir).Version.Ref()

		// Profile both files, merged, stored on the version.
		p, err := e.c.ComputeProfile(ctx, ref, "")
		if err != nil {
			t.Fatal(err)
		}
		if !p.Stored || p.Profile.Rows != 202 || len(p.Files) != 2 || p.Schema == nil || len(p.Schema.Fields) != 3 {
			t.Fatalf("profile: stored %v rows %d files %v", p.Stored, p.Profile.Rows, p.Files)
		}
		if c := p.Profile.Column("amount"); c == nil || c.Max == nil || *c.Max != 597 || *c.Min != 0 {
			t.Fatalf("amount column %+v", c)
		}
		got, err := e.c.Profile(ctx, ref)
		if err != nil || got.Profile.Rows != 202 || got.Schema == nil {
			t.Fatalf("stored profile: %+v %v", got, err)
		}
		// One file of two: answered, not stored.
		one, err := e.c.ComputeProfile(ctx, ref, "part-1.csv")
		if err != nil || one.Stored || one.Profile.Rows != 2 {
			t.Fatalf("one-file profile: %+v %v", one, err)
		}
		if got, _ := e.c.Profile(ctx, ref); got.Profile.Rows != 202 {
			t.Fatalf("a one-file profile replaced the stored one: %d rows", got.Profile.Rows)
		}
		if _, err := e.c.ComputeProfile(ctx, ref, "nope.csv"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("unknown path: %v", err)
		}

		// Validation: a passing and a failing suite, stored.
		pass := "kind: ValidationSuite\nname: basic\nrules:\n  - check: not_null\n    column: id\n  - check: row_count\n    min: 100\n"
		vr, err := e.c.Validate(ctx, ref, api.ValidateRequest{Suite: pass})
		if err != nil || !vr.Report.Passed || vr.ValidationID == 0 || vr.Report.Rows != 202 {
			t.Fatalf("passing suite: %+v %v", vr, err)
		}
		fail := "kind: ValidationSuite\nname: strict\nrules:\n  - check: range\n    column: amount\n    max: 100\n"
		vr, err = e.c.Validate(ctx, ref, api.ValidateRequest{Suite: fail})
		if err != nil || vr.Report.Passed || vr.Report.Failed != 1 {
			t.Fatalf("failing suite: %+v %v", vr, err)
		}
		dry, err := e.c.Validate(ctx, ref, api.ValidateRequest{Suite: pass, DryRun: true})
		if err != nil || dry.ValidationID != 0 {
			t.Fatalf("dry run: %+v %v", dry, err)
		}
		vals, err := e.c.Validations(ctx, ref)
		if err != nil || len(vals) != 2 || !vals[0].Passed || vals[1].Passed || vals[1].Suite != "strict" {
			t.Fatalf("stored validations %+v %v", vals, err)
		}
		if _, err := e.c.Validate(ctx, ref, api.ValidateRequest{Suite: "kind: ValidationSuite\nrules: [{check: nonsense}]"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("bad suite: %v", err)
		}
		// A YAML body is the suite itself.
		req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/datasets/sales/versions/1/validations?dry_run=true&path=part-0.csv", strings.NewReader(pass))
		req.Header.Set("Content-Type", "application/yaml")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var yr api.ValidateResponse
		json.NewDecoder(resp.Body).Decode(&yr)
		resp.Body.Close()
		if resp.StatusCode != 200 || yr.Report == nil || yr.Report.Rows != 200 || yr.ValidationID != 0 {
			t.Fatalf("YAML body: %d %+v", resp.StatusCode, yr)
		}

		// Split one file; the parts are versions of their own datasets.
		sp, err := e.c.Split(ctx, ref, api.SplitRequest{Spec: dataset.SplitSpec{Method: dataset.SplitRandom, Seed: 42, Path: "part-0.csv"}})
		if err != nil {
			t.Fatal(err)
		}
		if len(sp.Outputs) != 3 || sp.Outputs[0].Version.Dataset != "sales-train" || sp.Outputs[0].Version.Parent == nil {
			t.Fatalf("split %+v", sp.Outputs)
		}
		var rows int64
		for _, o := range sp.Outputs {
			rows += o.Rows
		}
		if rows != 200 {
			t.Fatalf("split rows %d", rows)
		}
		lin, err := e.c.Lineage(ctx, ref)
		if err != nil || len(lin.Children) != 3 {
			t.Fatalf("children %+v %v", lin, err)
		}
		// The same split again records nothing new.
		sp2, err := e.c.Split(ctx, ref, api.SplitRequest{Spec: dataset.SplitSpec{Method: dataset.SplitRandom, Seed: 42, Path: "part-0.csv"}})
		if err != nil || sp2.Outputs[0].Created || sp2.Outputs[0].Version.Version != 1 {
			t.Fatalf("repeated split %+v %v", sp2.Outputs, err)
		}
	})
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestLineage(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		ctx := context.Background()
		dir := t.TempDir()
		writeTree(t, dir, map[string]string{"train.csv": trainV1})
		ref := e.add(t, "iris", dir).Version.Ref()

		run, err := e.tracking.CreateRun(ctx, tracking.CreateRunInput{ExperimentID: "0", StartTime: time.Now().UnixMilli()})
		if err != nil {
			t.Fatal(err)
		}
		runID := run.Info.RunID
		if _, err := e.c.LinkRun(ctx, ref, api.LinkRunRequest{RunID: "nope"}); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("unknown run: %v", err)
		}
		lin, err := e.c.LinkRun(ctx, ref, api.LinkRunRequest{RunID: runID, Context: "training"})
		if err != nil || len(lin.Runs) != 1 || lin.Runs[0].RunID != runID || lin.Runs[0].Context != "training" {
			t.Fatalf("link run: %+v %v", lin, err)
		}
		// A model version registered from the run is in the lineage
		// (query-time join), and the model version's datasets list the version.
		if _, err := e.registry.CreateRegisteredModel(ctx, "iris-clf", "", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := e.registry.CreateModelVersion(ctx, registry.CreateModelVersionInput{Name: "iris-clf", Source: "runs:/" + runID + "/model", RunID: runID}); err != nil {
			t.Fatal(err)
		}
		lin, err = e.c.Lineage(ctx, ref)
		if err != nil || len(lin.ModelVersions) != 1 || lin.ModelVersions[0] != (dataset.ModelUse{ModelName: "iris-clf", ModelVersion: 1, Via: "run", RunID: runID}) {
			t.Fatalf("lineage models %+v %v", lin.ModelVersions, err)
		}
		md, err := e.c.ModelDatasets(ctx, "iris-clf", 1)
		if err != nil || len(md.Datasets) != 1 || md.Datasets[0].Version != ref || md.Datasets[0].Via != "run" {
			t.Fatalf("model datasets %+v %v", md, err)
		}
		// An explicit model link is listed too.
		if _, err := e.registry.CreateModelVersion(ctx, registry.CreateModelVersionInput{Name: "iris-clf", Source: "s3://bucket/model"}); err != nil {
			t.Fatal(err)
		}
		if lin, err = e.c.LinkModelVersion(ctx, ref, api.LinkModelRequest{Name: "iris-clf", Version: 2}); err != nil || len(lin.ModelVersions) != 2 {
			t.Fatalf("link model: %+v %v", lin, err)
		}
		if _, err := e.c.LinkModelVersion(ctx, ref, api.LinkModelRequest{Name: "iris-clf", Version: 9}); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("unknown model version: %v", err)
		}
		rd, err := e.c.RunDatasets(ctx, runID)
		if err != nil || len(rd.Datasets) != 1 || rd.Datasets[0].Version != ref {
			t.Fatalf("run datasets %+v %v", rd, err)
		}
		if _, err := e.c.RunDatasets(ctx, "0123456789abcdef0123456789abcdef"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("unknown run: %v", err)
		}
		if _, err := e.c.ModelDatasets(ctx, "iris-clf", 7); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("unknown model version: %v", err)
		}
		det, err := e.c.GetVersion(ctx, ref)
		if err != nil || len(det.Lineage.Runs) != 1 || len(det.Lineage.ModelVersions) != 2 {
			t.Fatalf("version detail lineage %+v %v", det.Lineage, err)
		}
	})
}

// rawRequest sends a request and returns the status and the decoded
// error body (if any).
func rawRequest(t *testing.T, method, url, contentType string, body io.Reader) (int, api.ErrorBody, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var eb api.ErrorBody
	json.Unmarshal(data, &eb)
	return resp.StatusCode, eb, data
}

func TestContentStore(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		ctx := context.Background()
		base := e.srv.URL + "/api/v1/content"
		data := []byte("hello, objects")
		d := dataset.Sum(data)

		// Wrong bytes for a digest: rejected, nothing stored.
		code, eb, _ := rawRequest(t, "PUT", base+"/objects/"+d.String(), "application/octet-stream", strings.NewReader("hello, object!"))
		if code != 400 || eb.Error.Code != api.CodeDigestMismatch {
			t.Fatalf("mismatch: %d %+v", code, eb)
		}
		if miss, err := e.c.Remote().Has(ctx, []dataset.Digest{d}); err != nil || len(miss) != 1 {
			t.Fatalf("after a rejected upload: missing %v %v", miss, err)
		}
		// Through the client: a mismatch is a dataset.ErrDigestMismatch.
		if err := e.c.Remote().Put(ctx, d, int64(len(data)), strings.NewReader("HELLO, OBJECTS")); !errors.Is(err, dataset.ErrDigestMismatch) || !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("client mismatch: %v", err)
		}
		// Right bytes: stored, and read back.
		if err := e.c.Remote().Put(ctx, d, int64(len(data)), bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		rc, err := e.c.Remote().Get(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(rc)
		rc.Close()
		if !bytes.Equal(got, data) {
			t.Fatalf("read back %q", got)
		}
		other := dataset.Sum([]byte("other"))
		if miss, err := e.c.Remote().Has(ctx, []dataset.Digest{other, d}); err != nil || !reflect.DeepEqual(miss, []dataset.Digest{other}) {
			t.Fatalf("missing %v %v", miss, err)
		}
		if _, err := e.c.Remote().Get(ctx, other); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("get missing object: %v", err)
		}

		// A manifest naming a missing object is refused; a complete one is stored.
		m, _ := dataset.NewManifest(dataset.KindDir, []dataset.Entry{{Path: "a.txt", Size: int64(len(data)), Digest: d}, {Path: "b.txt", Size: 5, Digest: other}})
		if _, err := e.c.Remote().PutManifest(ctx, m); !errors.Is(err, errdefs.ErrInvalidState) {
			t.Fatalf("manifest with a missing object: %v", err)
		}
		m, _ = dataset.NewManifest(dataset.KindDir, []dataset.Entry{{Path: "a.txt", Size: int64(len(data)), Digest: d}})
		md, err := e.c.Remote().PutManifest(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := e.c.Remote().GetManifest(ctx, md); err != nil || back.Digest() != md {
			t.Fatalf("manifest back: %v", err)
		}
		// A manifest body that does not hash to its URL's digest.
		code, eb, _ = rawRequest(t, "PUT", base+"/manifests/"+other.String(), "application/json", bytes.NewReader(m.Encode()))
		if code != 400 || eb.Error.Code != api.CodeDigestMismatch {
			t.Fatalf("manifest mismatch: %d %+v", code, eb)
		}
		// Not canonical.
		pretty := bytes.ReplaceAll(m.Encode(), []byte(`,"`), []byte(`, "`))
		code, eb, _ = rawRequest(t, "PUT", base+"/manifests/"+dataset.Sum(pretty).String(), "application/json", bytes.NewReader(pretty))
		if code != 400 || eb.Error.Code != api.CodeInvalidArgument {
			t.Fatalf("non-canonical manifest: %d %+v", code, eb)
		}
		// A version from a manifest that is not stored.
		if _, err := e.c.CreateVersion(ctx, "x", api.CreateVersionRequest{Manifest: other.String()}); !errors.Is(err, errdefs.ErrInvalidState) {
			t.Fatalf("version of a missing manifest: %v", err)
		}
		if v, err := e.c.CreateVersion(ctx, "x", api.CreateVersionRequest{Manifest: md.String()}); err != nil || !v.Created || v.Version.FileCount != 1 {
			t.Fatalf("version of a pushed manifest: %+v %v", v, err)
		}
	})
}

func TestErrors(t *testing.T) {
	e := newEnv(t, storetest.TestDatabases(t)["sqlite"](t))
	base := e.srv.URL + "/api/v1"
	big := `{"digests": [` + strings.Repeat(`"`+strings.Repeat("0", 64)+`",`, api.MaxMissingBatch+1) + `"` + strings.Repeat("0", 64) + `"]}`
	for _, tc := range []struct {
		name, method, path, ctype, body string
		status                          int
		code                            string
	}{
		{"unknown route", "GET", "/nothing/here", "", "", 404, api.CodeNotFound},
		{"unknown dataset", "GET", "/datasets/nope", "", "", 404, api.CodeNotFound},
		{"bad name", "GET", "/datasets/a%20b", "", "", 400, api.CodeInvalidArgument},
		{"bad version", "GET", "/datasets/a/versions/0", "", "", 400, api.CodeInvalidArgument},
		{"bad version text", "GET", "/datasets/a/versions/x1", "", "", 400, api.CodeInvalidArgument},
		{"bad digest", "GET", "/content/objects/XYZ", "", "", 400, api.CodeInvalidArgument},
		{"upper-case digest", "GET", "/content/objects/" + strings.Repeat("A", 64), "", "", 400, api.CodeInvalidArgument},
		{"unknown field", "POST", "/datasets", "application/json", `{"name":"a","nme":"b"}`, 400, api.CodeInvalidArgument},
		{"trailing data", "POST", "/datasets", "application/json", `{"name":"a"} {}`, 400, api.CodeInvalidArgument},
		{"no body", "POST", "/datasets", "application/json", ``, 400, api.CodeInvalidArgument},
		{"body too large", "POST", "/datasets", "application/json", `{"name":"` + strings.Repeat("a", api.DefaultMaxJSONBytes) + `"}`, 413, api.CodeTooLarge},
		{"too many digests", "POST", "/content/objects/missing", "application/json", big, 400, api.CodeInvalidArgument},
		{"both manifest and url", "POST", "/datasets/a/versions", "application/json", `{"manifest":"` + strings.Repeat("0", 64) + `","source_url":"s3://b/p"}`, 400, api.CodeInvalidArgument},
		{"neither manifest nor url", "POST", "/datasets/a/versions", "application/json", `{}`, 400, api.CodeInvalidArgument},
		{"local path source", "POST", "/datasets/a/versions", "application/json", `{"source_url":"/etc"}`, 400, api.CodeInvalidArgument},
		{"file source", "POST", "/datasets/a/versions", "application/json", `{"source_url":"file:///etc"}`, 400, api.CodeInvalidArgument},
		{"split of nothing", "POST", "/datasets/a/versions/1/splits", "application/json", `{"spec":{"method":"random"}}`, 404, api.CodeNotFound},
		{"no profile", "GET", "/datasets/a/versions/latest/profile", "", "", 404, api.CodeNotFound},
		{"bad model version", "GET", "/models/m/versions/x/datasets", "", "", 400, api.CodeInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, eb, raw := rawRequest(t, tc.method, base+tc.path, tc.ctype, strings.NewReader(tc.body))
			if code != tc.status || eb.Error.Code != tc.code || eb.Error.Message == "" {
				t.Fatalf("got %d %s", code, raw)
			}
		})
	}
}

// TestSourceURL creates a version from a bucket the server reads itself
// (a real S3 server).
func TestSourceURL(t *testing.T) {
	url, opts := blobtest.S3(t)
	src, err := blob.Open(context.Background(), url, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx := context.Background()
	for k, v := range map[string]string{"data/a.csv": "x\n1\n2\n", "data/sub/b.txt": "bee"} {
		if _, err := src.Put(ctx, k, strings.NewReader(v), ""); err != nil {
			t.Fatal(err)
		}
	}
	e := newEnv(t, storetest.TestDatabases(t)["sqlite"](t), func(d *api.Deps) { d.SourceOptions = opts })
	resp, err := e.c.CreateVersion(ctx, "s3set", api.CreateVersionRequest{SourceURL: url + "/data", Description: "from S3"})
	if err != nil {
		t.Fatal(err)
	}
	if !resp.Created || resp.Version.FileCount != 2 || resp.Version.Source != url+"/data" || resp.Transfer == nil || resp.Transfer.SentObjects != 2 {
		t.Fatalf("version %+v transfer %+v", resp.Version, resp.Transfer)
	}
	// The content can be pulled back through the HTTP remote.
	out := t.TempDir()
	if _, err := dataset.Pull(ctx, e.c.Remote(), nil, resp.Version.Digest, out, dataset.TransferOptions{}, dataset.CheckoutOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(out, "sub", "b.txt")); err != nil || string(b) != "bee" {
		t.Fatalf("pulled %q %v", b, err)
	}
}

func TestPushPullThroughHTTP(t *testing.T) {
	e := newEnv(t, storetest.TestDatabases(t)["sqlite"](t))
	ctx := context.Background()
	dir := t.TempDir()
	files := map[string]string{"empty": "", "dup1": "same", "dup2": "same"}
	for i := range 300 {
		files["many/f"+itoa(i)] = strings.Repeat("x", i)
	}
	writeTree(t, dir, files)
	r := e.add(t, "many", dir)
	cache, err := dataset.OpenCache(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	st, err := dataset.Pull(ctx, e.c.Remote(), cache, r.Version.Digest, out, dataset.TransferOptions{}, dataset.CheckoutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Written != len(files) {
		t.Fatalf("wrote %d of %d files", st.Written, len(files))
	}
	for p, c := range files {
		if b, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(p))); err != nil || string(b) != c {
			t.Fatalf("%s: %q %v", p, b, err)
		}
	}
	// A second push sends nothing: every object is present.
	src, _ := dataset.NewLocalSource(dir)
	m, _, _ := dataset.Hash(ctx, src, dataset.HashOptions{})
	ts, err := dataset.Push(ctx, src, m, e.c.Remote(), dataset.TransferOptions{HasBatch: 7})
	if err != nil || ts.Sent != 0 || ts.Present != ts.Objects {
		t.Fatalf("second push %+v %v", ts, err)
	}
}

// TestOpenAPIMatchesRoutes keeps openapi.yaml and the registered routes in
// step: every route is documented and every documented operation exists.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                    `yaml:"openapi"`
		Paths   map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(api.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	var documented []string
	for p, ops := range doc.Paths {
		for m := range ops {
			switch m {
			case "get", "put", "post", "delete", "patch", "head", "options":
				documented = append(documented, strings.ToUpper(m)+" "+p)
			}
		}
	}
	slices.Sort(documented)
	h := api.New(api.Deps{})
	h.Register(http.NewServeMux())
	routes := h.Routes()
	if !slices.Equal(documented, routes) {
		for _, r := range routes {
			if !slices.Contains(documented, r) {
				t.Errorf("route %s is not in openapi.yaml", r)
			}
		}
		for _, d := range documented {
			if !slices.Contains(routes, d) {
				t.Errorf("openapi.yaml documents %s, which is not registered", d)
			}
		}
	}
	// The document is served.
	e := newEnv(t, storetest.TestDatabases(t)["sqlite"](t))
	code, _, body := rawRequest(t, "GET", e.srv.URL+"/api/v1/openapi.yaml", "", nil)
	if code != 200 || !bytes.Equal(body, api.OpenAPI) {
		t.Fatalf("served document: %d, %d bytes", code, len(body))
	}
}

// FuzzRequests sends arbitrary bodies and paths to the API: every answer
// is a success or an error in the API's format, never a 500 or a panic.
func FuzzRequests(f *testing.F) {
	db, err := store.Open(context.Background(), "sqlite://"+filepath.Join(f.TempDir(), "kiln.db"))
	if err != nil {
		f.Fatal(err)
	}
	defer db.Close()
	b, err := blob.Open(context.Background(), "file://"+f.TempDir(), blob.Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer b.Close()
	ds := dataset.NewStore(db)
	mux := http.NewServeMux()
	api.New(api.Deps{Datasets: ds, Content: dataset.NewBucketRemote(b), TempDir: f.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Register(mux)
	m, _ := dataset.NewManifest(dataset.KindFile, []dataset.Entry{{Path: "a.csv", Size: 4, Digest: dataset.Sum([]byte("x\n1\n"))}})
	for _, seed := range []struct{ method, path, body string }{
		{"POST", "/api/v1/datasets", `{"name":"a","tags":{"k":"v"}}`},
		{"PATCH", "/api/v1/datasets/a", `{"description":"d","delete_tags":["k"]}`},
		{"POST", "/api/v1/datasets/a/versions", `{"manifest":"` + m.Digest().String() + `"}`},
		{"POST", "/api/v1/content/objects/missing", `{"digests":["` + m.Digest().String() + `"]}`},
		{"PUT", "/api/v1/content/manifests/" + m.Digest().String(), string(m.Encode())},
		{"PUT", "/api/v1/content/objects/" + dataset.Sum([]byte("x\n1\n")).String(), "x\n1\n"},
		{"POST", "/api/v1/datasets/a/versions/1/splits", `{"spec":{"method":"random","parts":[{"name":"t","fraction":1}]}}`},
		{"POST", "/api/v1/datasets/a/versions/latest/validations", `{"suite":"kind: ValidationSuite\nrules: [{check: row_count, min: 1}]"}`},
		{"GET", "/api/v1/datasets/a/versions/1/diff?from=a@1&tables=true", ""},
		{"POST", "/api/v1/datasets/a/versions/1/lineage/model-versions", `{"name":"m","version":1}`},
	} {
		f.Add(seed.method, seed.path, seed.body)
	}
	f.Fuzz(func(t *testing.T, method, path, body string) {
		switch method {
		case "GET", "POST", "PUT", "PATCH", "DELETE":
		default:
			return
		}
		req, err := http.NewRequest(method, "http://kiln"+path, strings.NewReader(body))
		if err != nil || !strings.HasPrefix(req.URL.Path, "/api/v1/") {
			return
		}
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, path, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 {
			var eb api.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
				t.Fatalf("%s %s: error body %q", method, path, rec.Body)
			}
		}
	})
}

func tarOf(t testing.TB, entries ...[2]string) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Name: e[0], Size: int64(len(e[1])), Mode: 0o644, Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e[1]))
	}
	tw.Close()
	return &buf
}

func TestContentBatch(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db)
		ctx := context.Background()
		url := e.srv.URL + "/api/v1/content/objects"
		a, b := []byte("object a"), []byte("object b")
		da, db2 := dataset.Sum(a), dataset.Sum(b)
		bad := []struct {
			name  string
			ctype string
			body  io.Reader
			code  string
		}{
			{"not tar", "application/x-tar", strings.NewReader("garbage that is not a tar stream at all"), api.CodeInvalidArgument},
			{"wrong content type", "application/octet-stream", tarOf(t, [2]string{da.String(), string(a)}), api.CodeInvalidArgument},
			{"name not a digest", "application/x-tar", tarOf(t, [2]string{da.String(), string(a)}, [2]string{"../etc/passwd", "x"}), api.CodeInvalidArgument},
			{"content mismatch", "application/x-tar", tarOf(t, [2]string{da.String(), string(a)}, [2]string{db2.String(), "tampered"}), api.CodeDigestMismatch},
		}
		for _, tc := range bad {
			code, eb, _ := rawRequest(t, "POST", url, tc.ctype, tc.body)
			if code != 400 || eb.Error.Code != tc.code {
				t.Errorf("%s: %d %+v", tc.name, code, eb)
			}
			// Nothing of a failed batch is acknowledged or stored.
			if miss, err := e.c.Remote().Has(ctx, []dataset.Digest{da, db2}); err != nil || len(miss) != 2 {
				t.Errorf("%s: after a rejected batch: missing %v %v", tc.name, miss, err)
			}
		}
		// Through the client: a source that changed is ErrDigestMismatch.
		objs := func(second []byte) []dataset.BatchObject {
			return []dataset.BatchObject{
				{Digest: da, Size: int64(len(a)), Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(a)), nil }},
				{Digest: db2, Size: int64(len(b)), Open: func(context.Context) (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(second)), nil }},
			}
		}
		if err := e.c.Remote().PutBatch(ctx, objs([]byte("object c"))); !errors.Is(err, dataset.ErrDigestMismatch) {
			t.Fatalf("client batch mismatch: %v", err)
		}
		if err := e.c.Remote().PutBatch(ctx, objs(b)); err != nil {
			t.Fatal(err)
		}
		if miss, err := e.c.Remote().Has(ctx, []dataset.Digest{da, db2}); err != nil || len(miss) != 0 {
			t.Fatalf("after a batch: missing %v %v", miss, err)
		}
		for d, want := range map[dataset.Digest][]byte{da: a, db2: b} {
			rc, err := e.c.Remote().Get(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(rc)
			rc.Close()
			if !bytes.Equal(got, want) {
				t.Fatalf("read back %q, want %q", got, want)
			}
		}
	})
}

// FuzzContentBatch sends arbitrary bytes as a batch upload: the answer is
// 201 or a 4xx in the API's error format, and what a 201 acknowledges is
// stored and reads back as its digest.
func FuzzContentBatch(f *testing.F) {
	b, err := blob.Open(context.Background(), "file://"+f.TempDir(), blob.Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer b.Close()
	content := dataset.NewBucketRemote(b)
	db, err := store.Open(context.Background(), "sqlite://"+filepath.Join(f.TempDir(), "kiln.db"))
	if err != nil {
		f.Fatal(err)
	}
	defer db.Close()
	mux := http.NewServeMux()
	api.New(api.Deps{Datasets: dataset.NewStore(db), Content: content, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Register(mux)
	a := []byte("object a")
	f.Add(tarOf(f, [2]string{dataset.Sum(a).String(), string(a)}).Bytes())
	f.Add(tarOf(f, [2]string{dataset.Sum(a).String(), "tampered"}).Bytes())
	f.Add(tarOf(f, [2]string{"not-a-digest", "x"}).Bytes())
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "/api/v1/content/objects", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-tar")
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		switch {
		case rec.Code == http.StatusCreated:
			tr := tar.NewReader(bytes.NewReader(body))
			for {
				hdr, err := tr.Next()
				if err != nil {
					break
				}
				d, _ := dataset.ParseDigest(hdr.Name)
				if miss, err := content.Has(context.Background(), []dataset.Digest{d}); err != nil || len(miss) != 0 {
					t.Fatalf("acknowledged %s is not stored: %v %v", d, miss, err)
				}
			}
		case rec.Code >= 500:
			t.Fatalf("%d %s", rec.Code, rec.Body)
		default:
			var eb api.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error.Code == "" {
				t.Fatalf("error body %q", rec.Body)
			}
		}
	})
}
