package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/pipeline"
)

// Stager moves a pipeline step's inputs and outputs between a Kiln
// server and a local folder over HTTP: it is the pipeline.Stager of
// `kiln step exec` inside a Kubernetes pod, the HTTP counterpart of the
// server's bucket stager. It speaks the routes the server has:
//
//	dataset:<name>@<version>   GET /api/v1/datasets/{name}/versions/{version},
//	                           GET /api/v1/content/manifests/{digest} and
//	                           GET /api/v1/content/objects/{digest} (a checkout)
//	mlflow-artifacts:/<key>    GET|PUT /api/2.0/mlflow-artifacts/artifacts/<key>,
//	                           GET /api/2.0/mlflow-artifacts/artifacts?path=<dir> (folders)
//	runs:/<run_id>/<path>      GET /api/2.0/mlflow/runs/get (the run's artifact root),
//	                           then as mlflow-artifacts:/
//
// models:/ URIs are not staged (a step reads a model through MLflow with
// the URI as a value input), as on the server.
type Stager struct {
	c *Client
}

// Stager returns the server's Stager.
func (c *Client) Stager() *Stager { return &Stager{c: c} }

// artifactsPrefix is the MLflow artifact proxy's route.
const artifactsPrefix = "/api/2.0/mlflow-artifacts/artifacts"

// Fetch materializes uri at dst: a file, or a folder for a dataset
// version or an artifact folder.
func (s *Stager) Fetch(ctx context.Context, uri, dst string) error {
	if ref, ok := strings.CutPrefix(uri, "dataset:"); ok {
		return s.fetchDataset(ctx, ref, dst)
	}
	key, err := s.key(ctx, uri)
	if err != nil {
		return err
	}
	ferr := s.fetchFile(ctx, key, dst)
	if ferr == nil {
		return nil
	}
	n := 0
	if err := s.fetchDir(ctx, key, dst, &n); err != nil {
		return err
	}
	if n == 0 {
		if errors.Is(ferr, errdefs.ErrNotFound) {
			return errdefs.NotFound("%s holds no artifact", uri)
		}
		return fmt.Errorf("fetch %s: %w", uri, ferr)
	}
	return nil
}

// Store uploads src, a file or a folder (file by file), to uri.
func (s *Stager) Store(ctx context.Context, src, uri string) error {
	key, err := s.key(ctx, uri)
	if err != nil {
		return err
	}
	if key == "" {
		return errdefs.Invalid("cannot store %s at the artifact store's root", src)
	}
	return pipeline.PutTree(src, key, func(file, key string) error { return s.put(ctx, file, key) })
}

// key maps an artifact URI to its key in the server's artifact store.
func (s *Stager) key(ctx context.Context, uri string) (string, error) {
	switch {
	case strings.HasPrefix(uri, "mlflow-artifacts:"):
		return pipeline.MLflowArtifactKey(uri)
	case strings.HasPrefix(uri, "runs:/"):
		id, sub, _ := strings.Cut(strings.TrimPrefix(uri, "runs:/"), "/")
		if id == "" {
			return "", errdefs.Invalid("artifact URI %q names no run", uri)
		}
		root, err := s.runArtifactURI(ctx, id)
		if err != nil {
			return "", fmt.Errorf("resolve %s: %w", uri, err)
		}
		if !strings.HasPrefix(root, "mlflow-artifacts:") {
			return "", errdefs.Invalid("resolve %s: the run's artifacts are at %q, not in the server's artifact store", uri, root)
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

// runArtifactURI asks MLflow's runs/get for a run's artifact root.
func (s *Stager) runArtifactURI(ctx context.Context, id string) (string, error) {
	req, err := s.c.newRequest(ctx, "GET", s.c.base+"/api/2.0/mlflow/runs/get?"+url.Values{"run_id": {id}}.Encode(), nil)
	if err != nil {
		return "", err
	}
	resp, err := s.mlflow(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct {
		Run struct {
			Info struct {
				ArtifactURI string `json:"artifact_uri"`
			} `json:"info"`
		} `json:"run"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return "", fmt.Errorf("kiln server %s: decode runs/get: %w", s.c.base, err)
	}
	if out.Run.Info.ArtifactURI == "" {
		return "", fmt.Errorf("kiln server %s: run %s has no artifact URI", s.c.base, id)
	}
	return out.Run.Info.ArtifactURI, nil
}

// artifactURL is the proxy URL of key, each segment escaped.
func (s *Stager) artifactURL(key string) string {
	segs := strings.Split(key, "/")
	for i, seg := range segs {
		segs[i] = url.PathEscape(seg)
	}
	return s.c.base + artifactsPrefix + "/" + strings.Join(segs, "/")
}

// mlflow sends a request to an MLflow route, whose errors are MLflow's
// ({"error_code": …, "message": …}).
func (s *Stager) mlflow(req *http.Request) (*http.Response, error) {
	resp, err := s.c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("kiln server %s: %w", s.c.base, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body struct {
		Code    string `json:"error_code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(data, &body) != nil || body.Code == "" {
		text := strings.TrimSpace(string(data))
		if len(text) > 200 {
			text = text[:200] + "..."
		}
		body.Message = fmt.Sprintf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, text)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound || body.Code == "RESOURCE_DOES_NOT_EXIST":
		return nil, errdefs.NotFound("%s", body.Message)
	case body.Code == "INVALID_PARAMETER_VALUE":
		return nil, errdefs.Invalid("%s", body.Message)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, fmt.Errorf("kiln server %s: %s (is KILN_TOKEN set?)", s.c.base, body.Message)
	}
	return nil, fmt.Errorf("kiln server %s: %s", s.c.base, body.Message)
}

func (s *Stager) fetchFile(ctx context.Context, key, dst string) error {
	if key == "" {
		return errdefs.NotFound("the artifact store's root is not a file")
	}
	req, err := s.c.newRequest(ctx, "GET", s.artifactURL(key), nil)
	if err != nil {
		return err
	}
	resp, err := s.mlflow(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return writeFile(dst, resp.Body)
}

// fetchDir copies the folder key to dst, counting the files in n.
func (s *Stager) fetchDir(ctx context.Context, key, dst string, n *int) error {
	req, err := s.c.newRequest(ctx, "GET", s.c.base+artifactsPrefix+"?"+url.Values{"path": {key}}.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := s.mlflow(req)
	if err != nil {
		return err
	}
	var list struct {
		Files []struct {
			Path  string `json:"path"`
			IsDir bool   `json:"is_dir"`
		} `json:"files"`
	}
	err = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("kiln server %s: decode the listing of %s: %w", s.c.base, key, err)
	}
	for _, f := range list.Files {
		name := path.Base(f.Path)
		if name == "." || name == ".." || name == "/" || strings.ContainsAny(name, `\`) {
			return fmt.Errorf("kiln server %s: the listing of %s holds %q", s.c.base, key, f.Path)
		}
		sub := path.Join(key, name)
		to := filepath.Join(dst, name)
		if f.IsDir {
			if err := s.fetchDir(ctx, sub, to, n); err != nil {
				return err
			}
			continue
		}
		if err := s.fetchFile(ctx, sub, to); err != nil {
			return err
		}
		*n++
	}
	return nil
}

func (s *Stager) put(ctx context.Context, file, key string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	req, err := s.c.newRequest(ctx, "PUT", s.artifactURL(key), f)
	if err != nil {
		return err
	}
	req.ContentLength = fi.Size()
	if fi.Size() == 0 {
		req.Body = http.NoBody
	}
	resp, err := s.mlflow(req)
	if err != nil {
		return fmt.Errorf("store %s: %w", key, err)
	}
	io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

func (s *Stager) fetchDataset(ctx context.Context, ref, dst string) error {
	vr, err := dataset.ParseVersionRef(ref)
	if err != nil {
		return err
	}
	det, err := s.c.GetVersion(ctx, vr)
	if err != nil {
		return fmt.Errorf("dataset %s: %w", ref, err)
	}
	if det.Version == nil {
		return fmt.Errorf("dataset %s: the server sent no version", ref)
	}
	r := s.c.Remote()
	m, err := r.GetManifest(ctx, det.Version.Digest)
	if err != nil {
		return fmt.Errorf("dataset %s: %w", ref, err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	if _, err := dataset.Checkout(ctx, r, m, dst, dataset.CheckoutOptions{}); err != nil {
		return fmt.Errorf("dataset %s: %w", ref, err)
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
