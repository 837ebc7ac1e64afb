package model

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/errdefs"
)

// RemoteOptions configure a resolver that talks to a tracking server.
type RemoteOptions struct {
	// CacheDir holds downloaded models; empty means DefaultCacheDir().
	CacheDir string
	// Client makes the requests; nil means a client without an overall
	// timeout (downloads stream; cancel them through the context).
	Client *http.Client
	// Credentials, as MLflow's client sends them: Basic when Username is
	// set (MLFLOW_TRACKING_USERNAME/PASSWORD), else Bearer Token
	// (MLFLOW_TRACKING_TOKEN). They go to the tracking server only.
	Username, Password string
	Token              string
}

// NewRemoteResolver returns a resolver that finds models through the
// MLflow REST API of the Kiln or MLflow server at trackingURI (http or
// https, with any path prefix) and downloads their files through its
// artifact proxy (/api/2.0/mlflow-artifacts), into a local cache keyed
// by the server and the files' artifact URI.
func NewRemoteResolver(trackingURI string, opts RemoteOptions) (Resolver, error) {
	u, err := url.Parse(strings.TrimRight(trackingURI, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("tracking URI %q: want http://host[:port][/prefix] or https://…", trackingURI)
	}
	u.RawQuery, u.Fragment = "", ""
	if opts.CacheDir == "" {
		if opts.CacheDir, err = DefaultCacheDir(); err != nil {
			return nil, err
		}
	}
	if opts.Client == nil {
		opts.Client = &http.Client{}
	}
	c := &remoteCatalog{base: u.String(), host: u.Host, opts: opts}
	return &resolver{cat: c, cacheDir: opts.CacheDir}, nil
}

type remoteCatalog struct {
	base string // http(s)://host[:port][/prefix], no trailing slash
	host string
	opts RemoteOptions
}

func (c *remoteCatalog) identity() string { return "remote " + c.base }

// maxJSON bounds an API response.
const maxJSON = 32 << 20

func (c *remoteCatalog) do(ctx context.Context, method, rawURL string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, rawURL, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", "kiln-model-resolver")
	if req.URL.Host == c.host {
		switch {
		case c.opts.Username != "":
			req.SetBasicAuth(c.opts.Username, c.opts.Password)
		case c.opts.Token != "":
			req.Header.Set("Authorization", "Bearer "+c.opts.Token)
		}
	}
	return c.opts.Client.Do(req)
}

// call makes an MLflow REST call and decodes its JSON answer into out.
func (c *remoteCatalog) call(ctx context.Context, method, path string, query url.Values, body, out any) error {
	u := c.base + "/api/2.0/mlflow/" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	resp, err := c.do(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return apiError(method+" "+path, resp)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxJSON)).Decode(out); err != nil {
		return fmt.Errorf("%s %s: bad response: %w", method, path, err)
	}
	return nil
}

// apiError turns an error response (MLflow's {"error_code", "message"}
// when it is one) into an error; not-found answers wrap errdefs.ErrNotFound
// and invalid-parameter answers errdefs.ErrInvalidArgument.
func apiError(what string, resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Code    string `json:"error_code"`
		Message string `json:"message"`
	}
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &e) == nil && e.Message != "" {
		msg = e.Message
	}
	if msg == "" {
		msg = resp.Status
	}
	if resp.StatusCode == http.StatusNotFound || e.Code == "RESOURCE_DOES_NOT_EXIST" {
		return fmt.Errorf("%s: %w", what, errdefs.NotFound("%s", msg))
	}
	if e.Code == "INVALID_PARAMETER_VALUE" || e.Code == "BAD_REQUEST" {
		return fmt.Errorf("%s: %w", what, errdefs.Invalid("%s", msg))
	}
	return fmt.Errorf("%s: HTTP %d: %s", what, resp.StatusCode, msg)
}

type versionJSON struct {
	Version string `json:"version"`
	Source  string `json:"source"`
	RunID   string `json:"run_id"`
	ModelID string `json:"model_id"`
}

func parseVersion(s string) (int64, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bad model version %q from server", s)
	}
	return v, nil
}

func (c *remoteCatalog) modelVersion(ctx context.Context, name string, version int64) (versionInfo, error) {
	q := url.Values{"name": {name}, "version": {strconv.FormatInt(version, 10)}}
	var mv struct {
		ModelVersion versionJSON `json:"model_version"`
	}
	if err := c.call(ctx, http.MethodGet, "model-versions/get", q, nil, &mv); err != nil {
		return versionInfo{}, err
	}
	var dl struct {
		ArtifactURI string `json:"artifact_uri"`
	}
	if err := c.call(ctx, http.MethodGet, "model-versions/get-download-uri", q, nil, &dl); err != nil {
		return versionInfo{}, err
	}
	if dl.ArtifactURI == "" {
		dl.ArtifactURI = mv.ModelVersion.Source
	}
	return versionInfo{version: version, downloadURI: dl.ArtifactURI, modelID: modelIDOf(mv.ModelVersion.ModelID, mv.ModelVersion.Source), runID: mv.ModelVersion.RunID}, nil
}

func (c *remoteCatalog) aliasVersion(ctx context.Context, name, alias string) (int64, error) {
	var mv struct {
		ModelVersion versionJSON `json:"model_version"`
	}
	if err := c.call(ctx, http.MethodGet, "registered-models/alias", url.Values{"name": {name}, "alias": {alias}}, nil, &mv); err != nil {
		return 0, err
	}
	return parseVersion(mv.ModelVersion.Version)
}

func (c *remoteCatalog) latestVersion(ctx context.Context, name, stage string) (int64, error) {
	body := map[string]any{"name": name}
	if stage != "" {
		body["stages"] = []string{stage}
	}
	var resp struct {
		ModelVersions []versionJSON `json:"model_versions"`
	}
	if err := c.call(ctx, http.MethodPost, "registered-models/get-latest-versions", nil, body, &resp); err != nil {
		return 0, err
	}
	vs := make([]int64, 0, len(resp.ModelVersions))
	for _, mv := range resp.ModelVersions {
		v, err := parseVersion(mv.Version)
		if err != nil {
			return 0, err
		}
		vs = append(vs, v)
	}
	return maxVersion(name, stage, vs)
}

func (c *remoteCatalog) runArtifactURI(ctx context.Context, runID string) (string, string, error) {
	var resp struct {
		Run struct {
			Info struct {
				ArtifactURI  string `json:"artifact_uri"`
				ExperimentID string `json:"experiment_id"`
			} `json:"info"`
		} `json:"run"`
	}
	if err := c.call(ctx, http.MethodGet, "runs/get", url.Values{"run_id": {runID}}, nil, &resp); err != nil {
		return "", "", err
	}
	return resp.Run.Info.ArtifactURI, resp.Run.Info.ExperimentID, nil
}

type loggedModelJSON struct {
	Info struct {
		ModelID     string `json:"model_id"`
		ArtifactURI string `json:"artifact_uri"`
		SourceRunID string `json:"source_run_id"`
	} `json:"info"`
}

func (c *remoteCatalog) loggedModel(ctx context.Context, id string) (string, string, error) {
	var resp struct {
		Model loggedModelJSON `json:"model"`
	}
	if err := c.call(ctx, http.MethodGet, "logged-models/"+url.PathEscape(id), nil, nil, &resp); err != nil {
		return "", "", err
	}
	return resp.Model.Info.ArtifactURI, resp.Model.Info.SourceRunID, nil
}

func (c *remoteCatalog) runLoggedModel(ctx context.Context, runID, experimentID, name string) (string, string, error) {
	if strings.ContainsAny(name, "'\\") {
		return "", "", nil
	}
	body := map[string]any{"experiment_ids": []string{experimentID}, "filter": "name = '" + name + "'", "max_results": 100}
	for range 100 {
		var resp struct {
			Models        []loggedModelJSON `json:"models"`
			NextPageToken string            `json:"next_page_token"`
		}
		if err := c.call(ctx, http.MethodPost, "logged-models/search", nil, body, &resp); err != nil {
			return "", "", err
		}
		for _, m := range resp.Models {
			if m.Info.SourceRunID == runID {
				return m.Info.ArtifactURI, m.Info.ModelID, nil
			}
		}
		if resp.NextPageToken == "" {
			break
		}
		body["page_token"] = resp.NextPageToken
	}
	return "", "", nil
}

// proxyPath maps an artifact URI to the artifact proxy that serves it:
// its base URL (…/api/2.0/mlflow-artifacts/artifacts) and the path in it.
func (c *remoteCatalog) proxyPath(uri string) (base, p string, err error) {
	const api = "/api/2.0/mlflow-artifacts/artifacts"
	if strings.HasPrefix(uri, "http://") || strings.HasPrefix(uri, "https://") {
		i := strings.Index(uri, api)
		if i < 0 {
			return "", "", fmt.Errorf("artifact URI %q is not an MLflow artifact proxy URL", uri)
		}
		p, err := cleanArtifactPath(strings.TrimPrefix(uri[i+len(api):], "/"))
		return uri[:i+len(api)], p, err
	}
	u, err := ParseURI(uri)
	if err != nil || u.Kind != URIArtifact {
		return "", "", fmt.Errorf("artifact URI %q cannot be downloaded through the tracking server: "+
			"only artifacts it proxies (mlflow-artifacts:/…) can; the server stores this model outside its proxy", uri)
	}
	base = c.base + api
	if u.Host != "" {
		// As MLflow: a host in the artifact URI overrides the tracking host.
		scheme, _, _ := strings.Cut(c.base, "://")
		base = scheme + "://" + u.Host + api
	}
	return base, u.Path, nil
}

func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}

func (c *remoteCatalog) hasFile(ctx context.Context, uri string) (bool, error) {
	if p, ok := localPath(uri); ok {
		_, err := os.Stat(p)
		return err == nil, nil
	}
	base, p, err := c.proxyPath(uri)
	if err != nil {
		return false, err
	}
	resp, err := c.do(ctx, http.MethodGet, base+"/"+escapePath(p), nil)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusUnauthorized, http.StatusForbidden:
		return false, apiError("GET "+p, resp)
	}
	// Not there: 404 from Kiln, 500 ("No such file or directory") from
	// MLflow's proxy over a local folder.
	return false, nil
}

type listJSON struct {
	Files []struct {
		Path     string `json:"path"`
		IsDir    bool   `json:"is_dir"`
		FileSize *int64 `json:"file_size"`
	} `json:"files"`
}

func (c *remoteCatalog) fetch(ctx context.Context, uri, dir string) error {
	base, p, err := c.proxyPath(uri)
	if err != nil {
		return err
	}
	n := 0
	return c.fetchDir(ctx, base, p, dir, 0, &n)
}

func (c *remoteCatalog) fetchDir(ctx context.Context, base, p, dir string, depth int, n *int) error {
	if depth > maxDepth {
		return fmt.Errorf("%s: directories nested deeper than %d", p, maxDepth)
	}
	resp, err := c.do(ctx, http.MethodGet, base+"?path="+url.QueryEscape(p), nil)
	if err != nil {
		return fmt.Errorf("list %s: %w", p, err)
	}
	var list listJSON
	if resp.StatusCode != http.StatusOK {
		err = apiError("list "+p, resp)
	} else if derr := json.NewDecoder(io.LimitReader(resp.Body, maxJSON)).Decode(&list); derr != nil {
		err = fmt.Errorf("list %s: bad response: %w", p, derr)
	}
	resp.Body.Close()
	if err != nil {
		return err
	}
	if depth == 0 && len(list.Files) == 0 {
		return fmt.Errorf("list %s: %w", p, errdefs.NotFound("no artifacts at %s", p))
	}
	for _, f := range list.Files {
		name := strings.TrimPrefix(f.Path, p+"/") // basenames, or paths under p from some servers
		if err := safeName(name); err != nil {
			return err
		}
		if *n++; *n > maxFiles {
			return fmt.Errorf("%s: more than %d files", p, maxFiles)
		}
		sub := name
		if p != "" {
			sub = p + "/" + name
		}
		dst := filepath.Join(dir, name)
		if f.IsDir {
			if err := os.Mkdir(dst, 0o755); err != nil {
				return err
			}
			if err := c.fetchDir(ctx, base, sub, dst, depth+1, n); err != nil {
				return err
			}
			continue
		}
		size := int64(-1)
		if f.FileSize != nil {
			size = *f.FileSize
		}
		if err := c.download(ctx, base, sub, dst, size); err != nil {
			return err
		}
	}
	return nil
}

func (c *remoteCatalog) download(ctx context.Context, base, p, dst string, size int64) error {
	resp, err := c.do(ctx, http.MethodGet, base+"/"+escapePath(p), nil)
	if err != nil {
		return fmt.Errorf("download %s: %w", p, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return apiError("download "+p, resp)
	}
	return writeFile(dst, resp.Body, size)
}
