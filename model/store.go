package model

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/registry"
	"github.com/kiln-ml/kiln/tracking"
)

// Tracking is what the in-process resolver reads from runs and logged
// models; *tracking.Store implements it.
type Tracking interface {
	GetRun(ctx context.Context, id string) (*tracking.Run, error)
	LoggedModelLocation(ctx context.Context, id string) (artifactURI, sourceRunID string, err error)
	SearchLoggedModels(ctx context.Context, q tracking.SearchLoggedModelsQuery) ([]*tracking.LoggedModel, string, error)
}

// Registry is what the in-process resolver reads from the model registry;
// *registry.Store implements it.
type Registry interface {
	GetModelVersion(ctx context.Context, name string, version int64) (*registry.ModelVersion, error)
	GetVersionByAlias(ctx context.Context, name, alias string) (*registry.ModelVersion, error)
	GetLatestVersions(ctx context.Context, name string, stages []string) ([]*registry.ModelVersion, error)
}

// Artifacts is the artifact store the in-process resolver copies model
// files from; *blob.Bucket implements it.
type Artifacts interface {
	List(ctx context.Context, dir string) ([]blob.Entry, error)
	Get(ctx context.Context, key string) (*blob.Object, error)
	Exists(ctx context.Context, key string) (bool, error)
	String() string
}

// NewStoreResolver returns a resolver over Kiln's own stores, for a
// process that holds them (`kiln server` serving its deployed models).
// Artifact URIs under the artifact proxy (mlflow-artifacts:/…) are read
// from artifacts and copied into cacheDir; file:// locations are used in
// place.
func NewStoreResolver(trk Tracking, reg Registry, artifacts Artifacts, cacheDir string) Resolver {
	return &resolver{cat: &storeCatalog{trk: trk, reg: reg, art: artifacts}, cacheDir: cacheDir}
}

type storeCatalog struct {
	trk Tracking
	reg Registry
	art Artifacts
}

func (c *storeCatalog) identity() string { return "store " + c.art.String() }

func (c *storeCatalog) modelVersion(ctx context.Context, name string, version int64) (versionInfo, error) {
	v, err := c.reg.GetModelVersion(ctx, name, version)
	if err != nil {
		return versionInfo{}, err
	}
	uri := v.StorageLocation
	if uri == "" {
		uri = v.Source
	}
	return versionInfo{version: v.Version, downloadURI: uri, modelID: modelIDOf(v.ModelID, v.Source), runID: v.RunID}, nil
}

// modelIDOf is a version's logged model: its model_id, or the id in a
// models:/<model_id> source (MLflow's server does not always return
// model_id).
func modelIDOf(id, source string) string {
	if id != "" {
		return id
	}
	if rest, ok := strings.CutPrefix(source, "models:/"); ok && isLoggedModelID(rest) {
		return rest
	}
	return ""
}

func (c *storeCatalog) aliasVersion(ctx context.Context, name, alias string) (int64, error) {
	v, err := c.reg.GetVersionByAlias(ctx, name, alias)
	if err != nil {
		return 0, err
	}
	return v.Version, nil
}

func (c *storeCatalog) latestVersion(ctx context.Context, name, stage string) (int64, error) {
	var stages []string
	if stage != "" {
		stages = []string{stage}
	}
	vs, err := c.reg.GetLatestVersions(ctx, name, stages)
	if err != nil {
		return 0, err
	}
	return maxVersion(name, stage, versionsOf(vs))
}

func versionsOf(vs []*registry.ModelVersion) []int64 {
	out := make([]int64, len(vs))
	for i, v := range vs {
		out[i] = v.Version
	}
	return out
}

// maxVersion picks the latest of the versions get-latest-versions
// returned, as MLflow's client does.
func maxVersion(name, stage string, vs []int64) (int64, error) {
	if len(vs) == 0 {
		if stage != "" {
			return 0, errdefs.NotFound("No versions of model with name '%s' and stage '%s' found", name, stage)
		}
		return 0, errdefs.NotFound("No versions of model with name '%s' found", name)
	}
	best := vs[0]
	for _, v := range vs[1:] {
		best = max(best, v)
	}
	return best, nil
}

func (c *storeCatalog) runArtifactURI(ctx context.Context, runID string) (string, string, error) {
	r, err := c.trk.GetRun(ctx, runID)
	if err != nil {
		return "", "", err
	}
	return r.Info.ArtifactURI, r.Info.ExperimentID, nil
}

func (c *storeCatalog) loggedModel(ctx context.Context, id string) (string, string, error) {
	return c.trk.LoggedModelLocation(ctx, id)
}

func (c *storeCatalog) runLoggedModel(ctx context.Context, runID, experimentID, name string) (string, string, error) {
	if strings.ContainsAny(name, "'\\") {
		return "", "", nil // not expressible in a filter; MLflow cannot name such a model either
	}
	q := tracking.SearchLoggedModelsQuery{ExperimentIDs: []string{experimentID}, Filter: "name = '" + name + "'", MaxResults: 100}
	for range 100 {
		ms, next, err := c.trk.SearchLoggedModels(ctx, q)
		if err != nil {
			return "", "", err
		}
		for _, m := range ms {
			if m.SourceRunID == runID {
				return m.ArtifactLocation, m.ID, nil
			}
		}
		if next == "" {
			break
		}
		q.PageToken = next
	}
	return "", "", nil
}

// bucketKey maps an artifact URI of the proxy to its key in the bucket.
func bucketKey(uri string) (string, error) {
	u, err := ParseURI(uri)
	if err != nil || u.Kind != URIArtifact {
		return "", fmt.Errorf("artifact URI %q is not in Kiln's artifact store (want mlflow-artifacts:/…)", uri)
	}
	return u.Path, nil
}

func (c *storeCatalog) hasFile(ctx context.Context, uri string) (bool, error) {
	if p, ok := localPath(uri); ok {
		_, err := os.Stat(p)
		return err == nil, nil
	}
	key, err := bucketKey(uri)
	if err != nil {
		return false, err
	}
	return c.art.Exists(ctx, key)
}

func (c *storeCatalog) fetch(ctx context.Context, uri, dir string) error {
	key, err := bucketKey(uri)
	if err != nil {
		return err
	}
	n := 0
	return c.copyDir(ctx, key, dir, 0, &n)
}

func (c *storeCatalog) copyDir(ctx context.Context, key, dir string, depth int, n *int) error {
	if depth > maxDepth {
		return fmt.Errorf("%s: directories nested deeper than %d", key, maxDepth)
	}
	entries, err := c.art.List(ctx, key)
	if err != nil {
		return err
	}
	if depth == 0 && len(entries) == 0 {
		return errdefs.NotFound("no artifacts at %s", key)
	}
	for _, e := range entries {
		if err := safeName(e.Name); err != nil {
			return err
		}
		if *n++; *n > maxFiles {
			return fmt.Errorf("%s: more than %d files", key, maxFiles)
		}
		dst := filepath.Join(dir, e.Name)
		if e.IsDir {
			if err := os.Mkdir(dst, 0o755); err != nil {
				return err
			}
			if err := c.copyDir(ctx, e.Path, dst, depth+1, n); err != nil {
				return err
			}
			continue
		}
		obj, err := c.art.Get(ctx, e.Path)
		if err != nil {
			return err
		}
		err = writeFile(dst, obj, obj.Size)
		obj.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// writeFile streams r into a new file at dst. When size is not negative,
// a stream of another length is an error.
func writeFile(dst string, r io.Reader, size int64) error {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && size >= 0 && n != size {
		err = fmt.Errorf("%s: got %d bytes, want %d", filepath.Base(dst), n, size)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(dst), err)
	}
	return nil
}
