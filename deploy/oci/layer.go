package oci

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
)

// entry is one file or directory of a layer.
type entry struct {
	name     string // path in the image, without a leading slash; directories end in "/"
	mode     int64
	uid, gid int
	src      string // local file to copy; "" with data for small files
	data     []byte
	size     int64
}

// fileLayer is a gzip-compressed layer in a temporary file, with its
// digests computed while it was written.
type fileLayer struct {
	path     string
	digest   v1.Hash // of the compressed blob
	diffID   v1.Hash // of the uncompressed tar
	size     int64   // compressed
	tarSize  int64
	progress func(int64) // counts bytes read through Compressed, when set
}

var _ v1.Layer = (*fileLayer)(nil)

func (l *fileLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *fileLayer) Size() (int64, error)                { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) { return types.OCILayer, nil }

func (l *fileLayer) Compressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	if l.progress == nil {
		return f, nil
	}
	return &countingReader{f: f, add: l.progress}, nil
}

func (l *fileLayer) Uncompressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &gunzipReader{Reader: zr, f: f}, nil
}

type gunzipReader struct {
	*gzip.Reader
	f *os.File
}

func (r *gunzipReader) Close() error { return errors.Join(r.Reader.Close(), r.f.Close()) }

type countingReader struct {
	f   io.ReadCloser
	add func(int64)
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.f.Read(p)
	if n > 0 {
		r.add(int64(n))
	}
	return n, err
}

func (r *countingReader) Close() error { return r.f.Close() }

// hashCounter hashes and counts what is written to it.
type hashCounter struct {
	h hash.Hash
	n int64
}

func (c *hashCounter) Write(p []byte) (int, error) {
	c.h.Write(p)
	c.n += int64(len(p))
	return len(p), nil
}

func (c *hashCounter) sum() v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", c.h.Sum(nil))}
}

// writeLayer writes entries as a gzip-compressed tar into a new file in
// dir. Every header has mtime, no user or group names and PAX-free
// fields where the format allows, so equal entries give equal bytes.
// read reports the bytes of file contents copied.
func writeLayer(ctx context.Context, dir string, entries []entry, mtime time.Time, level int, read func(int64)) (_ *fileLayer, err error) {
	f, err := os.CreateTemp(dir, "layer-*.tar.gz")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	blob := &hashCounter{h: sha256.New()}
	zw, err := gzip.NewWriterLevel(io.MultiWriter(f, blob), level)
	if err != nil {
		return nil, err
	}
	diff := &hashCounter{h: sha256.New()}
	tw := tar.NewWriter(io.MultiWriter(zw, diff))
	buf := make([]byte, 1<<20)
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr := &tar.Header{
			Name:    e.name,
			Mode:    e.mode,
			Uid:     e.uid,
			Gid:     e.gid,
			ModTime: mtime,
		}
		if strings.HasSuffix(e.name, "/") {
			hdr.Typeflag = tar.TypeDir
		} else {
			hdr.Typeflag, hdr.Size = tar.TypeReg, e.size
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("%s: %w", e.name, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		if e.src == "" {
			if _, err := tw.Write(e.data); err != nil {
				return nil, err
			}
			continue
		}
		if err := copyFile(tw, e, buf, read); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return &fileLayer{path: f.Name(), digest: blob.sum(), diffID: diff.sum(), size: blob.n, tarSize: diff.n}, nil
}

// copyFile copies e.src, checking that it still has the size it had when
// the entries were listed (a tar header cannot be taken back).
func copyFile(w io.Writer, e entry, buf []byte, read func(int64)) error {
	src, err := os.Open(e.src)
	if err != nil {
		return err
	}
	defer src.Close()
	var r io.Reader = io.LimitReader(src, e.size)
	if read != nil {
		r = &countingReader{f: io.NopCloser(r), add: read}
	}
	n, err := io.CopyBuffer(w, r, buf)
	if err != nil {
		return fmt.Errorf("%s: %w", e.src, err)
	}
	if n != e.size {
		return fmt.Errorf("%s: changed while it was packed (%d bytes, was %d)", e.src, n, e.size)
	}
	return nil
}

// parents returns directory entries for every parent of name ("a/b/c"
// gives "a/" and "a/b/"), mode 0755, owned by root.
func parents(name string) []entry {
	var out []entry
	for d := path.Dir(strings.TrimSuffix(name, "/")); d != "." && d != "/"; d = path.Dir(d) {
		out = append([]entry{{name: d + "/", mode: 0o755}}, out...)
	}
	return out
}

// dirEntries lists the model directory dir as entries under prefix
// ("model/"), sorted by name. Regular files keep their executable bit
// (mode 0755, else 0644); directories are 0755; everything is owned by
// root and readable by all. Symbolic links are followed when they point
// to a regular file inside dir; anything else is refused.
func dirEntries(dir, prefix string) ([]entry, int64, error) {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, 0, err
	}
	entries := []entry{{name: prefix, mode: 0o755}}
	var total int64
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		name := prefix + filepath.ToSlash(rel)
		typ := d.Type()
		src := p
		if typ&fs.ModeSymlink != 0 {
			target, err := filepath.EvalSymlinks(p)
			if err != nil {
				return fmt.Errorf("model directory: %w", err)
			}
			if r, err := filepath.Rel(root, target); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
				return fmt.Errorf("model directory: %s links outside the directory (to %s)", rel, target)
			}
			st, err := os.Stat(target)
			if err != nil {
				return err
			}
			if !st.Mode().IsRegular() {
				return fmt.Errorf("model directory: %s links to something that is not a regular file", rel)
			}
			typ, src = 0, target
		}
		switch {
		case d.IsDir():
			entries = append(entries, entry{name: name + "/", mode: 0o755})
		case typ.IsRegular():
			st, err := os.Stat(src)
			if err != nil {
				return err
			}
			mode := int64(0o644)
			if st.Mode()&0o111 != 0 {
				mode = 0o755
			}
			entries = append(entries, entry{name: name, mode: mode, src: src, size: st.Size()})
			total += st.Size()
		default:
			return fmt.Errorf("model directory: %s is not a regular file or directory (%v)", rel, typ)
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	return entries, total, nil
}
