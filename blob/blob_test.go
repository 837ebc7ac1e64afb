package blob_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/blob/blobtest"
	"github.com/kiln-ml/kiln/errdefs"
)

func buckets(t *testing.T) map[string]func(t *testing.T) *blob.Bucket {
	return map[string]func(t *testing.T) *blob.Bucket{
		"file": func(t *testing.T) *blob.Bucket {
			b, err := blob.Open(context.Background(), "file://"+t.TempDir(), blob.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			return b
		},
		"s3": func(t *testing.T) *blob.Bucket {
			url, opts := blobtest.S3(t)
			b, err := blob.Open(context.Background(), url, opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			return b
		},
	}
}

func TestRoundTripListDelete(t *testing.T) {
	for name, open := range buckets(t) {
		t.Run(name, func(t *testing.T) {
			b := open(t)
			ctx := context.Background()
			files := map[string]string{
				"0/run/artifacts/README.md":        "hello",
				"0/run/artifacts/model/MLmodel":    "flavors: {}",
				"0/run/artifacts/model/data/w.bin": "\x00\x01\x02",
				"0/run/artifacts/plots/loss.csv":   "step,loss\n",
				"0/other/artifacts/unrelated.txt":  "x",
			}
			for k, v := range files {
				n, err := b.Put(ctx, k, strings.NewReader(v), "")
				if err != nil || n != int64(len(v)) {
					t.Fatalf("put %s: %d %v", k, n, err)
				}
			}
			for k, v := range files {
				obj, err := b.Get(ctx, k)
				if err != nil {
					t.Fatalf("get %s: %v", k, err)
				}
				got, _ := io.ReadAll(obj)
				obj.Close()
				if string(got) != v || obj.Size != int64(len(v)) {
					t.Fatalf("get %s = %q (size %d), want %q", k, got, obj.Size, v)
				}
			}
			list, err := b.List(ctx, "0/run/artifacts")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range list {
				got = append(got, e.Name+map[bool]string{true: "/", false: ""}[e.IsDir])
			}
			if want := []string{"README.md", "model/", "plots/"}; !reflect.DeepEqual(got, want) {
				t.Fatalf("list = %v, want %v", got, want)
			}
			if err := b.Delete(ctx, "0/run/artifacts/model"); err != nil {
				t.Fatalf("delete dir: %v", err)
			}
			if ok, _ := b.Exists(ctx, "0/run/artifacts/model/MLmodel"); ok {
				t.Fatal("deleted directory still has files")
			}
			if ok, _ := b.Exists(ctx, "0/run/artifacts/README.md"); !ok {
				t.Fatal("delete removed a sibling")
			}
			if _, err := b.Get(ctx, "0/run/artifacts/nope"); !errors.Is(err, errdefs.ErrNotFound) {
				t.Fatalf("missing object: %v", err)
			}
			if err := b.Delete(ctx, "0/nothing-here"); !errors.Is(err, errdefs.ErrNotFound) {
				t.Fatalf("delete missing: %v", err)
			}
		})
	}
}

// TestStreamsLargeObject writes and reads 200 MB through a reader that
// generates the bytes, and checks that the heap never held the object.
func TestStreamsLargeObject(t *testing.T) {
	if testing.Short() {
		t.Skip("large object")
	}
	const size = 200 << 20
	for name, open := range buckets(t) {
		t.Run(name, func(t *testing.T) {
			b := open(t)
			ctx := context.Background()
			var before runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			src := &patternReader{n: size}
			n, err := b.Put(ctx, "big/object.bin", src, "application/octet-stream")
			if err != nil || n != size {
				t.Fatalf("put: %d %v", n, err)
			}
			obj, err := b.Get(ctx, "big/object.bin")
			if err != nil {
				t.Fatal(err)
			}
			h := sha256.New()
			if _, err := io.Copy(h, obj); err != nil {
				t.Fatal(err)
			}
			obj.Close()
			want := sha256.New()
			io.Copy(want, &patternReader{n: size})
			if !bytes.Equal(h.Sum(nil), want.Sum(nil)) {
				t.Fatal("content differs after round trip")
			}
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 64<<20 {
				t.Fatalf("heap grew by %d MB for a %d MB object: not streaming", grew>>20, size>>20)
			}
		})
	}
}

type patternReader struct{ n, off int }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	k := min(len(b), p.n-p.off)
	for i := 0; i < k; i++ {
		b[i] = byte((p.off + i) * 31 >> 3)
	}
	p.off += k
	return k, nil
}

func TestFileStoreIsPlain(t *testing.T) {
	dir := t.TempDir()
	b, err := blob.Open(context.Background(), "file://"+dir, blob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Put(context.Background(), "a/b.txt", strings.NewReader("x"), "text/plain"); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "a"))
	if len(entries) != 1 || entries[0].Name() != "b.txt" {
		t.Fatalf("folder holds %v, want only b.txt (no sidecars or temp files)", entries)
	}
}

func TestCleanKey(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"0/run/artifacts/x.txt", "0/run/artifacts/x.txt", true},
		{"a//b/./c", "a/b/c", true},
		{"", "", true},
		{"/", "", true},
		{"../etc/passwd", "", false},
		{"a/../../b", "", false},
		{"a/..", "", false},
		{"/etc/passwd", "", false},
		{"a\x00b", "", false},
		{`a\..\b`, "", false},
		{"a/..b/c", "a/..b/c", true},
	}
	for _, tt := range tests {
		got, err := blob.CleanKey(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("CleanKey(%q) = %q, %v; want %q ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
		if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("CleanKey(%q): error kind %v", tt.in, err)
		}
	}
}

func FuzzCleanKey(f *testing.F) {
	for _, s := range []string{"a/b", "../x", "a/./b", "/abs", "a\x00", `a\b`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := blob.CleanKey(s)
		if err != nil {
			return
		}
		if strings.HasPrefix(k, "/") || strings.ContainsRune(k, 0) || strings.Contains(k, `\`) {
			t.Fatalf("CleanKey(%q) = %q escapes the root", s, k)
		}
		for _, seg := range strings.Split(k, "/") {
			if seg == ".." || (k != "" && (seg == "" || seg == ".")) {
				t.Fatalf("CleanKey(%q) = %q has segment %q", s, k, seg)
			}
		}
		if again, err := blob.CleanKey(k); err != nil || again != k {
			t.Fatalf("CleanKey not idempotent on %q: %q %v", k, again, err)
		}
	})
}
