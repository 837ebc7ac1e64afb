package score

import (
	"strings"
	"testing"
)

// FuzzParseInput: any text parses into an input reference or is refused;
// an accepted reference renders to a form that parses to the same thing,
// and a dataset path never climbs out of the version.
func FuzzParseInput(f *testing.F) {
	for _, s := range []string{
		"sales@3", "sales@latest/part-0.parquet", "kiln://datasets/sales@v2/a/b.csv", "mlflow-artifacts:/in/x.csv",
		"mlflow-artifacts://host/in", "s3://bucket/prefix/", "sales", "@3", "sales@3/../x", "sales@0", "x@3/\x00", "a://b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseInput(s)
		if err != nil {
			return
		}
		again, err := ParseInput(r.String())
		if err != nil || again != r {
			t.Fatalf("%q -> %+v -> %q -> %+v, %v", s, r, r.String(), again, err)
		}
		if r.Kind == InputDataset && (strings.HasPrefix(r.Path, "/") || strings.Contains("/"+r.Path+"/", "/../")) {
			t.Fatalf("%q: path %q escapes the version", s, r.Path)
		}
	})
}
