package model

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// ErrBadURI reports a model URI that cannot be parsed.
var ErrBadURI = errors.New("invalid model URI")

// URIKind says what a model URI names.
type URIKind int

// The kinds of model URI.
const (
	URILocal       URIKind = iota + 1 // a local directory: /path, ./path, file:///path
	URIRun                            // runs:/<run_id>/<path>
	URIVersion                        // models:/<name>/<version>
	URIAlias                          // models:/<name>@<alias>
	URIStage                          // models:/<name>/<stage>, models:/<name>/latest (Stage "")
	URILoggedModel                    // models:/<model_id>, m-<id>
	URIArtifact                       // mlflow-artifacts:/<path>, mlflow-artifacts://<host>/<path>
)

func (k URIKind) String() string {
	switch k {
	case URILocal:
		return "local"
	case URIRun:
		return "run"
	case URIVersion:
		return "version"
	case URIAlias:
		return "alias"
	case URIStage:
		return "stage"
	case URILoggedModel:
		return "logged model"
	case URIArtifact:
		return "artifact"
	}
	return "URIKind(" + strconv.Itoa(int(k)) + ")"
}

// URI is a parsed model URI. Which fields are set depends on Kind.
type URI struct {
	Kind    URIKind
	Raw     string
	Path    string // URILocal: the directory; URIRun, URIArtifact: the path (may be empty for a run's root)
	Host    string // URIArtifact: the host of mlflow-artifacts://host/path, else empty
	RunID   string // URIRun
	Name    string // URIVersion, URIAlias, URIStage: the registered model
	Version int64  // URIVersion
	Alias   string // URIAlias
	Stage   string // URIStage: the stage as written; "" for models:/<name>/latest
	ModelID string // URILoggedModel
}

// String returns the URI as given.
func (u URI) String() string { return u.Raw }

const maxURILen = 4096

func badURI(raw, why string) error {
	return fmt.Errorf("%w %q: %s", ErrBadURI, raw, why)
}

// ParseURI parses a model URI as MLflow does:
//
//	/abs/dir, ./rel/dir, dir, file:///abs/dir   a local model directory
//	runs:/<run_id>/<path>                       a model in a run's artifacts (or, as MLflow 3 does, the run's logged model named <path>)
//	models:/<name>/<version>                    a registered model version
//	models:/<name>@<alias>                      the version an alias points at
//	models:/<name>/<stage>                      the latest version in a stage (Staging, Production, ...)
//	models:/<name>/latest                       the latest version
//	models:/<model_id>, m-<id>                  an MLflow 3 logged model
//	mlflow-artifacts:/<path>                    files in the tracking server's artifact proxy
func ParseURI(raw string) (URI, error) {
	if raw == "" {
		return URI{}, badURI(raw, "empty")
	}
	if len(raw) > maxURILen {
		return URI{}, badURI(raw[:64]+"...", fmt.Sprintf("longer than %d bytes", maxURILen))
	}
	if strings.ContainsRune(raw, 0) {
		return URI{}, badURI(raw, "contains a NUL byte")
	}
	u := URI{Raw: raw}
	scheme, rest, hasScheme := cutScheme(raw)
	if !hasScheme {
		if isLoggedModelID(raw) {
			u.Kind, u.ModelID = URILoggedModel, raw
			return u, nil
		}
		u.Kind, u.Path = URILocal, raw
		return u, nil
	}
	switch scheme {
	case "file":
		// As blob.Open: file:///abs, file://localhost/abs, file:/abs and,
		// for relative paths, file://./dir or file:dir.
		p := rest
		if after, ok := strings.CutPrefix(p, "//"); ok {
			p = after
			if a, ok := strings.CutPrefix(p, "localhost/"); ok {
				p = "/" + a
			}
		}
		p, err := url.PathUnescape(p)
		if err != nil {
			return URI{}, badURI(raw, err.Error())
		}
		if p == "" || strings.ContainsRune(p, 0) {
			return URI{}, badURI(raw, "no path")
		}
		u.Kind, u.Path = URILocal, p
		return u, nil
	case "runs":
		const form = "runs URIs must be of the form 'runs:/<run_id>/run-relative/path/to/artifact'"
		if !strings.HasPrefix(rest, "/") || len(rest) <= 1 {
			return URI{}, badURI(raw, form)
		}
		id, p, _ := strings.Cut(rest[1:], "/")
		if id == "" {
			return URI{}, badURI(raw, form)
		}
		if !validRunID(id) {
			return URI{}, badURI(raw, "invalid run id "+strconv.Quote(id))
		}
		clean, err := cleanArtifactPath(p)
		if err != nil {
			return URI{}, badURI(raw, err.Error())
		}
		u.Kind, u.RunID, u.Path = URIRun, id, clean
		return u, nil
	case "models":
		return parseModelsURI(u, rest)
	case "mlflow-artifacts":
		p := rest
		if strings.HasPrefix(p, "//") {
			host, after, _ := strings.Cut(p[2:], "/")
			u.Host, p = host, after
		}
		clean, err := cleanArtifactPath(strings.TrimLeft(p, "/"))
		if err != nil {
			return URI{}, badURI(raw, err.Error())
		}
		if clean == "" {
			return URI{}, badURI(raw, "no artifact path")
		}
		u.Kind, u.Path = URIArtifact, clean
		return u, nil
	}
	return URI{}, badURI(raw, "unsupported scheme "+strconv.Quote(scheme)+" (want a local path, file://, runs:/, models:/, mlflow-artifacts:/ or m-<id>)")
}

func parseModelsURI(u URI, rest string) (URI, error) {
	const form = "models URIs must be of the form 'models:/name/suffix' or 'models:/name@alias' " +
		"where suffix is a version, stage, or the string 'latest' and where alias is a registered model alias, " +
		"or 'models:/<model_id>'"
	raw := u.Raw
	if !strings.HasPrefix(rest, "/") || len(rest) <= 1 {
		return URI{}, badURI(raw, form)
	}
	p := strings.TrimLeft(rest, "/")
	parts := strings.Split(p, "/")
	if len(parts) > 2 || strings.TrimSpace(parts[0]) == "" {
		return URI{}, badURI(raw, form)
	}
	if len(parts) == 2 {
		name, suffix := parts[0], parts[1]
		if strings.TrimSpace(suffix) == "" {
			return URI{}, badURI(raw, form)
		}
		u.Name = name
		if isDigits(suffix) {
			v, err := strconv.ParseInt(suffix, 10, 64)
			if err != nil || v <= 0 {
				return URI{}, badURI(raw, "invalid version "+strconv.Quote(suffix))
			}
			u.Kind, u.Version = URIVersion, v
			return u, nil
		}
		u.Kind = URIStage
		if !strings.EqualFold(suffix, "latest") {
			u.Stage = suffix
		}
		return u, nil
	}
	if i := strings.LastIndexByte(p, '@'); i >= 0 {
		name, alias := p[:i], p[i+1:]
		if strings.TrimSpace(alias) == "" || name == "" {
			return URI{}, badURI(raw, form)
		}
		u.Kind, u.Name, u.Alias = URIAlias, name, alias
		return u, nil
	}
	u.Kind, u.ModelID = URILoggedModel, p
	return u, nil
}

// cutScheme splits "scheme:rest" when raw starts with a URI scheme of two
// or more letters (so that a Windows drive "C:\..." is a path).
func cutScheme(raw string) (scheme, rest string, ok bool) {
	i := strings.IndexByte(raw, ':')
	if i < 2 {
		return "", "", false
	}
	for j := 0; j < i; j++ {
		c := raw[j]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || j > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return "", "", false
		}
	}
	return strings.ToLower(raw[:i]), raw[i+1:], true
}

// isLoggedModelID reports whether s looks like an MLflow 3 logged model id
// ("m-" and 32 hex digits, or at least some id characters after "m-").
func isLoggedModelID(s string) bool {
	rest, ok := strings.CutPrefix(s, "m-")
	if !ok || rest == "" || len(rest) > 64 {
		return false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validRunID is MLflow's run id rule: ^[a-zA-Z0-9][\w\-]{0,255}$.
func validRunID(s string) bool {
	if len(s) == 0 || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if !alnum && (i == 0 || c != '_' && c != '-') {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// cleanArtifactPath validates a slash-separated path inside an artifact
// store: no "..", no backslash, no NUL; "." and empty segments dropped.
func cleanArtifactPath(p string) (string, error) {
	if strings.ContainsAny(p, "\\\x00") {
		return "", fmt.Errorf("invalid artifact path %q", p)
	}
	segs := strings.Split(p, "/")
	out := segs[:0]
	for _, s := range segs {
		switch s {
		case "", ".":
			continue
		case "..":
			return "", fmt.Errorf("invalid artifact path %q: '..' is not allowed", p)
		}
		out = append(out, s)
	}
	return strings.Join(out, "/"), nil
}

// joinArtifactURI appends a relative path to an artifact URI.
func joinArtifactURI(base, rel string) string {
	if rel == "" {
		return base
	}
	return strings.TrimRight(base, "/") + "/" + rel
}
