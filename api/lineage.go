package api

import (
	"context"
	"net/http"
	"strconv"

	"github.com/kiln-ml/kiln/access"
	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/errdefs"
)

// Lineage: the runs and model versions that used a version, and the
// dataset versions of a run or a model version.
func (h *Handler) registerLineage(mux Mux) {
	h.handle(mux, "GET", "/datasets/{name}/versions/{version}/lineage", h.getLineage)
	h.handle(mux, "POST", "/datasets/{name}/versions/{version}/lineage/runs", h.linkRun)
	h.handle(mux, "POST", "/datasets/{name}/versions/{version}/lineage/model-versions", h.linkModel)
	h.handle(mux, "GET", "/runs/{run_id}/datasets", h.runDatasets)
	h.handle(mux, "GET", "/models/{model}/versions/{model_version}/datasets", h.modelDatasets)
	h.handle(mux, "GET", "/lineage", h.lineageGraph)
}

func (h *Handler) lineage(ctx context.Context, v *dataset.Version) (*Lineage, error) {
	st := h.d.Datasets
	l := &Lineage{Version: v.Ref(), Parent: v.Parent, Children: []dataset.VersionRef{}, Runs: []dataset.RunLink{}, ModelVersions: []dataset.ModelUse{}}
	kids, err := st.Children(ctx, v.Ref())
	if err != nil {
		return nil, err
	}
	for _, k := range kids {
		l.Children = append(l.Children, k.Ref())
	}
	runs, err := st.RunsOfVersion(ctx, v.Ref())
	if err != nil {
		return nil, err
	}
	l.Runs = append(l.Runs, runs...)
	models, err := st.ModelsOfVersion(ctx, v.Ref())
	if err != nil {
		return nil, err
	}
	l.ModelVersions = append(l.ModelVersions, models...)
	return l, nil
}

func (h *Handler) getLineage(w http.ResponseWriter, r *http.Request) error {
	ref, err := versionRef(r)
	if err != nil {
		return err
	}
	v, err := h.d.Datasets.GetVersion(r.Context(), ref)
	if err != nil {
		return err
	}
	l, err := h.lineage(r.Context(), v)
	if err != nil {
		return err
	}
	writeShownJSON(w, http.StatusOK, l)
	return nil
}

// linkRun records by hand that a run used a version (runs that log the
// version as an MLflow input are linked automatically).
func (h *Handler) linkRun(w http.ResponseWriter, r *http.Request) error {
	ref, err := versionRef(r)
	if err != nil {
		return err
	}
	var req LinkRunRequest
	if err := decodeJSON(w, r, DefaultMaxJSONBytes, &req, false); err != nil {
		return err
	}
	ctx := r.Context()
	v, err := h.d.Datasets.GetVersion(ctx, ref)
	if err != nil {
		return err
	}
	if err := h.d.Datasets.LinkRun(ctx, dataset.RunLink{Version: v.Ref(), RunID: req.RunID, Context: req.Context}); err != nil {
		return err
	}
	return h.writeLineage(w, r, v)
}

func (h *Handler) linkModel(w http.ResponseWriter, r *http.Request) error {
	ref, err := versionRef(r)
	if err != nil {
		return err
	}
	var req LinkModelRequest
	if err := decodeJSON(w, r, DefaultMaxJSONBytes, &req, false); err != nil {
		return err
	}
	if req.Name == "" || req.Version < 1 {
		return errdefs.Invalid("A model version link needs the registered model's name and a version from 1")
	}
	ctx := r.Context()
	v, err := h.d.Datasets.GetVersion(ctx, ref)
	if err != nil {
		return err
	}
	stored, err := access.StoredName(ctx, access.ResourceModel, req.Name)
	if err != nil {
		return err
	}
	if err := h.d.Datasets.LinkModelVersion(ctx, v.Ref(), stored, req.Version); err != nil {
		return err
	}
	return h.writeLineage(w, r, v)
}

func (h *Handler) writeLineage(w http.ResponseWriter, r *http.Request, v *dataset.Version) error {
	l, err := h.lineage(r.Context(), v)
	if err != nil {
		return err
	}
	writeShownJSON(w, http.StatusOK, l)
	return nil
}

func (h *Handler) runDatasets(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("run_id")
	if id == "" || len(id) > dataset.MaxTextLength {
		return errdefs.Invalid("Invalid run id")
	}
	ctx := r.Context()
	if h.d.Tracking != nil {
		if _, err := h.d.Tracking.GetRun(ctx, id); err != nil {
			return err
		}
	}
	links, err := h.d.Datasets.VersionsOfRun(ctx, id)
	if err != nil {
		return err
	}
	if links == nil {
		links = []dataset.RunLink{}
	}
	writeShownJSON(w, http.StatusOK, RunDatasets{RunID: id, Datasets: links})
	return nil
}

func (h *Handler) modelDatasets(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("model")
	if name == "" || len(name) > dataset.MaxTextLength {
		return errdefs.Invalid("Invalid model name")
	}
	ver, err := strconv.ParseInt(r.PathValue("model_version"), 10, 64)
	if err != nil || ver < 1 {
		return errdefs.Invalid("Invalid model version '%s': want a number from 1", clip(r.PathValue("model_version")))
	}
	stored, err := access.StoredName(r.Context(), access.ResourceModel, name)
	if err != nil {
		return err
	}
	uses, err := h.d.Datasets.VersionsOfModel(r.Context(), stored, ver)
	if err != nil {
		return err
	}
	if uses == nil {
		uses = []dataset.VersionUse{}
	}
	writeShownJSON(w, http.StatusOK, ModelDatasets{Name: name, Version: ver, Datasets: uses})
	return nil
}
