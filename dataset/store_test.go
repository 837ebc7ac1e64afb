package dataset

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/registry"
	"github.com/kiln-ml/kiln/store"
	"github.com/kiln-ml/kiln/store/storetest"
	"github.com/kiln-ml/kiln/tracking"
)

func forEachDB(t *testing.T, fn func(t *testing.T, db *store.DB, s *Store)) {
	for name, open := range storetest.TestDatabases(t) {
		t.Run(name, func(t *testing.T) {
			db := open(t)
			fn(t, db, NewStore(db))
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

func manifestOf(files map[string]string) *Manifest {
	var es []Entry
	for p, c := range files {
		es = append(es, entry(p, c))
	}
	m, err := NewManifest(KindDir, es)
	if err != nil {
		panic(err)
	}
	return m
}

func TestDatasets(t *testing.T) {
	forEachDB(t, func(t *testing.T, _ *store.DB, s *Store) {
		ctx := context.Background()
		d := must[*Dataset](t)(s.CreateDataset(ctx, "fraud", "card fraud", map[string]string{"team": "risk"}))
		if d.Name != "fraud" || d.Description != "card fraud" || d.Tags["team"] != "risk" || d.LatestVersion != 0 || d.CreationTime == 0 {
			t.Fatalf("created %+v", d)
		}
		if _, err := s.CreateDataset(ctx, "fraud", "", nil); !errors.Is(err, errdefs.ErrAlreadyExists) {
			t.Fatalf("duplicate: %v", err)
		}
		for _, bad := range []string{"", "a/b", "../x", "-x", ".x", "a b", "a@1", "x\x00", strings.Repeat("n", 251)} {
			if _, err := s.CreateDataset(ctx, bad, "", nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("name %q: %v", bad, err)
			}
		}
		if _, err := s.CreateDataset(ctx, "ok", "", map[string]string{"": "v"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("empty tag key: %v", err)
		}
		if _, err := s.GetDataset(ctx, "nope"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("missing: %v", err)
		}
		must[*Dataset](t)(s.CreateDataset(ctx, "fraud-train", "", nil))
		must[*Dataset](t)(s.CreateDataset(ctx, "images", "", nil))
		must[*Dataset](t)(s.CreateDataset(ctx, "Ünïcode_1", "", nil))

		if err := s.UpdateDataset(ctx, "fraud", "new"); err != nil {
			t.Fatal(err)
		}
		if err := s.SetDatasetTag(ctx, "fraud", "owner", "ana"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteDatasetTag(ctx, "fraud", "team"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteDatasetTag(ctx, "fraud", "team"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("delete missing tag: %v", err)
		}
		if err := s.UpdateDataset(ctx, "nope", ""); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("update missing: %v", err)
		}
		d = must[*Dataset](t)(s.GetDataset(ctx, "fraud"))
		if d.Description != "new" || !reflect.DeepEqual(d.Tags, map[string]string{"owner": "ana"}) {
			t.Fatalf("after update %+v", d)
		}

		// Pages, and the prefix filter.
		var names []string
		token := ""
		for {
			page, next := must2(t)(s.ListDatasets(ctx, ListQuery{MaxResults: 2, PageToken: token}))
			for _, d := range page {
				names = append(names, d.Name)
			}
			if next == "" {
				break
			}
			token = next
		}
		if !reflect.DeepEqual(names, []string{"fraud", "fraud-train", "images", "Ünïcode_1"}) {
			t.Fatalf("pages: %v", names)
		}
		page, _ := must2(t)(s.ListDatasets(ctx, ListQuery{Prefix: "fraud"}))
		if len(page) != 2 || page[0].Tags["owner"] != "ana" {
			t.Fatalf("prefix: %+v", page)
		}
		for _, tc := range []struct {
			contains string
			want     []string
		}{
			{"RAIN", []string{"fraud-train"}}, // a part of a name, any ASCII case
			{"ud", []string{"fraud", "fraud-train"}},
			{"NEW", []string{"fraud"}},    // its description
			{"%", nil},                    // no LIKE wildcards
			{"_1", []string{"Ünïcode_1"}}, // nor '_'
			{"zzz", nil},
		} {
			page, _ := must2(t)(s.ListDatasets(ctx, ListQuery{Contains: tc.contains}))
			var got []string
			for _, d := range page {
				got = append(got, d.Name)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("contains %q: %v, want %v", tc.contains, got, tc.want)
			}
		}
		if _, _, err := s.ListDatasets(ctx, ListQuery{PageToken: "!!"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("bad token: %v", err)
		}
		if err := s.DeleteDataset(ctx, "images"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetDataset(ctx, "images"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("deleted: %v", err)
		}
	})
}

func must2(t *testing.T) func([]*Dataset, string, error) ([]*Dataset, string) {
	return func(d []*Dataset, s string, err error) ([]*Dataset, string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return d, s
	}
}

func TestVersions(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB, s *Store) {
		ctx := context.Background()
		m1 := manifestOf(map[string]string{"a.csv": "1", "b.csv": "22"})
		// The first version creates the dataset.
		v1, created, err := s.CreateVersion(ctx, NewVersion{Dataset: "sales", Manifest: m1, Description: "first", Tags: map[string]string{"q": "1"},
			Source: "s3://bucket/sales", CreatedBy: "ana", Schema: map[string]any{"columns": []string{"a"}}})
		if err != nil || !created {
			t.Fatal(created, err)
		}
		if v1.Version != 1 || v1.Digest != m1.Digest() || v1.Kind != KindDir || v1.FileCount != 2 || v1.TotalSize != 3 ||
			v1.Source != "s3://bucket/sales" || v1.CreatedBy != "ana" || v1.Tags["q"] != "1" || string(v1.Schema) != `{"columns":["a"]}` {
			t.Fatalf("v1 %+v", v1)
		}
		// Same content as the latest: a no-op returning it.
		same, created, err := s.CreateVersion(ctx, NewVersion{Dataset: "sales", Manifest: m1, Description: "again"})
		if err != nil || created || same.Version != 1 || same.Description != "first" {
			t.Fatalf("same digest: %+v %v %v", same, created, err)
		}
		m2 := manifestOf(map[string]string{"a.csv": "1", "b.csv": "23"})
		v2, created, err := s.CreateVersion(ctx, NewVersion{Dataset: "sales", Manifest: m2})
		if err != nil || !created || v2.Version != 2 {
			t.Fatalf("v2 %+v %v", v2, err)
		}
		// Back to the first content: a new version (only the latest counts).
		v3, created, err := s.CreateVersion(ctx, NewVersion{Dataset: "sales", Manifest: m1})
		if err != nil || !created || v3.Version != 3 || v3.Digest != v1.Digest {
			t.Fatalf("v3 %+v %v", v3, err)
		}
		latest := must[*Version](t)(s.GetVersion(ctx, VersionRef{Dataset: "sales"}))
		if latest.Version != 3 {
			t.Fatalf("latest %d", latest.Version)
		}
		if d := must[*Dataset](t)(s.GetDataset(ctx, "sales")); d.LatestVersion != 3 {
			t.Fatalf("dataset latest %d", d.LatestVersion)
		}
		if _, err := s.GetVersion(ctx, VersionRef{Dataset: "sales", Version: 9}); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("missing version: %v", err)
		}
		if _, err := s.GetVersion(ctx, VersionRef{Dataset: "nope", Version: 1}); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("missing dataset: %v", err)
		}
		if _, _, err := s.CreateVersion(ctx, NewVersion{Dataset: "sales", Manifest: &Manifest{Kind: KindDir, Files: []Entry{entry("../x", "x")}}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("unsafe manifest: %v", err)
		}

		// Listing: newest first, in pages.
		var got []int64
		token := ""
		for {
			page, next, err := s.ListVersions(ctx, "sales", ListQuery{MaxResults: 2, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range page {
				got = append(got, v.Version)
				if v.Schema != nil {
					t.Fatal("listing carries the schema")
				}
			}
			if token = next; token == "" {
				break
			}
		}
		if !reflect.DeepEqual(got, []int64{3, 2, 1}) {
			t.Fatalf("versions %v", got)
		}
		found := must[[]*Version](t)(s.FindVersions(ctx, m1.Digest().String()[:12]))
		if len(found) != 2 || found[0].Digest != m1.Digest() {
			t.Fatalf("find by digest: %+v", found)
		}
		if _, err := s.FindVersions(ctx, "abc"); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("short prefix: %v", err)
		}

		// Editable: description, tags, schema, profile.
		ref := VersionRef{Dataset: "sales", Version: 1}
		if err := s.UpdateVersion(ctx, ref, "edited"); err != nil {
			t.Fatal(err)
		}
		if err := s.SetVersionTag(ctx, ref, "stage", "gold"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteVersionTag(ctx, ref, "q"); err != nil {
			t.Fatal(err)
		}
		if err := s.SetVersionProfile(ctx, ref, json.RawMessage(`{"rows":2}`)); err != nil {
			t.Fatal(err)
		}
		v := must[*Version](t)(s.GetVersion(ctx, ref))
		if v.Description != "edited" || !reflect.DeepEqual(v.Tags, map[string]string{"stage": "gold"}) || string(v.Profile) != `{"rows":2}` ||
			v.Digest != m1.Digest() || v.FileCount != 2 {
			t.Fatalf("after edits %+v", v)
		}
	})
}

// TestVersionsImmutable: the database itself refuses to change a version's
// content.
func TestVersionsImmutable(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB, s *Store) {
		ctx := context.Background()
		m := manifestOf(map[string]string{"a": "a"})
		must[*Version](t)(first(s.CreateVersion(ctx, NewVersion{Dataset: "frozen", Manifest: m})))
		other := manifestOf(map[string]string{"a": "b"}).Digest().String()
		for col, val := range map[string]any{"digest": other, "total_size": 99, "file_count": 7, "kind": "file", "source": "x", "version": 5} {
			_, err := db.W.ExecContext(ctx, db.Rebind(`UPDATE data_versions SET `+col+` = ?`), val)
			if err == nil || !strings.Contains(err.Error(), "immutable") {
				t.Errorf("update of %s: %v", col, err)
			}
		}
		v := must[*Version](t)(s.GetVersion(ctx, VersionRef{Dataset: "frozen", Version: 1}))
		if v.Digest != m.Digest() || v.TotalSize != 1 {
			t.Fatalf("content changed: %+v", v)
		}
		// The editable fields stay editable.
		if err := s.UpdateVersion(ctx, VersionRef{Dataset: "frozen", Version: 1}, "ok"); err != nil {
			t.Fatal(err)
		}
	})
}

func first[A, B any](a A, _ B, err error) (A, error) { return a, err }

func TestConcurrentVersions(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB, s *Store) {
		ctx := context.Background()
		const n = 12
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m := manifestOf(map[string]string{"f": fmt.Sprint(i)})
				_, _, errs[i] = s.CreateVersion(ctx, NewVersion{Dataset: "busy", Manifest: m})
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		vs, _, err := s.ListVersions(ctx, "busy", ListQuery{})
		if err != nil || len(vs) != n || vs[0].Version != n || vs[n-1].Version != 1 {
			t.Fatalf("%d versions, %v", len(vs), err)
		}
	})
}

func TestSplitParentsAndDelete(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB, s *Store) {
		ctx := context.Background()
		src := must[*Version](t)(first(s.CreateVersion(ctx, NewVersion{Dataset: "all", Manifest: manifestOf(map[string]string{"t.csv": "rows"})})))
		spec := SplitSpec{Method: SplitRandom, Seed: 7, Parts: []SplitPart{{"train", 0.8}, {"test", 0.2}}}
		ch := must[*Version](t)(first(s.CreateVersion(ctx, NewVersion{Dataset: "all-train", Manifest: manifestOf(map[string]string{"t.csv": "r"}),
			Parent: &VersionRef{Dataset: "all"}, SplitSpec: spec})))
		if ch.Parent == nil || *ch.Parent != src.Ref() {
			t.Fatalf("parent %+v", ch.Parent)
		}
		var back SplitSpec
		if err := json.Unmarshal(ch.SplitSpec, &back); err != nil || !reflect.DeepEqual(back, spec) {
			t.Fatalf("split spec %s %v", ch.SplitSpec, err)
		}
		kids := must[[]*Version](t)(s.Children(ctx, src.Ref()))
		if len(kids) != 1 || kids[0].Dataset != "all-train" {
			t.Fatalf("children %+v", kids)
		}
		if _, _, err := s.CreateVersion(ctx, NewVersion{Dataset: "x", Manifest: manifestOf(map[string]string{"a": "a"}), Parent: &VersionRef{Dataset: "all", Version: 5}}); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("missing parent: %v", err)
		}
		if err := s.DeleteDataset(ctx, "all"); !errors.Is(err, errdefs.ErrInvalidState) {
			t.Fatalf("deleting a parent: %v", err)
		}
		if err := s.DeleteDataset(ctx, "all-train"); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteDataset(ctx, "all"); err != nil {
			t.Fatal(err)
		}
	})
}

// A list of versions carries each version's row count and latest
// validation (without the report), read for the whole page at once.
func TestListVersionsSummaries(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB, s *Store) {
		ctx := context.Background()
		for i := range 4 {
			m := manifestOf(map[string]string{"a.csv": strings.Repeat("x", i+1)})
			must[*Version](t)(first(s.CreateVersion(ctx, NewVersion{Dataset: "sum", Manifest: m})))
		}
		// v1: profiled, validated twice (failed, then passed); v2: profiled
		// without rows; v3: validated once; v4: nothing.
		if err := s.SetVersionProfile(ctx, VersionRef{Dataset: "sum", Version: 1}, json.RawMessage(`{"rows":12345678901,"columns":[]}`)); err != nil {
			t.Fatal(err)
		}
		if err := s.SetVersionProfile(ctx, VersionRef{Dataset: "sum", Version: 2}, json.RawMessage(`{"columns":[]}`)); err != nil {
			t.Fatal(err)
		}
		must[*ValidationResult](t)(s.AddValidationResult(ctx, VersionRef{Dataset: "sum", Version: 1}, "first", false, nil))
		last := must[*ValidationResult](t)(s.AddValidationResult(ctx, VersionRef{Dataset: "sum", Version: 1}, "second", true, map[string]any{"x": 1}))
		v3 := must[*ValidationResult](t)(s.AddValidationResult(ctx, VersionRef{Dataset: "sum", Version: 3}, "only", false, nil))
		var got []*Version
		for token := ""; ; {
			page, next, err := s.ListVersions(ctx, "sum", ListQuery{MaxResults: 3, PageToken: token})
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, page...)
			if token = next; token == "" {
				break
			}
		}
		if len(got) != 4 {
			t.Fatalf("%d versions", len(got))
		}
		byV := map[int64]*Version{}
		for _, v := range got {
			byV[v.Version] = v
		}
		if r := byV[1].Rows; r == nil || *r != 12345678901 {
			t.Errorf("v1 rows %v", r)
		}
		if byV[2].Rows != nil || byV[3].Rows != nil || byV[4].Rows != nil {
			t.Errorf("rows of versions without them: %v %v %v", byV[2].Rows, byV[3].Rows, byV[4].Rows)
		}
		if lv := byV[1].LatestValidation; lv == nil || lv.ID != last.ID || lv.Suite != "second" || !lv.Passed || lv.CreationTime != last.CreationTime {
			t.Errorf("v1 latest validation %+v", lv)
		}
		if lv := byV[3].LatestValidation; lv == nil || lv.ID != v3.ID || lv.Passed {
			t.Errorf("v3 latest validation %+v", lv)
		}
		if byV[2].LatestValidation != nil || byV[4].LatestValidation != nil {
			t.Errorf("validations of versions without any")
		}
	})
}

func TestValidationsAndLineage(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB, s *Store) {
		ctx := context.Background()
		m := manifestOf(map[string]string{"a.csv": "a"})
		v := must[*Version](t)(first(s.CreateVersion(ctx, NewVersion{Dataset: "churn", Manifest: m})))
		ref := v.Ref()

		r1 := must[*ValidationResult](t)(s.AddValidationResult(ctx, ref, "basic", false, map[string]any{"failed": []string{"not_null(a)"}}))
		must[*ValidationResult](t)(s.AddValidationResult(ctx, VersionRef{Dataset: "churn"}, "basic", true, nil))
		rs := must[[]*ValidationResult](t)(s.ListValidationResults(ctx, ref))
		if len(rs) != 2 || rs[0].ID != r1.ID || rs[0].Passed || !rs[1].Passed || string(rs[0].Report) != `{"failed":["not_null(a)"]}` || string(rs[1].Report) != `{}` {
			t.Fatalf("validations %+v", rs)
		}
		if _, err := s.AddValidationResult(ctx, ref, "", true, nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("no suite: %v", err)
		}

		tr := tracking.New(db, tracking.Options{})
		run := must[*tracking.Run](t)(tr.CreateRun(ctx, tracking.CreateRunInput{}))
		runID := run.Info.RunID
		link := RunLink{Version: ref, RunID: runID, MLflowName: "churn", MLflowDigest: m.Digest().String()[:36], MLflowSource: "kiln", Context: "training"}
		if err := s.LinkRun(ctx, link); err != nil {
			t.Fatal(err)
		}
		link.Context = "eval"
		if err := s.LinkRun(ctx, link); err != nil { // again: replaces
			t.Fatal(err)
		}
		if err := s.LinkRun(ctx, RunLink{Version: ref, RunID: "0123456789abcdef0123456789abcdef"}); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("missing run: %v", err)
		}
		runs := must[[]RunLink](t)(s.RunsOfVersion(ctx, ref))
		if len(runs) != 1 || runs[0].RunID != runID || runs[0].Context != "eval" || runs[0].MLflowDigest != link.MLflowDigest {
			t.Fatalf("runs %+v", runs)
		}
		vs := must[[]RunLink](t)(s.VersionsOfRun(ctx, runID))
		if len(vs) != 1 || vs[0].Version != ref {
			t.Fatalf("versions of run %+v", vs)
		}
		got := must[*Version](t)(s.ResolveMLflowInput(ctx, "churn", link.MLflowDigest))
		if got.Ref() != ref {
			t.Fatalf("resolve %+v", got)
		}
		if _, err := s.ResolveMLflowInput(ctx, "churn", "8c9d1e2f"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("resolve unknown: %v", err)
		}
		if _, err := s.ResolveMLflowInput(ctx, "churn", "x"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("resolve non-hex: %v", err)
		}

		reg := registry.New(db, nil)
		if _, err := reg.CreateRegisteredModel(ctx, "churn-model", "", nil); err != nil {
			t.Fatal(err)
		}
		mv, err := reg.CreateModelVersion(ctx, registry.CreateModelVersionInput{Name: "churn-model", Source: "s3://bucket/model", RunID: runID})
		if err != nil {
			t.Fatal(err)
		}
		mvn := mv.Version
		if err := s.LinkModelVersion(ctx, ref, "churn-model", mvn); err != nil {
			t.Fatal(err)
		}
		if err := s.LinkModelVersion(ctx, ref, "churn-model", mvn+5); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("missing model version: %v", err)
		}
		ml := must[[]ModelLink](t)(s.ModelVersionsOfVersion(ctx, ref))
		if len(ml) != 1 || ml[0].ModelName != "churn-model" || ml[0].ModelVersion != mvn {
			t.Fatalf("model links %+v", ml)
		}
		back := must[[]ModelLink](t)(s.VersionsOfModelVersion(ctx, "churn-model", mvn))
		if len(back) != 1 || back[0].Version != ref {
			t.Fatalf("versions of model %+v", back)
		}
		// A renamed model keeps its lineage.
		if _, err := reg.RenameRegisteredModel(ctx, "churn-model", "churn-v2"); err != nil {
			t.Fatal(err)
		}
		if back := must[[]ModelLink](t)(s.VersionsOfModelVersion(ctx, "churn-v2", mvn)); len(back) != 1 {
			t.Fatalf("after rename %+v", back)
		}
	})
}

func TestParseVersionRef(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want VersionRef
		ok   bool
	}{
		{"sales", VersionRef{"sales", 0}, true},
		{"sales@latest", VersionRef{"sales", 0}, true},
		{"sales@3", VersionRef{"sales", 3}, true},
		{"sales@v12", VersionRef{"sales", 12}, true},
		{"sales@0", VersionRef{}, false},
		{"sales@-1", VersionRef{}, false},
		{"sales@+1", VersionRef{}, false},
		{"sales@", VersionRef{}, false},
		{"sales@x", VersionRef{}, false},
		{"@3", VersionRef{}, false},
		{"a/b@3", VersionRef{}, false},
	} {
		got, err := ParseVersionRef(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseVersionRef(%q) = %+v, %v", tc.in, got, err)
		}
	}
	if s := (VersionRef{"a", 2}).String(); s != "a@2" {
		t.Fatal(s)
	}
}

func FuzzParseVersionRef(f *testing.F) {
	for _, s := range []string{"sales", "sales@3", "sales@v3", "sales@latest", "a@b@c", "@", "x@99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, err := ParseVersionRef(s)
		if err != nil {
			return
		}
		if ValidateName(ref.Dataset) != nil || ref.Version < 0 {
			t.Fatalf("accepted %q as %+v", s, ref)
		}
		back, err := ParseVersionRef(ref.String())
		if err != nil || back != ref {
			t.Fatalf("round trip of %q: %+v %v", s, back, err)
		}
	})
}
