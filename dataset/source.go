package dataset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/errdefs"
)

// Source is a tree of files to version: a local file or folder, or the
// objects under a prefix of a bucket.
type Source interface {
	// Kind is KindFile for a single file, KindDir for a tree.
	Kind() Kind
	// Walk calls fn for every file, in no particular order. Paths are
	// manifest paths: slash-separated, relative to the root (a file
	// source's one file is named by its base name).
	Walk(ctx context.Context, fn func(SourceFile) error) error
	// Open opens the file at a manifest path for reading.
	Open(ctx context.Context, path string) (io.ReadCloser, error)
	// URI names the source (recorded as a version's source).
	URI() string
	Close() error
}

// SourceFile is a file found by Source.Walk.
type SourceFile struct {
	Path string
	Size int64
	Exec bool
	stat statKey // set for local files: what the stat cache keys on
}

// OpenSource opens a local path, or a URL that the blob package opens
// (s3://bucket/prefix, gs://…, azblob://…, mem://…; file:// is a local
// path). A URL names one object or every object under a prefix.
func OpenSource(ctx context.Context, uri string, opts blob.Options) (Source, error) {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme == "" || len(u.Scheme) == 1 { // "C:\…" is a path
		return NewLocalSource(uri)
	}
	if u.Scheme == "file" {
		p := u.Host + u.Path
		if u.Host == "" {
			p = u.Path
		}
		return NewLocalSource(p)
	}
	prefix := strings.Trim(u.Path, "/")
	root := &url.URL{Scheme: u.Scheme, Host: u.Host, RawQuery: u.RawQuery}
	b, err := blob.Open(ctx, root.String(), opts)
	if err != nil {
		return nil, err
	}
	src, err := NewBucketSource(ctx, b, prefix)
	if err != nil {
		b.Close()
		return nil, err
	}
	src.uri = uri
	src.owned = true
	return src, nil
}

// LocalSource is a local file or folder.
type LocalSource struct {
	root string // absolute
	kind Kind
	// Ignore, if set, leaves out files and folders (with all they hold) for
	// which it returns true; rel is the manifest path.
	Ignore func(rel string, isDir bool) bool
}

// NewLocalSource returns the source for the file or folder at p.
func NewLocalSource(p string) (*LocalSource, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errdefs.NotFound("Path '%s' does not exist", p)
	}
	if err != nil {
		return nil, fmt.Errorf("dataset: %w", err)
	}
	switch {
	case fi.Mode().IsRegular():
		if err := ValidatePath(filepath.Base(abs)); err != nil {
			return nil, err
		}
		return &LocalSource{root: abs, kind: KindFile}, nil
	case fi.IsDir():
		// The walk does not follow links, so resolve a linked root here.
		if abs, err = filepath.EvalSymlinks(abs); err != nil {
			return nil, fmt.Errorf("dataset: %w", err)
		}
		return &LocalSource{root: abs, kind: KindDir}, nil
	}
	return nil, errdefs.Invalid("Path '%s' is neither a regular file nor a folder", p)
}

func (s *LocalSource) Kind() Kind   { return s.kind }
func (s *LocalSource) URI() string  { return s.root }
func (s *LocalSource) Close() error { return nil }

// Root returns the absolute path of the file or folder.
func (s *LocalSource) Root() string { return s.root }

// Walk lists regular files. A symbolic link to a file is versioned as the
// file it points to; a link to a folder, and any other kind of file
// (socket, device), is an error rather than silently left out.
func (s *LocalSource) Walk(ctx context.Context, fn func(SourceFile) error) error {
	if s.kind == KindFile {
		fi, err := os.Stat(s.root)
		if err != nil {
			return fmt.Errorf("dataset: %w", err)
		}
		return fn(SourceFile{Path: filepath.Base(s.root), Size: fi.Size(), Exec: fi.Mode()&0o111 != 0, stat: statKeyOf(s.root, fi)})
	}
	n := 0
	return filepath.WalkDir(s.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("dataset: %w", err)
		}
		if n++; n%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if p == s.root {
			return nil
		}
		rel := filepath.ToSlash(p[len(s.root)+1:])
		if s.Ignore != nil && s.Ignore(rel, d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		var fi fs.FileInfo
		if d.Type()&fs.ModeSymlink != 0 {
			fi, err = os.Stat(p)
			if err != nil {
				return fmt.Errorf("dataset: symbolic link %s: %w", rel, err)
			}
			if fi.IsDir() {
				return errdefs.Invalid("'%s' is a symbolic link to a folder, which cannot be versioned (add the folder itself, or ignore the link)", rel)
			}
		} else if fi, err = d.Info(); err != nil {
			return fmt.Errorf("dataset: %w", err)
		}
		if !fi.Mode().IsRegular() {
			return errdefs.Invalid("'%s' is not a regular file (%s)", rel, fi.Mode().Type())
		}
		if err := ValidatePath(rel); err != nil {
			return err
		}
		return fn(SourceFile{Path: rel, Size: fi.Size(), Exec: fi.Mode()&0o111 != 0, stat: statKeyOf(p, fi)})
	})
}

// Open opens the file at a manifest path.
func (s *LocalSource) Open(ctx context.Context, rel string) (io.ReadCloser, error) {
	if s.kind == KindFile {
		if rel != filepath.Base(s.root) {
			return nil, errdefs.NotFound("File '%s' is not in %s", rel, s.root)
		}
		return os.Open(s.root)
	}
	if err := ValidatePath(rel); err != nil {
		return nil, err
	}
	return os.Open(filepath.Join(s.root, filepath.FromSlash(rel)))
}

// BucketSource is an object, or the objects under a prefix, of a bucket.
type BucketSource struct {
	b      *blob.Bucket
	prefix string // "" for the whole bucket; a key for a file source
	kind   Kind
	uri    string
	owned  bool
}

// NewBucketSource returns the source for key prefix of b: the object named
// prefix if there is one, otherwise every object under prefix + "/".
func NewBucketSource(ctx context.Context, b *blob.Bucket, prefix string) (*BucketSource, error) {
	prefix, err := blob.CleanKey(prefix)
	if err != nil {
		return nil, err
	}
	s := &BucketSource{b: b, prefix: prefix, kind: KindDir, uri: b.String() + "/" + prefix}
	if prefix != "" {
		if _, err := b.Stat(ctx, prefix); err == nil {
			s.kind = KindFile
			if err := ValidatePath(path.Base(prefix)); err != nil {
				return nil, err
			}
			return s, nil
		} else if !errors.Is(err, errdefs.ErrNotFound) {
			return nil, err
		}
	}
	entries, err := b.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	if len(entries) == 0 {
		return nil, errdefs.NotFound("Nothing found at '%s'", s.uri)
	}
	return s, nil
}

func (s *BucketSource) Kind() Kind  { return s.kind }
func (s *BucketSource) URI() string { return s.uri }

// Close closes the bucket if OpenSource opened it.
func (s *BucketSource) Close() error {
	if s.owned {
		return s.b.Close()
	}
	return nil
}

// Walk lists the objects, folder by folder.
func (s *BucketSource) Walk(ctx context.Context, fn func(SourceFile) error) error {
	if s.kind == KindFile {
		a, err := s.b.Stat(ctx, s.prefix)
		if err != nil {
			return err
		}
		return fn(SourceFile{Path: path.Base(s.prefix), Size: a.Size})
	}
	var walk func(dir string) error
	walk = func(dir string) error {
		entries, err := s.b.List(ctx, dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.IsDir {
				if err := walk(e.Path); err != nil {
					return err
				}
				continue
			}
			rel := e.Path
			if s.prefix != "" {
				rel = strings.TrimPrefix(rel, s.prefix+"/")
			}
			if err := ValidatePath(rel); err != nil {
				return err
			}
			if err := fn(SourceFile{Path: rel, Size: e.Size}); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(s.prefix)
}

// Open opens the object at a manifest path.
func (s *BucketSource) Open(ctx context.Context, rel string) (io.ReadCloser, error) {
	key := s.prefix
	if s.kind == KindFile {
		if rel != path.Base(s.prefix) {
			return nil, errdefs.NotFound("File '%s' is not in %s", rel, s.uri)
		}
	} else {
		if err := ValidatePath(rel); err != nil {
			return nil, err
		}
		key = path.Join(s.prefix, rel)
	}
	obj, err := s.b.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	return obj, nil
}
