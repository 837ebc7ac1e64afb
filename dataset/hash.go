package dataset

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// hashBufSize is the read size when hashing and copying: large reads keep
// the BLAKE3 SIMD lanes full and system calls few.
const hashBufSize = 1 << 20

var bufPool = sync.Pool{New: func() any { b := make([]byte, hashBufSize); return &b }}

func getBuf() *[]byte  { return bufPool.Get().(*[]byte) }
func putBuf(b *[]byte) { bufPool.Put(b) }

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// HashOptions configure Hash.
type HashOptions struct {
	// Workers is the number of files hashed at once (default GOMAXPROCS).
	// Raise it for network file systems, where reads wait more than they
	// compute.
	Workers int
	// StatCache, if set, supplies the digests of local files that have not
	// changed since they were last hashed, and learns the new ones. The
	// caller saves it.
	StatCache *StatCache
	Progress  Progress
}

// HashStats say what Hash did.
type HashStats struct {
	Files       int   // files in the source
	Bytes       int64 // their total size
	HashedFiles int   // files read and hashed
	HashedBytes int64 // bytes read
	CachedFiles int   // files whose digest came from the stat cache
}

// Hash walks src and returns its manifest, reading (in parallel) every
// file whose digest the stat cache does not already know.
func Hash(ctx context.Context, src Source, opts HashOptions) (*Manifest, HashStats, error) {
	started := time.Now()
	prog := progressOrNop(opts.Progress)
	var files []SourceFile
	var st HashStats
	if err := src.Walk(ctx, func(f SourceFile) error {
		files = append(files, f)
		st.Bytes += f.Size
		return nil
	}); err != nil {
		return nil, st, err
	}
	st.Files = len(files)
	prog.Begin(PhaseHash, len(files), st.Bytes)
	defer prog.End(PhaseHash)

	entries := make([]Entry, len(files))
	var todo []int
	for i, f := range files {
		entries[i] = Entry{Path: f.Path, Size: f.Size, Exec: f.Exec}
		if opts.StatCache != nil && f.stat.path != "" {
			if d, ok := opts.StatCache.lookup(f.stat); ok {
				entries[i].Digest = d
				st.CachedFiles++
				prog.Advance(PhaseHash, 1, f.Size)
				continue
			}
		}
		todo = append(todo, i)
	}

	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	work := make(chan int)
	g.Go(func() error {
		defer close(work)
		for _, i := range todo {
			select {
			case work <- i:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	for range min(orDefault(opts.Workers, runtime.GOMAXPROCS(0)), max(len(todo), 1)) {
		g.Go(func() error {
			buf := getBuf()
			defer putBuf(buf)
			for i := range work {
				f := files[i]
				d, n, err := hashSourceFile(gctx, src, f.Path, *buf, prog)
				if err != nil {
					return err
				}
				entries[i].Digest, entries[i].Size = d, n
				if opts.StatCache != nil && f.stat.path != "" && n == f.Size {
					opts.StatCache.store(f.stat, d, started)
				}
				mu.Lock()
				st.HashedFiles++
				st.HashedBytes += n
				mu.Unlock()
				prog.Advance(PhaseHash, 1, 0)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, st, err
	}
	m, err := NewManifest(src.Kind(), entries)
	if err != nil {
		return nil, st, err
	}
	return m, st, nil
}

func hashSourceFile(ctx context.Context, src Source, path string, buf []byte, prog Progress) (Digest, int64, error) {
	rc, err := src.Open(ctx, path)
	if err != nil {
		return Digest{}, 0, fmt.Errorf("dataset: open %s: %w", path, err)
	}
	defer rc.Close()
	h := newHash()
	var n int64
	for {
		k, err := rc.Read(buf)
		if k > 0 {
			h.Write(buf[:k])
			n += int64(k)
			prog.Advance(PhaseHash, 0, int64(k))
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return Digest{}, n, fmt.Errorf("dataset: read %s: %w", path, err)
		}
		if ctx.Err() != nil {
			return Digest{}, n, ctx.Err()
		}
	}
	return sumOf(h), n, nil
}

// bufferedTee writes through a buffer to a file and a hash.
type bufferedTee struct {
	buf []byte
	w   io.Writer
	h   io.Writer
	err error
}

func newBufferedTee(w, h io.Writer) *bufferedTee {
	return &bufferedTee{buf: make([]byte, 0, 256<<10), w: w, h: h}
}

func (t *bufferedTee) Write(p []byte) (int, error) {
	if t.err != nil {
		return 0, t.err
	}
	if len(t.buf)+len(p) > cap(t.buf) {
		if err := t.Flush(); err != nil {
			return 0, err
		}
		if len(p) >= cap(t.buf) {
			t.h.Write(p)
			if _, err := t.w.Write(p); err != nil {
				t.err = err
				return 0, err
			}
			return len(p), nil
		}
	}
	t.buf = append(t.buf, p...)
	return len(p), nil
}

// Flush writes out what is buffered.
func (t *bufferedTee) Flush() error {
	if t.err != nil || len(t.buf) == 0 {
		return t.err
	}
	t.h.Write(t.buf)
	if _, err := t.w.Write(t.buf); err != nil {
		t.err = err
		return err
	}
	t.buf = t.buf[:0]
	return nil
}
