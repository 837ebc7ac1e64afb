package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/kiln-ml/kiln/access"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/model"
	"github.com/kiln-ml/kiln/score"
)

// ScoreJobs is what the score-job routes need of the job service
// (*score.Jobs implements it).
type ScoreJobs interface {
	Submit(ctx context.Context, req score.JobRequest, actor string) (*score.Job, error)
	Get(ctx context.Context, id string) (*score.Job, error)
	List(ctx context.Context, q score.JobQuery) ([]*score.Job, string, error)
}

// ScoreJobList is a page of score jobs, newest first.
type ScoreJobList struct {
	Jobs          []*score.Job `json:"jobs"`
	NextPageToken string       `json:"next_page_token,omitempty"`
}

// maxScoreJobBody bounds a score-job request.
const maxScoreJobBody = 1 << 20

func (h *Handler) registerScoreJobs(mux Mux) {
	h.handle(mux, "POST", "/score-jobs", h.submitScoreJob)
	h.handle(mux, "GET", "/score-jobs", h.listScoreJobs)
	h.handle(mux, "GET", "/score-jobs/{id}", h.getScoreJob)
}

func (h *Handler) scoreJobs() (ScoreJobs, error) {
	if h.d.ScoreJobs == nil {
		return nil, errdefs.NotImplemented("This server does not run score jobs")
	}
	return h.d.ScoreJobs, nil
}

// decodeScoreJobRequest reads a POST /score-jobs body strictly (unknown
// fields, trailing data and wrong types are errors) and validates it.
func decodeScoreJobRequest(body []byte) (score.JobRequest, error) {
	var req score.JobRequest
	if len(bytes.TrimSpace(body)) == 0 {
		return req, errdefs.Invalid(`The request needs a JSON body: {"model": "models:/NAME/VERSION", "input": "DATASET@VERSION", "output": "preds/out.parquet"}`)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return score.JobRequest{}, errdefs.Invalid("Invalid JSON body: %s", clip(err.Error()))
	}
	if dec.More() {
		return score.JobRequest{}, errdefs.Invalid("Invalid JSON body: data after the JSON value")
	}
	if err := req.Validate(); err != nil {
		return score.JobRequest{}, err
	}
	return req, nil
}

func (h *Handler) submitScoreJob(w http.ResponseWriter, r *http.Request) error {
	jobs, err := h.scoreJobs()
	if err != nil {
		return err
	}
	who, err := actor(r)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxScoreJobBody))
	if err != nil {
		return err
	}
	req, err := decodeScoreJobRequest(body)
	if err != nil {
		return err
	}
	if req.Model, err = storedModelURI(r.Context(), req.Model); err != nil {
		return err
	}
	job, err := jobs.Submit(r.Context(), req, who)
	if err != nil {
		return err
	}
	w.Header().Set("Location", Prefix+"/score-jobs/"+job.ID)
	writeShownJSON(w, http.StatusCreated, job)
	return nil
}

func (h *Handler) getScoreJob(w http.ResponseWriter, r *http.Request) error {
	jobs, err := h.scoreJobs()
	if err != nil {
		return err
	}
	job, err := jobs.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeShownJSON(w, http.StatusOK, job)
	return nil
}

func (h *Handler) listScoreJobs(w http.ResponseWriter, r *http.Request) error {
	jobs, err := h.scoreJobs()
	if err != nil {
		return err
	}
	n, err := queryInt(r, "max_results")
	if err != nil {
		return err
	}
	q := r.URL.Query()
	list, next, err := jobs.List(r.Context(), score.JobQuery{State: score.JobState(q.Get("state")), MaxResults: n, PageToken: q.Get("page_token")})
	if err != nil {
		return err
	}
	writeShownJSON(w, http.StatusOK, ScoreJobList{Jobs: list, NextPageToken: next})
	return nil
}

// storedModelURI rewrites a models:/NAME… URI to the model's stored name
// in the request's workspace (access.StoredName): a score job in prod
// scores prod's churn. Other URIs are returned as they are.
func storedModelURI(ctx context.Context, raw string) (string, error) {
	u, err := model.ParseURI(raw)
	if err != nil || u.Kind != model.URIVersion && u.Kind != model.URIAlias && u.Kind != model.URIStage {
		return raw, nil // the job refuses a bad URI
	}
	stored, err := access.StoredName(ctx, access.ResourceModel, u.Name)
	if err != nil || stored == u.Name {
		return raw, err
	}
	scheme, rest, ok := strings.Cut(raw, ":")
	trimmed := strings.TrimLeft(rest, "/")
	if !ok || !strings.HasPrefix(trimmed, u.Name) {
		return raw, nil
	}
	return scheme + ":" + rest[:len(rest)-len(trimmed)] + stored + trimmed[len(u.Name):], nil
}
