package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/pipeline"
	"github.com/kiln-ml/kiln/pipeline/trigger"
)

// Collections of the pipeline API.
const (
	PipelinesCollection    = "pipelines"
	PipelineRunsCollection = "pipeline-runs"
)

// ListPipelines returns the stored pipelines, each with its newest run.
func (c *Client) ListPipelines(ctx context.Context) ([]api.PipelineInfo, error) {
	var out api.PipelineList
	return out.Pipelines, c.callAs(ctx, "GET", c.endpoint(nil, PipelinesCollection), "", nil, &out)
}

// GetPipeline returns a stored pipeline with its newest run.
func (c *Client) GetPipeline(ctx context.Context, name string) (*api.PipelineInfo, error) {
	var out api.PipelineInfo
	if err := c.callAs(ctx, "GET", c.endpoint(nil, PipelinesCollection, name), "", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ApplyPipeline creates or replaces a pipeline (idempotently: applying
// the stored document again changes nothing). An invalid document's
// error carries its field errors, as ApplyEndpoint's does.
func (c *Client) ApplyPipeline(ctx context.Context, p *pipeline.Pipeline, actor string) (*api.ApplyPipelineResponse, error) {
	var out api.ApplyPipelineResponse
	return &out, c.callAs(ctx, "PUT", c.endpoint(nil, PipelinesCollection, p.Metadata.Name), actor, p, &out)
}

// DeletePipeline deletes a pipeline.
func (c *Client) DeletePipeline(ctx context.Context, name string) error {
	return c.callAs(ctx, "DELETE", c.endpoint(nil, PipelinesCollection, name), "", nil, nil)
}

// StartPipelineRun starts a run of req.Pipeline (Created is false when
// req.DedupKey named an existing run). req.Actor, if empty, is the
// server's default actor.
func (c *Client) StartPipelineRun(ctx context.Context, req pipeline.RunRequest) (*api.RunResponse, error) {
	var out api.RunResponse
	return &out, c.callAs(ctx, "POST", c.endpoint(nil, PipelinesCollection, req.Pipeline, "runs"), req.Actor, req, &out)
}

// RunListOptions select and page runs.
type RunListOptions struct {
	// Pipeline, if set, lists the runs of that pipeline only.
	Pipeline string
	// State is a run state, or "active" for the runs not yet ended.
	State     string
	PageToken string
	// Limit bounds the page (0: the server's default, 50).
	Limit int
}

// ListPipelineRuns lists one page of runs, newest first (without their
// steps; GetPipelineRun has them).
func (c *Client) ListPipelineRuns(ctx context.Context, o RunListOptions) (*api.RunList, error) {
	q := url.Values{}
	if o.State != "" {
		q.Set("state", o.State)
	}
	if o.PageToken != "" {
		q.Set("page_token", o.PageToken)
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	u := c.endpoint(q, PipelineRunsCollection)
	if o.Pipeline != "" {
		u = c.endpoint(q, PipelinesCollection, o.Pipeline, "runs")
	}
	var out api.RunList
	return &out, c.callAs(ctx, "GET", u, "", nil, &out)
}

// GetPipelineRun returns a run with its steps.
func (c *Client) GetPipelineRun(ctx context.Context, id string) (*pipeline.Run, error) {
	var out pipeline.Run
	if err := c.callAs(ctx, "GET", c.endpoint(nil, PipelineRunsCollection, id), "", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CancelPipelineRun cancels a run (its running steps are stopped) and
// returns it.
func (c *Client) CancelPipelineRun(ctx context.Context, id, reason, actor string) (*pipeline.Run, error) {
	var out pipeline.Run
	if err := c.callAs(ctx, "POST", c.endpoint(nil, PipelineRunsCollection, id, "cancel"), actor, api.CancelRunRequest{Reason: reason}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ResumePipelineRun starts a run that reuses the succeeded and cached
// steps of a failed or cancelled one and runs the rest.
func (c *Client) ResumePipelineRun(ctx context.Context, id string, req api.ResumeRunRequest, actor string) (*api.RunResponse, error) {
	var out api.RunResponse
	return &out, c.callAs(ctx, "POST", c.endpoint(nil, PipelineRunsCollection, id, "resume"), actor, req, &out)
}

// PipelineTriggers returns where a pipeline's schedules and triggers
// stand.
func (c *Client) PipelineTriggers(ctx context.Context, name string) ([]trigger.State, error) {
	var out api.TriggerStates
	return out.States, c.callAs(ctx, "GET", c.endpoint(nil, PipelinesCollection, name, "triggers"), "", nil, &out)
}

// FireWebhookTrigger sends body (with the headers in h, such as
// X-Kiln-Signature) to a pipeline's webhook trigger.
func (c *Client) FireWebhookTrigger(ctx context.Context, name, triggerName string, body []byte, h http.Header) (*api.RunResponse, error) {
	req, err := c.newRequest(ctx, "POST", c.endpoint(nil, PipelinesCollection, name, "triggers", triggerName), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, vs := range h {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.send(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out api.RunResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("kiln server %s: decode the answer to POST %s: %w", c.base, req.URL.Path, err)
	}
	return &out, nil
}

// LogOptions select the log chunks of one step attempt.
type LogOptions struct {
	// Attempt is the attempt (0: the latest).
	Attempt int
	// After is the sequence number after which chunks are wanted (0:
	// from the start).
	After int64
	// Limit bounds the chunks of one answer (0: the server's default).
	Limit int
}

func (o LogOptions) query() url.Values {
	q := url.Values{}
	if o.Attempt > 0 {
		q.Set("attempt", strconv.Itoa(o.Attempt))
	}
	if o.After > 0 {
		q.Set("after", strconv.FormatInt(o.After, 10))
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	return q
}

// StepLogs returns the log chunks of a step attempt written so far, from
// after o.After; ask again after NextAfter for more.
func (c *Client) StepLogs(ctx context.Context, runID, step string, o LogOptions) (*api.StepLogs, error) {
	var out api.StepLogs
	return &out, c.callAs(ctx, "GET", c.endpoint(o.query(), PipelineRunsCollection, runID, "steps", step, "logs"), "", nil, &out)
}

// LogFollow says where a followed log stopped: the attempt followed, the
// sequence number of the last chunk received, and whether the attempt
// has ended (false: the stream stopped at its time bound, or broke off;
// follow again after Seq).
type LogFollow struct {
	Attempt int
	Seq     int64
	Done    bool
}

// FollowStepLogs copies a step attempt's log to w as it is written, from
// after o.After, until the attempt ends, timeout passes (0: the server's
// bound, api.MaxLogFollow) or ctx is done. The attempt is o.Attempt, or
// with 0 the latest once the step has started.
func (c *Client) FollowStepLogs(ctx context.Context, runID, step string, o LogOptions, timeout time.Duration, w io.Writer) (LogFollow, error) {
	q := o.query()
	q.Del("limit")
	q.Set("follow", "true")
	if timeout > 0 {
		q.Set("timeout", timeout.String())
	}
	lf := LogFollow{Attempt: o.Attempt, Seq: o.After}
	req, err := c.newRequest(ctx, "GET", c.endpoint(q, PipelineRunsCollection, runID, "steps", step, "logs"), nil)
	if err != nil {
		return lf, err
	}
	resp, err := c.send(req)
	if err != nil {
		return lf, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return lf, fmt.Errorf("kiln server %s: log of step %s of run %s: %w", c.base, step, runID, err)
	}
	// The trailers come after the body.
	if a, err := strconv.Atoi(resp.Trailer.Get(api.LogAttemptTrailer)); err == nil {
		lf.Attempt = a
	}
	if s, err := strconv.ParseInt(resp.Trailer.Get(api.LogSeqTrailer), 10, 64); err == nil {
		lf.Seq = s
	}
	lf.Done = resp.Trailer.Get(api.LogDoneTrailer) == "true"
	return lf, nil
}
