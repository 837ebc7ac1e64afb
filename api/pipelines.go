package api

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/pipeline"
	"github.com/kiln-ml/kiln/pipeline/trigger"
)

// Pipelines stores pipelines and runs them (a *pipeline.Service
// implements it).
type Pipelines interface {
	Put(ctx context.Context, p *pipeline.Pipeline, actor string) (sp *pipeline.StoredPipeline, created, changed bool, err error)
	Get(ctx context.Context, name string) (*pipeline.StoredPipeline, error)
	List(ctx context.Context) ([]*pipeline.StoredPipeline, error)
	Delete(ctx context.Context, name string) error
	StartRun(ctx context.Context, req pipeline.RunRequest) (*pipeline.Run, bool, error)
	GetRun(ctx context.Context, id string) (*pipeline.Run, error)
	ListRuns(ctx context.Context, q pipeline.RunQuery) ([]*pipeline.Run, string, error)
	CancelRun(ctx context.Context, id, actor, reason string) (*pipeline.Run, error)
	Logs(ctx context.Context, runID, step string, attempt int, afterSeq int64, limit int) ([]pipeline.LogChunk, error)
}

// Triggers serves the schedules' and triggers' states and webhook
// triggers (a *trigger.Service implements it).
type Triggers interface {
	Webhook(ctx context.Context, pipelineName, triggerName string, body []byte, h http.Header) (*pipeline.Run, bool, error)
	States(ctx context.Context, pipelineName string) ([]trigger.State, error)
}

// Bounds of the pipeline routes.
const (
	// MaxRunLimit bounds a page of GET /pipeline-runs.
	MaxRunLimit = 1000
	// DefaultLogLimit and MaxLogLimit bound the chunks of one GET …/logs.
	DefaultLogLimit = 1000
	MaxLogLimit     = 10000
	// MaxLogFollow bounds one GET …/logs?follow=true; a client that wants
	// more reconnects from the last sequence number (the X-Kiln-Log-Seq
	// trailer).
	MaxLogFollow = 30 * time.Minute
	// MaxWebhookBytes bounds a webhook trigger's body.
	MaxWebhookBytes = 1 << 20
	maxRunIDLen     = 64
	maxReasonBytes  = 1024
)

// logPoll is how often a followed log looks for new chunks.
var logPoll = 250 * time.Millisecond

// Trailers of GET …/logs?follow=true: the attempt followed, the sequence
// number of its last chunk sent, and whether the attempt has ended
// ("true") or the stream stopped at its time bound ("false").
const (
	LogAttemptTrailer = "X-Kiln-Log-Attempt"
	LogSeqTrailer     = "X-Kiln-Log-Seq"
	LogDoneTrailer    = "X-Kiln-Log-Done"
)

// PipelineInfo is a stored pipeline with its newest run (GET
// /pipelines/{name}, an entry of GET /pipelines).
type PipelineInfo struct {
	*pipeline.StoredPipeline
	LastRun *pipeline.Run `json:"last_run,omitempty"`
}

// PipelineList is the answer of GET /pipelines.
type PipelineList struct {
	Pipelines []PipelineInfo `json:"pipelines"`
}

// ApplyPipelineResponse is the answer of PUT /pipelines/{name}.
type ApplyPipelineResponse struct {
	Created  bool                     `json:"created"`
	Changed  bool                     `json:"changed"`
	Pipeline *pipeline.StoredPipeline `json:"pipeline"`
}

// RunResponse is the answer of POST /pipelines/{name}/runs, POST
// /pipeline-runs/{id}/resume and of a webhook trigger: Created is false
// when the request's dedup key named an existing run.
type RunResponse struct {
	Created bool          `json:"created"`
	Run     *pipeline.Run `json:"run"`
}

// RunList is the answer of GET /pipeline-runs and GET
// /pipelines/{name}/runs, newest first.
type RunList struct {
	Runs          []*pipeline.Run `json:"runs"`
	NextPageToken string          `json:"next_page_token,omitempty"`
}

// CancelRunRequest is the optional body of POST /pipeline-runs/{id}/cancel.
type CancelRunRequest struct {
	Reason string `json:"reason,omitempty"`
}

// ResumeRunRequest is the optional body of POST /pipeline-runs/{id}/resume:
// parameters replace the resumed run's (default: the same), no_cache runs
// the steps to redo without the cache.
type ResumeRunRequest struct {
	Parameters map[string]string `json:"parameters,omitempty"`
	NoCache    bool              `json:"no_cache,omitempty"`
	DedupKey   string            `json:"dedup_key,omitempty"`
}

// StepLogs is the answer of GET /pipeline-runs/{id}/steps/{step}/logs
// (without follow): chunks in order, and the sequence number to ask after
// for more (the last chunk's, or the request's when there is none).
type StepLogs struct {
	Chunks    []pipeline.LogChunk `json:"chunks"`
	NextAfter int64               `json:"next_after"`
}

// TriggerStates is the answer of GET /pipelines/{name}/triggers.
type TriggerStates struct {
	States []trigger.State `json:"states"`
}

func (h *Handler) registerPipelines(mux Mux) {
	h.handle(mux, "GET", "/pipelines", h.listPipelines)
	h.handle(mux, "GET", "/pipelines/{name}", h.getPipeline)
	h.handle(mux, "PUT", "/pipelines/{name}", h.putPipeline)
	h.handle(mux, "DELETE", "/pipelines/{name}", h.deletePipeline)
	h.handle(mux, "POST", "/pipelines/{name}/runs", h.startPipelineRun)
	h.handle(mux, "GET", "/pipelines/{name}/runs", h.listPipelineRunsOf)
	h.handle(mux, "GET", "/pipelines/{name}/triggers", h.triggerStates)
	h.handle(mux, "POST", "/pipelines/{name}/triggers/{trigger}", h.webhookTrigger)
	h.handle(mux, "GET", "/pipeline-runs", h.listPipelineRuns)
	h.handle(mux, "GET", "/pipeline-runs/{id}", h.getPipelineRun)
	h.handle(mux, "POST", "/pipeline-runs/{id}/cancel", h.cancelPipelineRun)
	h.handle(mux, "POST", "/pipeline-runs/{id}/resume", h.resumePipelineRun)
	h.handle(mux, "GET", "/pipeline-runs/{id}/steps/{step}/logs", h.stepLogs)
}

// pipelines returns the pipeline service, or a NotImplemented error for a
// server that runs none (the routes are always registered).
func (h *Handler) pipelines() (Pipelines, error) {
	if h.d.Pipelines == nil {
		return nil, errdefs.NotImplemented("This server runs no pipelines")
	}
	return h.d.Pipelines, nil
}

func (h *Handler) triggers() (Triggers, error) {
	if h.d.Triggers == nil {
		return nil, errdefs.NotImplemented("This server runs no pipeline triggers")
	}
	return h.d.Triggers, nil
}

// checkPipelineName checks a pipeline, step or trigger name.
func checkPipelineName(what, name string) error {
	if name == "" {
		return errdefs.Invalid("Missing %s name", what)
	}
	if err := pipeline.ValidateName(name); err != nil {
		return errdefs.Invalid("Invalid %s name '%s': %s", what, clip(name), errdefs.Message(err))
	}
	return nil
}

func pipelineName(r *http.Request) (string, error) {
	name := r.PathValue("name")
	return name, checkPipelineName("pipeline", name)
}

// runIDParam reads the {id} path value: 1 to 64 letters, digits, '-' or
// '_' (a ULID).
func runIDParam(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if id == "" || len(id) > maxRunIDLen || strings.IndexFunc(id, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_')
	}) >= 0 {
		return "", errdefs.Invalid("Invalid run id '%s'", clip(id))
	}
	return id, nil
}

func (h *Handler) pipelineInfo(ctx context.Context, sp *pipeline.StoredPipeline) (PipelineInfo, error) {
	runs, _, err := h.d.Pipelines.ListRuns(ctx, pipeline.RunQuery{Pipeline: sp.Metadata.Name, Limit: 1})
	if err != nil {
		return PipelineInfo{}, err
	}
	pi := PipelineInfo{StoredPipeline: sp}
	if len(runs) > 0 {
		pi.LastRun = runs[0]
	}
	return pi, nil
}

func (h *Handler) listPipelines(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.pipelines(); err != nil {
		return err
	}
	ctx := r.Context()
	ps, err := h.d.Pipelines.List(ctx)
	if err != nil {
		return err
	}
	out := PipelineList{Pipelines: make([]PipelineInfo, 0, len(ps))}
	for _, sp := range ps {
		pi, err := h.pipelineInfo(ctx, sp)
		if err != nil {
			return err
		}
		out.Pipelines = append(out.Pipelines, pi)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *Handler) getPipeline(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.pipelines(); err != nil {
		return err
	}
	name, err := pipelineName(r)
	if err != nil {
		return err
	}
	sp, err := h.d.Pipelines.Get(r.Context(), name)
	if err != nil {
		return err
	}
	pi, err := h.pipelineInfo(r.Context(), sp)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pi)
	return nil
}

// putPipeline stores the Pipeline document of the body (YAML or JSON),
// idempotently: 201 when created.
func (h *Handler) putPipeline(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.pipelines(); err != nil {
		return err
	}
	name, err := pipelineName(r)
	if err != nil {
		return err
	}
	actor, err := gateActor(r, "")
	if err != nil {
		return err
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, pipeline.MaxSpecBytes))
	if err != nil {
		return err
	}
	p, err := pipeline.ParsePipeline(data, name)
	if err != nil {
		return withFieldDetails(err)
	}
	sp, created, changed, err := h.d.Pipelines.Put(r.Context(), p, actor)
	if err != nil {
		return withFieldDetails(err)
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, ApplyPipelineResponse{Created: created, Changed: changed, Pipeline: sp})
	return nil
}

func (h *Handler) deletePipeline(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.pipelines(); err != nil {
		return err
	}
	name, err := pipelineName(r)
	if err != nil {
		return err
	}
	if err := h.d.Pipelines.Delete(r.Context(), name); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

func writeRun(w http.ResponseWriter, run *pipeline.Run, created bool) {
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, RunResponse{Created: created, Run: run})
}

// startPipelineRun starts a run: the body is a RunRequest whose pipeline
// field may be left out (the URL names it); the actor defaults to the
// X-Kiln-Actor header and the cause to manual.
func (h *Handler) startPipelineRun(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.pipelines(); err != nil {
		return err
	}
	name, err := pipelineName(r)
	if err != nil {
		return err
	}
	var req pipeline.RunRequest
	if err := decodeJSON(w, r, DefaultMaxJSONBytes, &req, true); err != nil {
		return err
	}
	if req.Pipeline != "" && req.Pipeline != name {
		return errdefs.Invalid("The body names pipeline '%s', but the URL names '%s'", clip(req.Pipeline), name)
	}
	req.Pipeline = name
	if req.Actor, err = gateActor(r, req.Actor); err != nil {
		return err
	}
	if err := checkText("The dedup key", req.DedupKey, maxActorLen); err != nil {
		return err
	}
	if req.Cause == nil {
		req.Cause = &pipeline.Cause{Type: "manual"}
		if req.ResumeFrom != "" {
			req.Cause.Type = "resume"
		}
	}
	run, created, err := h.d.Pipelines.StartRun(r.Context(), req)
	if err != nil {
		return withFieldDetails(err)
	}
	writeRun(w, run, created)
	return nil
}

// runQuery reads state, page_token and limit.
func runQuery(r *http.Request, name string) (pipeline.RunQuery, error) {
	q := r.URL.Query()
	rq := pipeline.RunQuery{Pipeline: name, State: q.Get("state"), PageToken: q.Get("page_token")}
	switch rq.State {
	case "", "active", pipeline.StatePending, pipeline.StateQueued, pipeline.StateRunning, pipeline.StateSucceeded,
		pipeline.StateFailed, pipeline.StateSkipped, pipeline.StateCached, pipeline.StateCancelled, pipeline.StateUpstreamFailed:
	default:
		return rq, errdefs.Invalid("Invalid state '%s': want active, pending, running, succeeded, failed or cancelled", clip(rq.State))
	}
	if len(rq.PageToken) > 1024 {
		return rq, errdefs.Invalid("Invalid page_token")
	}
	limit, err := queryInt(r, "limit")
	if err != nil {
		return rq, err
	}
	if limit < 0 || limit > MaxRunLimit {
		return rq, errdefs.Invalid("'limit' must be between 0 and %d", MaxRunLimit)
	}
	rq.Limit = limit
	return rq, nil
}

func (h *Handler) writeRuns(w http.ResponseWriter, r *http.Request, q pipeline.RunQuery) error {
	runs, next, err := h.d.Pipelines.ListRuns(r.Context(), q)
	if err != nil {
		return err
	}
	if runs == nil {
		runs = []*pipeline.Run{}
	}
	writeJSON(w, http.StatusOK, RunList{Runs: runs, NextPageToken: next})
	return nil
}

func (h *Handler) listPipelineRunsOf(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.pipelines(); err != nil {
		return err
	}
	name, err := pipelineName(r)
	if err != nil {
		return err
	}
	q, err := runQuery(r, name)
	if err != nil {
		return err
	}
	return h.writeRuns(w, r, q)
}

func (h *Handler) listPipelineRuns(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.pipelines(); err != nil {
		return err
	}
	name := r.URL.Query().Get("pipeline")
	if name != "" {
		if err := checkPipelineName("pipeline", name); err != nil {
			return err
		}
	}
	q, err := runQuery(r, name)
	if err != nil {
		return err
	}
	return h.writeRuns(w, r, q)
}

func (h *Handler) getPipelineRun(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.pipelines(); err != nil {
		return err
	}
	id, err := runIDParam(r)
	if err != nil {
		return err
	}
	run, err := h.d.Pipelines.GetRun(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, run)
	return nil
}

func (h *Handler) cancelPipelineRun(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.pipelines(); err != nil {
		return err
	}
	id, err := runIDParam(r)
	if err != nil {
		return err
	}
	var req CancelRunRequest
	if err := decodeJSON(w, r, DefaultMaxJSONBytes, &req, true); err != nil {
		return err
	}
	if req.Reason == "" {
		req.Reason = r.URL.Query().Get("reason")
	}
	if err := checkText("The reason", req.Reason, maxReasonBytes); err != nil {
		return err
	}
	actor, err := gateActor(r, "")
	if err != nil {
		return err
	}
	run, err := h.d.Pipelines.CancelRun(r.Context(), id, actor, req.Reason)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, run)
	return nil
}

// resumePipelineRun starts a run of the same pipeline that reuses the
// succeeded and cached steps of a failed or cancelled one (StartRun with
// ResumeFrom).
func (h *Handler) resumePipelineRun(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.pipelines(); err != nil {
		return err
	}
	id, err := runIDParam(r)
	if err != nil {
		return err
	}
	var body ResumeRunRequest
	if err := decodeJSON(w, r, DefaultMaxJSONBytes, &body, true); err != nil {
		return err
	}
	if err := checkText("The dedup key", body.DedupKey, maxActorLen); err != nil {
		return err
	}
	actor, err := gateActor(r, "")
	if err != nil {
		return err
	}
	ctx := r.Context()
	prev, err := h.d.Pipelines.GetRun(ctx, id)
	if err != nil {
		return err
	}
	params := body.Parameters
	if params == nil {
		params = prev.Parameters
	}
	run, created, err := h.d.Pipelines.StartRun(ctx, pipeline.RunRequest{
		Pipeline:   prev.Pipeline,
		Parameters: params,
		NoCache:    body.NoCache,
		Actor:      actor,
		Cause:      &pipeline.Cause{Type: "resume", Event: map[string]string{"run_id": id}},
		DedupKey:   body.DedupKey,
		ResumeFrom: id,
	})
	if err != nil {
		return withFieldDetails(err)
	}
	writeRun(w, run, created)
	return nil
}

// logParams reads a logs request's attempt, after and limit.
func logParams(r *http.Request) (attempt int, after int64, limit int, err error) {
	if attempt, err = queryInt(r, "attempt"); err != nil {
		return
	}
	if attempt < 0 {
		err = errdefs.Invalid("'attempt' must not be negative")
		return
	}
	if s := r.URL.Query().Get("after"); s != "" {
		if after, err = strconv.ParseInt(s, 10, 64); err != nil || after < 0 {
			err = errdefs.Invalid("Invalid after '%s': want a sequence number (a non-negative integer)", clip(s))
			return
		}
	}
	if limit, err = queryInt(r, "limit"); err != nil {
		return
	}
	if limit < 0 || limit > MaxLogLimit {
		err = errdefs.Invalid("'limit' must be between 0 and %d", MaxLogLimit)
		return
	}
	if limit == 0 {
		limit = DefaultLogLimit
	}
	return
}

// stepLogs answers a step attempt's log: JSON chunks, or with
// follow=true a text/plain stream of the attempt's output until it ends.
func (h *Handler) stepLogs(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.pipelines(); err != nil {
		return err
	}
	id, err := runIDParam(r)
	if err != nil {
		return err
	}
	step := r.PathValue("step")
	if err := checkPipelineName("step", step); err != nil {
		return err
	}
	attempt, after, limit, err := logParams(r)
	if err != nil {
		return err
	}
	follow := false
	if s := r.URL.Query().Get("follow"); s != "" {
		if follow, err = strconv.ParseBool(s); err != nil {
			return errdefs.Invalid("Invalid follow '%s': want true or false", clip(s))
		}
	}
	if follow {
		bound := MaxLogFollow
		if s := r.URL.Query().Get("timeout"); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil || d <= 0 {
				return errdefs.Invalid("Invalid timeout '%s': want a positive duration (30s, 10m)", clip(s))
			}
			bound = min(bound, d)
		}
		return h.followLogs(w, r, id, step, attempt, after, bound)
	}
	chunks, err := h.d.Pipelines.Logs(r.Context(), id, step, attempt, after, limit)
	if err != nil {
		return err
	}
	if chunks == nil {
		chunks = []pipeline.LogChunk{}
	}
	next := after
	if len(chunks) > 0 {
		next = chunks[len(chunks)-1].Seq
	}
	writeJSON(w, http.StatusOK, StepLogs{Chunks: chunks, NextAfter: next})
	return nil
}

// findStep returns the step of a run, or a NotFound error.
func findStep(run *pipeline.Run, step string) (*pipeline.StepRun, error) {
	for _, sr := range run.Steps {
		if sr.Step == step {
			return sr, nil
		}
	}
	return nil, errdefs.NotFound("Run '%s' of pipeline '%s' has no step '%s'", run.ID, run.Pipeline, step)
}

// followLogs streams one attempt of a step (the given one, or the latest
// once the step has started) as text, a flush per chunk, until the
// attempt ends (the step reached a terminal state, a retry started, or
// the run ended) or bound passes. Trailers say which attempt was followed,
// its last sequence number sent and whether it ended.
func (h *Handler) followLogs(w http.ResponseWriter, r *http.Request, id, step string, attempt int, after int64, bound time.Duration) error {
	ctx := r.Context()
	run, err := h.d.Pipelines.GetRun(ctx, id)
	if err != nil {
		return err
	}
	sr, err := findStep(run, step)
	if err != nil {
		return err
	}
	if attempt > sr.Attempt && sr.Attempt > 0 {
		return errdefs.NotFound("Step '%s' of run '%s' has no attempt %d (it is at attempt %d)", step, id, attempt, sr.Attempt)
	}
	rc := http.NewResponseController(w)
	hdr := w.Header()
	hdr.Set("Content-Type", "text/plain; charset=utf-8")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("Trailer", LogAttemptTrailer+", "+LogSeqTrailer+", "+LogDoneTrailer)
	w.WriteHeader(http.StatusOK)
	rc.Flush()

	cur := attempt
	done := false
	defer func() {
		hdr.Set(LogAttemptTrailer, strconv.Itoa(cur))
		hdr.Set(LogSeqTrailer, strconv.FormatInt(after, 10))
		hdr.Set(LogDoneTrailer, strconv.FormatBool(done))
	}()
	// drain sends every chunk of the attempt after the last one sent.
	drain := func() error {
		for cur > 0 {
			chunks, err := h.d.Pipelines.Logs(ctx, id, step, cur, after, MaxLogLimit)
			if err != nil {
				return err
			}
			for _, c := range chunks {
				if _, err := io.WriteString(w, c.Data); err != nil {
					return err
				}
				after = c.Seq
			}
			if len(chunks) > 0 {
				if err := rc.Flush(); err != nil {
					return err
				}
			}
			if len(chunks) < MaxLogLimit {
				return nil
			}
		}
		return nil
	}
	timer := time.NewTimer(bound)
	defer timer.Stop()
	tick := time.NewTicker(logPoll)
	defer tick.Stop()
	for {
		if cur == 0 && sr.Attempt > 0 {
			cur = sr.Attempt
		}
		ended := pipeline.Terminal(run.State) || pipeline.Terminal(sr.State) || (cur > 0 && sr.Attempt > cur)
		if err := drain(); err != nil {
			return h.streamFailed(r, err)
		}
		if ended {
			done = true
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
			return nil
		case <-tick.C:
		}
		if run, err = h.d.Pipelines.GetRun(ctx, id); err != nil {
			return h.streamFailed(r, err)
		}
		if sr, err = findStep(run, step); err != nil {
			return h.streamFailed(r, err)
		}
	}
}

// streamFailed logs the failure of a stream whose status is already sent
// (the missing or false done trailer tells the client).
func (h *Handler) streamFailed(r *http.Request, err error) error {
	if r.Context().Err() == nil {
		h.log.Warn("pipeline log stream failed", "path", r.URL.Path, "err", err)
	}
	return nil
}

func (h *Handler) triggerStates(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.triggers(); err != nil {
		return err
	}
	name, err := pipelineName(r)
	if err != nil {
		return err
	}
	states, err := h.d.Triggers.States(r.Context(), name)
	if err != nil {
		return err
	}
	if states == nil {
		states = []trigger.State{}
	}
	writeJSON(w, http.StatusOK, TriggerStates{States: states})
	return nil
}

// webhookTrigger fires a webhook trigger with the request's body and
// headers (the trigger service checks the signature).
func (h *Handler) webhookTrigger(w http.ResponseWriter, r *http.Request) error {
	if _, err := h.triggers(); err != nil {
		return err
	}
	name, err := pipelineName(r)
	if err != nil {
		return err
	}
	tr := r.PathValue("trigger")
	if err := checkPipelineName("trigger", tr); err != nil {
		return err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxWebhookBytes))
	if err != nil {
		return err
	}
	run, created, err := h.d.Triggers.Webhook(r.Context(), name, tr, body, r.Header)
	if err != nil {
		return err
	}
	writeRun(w, run, created)
	return nil
}
