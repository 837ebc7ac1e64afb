package dataset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
)

// BatchObject is one object of a batch upload.
type BatchObject struct {
	Digest Digest
	Size   int64
	// Open returns the object's content. It is called once, when the
	// object's turn comes, and the reader is closed after it.
	Open func(ctx context.Context) (io.ReadCloser, error)
}

// A BatchRemote stores many objects in one operation, acknowledging them
// all together: one request instead of one per object over HTTP, and one
// durability barrier instead of one per object in a local folder. Push
// sends small objects this way when the destination supports it.
//
// PutBatch verifies every object like Put and stores either all of them
// or, on error, none that it acknowledged (objects already stored before
// the failure may remain, as after a failed Put: they are correct, only
// not yet referenced).
type BatchRemote interface {
	Remote
	PutBatch(ctx context.Context, objs []BatchObject) error
}

// Limits of the batches Push forms.
const (
	// BatchObjectMax is the largest object sent in a batch; larger ones
	// go one by one (they are few, and each one is worth its request).
	BatchObjectMax = 256 << 10
	// BatchMaxObjects and BatchMaxBytes bound one batch.
	BatchMaxObjects = 2000
	BatchMaxBytes   = 32 << 20
)

var _ BatchRemote = (*BucketRemote)(nil)

// PutBatch stores the small objects in packs (see PackPrefix) and the
// others behind one durability barrier of the artifact store (see
// blob.Batch).
func (r *BucketRemote) PutBatch(ctx context.Context, objs []BatchObject) error {
	w := r.NewBatchWriter()
	for _, o := range objs {
		if err := w.put(ctx, o.Digest, o.Size, o.Open); err != nil {
			w.Abort()
			return err
		}
	}
	if err := w.Commit(ctx); err != nil {
		w.Abort()
		return fmt.Errorf("dataset: store %d objects: %w", len(objs), err)
	}
	return nil
}

// BatchWriter stores a stream of objects behind one durability barrier,
// for servers that receive a batch one object at a time: small objects in
// packs, larger ones as loose objects of one blob.Batch.
type BatchWriter struct {
	r    *BucketRemote
	bt   batchPutter
	mu   sync.Mutex
	pack packWriter
}

type batchPutter interface {
	Put(ctx context.Context, key string, r io.Reader, contentType string) (int64, error)
	Commit(ctx context.Context) error
	Abort()
}

// NewBatchWriter starts a batch.
func (r *BucketRemote) NewBatchWriter() *BatchWriter {
	return &BatchWriter{r: r, bt: r.b.NewBatch(), pack: packWriter{r: r}}
}

// Put verifies and writes one object of the batch.
func (w *BatchWriter) Put(ctx context.Context, d Digest, size int64, body io.Reader) error {
	return w.put(ctx, d, size, func(context.Context) (io.ReadCloser, error) { return io.NopCloser(body), nil })
}

func (w *BatchWriter) put(ctx context.Context, d Digest, size int64, open func(context.Context) (io.ReadCloser, error)) error {
	if !keepPacked(size) {
		return w.r.putInBatch(ctx, w.bt, d, size, open)
	}
	rc, err := open(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pack.add(ctx, d, size, rc)
}

// Commit makes the batch's objects durable and visible: the last pack,
// then the loose objects.
func (w *BatchWriter) Commit(ctx context.Context) error {
	w.mu.Lock()
	err := w.pack.flush(ctx)
	w.mu.Unlock()
	if err != nil {
		return err
	}
	return w.bt.Commit(ctx)
}

// Abort drops the objects not committed (packs already written stay:
// their objects are correct, only not referenced).
func (w *BatchWriter) Abort() {
	w.mu.Lock()
	w.pack.abort(errors.New("batch aborted"))
	w.mu.Unlock()
	w.bt.Abort()
}

func (r *BucketRemote) putInBatch(ctx context.Context, bt batchPutter, d Digest, size int64, open func(context.Context) (io.ReadCloser, error)) error {
	rc, err := open(ctx)
	if err != nil {
		return err
	}
	defer rc.Close()
	v := newVerifier(rc, d, size, "object "+d.String(), nil)
	if _, err := bt.Put(ctx, ObjectKey(d), v, "application/octet-stream"); err != nil {
		if v.err != nil && !errors.Is(v.err, io.EOF) {
			return v.err
		}
		return fmt.Errorf("dataset: store object %s: %w", d, err)
	}
	return nil
}
