package registry

import (
	"strings"
	"testing"
)

func TestValidateRemoteSource(t *testing.T) {
	for _, tt := range []struct {
		source string
		ok     bool
	}{
		{"s3://bucket/path/model", true},
		{"models:/m-0123456789abcdef0123456789abcdef", true},
		{"runs:/abc/model", true},
		{"mlflow-artifacts:/0/abc/artifacts/model", true},
		{"https://host/a%20b/model?x=1", true},
		{"s3://bucket/models/", true},
		{"s3://bucket", false}, // empty path: pathlib resolves it to the working directory
		{"s3://bucket/a/../b", false},
		{"s3://bucket/a/%2e%2e/b", false},
		{"s3://bucket/a/%252e%252e/b", false},
		{"s3://bucket/a/./b", false},
		{"s3://bucket/a%00", false},
		{"http://host/..%2f..%2fetc", false},
		{"models:m-123", false}, // relative path
	} {
		if err := validateRemoteSource(tt.source); (err == nil) != tt.ok {
			t.Errorf("%q: %v, want ok=%v", tt.source, err, tt.ok)
		}
	}
}

// FuzzValidateRemoteSource checks that an accepted source never reaches a
// parent directory or a NUL, however it is encoded.
func FuzzValidateRemoteSource(f *testing.F) {
	for _, s := range []string{"s3://b/x", "s3://b/%2e%2e/x", "http://h/a%00", "runs:/r/m", "file:///x/../y", "%25252e%25252e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if validateRemoteSource(s) != nil {
			return
		}
		decoded := s
		for i := 0; i < 100; i++ {
			d := unquote(decoded, true)
			if d == decoded {
				break
			}
			decoded = d
		}
		if strings.ContainsRune(decoded, 0) && strings.ContainsRune(splitURL(decoded).path, 0) {
			t.Fatalf("accepted %q with NUL in its path", s)
		}
		for _, seg := range strings.Split(decoded, "/") {
			if seg == ".." {
				t.Fatalf("accepted %q reaching a parent directory", s)
			}
		}
	})
}
