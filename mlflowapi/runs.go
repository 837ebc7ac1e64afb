package mlflowapi

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/kiln-ml/kiln/tracking"
)

// registerRuns registers the run, metric, param, tag and input RPCs.
func (h *Handler) registerRuns(mux Mux) {
	h.rpc(mux, "POST", "/mlflow/runs/create", h.createRun)
	h.rpc(mux, "POST", "/mlflow/runs/update", h.updateRun)
	h.rpc(mux, "GET", "/mlflow/runs/get", h.getRun)
	h.rpc(mux, "POST", "/mlflow/runs/delete", h.deleteRun)
	h.rpc(mux, "POST", "/mlflow/runs/restore", h.restoreRun)
	h.rpc(mux, "POST", "/mlflow/runs/search", h.searchRuns)
	h.rpc(mux, "POST", "/mlflow/runs/log-metric", h.logMetric)
	h.rpc(mux, "POST", "/mlflow/runs/log-parameter", h.logParam)
	h.rpc(mux, "POST", "/mlflow/runs/log-batch", h.logBatch)
	h.rpc(mux, "POST", "/mlflow/runs/set-tag", h.setTag)
	h.rpc(mux, "POST", "/mlflow/runs/delete-tag", h.deleteTag)
	h.rpc(mux, "POST", "/mlflow/runs/log-inputs", h.logInputs)
	h.rpc(mux, "POST", "/mlflow/runs/outputs", h.logOutputs)
	h.rpc(mux, "POST", "/mlflow/runs/log-model", h.logModelLegacy)
	h.rpc(mux, "GET", "/mlflow/metrics/get-history", h.getMetricHistory)
	h.rpc(mux, "GET", "/mlflow/metrics/get-history-bulk-interval", h.getMetricHistoryBulkInterval)
	h.rpc(mux, "GET", "/mlflow/metrics/get-history-bulk", h.getMetricHistoryBulk)
}

// runIDReq accepts run_id or the legacy run_uuid.
type runIDReq struct {
	RunID   string `json:"run_id"`
	RunUUID string `json:"run_uuid"`
}

func (q runIDReq) id() (string, error) {
	if q.RunID != "" {
		return q.RunID, nil
	}
	if q.RunUUID != "" {
		return q.RunUUID, nil
	}
	return "", missing("run_id")
}

func (h *Handler) createRun(r *http.Request) (any, error) {
	var req struct {
		ExperimentID string   `json:"experiment_id"`
		UserID       string   `json:"user_id"`
		RunName      string   `json:"run_name"`
		StartTime    Int64    `json:"start_time"`
		Tags         []kvJSON `json:"tags"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if req.ExperimentID == "" {
		// The Default experiment "0" is the default workspace's.
		if err := checkExperiments(r.Context(), []string{"0"}); err != nil {
			return nil, err
		}
	}
	run, err := h.tracking.CreateRun(r.Context(), tracking.CreateRunInput{
		ExperimentID: req.ExperimentID, UserID: req.UserID, RunName: req.RunName,
		StartTime: int64(req.StartTime), Tags: kvsFromJSON(req.Tags),
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{"run": toRunJSON(run)}, nil
}

func (h *Handler) updateRun(r *http.Request) (any, error) {
	var req struct {
		runIDReq
		Status  string `json:"status"`
		EndTime *Int64 `json:"end_time"`
		RunName string `json:"run_name"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	id, err := req.id()
	if err != nil {
		return nil, err
	}
	in := tracking.UpdateRunInput{RunID: id, Status: req.Status, RunName: req.RunName}
	if req.EndTime != nil {
		v := int64(*req.EndTime)
		in.EndTime = &v
	}
	info, err := h.tracking.UpdateRun(r.Context(), in)
	if err != nil {
		return nil, err
	}
	return map[string]any{"run_info": toRunInfoJSON(info)}, nil
}

func (h *Handler) runID(r *http.Request) (string, error) {
	var req runIDReq
	if err := decode(r, &req); err != nil {
		return "", err
	}
	return req.id()
}

func (h *Handler) getRun(r *http.Request) (any, error) {
	id, err := h.runID(r)
	if err != nil {
		return nil, err
	}
	run, err := h.tracking.GetRun(r.Context(), id)
	if err != nil {
		return nil, err
	}
	return map[string]any{"run": toRunJSON(run)}, nil
}

func (h *Handler) deleteRun(r *http.Request) (any, error) {
	id, err := h.runID(r)
	if err != nil {
		return nil, err
	}
	return nil, h.tracking.DeleteRun(r.Context(), id)
}

func (h *Handler) restoreRun(r *http.Request) (any, error) {
	id, err := h.runID(r)
	if err != nil {
		return nil, err
	}
	return nil, h.tracking.RestoreRun(r.Context(), id)
}

func (h *Handler) searchRuns(r *http.Request) (any, error) {
	var req struct {
		ExperimentIDs []string `json:"experiment_ids"`
		Filter        string   `json:"filter"`
		RunViewType   string   `json:"run_view_type"`
		MaxResults    Int64    `json:"max_results"`
		OrderBy       []string `json:"order_by"`
		PageToken     string   `json:"page_token"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	vt, ok := tracking.ParseViewType(req.RunViewType)
	if !ok {
		return nil, invalidParam("Invalid value '%s' for parameter 'run_view_type'", req.RunViewType)
	}
	if err := checkExperiments(r.Context(), req.ExperimentIDs); err != nil {
		return nil, err
	}
	runs, next, err := h.tracking.SearchRuns(r.Context(), tracking.SearchRunsQuery{
		ExperimentIDs: req.ExperimentIDs, Filter: req.Filter, ViewType: vt, MaxResults: int(req.MaxResults),
		OrderBy: req.OrderBy, PageToken: req.PageToken,
	})
	if err != nil {
		return nil, err
	}
	out := struct {
		Runs          []runJSON `json:"runs,omitempty"`
		NextPageToken string    `json:"next_page_token,omitempty"`
	}{NextPageToken: next}
	for _, run := range runs {
		out.Runs = append(out.Runs, toRunJSON(run))
	}
	return out, nil
}

type metricReq struct {
	Key           *string  `json:"key"`
	Value         *Float64 `json:"value"`
	Timestamp     *Int64   `json:"timestamp"`
	Step          Int64    `json:"step"`
	ModelID       string   `json:"model_id"`
	DatasetName   string   `json:"dataset_name"`
	DatasetDigest string   `json:"dataset_digest"`
}

func (m metricReq) metric(prefix string) (tracking.Metric, error) {
	switch {
	case m.Key == nil:
		return tracking.Metric{}, missing(prefix + "key")
	case m.Value == nil:
		return tracking.Metric{}, missing(prefix + "value")
	}
	ts := time.Now().UnixMilli()
	if m.Timestamp != nil {
		ts = int64(*m.Timestamp)
	} else if prefix == "" {
		return tracking.Metric{}, missing("timestamp")
	}
	return tracking.Metric{Key: *m.Key, Value: float64(*m.Value), Timestamp: ts, Step: int64(m.Step),
		ModelID: m.ModelID, DatasetName: m.DatasetName, DatasetDigest: m.DatasetDigest}, nil
}

func (h *Handler) logMetric(r *http.Request) (any, error) {
	var req struct {
		runIDReq
		metricReq
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	id, err := req.id()
	if err != nil {
		return nil, err
	}
	m, err := req.metric("")
	if err != nil {
		return nil, err
	}
	return nil, h.tracking.LogBatch(r.Context(), id, []tracking.Metric{m}, nil, nil)
}

type kvReq struct {
	Key   *string `json:"key"`
	Value *string `json:"value"`
}

func (h *Handler) logParam(r *http.Request) (any, error) {
	var req struct {
		runIDReq
		kvReq
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	id, err := req.id()
	if err != nil {
		return nil, err
	}
	if req.Key == nil {
		return nil, missing("key")
	}
	if req.Value == nil {
		return nil, missing("value")
	}
	return nil, h.tracking.LogBatch(r.Context(), id, nil, []tracking.KV{{Key: *req.Key, Value: *req.Value}}, nil)
}

func (h *Handler) setTag(r *http.Request) (any, error) {
	var req struct {
		runIDReq
		kvReq
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	id, err := req.id()
	if err != nil {
		return nil, err
	}
	if req.Key == nil {
		return nil, missing("key")
	}
	if req.Value == nil {
		return nil, missing("value")
	}
	return nil, h.tracking.LogBatch(r.Context(), id, nil, nil, []tracking.KV{{Key: *req.Key, Value: *req.Value}})
}

func (h *Handler) deleteTag(r *http.Request) (any, error) {
	var req struct {
		runIDReq
		Key *string `json:"key"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	id, err := req.id()
	if err != nil {
		return nil, err
	}
	if req.Key == nil {
		return nil, missing("key")
	}
	return nil, h.tracking.DeleteTag(r.Context(), id, *req.Key)
}

type logBatchReq struct {
	RunID   string      `json:"run_id"`
	Metrics []metricReq `json:"metrics"`
	Params  []kvReq     `json:"params"`
	Tags    []kvReq     `json:"tags"`
}

func (h *Handler) logBatch(r *http.Request) (any, error) {
	var req logBatchReq
	if isJSON(r) {
		// The hot path of training scripts: parse the usual shape without
		// reflection, and fall back to the general decoder (and its error
		// messages) for anything else.
		body, err := readBody(r)
		if err != nil {
			return nil, err
		}
		if fast, ok := parseLogBatch(body); ok {
			req = fast
		} else if err := decodeJSON(body, &req); err != nil {
			return nil, err
		}
	} else if err := decode(r, &req); err != nil {
		return nil, err
	}
	if req.RunID == "" {
		return nil, missing("run_id")
	}
	metrics := make([]tracking.Metric, len(req.Metrics))
	for i, m := range req.Metrics {
		var err error
		if metrics[i], err = m.metric("metrics."); err != nil {
			return nil, err
		}
	}
	kvs := func(in []kvReq, what string) ([]tracking.KV, error) {
		out := make([]tracking.KV, len(in))
		for i, kv := range in {
			if kv.Key == nil {
				return nil, missing(what + ".key")
			}
			if kv.Value == nil {
				return nil, missing(what + ".value")
			}
			out[i] = tracking.KV{Key: *kv.Key, Value: *kv.Value}
		}
		return out, nil
	}
	params, err := kvs(req.Params, "params")
	if err != nil {
		return nil, err
	}
	tags, err := kvs(req.Tags, "tags")
	if err != nil {
		return nil, err
	}
	return nil, h.tracking.LogBatch(r.Context(), req.RunID, metrics, params, tags)
}

func (h *Handler) logInputs(r *http.Request) (any, error) {
	var req struct {
		RunID    string             `json:"run_id"`
		Datasets []datasetInputJSON `json:"datasets"`
		Models   []modelInputJSON   `json:"models"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if req.RunID == "" {
		return nil, missing("run_id")
	}
	ds := make([]tracking.DatasetInput, len(req.Datasets))
	for i, d := range req.Datasets {
		ds[i] = tracking.DatasetInput{Tags: kvsFromJSON(d.Tags), Dataset: tracking.Dataset{
			Name: d.Dataset.Name, Digest: d.Dataset.Digest, SourceType: d.Dataset.SourceType, Source: d.Dataset.Source,
			Schema: d.Dataset.Schema, Profile: d.Dataset.Profile,
		}}
	}
	models := make([]string, len(req.Models))
	for i, m := range req.Models {
		models[i] = m.ModelID
	}
	return nil, h.tracking.LogInputs(r.Context(), req.RunID, ds, models)
}

func (h *Handler) logOutputs(r *http.Request) (any, error) {
	var req struct {
		RunID  string            `json:"run_id"`
		Models []modelOutputJSON `json:"models"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if req.RunID == "" {
		return nil, missing("run_id")
	}
	outs := make([]tracking.ModelOutput, len(req.Models))
	for i, m := range req.Models {
		outs[i] = tracking.ModelOutput{ModelID: m.ModelID, Step: int64(m.Step)}
	}
	return nil, h.tracking.LogOutputs(r.Context(), req.RunID, outs)
}

// logModelLegacy appends the MLmodel JSON to the run's
// mlflow.log-model.history tag, as MLflow 2.x clients expect.
func (h *Handler) logModelLegacy(r *http.Request) (any, error) {
	var req struct {
		runIDReq
		ModelJSON string `json:"model_json"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	id, err := req.id()
	if err != nil {
		return nil, err
	}
	var model map[string]any
	if err := json.Unmarshal([]byte(req.ModelJSON), &model); err != nil {
		return nil, invalidParam("Malformed model info. 'model_json' is not valid JSON: %v", err)
	}
	run, err := h.tracking.GetRun(r.Context(), id)
	if err != nil {
		return nil, err
	}
	var history []any
	for _, t := range run.Tags {
		if t.Key == "mlflow.log-model.history" {
			json.Unmarshal([]byte(t.Value), &history)
		}
	}
	history = append(history, model)
	b, _ := json.Marshal(history)
	return nil, h.tracking.LogBatch(r.Context(), id, nil, nil, []tracking.KV{{Key: "mlflow.log-model.history", Value: string(b)}})
}

func (h *Handler) getMetricHistory(r *http.Request) (any, error) {
	var req struct {
		runIDReq
		MetricKey  *string `json:"metric_key"`
		PageToken  string  `json:"page_token"`
		MaxResults Int64   `json:"max_results"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	id, err := req.id()
	if err != nil {
		return nil, err
	}
	if req.MetricKey == nil {
		return nil, missing("metric_key")
	}
	ms, next, err := h.tracking.GetMetricHistory(r.Context(), id, *req.MetricKey, req.PageToken, int(req.MaxResults))
	if err != nil {
		return nil, err
	}
	for i := range ms {
		ms[i].RunID = ""
	}
	return struct {
		Metrics       []metricJSON `json:"metrics,omitempty"`
		NextPageToken string       `json:"next_page_token,omitempty"`
	}{metricsJSON(ms), next}, nil
}

func (h *Handler) getMetricHistoryBulkInterval(r *http.Request) (any, error) {
	var req struct {
		RunIDs     []string `json:"run_ids"`
		MetricKey  *string  `json:"metric_key"`
		StartStep  *Int64   `json:"start_step"`
		EndStep    *Int64   `json:"end_step"`
		MaxResults *Int64   `json:"max_results"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if len(req.RunIDs) == 0 {
		return nil, missing("run_ids")
	}
	if req.MetricKey == nil {
		return nil, missing("metric_key")
	}
	if err := h.checkRuns(r.Context(), req.RunIDs); err != nil {
		return nil, err
	}
	maxResults := 0 // the store's default
	if req.MaxResults != nil {
		if *req.MaxResults < 1 || *req.MaxResults > tracking.MaxBulkIntervalResults {
			return nil, invalidParam("max_results must be between 1 and %d.", tracking.MaxBulkIntervalResults)
		}
		maxResults = int(*req.MaxResults)
	}
	var start, end *int64
	if req.StartStep != nil {
		v := int64(*req.StartStep)
		start = &v
	}
	if req.EndStep != nil {
		v := int64(*req.EndStep)
		end = &v
	}
	ms, err := h.tracking.GetMetricHistoryBulkInterval(r.Context(), req.RunIDs, *req.MetricKey, start, end, maxResults)
	if err != nil {
		return nil, err
	}
	return struct {
		Metrics []metricJSON `json:"metrics,omitempty"`
	}{metricsJSON(ms)}, nil
}

// getMetricHistoryBulk is the UI's older endpoint: full histories (up to
// 2500 values per run) of one metric for up to 100 runs.
func (h *Handler) getMetricHistoryBulk(r *http.Request) (any, error) {
	var req struct {
		RunIDs     []string `json:"run_id"`
		MetricKey  *string  `json:"metric_key"`
		MaxResults Int64    `json:"max_results"`
	}
	if err := decode(r, &req); err != nil {
		return nil, err
	}
	if req.MetricKey == nil {
		return nil, missing("metric_key")
	}
	if len(req.RunIDs) == 0 {
		return nil, missing("run_id")
	}
	if len(req.RunIDs) > 100 {
		return nil, invalidParam("GetMetricHistoryBulk request cannot specify more than 100 run_ids. Received %d run_ids.", len(req.RunIDs))
	}
	limit := int(req.MaxResults)
	if limit <= 0 || limit > 2500 {
		limit = 2500
	}
	if err := h.checkRuns(r.Context(), req.RunIDs); err != nil {
		return nil, err
	}
	var all []tracking.Metric
	for _, id := range req.RunIDs {
		ms, _, err := h.tracking.GetMetricHistory(r.Context(), id, *req.MetricKey, "", limit)
		if err != nil {
			return nil, err
		}
		all = append(all, ms...)
	}
	return struct {
		Metrics []metricJSON `json:"metrics,omitempty"`
	}{metricsJSON(all)}, nil
}
