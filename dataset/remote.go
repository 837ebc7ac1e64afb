package dataset

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/errdefs"
)

// Remote stores objects (file contents, addressed by digest) and manifests.
// Implementations: BucketRemote (an artifact store, used in-process by the
// server), Cache (a local folder), and an HTTP client of the server.
//
// Put must verify that r hashes to digest and has size bytes, and store
// nothing otherwise (an error matching ErrDigestMismatch). Get and
// GetManifest return an error matching errdefs.ErrNotFound for a digest
// that is not stored. Implementations are safe for concurrent use.
type Remote interface {
	// Has returns the digests of ds that the remote does not hold, in the
	// order given.
	Has(ctx context.Context, ds []Digest) (missing []Digest, err error)
	Put(ctx context.Context, d Digest, size int64, r io.Reader) error
	Get(ctx context.Context, d Digest) (io.ReadCloser, error)
	// PutManifest stores m under m.Digest() and returns that digest.
	PutManifest(ctx context.Context, m *Manifest) (Digest, error)
	GetManifest(ctx context.Context, d Digest) (*Manifest, error)
}

// Keys of dataset content in an artifact store: a top-level prefix of its
// own, beside MLflow's experiment folders.
const (
	ObjectPrefix   = "datasets/objects/"
	ManifestPrefix = "datasets/manifests/"
)

// ObjectKey returns the key of an object: datasets/objects/<d[0:2]>/<d[2:]>.
func ObjectKey(d Digest) string {
	s := d.String()
	return ObjectPrefix + s[:2] + "/" + s[2:]
}

// ManifestKey returns the key of a manifest: datasets/manifests/<d>.json.
func ManifestKey(d Digest) string { return ManifestPrefix + d.String() + ".json" }

// BucketRemote is a Remote on an artifact store.
type BucketRemote struct {
	b *blob.Bucket
	// Parallel bounds the existence checks in flight in Has (default 32).
	Parallel int

	listings atomic.Int64 // Has calls answered by listing (for tests)
	packs    packIndex
}

var _ Remote = (*BucketRemote)(nil)

// NewBucketRemote returns a Remote that keeps objects and manifests in b.
func NewBucketRemote(b *blob.Bucket) *BucketRemote { return &BucketRemote{b: b} }

// Has checks the objects with existence requests, several in flight; for
// a large batch it lists the shards instead when that costs fewer
// requests (a remote of N objects lists in about N/1000 pages), as a no-op
// push of a big tree must not take one request per file.
func (r *BucketRemote) Has(ctx context.Context, ds []Digest) ([]Digest, error) {
	if len(ds) == 0 {
		return nil, nil
	}
	// Objects in packs first, then loose objects. The packs are listed
	// again only when the index lacks one of ds (a re-push, or a
	// manifest's check after its objects were pushed, lists nothing).
	notPacked := func(ds []Digest) []Digest {
		var out []Digest
		for _, d := range ds {
			if _, ok := r.packs.lookup(d); !ok {
				out = append(out, d)
			}
		}
		return out
	}
	loose := notPacked(ds)
	if len(loose) > 0 {
		if err := r.refreshPacks(ctx); err != nil {
			return nil, err
		}
		loose = notPacked(loose)
	}
	if len(loose) == 0 {
		return nil, nil
	}
	return r.hasLoose(ctx, loose)
}

// hasLoose checks loose objects (datasets/objects/…).
func (r *BucketRemote) hasLoose(ctx context.Context, ds []Digest) ([]Digest, error) {
	present := make([]bool, len(ds))
	if len(ds) >= listThreshold {
		ok, err := r.hasByListing(ctx, ds, present)
		if err != nil {
			return nil, err
		}
		if ok {
			return missingOf(ds, present), nil
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(orDefault(r.Parallel, 32))
	for i, d := range ds {
		g.Go(func() error {
			ok, err := r.b.Exists(gctx, ObjectKey(d))
			if err != nil {
				return fmt.Errorf("dataset: check object %s: %w", d, err)
			}
			present[i] = ok
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return missingOf(ds, present), nil
}

// listThreshold is the batch size from which Has considers listing.
const listThreshold = 2048

func missingOf(ds []Digest, present []bool) []Digest {
	var missing []Digest
	for i, d := range ds {
		if !present[i] {
			missing = append(missing, d)
		}
	}
	return missing
}

// hasByListing fills present by listing the shards that hold the digests,
// if the listing is estimated (from one shard's size) to take fewer
// requests than checking each digest. It reports whether it listed.
func (r *BucketRemote) hasByListing(ctx context.Context, ds []Digest, present []bool) (bool, error) {
	shards := map[string][]int{}
	for i, d := range ds {
		s := d.String()[:2]
		shards[s] = append(shards[s], i)
	}
	list := func(shard string) (map[string]bool, error) {
		entries, err := r.b.List(ctx, ObjectPrefix+shard)
		if err != nil {
			return nil, fmt.Errorf("dataset: list objects: %w", err)
		}
		names := make(map[string]bool, len(entries))
		for _, e := range entries {
			if !e.IsDir {
				names[e.Name] = true
			}
		}
		return names, nil
	}
	first := ds[0].String()[:2]
	sample, err := list(first)
	if err != nil {
		return false, err
	}
	pagesPerShard := len(sample)/1000 + 1
	if len(shards)*pagesPerShard*4 > len(ds) {
		return false, nil
	}
	var mu sync.Mutex
	mark := func(shard string, names map[string]bool) {
		mu.Lock()
		defer mu.Unlock()
		for _, i := range shards[shard] {
			present[i] = names[ds[i].String()[2:]]
		}
	}
	mark(first, sample)
	r.listings.Add(1)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(orDefault(r.Parallel, 32))
	for shard := range shards {
		if shard == first {
			continue
		}
		g.Go(func() error {
			if gctx.Err() != nil {
				return gctx.Err()
			}
			names, err := list(shard)
			if err != nil {
				return err
			}
			mark(shard, names)
			return nil
		})
	}
	return true, g.Wait()
}

// Put streams the object into the store, verifying it on the way: a wrong
// digest or size abandons the write.
func (r *BucketRemote) Put(ctx context.Context, d Digest, size int64, body io.Reader) error {
	v := newVerifier(body, d, size, "object "+d.String(), nil)
	if _, err := r.b.Put(ctx, ObjectKey(d), v, "application/octet-stream"); err != nil {
		if v.err != nil && !errors.Is(v.err, io.EOF) {
			return v.err
		}
		return fmt.Errorf("dataset: store object %s: %w", d, err)
	}
	return nil
}

// Get opens the object for reading. The caller verifies what it reads.
func (r *BucketRemote) Get(ctx context.Context, d Digest) (io.ReadCloser, error) {
	if rc, ok, err := r.getPacked(ctx, d); ok {
		return rc, err
	}
	obj, err := r.b.Get(ctx, ObjectKey(d))
	if err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			// Perhaps in a pack another process wrote.
			if rerr := r.refreshPacks(ctx); rerr != nil {
				return nil, rerr
			}
			if rc, ok, err := r.getPacked(ctx, d); ok {
				return rc, err
			}
			return nil, &errdefs.Error{Kind: errdefs.ErrNotFound, Msg: fmt.Sprintf("Object %s does not exist", d), Err: err}
		}
		return nil, fmt.Errorf("dataset: read object %s: %w", d, err)
	}
	return obj, nil
}

// PutManifest stores the canonical encoding of m.
func (r *BucketRemote) PutManifest(ctx context.Context, m *Manifest) (Digest, error) {
	if err := m.Validate(); err != nil {
		return Digest{}, err
	}
	data := m.Encode()
	d := Sum(data)
	if _, err := r.b.Put(ctx, ManifestKey(d), bytes.NewReader(data), "application/json"); err != nil {
		return Digest{}, fmt.Errorf("dataset: store manifest %s: %w", d, err)
	}
	return d, nil
}

// GetManifest reads, verifies and decodes a manifest.
func (r *BucketRemote) GetManifest(ctx context.Context, d Digest) (*Manifest, error) {
	obj, err := r.b.Get(ctx, ManifestKey(d))
	if err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil, &errdefs.Error{Kind: errdefs.ErrNotFound, Msg: fmt.Sprintf("Manifest %s does not exist", d), Err: err}
		}
		return nil, fmt.Errorf("dataset: read manifest %s: %w", d, err)
	}
	defer obj.Close()
	return readManifest(obj, d)
}

// readManifest reads a manifest stored under d, checking that it hashes to d.
func readManifest(r io.Reader, d Digest) (*Manifest, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxManifestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("dataset: read manifest %s: %w", d, err)
	}
	if got := Sum(data); got != d {
		return nil, mismatch("manifest %s: content hashes to %s", d, got)
	}
	m, err := DecodeManifest(data)
	if err != nil {
		return nil, fmt.Errorf("dataset: manifest %s: %w", d, err)
	}
	return m, nil
}

func orDefault(n, def int) int {
	if n <= 0 {
		return def
	}
	return n
}
