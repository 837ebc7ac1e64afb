package dataset

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/blob/blobtest"
	"github.com/kiln-ml/kiln/errdefs"
)

// remotes returns the remotes the content tests run against: an artifact
// store in a local folder, one on a real S3 server (versitygw), and a
// local cache.
func remotes(t *testing.T) map[string]func(t *testing.T) Remote {
	return map[string]func(t *testing.T) Remote{
		"file": func(t *testing.T) Remote {
			b, err := blob.Open(context.Background(), "file://"+t.TempDir(), blob.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			return NewBucketRemote(b)
		},
		"s3": func(t *testing.T) Remote {
			url, opts := blobtest.S3(t)
			b, err := blob.Open(context.Background(), url, opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			return NewBucketRemote(b)
		},
		"cache": func(t *testing.T) Remote {
			c, err := OpenCache(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return c
		},
	}
}

// writeTree writes files (path -> content) under dir, with modification
// times in the past so that the stat cache trusts them.
func writeTree(t testing.TB, dir string, files map[string]string) {
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
		if err := os.Chtimes(full, old, old); err != nil {
			t.Fatal(err)
		}
	}
}

// readTree returns the regular files under dir (path -> content).
func readTree(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		if !d.Type().IsRegular() {
			return fmt.Errorf("%s is not a regular file", p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sampleTree() map[string]string {
	big := make([]byte, 3<<20+17) // several read buffers
	r := rand.New(rand.NewPCG(1, 2))
	for i := range big {
		big[i] = byte(r.UintN(256))
	}
	return map[string]string{
		"train.csv":          "a,b\n1,2\n3,4\n",
		"test.csv":           "a,b\n5,6\n",
		"images/cat.png":     "\x89PNG cat",
		"images/dog.png":     "\x89PNG dog",
		"images/dup.png":     "\x89PNG cat", // same content as cat.png
		"deep/a/b/c/big.bin": string(big),
		"empty.txt":          "",
		"ünï côde.txt":       "unicode",
	}
}

func hashDir(t *testing.T, dir string, cache *StatCache) (*Manifest, HashStats, *LocalSource) {
	t.Helper()
	src, err := NewLocalSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, st, err := Hash(context.Background(), src, HashOptions{StatCache: cache})
	if err != nil {
		t.Fatal(err)
	}
	return m, st, src
}

func TestHashMatchesContent(t *testing.T) {
	dir := t.TempDir()
	files := sampleTree()
	writeTree(t, dir, files)
	m, st, _ := hashDir(t, dir, nil)
	if m.Kind != KindDir || len(m.Files) != len(files) || st.HashedFiles != len(files) || st.CachedFiles != 0 {
		t.Fatalf("manifest %v, stats %+v", m, st)
	}
	var total int64
	for _, e := range m.Files {
		c, ok := files[e.Path]
		if !ok {
			t.Fatalf("unexpected path %q", e.Path)
		}
		if e.Digest != Sum([]byte(c)) || e.Size != int64(len(c)) {
			t.Fatalf("%s: digest %s size %d", e.Path, e.Digest, e.Size)
		}
		total += e.Size
	}
	if st.HashedBytes != total || m.TotalSize() != total {
		t.Fatalf("hashed %d bytes, want %d", st.HashedBytes, total)
	}
	// A single file is a file version named by its base name.
	src, err := NewLocalSource(filepath.Join(dir, "train.csv"))
	if err != nil {
		t.Fatal(err)
	}
	fm, _, err := Hash(context.Background(), src, HashOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if fm.Kind != KindFile || len(fm.Files) != 1 || fm.Files[0].Path != "train.csv" || fm.Files[0].Digest != Sum([]byte(files["train.csv"])) {
		t.Fatalf("file manifest %+v", fm.Files)
	}
}

func TestHashLocalEdgeCases(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"keep/a.txt": "a", ".git/config": "x", "run.sh": "#!/bin/sh"})
	os.Chmod(filepath.Join(dir, "run.sh"), 0o755)
	if err := os.Symlink(filepath.Join(dir, "keep", "a.txt"), filepath.Join(dir, "link.txt")); err != nil {
		t.Fatal(err)
	}
	src, _ := NewLocalSource(dir)
	src.Ignore = func(rel string, isDir bool) bool { return isDir && rel == ".git" }
	m, _, err := Hash(context.Background(), src, HashOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, e := range m.Files {
		paths = append(paths, e.Path)
	}
	if !reflect.DeepEqual(paths, []string{"keep/a.txt", "link.txt", "run.sh"}) {
		t.Fatalf("paths %v", paths)
	}
	if e, _ := m.Lookup("link.txt"); e.Digest != Sum([]byte("a")) {
		t.Fatal("a link to a file is versioned as the file's content")
	}
	if e, _ := m.Lookup("run.sh"); !e.Exec {
		t.Fatal("exec bit lost")
	}
	// A link to a folder is refused, not silently skipped.
	if err := os.Symlink(filepath.Join(dir, "keep"), filepath.Join(dir, "dirlink")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Hash(context.Background(), src, HashOptions{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("link to a folder: %v", err)
	}
	if _, err := NewLocalSource(filepath.Join(dir, "nope")); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("missing path: %v", err)
	}
}

// countingSource counts the bytes read from a source's files.
type countingSource struct {
	Source
	read atomic.Int64
}

func (c *countingSource) Open(ctx context.Context, p string) (io.ReadCloser, error) {
	rc, err := c.Source.Open(ctx, p)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{&countingReader{r: rc, fn: func(n int) { c.read.Add(int64(n)) }}, rc}, nil
}

func TestStatCache(t *testing.T) {
	dir := t.TempDir()
	files := sampleTree()
	writeTree(t, dir, files)
	cachePath := filepath.Join(t.TempDir(), "kiln", "statcache")
	cache, err := OpenStatCache(cachePath)
	if err != nil {
		t.Fatal(err)
	}
	local, _ := NewLocalSource(dir)
	src := &countingSource{Source: local}
	m1, st, err := Hash(context.Background(), src, HashOptions{StatCache: cache})
	if err != nil {
		t.Fatal(err)
	}
	if st.HashedFiles != len(files) || src.read.Load() != m1.TotalSize() {
		t.Fatalf("first hash: %+v, read %d", st, src.read.Load())
	}
	if err := cache.Save(); err != nil {
		t.Fatal(err)
	}
	// A second hash, through a cache reopened from disk, reads nothing.
	cache, err = OpenStatCache(cachePath)
	if err != nil {
		t.Fatal(err)
	}
	if cache.Len() != len(files) {
		t.Fatalf("reloaded cache has %d entries", cache.Len())
	}
	src.read.Store(0)
	m2, st, err := Hash(context.Background(), src, HashOptions{StatCache: cache})
	if err != nil {
		t.Fatal(err)
	}
	if src.read.Load() != 0 || st.HashedFiles != 0 || st.CachedFiles != len(files) || m2.Digest() != m1.Digest() {
		t.Fatalf("second hash read %d bytes: %+v", src.read.Load(), st)
	}
	// Changing one file (same size, new mtime) re-reads that file only.
	writeTree(t, dir, map[string]string{"test.csv": "a,b\n7,8\n"})
	src.read.Store(0)
	m3, st, err := Hash(context.Background(), src, HashOptions{StatCache: cache})
	if err != nil {
		t.Fatal(err)
	}
	if st.HashedFiles != 1 || src.read.Load() != int64(len("a,b\n7,8\n")) || m3.Digest() == m1.Digest() {
		t.Fatalf("after one change: %+v read %d", st, src.read.Load())
	}
	// A file modified just now is hashed but not remembered (racy).
	full := filepath.Join(dir, "train.csv")
	os.WriteFile(full, []byte("a,b\n9,9\n1,1\n"), 0o644)
	if _, st, _ = Hash(context.Background(), src, HashOptions{StatCache: cache}); st.HashedFiles != 1 {
		t.Fatalf("fresh file: %+v", st)
	}
	if _, st, _ = Hash(context.Background(), src, HashOptions{StatCache: cache}); st.HashedFiles != 1 {
		t.Fatalf("a racy file was trusted: %+v", st)
	}
	// A damaged cache file is an empty cache, not an error.
	os.WriteFile(cachePath, []byte("KILNSTAT1\ngarbage that fails the checksum......................"), 0o644)
	cache, err = OpenStatCache(cachePath)
	if err != nil || cache.Len() != 0 {
		t.Fatalf("damaged cache: %v, %d entries", err, cache.Len())
	}
}

func TestPushPullRoundTrip(t *testing.T) {
	for name, open := range remotes(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			remote := open(t)
			dir := t.TempDir()
			files := sampleTree()
			writeTree(t, dir, files)
			m, _, src := hashDir(t, dir, nil)
			prog := &recordingProgress{}
			st, err := Push(ctx, src, m, remote, TransferOptions{Progress: prog})
			if err != nil {
				t.Fatal(err)
			}
			// dup.png shares cat.png's object: stored once.
			if st.Objects != len(files)-1 || st.Sent != len(files)-1 || st.Present != 0 || !st.ManifestSet {
				t.Fatalf("first push %+v", st)
			}
			if prog.bytes[PhaseUpload] != st.SentBytes || prog.files[PhaseUpload] != st.Sent || prog.totalFiles[PhaseUpload] != st.Sent {
				t.Fatalf("progress %+v vs %+v", prog, st)
			}
			// Dedup: the same tree again uploads nothing.
			st, err = Push(ctx, src, m, remote, TransferOptions{})
			if err != nil || st.Sent != 0 || st.Present != len(files)-1 {
				t.Fatalf("second push %+v %v", st, err)
			}
			// A new version changing one file uploads only that file.
			writeTree(t, dir, map[string]string{"test.csv": "a,b\n5,6\n7,8\n"})
			m2, _, _ := hashDir(t, dir, nil)
			st, err = Push(ctx, src, m2, remote, TransferOptions{})
			if err != nil || st.Sent != 1 || st.SentBytes != int64(len("a,b\n5,6\n7,8\n")) {
				t.Fatalf("third push %+v %v", st, err)
			}

			got, err := remote.GetManifest(ctx, m.Digest())
			if err != nil || got.Digest() != m.Digest() {
				t.Fatalf("get manifest: %v", err)
			}
			out := t.TempDir()
			cst, err := Checkout(ctx, remote, got, out, CheckoutOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(readTree(t, out), files) || cst.Written != len(files) {
				t.Fatalf("checkout differs (%+v)", cst)
			}
			// Checking out the same version again writes nothing.
			cst, err = Checkout(ctx, remote, got, out, CheckoutOptions{})
			if err != nil || cst.Written != 0 || cst.Unchanged != len(files) {
				t.Fatalf("second checkout %+v %v", cst, err)
			}
			// The next version: only the changed file is written.
			cst, err = Checkout(ctx, remote, m2, out, CheckoutOptions{})
			if err != nil || cst.Written != 1 || cst.Unchanged != len(files)-1 {
				t.Fatalf("checkout of v2 %+v %v", cst, err)
			}
			if b, _ := os.ReadFile(filepath.Join(out, "test.csv")); string(b) != "a,b\n5,6\n7,8\n" {
				t.Fatalf("test.csv = %q", b)
			}
		})
	}
}

func TestCheckoutUpdatesAndCleans(t *testing.T) {
	ctx := context.Background()
	remote := remotes(t)["file"](t)
	dir := t.TempDir()
	files := map[string]string{"a.csv": "1", "sub/b.csv": "22", "sub/c.csv": "333", "x/run.sh": "#!"}
	writeTree(t, dir, files)
	os.Chmod(filepath.Join(dir, "x/run.sh"), 0o755)
	m, _, src := hashDir(t, dir, nil)
	if _, err := Push(ctx, src, m, remote, TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	writeTree(t, out, map[string]string{
		"a.csv":          "changed", // differs: rewritten
		"sub/b.csv":      "xx",      // same size, different content: rewritten
		"extra.txt":      "extra",   // not listed
		"old/deep/f.txt": "old",     // a whole folder not listed
	})
	cache, _ := OpenStatCache(filepath.Join(t.TempDir(), "sc"))
	st, err := Checkout(ctx, remote, m, out, CheckoutOptions{StatCache: cache})
	if err != nil {
		t.Fatal(err)
	}
	if st.Written != 4 || st.Removed != 0 {
		t.Fatalf("stats %+v", st)
	}
	want := maps(files, map[string]string{"extra.txt": "extra", "old/deep/f.txt": "old"})
	if got := readTree(t, out); !reflect.DeepEqual(got, want) {
		t.Fatalf("without clean: %v", got)
	}
	if fi, _ := os.Stat(filepath.Join(out, "x/run.sh")); fi.Mode().Perm() != 0o755 {
		t.Fatalf("mode %v", fi.Mode())
	}
	st, err = Checkout(ctx, remote, m, out, CheckoutOptions{Clean: true})
	if err != nil || st.Written != 0 || st.Removed != 2 {
		t.Fatalf("clean: %+v %v", st, err)
	}
	if got := readTree(t, out); !reflect.DeepEqual(got, files) {
		t.Fatalf("after clean: %v", got)
	}
	if _, err := os.Stat(filepath.Join(out, "old")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("clean left an empty folder")
	}

	// Something in the way: an error without clean, removed with it.
	os.RemoveAll(filepath.Join(out, "sub"))
	os.WriteFile(filepath.Join(out, "sub"), []byte("a file where a folder goes"), 0o644)
	if _, err := Checkout(ctx, remote, m, out, CheckoutOptions{}); !errors.Is(err, errdefs.ErrInvalidState) {
		t.Fatalf("file in the way: %v", err)
	}
	if _, err := Checkout(ctx, remote, m, out, CheckoutOptions{Clean: true}); err != nil {
		t.Fatal(err)
	}
	if got := readTree(t, out); !reflect.DeepEqual(got, files) {
		t.Fatalf("after replacing the file in the way: %v", got)
	}

	// A symbolic link inside the folder is never followed out of it.
	outside := t.TempDir()
	os.RemoveAll(filepath.Join(out, "sub"))
	if err := os.Symlink(outside, filepath.Join(out, "sub")); err != nil {
		t.Fatal(err)
	}
	if _, err := Checkout(ctx, remote, m, out, CheckoutOptions{}); !errors.Is(err, errdefs.ErrInvalidState) {
		t.Fatalf("link in the way: %v", err)
	}
	if _, err := Checkout(ctx, remote, m, out, CheckoutOptions{Clean: true}); err != nil {
		t.Fatal(err)
	}
	if got := readTree(t, outside); len(got) != 0 {
		t.Fatalf("wrote through a link: %v", got)
	}
	if got := readTree(t, out); !reflect.DeepEqual(got, files) {
		t.Fatalf("after replacing the link: %v", got)
	}
}

func maps(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// buckets opens the artifact stores that the corruption tests tamper with
// directly: a local folder and a real S3 server.
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

func TestCorruptionDetected(t *testing.T) {
	for name, open := range buckets(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			b := open(t)
			remote := NewBucketRemote(b)
			dir := t.TempDir()
			writeTree(t, dir, map[string]string{"good.csv": "fine", "bad.csv": "original content"})
			m, _, src := hashDir(t, dir, nil)
			if _, err := Push(ctx, src, m, remote, TransferOptions{}); err != nil {
				t.Fatal(err)
			}
			// Tamper with the stored object behind the remote's back (same size).
			bad, _ := m.Lookup("bad.csv")
			tamper(t, b, remote, bad.Digest, "tampered content")
			out := t.TempDir()
			writeTree(t, out, map[string]string{"bad.csv": "previous"})
			_, err := Checkout(ctx, remote, m, out, CheckoutOptions{})
			if !errors.Is(err, ErrDigestMismatch) {
				t.Fatalf("checkout of a corrupted object: %v", err)
			}
			if b, _ := os.ReadFile(filepath.Join(out, "bad.csv")); string(b) != "previous" {
				t.Fatalf("corrupted object replaced the file: %q", b)
			}
			if leftovers := listTemp(t, out); len(leftovers) != 0 {
				t.Fatalf("temporary files left: %v", leftovers)
			}
			// Through a cache: the fetch fails and the cache keeps nothing bad.
			cache, _ := OpenCache(t.TempDir())
			if _, err := Pull(ctx, remote, cache, m.Digest(), t.TempDir(), TransferOptions{}, CheckoutOptions{}); !errors.Is(err, ErrDigestMismatch) {
				t.Fatalf("pull of a corrupted object: %v", err)
			}
			if miss, _ := cache.Has(ctx, []Digest{bad.Digest}); len(miss) != 1 {
				t.Fatal("the cache kept a corrupted object")
			}
			// A truncated object too.
			tamper(t, b, remote, bad.Digest, "short")
			if _, err := Checkout(ctx, remote, m, t.TempDir(), CheckoutOptions{}); !errors.Is(err, ErrDigestMismatch) {
				t.Fatalf("checkout of a truncated object: %v", err)
			}
			// A damaged manifest is detected.
			data := m.Encode()
			if _, err := b.Put(ctx, ManifestKey(m.Digest()), bytes.NewReader(bytes.Replace(data, []byte("good.csv"), []byte("evil.csv"), 1)), ""); err != nil {
				t.Fatal(err)
			}
			if _, err := remote.GetManifest(ctx, m.Digest()); !errors.Is(err, ErrDigestMismatch) {
				t.Fatalf("damaged manifest: %v", err)
			}
			if _, err := remote.GetManifest(ctx, Sum([]byte("nothing"))); !errors.Is(err, errdefs.ErrNotFound) {
				t.Fatalf("missing manifest: %v", err)
			}
			if _, err := remote.Get(ctx, Sum([]byte("nothing"))); !errors.Is(err, errdefs.ErrNotFound) {
				t.Fatalf("missing object: %v", err)
			}
			// A remote refuses an upload whose bytes do not match the digest.
			for _, body := range []string{"y", "xx", ""} {
				err = remote.Put(ctx, Sum([]byte("x")), 1, strings.NewReader(body))
				if !errors.Is(err, ErrDigestMismatch) || !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("put of %q: %v", body, err)
				}
			}
			if miss, _ := remote.Has(ctx, []Digest{Sum([]byte("x"))}); len(miss) != 1 {
				t.Fatal("the remote stored wrong bytes")
			}
		})
	}
}

// TestPullRepairsCache: an object damaged in the local cache is fetched
// again from the remote.
func TestPullRepairsCache(t *testing.T) {
	ctx := context.Background()
	remote := remotes(t)["file"](t)
	dir := t.TempDir()
	files := map[string]string{"a.csv": "alpha", "b.csv": "beta"}
	writeTree(t, dir, files)
	m, _, src := hashDir(t, dir, nil)
	if _, err := Push(ctx, src, m, remote, TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	cache, _ := OpenCache(t.TempDir())
	if _, err := Pull(ctx, remote, cache, m.Digest(), t.TempDir(), TransferOptions{}, CheckoutOptions{}); err != nil {
		t.Fatal(err)
	}
	e, _ := m.Lookup("a.csv")
	p := cache.objectPath(e.Digest)
	os.Chmod(p, 0o644)
	os.WriteFile(p, []byte("ALPHA"), 0o644)
	out := t.TempDir()
	if _, err := Pull(ctx, remote, cache, m.Digest(), out, TransferOptions{}, CheckoutOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := readTree(t, out); !reflect.DeepEqual(got, files) {
		t.Fatalf("pull through a damaged cache: %v", got)
	}
	// Offline checkout from the cache alone.
	out2 := t.TempDir()
	cm, err := cache.GetManifest(ctx, m.Digest())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Checkout(ctx, cache, cm, out2, CheckoutOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := readTree(t, out2); !reflect.DeepEqual(got, files) {
		t.Fatalf("checkout from the cache: %v", got)
	}
}

func listTemp(t *testing.T, dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".tmp") {
			out = append(out, p)
		}
		return nil
	})
	return out
}

func TestCheckoutRejectsUnsafeManifest(t *testing.T) {
	// A manifest built around the validation cannot reach a checkout.
	m := &Manifest{Kind: KindDir, Files: []Entry{entry("../escape.txt", "x")}}
	_, err := Checkout(context.Background(), remotes(t)["cache"](t), m, t.TempDir(), CheckoutOptions{})
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("unsafe manifest: %v", err)
	}
	if _, err := Push(context.Background(), nil, m, remotes(t)["cache"](t), TransferOptions{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("push of unsafe manifest: %v", err)
	}
}

func TestBucketSource(t *testing.T) {
	for _, name := range []string{"file", "s3"} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			var url string
			var opts blob.Options
			if name == "file" {
				url = "file://" + t.TempDir()
			} else {
				url, opts = blobtest.S3(t)
			}
			b, err := blob.Open(ctx, url, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			files := map[string]string{"raw/2024/a.csv": "a", "raw/2024/b/c.csv": "cc", "raw/top.jsonl": "{}", "other/x": "x"}
			for k, v := range files {
				if _, err := b.Put(ctx, k, strings.NewReader(v), ""); err != nil {
					t.Fatal(err)
				}
			}
			src, err := NewBucketSource(ctx, b, "raw")
			if err != nil {
				t.Fatal(err)
			}
			m, st, err := Hash(ctx, src, HashOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var paths []string
			for _, e := range m.Files {
				paths = append(paths, e.Path)
				if e.Digest != Sum([]byte(files["raw/"+e.Path])) {
					t.Fatalf("%s digest", e.Path)
				}
			}
			sort.Strings(paths)
			if !reflect.DeepEqual(paths, []string{"2024/a.csv", "2024/b/c.csv", "top.jsonl"}) || st.HashedFiles != 3 {
				t.Fatalf("paths %v", paths)
			}
			// Push straight from the bucket source into a remote and back.
			remote := remotes(t)["cache"](t)
			if _, err := Push(ctx, src, m, remote, TransferOptions{}); err != nil {
				t.Fatal(err)
			}
			out := t.TempDir()
			if _, err := Checkout(ctx, remote, m, out, CheckoutOptions{}); err != nil {
				t.Fatal(err)
			}
			if got := readTree(t, out); got["2024/b/c.csv"] != "cc" || len(got) != 3 {
				t.Fatalf("checkout %v", got)
			}
			// One object is a file version.
			one, err := NewBucketSource(ctx, b, "raw/top.jsonl")
			if err != nil || one.Kind() != KindFile {
				t.Fatalf("object source: %v", err)
			}
			fm, _, err := Hash(ctx, one, HashOptions{})
			if err != nil || fm.Files[0].Path != "top.jsonl" {
				t.Fatalf("object manifest %v %v", fm, err)
			}
			if _, err := NewBucketSource(ctx, b, "nothing/here"); !errors.Is(err, errdefs.ErrNotFound) {
				t.Fatalf("empty prefix: %v", err)
			}
		})
	}
}

func TestOpenSource(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"a": "a"})
	for _, uri := range []string{dir, "file://" + dir} {
		src, err := OpenSource(context.Background(), uri, blob.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := src.(*LocalSource); !ok || src.Kind() != KindDir {
			t.Fatalf("%s: %T", uri, src)
		}
	}
	t.Run("s3", func(t *testing.T) {
		url, opts := blobtest.S3(t)
		b, _ := blob.Open(context.Background(), url, opts)
		b.Put(context.Background(), "data/x.csv", strings.NewReader("x"), "")
		b.Close()
		src, err := OpenSource(context.Background(), url+"/data/x.csv", opts)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		m, _, err := Hash(context.Background(), src, HashOptions{})
		if err != nil || m.Kind != KindFile || m.Files[0].Digest != Sum([]byte("x")) {
			t.Fatalf("s3 object source: %v %v", m, err)
		}
	})
}

// recordingProgress sums what it is told.
type recordingProgress struct {
	mu         sync.Mutex
	files      map[Phase]int
	bytes      map[Phase]int64
	totalFiles map[Phase]int
	totalBytes map[Phase]int64
	ended      map[Phase]bool
}

func (p *recordingProgress) init() {
	if p.files == nil {
		p.files, p.bytes, p.totalFiles, p.totalBytes, p.ended = map[Phase]int{}, map[Phase]int64{}, map[Phase]int{}, map[Phase]int64{}, map[Phase]bool{}
	}
}

func (p *recordingProgress) Begin(ph Phase, files int, bytes int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.init()
	p.totalFiles[ph], p.totalBytes[ph] = files, bytes
}

func (p *recordingProgress) Advance(ph Phase, files int, bytes int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.init()
	p.files[ph] += files
	p.bytes[ph] += bytes
}

func (p *recordingProgress) End(ph Phase) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.init()
	p.ended[ph] = true
}

func TestHashProgress(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, sampleTree())
	src, _ := NewLocalSource(dir)
	p := &recordingProgress{}
	m, _, err := Hash(context.Background(), src, HashOptions{Progress: p})
	if err != nil {
		t.Fatal(err)
	}
	if p.totalFiles[PhaseHash] != len(m.Files) || p.files[PhaseHash] != len(m.Files) ||
		p.totalBytes[PhaseHash] != m.TotalSize() || p.bytes[PhaseHash] != m.TotalSize() || !p.ended[PhaseHash] {
		t.Fatalf("progress %+v", p)
	}
}

func TestDiff(t *testing.T) {
	a, _ := NewManifest(KindDir, []Entry{entry("a.csv", "1"), entry("b.csv", "2"), entry("img/x.png", "x"), entry("same.txt", "s")})
	b, _ := NewManifest(KindDir, []Entry{entry("b.csv", "22"), entry("c.parquet", "3"), entry("img/y.png", "y"), entry("same.txt", "s")})
	d := DiffManifests(a, b)
	paths := func(es []Entry) (out []string) {
		for _, e := range es {
			out = append(out, e.Path)
		}
		return out
	}
	if !reflect.DeepEqual(paths(d.Added), []string{"c.parquet", "img/y.png"}) ||
		!reflect.DeepEqual(paths(d.Removed), []string{"a.csv", "img/x.png"}) ||
		len(d.Changed) != 1 || d.Changed[0].Path != "b.csv" || d.Changed[0].OldSize != 1 || d.Changed[0].NewSize != 2 ||
		d.Unchanged != 1 || d.SizeDelta != b.TotalSize()-a.TotalSize() {
		t.Fatalf("diff %+v", d)
	}
	ch, add := d.ChangedTables()
	if len(ch) != 1 || ch[0].Path != "b.csv" || len(add) != 1 || add[0].Path != "c.parquet" {
		t.Fatalf("tables %v %v", ch, add)
	}
	if d := DiffManifests(a, a); len(d.Added)+len(d.Removed)+len(d.Changed) != 0 || d.Unchanged != 4 {
		t.Fatalf("self diff %+v", d)
	}
	f1, _ := NewManifest(KindFile, []Entry{entry("v1.csv", "1")})
	f2, _ := NewManifest(KindFile, []Entry{entry("v2.csv", "2")})
	if d := DiffManifests(f1, f2); len(d.Changed) != 1 || d.Changed[0].Path != "v2.csv" {
		t.Fatalf("file diff %+v", d)
	}
	for p, want := range map[string]bool{"x.csv": true, "a/B.PARQUET": true, "l.jsonl.gz": true, "x.json": false, "csv": false} {
		if IsTablePath(p) != want {
			t.Errorf("IsTablePath(%s)", p)
		}
	}
}

func FuzzDecodeStatCache(f *testing.F) {
	dir := f.TempDir()
	c, _ := OpenStatCache(filepath.Join(dir, "sc"))
	c.store(statKey{path: "/a/b", size: 3, mtime: 1, ino: 2}, Sum([]byte("abc")), time.Now())
	c.Save()
	data, _ := os.ReadFile(filepath.Join(dir, "sc"))
	f.Add(data)
	f.Add([]byte(statCacheMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decodeStatCache(bytes.NewReader(data))
		if err == nil && m == nil {
			t.Fatal("nil map without error")
		}
	})
}

// TestPushDetectsChangedFile: a file edited between hashing and pushing
// fails the push rather than storing content under the wrong digest.
func TestPushDetectsChangedFile(t *testing.T) {
	for name, open := range remotes(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			remote := open(t)
			dir := t.TempDir()
			writeTree(t, dir, map[string]string{"a.csv": "1,2,3"})
			m, _, src := hashDir(t, dir, nil)
			writeTree(t, dir, map[string]string{"a.csv": "4,5,6"})
			if _, err := Push(ctx, src, m, remote, TransferOptions{}); !errors.Is(err, ErrDigestMismatch) {
				t.Fatalf("push of a changed file: %v", err)
			}
			if miss, _ := remote.Has(ctx, []Digest{m.Files[0].Digest}); len(miss) != 1 {
				t.Fatal("stored the changed content")
			}
			if _, err := remote.GetManifest(ctx, m.Digest()); !errors.Is(err, errdefs.ErrNotFound) {
				t.Fatalf("the manifest was stored after a failed push: %v", err)
			}
		})
	}
}

// TestHasLargeBatch: a large existence check is answered by listing the
// shards, with the same answer as checking each object.
func TestHasLargeBatch(t *testing.T) {
	for name, open := range buckets(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			r := NewBucketRemote(open(t))
			var ds []Digest
			want := map[Digest]bool{}
			for i := range 3000 {
				c := fmt.Sprint("object ", i)
				d := Sum([]byte(c))
				ds = append(ds, d)
				if i%10 == 0 {
					if err := r.Put(ctx, d, int64(len(c)), strings.NewReader(c)); err != nil {
						t.Fatal(err)
					}
				} else {
					want[d] = true
				}
			}
			miss, err := r.Has(ctx, ds)
			if err != nil {
				t.Fatal(err)
			}
			if r.listings.Load() != 1 {
				t.Fatalf("listed %d times", r.listings.Load())
			}
			got := map[Digest]bool{}
			for _, d := range miss {
				got[d] = true
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%d missing, want %d", len(got), len(want))
			}
			small, err := r.Has(ctx, ds[:20])
			if err != nil || len(small) != 18 || r.listings.Load() != 1 {
				t.Fatalf("small batch: %d missing, %v", len(small), err)
			}
		})
	}
}

func TestCheckoutCleanRemovesNothingWhenObjectsAreMissing(t *testing.T) {
	ctx := context.Background()
	remote := remotes(t)["file"](t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"a.csv": "1", "b.csv": "22"})
	m, _, src := hashDir(t, dir, nil)
	if _, err := Push(ctx, src, m, remote, TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	// A second manifest that names an object the remote does not have.
	writeTree(t, dir, map[string]string{"c.csv": "not pushed"})
	m2, _, _ := hashDir(t, dir, nil)
	out := t.TempDir()
	writeTree(t, out, map[string]string{"extra.txt": "keep me"})
	_, err := Checkout(ctx, remote, m2, out, CheckoutOptions{Clean: true})
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("err = %v, want not found", err)
	}
	if got := readTree(t, out); !reflect.DeepEqual(got, map[string]string{"extra.txt": "keep me"}) {
		t.Fatalf("a failed clean checkout changed the folder: %v", got)
	}
}

// tamper replaces the stored bytes of d behind the remote's back: the
// loose object, or its bytes in the pack that holds it (a shorter content
// truncates the pack there).
func tamper(t *testing.T, b *blob.Bucket, r *BucketRemote, d Digest, content string) {
	t.Helper()
	ctx := context.Background()
	if err := r.refreshPacks(ctx); err != nil {
		t.Fatal(err)
	}
	l, ok := r.packs.lookup(d)
	if !ok {
		if _, err := b.Put(ctx, ObjectKey(d), strings.NewReader(content), ""); err != nil {
			t.Fatal(err)
		}
		return
	}
	obj, err := b.Get(ctx, packKey(l.pack))
	if err != nil {
		t.Fatal(err)
	}
	pack, err := io.ReadAll(obj)
	obj.Close()
	if err != nil {
		t.Fatal(err)
	}
	copy(pack[l.off:l.off+l.size], content)
	if int64(len(content)) < l.size {
		pack = pack[:l.off+int64(len(content))]
	}
	if _, err := b.Put(ctx, packKey(l.pack), bytes.NewReader(pack), ""); err != nil {
		t.Fatal(err)
	}
}
