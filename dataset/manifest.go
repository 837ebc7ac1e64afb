package dataset

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/kiln-ml/kiln/errdefs"
)

// Kind says whether a version is a single file or a directory tree.
type Kind string

const (
	KindFile Kind = "file"
	KindDir  Kind = "dir"
)

// Limits on what a manifest may hold.
const (
	MaxPathLength    = 4096    // bytes of a file's path in a manifest
	MaxSegmentLength = 255     // bytes of one path segment (a file or folder name)
	MaxManifestFiles = 1 << 24 // entries of one manifest
)

// ManifestFormat is the format version written in manifests.
const ManifestFormat = 1

// Entry is one file of a manifest.
type Entry struct {
	Path   string `json:"path"` // slash-separated, relative, validated by ValidatePath
	Size   int64  `json:"size"`
	Digest Digest `json:"digest"`
	Exec   bool   `json:"exec,omitempty"` // the file is executable
}

// Manifest lists the files of a version. Its canonical encoding (Encode)
// is hashed to give the version's digest: two trees with the same paths,
// contents and executable bits have the same digest.
//
// A file version (KindFile) has exactly one entry, named by the file's
// base name.
type Manifest struct {
	Kind  Kind
	Files []Entry // sorted by Path, no duplicates
}

type manifestJSON struct {
	Format int     `json:"format"`
	Kind   Kind    `json:"kind"`
	Files  []Entry `json:"files"`
}

// NewManifest builds a manifest from entries in any order, sorting them and
// validating every path.
func NewManifest(kind Kind, files []Entry) (*Manifest, error) {
	files = slices.Clone(files)
	slices.SortFunc(files, func(a, b Entry) int { return strings.Compare(a.Path, b.Path) })
	m := &Manifest{Kind: kind, Files: files}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// Validate checks the manifest: a known kind, one entry for a file version,
// valid and unique paths in sorted order, no path that is both a file and a
// folder, non-negative sizes.
func (m *Manifest) Validate() error {
	switch m.Kind {
	case KindFile:
		if len(m.Files) != 1 {
			return errdefs.Invalid("Invalid manifest: a file version has exactly one entry, not %d", len(m.Files))
		}
	case KindDir:
	default:
		return errdefs.Invalid("Invalid manifest: unknown kind '%s' (want file or dir)", clip(string(m.Kind)))
	}
	if len(m.Files) > MaxManifestFiles {
		return errdefs.TooLarge("Invalid manifest: %d files, more than the limit of %d", len(m.Files), MaxManifestFiles)
	}
	for i, e := range m.Files {
		if err := ValidatePath(e.Path); err != nil {
			return err
		}
		if e.Size < 0 {
			return errdefs.Invalid("Invalid manifest: '%s' has negative size %d", e.Path, e.Size)
		}
		if i > 0 {
			switch c := strings.Compare(m.Files[i-1].Path, e.Path); {
			case c == 0:
				return errdefs.Invalid("Invalid manifest: '%s' is listed twice", e.Path)
			case c > 0:
				return errdefs.Invalid("Invalid manifest: files are not sorted by path ('%s' before '%s')", m.Files[i-1].Path, e.Path)
			}
		}
	}
	// A path cannot be both a file and a folder ("a" and "a/b").
	if m.Kind == KindDir {
		set := make(map[string]struct{}, len(m.Files))
		for _, e := range m.Files {
			set[e.Path] = struct{}{}
		}
		for _, e := range m.Files {
			for p := e.Path; ; {
				i := strings.LastIndexByte(p, '/')
				if i < 0 {
					break
				}
				p = p[:i]
				if _, ok := set[p]; ok {
					return errdefs.Invalid("Invalid manifest: '%s' is a file and also the folder of '%s'", p, e.Path)
				}
			}
		}
	}
	return nil
}

// ValidatePath checks a file's path in a manifest: relative and
// slash-separated, valid UTF-8, no empty, "." or ".." segment, no NUL or
// backslash, bounded length. Paths are checked wherever a manifest comes
// from outside, so that a checkout can never write outside its folder.
func ValidatePath(p string) error {
	switch {
	case p == "":
		return errdefs.Invalid("Invalid file path: empty")
	case len(p) > MaxPathLength:
		return errdefs.Invalid("Invalid file path '%s': %d bytes, more than the limit of %d", clip(p), len(p), MaxPathLength)
	case strings.IndexByte(p, 0) >= 0:
		return errdefs.Invalid("Invalid file path '%s': contains a NUL byte", clip(strings.ReplaceAll(p, "\x00", `\0`)))
	case !utf8.ValidString(p):
		return errdefs.Invalid("Invalid file path %q: not valid UTF-8", clip(p))
	case strings.IndexByte(p, '\\') >= 0:
		return errdefs.Invalid("Invalid file path '%s': backslashes are not allowed", clip(p))
	case p[0] == '/':
		return errdefs.Invalid("Invalid file path '%s': absolute paths are not allowed", clip(p))
	}
	for seg := range strings.SplitSeq(p, "/") {
		switch {
		case seg == "":
			return errdefs.Invalid("Invalid file path '%s': empty segment", clip(p))
		case seg == "." || seg == "..":
			return errdefs.Invalid("Invalid file path '%s': '%s' segments are not allowed", clip(p), seg)
		case len(seg) > MaxSegmentLength:
			return errdefs.Invalid("Invalid file path '%s': a name of %d bytes, more than the limit of %d", clip(p), len(seg), MaxSegmentLength)
		}
	}
	return nil
}

// Encode returns the canonical encoding of m: compact JSON with the files
// sorted by path. Encode does not validate; NewManifest and DecodeManifest
// do.
func (m *Manifest) Encode() []byte {
	files := m.Files
	if files == nil {
		files = []Entry{}
	}
	var buf bytes.Buffer
	buf.Grow(64 + 120*len(files))
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	// Encoding a struct of strings, integers and text marshalers cannot fail.
	enc.Encode(manifestJSON{Format: ManifestFormat, Kind: m.Kind, Files: files})
	b := buf.Bytes()
	return b[:len(b)-1] // drop the encoder's newline
}

// Digest returns the version digest: the digest of the canonical encoding.
func (m *Manifest) Digest() Digest { return Sum(m.Encode()) }

// TotalSize returns the sum of the file sizes.
func (m *Manifest) TotalSize() int64 {
	var n int64
	for _, e := range m.Files {
		n += e.Size
	}
	return n
}

// Lookup returns the entry at path.
func (m *Manifest) Lookup(path string) (Entry, bool) {
	i, ok := slices.BinarySearchFunc(m.Files, path, func(e Entry, p string) int { return strings.Compare(e.Path, p) })
	if !ok {
		return Entry{}, false
	}
	return m.Files[i], true
}

// MaxManifestBytes bounds the encoded size of a manifest.
const MaxManifestBytes = 1 << 31

// DecodeManifest parses and validates a manifest read from outside (a
// remote, a request body). Only the canonical encoding is accepted (what
// Encode writes), so that a version has exactly one digest: unknown fields,
// an unknown format version, whitespace, unsorted or duplicate paths and
// unsafe paths are errors.
func DecodeManifest(data []byte) (*Manifest, error) {
	if len(data) > MaxManifestBytes {
		return nil, errdefs.TooLarge("Invalid manifest: %d bytes, more than the limit of %d", len(data), MaxManifestBytes)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var mj manifestJSON
	if err := dec.Decode(&mj); err != nil {
		return nil, errdefs.Invalid("Invalid manifest: %s", clip(err.Error()))
	}
	if mj.Format != ManifestFormat {
		return nil, errdefs.Invalid("Invalid manifest: format %d, want %d", mj.Format, ManifestFormat)
	}
	m := &Manifest{Kind: mj.Kind, Files: mj.Files}
	if m.Files == nil {
		m.Files = []Entry{}
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if !bytes.Equal(data, m.Encode()) {
		return nil, errdefs.Invalid("Invalid manifest: not in canonical form (compact JSON, fields in order, as written by Kiln)")
	}
	return m, nil
}

// String describes m for logs.
func (m *Manifest) String() string {
	return fmt.Sprintf("%s manifest of %d files, %d bytes", m.Kind, len(m.Files), m.TotalSize())
}

// MarshalJSON returns the canonical encoding.
func (m *Manifest) MarshalJSON() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m.Encode(), nil
}

// UnmarshalJSON accepts the canonical encoding only (see DecodeManifest).
func (m *Manifest) UnmarshalJSON(data []byte) error {
	v, err := DecodeManifest(data)
	if err != nil {
		return err
	}
	*m = *v
	return nil
}
