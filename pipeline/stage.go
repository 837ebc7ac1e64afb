package pipeline

import (
	"context"

	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/registry"
	"github.com/kiln-ml/kiln/tracking"
)

// NewBucketStager returns a Stager over the server's own stores:
// mlflow-artifacts:/ URIs are keys of the artifact bucket, runs:/<id>/<path>
// is resolved through the tracking store, and dataset:<name>@<version> is
// checked out from the dataset content store. models:/ URIs are not staged
// (a step that needs a model reads it through MLflow with the URI as a
// value input).
func NewBucketStager(b *blob.Bucket, t *tracking.Store, r *registry.Store, d *dataset.Store) Stager {
	return &bucketStager{b: b, t: t, r: r, d: d}
}

type bucketStager struct {
	b *blob.Bucket
	t *tracking.Store
	r *registry.Store
	d *dataset.Store
}

// key maps an artifact URI to its bucket key.
func (s *bucketStager) key(ctx context.Context, uri string) (string, error) {
	switch {
	case strings.HasPrefix(uri, "mlflow-artifacts:"):
		return MLflowArtifactKey(uri)
	case strings.HasPrefix(uri, "runs:/"):
		rest := strings.TrimPrefix(uri, "runs:/")
		id, sub, _ := strings.Cut(rest, "/")
		if s.t == nil {
			return "", errdefs.NotImplemented("runs:/ URIs need the tracking store")
		}
		root, err := s.t.RunArtifactURI(ctx, id)
		if err != nil {
			return "", fmt.Errorf("resolve %s: %w", uri, err)
		}
		k, err := s.key(ctx, root)
		if err != nil {
			return "", err
		}
		sub, err = blob.CleanKey(sub)
		if err != nil {
			return "", errdefs.Invalid("artifact URI %q: %v", uri, err)
		}
		return path.Join(k, sub), nil
	}
	return "", errdefs.Invalid("cannot stage %q: use an mlflow-artifacts:/, runs:/ or dataset: URI", uri)
}

// Fetch materializes uri at dst.
func (s *bucketStager) Fetch(ctx context.Context, uri, dst string) error {
	if ref, ok := strings.CutPrefix(uri, "dataset:"); ok {
		return s.fetchDataset(ctx, ref, dst)
	}
	k, err := s.key(ctx, uri)
	if err != nil {
		return err
	}
	if obj, err := s.b.Get(ctx, k); err == nil {
		defer obj.Close()
		return writeFile(dst, obj)
	}
	n := 0
	if err := s.fetchDir(ctx, k, dst, &n); err != nil {
		return err
	}
	if n == 0 {
		return errdefs.NotFound("%s holds no artifact", uri)
	}
	return nil
}

func (s *bucketStager) fetchDir(ctx context.Context, dir, dst string, n *int) error {
	entries, err := s.b.List(ctx, dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		to := filepath.Join(dst, filepath.FromSlash(e.Name))
		if e.IsDir {
			if err := s.fetchDir(ctx, e.Path, to, n); err != nil {
				return err
			}
			continue
		}
		obj, err := s.b.Get(ctx, e.Path)
		if err != nil {
			return err
		}
		err = writeFile(to, obj)
		obj.Close()
		if err != nil {
			return err
		}
		*n++
	}
	return nil
}

func writeFile(dst string, r io.Reader) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func (s *bucketStager) fetchDataset(ctx context.Context, ref, dst string) error {
	if s.d == nil {
		return errdefs.NotImplemented("dataset inputs need the dataset store")
	}
	vr, err := dataset.ParseVersionRef(ref)
	if err != nil {
		return err
	}
	v, err := s.d.GetVersion(ctx, vr)
	if err != nil {
		return err
	}
	remote := dataset.NewBucketRemote(s.b)
	m, err := remote.GetManifest(ctx, v.Digest)
	if err != nil {
		return fmt.Errorf("dataset %s: %w", ref, err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	_, err = dataset.Checkout(ctx, remote, m, dst, dataset.CheckoutOptions{})
	return err
}

// Store uploads src, a file or a folder, to uri.
func (s *bucketStager) Store(ctx context.Context, src, uri string) error {
	k, err := s.key(ctx, uri)
	if err != nil {
		return err
	}
	return PutTree(src, k, func(file, key string) error { return s.put(ctx, file, key) })
}

func (s *bucketStager) put(ctx context.Context, file, key string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := s.b.Put(ctx, key, f, ""); err != nil {
		return fmt.Errorf("store %s: %w", key, err)
	}
	return nil
}

// MLflowArtifactKey returns the artifact-store key of an mlflow-artifacts:
// URI (mlflow-artifacts:/path, or mlflow-artifacts://host/path, whose host
// is ignored); errdefs invalid when the path is not a clean key.
func MLflowArtifactKey(uri string) (string, error) {
	rest := strings.TrimPrefix(uri, "mlflow-artifacts:")
	if strings.HasPrefix(rest, "//") {
		rest = rest[2:]
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			rest = rest[i:]
		} else {
			rest = ""
		}
	}
	k, err := blob.CleanKey(strings.TrimLeft(rest, "/"))
	if err != nil {
		return "", errdefs.Invalid("artifact URI %q: %v", uri, err)
	}
	return k, nil
}

// PutTree calls put for src at key when src is a file, or for each file
// under the folder src at key/<its path inside src> (what a Stager's
// Store does with a file or a folder).
func PutTree(src, key string, put func(file, key string) error) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return put(src, key)
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		return put(p, path.Join(key, filepath.ToSlash(rel)))
	})
}
