package model

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// A Resolver turns a model URI into a local directory holding the model's
// files. NewStoreResolver reads Kiln's own stores in process (for `kiln
// server`); NewRemoteResolver talks to a Kiln or MLflow tracking server
// over HTTP (for `kiln serve`). Both handle local paths too.
type Resolver interface {
	Resolve(ctx context.Context, uri string) (*Resolved, error)
}

// Resolved is where a model URI led.
type Resolved struct {
	URI URI
	// Dir is a local directory with the MLmodel file at its root. For a
	// downloaded model it is inside the cache: treat it as read-only.
	Dir string
	// Source is the artifact URI the files came from (e.g.
	// mlflow-artifacts:/1/models/m-…/artifacts), or the local directory.
	Source string
	// Name and Version are set when the URI went through the registry.
	Name    string
	Version int64
	ModelID string // the logged model, when known
	RunID   string // the run that produced the model, when known
	// Cached is true when the files were already in the local cache.
	Cached bool
}

// versionInfo is what a catalog knows of a registered model version.
type versionInfo struct {
	version     int64
	downloadURI string
	modelID     string
	runID       string
}

// catalog is what resolution needs from a tracking server and registry,
// in process or over HTTP.
type catalog interface {
	modelVersion(ctx context.Context, name string, version int64) (versionInfo, error)
	aliasVersion(ctx context.Context, name, alias string) (int64, error)
	// latestVersion is the highest version in stage, or of all versions
	// when stage is empty.
	latestVersion(ctx context.Context, name, stage string) (int64, error)
	runArtifactURI(ctx context.Context, runID string) (uri, experimentID string, err error)
	loggedModel(ctx context.Context, id string) (artifactURI, runID string, err error)
	// runLoggedModel finds the logged model named name that run produced.
	runLoggedModel(ctx context.Context, runID, experimentID, name string) (artifactURI, modelID string, err error)
	// hasFile reports whether the file at artifactURI exists.
	hasFile(ctx context.Context, artifactURI string) (bool, error)
	// fetch copies the files under artifactURI into the empty directory dir.
	fetch(ctx context.Context, artifactURI, dir string) error
	// identity names the store in cache keys.
	identity() string
}

// resolver resolves URIs through a catalog, caching downloads in cacheDir.
type resolver struct {
	cat      catalog
	cacheDir string
}

// DefaultCacheDir is where downloaded models are cached by default:
// $XDG_CACHE_HOME/kiln/models (~/.cache/kiln/models on Linux).
func DefaultCacheDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("model cache: %w", err)
	}
	return filepath.Join(d, "kiln", "models"), nil
}

// maxIndirections bounds download URIs that are themselves model URIs
// (a version whose source is runs:/… or models:/…).
const maxIndirections = 4

// Resolve implements Resolver.
func (r *resolver) Resolve(ctx context.Context, raw string) (*Resolved, error) {
	u, err := ParseURI(raw)
	if err != nil {
		return nil, err
	}
	res := &Resolved{URI: u}
	local := ""
	switch {
	case u.Kind == URILocal:
		local = u.Path
	case u.Kind == URILoggedModel && !strings.HasPrefix(u.Raw, "models:"):
		// A bare m-<id> may also be a local directory of that name.
		if st, err := os.Stat(u.Raw); err == nil && st.IsDir() {
			local = u.Raw
		}
	}
	if local != "" {
		if res.Dir, err = localModelDir(local); err != nil {
			return nil, err
		}
		res.Source = res.Dir
		return res, nil
	}
	source, err := r.source(ctx, u, res, 0)
	if err != nil {
		return nil, err
	}
	if dir, ok := localPath(source); ok {
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("model %s: its files are at %s, which is not on this machine "+
				"(the tracking server keeps artifacts in a local folder; serve them through its artifact proxy)", raw, source)
		}
		if res.Dir, err = localModelDir(dir); err != nil {
			return nil, err
		}
		res.Source = source
		return res, nil
	}
	res.Source = source
	res.Dir, res.Cached, err = r.materialize(ctx, source)
	if err != nil {
		return nil, fmt.Errorf("model %s: %w", raw, err)
	}
	return res, nil
}

// source finds the artifact URI (or local path) of u's files.
func (r *resolver) source(ctx context.Context, u URI, res *Resolved, depth int) (string, error) {
	if depth > maxIndirections {
		return "", fmt.Errorf("model %s: too many indirections", res.URI.Raw)
	}
	if r.cat == nil {
		return "", fmt.Errorf("model %s: a %s URI needs a tracking server (set KILN_URL or MLFLOW_TRACKING_URI)", u.Raw, u.Kind)
	}
	switch u.Kind {
	case URIVersion, URIAlias, URIStage:
		v := u.Version
		var err error
		switch u.Kind {
		case URIAlias:
			v, err = r.cat.aliasVersion(ctx, u.Name, u.Alias)
		case URIStage:
			v, err = r.cat.latestVersion(ctx, u.Name, u.Stage)
		}
		if err != nil {
			return "", fmt.Errorf("model %s: %w", u.Raw, err)
		}
		info, err := r.cat.modelVersion(ctx, u.Name, v)
		if err != nil {
			return "", fmt.Errorf("model %s: %w", u.Raw, err)
		}
		res.Name, res.Version, res.ModelID, res.RunID = u.Name, v, info.modelID, info.runID
		return r.follow(ctx, info.downloadURI, res, depth)
	case URIRun:
		base, exp, err := r.cat.runArtifactURI(ctx, u.RunID)
		if err != nil {
			return "", fmt.Errorf("model %s: %w", u.Raw, err)
		}
		res.RunID = u.RunID
		src := joinArtifactURI(base, u.Path)
		if u.Path == "" {
			return src, nil
		}
		// As MLflow 3: a model logged with name=<path> lives with the
		// logged model, not in the run's artifacts.
		if ok, err := r.cat.hasFile(ctx, joinArtifactURI(src, MLmodelFile)); err != nil || ok {
			return src, err
		}
		first, rest, _ := strings.Cut(u.Path, "/")
		loc, id, err := r.cat.runLoggedModel(ctx, u.RunID, exp, first)
		if err != nil {
			return "", fmt.Errorf("model %s: %w", u.Raw, err)
		}
		if loc == "" {
			return "", fmt.Errorf("model %s: %w: no MLmodel at %s and no logged model named %q in run %s",
				u.Raw, ErrNoMLmodel, src, first, u.RunID)
		}
		res.ModelID = id
		return joinArtifactURI(loc, rest), nil
	case URILoggedModel:
		loc, run, err := r.cat.loggedModel(ctx, u.ModelID)
		if err != nil {
			return "", fmt.Errorf("model %s: %w", u.Raw, err)
		}
		res.ModelID, res.RunID = u.ModelID, run
		return loc, nil
	case URIArtifact:
		return u.Raw, nil
	}
	return "", fmt.Errorf("model %s: unsupported URI kind %s", u.Raw, u.Kind)
}

// follow resolves a download URI that may itself be a model URI.
func (r *resolver) follow(ctx context.Context, uri string, res *Resolved, depth int) (string, error) {
	if strings.HasPrefix(uri, "runs:") || strings.HasPrefix(uri, "models:") {
		u, err := ParseURI(uri)
		if err != nil {
			return "", err
		}
		return r.source(ctx, u, res, depth+1)
	}
	return uri, nil
}

// localPath returns the local directory of a file: artifact URI or path.
func localPath(uri string) (string, bool) {
	if p, ok := strings.CutPrefix(uri, "file:"); ok {
		u, err := ParseURI("file:" + p)
		if err != nil {
			return p, true
		}
		return u.Path, true
	}
	if filepath.IsAbs(uri) {
		return uri, true
	}
	return "", false
}

// localModelDir checks that dir (or the MLmodel file named) is a model
// directory and returns its absolute path.
func localModelDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	st, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("model directory: %w", err)
	}
	if !st.IsDir() {
		if filepath.Base(abs) != MLmodelFile {
			return "", fmt.Errorf("model %s: not a directory", dir)
		}
		abs = filepath.Dir(abs)
	}
	if _, err := os.Stat(filepath.Join(abs, MLmodelFile)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("%w in %s", ErrNoMLmodel, abs)
		}
		return "", err
	}
	return abs, nil
}

// cacheKey names the cache entry of source: the files at one artifact URI
// of one store. Registry versions are immutable, so a second resolution
// of the same version finds its files here without downloading.
func (r *resolver) cacheKey(source string) string {
	h := sha256.Sum256([]byte(r.cat.identity() + "\n" + source))
	return hex.EncodeToString(h[:16])
}

// materialize returns a cache directory holding the files at source,
// downloading them first if they are not cached. A download goes to a
// temporary directory renamed into place when complete, so a cache entry
// is whole or absent, even after a crash.
func (r *resolver) materialize(ctx context.Context, source string) (string, bool, error) {
	if r.cacheDir == "" {
		return "", false, errors.New("no model cache directory")
	}
	final := filepath.Join(r.cacheDir, r.cacheKey(source))
	if _, err := os.Stat(filepath.Join(final, MLmodelFile)); err == nil {
		return final, true, nil
	}
	if err := os.MkdirAll(r.cacheDir, 0o755); err != nil {
		return "", false, fmt.Errorf("model cache: %w", err)
	}
	var suffix [6]byte
	rand.Read(suffix[:])
	tmp := filepath.Join(r.cacheDir, ".tmp-"+filepath.Base(final)+"-"+hex.EncodeToString(suffix[:]))
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return "", false, fmt.Errorf("model cache: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	if err := r.cat.fetch(ctx, source, tmp); err != nil {
		return "", false, fmt.Errorf("download %s: %w", source, err)
	}
	if _, err := os.Stat(filepath.Join(tmp, MLmodelFile)); err != nil {
		return "", false, fmt.Errorf("%w at %s", ErrNoMLmodel, source)
	}
	if err := syncTree(tmp); err != nil {
		return "", false, fmt.Errorf("model cache: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		// Another process finished the same download first: use its copy.
		if _, serr := os.Stat(filepath.Join(final, MLmodelFile)); serr == nil {
			return final, false, nil
		}
		return "", false, fmt.Errorf("model cache: %w", err)
	}
	ok = true
	syncDir(r.cacheDir)
	return final, false, nil
}

// syncTree flushes the files and directories under dir to disk, so that
// the rename that publishes them never exposes a partly written entry.
func syncTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return syncDir(p)
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		err = f.Sync()
		f.Close()
		return err
	})
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return nil // some file systems cannot sync directories
	}
	return nil
}

// LocalResolver resolves local model directories (paths and file:// URIs)
// and nothing else.
func LocalResolver() Resolver { return localResolver }

var localResolver = &resolver{}

// safeName checks one name from a remote directory listing: a single path
// segment that stays inside the directory being filled.
func safeName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") {
		return fmt.Errorf("refusing artifact name %q: not a plain file name", name)
	}
	return nil
}

// maxFiles and maxDepth bound a model directory download.
const (
	maxFiles = 10000
	maxDepth = 32
)
