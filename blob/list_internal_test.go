package blob

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// listDir, the fallback for a folder whose files vanish mid-listing, lists
// a quiet folder exactly as fileblob does.
func TestListDirMatchesFileblob(t *testing.T) {
	b, err := Open(context.Background(), "file://"+t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	for _, k := range []string{"d/a-b", "d/a/x", "d/a.txt", "d/b.parquet", "d/deep/er/f", "d/z", "top"} {
		if _, err := b.Put(ctx, k, strings.NewReader(k), ""); err != nil {
			t.Fatal(err)
		}
	}
	// An empty folder and an in-flight upload's temporary file are not listed.
	os.MkdirAll(filepath.Join(b.dir, "d", "empty", "inner"), 0o755)
	os.WriteFile(filepath.Join(b.dir, "d", "c.123456.tmp"), nil, 0o644)
	for _, dir := range []string{"", "d", "d/deep", "missing"} {
		want, err := b.list(ctx, dir, map[bool]string{true: "", false: dir + "/"}[dir == ""])
		if err != nil {
			t.Fatal(err)
		}
		got, ok, err := b.listDir(dir, map[bool]string{true: "", false: dir + "/"}[dir == ""])
		if !ok || err != nil {
			t.Fatalf("%q: ok=%v err=%v", dir, ok, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%q:\n listDir  %+v\n fileblob %+v", dir, got, want)
		}
	}
}
