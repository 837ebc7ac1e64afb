package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/monitor/feedback"
)

// SendFeedback stores labels of an endpoint's logged predictions (as one
// JSON array).
func (c *Client) SendFeedback(ctx context.Context, endpoint string, labels []feedback.Label) (*api.FeedbackResponse, error) {
	type wire struct {
		RequestID string `json:"request_id"`
		Row       int64  `json:"row"`
		Label     any    `json:"label"`
	}
	in := make([]wire, len(labels))
	for i, l := range labels {
		in[i] = wire{l.RequestID, l.Row, l.Value}
	}
	var out api.FeedbackResponse
	if err := c.call(ctx, "POST", c.endpoint(nil, "endpoints", endpoint, "feedback"), in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SendFeedbackFile streams a file of labels: contentType is text/csv,
// application/x-ndjson, application/json or application/vnd.apache.parquet
// (feedback.ContentType of a format). opts, when given, name its columns.
func (c *Client) SendFeedbackFile(ctx context.Context, endpoint, contentType string, body io.Reader, opts ...feedback.DecodeOptions) (*api.FeedbackResponse, error) {
	q := url.Values{}
	for _, o := range opts {
		if o.IDColumn != "" {
			q.Set("id_column", o.IDColumn)
		}
		if o.RowColumn != "" {
			q.Set("row_column", o.RowColumn)
		}
		if o.LabelColumn != "" {
			q.Set("label_column", o.LabelColumn)
		}
	}
	u := c.endpoint(q, "endpoints", endpoint, "feedback")
	req, err := c.newRequest(ctx, "POST", u, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := c.send(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out api.FeedbackResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("kiln server %s: decode the answer to POST %s: %w", c.base, req.URL.Path, err)
	}
	return &out, nil
}

// GetFeedback returns the labels of one request of an endpoint (an
// errdefs.ErrNotFound error when it has none).
func (c *Client) GetFeedback(ctx context.Context, endpoint, requestID string) (*api.FeedbackLabels, error) {
	var out api.FeedbackLabels
	if err := c.call(ctx, "GET", c.endpoint(nil, "endpoints", endpoint, "feedback", requestID), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Performance computes the performance of q.Endpoint's labelled
// predictions on the server. A zero q.From lets the server pick (the last
// 24 hours before q.To); a zero q.To is now.
func (c *Client) Performance(ctx context.Context, q feedback.Query) (*feedback.Performance, error) {
	v := url.Values{}
	if !q.From.IsZero() {
		v.Set("from", q.From.UTC().Format(time.RFC3339Nano))
	}
	if !q.To.IsZero() {
		v.Set("to", q.To.UTC().Format(time.RFC3339Nano))
	}
	if q.Window > 0 {
		v.Set("window", q.Window.String())
	}
	if q.Task != "" {
		v.Set("task", string(q.Task))
	}
	if len(q.Metrics) > 0 {
		v.Set("metrics", strings.Join(q.Metrics, ","))
	}
	if len(q.SliceBy) > 0 {
		v.Set("slice_by", strings.Join(q.SliceBy, ","))
	}
	for k, s := range map[string]string{"route": q.Route, "prediction": q.Prediction, "positive_class": q.PositiveClass} {
		if s != "" {
			v.Set(k, s)
		}
	}
	var out feedback.Performance
	if err := c.call(ctx, "GET", c.endpoint(v, "endpoints", q.Endpoint, "performance"), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
