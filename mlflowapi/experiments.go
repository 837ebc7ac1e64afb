package mlflowapi

import (
	"errors"
	"net/http"

	"github.com/kiln-ml/kiln/access"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/tracking"
)

func missing(name string) error {
	return invalidParam("Missing value for required parameter '%s'. See the API docs for more information about request parameters.", name)
}

// registerExperiments registers the experiment RPCs.
func (h *Handler) registerExperiments(mux Mux) {
	h.rpc(mux, "POST", "/mlflow/experiments/create", h.createExperiment)
	h.rpc(mux, "GET", "/mlflow/experiments/get", h.getExperiment)
	h.rpc(mux, "GET", "/mlflow/experiments/get-by-name", h.getExperimentByName)
	h.rpc(mux, "POST", "/mlflow/experiments/search", h.searchExperiments)
	h.rpc(mux, "GET", "/mlflow/experiments/search", h.searchExperiments)
	h.rpc(mux, "POST", "/mlflow/experiments/update", h.updateExperiment)
	h.rpc(mux, "POST", "/mlflow/experiments/delete", h.deleteExperiment)
	h.rpc(mux, "POST", "/mlflow/experiments/restore", h.restoreExperiment)
	h.rpc(mux, "POST", "/mlflow/experiments/set-experiment-tag", h.setExperimentTag)
	h.rpc(mux, "POST", "/mlflow/experiments/delete-experiment-tag", h.deleteExperimentTag)
}

func (h *Handler) createExperiment(r *http.Request) (any, error) {
	var req struct {
		Name             *string  `json:"name"`
		ArtifactLocation string   `json:"artifact_location"`
		Tags             []kvJSON `json:"tags"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if req.Name == nil {
		return nil, missing("name")
	}
	name, err := h.experimentName(r, *req.Name)
	if err != nil {
		return nil, err
	}
	if name != *req.Name {
		// One made in this workspace before names were per workspace.
		if e, err := h.tracking.GetExperimentByName(r.Context(), *req.Name); err == nil && access.Visible(r.Context(), access.ResourceExperiment, e.ID) {
			return nil, errdefs.AlreadyExists("Experiment(name=%s) already exists.", *req.Name)
		}
	}
	id, err := h.tracking.CreateExperiment(r.Context(), name, req.ArtifactLocation, kvsFromJSON(req.Tags))
	if err != nil {
		return nil, err
	}
	return map[string]string{"experiment_id": id}, nil
}

type experimentIDReq struct {
	ExperimentID *string `json:"experiment_id"`
}

func (h *Handler) experimentID(r *http.Request) (string, error) {
	var req experimentIDReq
	if err := decode(r, &req); err != nil {
		return "", err
	}
	if req.ExperimentID == nil || *req.ExperimentID == "" {
		return "", missing("experiment_id")
	}
	return *req.ExperimentID, nil
}

func (h *Handler) getExperiment(r *http.Request) (any, error) {
	id, err := h.experimentID(r)
	if err != nil {
		return nil, err
	}
	e, err := h.tracking.GetExperiment(r.Context(), id)
	if err != nil {
		return nil, err
	}
	return map[string]any{"experiment": toExperimentJSON(e)}, nil
}

func (h *Handler) getExperimentByName(r *http.Request) (any, error) {
	var req struct {
		Name *string `json:"experiment_name"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if req.Name == nil {
		return nil, missing("experiment_name")
	}
	name, err := h.experimentName(r, *req.Name)
	if err != nil {
		return nil, err
	}
	e, err := h.tracking.GetExperimentByName(r.Context(), name)
	if errors.Is(err, errdefs.ErrNotFound) && name != *req.Name {
		// Made in this workspace before names were per workspace?
		e, err = h.tracking.GetExperimentByName(r.Context(), *req.Name)
	}
	if err != nil {
		return nil, err
	}
	if !access.Visible(r.Context(), access.ResourceExperiment, e.ID) {
		return nil, errdefs.NotFound("Could not find experiment with name '%s' in workspace '%s'", *req.Name, access.RequestWorkspace(r.Context()))
	}
	return map[string]any{"experiment": toExperimentJSON(e)}, nil
}

func (h *Handler) searchExperiments(r *http.Request) (any, error) {
	var req struct {
		MaxResults Int64    `json:"max_results"`
		PageToken  string   `json:"page_token"`
		Filter     string   `json:"filter"`
		OrderBy    []string `json:"order_by"`
		ViewType   string   `json:"view_type"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	vt, ok := tracking.ParseViewType(req.ViewType)
	if !ok {
		return nil, invalidParam("Invalid value '%s' for parameter 'view_type'", req.ViewType)
	}
	f, err := modelNameFilter(r.Context(), req.Filter) // names are per workspace, as models'
	if err != nil {
		return nil, err
	}
	exps, next, err := h.tracking.SearchExperiments(r.Context(), tracking.SearchExperimentsQuery{
		Filter: f, OrderBy: req.OrderBy, MaxResults: int(req.MaxResults), PageToken: req.PageToken, ViewType: vt,
	})
	if err != nil {
		return nil, err
	}
	exps = access.FilterVisible(r.Context(), access.ResourceExperiment, exps, func(e *tracking.Experiment) string { return e.ID })
	out := struct {
		Experiments   []experimentJSON `json:"experiments,omitempty"`
		NextPageToken string           `json:"next_page_token,omitempty"`
	}{NextPageToken: next}
	for _, e := range exps {
		out.Experiments = append(out.Experiments, toExperimentJSON(e))
	}
	return out, nil
}

func (h *Handler) updateExperiment(r *http.Request) (any, error) {
	var req struct {
		ExperimentID *string `json:"experiment_id"`
		NewName      *string `json:"new_name"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if req.ExperimentID == nil {
		return nil, missing("experiment_id")
	}
	if req.NewName == nil {
		return nil, nil // MLflow: nothing to update
	}
	name, err := h.experimentName(r, *req.NewName)
	if err != nil {
		return nil, err
	}
	return nil, h.tracking.RenameExperiment(r.Context(), *req.ExperimentID, name)
}

func (h *Handler) deleteExperiment(r *http.Request) (any, error) {
	id, err := h.experimentID(r)
	if err != nil {
		return nil, err
	}
	return nil, h.tracking.DeleteExperiment(r.Context(), id)
}

func (h *Handler) restoreExperiment(r *http.Request) (any, error) {
	id, err := h.experimentID(r)
	if err != nil {
		return nil, err
	}
	return nil, h.tracking.RestoreExperiment(r.Context(), id)
}

func (h *Handler) setExperimentTag(r *http.Request) (any, error) {
	var req struct {
		ExperimentID *string `json:"experiment_id"`
		Key          *string `json:"key"`
		Value        *string `json:"value"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	switch {
	case req.ExperimentID == nil:
		return nil, missing("experiment_id")
	case req.Key == nil:
		return nil, missing("key")
	case req.Value == nil:
		return nil, missing("value")
	}
	return nil, h.tracking.SetExperimentTag(r.Context(), *req.ExperimentID, *req.Key, *req.Value)
}

func (h *Handler) deleteExperimentTag(r *http.Request) (any, error) {
	var req struct {
		ExperimentID *string `json:"experiment_id"`
		Key          *string `json:"key"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	switch {
	case req.ExperimentID == nil:
		return nil, missing("experiment_id")
	case req.Key == nil:
		return nil, missing("key")
	}
	return nil, h.tracking.DeleteExperimentTag(r.Context(), *req.ExperimentID, *req.Key)
}

// experimentName is the name the request's workspace stores an experiment
// under (access.ExperimentName): experiment names are per workspace.
func (h *Handler) experimentName(r *http.Request, name string) (string, error) {
	return access.ExperimentName(r.Context(), name)
}
