package dataset

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/errdefs"
)

func batchOf(contents ...[]byte) []BatchObject {
	var objs []BatchObject
	for _, c := range contents {
		objs = append(objs, BatchObject{Digest: Sum(c), Size: int64(len(c)), Open: func(context.Context) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(c)), nil
		}})
	}
	return objs
}

func readObject(t *testing.T, r Remote, d Digest) []byte {
	t.Helper()
	rc, err := r.Get(context.Background(), d)
	if err != nil {
		t.Fatalf("get %s: %v", d, err)
	}
	defer rc.Close()
	if o, ok := rc.(*blob.Object); ok {
		data, err := io.ReadAll(rc)
		if err != nil {
			t.Fatal(err)
		}
		if o.Size != int64(len(data)) {
			t.Fatalf("object %s: Size %d, read %d bytes", d, o.Size, len(data))
		}
		return data
	}
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func keysUnder(t *testing.T, b *blob.Bucket, dir string) []string {
	t.Helper()
	var keys []string
	var walk func(dir string)
	walk = func(dir string) {
		es, err := b.List(context.Background(), dir)
		if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatal(err)
		}
		for _, e := range es {
			if e.IsDir {
				walk(e.Path)
			} else {
				keys = append(keys, e.Path)
			}
		}
	}
	walk(dir)
	return keys
}

// TestPacks stores a batch of small objects as one pack and a large one
// loose, and reads them back from the remote that wrote them and from
// another one on the same store (another process).
func TestPacks(t *testing.T) {
	for name, open := range buckets(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			b := open(t)
			r := NewBucketRemote(b)
			var contents [][]byte
			for i := range 50 {
				contents = append(contents, []byte(fmt.Sprintf("object %d %s", i, strings.Repeat("x", i))))
			}
			contents = append(contents, []byte{}, contents[3]) // an empty object, a duplicate
			large := bytes.Repeat([]byte("L"), BatchObjectMax+1)
			if err := r.PutBatch(ctx, batchOf(append(contents, large)...)); err != nil {
				t.Fatal(err)
			}
			packs := keysUnder(t, b, "datasets/packs")
			if len(packs) != 2 || !strings.HasSuffix(packs[0], ".idx") || !strings.HasSuffix(packs[1], ".pack") {
				t.Fatalf("pack keys: %v", packs)
			}
			if loose := keysUnder(t, b, "datasets/objects"); len(loose) != 1 || loose[0] != ObjectKey(Sum(large)) {
				t.Fatalf("loose objects: %v, want only the large one", loose)
			}
			other := NewBucketRemote(b)
			for _, rr := range []*BucketRemote{r, other} {
				all := append(contents, large)
				var ds []Digest
				for _, c := range all {
					ds = append(ds, Sum(c))
					if got := readObject(t, rr, Sum(c)); !bytes.Equal(got, c) {
						t.Fatalf("object %s: %q, want %q", Sum(c), got, c)
					}
				}
				absent := Sum([]byte("never stored"))
				missing, err := rr.Has(ctx, append(ds, absent))
				if err != nil || len(missing) != 1 || missing[0] != absent {
					t.Fatalf("Has: %v, %v; want only %s", missing, err, absent)
				}
				if _, err := rr.Get(ctx, absent); !errors.Is(err, errdefs.ErrNotFound) {
					t.Fatalf("Get of an absent object: %v", err)
				}
			}
		})
	}
}

// TestPackLimits: a batch larger than a pack forms several; a bad object
// fails the batch and acknowledges none of the pack it was in.
func TestPackLimits(t *testing.T) {
	ctx := context.Background()
	b := buckets(t)["file"](t)
	r := NewBucketRemote(b)
	var contents [][]byte
	for i := range 300 {
		c := bytes.Repeat([]byte{byte(i)}, 200<<10)
		c = append(c, byte(i>>8))
		contents = append(contents, c)
	}
	if err := r.PutBatch(ctx, batchOf(contents...)); err != nil {
		t.Fatal(err)
	}
	if n := len(keysUnder(t, b, "datasets/packs")); n < 4 {
		t.Fatalf("%d pack keys for 60 MB of objects, want at least 2 packs", n)
	}
	for _, c := range contents {
		if got := readObject(t, NewBucketRemote(b), Sum(c)); !bytes.Equal(got, c) {
			t.Fatalf("object %s differs", Sum(c))
		}
	}

	good, bad := []byte("good object"), batchOf([]byte("claimed"))[0]
	bad.Open = func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader("другое")), nil
	}
	objs := append(batchOf(good), bad)
	if err := r.PutBatch(ctx, objs); !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("batch with a bad object: %v", err)
	}
	fresh := NewBucketRemote(b)
	if missing, err := fresh.Has(ctx, []Digest{Sum(good), bad.Digest}); err != nil || len(missing) != 2 {
		t.Fatalf("after a failed batch, Has says missing %v (%v); want both", missing, err)
	}
}

// TestPackWithoutIndex: a pack whose index was never written (a crash
// between the two) names no object.
func TestPackWithoutIndex(t *testing.T) {
	ctx := context.Background()
	b := buckets(t)["file"](t)
	c := []byte("orphan")
	if _, err := b.Put(ctx, packKey(Sum(c).String()), bytes.NewReader(c), ""); err != nil {
		t.Fatal(err)
	}
	r := NewBucketRemote(b)
	if missing, err := r.Has(ctx, []Digest{Sum(c)}); err != nil || len(missing) != 1 {
		t.Fatalf("Has: %v, %v", missing, err)
	}
	// A damaged index is an error, not silence.
	if _, err := b.Put(ctx, indexKey("broken"), strings.NewReader("KPX1 not entries"), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := NewBucketRemote(b).Has(ctx, []Digest{Sum(c)}); err == nil || !strings.Contains(err.Error(), "pack index broken") {
		t.Fatalf("Has with a damaged index: %v", err)
	}
}

func TestIndexRoundTrip(t *testing.T) {
	ents := []packEntry{{d: Sum([]byte("b")), off: 10, size: 3}, {d: Sum([]byte("a")), off: 0, size: 10}}
	got, err := decodeIndex(encodeIndex(ents))
	if err != nil || len(got) != 2 || bytes.Compare(got[0].d[:], got[1].d[:]) >= 0 {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{"", "KPX", "XXXX", "KPX1" + strings.Repeat("\x00", 47)} {
		if _, err := decodeIndex([]byte(bad)); err == nil {
			t.Errorf("decodeIndex(%q) accepted", bad)
		}
	}
}

func FuzzDecodeIndex(f *testing.F) {
	f.Add(encodeIndex([]packEntry{{d: Sum([]byte("a")), off: 0, size: 10}}))
	f.Add([]byte("KPX1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ents, err := decodeIndex(data)
		if err != nil {
			return
		}
		// What decodes re-encodes to the same bytes once sorted.
		again, err := decodeIndex(encodeIndex(ents))
		if err != nil || len(again) != len(ents) {
			t.Fatalf("re-encoding: %v, %d entries, want %d", err, len(again), len(ents))
		}
		for _, e := range ents {
			if e.off < 0 || e.size < 0 {
				t.Fatalf("negative entry %+v", e)
			}
		}
	})
}
