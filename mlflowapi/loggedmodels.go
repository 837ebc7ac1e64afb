package mlflowapi

import (
	"net/http"

	"github.com/kiln-ml/kiln/access"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/tracking"
)

// registerLoggedModels registers the MLflow 3 logged-model RPCs.
func (h *Handler) registerLoggedModels(mux Mux) {
	h.rpc(mux, "POST", "/mlflow/logged-models", h.createLoggedModel)
	h.rpc(mux, "POST", "/mlflow/logged-models/search", h.searchLoggedModels)
	h.rpc(mux, "GET", "/mlflow/logged-models/{model_id}", h.getLoggedModel)
	h.rpc(mux, "PATCH", "/mlflow/logged-models/{model_id}", h.finalizeLoggedModel)
	h.rpc(mux, "DELETE", "/mlflow/logged-models/{model_id}", h.deleteLoggedModel)
	h.rpc(mux, "PATCH", "/mlflow/logged-models/{model_id}/tags", h.setLoggedModelTags)
	h.rpc(mux, "DELETE", "/mlflow/logged-models/{model_id}/tags/{tag_key}", h.deleteLoggedModelTag)
	h.rpc(mux, "POST", "/mlflow/logged-models/{model_id}/params", h.logLoggedModelParams)
}

func (h *Handler) createLoggedModel(r *http.Request) (any, error) {
	var req struct {
		ExperimentID string   `json:"experiment_id"`
		Name         string   `json:"name"`
		ModelType    string   `json:"model_type"`
		SourceRunID  string   `json:"source_run_id"`
		Params       []kvJSON `json:"params"`
		Tags         []kvJSON `json:"tags"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if req.ExperimentID == "" {
		return nil, missing("experiment_id")
	}
	m, err := h.tracking.CreateLoggedModel(r.Context(), tracking.CreateLoggedModelInput{
		ExperimentID: req.ExperimentID, Name: req.Name, ModelType: req.ModelType, SourceRunID: req.SourceRunID,
		Params: kvsFromJSON(req.Params), Tags: kvsFromJSON(req.Tags),
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"model": toLoggedModelJSON(m)}, nil
}

func (h *Handler) getLoggedModel(r *http.Request) (any, error) {
	m, err := h.tracking.GetLoggedModel(r.Context(), r.PathValue("model_id"))
	if err != nil {
		return nil, err
	}
	if !access.Visible(r.Context(), access.ResourceExperiment, m.ExperimentID) {
		return nil, errdefs.NotFound("Logged model '%s' not found in workspace '%s'", m.ID, access.RequestWorkspace(r.Context()))
	}
	return map[string]any{"model": toLoggedModelJSON(m)}, nil
}

func (h *Handler) finalizeLoggedModel(r *http.Request) (any, error) {
	if err := h.checkLoggedModel(r.Context(), r.PathValue("model_id")); err != nil {
		return nil, err
	}
	var req struct {
		Status string `json:"status"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if req.Status == "" {
		return nil, missing("status")
	}
	m, err := h.tracking.FinalizeLoggedModel(r.Context(), r.PathValue("model_id"), req.Status)
	if err != nil {
		return nil, err
	}
	return map[string]any{"model": toLoggedModelJSON(m)}, nil
}

func (h *Handler) deleteLoggedModel(r *http.Request) (any, error) {
	if err := h.checkLoggedModel(r.Context(), r.PathValue("model_id")); err != nil {
		return nil, err
	}
	return nil, h.tracking.DeleteLoggedModel(r.Context(), r.PathValue("model_id"))
}

func (h *Handler) setLoggedModelTags(r *http.Request) (any, error) {
	if err := h.checkLoggedModel(r.Context(), r.PathValue("model_id")); err != nil {
		return nil, err
	}
	var req struct {
		Tags []kvJSON `json:"tags"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	id := r.PathValue("model_id")
	if err := h.tracking.SetLoggedModelTags(r.Context(), id, kvsFromJSON(req.Tags)); err != nil {
		return nil, err
	}
	m, err := h.tracking.GetLoggedModel(r.Context(), id)
	if err != nil {
		return nil, err
	}
	return map[string]any{"model": toLoggedModelJSON(m)}, nil
}

func (h *Handler) deleteLoggedModelTag(r *http.Request) (any, error) {
	if err := h.checkLoggedModel(r.Context(), r.PathValue("model_id")); err != nil {
		return nil, err
	}
	return nil, h.tracking.DeleteLoggedModelTag(r.Context(), r.PathValue("model_id"), r.PathValue("tag_key"))
}

func (h *Handler) logLoggedModelParams(r *http.Request) (any, error) {
	if err := h.checkLoggedModel(r.Context(), r.PathValue("model_id")); err != nil {
		return nil, err
	}
	var req struct {
		Params []kvJSON `json:"params"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	return nil, h.tracking.LogLoggedModelParams(r.Context(), r.PathValue("model_id"), kvsFromJSON(req.Params))
}

func (h *Handler) searchLoggedModels(r *http.Request) (any, error) {
	var req struct {
		ExperimentIDs []string `json:"experiment_ids"`
		Filter        string   `json:"filter"`
		MaxResults    Int64    `json:"max_results"`
		PageToken     string   `json:"page_token"`
		OrderBy       []struct {
			FieldName string `json:"field_name"`
			Ascending *bool  `json:"ascending"`
		} `json:"order_by"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if err := checkExperiments(r.Context(), req.ExperimentIDs); err != nil {
		return nil, err
	}
	q := tracking.SearchLoggedModelsQuery{ExperimentIDs: req.ExperimentIDs, Filter: req.Filter,
		MaxResults: int(req.MaxResults), PageToken: req.PageToken}
	for _, o := range req.OrderBy {
		q.OrderBy = append(q.OrderBy, tracking.LoggedModelOrder{FieldName: o.FieldName, Ascending: o.Ascending == nil || *o.Ascending})
	}
	models, next, err := h.tracking.SearchLoggedModels(r.Context(), q)
	if err != nil {
		return nil, err
	}
	out := struct {
		Models        []loggedModelJSON `json:"models,omitempty"`
		NextPageToken string            `json:"next_page_token,omitempty"`
	}{NextPageToken: next}
	for _, m := range models {
		out.Models = append(out.Models, toLoggedModelJSON(m))
	}
	return out, nil
}
