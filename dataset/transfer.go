package dataset

import (
	"context"
	"fmt"
	"io"

	"golang.org/x/sync/errgroup"
)

// TransferOptions configure Push and Fetch.
type TransferOptions struct {
	// Parallel bounds the objects in flight (default 64: small objects
	// spend their time waiting on the store, not on the CPU).
	Parallel int
	// HasBatch is how many digests one existence check asks about
	// (default 1000).
	HasBatch int
	Progress Progress
}

// TransferStats say what a transfer did. Objects are counted once per
// distinct digest, however many paths share it.
type TransferStats struct {
	Objects     int   // distinct objects in the manifest
	Bytes       int64 // their total size
	Sent        int   // objects copied
	SentBytes   int64
	Present     int // objects the destination already held
	ManifestSet bool
}

// uniqueObjects returns one entry per distinct digest.
func uniqueObjects(m *Manifest) []Entry {
	seen := make(map[Digest]struct{}, len(m.Files))
	out := make([]Entry, 0, len(m.Files))
	for _, e := range m.Files {
		if _, ok := seen[e.Digest]; ok {
			continue
		}
		seen[e.Digest] = struct{}{}
		out = append(out, e)
	}
	return out
}

// Push uploads to dst the objects of m that it lacks, reading them from
// src, then the manifest, so that a stored manifest never names a missing
// object. A file that changed since it was hashed fails the push with an
// error matching ErrDigestMismatch.
func Push(ctx context.Context, src Source, m *Manifest, dst Remote, opts TransferOptions) (TransferStats, error) {
	open := func(ctx context.Context, e Entry) (io.ReadCloser, error) { return src.Open(ctx, e.Path) }
	return transfer(ctx, open, m, dst, PhaseUpload, opts)
}

// Fetch copies from one remote to another (typically into a Cache) the
// objects of m that the destination lacks, verifying each, then the
// manifest.
func Fetch(ctx context.Context, from Remote, m *Manifest, to Remote, opts TransferOptions) (TransferStats, error) {
	open := func(ctx context.Context, e Entry) (io.ReadCloser, error) { return from.Get(ctx, e.Digest) }
	return transfer(ctx, open, m, to, PhaseDownload, opts)
}

func transfer(ctx context.Context, open func(context.Context, Entry) (io.ReadCloser, error), m *Manifest, dst Remote, phase Phase, opts TransferOptions) (TransferStats, error) {
	if err := m.Validate(); err != nil {
		return TransferStats{}, err
	}
	objs := uniqueObjects(m)
	st := TransferStats{Objects: len(objs)}
	for _, e := range objs {
		st.Bytes += e.Size
	}
	missing, err := missingObjects(ctx, dst, objs, orDefault(opts.HasBatch, 1000))
	if err != nil {
		return st, err
	}
	st.Present = len(objs) - len(missing)
	prog := progressOrNop(opts.Progress)
	var total int64
	for _, e := range missing {
		total += e.Size
	}
	prog.Begin(phase, len(missing), total)
	defer prog.End(phase)

	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(orDefault(opts.Parallel, 64))
	sent := make([]bool, len(missing))
	// Small objects travel in batches when the destination takes them:
	// one request and one durability barrier per batch.
	single := make([]int, 0, len(missing))
	if br, ok := dst.(BatchRemote); ok {
		var batch []BatchObject
		var idx []int
		var bytes int64
		flush := func() {
			if len(batch) == 0 {
				return
			}
			objs, which := batch, idx
			batch, idx, bytes = nil, nil, 0
			g.Go(func() error {
				if err := br.PutBatch(gctx, objs); err != nil {
					return fmt.Errorf("dataset: batch of %d objects: %w", len(objs), err)
				}
				for _, i := range which {
					sent[i] = true
				}
				return nil
			})
		}
		for i, e := range missing {
			if e.Size > BatchObjectMax {
				single = append(single, i)
				continue
			}
			batch = append(batch, BatchObject{Digest: e.Digest, Size: e.Size, Open: func(ctx context.Context) (io.ReadCloser, error) {
				rc, err := open(ctx, e)
				if err != nil {
					return nil, fmt.Errorf("dataset: %s: %w", e.Path, err)
				}
				return &progressReadCloser{rc: rc, fn: func(n int) { prog.Advance(phase, 0, int64(n)) }, done: func() { prog.Advance(phase, 1, 0) }}, nil
			}})
			idx = append(idx, i)
			bytes += e.Size
			if len(batch) == BatchMaxObjects || bytes >= BatchMaxBytes {
				flush()
			}
		}
		flush()
	} else {
		for i := range missing {
			single = append(single, i)
		}
	}
	for _, i := range single {
		e := missing[i]
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			rc, err := open(gctx, e)
			if err != nil {
				return fmt.Errorf("dataset: %s: %w", e.Path, err)
			}
			defer rc.Close()
			// Put verifies the digest and size (the Remote contract), so a
			// file that changed since it was hashed, or a corrupted object,
			// is caught there.
			r := &countingReader{r: rc, fn: func(n int) { prog.Advance(phase, 0, int64(n)) }}
			if err := dst.Put(gctx, e.Digest, e.Size, r); err != nil {
				return fmt.Errorf("dataset: %s: %w", e.Path, err)
			}
			sent[i] = true
			prog.Advance(phase, 1, 0)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return st, err
	}
	if err := ctx.Err(); err != nil {
		return st, err
	}
	for i, ok := range sent {
		if ok {
			st.Sent++
			st.SentBytes += missing[i].Size
		}
	}
	if _, err := dst.PutManifest(ctx, m); err != nil {
		return st, err
	}
	st.ManifestSet = true
	return st, nil
}

// missingObjects asks dst which of objs it lacks, in batches, a few in
// flight (each is a round trip to a server), keeping objs' order.
func missingObjects(ctx context.Context, dst Remote, objs []Entry, batch int) ([]Entry, error) {
	chunks := (len(objs) + batch - 1) / batch
	results := make([][]Entry, chunks)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(hasInFlight)
	for i := range chunks {
		chunk := objs[i*batch : min((i+1)*batch, len(objs))]
		g.Go(func() error {
			byDigest := make(map[Digest]Entry, len(chunk))
			ds := make([]Digest, len(chunk))
			for j, e := range chunk {
				byDigest[e.Digest] = e
				ds[j] = e.Digest
			}
			miss, err := dst.Has(gctx, ds)
			if err != nil {
				return err
			}
			for _, d := range miss {
				e, ok := byDigest[d]
				if !ok {
					return fmt.Errorf("dataset: remote reported unknown digest %s missing", d)
				}
				results[i] = append(results[i], e)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var out []Entry
	for _, r := range results {
		out = append(out, r...)
	}
	return out, nil
}

// hasInFlight bounds the existence checks missingObjects runs at once.
const hasInFlight = 4

// countingReader reports the bytes read through it.
type countingReader struct {
	r  io.Reader
	fn func(int)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.fn(n)
	}
	return n, err
}

// progressReadCloser reports the bytes read through it, and the object
// done when closed.
type progressReadCloser struct {
	rc   io.ReadCloser
	fn   func(int)
	done func()
}

func (p *progressReadCloser) Read(b []byte) (int, error) {
	n, err := p.rc.Read(b)
	if n > 0 {
		p.fn(n)
	}
	return n, err
}

func (p *progressReadCloser) Close() error {
	p.done()
	return p.rc.Close()
}
