package registry

import (
	"context"
	"path/filepath"
	"strings"

	"github.com/kiln-ml/kiln/errdefs"
)

// urlParts is the part of Python's urllib.parse.urlparse the source checks
// need.
type urlParts struct {
	scheme, host, path string
}

// splitURL splits a URI as Python's urlsplit does: a scheme only when the
// text before the first colon is a valid scheme, a netloc after "//", and
// the path up to any query or fragment.
func splitURL(s string) urlParts {
	var u urlParts
	if i := strings.IndexByte(s, ':'); i > 0 && validScheme(s[:i]) {
		u.scheme, s = strings.ToLower(s[:i]), s[i+1:]
	}
	if strings.HasPrefix(s, "//") {
		s = s[2:]
		end := strings.IndexAny(s, "/?#")
		if end < 0 {
			end = len(s)
		}
		u.host, s = s[:end], s[end:]
	}
	if end := strings.IndexAny(s, "?#"); end >= 0 {
		s = s[:end]
	}
	u.path = s
	return u
}

func validScheme(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		isAlpha := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !isAlpha && (i == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}

// hostname is the host part of a netloc, lower-cased, without user info or
// port.
func hostname(netloc string) string {
	if i := strings.LastIndexByte(netloc, '@'); i >= 0 {
		netloc = netloc[i+1:]
	}
	if i := strings.IndexByte(netloc, ':'); i >= 0 {
		netloc = netloc[:i]
	}
	return strings.ToLower(netloc)
}

// isLocal reports whether uri names a file on the server, as MLflow's
// is_local_uri: no scheme, or file:// without a remote host.
func isLocal(uri string) (bool, error) {
	u := splitURL(uri)
	if u.scheme == "" {
		return true, nil
	}
	if u.scheme != "file" {
		return false, nil
	}
	if h := hostname(u.host); h != "" && h != "." && !strings.HasPrefix(h, "localhost") && !strings.HasPrefix(h, "127.0.0.1") {
		return false, errdefs.Invalid("%s is not a valid remote uri. For remote access on windows, please consider using a different scheme such as SMB (e.g. smb://<hostname>/<path>).", uri)
	}
	return true, nil
}

// localPath turns a local URI into an absolute, cleaned file path.
func localPath(uri string) string {
	p := uri
	if u := splitURL(uri); u.scheme == "file" {
		p = unquote(u.path, false)
	}
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return filepath.Clean(p)
}

// unquote decodes %XX escapes (and '+' as space when plus is set) as
// Python's unquote_plus does, leaving malformed escapes as they are.
func unquote(s string, plus bool) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+' && plus:
			b.WriteByte(' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// validateSource applies MLflow's model version source checks
// (_validate_source_run / _validate_source_model in mlflow/server/handlers.py):
// a local path is only accepted inside the artifact directory of the run
// (or, with modelID, the logged model) it came from; any other URI must be
// an absolute path without relative references or NUL, even when
// percent-encoded.
func (s *Store) validateSource(ctx context.Context, source, runID, modelID string) error {
	local, err := isLocal(source)
	if err != nil {
		return err
	}
	if local {
		return s.validateLocalSource(ctx, source, runID, modelID)
	}
	return validateRemoteSource(source)
}

func (s *Store) validateLocalSource(ctx context.Context, source, runID, modelID string) error {
	owner, kind := runID, "run_id"
	if modelID != "" {
		owner, kind = modelID, "model_id"
	}
	shown := source
	if owner != "" {
		var root string
		var err error
		if modelID != "" {
			root, _, err = s.sources.LoggedModelLocation(ctx, modelID)
		} else {
			root, err = s.sources.RunArtifactURI(ctx, runID)
		}
		if err != nil {
			return err
		}
		shown = localPath(source)
		if rootLocal, _ := isLocal(root); rootLocal {
			dir := localPath(root)
			if shown == dir || strings.HasPrefix(shown, strings.TrimSuffix(dir, "/")+"/") {
				return nil
			}
		}
	}
	return errdefs.Invalid("Invalid model version source: '%s'. To use a local path as a model version source, the %s request parameter has to be specified and the local path has to be contained within the artifact directory of the run specified by the %s.", shown, kind, kind)
}

func validateRemoteSource(original string) error {
	source := original
	for {
		u := unquote(source, true)
		if u == source {
			break
		}
		source = u
	}
	p := strings.TrimRight(splitURL(source).path, "/")
	for strings.Contains(p, "//") {
		p = strings.ReplaceAll(p, "//", "/")
	}
	bad := strings.ContainsRune(p, 0)
	for _, seg := range strings.Split(source, "/") {
		bad = bad || seg == ".."
	}
	// MLflow compares the path with pathlib's resolve(): a relative or
	// empty path resolves against the server's working directory, and
	// "." or ".." segments resolve away; either way it differs.
	if bad || !strings.HasPrefix(p, "/") || filepath.ToSlash(filepath.Clean(p)) != p {
		return errdefs.Invalid("Invalid model version source: '%s'. If supplying a source as an http, https, local file path, ftp, objectstore, or mlflow-artifacts uri, an absolute path must be provided without relative path references present. Please provide an absolute path.", original)
	}
	return nil
}
