package access

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// TokenPrefix starts every Kiln API token, so that secret scanners and
// people can tell one: kiln_<id>_<secret>, id 12 hex digits (stored as
// is, shown in listings), secret 32 random bytes in unpadded base64url
// (stored only as its SHA-256).
const TokenPrefix = "kiln_"

const (
	tokenIDLen     = 12
	tokenSecretLen = 43 // base64url of 32 bytes
)

// newToken returns a fresh token, its id and the hash of its secret.
func newToken() (token, id, secretHash string, err error) {
	var b [6 + 32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", "", fmt.Errorf("access: token: %w", err)
	}
	id = hex.EncodeToString(b[:6])
	secret := base64.RawURLEncoding.EncodeToString(b[6:])
	return TokenPrefix + id + "_" + secret, id, hashSecret(secret), nil
}

// parseToken splits a token into its id and secret; ok is false when it
// does not have the shape of a Kiln token.
func parseToken(token string) (id, secret string, ok bool) {
	rest, found := strings.CutPrefix(token, TokenPrefix)
	if !found || len(rest) != tokenIDLen+1+tokenSecretLen || rest[tokenIDLen] != '_' {
		return "", "", false
	}
	id, secret = rest[:tokenIDLen], rest[tokenIDLen+1:]
	for _, c := range id {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", "", false
		}
	}
	for _, c := range secret {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-' || c == '_') {
			return "", "", false
		}
	}
	return id, secret, true
}

// hashSecret is what is stored of a token's secret (or a session cookie):
// its SHA-256 in hex. The secret has 256 random bits, so a fast hash is
// enough; a slow one would cost every request.
func hashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}
