package dataset

import "io"

// NewVerifyingReader returns a reader of r that hashes what passes
// through and, at the end of r, returns an error matching
// ErrDigestMismatch in place of io.EOF when the bytes do not hash to d or
// are not size bytes long (any length when size < 0). A stream longer than
// size fails as soon as it passes it. Remotes that forward a stream (an
// HTTP client) use it so that a file changed since it was hashed is caught
// before the last byte is sent.
func NewVerifyingReader(r io.Reader, d Digest, size int64) io.Reader {
	return newVerifier(r, d, size, "object "+d.String(), nil)
}
