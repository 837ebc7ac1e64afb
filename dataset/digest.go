package dataset

import (
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/zeebo/blake3"

	"github.com/kiln-ml/kiln/errdefs"
)

// Digest is a BLAKE3-256 content digest. Its text form is 64 lowercase
// hexadecimal digits.
type Digest [32]byte

// ErrDigestMismatch is the kind of error returned when bytes read do not
// hash to the digest (or size) they were stored under: a corrupted object,
// a file that changed while it was read, or an upload of the wrong bytes.
// Such errors also match errdefs.ErrInvalidArgument.
var ErrDigestMismatch = errors.New("digest mismatch")

// ParseDigest parses the 64-hex-digit text form of a digest.
func ParseDigest(s string) (Digest, error) {
	var d Digest
	if len(s) != 2*len(d) {
		return d, errdefs.Invalid("Invalid digest '%s': want %d hexadecimal digits", clip(s), 2*len(d))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return d, errdefs.Invalid("Invalid digest '%s': want lowercase hexadecimal digits", clip(s))
		}
	}
	hex.Decode(d[:], []byte(s))
	return d, nil
}

// String returns the 64-hex-digit form.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// IsZero reports whether d is the zero value (no digest).
func (d Digest) IsZero() bool { return d == Digest{} }

// MarshalText implements encoding.TextMarshaler.
func (d Digest) MarshalText() ([]byte, error) {
	out := make([]byte, 2*len(d))
	hex.Encode(out, d[:])
	return out, nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Digest) UnmarshalText(b []byte) error {
	v, err := ParseDigest(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Sum returns the digest of b.
func Sum(b []byte) Digest { return blake3.Sum256(b) }

// newHash returns a BLAKE3-256 hash.
func newHash() hash.Hash { return blake3.New() }

func sumOf(h hash.Hash) (d Digest) {
	h.Sum(d[:0])
	return d
}

// HashReader reads r to the end and returns its digest and length.
func HashReader(r io.Reader) (Digest, int64, error) {
	h := newHash()
	buf := make([]byte, hashBufSize)
	n, err := io.CopyBuffer(h, onlyReader{r}, buf)
	return sumOf(h), n, err
}

// onlyReader hides io.WriterTo so that io.CopyBuffer uses the given buffer.
type onlyReader struct{ io.Reader }

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// mismatch returns an error matching ErrDigestMismatch and
// errdefs.ErrInvalidArgument.
func mismatch(format string, args ...any) error {
	return fmt.Errorf("%w: %w", ErrDigestMismatch, errdefs.Invalid(format, args...))
}

// verifier passes reads through while hashing them; at the end of the
// stream it checks the length and digest and returns an ErrDigestMismatch
// error in place of io.EOF when they differ, so that a writer fed from it
// abandons what it wrote. A stream longer than the expected size fails as
// soon as it passes that size.
type verifier struct {
	r      io.Reader
	h      hash.Hash
	want   Digest
	size   int64
	n      int64
	what   string // for messages: "object <digest>" or a path
	onRead func(n int)
	err    error
}

func newVerifier(r io.Reader, want Digest, size int64, what string, onRead func(int)) *verifier {
	return &verifier{r: r, h: newHash(), want: want, size: size, what: what, onRead: onRead}
}

func (v *verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	if n > 0 {
		v.h.Write(p[:n])
		v.n += int64(n)
		if v.onRead != nil {
			v.onRead(n)
		}
		if v.size >= 0 && v.n > v.size {
			v.err = mismatch("%s: more than the expected %d bytes", v.what, v.size)
			return n, v.err
		}
	}
	if err == io.EOF {
		if v.size >= 0 && v.n != v.size {
			v.err = mismatch("%s: %d bytes, want %d", v.what, v.n, v.size)
			return n, v.err
		}
		if got := sumOf(v.h); got != v.want {
			v.err = mismatch("%s: content hashes to %s, want %s", v.what, got, v.want)
			return n, v.err
		}
	}
	if err != nil {
		v.err = err
	}
	return n, err
}

// WriteTo copies the verified stream to w through a pooled buffer (so that
// writers that would allocate a buffer per copy, as gocloud's do, don't).
// Like Read, it fails rather than finish when the content does not match.
func (v *verifier) WriteTo(w io.Writer) (int64, error) {
	buf := getBuf()
	defer putBuf(buf)
	var total int64
	for {
		n, err := v.Read(*buf)
		if n > 0 {
			m, werr := w.Write((*buf)[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}
