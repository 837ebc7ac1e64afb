// Package blob is Kiln's artifact storage, built on gocloud.dev/blob: a
// local folder (file://), S3 or any S3-compatible server (s3://), Google
// Cloud Storage (gs://) and Azure Blob Storage (azblob://), plus an
// in-memory bucket for tests (mem://).
//
// Reads and writes stream: an upload is copied from the request body to the
// store in bounded chunks (no temporary file, no whole object in memory),
// and a download streams back the same way. Keys are validated so that no
// path can escape the bucket's root.
package blob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	gblob "gocloud.dev/blob"
	"gocloud.dev/blob/driver"
	"gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/memblob" // mem://
	_ "gocloud.dev/blob/s3blob"  // s3://
	"gocloud.dev/gcerrors"

	"github.com/kiln-ml/kiln/blob/azure"
	"github.com/kiln-ml/kiln/blob/gcs"
	"github.com/kiln-ml/kiln/errdefs"
)

// Options configure S3-compatible storage.
type Options struct {
	S3Endpoint  string // e.g. http://127.0.0.1:7070; empty for AWS
	S3Region    string
	S3PathStyle bool
}

// Bucket is an artifact store.
type Bucket struct {
	b    *gblob.Bucket
	url  string
	file bool   // a local folder (fileblob): fsync writes, hide in-flight temp files
	dir  string // the folder, when file
}

// Open opens the bucket named by rawURL:
//
//	file://./kiln-data/artifacts   a local folder (relative or absolute; created if missing)
//	s3://bucket/prefix             S3 or an S3-compatible server (see Options)
//	gs://bucket/prefix, azblob://container/prefix, mem://
func Open(ctx context.Context, rawURL string, opts Options) (*Bucket, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("blob: bad URL %q: %w", rawURL, err)
	}
	var b *gblob.Bucket
	prefix, root := "", ""
	isFile := false
	switch u.Scheme {
	case "file":
		dir := u.Host + u.Path
		if u.Host == "" {
			dir = u.Path
		}
		if dir == "" {
			return nil, fmt.Errorf("blob: file URL %q has no path", rawURL)
		}
		if dir, err = filepath.Abs(dir); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("blob: create %s: %w", dir, err)
		}
		// Plain files (no .attrs sidecars), written next to their final
		// name and renamed into place, so a crash never leaves half a file.
		b, err = fileblob.OpenBucket(dir, &fileblob.Options{Metadata: fileblob.MetadataDontWrite, NoTempDir: true})
		isFile, root = true, dir
	case "s3":
		prefix = strings.Trim(u.Path, "/")
		q := u.Query()
		if opts.S3Region != "" && q.Get("region") == "" {
			q.Set("region", opts.S3Region)
		}
		if opts.S3Endpoint != "" && q.Get("endpoint") == "" {
			q.Set("endpoint", opts.S3Endpoint)
			if strings.HasPrefix(opts.S3Endpoint, "http://") {
				q.Set("disable_https", "true")
			}
			q.Set("hostname_immutable", "true")
		}
		if opts.S3PathStyle {
			q.Set("use_path_style", "true")
		}
		b, err = gblob.OpenBucket(ctx, (&url.URL{Scheme: "s3", Host: u.Host, RawQuery: q.Encode()}).String())
	case "gs":
		// Kiln's own driver over the JSON API (see package gcs).
		prefix = strings.Trim(u.Path, "/")
		var d driver.Bucket
		if d, err = gcs.OpenURL(ctx, &url.URL{Scheme: u.Scheme, Host: u.Host, RawQuery: u.RawQuery}); err == nil {
			b = gblob.NewBucket(d)
		}
	case "azblob":
		// Kiln's own driver over the Azure SDK's blob client (see package azure).
		prefix = strings.Trim(u.Path, "/")
		var d driver.Bucket
		if d, err = azure.OpenURL(ctx, &url.URL{Scheme: u.Scheme, Host: u.Host, RawQuery: u.RawQuery}); err == nil {
			b = gblob.NewBucket(d)
		}
	case "mem":
		prefix = strings.Trim(u.Path, "/")
		b, err = gblob.OpenBucket(ctx, (&url.URL{Scheme: u.Scheme, Host: u.Host, RawQuery: u.RawQuery}).String())
	default:
		return nil, fmt.Errorf("blob: unsupported artifact store URL %q (want file://, s3://, gs://, azblob:// or mem://)", rawURL)
	}
	if err != nil {
		return nil, fmt.Errorf("blob: open %s: %w", rawURL, err)
	}
	if prefix != "" {
		b = gblob.PrefixedBucket(b, prefix+"/")
	}
	return &Bucket{b: b, url: rawURL, file: isFile, dir: root}, nil
}

// Close closes the bucket.
func (b *Bucket) Close() error { return b.b.Close() }

// CleanKey validates a slash-separated artifact path and returns its clean
// form. It rejects paths that could escape the root: ".." segments,
// absolute paths, NUL bytes and backslashes; "." and empty segments are
// dropped. The empty path (the root) is allowed.
func CleanKey(p string) (string, error) {
	switch {
	case strings.ContainsRune(p, 0):
		return "", errdefs.Invalid("Invalid artifact path: contains a NUL byte")
	case strings.ContainsRune(p, '\\'):
		return "", errdefs.Invalid("Invalid artifact path '%s': backslashes are not allowed", p)
	case strings.HasPrefix(p, "/") && strings.Trim(p, "/") != "":
		return "", errdefs.Invalid("Invalid artifact path '%s': absolute paths are not allowed", p)
	}
	parts := strings.Split(p, "/")
	out := parts[:0]
	for _, s := range parts {
		switch s {
		case "", ".":
			continue
		case "..":
			return "", errdefs.Invalid("Invalid artifact path '%s': '..' is not allowed", p)
		}
		out = append(out, s)
	}
	return strings.Join(out, "/"), nil
}

func mapErr(err error, key string) error {
	if err == nil {
		return nil
	}
	if gcerrors.Code(err) == gcerrors.NotFound {
		return &errdefs.Error{Kind: errdefs.ErrNotFound, Msg: fmt.Sprintf("Artifact '%s' does not exist", key), Err: err}
	}
	return err
}

// Put streams r into key and returns the number of bytes written. The
// object appears whole or not at all.
func (b *Bucket) Put(ctx context.Context, key string, r io.Reader, contentType string) (int64, error) {
	key, err := CleanKey(key)
	if err != nil {
		return 0, err
	}
	if key == "" {
		return 0, errdefs.Invalid("Invalid artifact path: empty")
	}
	if contentType == "" {
		// No sniffing: bytes go straight to the store, none held back.
		contentType = "application/octet-stream"
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Parts of 5 MiB (S3's minimum), two in flight: an upload of any size
	// holds about 10 MiB of buffers.
	opts := &gblob.WriterOptions{ContentType: contentType, BufferSize: 5 << 20, MaxConcurrency: 2}
	var f *os.File // the local temp file, renamed into place on Close
	if b.file {
		opts.BeforeWrite = func(as func(any) bool) error {
			as(&f)
			return nil
		}
	}
	w, err := b.b.NewWriter(wctx, key, opts)
	if err != nil {
		return 0, fmt.Errorf("blob: write %s: %w", key, err)
	}
	n, err := io.Copy(w, r)
	if err == nil && f != nil {
		// Acknowledged means durable: the data reaches the disk before
		// the rename makes it visible.
		err = f.Sync()
	}
	if err != nil {
		cancel() // abandon the write: nothing is stored
		w.Close()
		return n, fmt.Errorf("blob: write %s: %w", key, err)
	}
	if err := w.Close(); err != nil {
		return n, fmt.Errorf("blob: write %s: %w", key, err)
	}
	if f != nil {
		if err := syncDir(filepath.Dir(f.Name())); err != nil {
			return n, fmt.Errorf("blob: write %s: %w", key, err)
		}
	}
	return n, nil
}

// syncDir makes a rename inside dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Object is an open object being read.
type Object struct {
	io.ReadCloser
	Size        int64 // size of the whole object, even for a range read
	ContentType string
	ModTime     time.Time
}

// Get opens key for reading.
func (b *Bucket) Get(ctx context.Context, key string) (*Object, error) {
	return b.GetRange(ctx, key, 0, -1)
}

// GetRange opens length bytes of key starting at offset for reading; a
// negative length reads to the end. Reading past the end yields fewer
// bytes (or none), not an error.
func (b *Bucket) GetRange(ctx context.Context, key string, offset, length int64) (*Object, error) {
	key, err := CleanKey(key)
	if err != nil {
		return nil, err
	}
	if key == "" {
		return nil, errdefs.Invalid("Invalid artifact path: empty")
	}
	if offset < 0 {
		return nil, errdefs.Invalid("Invalid range: negative offset %d", offset)
	}
	r, err := b.b.NewRangeReader(ctx, key, offset, length, nil)
	if err != nil {
		if offset > 0 && httpStatus(err) == http.StatusRequestedRangeNotSatisfiable {
			// S3 refuses a range that starts at or past the object's end;
			// this method's contract is an empty read of an object that
			// exists.
			if a, aerr := b.b.Attributes(ctx, key); aerr == nil && offset >= a.Size {
				return &Object{ReadCloser: io.NopCloser(strings.NewReader("")), Size: a.Size, ContentType: a.ContentType, ModTime: a.ModTime}, nil
			}
		}
		return nil, mapErr(err, key)
	}
	return &Object{ReadCloser: r, Size: r.Size(), ContentType: r.ContentType(), ModTime: r.ModTime()}, nil
}

// httpStatus is the HTTP status an error of a store's SDK carries (the
// AWS SDK's response errors have one), or 0.
func httpStatus(err error) int {
	var hs interface{ HTTPStatusCode() int }
	if errors.As(err, &hs) {
		return hs.HTTPStatusCode()
	}
	return 0
}

// Attributes describe a stored object.
type Attributes struct {
	Size        int64
	ContentType string
	ModTime     time.Time
}

// Stat returns the attributes of the object key; a key that is not an
// object (missing, or a directory) is errdefs.ErrNotFound.
func (b *Bucket) Stat(ctx context.Context, key string) (Attributes, error) {
	key, err := CleanKey(key)
	if err != nil {
		return Attributes{}, err
	}
	if key == "" {
		return Attributes{}, errdefs.NotFound("Artifact '' does not exist")
	}
	a, err := b.b.Attributes(ctx, key)
	if err != nil {
		return Attributes{}, mapErr(err, key)
	}
	return Attributes{Size: a.Size, ContentType: a.ContentType, ModTime: a.ModTime}, nil
}

// Exists reports whether key is an object.
func (b *Bucket) Exists(ctx context.Context, key string) (bool, error) {
	key, err := CleanKey(key)
	if err != nil {
		return false, err
	}
	if b.file && key != "" {
		// A missing file answers with one stat (fileblob's Exists also
		// looks for the object's attributes file): the common answer of
		// a push's existence checks.
		if _, err := os.Lstat(filepath.Join(b.dir, filepath.FromSlash(key))); errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
	}
	return b.b.Exists(ctx, key)
}

// Delete removes key, or every object under it if it is a directory.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	key, err := CleanKey(key)
	if err != nil {
		return err
	}
	if key == "" {
		return errdefs.Invalid("Refusing to delete the artifact root")
	}
	if ok, err := b.b.Exists(ctx, key); err != nil {
		return fmt.Errorf("blob: stat %s: %w", key, err)
	} else if ok {
		return mapErr(b.b.Delete(ctx, key), key)
	}
	n, err := b.DeletePrefix(ctx, key)
	if err != nil {
		return err
	}
	if n == 0 {
		return errdefs.NotFound("Artifact '%s' does not exist", key)
	}
	return nil
}

// DeletePrefix removes every object under the directory dir (keys that
// start with dir + "/") and returns how many it removed. The root cannot
// be deleted this way.
func (b *Bucket) DeletePrefix(ctx context.Context, dir string) (int, error) {
	dir, err := CleanKey(dir)
	if err != nil {
		return 0, err
	}
	if dir == "" {
		return 0, errdefs.Invalid("Refusing to delete the artifact root")
	}
	prefix := dir + "/"
	n := 0
	for try := 1; ; try++ {
		it := b.b.List(&gblob.ListOptions{Prefix: prefix})
		for {
			obj, err := it.Next(ctx)
			if errors.Is(err, io.EOF) {
				return n, nil
			}
			if err != nil {
				// A file that vanished while a local folder was listed (see
				// List): list what is left again.
				if b.file && gcerrors.Code(err) == gcerrors.NotFound && try < 20 {
					break
				}
				return n, fmt.Errorf("blob: list %s: %w", prefix, err)
			}
			if err := b.b.Delete(ctx, obj.Key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
				return n, fmt.Errorf("blob: delete %s: %w", obj.Key, err)
			}
			n++
		}
	}
}

// Entry is one item of a directory listing.
type Entry struct {
	Name  string // base name
	Path  string // full key
	IsDir bool
	Size  int64
}

// List returns the entries directly under dir ("" for the root), sorted
// by name.
func (b *Bucket) List(ctx context.Context, dir string) ([]Entry, error) {
	dir, err := CleanKey(dir)
	if err != nil {
		return nil, err
	}
	prefix := ""
	if dir != "" {
		prefix = dir + "/"
	}
	out, err := b.list(ctx, dir, prefix)
	if err == nil || !b.file || gcerrors.Code(err) != gcerrors.NotFound {
		return out, err
	}
	// gocloud lists a local folder by reading it and then stat'ing each
	// entry: a file deleted or renamed in between (another request's
	// delete, a rewrite's or upload's rename) fails the whole listing with
	// NotFound. Such a folder is listed here instead, leaving out what
	// vanished.
	if out, ok, derr := b.listDir(dir, prefix); ok {
		return out, derr
	}
	for try := 2; ; try++ {
		out, err = b.list(ctx, dir, prefix)
		if err == nil || gcerrors.Code(err) != gcerrors.NotFound || try == 5 {
			return out, err
		}
	}
}

// listDir lists a local folder as gocloud's fileblob does (one level;
// folders holding at least one file; no in-flight temporary files),
// skipping entries that vanish meanwhile. ok is false for names that
// fileblob escapes (control characters, "__0x"), which it leaves to
// fileblob.
func (b *Bucket) listDir(dir, prefix string) (out []Entry, ok bool, err error) {
	root := filepath.Join(b.dir, filepath.FromSlash(dir))
	ents, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, true, nil
	}
	if err != nil {
		return nil, true, fmt.Errorf("blob: list %s: %w", dir, err)
	}
	for _, e := range ents {
		name := e.Name()
		if strings.Contains(name, "__0x") || strings.IndexFunc(name, func(r rune) bool { return r < 32 }) >= 0 {
			return nil, false, nil
		}
		switch {
		case e.IsDir():
			if holdsFile(filepath.Join(root, name)) {
				out = append(out, Entry{Name: name, Path: prefix + name, IsDir: true})
			}
		case e.Type().IsRegular() && !isFileblobTemp(name):
			info, err := e.Info()
			if err != nil {
				continue // gone since the folder was read
			}
			out = append(out, Entry{Name: name, Path: prefix + name, Size: info.Size()})
		}
	}
	// fileblob's order: by key, a folder's key ending in "/".
	sortKey := func(e Entry) string {
		if e.IsDir {
			return e.Name + "/"
		}
		return e.Name
	}
	sort.Slice(out, func(i, j int) bool { return sortKey(out[i]) < sortKey(out[j]) })
	return out, true, nil
}

// holdsFile reports whether a folder holds a file somewhere below it.
func holdsFile(dir string) bool {
	found := false
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && !isFileblobTemp(d.Name()) {
			found = true
			return filepath.SkipAll
		}
		return nil
	})
	return found
}

func (b *Bucket) list(ctx context.Context, dir, prefix string) ([]Entry, error) {
	it := b.b.List(&gblob.ListOptions{Prefix: prefix, Delimiter: "/"})
	var out []Entry
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("blob: list %s: %w", dir, err)
		}
		key := strings.TrimSuffix(obj.Key, "/")
		name := strings.TrimPrefix(key, prefix)
		if name == "" || (b.file && !obj.IsDir && isFileblobTemp(name)) {
			continue
		}
		out = append(out, Entry{Name: name, Path: key, IsDir: obj.IsDir, Size: obj.Size})
	}
}

// isFileblobTemp reports whether name is a temporary file of an upload in
// flight in a local folder: fileblob writes <name>.<UnixNano in hex>.tmp
// next to the final name and renames it when the upload completes.
func isFileblobTemp(name string) bool {
	rest, ok := strings.CutSuffix(name, ".tmp")
	if !ok {
		return false
	}
	i := strings.LastIndexByte(rest, '.')
	if i < 0 || len(rest)-i-1 < 15 || len(rest)-i-1 > 16 {
		return false
	}
	for _, c := range rest[i+1:] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// String describes the bucket for logs.
func (b *Bucket) String() string { return b.url }
