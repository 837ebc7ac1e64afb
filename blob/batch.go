package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
)

// A Batch writes many objects behind one durability barrier. In a local
// folder each Put writes a hidden temporary file without syncing it;
// Commit flushes them all to disk at once, renames them into place and
// flushes the renames, so N small objects cost two file-system syncs
// instead of 2N fsyncs. Objects appear only at Commit, each whole. In
// other stores each Put is an ordinary Put (durable when it returns) and
// Commit does nothing more.
//
// Put may be called from several goroutines. After Commit or Abort the
// batch is done.
type Batch struct {
	b       *Bucket
	mu      sync.Mutex
	pending []pendingFile
	done    bool
}

type pendingFile struct{ tmp, final string }

// NewBatch starts a batch of writes.
func (b *Bucket) NewBatch() *Batch { return &Batch{b: b} }

var tmpSeq atomic.Uint64

// Put writes r to key and returns the number of bytes written. In a local
// folder the object becomes visible (and durable) only at Commit; an
// error from r abandons this object alone.
func (bt *Batch) Put(ctx context.Context, key string, r io.Reader, contentType string) (int64, error) {
	if !bt.b.file {
		return bt.b.Put(ctx, key, r, contentType)
	}
	key, err := CleanKey(key)
	if err != nil {
		return 0, err
	}
	if key == "" {
		return 0, errdefs.Invalid("Invalid artifact path: empty")
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	final := filepath.Join(bt.b.dir, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return 0, fmt.Errorf("blob: write %s: %w", key, err)
	}
	// The name fileblob gives its in-flight files, so listings hide it:
	// <name>.<16 hex digits>.tmp.
	suffix := uint64(time.Now().UnixNano()) ^ tmpSeq.Add(1)<<1
	tmp := final + "." + fmt.Sprintf("%016x", suffix) + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return 0, fmt.Errorf("blob: write %s: %w", key, err)
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return n, fmt.Errorf("blob: write %s: %w", key, err)
	}
	bt.mu.Lock()
	defer bt.mu.Unlock()
	if bt.done {
		os.Remove(tmp)
		return n, errors.New("blob: batch already committed or aborted")
	}
	bt.pending = append(bt.pending, pendingFile{tmp: tmp, final: final})
	return n, nil
}

// Len returns the number of objects written and not yet committed.
func (bt *Batch) Len() int {
	bt.mu.Lock()
	defer bt.mu.Unlock()
	return len(bt.pending)
}

// Commit makes every object of the batch durable and visible. On error
// some objects may be in place and the rest are removed.
func (bt *Batch) Commit(ctx context.Context) error {
	bt.mu.Lock()
	pending := bt.pending
	bt.pending, bt.done = nil, true
	bt.mu.Unlock()
	if len(pending) == 0 {
		return nil
	}
	fail := func(err error, from int) error {
		for _, p := range pending[from:] {
			os.Remove(p.tmp)
		}
		return fmt.Errorf("blob: commit batch of %d objects: %w", len(pending), err)
	}
	// Data first, then names: a crash never leaves a visible object
	// whose bytes did not reach the disk.
	if err := syncData(bt.b.dir, pending); err != nil {
		return fail(err, 0)
	}
	for i, p := range pending {
		if err := ctx.Err(); err != nil {
			return fail(err, i)
		}
		if err := os.Rename(p.tmp, p.final); err != nil {
			return fail(err, i)
		}
	}
	if err := syncNames(bt.b.dir, pending); err != nil {
		return fmt.Errorf("blob: commit batch of %d objects: %w", len(pending), err)
	}
	return nil
}

// Abort removes the objects written and not committed.
func (bt *Batch) Abort() {
	bt.mu.Lock()
	pending := bt.pending
	bt.pending, bt.done = nil, true
	bt.mu.Unlock()
	for _, p := range pending {
		os.Remove(p.tmp)
	}
}

// fsyncFiles syncs each temporary file (the portable fallback of
// syncData).
func fsyncFiles(pending []pendingFile) error {
	for _, p := range pending {
		f, err := os.OpenFile(p.tmp, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// fsyncDirs syncs each folder that received a rename (the portable
// fallback of syncNames).
func fsyncDirs(pending []pendingFile) error {
	seen := map[string]bool{}
	for _, p := range pending {
		d := filepath.Dir(p.final)
		if seen[d] {
			continue
		}
		seen[d] = true
		if err := syncDir(d); err != nil {
			return err
		}
	}
	return nil
}
