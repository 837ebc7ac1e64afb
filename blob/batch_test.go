package blob_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/kiln-ml/kiln/errdefs"
)

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, errors.New("source vanished")
	}
	n := min(r.n, len(p))
	for i := range p[:n] {
		p[i] = 'x'
	}
	r.n -= n
	return n, nil
}

func TestBatch(t *testing.T) {
	ctx := context.Background()
	for name, open := range buckets(t) {
		t.Run(name, func(t *testing.T) {
			b := open(t)
			bt := b.NewBatch()
			var wg sync.WaitGroup
			for i := range 50 {
				wg.Go(func() {
					key := fmt.Sprintf("objs/%02d/o%d", i%7, i)
					if _, err := bt.Put(ctx, key, strings.NewReader(strings.Repeat("v", i)), ""); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Wait()
			if _, err := bt.Put(ctx, "objs/bad", &failingReader{n: 10}, ""); err == nil {
				t.Fatal("a failing reader was stored")
			}
			if _, err := bt.Put(ctx, "../escape", strings.NewReader("x"), ""); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("escaping key: %v", err)
			}
			if name == "file" {
				// Nothing is visible before Commit, not even in listings.
				if bt.Len() != 50 {
					t.Fatalf("Len = %d", bt.Len())
				}
				if _, err := b.Stat(ctx, "objs/00/o0"); !errors.Is(err, errdefs.ErrNotFound) {
					t.Fatalf("visible before commit: %v", err)
				}
				if es, err := b.List(ctx, "objs/00"); err != nil || len(es) != 0 {
					t.Fatalf("listing before commit: %v %v", es, err)
				}
			}
			if err := bt.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			for i := range 50 {
				obj, err := b.Get(ctx, fmt.Sprintf("objs/%02d/o%d", i%7, i))
				if err != nil {
					t.Fatal(err)
				}
				data, _ := io.ReadAll(obj)
				obj.Close()
				if string(data) != strings.Repeat("v", i) {
					t.Fatalf("object %d = %q", i, data)
				}
			}
			if _, err := b.Stat(ctx, "objs/bad"); !errors.Is(err, errdefs.ErrNotFound) {
				t.Fatalf("failed object stored: %v", err)
			}
			es, err := b.List(ctx, "objs/01")
			if err != nil || len(es) != 7 {
				t.Fatalf("listing after commit: %d entries, %v", len(es), err)
			}
			if _, err := bt.Put(ctx, "objs/late", strings.NewReader("x"), ""); name == "file" && err == nil {
				t.Fatal("Put after Commit succeeded")
			}

			// Abort leaves nothing behind.
			ab := b.NewBatch()
			if _, err := ab.Put(ctx, "aborted/x", strings.NewReader("x"), ""); err != nil {
				t.Fatal(err)
			}
			ab.Abort()
			if name == "file" {
				if _, err := b.Stat(ctx, "aborted/x"); !errors.Is(err, errdefs.ErrNotFound) {
					t.Fatalf("aborted object visible: %v", err)
				}
			}
		})
	}
}
