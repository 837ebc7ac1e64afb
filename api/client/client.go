// Package client is a Go client of Kiln's REST API (package api): the
// dataset endpoints, and Remote, the dataset.Remote that pushes objects
// to and pulls them from a Kiln server's content store over HTTP. The
// kiln command line uses it.
//
// Errors that the server reports carry the errdefs kind of their code, so
// errors.Is(err, errdefs.ErrNotFound) works on the client as on the
// server, and a DIGEST_MISMATCH also matches dataset.ErrDigestMismatch.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/errdefs"
)

// Client talks to one Kiln server.
type Client struct {
	base string // scheme://host[/prefix], no trailing slash
	hc   *http.Client
	// Token, if set, is sent as a bearer token; else Username and
	// Password, if set, as HTTP Basic credentials.
	Token              string
	Username, Password string
	// UserAgent is sent with every request.
	UserAgent string
	// Workspace, if set, is the workspace requests act in (the
	// X-Kiln-Workspace header; the server's default otherwise).
	Workspace string
}

// New returns a client of the server at baseURL (http://host:port, or
// with a path prefix behind a proxy). With a nil hc it uses a client whose
// transport keeps enough idle connections for parallel transfers.
func New(baseURL string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errdefs.Invalid("Invalid server URL '%s': want http://HOST:PORT or https://…", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, errdefs.Invalid("Invalid server URL '%s': no query or fragment", baseURL)
	}
	if hc == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 128
		t.MaxIdleConns = 256
		hc = &http.Client{Transport: t}
	}
	return &Client{base: strings.TrimRight(u.String(), "/"), hc: hc, UserAgent: "kiln-client"}, nil
}

// URL returns the server's base URL.
func (c *Client) URL() string { return c.base }

// endpoint builds the URL of an API path (relative to /api/v1) from
// segments, each escaped.
func (c *Client) endpoint(query url.Values, segments ...string) string {
	var b strings.Builder
	b.WriteString(c.base)
	b.WriteString(api.Prefix)
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	if len(query) > 0 {
		b.WriteByte('?')
		b.WriteString(query.Encode())
	}
	return b.String()
}

func (c *Client) newRequest(ctx context.Context, method, u string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	if c.Workspace != "" {
		req.Header.Set("X-Kiln-Workspace", c.Workspace)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	} else if c.Username != "" {
		req.SetBasicAuth(c.Username, c.Password)
	}
	return req, nil
}

// send performs a request and returns the response when its status is
// 2xx; otherwise it decodes the error body into an error.
func (c *Client) send(req *http.Request) (*http.Response, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("kiln server %s: %w", c.base, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, responseError(resp)
}

// responseError turns an error response into an error carrying its kind.
func responseError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var body api.ErrorBody
	if err := json.Unmarshal(data, &body); err != nil || body.Error.Code == "" {
		text := strings.TrimSpace(string(data))
		if len(text) > 200 {
			text = text[:200] + "..."
		}
		if resp.StatusCode == http.StatusNotFound {
			return errdefs.NotFound("The server has no %s %s (is it a Kiln server with the data API?): %s", resp.Request.Method, resp.Request.URL.Path, text)
		}
		return fmt.Errorf("kiln server answered %s: %s", resp.Status, text)
	}
	msg := body.Error.Message
	switch kind := api.CodeKind(body.Error.Code); {
	case errors.Is(kind, dataset.ErrDigestMismatch):
		return &errdefs.Error{Kind: errdefs.ErrInvalidArgument, Msg: msg, Err: dataset.ErrDigestMismatch}
	case kind != nil:
		return &errdefs.Error{Kind: kind, Msg: msg}
	}
	return fmt.Errorf("kiln server: %s (%s)", msg, body.Error.Code)
}

// call sends a JSON request (in may be nil) and decodes a JSON answer into
// out (which may be nil).
func (c *Client) call(ctx context.Context, method, u string, in, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	req, err := c.newRequest(ctx, method, u, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.send(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("kiln server %s: decode the answer to %s %s: %w", c.base, method, req.URL.Path, err)
	}
	return nil
}

// ListOptions page through a listing.
type ListOptions struct {
	Prefix     string // datasets only
	Contains   string // datasets only: a part of the name or description
	MaxResults int
	PageToken  string
}

func (o ListOptions) query() url.Values {
	q := url.Values{}
	if o.Prefix != "" {
		q.Set("prefix", o.Prefix)
	}
	if o.Contains != "" {
		q.Set("contains", o.Contains)
	}
	if o.MaxResults > 0 {
		q.Set("max_results", strconv.Itoa(o.MaxResults))
	}
	if o.PageToken != "" {
		q.Set("page_token", o.PageToken)
	}
	return q
}

func versionSegment(ref dataset.VersionRef) string {
	if ref.Version == 0 {
		return "latest"
	}
	return strconv.FormatInt(ref.Version, 10)
}

func (c *Client) versionURL(ref dataset.VersionRef, query url.Values, more ...string) string {
	return c.endpoint(query, append([]string{"datasets", ref.Dataset, "versions", versionSegment(ref)}, more...)...)
}

// ListDatasets lists one page of datasets.
func (c *Client) ListDatasets(ctx context.Context, o ListOptions) (*api.DatasetList, error) {
	var out api.DatasetList
	return &out, c.call(ctx, "GET", c.endpoint(o.query(), "datasets"), nil, &out)
}

// AllDatasets lists every dataset that o's filters keep (page after page;
// o's paging fields are ignored).
func (c *Client) AllDatasets(ctx context.Context, o ListOptions) ([]*dataset.Dataset, error) {
	var all []*dataset.Dataset
	o.MaxResults, o.PageToken = 1000, ""
	for {
		page, err := c.ListDatasets(ctx, o)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Datasets...)
		if page.NextPageToken == "" {
			return all, nil
		}
		o.PageToken = page.NextPageToken
	}
}

// CreateDataset creates an empty dataset.
func (c *Client) CreateDataset(ctx context.Context, req api.CreateDatasetRequest) (*dataset.Dataset, error) {
	var out api.DatasetResponse
	return out.Dataset, c.call(ctx, "POST", c.endpoint(nil, "datasets"), req, &out)
}

// GetDataset returns a dataset.
func (c *Client) GetDataset(ctx context.Context, name string) (*dataset.Dataset, error) {
	var out api.DatasetResponse
	return out.Dataset, c.call(ctx, "GET", c.endpoint(nil, "datasets", name), nil, &out)
}

// UpdateDataset changes a dataset's description and tags.
func (c *Client) UpdateDataset(ctx context.Context, name string, req api.UpdateRequest) (*dataset.Dataset, error) {
	var out api.DatasetResponse
	return out.Dataset, c.call(ctx, "PATCH", c.endpoint(nil, "datasets", name), req, &out)
}

// DeleteDataset deletes a dataset's metadata.
func (c *Client) DeleteDataset(ctx context.Context, name string) error {
	return c.call(ctx, "DELETE", c.endpoint(nil, "datasets", name), nil, nil)
}

// ListVersions lists one page of a dataset's versions, newest first.
func (c *Client) ListVersions(ctx context.Context, name string, o ListOptions) (*api.VersionList, error) {
	var out api.VersionList
	return &out, c.call(ctx, "GET", c.endpoint(o.query(), "datasets", name, "versions"), nil, &out)
}

// AllVersions lists every version of a dataset, newest first.
func (c *Client) AllVersions(ctx context.Context, name string) ([]*dataset.Version, error) {
	var all []*dataset.Version
	o := ListOptions{MaxResults: 1000}
	for {
		page, err := c.ListVersions(ctx, name, o)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Versions...)
		if page.NextPageToken == "" {
			return all, nil
		}
		o.PageToken = page.NextPageToken
	}
}

// CreateVersion records a version from a pushed manifest or a
// server-read URL.
func (c *Client) CreateVersion(ctx context.Context, name string, req api.CreateVersionRequest) (*api.CreateVersionResponse, error) {
	var out api.CreateVersionResponse
	return &out, c.call(ctx, "POST", c.endpoint(nil, "datasets", name, "versions"), req, &out)
}

// GetVersion returns a version with its manifest summary, validation
// results and lineage.
func (c *Client) GetVersion(ctx context.Context, ref dataset.VersionRef) (*api.VersionDetail, error) {
	var out api.VersionDetail
	return &out, c.call(ctx, "GET", c.versionURL(ref, nil), nil, &out)
}

// UpdateVersion changes a version's description and tags.
func (c *Client) UpdateVersion(ctx context.Context, ref dataset.VersionRef, req api.UpdateRequest) (*dataset.Version, error) {
	var out api.VersionResponse
	return out.Version, c.call(ctx, "PATCH", c.versionURL(ref, nil), req, &out)
}

// Diff compares ref with from ("" for the previous version; "3", "name@3").
func (c *Client) Diff(ctx context.Context, ref dataset.VersionRef, from string, tables bool) (*api.DiffResponse, error) {
	q := url.Values{"tables": {strconv.FormatBool(tables)}}
	if from != "" {
		q.Set("from", from)
	}
	var out api.DiffResponse
	return &out, c.call(ctx, "GET", c.versionURL(ref, q, "diff"), nil, &out)
}

// Profile returns the profile stored on a version.
func (c *Client) Profile(ctx context.Context, ref dataset.VersionRef) (*api.ProfileResponse, error) {
	var out api.ProfileResponse
	return &out, c.call(ctx, "GET", c.versionURL(ref, nil, "profile"), nil, &out)
}

// PII scans a version's table files for personal data on the server
// (path: one table file, or "" for all; kinds: "" for every built-in
// kind, else a comma-separated list).
func (c *Client) PII(ctx context.Context, ref dataset.VersionRef, path, kinds string) (*api.PIIReport, error) {
	q := url.Values{}
	if path != "" {
		q.Set("path", path)
	}
	if kinds != "" {
		q.Set("kinds", kinds)
	}
	var out api.PIIReport
	return &out, c.call(ctx, "GET", c.versionURL(ref, q, "pii"), nil, &out)
}

// ComputeProfile profiles a version on the server (path: one table file,
// or "" for all).
func (c *Client) ComputeProfile(ctx context.Context, ref dataset.VersionRef, path string) (*api.ProfileResponse, error) {
	var out api.ProfileResponse
	return &out, c.call(ctx, "POST", c.versionURL(ref, nil, "profile"), api.ProfileRequest{Path: path}, &out)
}

// Validate runs a suite (YAML) on a version on the server.
func (c *Client) Validate(ctx context.Context, ref dataset.VersionRef, req api.ValidateRequest) (*api.ValidateResponse, error) {
	var out api.ValidateResponse
	return &out, c.call(ctx, "POST", c.versionURL(ref, nil, "validations"), req, &out)
}

// Validations lists a version's validation results.
func (c *Client) Validations(ctx context.Context, ref dataset.VersionRef) ([]*dataset.ValidationResult, error) {
	var out api.ValidationList
	return out.Validations, c.call(ctx, "GET", c.versionURL(ref, nil, "validations"), nil, &out)
}

// Split cuts a version into parts on the server.
func (c *Client) Split(ctx context.Context, ref dataset.VersionRef, req api.SplitRequest) (*api.SplitResponse, error) {
	var out api.SplitResponse
	return &out, c.call(ctx, "POST", c.versionURL(ref, nil, "splits"), req, &out)
}

// Lineage returns a version's lineage.
func (c *Client) Lineage(ctx context.Context, ref dataset.VersionRef) (*api.Lineage, error) {
	var out api.Lineage
	return &out, c.call(ctx, "GET", c.versionURL(ref, nil, "lineage"), nil, &out)
}

// LinkRun records that a run used a version.
func (c *Client) LinkRun(ctx context.Context, ref dataset.VersionRef, req api.LinkRunRequest) (*api.Lineage, error) {
	var out api.Lineage
	return &out, c.call(ctx, "POST", c.versionURL(ref, nil, "lineage", "runs"), req, &out)
}

// LinkModelVersion records that a registered model version used a
// version.
func (c *Client) LinkModelVersion(ctx context.Context, ref dataset.VersionRef, req api.LinkModelRequest) (*api.Lineage, error) {
	var out api.Lineage
	return &out, c.call(ctx, "POST", c.versionURL(ref, nil, "lineage", "model-versions"), req, &out)
}

// RunDatasets returns the dataset versions a run used.
func (c *Client) RunDatasets(ctx context.Context, runID string) (*api.RunDatasets, error) {
	var out api.RunDatasets
	return &out, c.call(ctx, "GET", c.endpoint(nil, "runs", runID, "datasets"), nil, &out)
}

// ModelDatasets returns the dataset versions a registered model version
// used.
func (c *Client) ModelDatasets(ctx context.Context, name string, version int64) (*api.ModelDatasets, error) {
	var out api.ModelDatasets
	return &out, c.call(ctx, "GET", c.endpoint(nil, "models", name, "versions", strconv.FormatInt(version, 10), "datasets"), nil, &out)
}

// Ping checks that the server answers the data API.
func (c *Client) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := c.ListDatasets(ctx, ListOptions{MaxResults: 1})
	return err
}
