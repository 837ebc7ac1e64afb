package explain_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/explain"
	"github.com/kiln-ml/kiln/registry"
	"github.com/kiln-ml/kiln/store/storetest"
)

func TestImportanceOf(t *testing.T) {
	// 2 rows × 3 features × 2 outputs.
	e := &explain.Explanation{
		Method:       explain.MethodKernel,
		FeatureNames: []string{"a", "b", "c"},
		OutputNames:  []string{"no", "yes"},
		Expected:     []float64{0.5, 0.5},
		Rows:         2,
		Values: []float64{
			0.1, -0.1, 0.3, -0.3, 0, 0,
			-0.1, 0.1, 0.1, -0.1, 0.2, -0.4,
		},
	}
	imp := explain.ImportanceOf(e)
	want := []explain.FeatureImportance{
		{Name: "b", Value: 0.4, PerOutput: []float64{0.2, 0.2}},
		{Name: "c", Value: 0.3, PerOutput: []float64{0.1, 0.2}},
		{Name: "a", Value: 0.2, PerOutput: []float64{0.1, 0.1}},
	}
	if imp.Rows != 2 || imp.Method != explain.MethodKernel || len(imp.Features) != 3 {
		t.Fatalf("importance %+v", imp)
	}
	for i, w := range want {
		g := imp.Features[i]
		if g.Name != w.Name || math.Abs(g.Value-w.Value) > 1e-12 || math.Abs(g.PerOutput[0]-w.PerOutput[0]) > 1e-12 || math.Abs(g.PerOutput[1]-w.PerOutput[1]) > 1e-12 {
			t.Errorf("feature %d: %+v, want %+v", i, g, w)
		}
	}
}

func TestImportanceTag(t *testing.T) {
	for _, tc := range []struct {
		name     string
		features int
		nameLen  int
		wantKept int
	}{
		{"few", 3, 4, 3},
		{"top 50 of 80", 80, 6, 50},
		{"long names", 60, 200, -1}, // as many as fit
	} {
		t.Run(tc.name, func(t *testing.T) {
			imp := explain.Importance{Method: explain.MethodTreePathDependent, Rows: 100}
			for i := range tc.features {
				name := fmt.Sprintf("%0*d", tc.nameLen, i)
				imp.Features = append(imp.Features, explain.FeatureImportance{Name: name, Value: 1 / float64(i+1)})
			}
			v, err := imp.TagValue()
			if err != nil {
				t.Fatal(err)
			}
			if len(v) > 5000 {
				t.Fatalf("tag of %d characters, over MLflow's 5000", len(v))
			}
			back, err := explain.ParseImportanceTag(v)
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantKept >= 0 && len(back.Features) != tc.wantKept {
				t.Errorf("kept %d features, want %d", len(back.Features), tc.wantKept)
			}
			if tc.wantKept < 0 && (len(back.Features) < 10 || len(back.Features) >= tc.features) {
				t.Errorf("kept %d features of %d with long names", len(back.Features), tc.features)
			}
			if back.Method != imp.Method || back.Rows != imp.Rows {
				t.Errorf("parsed %+v", back)
			}
			for i, f := range back.Features {
				w := imp.Features[i]
				if f.Name != w.Name || math.Abs(f.Value-w.Value) > 1e-5*w.Value {
					t.Fatalf("feature %d: %+v, want %+v", i, f, w)
				}
			}
		})
	}
	if _, err := explain.ParseImportanceTag(`{"features": [["a"]]}`); err == nil {
		t.Error("ParseImportanceTag of a bad pair: no error")
	}
}

// noSources stands in for the tracking store; versions from plain URIs
// need none of it.
type noSources struct{}

func (noSources) LoggedModelLocation(context.Context, string) (string, string, error) {
	return "", "", errdefs.NotFound("no logged models")
}
func (noSources) RunArtifactURI(context.Context, string) (string, error) {
	return "", errdefs.NotFound("no runs")
}
func (noSources) SetLoggedModelTag(context.Context, string, string, string) error { return nil }

func TestStoreImportance(t *testing.T) {
	ctx := context.Background()
	imp := explain.Importance{Method: explain.MethodTreePathDependent, Rows: 10, Features: []explain.FeatureImportance{{Name: "x", Value: 0.25}, {Name: "y", Value: 0.125}}}
	for name, open := range storetest.TestDatabases(t) {
		t.Run(name, func(t *testing.T) {
			reg := registry.New(open(t), noSources{})
			if _, err := reg.CreateRegisteredModel(ctx, "churn", "", nil); err != nil {
				t.Fatal(err)
			}
			if _, err := reg.CreateModelVersion(ctx, registry.CreateModelVersionInput{Name: "churn", Source: "s3://bucket/churn/1"}); err != nil {
				t.Fatal(err)
			}
			if err := explain.StoreImportance(ctx, reg, "churn", 1, imp); err != nil {
				t.Fatal(err)
			}
			v, err := reg.GetModelVersion(ctx, "churn", 1)
			if err != nil {
				t.Fatal(err)
			}
			var tag string
			for _, kv := range v.Tags {
				if kv.Key == explain.ImportanceTag {
					tag = kv.Value
				}
			}
			back, err := explain.ParseImportanceTag(tag)
			if err != nil {
				t.Fatalf("tag %q: %v", tag, err)
			}
			if len(back.Features) != 2 || back.Features[0].Name != "x" || back.Features[1].Value != 0.125 {
				t.Errorf("stored %+v", back)
			}
			err = explain.StoreImportance(ctx, reg, "churn", 7, imp)
			if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "churn version 7") {
				t.Errorf("storing on a missing version: %v", err)
			}
		})
	}
}
