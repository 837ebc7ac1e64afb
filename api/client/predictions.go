package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/monitor/predlog"
)

// PredictionWindow selects logged predictions: [From, To), either bound
// optional (zero).
type PredictionWindow struct {
	From, To time.Time
}

func (w PredictionWindow) query() url.Values {
	q := url.Values{}
	if !w.From.IsZero() {
		q.Set("from", strconv.FormatInt(w.From.UnixMilli(), 10))
	}
	if !w.To.IsZero() {
		q.Set("to", strconv.FormatInt(w.To.UnixMilli(), 10))
	}
	return q
}

// FlushPredictions makes every prediction the endpoint logged so far
// readable (rolls and ships its local segments on the server).
func (c *Client) FlushPredictions(ctx context.Context, endpoint string) error {
	return c.call(ctx, http.MethodPost, c.endpoint(nil, "endpoints", endpoint, "predictions", "flush"), nil, nil)
}

// PredictionSegments lists the endpoint's shipped prediction-log segments
// overlapping the window.
func (c *Client) PredictionSegments(ctx context.Context, endpoint string, w PredictionWindow) ([]predlog.Segment, error) {
	var out api.PredictionSegmentList
	err := c.call(ctx, http.MethodGet, c.endpoint(w.query(), "endpoints", endpoint, "predictions", "segments"), nil, &out)
	return out.Segments, err
}

// DownloadPredictions writes the endpoint's logged rows in the window to
// dst as format "parquet" (default) or "jsonl", and returns the bytes
// written.
func (c *Client) DownloadPredictions(ctx context.Context, endpoint string, w PredictionWindow, format string, dst io.Writer) (int64, error) {
	q := w.query()
	if format != "" {
		q.Set("format", format)
	}
	req, err := c.newRequest(ctx, http.MethodGet, c.endpoint(q, "endpoints", endpoint, "predictions"), nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.send(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(dst, resp.Body)
	if err != nil {
		return n, fmt.Errorf("download predictions of %s: %w", endpoint, err)
	}
	return n, nil
}

// ErasePredictions deletes every prediction the endpoint logged with the
// subject key (right to erasure) and returns what the server did.
func (c *Client) ErasePredictions(ctx context.Context, endpoint, subject string) (api.ErasePredictionsResponse, error) {
	var out api.ErasePredictionsResponse
	err := c.call(ctx, http.MethodPost, c.endpoint(nil, "endpoints", endpoint, "predictions", "erase"), api.ErasePredictionsRequest{Subject: subject}, &out)
	return out, err
}
