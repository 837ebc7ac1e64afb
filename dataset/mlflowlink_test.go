package dataset

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/registry"
	"github.com/kiln-ml/kiln/store"
	"github.com/kiln-ml/kiln/tracking"
)

func TestParseSourceRef(t *testing.T) {
	for _, tc := range []struct {
		source string
		want   VersionRef
		ok     bool
	}{
		{"kiln://datasets/sales@3", VersionRef{"sales", 3}, true},
		{"kiln://datasets/sales@v3", VersionRef{"sales", 3}, true},
		{"kiln://datasets/sales", VersionRef{"sales", 0}, true},
		{"kiln://datasets/sales@latest", VersionRef{"sales", 0}, true},
		{"KILN://datasets/sales@3", VersionRef{"sales", 3}, true},
		{`{"uri": "kiln://datasets/sales@3"}`, VersionRef{"sales", 3}, true},
		{`{"url": "http://kiln:5000/api/v1/datasets/sales/versions/7"}`, VersionRef{"sales", 7}, true},
		{"https://kiln.example.com/prefix/api/v1/datasets/sales-train/versions/latest/", VersionRef{"sales-train", 0}, true},
		{`{"path": "kiln://datasets/a.b@12"}`, VersionRef{"a.b", 12}, true},
		{"kiln://datasets/sales@0", VersionRef{}, false},
		{"kiln://datasets/sales@x", VersionRef{}, false},
		{"kiln://models/sales@3", VersionRef{}, false},
		{"kiln://datasets/sales@3?x=1", VersionRef{}, false},
		{"kiln://datasets/../etc@3", VersionRef{}, false},
		{"kiln://datasets/", VersionRef{}, false},
		{"http://host/api/v1/datasets/sales", VersionRef{}, false},
		{"http://host/api/v1/datasets/sales/versions/3/profile", VersionRef{}, false},
		{"s3://bucket/sales.csv", VersionRef{}, false},
		{"/data/sales.csv", VersionRef{}, false},
		{`{"uri": 3}`, VersionRef{}, false},
		{`{"uri": "s3://bucket/x"`, VersionRef{}, false},
		{"", VersionRef{}, false},
	} {
		got, ok := ParseSourceRef(tc.source)
		if ok != tc.ok || got != tc.want {
			t.Errorf("ParseSourceRef(%q) = %v, %v; want %v, %v", tc.source, got, ok, tc.want, tc.ok)
		}
	}
	if got := (VersionRef{"sales", 3}).URI(); got != "kiln://datasets/sales@3" {
		t.Errorf("URI = %q", got)
	}
	if ref, ok := ParseSourceRef(VersionRef{"x", 2}.URI()); !ok || ref != (VersionRef{"x", 2}) {
		t.Errorf("URI round trip: %v %v", ref, ok)
	}
}

func FuzzParseSourceRef(f *testing.F) {
	for _, s := range []string{"kiln://datasets/sales@3", `{"url": "http://h/api/v1/datasets/a/versions/1"}`, "", "{", "kiln://datasets/@"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ref, ok := ParseSourceRef(s)
		if !ok {
			return
		}
		if err := ValidateName(ref.Dataset); err != nil || ref.Version < 0 {
			t.Fatalf("ParseSourceRef(%q) = %v: not a valid reference", s, ref)
		}
	})
}

func TestLinkMLflowInputs(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB, s *Store) {
		ctx := context.Background()
		sales := must[*Version](t)(first(s.CreateVersion(ctx, NewVersion{Dataset: "sales", Manifest: manifestOf(map[string]string{"a.csv": "a"})})))
		sales2 := must[*Version](t)(first(s.CreateVersion(ctx, NewVersion{Dataset: "sales", Manifest: manifestOf(map[string]string{"a.csv": "b"})})))
		// Same content in another dataset: a digest names both.
		copy := must[*Version](t)(first(s.CreateVersion(ctx, NewVersion{Dataset: "copy", Manifest: manifestOf(map[string]string{"a.csv": "a"})})))
		d := sales.Digest.String()

		for _, tc := range []struct {
			name string
			in   MLflowInput
			want *VersionRef
		}{
			{"source names the version", MLflowInput{Name: "whatever", Digest: "1a2b3c4d", Source: `{"url": "http://kiln/api/v1/datasets/sales/versions/1"}`}, &VersionRef{"sales", 1}},
			{"source names latest", MLflowInput{Source: "kiln://datasets/sales"}, &VersionRef{"sales", 2}},
			{"source wins over digest", MLflowInput{Name: "copy", Digest: d, Source: "kiln://datasets/sales@2"}, &VersionRef{"sales", 2}},
			{"source names a missing version", MLflowInput{Source: "kiln://datasets/sales@9"}, nil},
			{"long digest, no name", MLflowInput{Name: "df", Digest: d[:16]}, &VersionRef{copy.Dataset, copy.Version}},
			{"long digest prefers the name", MLflowInput{Name: "sales", Digest: d[:36]}, &VersionRef{"sales", 1}},
			{"short digest with the name", MLflowInput{Name: "copy", Digest: d[:8]}, &VersionRef{"copy", 1}},
			{"short digest without the name", MLflowInput{Name: "df", Digest: d[:8]}, nil},
			{"full digest", MLflowInput{Name: "sales", Digest: sales2.Digest.String()}, &VersionRef{"sales", 2}},
			{"upper-case digest", MLflowInput{Name: "sales", Digest: strings.ToUpper(d[:16])}, nil},
			{"too short", MLflowInput{Name: "sales", Digest: d[:7]}, nil},
			{"unknown digest", MLflowInput{Name: "sales", Digest: "0000000000000000"}, nil},
			{"not hex", MLflowInput{Name: "sales", Digest: "pandas-digest"}, nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				v, err := s.MatchMLflowInput(ctx, tc.in)
				if tc.want == nil {
					if !errors.Is(err, errdefs.ErrNotFound) {
						t.Fatalf("got %v, %v; want not found", v, err)
					}
					return
				}
				if err != nil || v.Ref() != *tc.want {
					t.Fatalf("got %v, %v; want %v", v, err, *tc.want)
				}
			})
		}

		tr := tracking.New(db, tracking.Options{})
		run := must[*tracking.Run](t)(tr.CreateRun(ctx, tracking.CreateRunInput{}))
		links, err := s.LinkMLflowInputs(ctx, run.Info.RunID, []MLflowInput{
			{Name: "sales", Digest: d[:12], Source: `{"uri": "s3://b/sales.csv"}`, Context: "training"},
			{Name: "df", Digest: "deadbeef"}, // not a Kiln version: skipped
			{Name: "eval", Source: "kiln://datasets/sales@2", Context: "eval"},
		})
		if err != nil || len(links) != 2 {
			t.Fatalf("links %+v %v", links, err)
		}
		got := must[[]RunLink](t)(s.VersionsOfRun(ctx, run.Info.RunID))
		if len(got) != 2 || got[0].Version != (VersionRef{"sales", 1}) || got[0].Context != "training" || got[0].MLflowDigest != d[:12] || got[1].Version != (VersionRef{"sales", 2}) {
			t.Fatalf("versions of run %+v", got)
		}
		if _, err := s.LinkMLflowInputs(ctx, "0123456789abcdef0123456789abcdef", []MLflowInput{{Source: "kiln://datasets/sales@1"}}); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("unknown run: %v", err)
		}

		// Model versions: through the run (its run_id, or its logged
		// model's source run) and by explicit link; deleted ones drop out.
		reg := registry.New(db, tr)
		must[*registry.RegisteredModel](t)(reg.CreateRegisteredModel(ctx, "m", "", nil))
		must[*registry.ModelVersion](t)(reg.CreateModelVersion(ctx, registry.CreateModelVersionInput{Name: "m", Source: "runs:/" + run.Info.RunID + "/model", RunID: run.Info.RunID}))
		lm := must[*tracking.LoggedModel](t)(tr.CreateLoggedModel(ctx, tracking.CreateLoggedModelInput{ExperimentID: run.Info.ExperimentID, SourceRunID: run.Info.RunID}))
		must[*registry.ModelVersion](t)(reg.CreateModelVersion(ctx, registry.CreateModelVersionInput{Name: "m", Source: "models:/" + lm.ID, ModelID: lm.ID}))
		must[*registry.ModelVersion](t)(reg.CreateModelVersion(ctx, registry.CreateModelVersionInput{Name: "m", Source: "s3://b/m"}))
		if err := s.LinkModelVersion(ctx, VersionRef{"sales", 1}, "m", 3); err != nil {
			t.Fatal(err)
		}
		uses := must[[]ModelUse](t)(s.ModelsOfVersion(ctx, VersionRef{"sales", 1}))
		want := []ModelUse{{"m", 1, "run", run.Info.RunID}, {"m", 2, "run", run.Info.RunID}, {"m", 3, "link", ""}}
		if len(uses) != len(want) {
			t.Fatalf("models of version %+v", uses)
		}
		for i := range want {
			if uses[i] != want[i] {
				t.Fatalf("models of version %+v, want %+v", uses, want)
			}
		}
		back := must[[]VersionUse](t)(s.VersionsOfModel(ctx, "m", 1))
		if len(back) != 2 || back[0].Version != (VersionRef{"sales", 1}) || back[0].Via != "run" || back[1].Version != (VersionRef{"sales", 2}) {
			t.Fatalf("versions of model %+v", back)
		}
		if back := must[[]VersionUse](t)(s.VersionsOfModel(ctx, "m", 3)); len(back) != 1 || back[0].Via != "link" {
			t.Fatalf("versions of linked model %+v", back)
		}
		if err := reg.DeleteModelVersion(ctx, "m", 1); err != nil {
			t.Fatal(err)
		}
		if uses := must[[]ModelUse](t)(s.ModelsOfVersion(ctx, VersionRef{"sales", 1})); len(uses) != 2 || uses[0].ModelVersion != 2 {
			t.Fatalf("after delete %+v", uses)
		}
		if _, err := s.VersionsOfModel(ctx, "m", 1); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("deleted model version: %v", err)
		}
	})
}
