package dataset

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/errdefs"
)

// Pack files. A batch of small objects (PutBatch, BatchWriter) is stored
// as one pack: the objects' contents back to back in
// datasets/packs/<p>.pack, and an index of them in datasets/packs/<p>.idx
// (p is a random 128-bit id in hex). Ten thousand small files then
// cost a few object writes instead of ten thousand, which is most of what
// a first `kiln data add` of a tree of small files spends on a local
// disk. The pack is written (durably) before its index, so an index only
// ever names objects that are stored; a crash between the two leaves a
// pack nobody refers to, which is harmless.
//
// Index format: the 4 bytes "KPX1", then one 48-byte entry per object,
// sorted by digest: the digest (32 bytes), the object's offset in the
// pack and its size (big-endian uint64 each).
//
// Readers (Get, Has) look objects up in an in-memory index of the packs,
// loaded on first use and refreshed by listing datasets/packs/ when an
// object is not found where it was expected, so that packs written by
// other processes sharing the store are found too. Loose objects
// (datasets/objects/…) are still read and written as before: single Puts,
// objects larger than BatchObjectMax, and stores written before packs.
const (
	PackPrefix  = "datasets/packs/"
	packMagic   = "KPX1"
	packEntryLn = 32 + 8 + 8
	// packMaxBytes bounds a pack.
	packMaxBytes = BatchMaxBytes
)

func packKey(id string) string  { return PackPrefix + id + ".pack" }
func indexKey(id string) string { return PackPrefix + id + ".idx" }

// packLoc is where an object lies in a pack.
type packLoc struct {
	pack      string // pack id
	off, size int64
}

type packEntry struct {
	d         Digest
	off, size int64
}

// packIndex is the in-memory index of a store's packs.
type packIndex struct {
	mu      sync.Mutex
	loaded  map[string]bool // pack ids whose index is read
	objects map[Digest]packLoc
}

func (ix *packIndex) lookup(d Digest) (packLoc, bool) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	l, ok := ix.objects[d]
	return l, ok
}

func (ix *packIndex) add(id string, ents []packEntry) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.addLocked(id, ents)
}

func (ix *packIndex) addLocked(id string, ents []packEntry) {
	if ix.loaded == nil {
		ix.loaded, ix.objects = map[string]bool{}, map[Digest]packLoc{}
	}
	if ix.loaded[id] {
		return
	}
	ix.loaded[id] = true
	for _, e := range ents {
		if _, ok := ix.objects[e.d]; !ok {
			ix.objects[e.d] = packLoc{pack: id, off: e.off, size: e.size}
		}
	}
}

// refreshPacks reads the indexes of packs not yet loaded (written by
// another process sharing the store).
func (r *BucketRemote) refreshPacks(ctx context.Context) error {
	ix := &r.packs
	ix.mu.Lock()
	defer ix.mu.Unlock()
	entries, err := r.b.List(ctx, strings.TrimSuffix(PackPrefix, "/"))
	if err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil
		}
		return fmt.Errorf("dataset: list packs: %w", err)
	}
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name, ".idx")
		if e.IsDir || !ok || ix.loaded[id] {
			continue
		}
		ents, err := r.readIndex(ctx, id)
		if err != nil {
			return err
		}
		ix.addLocked(id, ents)
	}
	return nil
}

func (r *BucketRemote) readIndex(ctx context.Context, id string) ([]packEntry, error) {
	obj, err := r.b.Get(ctx, indexKey(id))
	if err != nil {
		return nil, fmt.Errorf("dataset: read pack index %s: %w", id, err)
	}
	defer obj.Close()
	data, err := io.ReadAll(obj)
	if err != nil {
		return nil, fmt.Errorf("dataset: read pack index %s: %w", id, err)
	}
	ents, err := decodeIndex(data)
	if err != nil {
		return nil, fmt.Errorf("dataset: pack index %s: %w", id, err)
	}
	return ents, nil
}

func encodeIndex(ents []packEntry) []byte {
	slices.SortFunc(ents, func(a, b packEntry) int { return bytes.Compare(a.d[:], b.d[:]) })
	out := make([]byte, 0, len(packMagic)+len(ents)*packEntryLn)
	out = append(out, packMagic...)
	for _, e := range ents {
		out = append(out, e.d[:]...)
		out = binary.BigEndian.AppendUint64(out, uint64(e.off))
		out = binary.BigEndian.AppendUint64(out, uint64(e.size))
	}
	return out
}

func decodeIndex(data []byte) ([]packEntry, error) {
	if len(data) < len(packMagic) || string(data[:len(packMagic)]) != packMagic {
		return nil, errors.New("not a pack index")
	}
	data = data[len(packMagic):]
	if len(data)%packEntryLn != 0 {
		return nil, fmt.Errorf("%d bytes of entries is not a whole number of %d-byte entries", len(data), packEntryLn)
	}
	ents := make([]packEntry, 0, len(data)/packEntryLn)
	for p := data; len(p) > 0; p = p[packEntryLn:] {
		var e packEntry
		copy(e.d[:], p[:32])
		off, size := binary.BigEndian.Uint64(p[32:]), binary.BigEndian.Uint64(p[40:])
		if off > 1<<62 || size > 1<<62 {
			return nil, fmt.Errorf("object %s: offset %d, size %d out of range", e.d, off, size)
		}
		e.off, e.size = int64(off), int64(size)
		ents = append(ents, e)
	}
	return ents, nil
}

// getPacked opens an object stored in a pack; ok is false when no pack
// known to the index holds it.
func (r *BucketRemote) getPacked(ctx context.Context, d Digest) (io.ReadCloser, bool, error) {
	l, ok := r.packs.lookup(d)
	if !ok {
		return nil, false, nil
	}
	if l.size == 0 {
		// An empty range is not a range S3 serves.
		return &blob.Object{ReadCloser: io.NopCloser(bytes.NewReader(nil)), Size: 0}, true, nil
	}
	obj, err := r.b.GetRange(ctx, packKey(l.pack), l.off, l.size)
	if err != nil {
		return nil, true, fmt.Errorf("dataset: read object %s from pack %s: %w", d, l.pack, err)
	}
	obj.Size = l.size // the object's, not the pack's
	return obj, true, nil
}

// packWriter forms packs from verified objects, streaming each pack into
// the store as it forms (no pack is held in memory).
type packWriter struct {
	r    *BucketRemote
	id   string
	pw   *io.PipeWriter
	bw   *bufio.Writer // in front of pw: the store gets large writes
	done chan error    // the pack's Put, once the pipe is closed
	n    int64
	ents []packEntry
	seen map[Digest]bool
}

// start begins a pack: a Put of datasets/packs/<id>.pack reading from a
// pipe.
func (p *packWriter) start(ctx context.Context) {
	var id [16]byte
	rand.Read(id[:])
	p.id = hex.EncodeToString(id[:])
	pr, pw := io.Pipe()
	p.pw, p.done = pw, make(chan error, 1)
	if p.bw == nil {
		p.bw = bufio.NewWriterSize(pw, 1<<20)
	} else {
		p.bw.Reset(pw)
	}
	go func() {
		_, err := p.r.b.Put(ctx, packKey(p.id), pr, "application/octet-stream")
		pr.CloseWithError(err) // a failed Put stops the writer too
		p.done <- err
	}()
}

// add verifies an object into the pack being formed, and finishes the
// pack once it is full. An object that fails verification abandons the
// pack (nothing of it is stored) and the batch.
func (p *packWriter) add(ctx context.Context, d Digest, size int64, body io.Reader) error {
	v := newVerifier(body, d, size, "object "+d.String(), nil)
	if p.seen[d] {
		_, err := io.Copy(io.Discard, v)
		return err
	}
	if p.pw == nil {
		p.start(ctx)
	}
	n, err := io.Copy(p.bw, v)
	if err != nil {
		p.abort(err)
		if v.err != nil && !errors.Is(v.err, io.EOF) {
			return v.err
		}
		return fmt.Errorf("dataset: store object %s in a pack: %w", d, err)
	}
	if p.seen == nil {
		p.seen = map[Digest]bool{}
	}
	p.seen[d] = true
	p.ents = append(p.ents, packEntry{d: d, off: p.n, size: n})
	p.n += n
	if p.n >= packMaxBytes {
		return p.flush(ctx)
	}
	return nil
}

// flush finishes the pack being formed, then writes its index and adds
// it to the in-memory index.
func (p *packWriter) flush(ctx context.Context) error {
	if p.pw == nil {
		return nil
	}
	err := p.bw.Flush()
	if err != nil {
		p.pw.CloseWithError(err)
	} else {
		p.pw.Close()
	}
	if perr := <-p.done; err == nil {
		err = perr
	}
	id, ents := p.id, p.ents
	p.reset()
	if err != nil {
		return fmt.Errorf("dataset: store pack of %d objects: %w", len(ents), err)
	}
	if _, err := p.r.b.Put(ctx, indexKey(id), bytes.NewReader(encodeIndex(ents)), "application/octet-stream"); err != nil {
		return fmt.Errorf("dataset: store pack index of %d objects: %w", len(ents), err)
	}
	p.r.packs.add(id, ents)
	return nil
}

// abort abandons the pack being formed: its Put fails, so nothing of it
// is stored.
func (p *packWriter) abort(cause error) {
	if p.pw == nil {
		return
	}
	p.pw.CloseWithError(cause)
	<-p.done
	p.reset()
}

func (p *packWriter) reset() {
	p.id, p.pw, p.done, p.n, p.ents = "", nil, nil, 0, nil
	for d := range p.seen {
		delete(p.seen, d)
	}
}

// keepPacked reports whether an object of the given size goes into a
// pack when it is part of a batch.
func keepPacked(size int64) bool { return size >= 0 && size <= BatchObjectMax }
