package blob_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

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
		"azblob": func(t *testing.T) *blob.Bucket {
			b, err := blob.Open(context.Background(), blobtest.Azure(t), blob.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			return b
		},
		"gs": func(t *testing.T) *blob.Bucket {
			b, err := blob.Open(context.Background(), blobtest.GCS(t), blob.Options{})
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
			peak := watchHeap(t)
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
			if grew := peak(); grew > 64<<20 {
				t.Fatalf("heap grew by %d MB for a %d MB object: not streaming", grew>>20, size>>20)
			}
			want := sha256.New()
			io.Copy(want, &patternReader{n: size})
			if !bytes.Equal(h.Sum(nil), want.Sum(nil)) {
				t.Fatal("content differs after round trip")
			}
		})
	}
}

// watchHeap samples the heap until the returned function is called, which
// reports the largest growth of HeapInuse seen over the starting value.
func watchHeap(t *testing.T) func() int64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := int64(ms.HeapInuse)
	stop := make(chan struct{})
	done := make(chan int64)
	go func() {
		var peak int64
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, int64(ms.HeapInuse)-base)
			select {
			case <-stop:
				done <- peak
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	var peak int64
	get := func() int64 {
		once.Do(func() { close(stop); peak = <-done })
		return peak
	}
	t.Cleanup(func() { get() })
	return get
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

func TestStatAndRange(t *testing.T) {
	for name, open := range buckets(t) {
		t.Run(name, func(t *testing.T) {
			b := open(t)
			ctx := context.Background()
			if _, err := b.Put(ctx, "a/b.txt", strings.NewReader("0123456789"), "text/plain"); err != nil {
				t.Fatal(err)
			}
			st, err := b.Stat(ctx, "a/b.txt")
			if err != nil || st.Size != 10 || st.ContentType == "" || st.ModTime.IsZero() {
				t.Fatalf("stat = %+v, %v", st, err)
			}
			ranges := []struct {
				off, n int64
				want   string
			}{{0, -1, "0123456789"}, {2, 3, "234"}, {8, -1, "89"}, {8, 100, "89"}, {0, 0, ""},
				// At and past the end: an empty read, not an error.
				{10, 5, ""}, {12, 3, ""}, {12, -1, ""}}
			for _, r := range ranges {
				obj, err := b.GetRange(ctx, "a/b.txt", r.off, r.n)
				if err != nil {
					t.Fatalf("range %d+%d: %v", r.off, r.n, err)
				}
				got, err := io.ReadAll(obj)
				obj.Close()
				if err != nil || string(got) != r.want || obj.Size != 10 {
					t.Fatalf("range %d+%d = %q (size %d) %v, want %q", r.off, r.n, got, obj.Size, err, r.want)
				}
			}
			for _, key := range []string{"a", "a/nope", ""} {
				if _, err := b.Stat(ctx, key); !errors.Is(err, errdefs.ErrNotFound) {
					t.Errorf("stat %q: %v, want not found", key, err)
				}
			}
			if _, err := b.GetRange(ctx, "a/b.txt", -1, 1); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("negative offset: %v", err)
			}
			if _, err := b.Stat(ctx, "../a/b.txt"); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("stat traversal: %v", err)
			}
		})
	}
}

func TestDeletePrefix(t *testing.T) {
	for name, open := range buckets(t) {
		t.Run(name, func(t *testing.T) {
			b := open(t)
			ctx := context.Background()
			for _, k := range []string{"a/x", "a/y/z", "a/y/w", "ab/c", "a.txt"} {
				if _, err := b.Put(ctx, k, strings.NewReader(k), ""); err != nil {
					t.Fatal(err)
				}
			}
			n, err := b.DeletePrefix(ctx, "a")
			if err != nil || n != 3 {
				t.Fatalf("delete prefix a: %d %v, want 3", n, err)
			}
			list, err := b.List(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range list {
				names = append(names, e.Name)
			}
			if want := []string{"a.txt", "ab"}; !reflect.DeepEqual(names, want) {
				t.Fatalf("after delete: %v, want %v", names, want)
			}
			for _, bad := range []string{"", "/", "../ab", "ab/../.."} {
				if _, err := b.DeletePrefix(ctx, bad); !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Errorf("DeletePrefix(%q): %v, want invalid", bad, err)
				}
			}
			if err := b.Delete(ctx, ""); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("Delete(root): %v", err)
			}
		})
	}
}

// TestAbandonedUpload checks that a body that fails half way stores
// nothing, and that an upload in flight is not listed.
func TestAbandonedUpload(t *testing.T) {
	for name, open := range buckets(t) {
		t.Run(name, func(t *testing.T) {
			b := open(t)
			ctx := context.Background()
			gate := make(chan struct{})
			r := io.MultiReader(strings.NewReader(strings.Repeat("x", 1<<20)), &gatedErrReader{gate: gate})
			done := make(chan error)
			go func() {
				_, err := b.Put(ctx, "d/partial.bin", r, "")
				done <- err
			}()
			time.Sleep(100 * time.Millisecond) // the first MB is being written
			if list, err := b.List(ctx, "d"); err != nil || len(list) != 0 {
				t.Errorf("upload in flight is listed: %+v %v", list, err)
			}
			close(gate)
			if err := <-done; err == nil {
				t.Fatal("Put succeeded with a failing body")
			}
			if _, err := b.Stat(ctx, "d/partial.bin"); !errors.Is(err, errdefs.ErrNotFound) {
				t.Fatalf("failed upload left an object: %v", err)
			}
			if list, err := b.List(ctx, "d"); err != nil || len(list) != 0 {
				t.Fatalf("failed upload left files: %+v %v", list, err)
			}
		})
	}
}

type gatedErrReader struct{ gate chan struct{} }

func (g *gatedErrReader) Read([]byte) (int, error) {
	<-g.gate
	return 0, errors.New("client went away")
}

func TestPrefixScopesKeys(t *testing.T) {
	url, opts := blobtest.S3(t)
	ctx := context.Background()
	a, err := blob.Open(ctx, url+"/team-a", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	other, err := blob.Open(ctx, url+"/team-b", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	parent, err := blob.Open(ctx, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer parent.Close()
	if _, err := a.Put(ctx, "x/y.txt", strings.NewReader("hi"), ""); err != nil {
		t.Fatal(err)
	}
	if list, err := other.List(ctx, ""); err != nil || len(list) != 0 {
		t.Fatalf("other prefix sees %+v %v", list, err)
	}
	if ok, err := parent.Exists(ctx, "team-a/x/y.txt"); err != nil || !ok {
		t.Fatalf("object not stored under the URL's prefix: %v %v", ok, err)
	}
}

func TestRelativeFileURL(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	b, err := blob.Open(context.Background(), "file://./kiln-data/artifacts", blob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if _, err := b.Put(context.Background(), "0/r/artifacts/f.txt", strings.NewReader("abc"), ""); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, "kiln-data", "artifacts", "0", "r", "artifacts", "f.txt"))
	if err != nil || string(got) != "abc" {
		t.Fatalf("file on disk: %q %v", got, err)
	}
}

func TestOpenRejectsUnknownScheme(t *testing.T) {
	for _, u := range []string{"ftp://x/y", "file://", "::"} {
		if b, err := blob.Open(context.Background(), u, blob.Options{}); err == nil {
			b.Close()
			t.Errorf("Open(%q) succeeded", u)
		}
	}
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

// A local folder listed while other requests delete files in it: the
// listing never fails with a file that vanished mid-listing.
func TestListWhileDeleting(t *testing.T) {
	b, err := blob.Open(context.Background(), "file://"+t.TempDir(), blob.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	const n = 400
	for i := range n {
		if _, err := b.Put(ctx, fmt.Sprintf("d/f%03d", i), strings.NewReader("x"), ""); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			b.Delete(ctx, fmt.Sprintf("d/f%03d", i))
		}
	}()
	for {
		select {
		case <-done:
			entries, err := b.List(ctx, "d")
			if err != nil || len(entries) != 0 {
				t.Fatalf("after the deletes: %v %v", entries, err)
			}
			return
		default:
		}
		if _, err := b.List(ctx, "d"); err != nil {
			t.Fatalf("list during deletes: %v", err)
		}
	}
}
