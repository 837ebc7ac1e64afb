package dataset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/kiln-ml/kiln/errdefs"
)

// CheckoutOptions configure Checkout and Pull.
type CheckoutOptions struct {
	// Parallel bounds the files fetched and written at once (default 16).
	Parallel int
	// Clean removes files and folders that the manifest does not list (and
	// anything in the way of a listed file). Without it they are left
	// alone, and something in the way of a listed file is an error.
	Clean bool
	// StatCache, if set, recognises unchanged files already in the folder
	// without reading them, and learns the files written. The caller saves
	// it.
	StatCache *StatCache
	Progress  Progress
}

// CheckoutStats say what a checkout did.
type CheckoutStats struct {
	Files        int   // files in the manifest
	Unchanged    int   // already in place with the right content
	Written      int   // files written
	WrittenBytes int64 //
	Removed      int   // files removed by Clean
}

// Checkout makes dir hold the files of m, reading objects from src (a
// Cache or a remote). Only files that are missing or differ are written;
// each is verified while it is written to a temporary file next to its
// place and renamed over it, so a file is whole or untouched. An object
// whose bytes do not match its digest fails the checkout with an error
// matching ErrDigestMismatch and leaves that file as it was.
//
// Checkout never writes outside dir: manifest paths are validated, and a
// symbolic link inside dir where a folder is expected is treated as in the
// way, never followed.
func Checkout(ctx context.Context, src Remote, m *Manifest, dir string, opts CheckoutOptions) (CheckoutStats, error) {
	started := time.Now()
	st := CheckoutStats{Files: len(m.Files)}
	if err := m.Validate(); err != nil {
		return st, err
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return st, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return st, fmt.Errorf("dataset: checkout: %w", err)
	}
	parallel := orDefault(opts.Parallel, 16)
	if opts.Clean {
		// Clean removes files before the new ones are written; make sure
		// the source can supply every object first, so that a checkout
		// that cannot complete removes nothing.
		if err := checkAvailable(ctx, src, m); err != nil {
			return st, err
		}
		if st.Removed, err = clean(ctx, dir, m); err != nil {
			return st, err
		}
	}

	// Which files need writing: missing, different size, or different
	// content (by the stat cache or by hashing them).
	safe := parentChecker{root: dir, ok: map[string]bool{}}
	var need []Entry
	type candidate struct {
		e    Entry
		path string
		key  statKey
		mode fs.FileMode
	}
	var check []candidate
	for _, e := range m.Files {
		if err := safe.check(e.Path); err != nil {
			return st, err
		}
		target := filepath.Join(dir, filepath.FromSlash(e.Path))
		fi, err := os.Lstat(target)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			need = append(need, e)
		case err != nil:
			return st, fmt.Errorf("dataset: checkout: %w", err)
		case !fi.Mode().IsRegular():
			return st, errdefs.InvalidState("Cannot check out '%s': a %s is in the way (use clean to remove it)", e.Path, describeMode(fi.Mode()))
		case fi.Size() != e.Size:
			need = append(need, e)
		default:
			check = append(check, candidate{e: e, path: target, key: statKeyOf(target, fi), mode: fi.Mode()})
		}
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(parallel, runtime.GOMAXPROCS(0)))
	for _, c := range check {
		g.Go(func() error {
			d, ok := Digest{}, false
			if opts.StatCache != nil {
				d, ok = opts.StatCache.lookup(c.key)
			}
			if !ok {
				var err error
				if d, err = hashFile(gctx, c.path); err != nil {
					return err
				}
				if opts.StatCache != nil {
					opts.StatCache.store(c.key, d, started)
				}
			}
			if d != c.e.Digest {
				mu.Lock()
				need = append(need, c.e)
				mu.Unlock()
				return nil
			}
			if want := fileMode(c.e.Exec); c.mode.Perm() != want {
				if err := os.Chmod(c.path, want); err != nil {
					return fmt.Errorf("dataset: checkout: %w", err)
				}
			}
			mu.Lock()
			st.Unchanged++
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return st, err
	}

	// Fetch each needed object once; paths that share it are copied from
	// the first one written.
	groups := map[Digest][]Entry{}
	var order []Digest
	var total int64
	for _, e := range need {
		if _, ok := groups[e.Digest]; !ok {
			order = append(order, e.Digest)
		}
		groups[e.Digest] = append(groups[e.Digest], e)
		total += e.Size
	}
	slices.SortFunc(order, func(a, b Digest) int { return strings.Compare(groups[a][0].Path, groups[b][0].Path) })
	prog := progressOrNop(opts.Progress)
	prog.Begin(PhaseCheckout, len(need), total)
	defer prog.End(PhaseCheckout)
	var written atomic.Int64
	var writtenBytes atomic.Int64
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for _, d := range order {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			es := groups[d]
			first := filepath.Join(dir, filepath.FromSlash(es[0].Path))
			rc, err := src.Get(gctx, d)
			if err != nil {
				return &objectError{d: d, err: fmt.Errorf("dataset: checkout %s: %w", es[0].Path, err)}
			}
			err = writeFile(gctx, first, rc, es[0], prog)
			rc.Close()
			if err != nil {
				return &objectError{d: d, err: err}
			}
			for _, e := range es[1:] {
				f, err := os.Open(first)
				if err != nil {
					return fmt.Errorf("dataset: checkout: %w", err)
				}
				err = writeFile(gctx, filepath.Join(dir, filepath.FromSlash(e.Path)), f, e, prog)
				f.Close()
				if err != nil {
					return err
				}
			}
			for _, e := range es {
				written.Add(1)
				writtenBytes.Add(e.Size)
				if opts.StatCache != nil {
					p := filepath.Join(dir, filepath.FromSlash(e.Path))
					if fi, err := os.Stat(p); err == nil {
						opts.StatCache.store(statKeyOf(p, fi), d, started)
					}
				}
			}
			return nil
		})
	}
	err = g.Wait()
	if err == nil {
		err = ctx.Err()
	}
	st.Written, st.WrittenBytes = int(written.Load()), writtenBytes.Load()
	return st, err
}

// objectError marks a failure to read or verify one object of src.
type objectError struct {
	d   Digest
	err error
}

func (e *objectError) Error() string { return e.err.Error() }
func (e *objectError) Unwrap() error { return e.err }

func fileMode(exec bool) fs.FileMode {
	if exec {
		return 0o755
	}
	return 0o644
}

func describeMode(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "folder"
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	}
	return "special file"
}

// writeFile writes r, verified against e, to a temporary file next to
// path and renames it into place.
func writeFile(ctx context.Context, path string, r io.Reader, e Entry, prog Progress) error {
	parent := filepath.Dir(path)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("dataset: checkout: %w", err)
	}
	v := newVerifier(ctxReader{ctx, r}, e.Digest, e.Size, "'"+e.Path+"'", func(n int) { prog.Advance(PhaseCheckout, 0, int64(n)) })
	if err := writeAtomic(path, parent, v, fileMode(e.Exec)); err != nil {
		return err
	}
	prog.Advance(PhaseCheckout, 1, 0)
	return nil
}

func hashFile(ctx context.Context, path string) (Digest, error) {
	f, err := os.Open(path)
	if err != nil {
		return Digest{}, fmt.Errorf("dataset: %w", err)
	}
	defer f.Close()
	buf := getBuf()
	defer putBuf(buf)
	h := newHash()
	if _, err := io.CopyBuffer(h, onlyReader{ctxReader{ctx, f}}, *buf); err != nil {
		return Digest{}, fmt.Errorf("dataset: read %s: %w", path, err)
	}
	return sumOf(h), nil
}

// parentChecker checks that the folders above a path inside root are
// folders or absent, never links or files.
type parentChecker struct {
	root string
	ok   map[string]bool // folder (slash path) -> exists as a real folder
}

func (c *parentChecker) check(rel string) error {
	for i := 0; i < len(rel); i++ {
		if rel[i] != '/' {
			continue
		}
		p := rel[:i]
		exists, seen := c.ok[p]
		if seen {
			if !exists {
				return nil // absent: so is everything below it
			}
			continue
		}
		fi, err := os.Lstat(filepath.Join(c.root, filepath.FromSlash(p)))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			c.ok[p] = false
			return nil
		case err != nil:
			return fmt.Errorf("dataset: checkout: %w", err)
		case !fi.IsDir():
			return errdefs.InvalidState("Cannot check out '%s': '%s' is a %s, not a folder (use clean to remove it)", rel, p, describeModeOrFile(fi.Mode()))
		}
		c.ok[p] = true
	}
	return nil
}

func describeModeOrFile(m fs.FileMode) string {
	if m.IsRegular() {
		return "file"
	}
	return describeMode(m)
}

// clean removes from dir everything that m does not list: files, links,
// and folders that hold no listed file. It returns the number of files
// and links removed.
func clean(ctx context.Context, dir string, m *Manifest) (int, error) {
	files := make(map[string]bool, len(m.Files))
	folders := map[string]bool{}
	for _, e := range m.Files {
		files[e.Path] = true
		for p := e.Path; ; {
			i := strings.LastIndexByte(p, '/')
			if i < 0 {
				break
			}
			p = p[:i]
			if folders[p] {
				break
			}
			folders[p] = true
		}
	}
	removed := 0
	var emptyDirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("dataset: clean: %w", err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if p == dir {
			return nil
		}
		rel := filepath.ToSlash(p[len(dir)+1:])
		if d.IsDir() {
			if !folders[rel] {
				emptyDirs = append(emptyDirs, p)
			}
			return nil
		}
		if files[rel] && d.Type().IsRegular() {
			return nil
		}
		if err := os.Remove(p); err != nil {
			return fmt.Errorf("dataset: clean: %w", err)
		}
		removed++
		return nil
	})
	if err != nil {
		return removed, err
	}
	for _, p := range slices.Backward(emptyDirs) {
		if err := os.Remove(p); err != nil {
			return removed, fmt.Errorf("dataset: clean: %w", err)
		}
	}
	return removed, nil
}

// Pull checks out version digest d from remote into dir, through cache if
// it is not nil: the manifest and the objects the cache lacks are fetched
// into it first, then the folder is written from the cache. An object that
// the cache holds damaged is dropped and fetched again once.
func Pull(ctx context.Context, remote Remote, cache *Cache, d Digest, dir string, topts TransferOptions, copts CheckoutOptions) (CheckoutStats, error) {
	if cache == nil {
		m, err := remote.GetManifest(ctx, d)
		if err != nil {
			return CheckoutStats{}, err
		}
		return Checkout(ctx, remote, m, dir, copts)
	}
	m, err := cache.GetManifest(ctx, d)
	if errors.Is(err, errdefs.ErrNotFound) || errors.Is(err, ErrDigestMismatch) {
		m, err = remote.GetManifest(ctx, d)
	}
	if err != nil {
		return CheckoutStats{}, err
	}
	for attempt := 0; ; attempt++ {
		if _, err := Fetch(ctx, remote, m, cache, topts); err != nil {
			return CheckoutStats{}, err
		}
		st, err := Checkout(ctx, cache, m, dir, copts)
		var oe *objectError
		if attempt == 0 && errors.As(err, &oe) && errors.Is(err, ErrDigestMismatch) {
			if rerr := cache.Remove(oe.d); rerr != nil {
				return st, errors.Join(err, rerr)
			}
			continue
		}
		return st, err
	}
}

// checkAvailable fails when src lacks any object of m.
func checkAvailable(ctx context.Context, src Remote, m *Manifest) error {
	ds := make([]Digest, 0, len(m.Files))
	seen := make(map[Digest]bool, len(m.Files))
	for _, e := range m.Files {
		if !seen[e.Digest] {
			seen[e.Digest] = true
			ds = append(ds, e.Digest)
		}
	}
	missing, err := src.Has(ctx, ds)
	if err != nil {
		return fmt.Errorf("dataset: checkout: %w", err)
	}
	if len(missing) > 0 {
		return errdefs.NotFound("Cannot check out: %d object(s) are missing from the source, e.g. %s; nothing was removed", len(missing), missing[0])
	}
	return nil
}
