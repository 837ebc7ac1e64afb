package dataset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/kiln-ml/kiln/errdefs"
)

// Cache is a local folder of objects and manifests, laid out as in an
// artifact store (objects/<d[0:2]>/<d[2:]>, manifests/<d>.json). A pull
// fetches into it the objects it lacks; a checkout copies from it. It is a
// Remote, so the same transfers serve both directions.
//
// Objects are verified before they are renamed into place; a cache is a
// copy of a remote and is not synced to disk, so an object that a power
// loss damaged fails verification on checkout and is fetched again by Pull.
type Cache struct {
	dir string
}

var _ Remote = (*Cache)(nil)

// OpenCache opens (creating if needed) the cache in dir.
func OpenCache(dir string) (*Cache, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	for _, sub := range []string{"objects", "manifests", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("dataset: create cache: %w", err)
		}
	}
	return &Cache{dir: dir}, nil
}

// Dir returns the cache's folder.
func (c *Cache) Dir() string { return c.dir }

func (c *Cache) objectPath(d Digest) string {
	s := d.String()
	return filepath.Join(c.dir, "objects", s[:2], s[2:])
}

func (c *Cache) manifestPath(d Digest) string {
	return filepath.Join(c.dir, "manifests", d.String()+".json")
}

// Has reports the objects that are not in the cache.
func (c *Cache) Has(ctx context.Context, ds []Digest) ([]Digest, error) {
	var missing []Digest
	for i, d := range ds {
		if i%1024 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if _, err := os.Stat(c.objectPath(d)); err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("dataset: cache: %w", err)
			}
			missing = append(missing, d)
		}
	}
	return missing, nil
}

// Put writes the object through a temporary file, verifying it.
func (c *Cache) Put(ctx context.Context, d Digest, size int64, r io.Reader) error {
	p := c.objectPath(d)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("dataset: cache: %w", err)
	}
	v := newVerifier(ctxReader{ctx, r}, d, size, "object "+d.String(), nil)
	// The temporary file goes next to the object: 256 folders share the
	// creations of parallel writers, rather than one folder's lock.
	return writeAtomic(p, filepath.Dir(p), v, 0o444)
}

// Get opens the object. The caller verifies what it reads.
func (c *Cache) Get(ctx context.Context, d Digest) (io.ReadCloser, error) {
	f, err := os.Open(c.objectPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errdefs.NotFound("Object %s is not in the cache", d)
	}
	if err != nil {
		return nil, fmt.Errorf("dataset: cache: %w", err)
	}
	return f, nil
}

// Remove deletes an object from the cache (one that failed verification).
func (c *Cache) Remove(d Digest) error {
	err := os.Remove(c.objectPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// PutManifest stores the canonical encoding of m.
func (c *Cache) PutManifest(ctx context.Context, m *Manifest) (Digest, error) {
	if err := m.Validate(); err != nil {
		return Digest{}, err
	}
	data := m.Encode()
	d := Sum(data)
	if err := writeAtomic(c.manifestPath(d), filepath.Join(c.dir, "tmp"), newVerifier(bytesReader(data), d, int64(len(data)), "manifest", nil), 0o444); err != nil {
		return Digest{}, err
	}
	return d, nil
}

// GetManifest reads, verifies and decodes a manifest.
func (c *Cache) GetManifest(ctx context.Context, d Digest) (*Manifest, error) {
	f, err := os.Open(c.manifestPath(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errdefs.NotFound("Manifest %s is not in the cache", d)
	}
	if err != nil {
		return nil, fmt.Errorf("dataset: cache: %w", err)
	}
	defer f.Close()
	return readManifest(f, d)
}

// writeAtomic copies r into a temporary file in tmpDir and renames it to
// path, so that path appears whole or not at all. A read error (including
// a digest mismatch from a verifier) leaves nothing behind.
func writeAtomic(path, tmpDir string, r io.Reader, mode fs.FileMode) error {
	f, err := os.CreateTemp(tmpDir, ".kiln-*.tmp")
	if err != nil {
		return fmt.Errorf("dataset: %w", err)
	}
	tmp := f.Name()
	buf := getBuf()
	_, err = io.CopyBuffer(f, onlyReader{r}, *buf)
	putBuf(buf)
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		if errors.Is(err, ErrDigestMismatch) {
			return err
		}
		return fmt.Errorf("dataset: write %s: %w", path, err)
	}
	return nil
}

// ctxReader stops a long copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
