package dataset

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/zeebo/blake3"
)

// statKey identifies a version of a local file by what stat says about it:
// if none of these changed, neither did the content (as DVC's state
// database and Git's index assume).
type statKey struct {
	path  string // absolute
	size  int64
	mtime int64 // nanoseconds since the epoch
	ino   uint64
}

func statKeyOf(abs string, fi fs.FileInfo) statKey {
	return statKey{path: abs, size: fi.Size(), mtime: fi.ModTime().UnixNano(), ino: inodeOf(fi)}
}

type statEntry struct {
	size  int64
	mtime int64
	ino   uint64
	d     Digest
	used  bool // looked up or stored since the cache was opened
}

// StatCache remembers the digest of local files by path, size,
// modification time and inode, so that unchanged files are not read
// again. It is a single file (for example under the user's cache folder),
// loaded into memory when opened and written back, whole and atomically,
// by Save. A damaged or foreign file is treated as empty: the cache only
// ever saves work.
//
// A file modified within RacyWindow before it was hashed is not
// remembered: on file systems with coarse timestamps a later write in the
// same tick would leave size and mtime unchanged.
//
// Several processes may share a file; the last to save wins, which costs
// the others only a re-hash.
type StatCache struct {
	path string
	// MaxEntries bounds the entries saved; beyond it, entries not used
	// since the cache was opened are dropped (default 4 million).
	MaxEntries int
	// RacyWindow, see above (default 2s).
	RacyWindow time.Duration

	mu    sync.Mutex
	m     map[string]*statEntry
	dirty bool
}

const statCacheMagic = "KILNSTAT1\n"

// OpenStatCache loads the stat cache at path; a missing file is an empty
// cache.
func OpenStatCache(path string) (*StatCache, error) {
	c := &StatCache{path: path, m: make(map[string]*statEntry), RacyWindow: 2 * time.Second}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dataset: stat cache: %w", err)
	}
	defer f.Close()
	if m, err := decodeStatCache(f); err == nil {
		c.m = m
	}
	return c, nil
}

// decodeStatCache reads the format written by Save:
//
//	magic, then per entry: uvarint len(path), path, varint size,
//	varint mtime, uvarint inode, 32-byte digest; then a 32-byte BLAKE3
//	of everything before it.
func decodeStatCache(r io.Reader) (map[string]*statEntry, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if len(data) < len(statCacheMagic)+32 || string(data[:len(statCacheMagic)]) != statCacheMagic {
		return nil, errors.New("not a stat cache")
	}
	n := len(data) - 32
	if sum := blake3.Sum256(data[:n]); !bytes.Equal(sum[:], data[n:]) {
		return nil, errors.New("checksum mismatch")
	}
	body := data[len(statCacheMagic):n]
	m := make(map[string]*statEntry)
	for len(body) > 0 {
		n, k := binary.Uvarint(body)
		if k <= 0 || n > uint64(len(body)-k) {
			return nil, errors.New("bad entry")
		}
		p := string(body[k : k+int(n)])
		body = body[k+int(n):]
		var e statEntry
		var ok bool
		if e.size, body, ok = readVarint(body); !ok {
			return nil, errors.New("bad entry")
		}
		if e.mtime, body, ok = readVarint(body); !ok {
			return nil, errors.New("bad entry")
		}
		ino, k := binary.Uvarint(body)
		if k <= 0 || len(body)-k < 32 {
			return nil, errors.New("bad entry")
		}
		e.ino = ino
		copy(e.d[:], body[k:k+32])
		body = body[k+32:]
		m[p] = &e
	}
	return m, nil
}

func readVarint(b []byte) (int64, []byte, bool) {
	v, k := binary.Varint(b)
	if k <= 0 {
		return 0, b, false
	}
	return v, b[k:], true
}

func (c *StatCache) lookup(k statKey) (Digest, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k.path]
	if !ok || e.size != k.size || e.mtime != k.mtime || e.ino != k.ino {
		return Digest{}, false
	}
	e.used = true
	return e.d, true
}

// store remembers d for k unless k's modification is racy with respect to
// when hashing started.
func (c *StatCache) store(k statKey, d Digest, started time.Time) {
	if k.mtime > started.Add(-c.RacyWindow).UnixNano() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k.path]; ok && e.size == k.size && e.mtime == k.mtime && e.ino == k.ino && e.d == d {
		e.used = true
		return
	}
	c.m[k.path] = &statEntry{size: k.size, mtime: k.mtime, ino: k.ino, d: d, used: true}
	c.dirty = true
}

// Len returns the number of remembered files.
func (c *StatCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// Save writes the cache back if it changed.
func (c *StatCache) Save() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dirty {
		return nil
	}
	max := orDefault(c.MaxEntries, 4<<20)
	if len(c.m) > max {
		for p, e := range c.m {
			if len(c.m) <= max {
				break
			}
			if !e.used {
				delete(c.m, p)
			}
		}
	}
	dir := filepath.Dir(c.path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("dataset: stat cache: %w", err)
	}
	f, err := os.CreateTemp(dir, ".statcache-*.tmp")
	if err != nil {
		return fmt.Errorf("dataset: stat cache: %w", err)
	}
	h := blake3.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<16)
	w.WriteString(statCacheMagic)
	var tmp [3*binary.MaxVarintLen64 + 32]byte
	for p, e := range c.m {
		b := binary.AppendUvarint(tmp[:0], uint64(len(p)))
		w.Write(b)
		w.WriteString(p)
		b = binary.AppendVarint(tmp[:0], e.size)
		b = binary.AppendVarint(b, e.mtime)
		b = binary.AppendUvarint(b, e.ino)
		b = append(b, e.d[:]...)
		w.Write(b)
	}
	err = w.Flush()
	if err == nil {
		_, err = f.Write(h.Sum(nil))
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), c.path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("dataset: save stat cache: %w", err)
	}
	c.dirty = false
	return nil
}
