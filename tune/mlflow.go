package tune

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
)

// MLflow run statuses.
const (
	RunRunning  = "RUNNING"
	RunFinished = "FINISHED"
	RunFailed   = "FAILED"
	RunKilled   = "KILLED"
)

// MLflow is a small client of the MLflow REST API 2.0: what a study needs
// to create and finish runs, log to them and read metric histories.
type MLflow struct {
	// URL is the tracking server ("http://127.0.0.1:5000").
	URL string
	// Token, if set, is sent as a bearer token.
	Token     string
	UserAgent string
	HTTP      *http.Client // default: one with a 30s timeout
}

// NewMLflow returns a client of the tracking server at rawURL.
func NewMLflow(rawURL string) (*MLflow, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errdefs.Invalid("%q is not an http(s) tracking server URL", clip(rawURL))
	}
	return &MLflow{URL: strings.TrimRight(rawURL, "/"), HTTP: &http.Client{Timeout: 30 * time.Second}}, nil
}

// MLflowError is an error answer of the tracking server.
type MLflowError struct {
	Status  int
	Code    string `json:"error_code"`
	Message string `json:"message"`
}

func (e *MLflowError) Error() string {
	return fmt.Sprintf("tracking server: %s (%s, HTTP %d)", e.Message, e.Code, e.Status)
}

// Is maps RESOURCE_DOES_NOT_EXIST to errdefs.ErrNotFound.
func (e *MLflowError) Is(target error) bool {
	return target == errdefs.ErrNotFound && (e.Code == "RESOURCE_DOES_NOT_EXIST" || e.Status == http.StatusNotFound)
}

func (c *MLflow) call(ctx context.Context, method, path string, q url.Values, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	u := c.URL + "/api/2.0/mlflow/" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("tracking server %s: %w", c.URL, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("tracking server %s: %w", c.URL, err)
	}
	if resp.StatusCode/100 != 2 {
		e := &MLflowError{Status: resp.StatusCode}
		if json.Unmarshal(data, e) != nil || e.Message == "" {
			e.Message = strings.TrimSpace(clip(string(data)))
		}
		return fmt.Errorf("%s %s: %w", method, path, e)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: unexpected answer: %w", method, path, err)
	}
	return nil
}

// ExperimentID returns the id of the experiment called name, creating it
// if there is none.
func (c *MLflow) ExperimentID(ctx context.Context, name string) (string, error) {
	var got struct {
		Experiment struct {
			ID string `json:"experiment_id"`
		} `json:"experiment"`
	}
	err := c.call(ctx, "GET", "experiments/get-by-name", url.Values{"experiment_name": {name}}, nil, &got)
	if err == nil {
		return got.Experiment.ID, nil
	}
	if !errors.Is(err, errdefs.ErrNotFound) {
		return "", err
	}
	var created struct {
		ID string `json:"experiment_id"`
	}
	if err := c.call(ctx, "POST", "experiments/create", nil, map[string]string{"name": name}, &created); err != nil {
		var me *MLflowError
		if errors.As(err, &me) && me.Code == "RESOURCE_ALREADY_EXISTS" { // created meanwhile
			return c.ExperimentID(ctx, name)
		}
		return "", err
	}
	return created.ID, nil
}

type kv struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func kvs(m map[string]string) []kv {
	out := make([]kv, 0, len(m))
	for k, v := range m {
		out = append(out, kv{k, v})
	}
	return out
}

// CreateRun creates a RUNNING run in the experiment with the tags and
// returns its id.
func (c *MLflow) CreateRun(ctx context.Context, experimentID, name string, tags map[string]string) (string, error) {
	var got struct {
		Run struct {
			Info struct {
				RunID string `json:"run_id"`
			} `json:"info"`
		} `json:"run"`
	}
	in := map[string]any{"experiment_id": experimentID, "run_name": name, "start_time": time.Now().UnixMilli(), "tags": kvs(tags)}
	if err := c.call(ctx, "POST", "runs/create", nil, in, &got); err != nil {
		return "", err
	}
	return got.Run.Info.RunID, nil
}

// UpdateRun sets a run's status (and end time, for a terminal status).
func (c *MLflow) UpdateRun(ctx context.Context, runID, status string) error {
	in := map[string]any{"run_id": runID, "status": status}
	if status != RunRunning {
		in["end_time"] = time.Now().UnixMilli()
	}
	return c.call(ctx, "POST", "runs/update", nil, in, nil)
}

// SetTag sets one tag of a run.
func (c *MLflow) SetTag(ctx context.Context, runID, key, value string) error {
	return c.call(ctx, "POST", "runs/set-tag", nil, map[string]string{"run_id": runID, "key": key, "value": value}, nil)
}

// Metric is one logged metric value.
type Metric struct {
	Key       string  `json:"key"`
	Value     float64 `json:"value"`
	Timestamp int64   `json:"timestamp"`
	Step      int64   `json:"step"`
}

// LogBatch logs params, tags and metrics to a run (at most 100 params
// and 1000 metrics per call, as MLflow allows: longer lists are split).
func (c *MLflow) LogBatch(ctx context.Context, runID string, params, tags map[string]string, metrics []Metric) error {
	ps := kvs(params)
	for len(ps) > 0 || len(tags) > 0 || len(metrics) > 0 {
		n := min(len(ps), 100)
		m := min(len(metrics), 1000)
		ms := make([]map[string]any, m)
		for i, x := range metrics[:m] {
			ms[i] = map[string]any{"key": x.Key, "value": jsonFloat(x.Value), "timestamp": x.Timestamp, "step": x.Step}
		}
		in := map[string]any{"run_id": runID, "params": ps[:n], "tags": kvs(tags), "metrics": ms}
		if err := c.call(ctx, "POST", "runs/log-batch", nil, in, nil); err != nil {
			return err
		}
		ps, tags, metrics = ps[n:], nil, metrics[m:]
	}
	return nil
}

// jsonFloat writes non-finite values as MLflow does ("NaN", "Infinity").
func jsonFloat(f float64) any {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return f
}

// flexNumber reads a JSON number, a numeric string, or MLflow's "NaN" and
// "Infinity" strings.
type flexNumber float64

func (n *flexNumber) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	switch s {
	case "NaN":
		*n = flexNumber(math.NaN())
		return nil
	case "Infinity", "inf":
		*n = flexNumber(math.Inf(1))
		return nil
	case "-Infinity", "-inf":
		*n = flexNumber(math.Inf(-1))
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("not a number: %s", clip(string(b)))
	}
	*n = flexNumber(f)
	return nil
}

// MetricHistory returns every logged value of a run's metric, in the
// server's order (all pages).
func (c *MLflow) MetricHistory(ctx context.Context, runID, key string) ([]Metric, error) {
	var out []Metric
	token := ""
	for page := 0; page < 1000; page++ {
		q := url.Values{"run_id": {runID}, "run_uuid": {runID}, "metric_key": {key}}
		if token != "" {
			q.Set("page_token", token)
		}
		var got struct {
			Metrics []struct {
				Key       string     `json:"key"`
				Value     flexNumber `json:"value"`
				Timestamp flexNumber `json:"timestamp"`
				Step      flexNumber `json:"step"`
			} `json:"metrics"`
			NextPageToken string `json:"next_page_token"`
		}
		if err := c.call(ctx, "GET", "metrics/get-history", q, nil, &got); err != nil {
			return nil, err
		}
		for _, m := range got.Metrics {
			out = append(out, Metric{Key: m.Key, Value: float64(m.Value), Timestamp: int64(m.Timestamp), Step: int64(m.Step)})
		}
		if got.NextPageToken == "" || len(got.Metrics) == 0 {
			return out, nil
		}
		token = got.NextPageToken
	}
	return out, nil
}
