package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/errdefs"
)

func (h *Handler) registerDatasets(mux Mux) {
	h.handle(mux, "GET", "/datasets", h.listDatasets)
	h.handle(mux, "POST", "/datasets", h.createDataset)
	h.handle(mux, "GET", "/datasets/{name}", h.getDataset)
	h.handle(mux, "PATCH", "/datasets/{name}", h.updateDataset)
	h.handle(mux, "DELETE", "/datasets/{name}", h.deleteDataset)
	h.handle(mux, "GET", "/datasets/{name}/versions", h.listVersions)
	h.handle(mux, "POST", "/datasets/{name}/versions", h.createVersion)
	h.handle(mux, "GET", "/datasets/{name}/versions/{version}", h.getVersion)
	h.handle(mux, "PATCH", "/datasets/{name}/versions/{version}", h.updateVersion)
}

func listQuery(r *http.Request) (dataset.ListQuery, error) {
	n, err := queryInt(r, "max_results")
	if err != nil {
		return dataset.ListQuery{}, err
	}
	q := r.URL.Query()
	return dataset.ListQuery{Prefix: q.Get("prefix"), Contains: q.Get("contains"), MaxResults: n, PageToken: q.Get("page_token")}, nil
}

func (h *Handler) listDatasets(w http.ResponseWriter, r *http.Request) error {
	q, err := listQuery(r)
	if err != nil {
		return err
	}
	ds, next, err := h.d.Datasets.ListDatasets(r.Context(), q)
	if err != nil {
		return err
	}
	if ds == nil {
		ds = []*dataset.Dataset{}
	}
	writeJSON(w, http.StatusOK, DatasetList{Datasets: ds, NextPageToken: next})
	return nil
}

func (h *Handler) createDataset(w http.ResponseWriter, r *http.Request) error {
	var req CreateDatasetRequest
	if err := decodeJSON(w, r, DefaultMaxJSONBytes, &req, false); err != nil {
		return err
	}
	d, err := h.d.Datasets.CreateDataset(r.Context(), req.Name, req.Description, req.Tags)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, DatasetResponse{Dataset: d})
	return nil
}

func (h *Handler) getDataset(w http.ResponseWriter, r *http.Request) error {
	d, err := h.d.Datasets.GetDataset(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, DatasetResponse{Dataset: d})
	return nil
}

// checkUpdate validates an update before any of it is applied, so that a
// bad tag does not leave the description changed.
func checkUpdate(req *UpdateRequest) error {
	for k, v := range req.Tags {
		if err := dataset.ValidateTag(k, v); err != nil {
			return err
		}
	}
	for _, k := range req.DeleteTags {
		if _, set := req.Tags[k]; set {
			return errdefs.Invalid("Tag '%s' is both set and deleted", clip(k))
		}
	}
	return nil
}

func (h *Handler) updateDataset(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	var req UpdateRequest
	if err := decodeJSON(w, r, DefaultMaxJSONBytes, &req, false); err != nil {
		return err
	}
	if err := checkUpdate(&req); err != nil {
		return err
	}
	ctx := r.Context()
	st := h.d.Datasets
	if _, err := st.GetDataset(ctx, name); err != nil {
		return err
	}
	if req.Description != nil {
		if err := st.UpdateDataset(ctx, name, *req.Description); err != nil {
			return err
		}
	}
	for k, v := range req.Tags {
		if err := st.SetDatasetTag(ctx, name, k, v); err != nil {
			return err
		}
	}
	for _, k := range req.DeleteTags {
		if err := st.DeleteDatasetTag(ctx, name, k); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return err
		}
	}
	return h.getDataset(w, r)
}

func (h *Handler) deleteDataset(w http.ResponseWriter, r *http.Request) error {
	if err := h.d.Datasets.DeleteDataset(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

func (h *Handler) listVersions(w http.ResponseWriter, r *http.Request) error {
	q, err := listQuery(r)
	if err != nil {
		return err
	}
	if q.Prefix != "" || q.Contains != "" {
		return errdefs.Invalid("Versions are not filtered by prefix or contains")
	}
	vs, next, err := h.d.Datasets.ListVersions(r.Context(), r.PathValue("name"), q)
	if err != nil {
		return err
	}
	if vs == nil {
		vs = []*dataset.Version{}
	}
	writeJSON(w, http.StatusOK, VersionList{Versions: vs, NextPageToken: next})
	return nil
}

func (h *Handler) createVersion(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if err := dataset.ValidateName(name); err != nil {
		return err
	}
	var req CreateVersionRequest
	if err := decodeJSON(w, r, DefaultMaxJSONBytes, &req, false); err != nil {
		return err
	}
	ctx := r.Context()
	var m *dataset.Manifest
	var summary *TransferSummary
	switch {
	case (req.Manifest == "") == (req.SourceURL == ""):
		return errdefs.Invalid("A new version needs exactly one of manifest (a pushed manifest's digest) and source_url")
	case req.Manifest != "":
		d, err := dataset.ParseDigest(req.Manifest)
		if err != nil {
			return err
		}
		if m, err = h.d.Content.GetManifest(ctx, d); err != nil {
			if errors.Is(err, errdefs.ErrNotFound) {
				return errdefs.InvalidState("Manifest %s is not stored: push the objects and the manifest first", d)
			}
			return err
		}
	default:
		var err error
		if m, summary, err = h.copySource(ctx, req.SourceURL); err != nil {
			return err
		}
		if req.Source == "" {
			req.Source = req.SourceURL
		}
	}
	if p := principal(r); p.Auth != "none" {
		// With access control on, the version is by whoever signed the
		// request, not whatever the body claims.
		req.CreatedBy = p.User
	}
	v, created, err := h.d.Datasets.CreateVersion(ctx, dataset.NewVersion{
		Dataset: name, Manifest: m, Description: req.Description, Tags: req.Tags, Source: req.Source, CreatedBy: req.CreatedBy,
	})
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, CreateVersionResponse{Version: v, Created: created, Transfer: summary})
	return nil
}

// copySource hashes a server-readable source and copies its objects into
// the content store.
func (h *Handler) copySource(ctx context.Context, uri string) (*dataset.Manifest, *TransferSummary, error) {
	if len(uri) > dataset.MaxTextLength {
		return nil, nil, errdefs.Invalid("The source URL has %d bytes, more than the limit of %d", len(uri), dataset.MaxTextLength)
	}
	if !h.sourceAllowed(uri) {
		allowed := "none"
		if len(h.d.SourceSchemes) > 0 {
			allowed = strings.Join(h.d.SourceSchemes, "://, ") + "://"
		}
		return nil, nil, errdefs.Invalid("The server reads sources only from %s URLs, not '%s'; push local files from the client (kiln data add)", allowed, clip(uri))
	}
	src, err := dataset.OpenSource(ctx, uri, h.d.SourceOptions)
	if err != nil {
		return nil, nil, sourceError(uri, err)
	}
	defer src.Close()
	m, hs, err := dataset.Hash(ctx, src, dataset.HashOptions{Workers: 16})
	if err != nil {
		return nil, nil, sourceError(uri, err)
	}
	ts, err := dataset.Push(ctx, src, m, h.d.Content, dataset.TransferOptions{})
	if err != nil {
		return nil, nil, sourceError(uri, err)
	}
	h.log.Info("dataset source copied", "source", uri, "files", hs.Files, "bytes", hs.Bytes, "sent", ts.Sent)
	return m, &TransferSummary{Files: hs.Files, Bytes: hs.Bytes, SentObjects: ts.Sent, SentBytes: ts.SentBytes}, nil
}

// sourceError explains a source the server could not read (missing
// credentials, no such bucket, a network failure): the client's to fix,
// so it is reported, not hidden behind a 500. Domain errors keep their
// kind.
func sourceError(uri string, err error) error {
	var de *errdefs.Error
	if errors.As(err, &de) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	cause := strings.Join(strings.Fields(err.Error()), " ")
	if len(cause) > 400 {
		cause = cause[:400] + "..."
	}
	return &errdefs.Error{Kind: errdefs.ErrInvalidArgument, Msg: fmt.Sprintf("The server cannot read '%s': %s", clip(uri), cause), Err: err}
}

func (h *Handler) getVersion(w http.ResponseWriter, r *http.Request) error {
	ref, err := versionRef(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	st := h.d.Datasets
	v, err := st.GetVersion(ctx, ref)
	if err != nil {
		return err
	}
	m, err := h.d.Content.GetManifest(ctx, v.Digest)
	if err != nil {
		return fmt.Errorf("manifest of %s: %w", v.Ref(), err)
	}
	vals, err := st.ListValidationResults(ctx, v.Ref())
	if err != nil {
		return err
	}
	if vals == nil {
		vals = []*dataset.ValidationResult{}
	}
	lin, err := h.lineage(ctx, v)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, VersionDetail{Version: v, URI: v.Ref().URI(), Manifest: summarize(m), Validations: vals, Lineage: lin})
	return nil
}

func summarize(m *dataset.Manifest) *ManifestSummary {
	s := &ManifestSummary{Kind: m.Kind, FileCount: len(m.Files), TotalSize: m.TotalSize(), Tables: []dataset.Entry{}}
	for _, e := range m.Files {
		if !dataset.IsTablePath(e.Path) {
			continue
		}
		if len(s.Tables) == MaxSummaryTables {
			s.TablesTruncated = true
			break
		}
		s.Tables = append(s.Tables, e)
	}
	return s
}

func (h *Handler) updateVersion(w http.ResponseWriter, r *http.Request) error {
	ref, err := versionRef(r)
	if err != nil {
		return err
	}
	var req UpdateRequest
	if err := decodeJSON(w, r, DefaultMaxJSONBytes, &req, false); err != nil {
		return err
	}
	if err := checkUpdate(&req); err != nil {
		return err
	}
	ctx := r.Context()
	st := h.d.Datasets
	v, err := st.GetVersion(ctx, ref)
	if err != nil {
		return err
	}
	ref = v.Ref() // "latest" is fixed once, so every change lands on the same version
	if req.Description != nil {
		if err := st.UpdateVersion(ctx, ref, *req.Description); err != nil {
			return err
		}
	}
	for k, val := range req.Tags {
		if err := st.SetVersionTag(ctx, ref, k, val); err != nil {
			return err
		}
	}
	for _, k := range req.DeleteTags {
		if err := st.DeleteVersionTag(ctx, ref, k); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return err
		}
	}
	if v, err = st.GetVersion(ctx, ref); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, VersionResponse{Version: v})
	return nil
}
