package pipeline

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/kiln-ml/kiln/blob"
)

// TestBucketStager stores a file and a folder under mlflow-artifacts:/ URIs
// and fetches them back; URIs it cannot stage are refused.
func TestBucketStager(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b, err := blob.Open(ctx, "file://"+filepath.Join(dir, "bucket"), blob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	st := NewBucketStager(b, nil, nil, nil)
	src := filepath.Join(dir, "src")
	os.MkdirAll(filepath.Join(src, "sub"), 0o755)
	os.WriteFile(filepath.Join(src, "a.txt"), []byte("alpha"), 0o644)
	os.WriteFile(filepath.Join(src, "sub", "b.txt"), []byte("beta"), 0o644)
	if err := st.Store(ctx, src, "mlflow-artifacts:/pipelines/p/r/s/1/outputs/model"); err != nil {
		t.Fatal(err)
	}
	if err := st.Store(ctx, filepath.Join(src, "a.txt"), "mlflow-artifacts:/pipelines/p/r/s/1/outputs/one"); err != nil {
		t.Fatal(err)
	}
	got := filepath.Join(dir, "got")
	if err := st.Fetch(ctx, "mlflow-artifacts:/pipelines/p/r/s/1/outputs/model", got); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{"a.txt": "alpha", "sub/b.txt": "beta"} {
		if b, err := os.ReadFile(filepath.Join(got, file)); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", file, b, err, want)
		}
	}
	one := filepath.Join(dir, "one")
	if err := st.Fetch(ctx, "mlflow-artifacts:/pipelines/p/r/s/1/outputs/one", one); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(one); string(b) != "alpha" {
		t.Errorf("single file = %q", b)
	}
	for _, uri := range []string{"mlflow-artifacts:/nothing/here", "s3://elsewhere/x", "mlflow-artifacts:/../escape"} {
		if err := st.Fetch(ctx, uri, filepath.Join(dir, "x")); err == nil {
			t.Errorf("Fetch(%q) succeeded", uri)
		}
	}
}
