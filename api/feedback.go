package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/deploy"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/evaluate"
	"github.com/kiln-ml/kiln/monitor/feedback"
)

// Feedback serves ground-truth labels and performance (a
// *feedback.Service).
type Feedback interface {
	Put(ctx context.Context, endpoint string, labels []feedback.Label) (int, error)
	Get(ctx context.Context, endpoint, requestID string) ([]feedback.Label, error)
	Performance(ctx context.Context, q feedback.Query) (*feedback.Performance, error)
}

// Bounds of POST /endpoints/{endpoint}/feedback.
const (
	// MaxFeedbackBytes bounds the body.
	MaxFeedbackBytes = 64 << 20
	// MaxFeedbackLabels bounds the labels of one request.
	MaxFeedbackLabels = 1_000_000
)

// FeedbackResponse is the answer of POST /endpoints/{endpoint}/feedback.
type FeedbackResponse struct {
	// Accepted is the number of labels stored (a label for a request id
	// and row that had one replaces it).
	Accepted int `json:"accepted"`
}

// FeedbackLabels is the answer of GET /endpoints/{endpoint}/feedback/{request_id}.
type FeedbackLabels struct {
	Endpoint  string           `json:"endpoint"`
	RequestID string           `json:"request_id"`
	Labels    []feedback.Label `json:"labels"`
}

func (h *Handler) registerFeedback(mux Mux) {
	h.handle(mux, "POST", "/endpoints/{endpoint}/feedback", h.postFeedback)
	h.handle(mux, "GET", "/endpoints/{endpoint}/feedback/{request_id}", h.getFeedback)
	h.handle(mux, "GET", "/endpoints/{endpoint}/performance", h.performance)
}

func (h *Handler) feedback() (Feedback, error) {
	if h.d.Feedback == nil {
		return nil, errdefs.NotImplemented("This server does not keep labels (no feedback service)")
	}
	return h.d.Feedback, nil
}

func feedbackEndpoint(r *http.Request) (string, error) {
	name := r.PathValue("endpoint")
	if !deploy.ValidName(name) {
		return "", errdefs.Invalid("Invalid endpoint name %q: lower-case letters, digits and '-', at most 63", clipText(name))
	}
	return name, nil
}

func clipText(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// bodyErr remembers the error of reading the body, so that a body over
// the limit is answered 413 whatever the decoder made of it.
type bodyErr struct {
	r   io.Reader
	err error
}

func (b *bodyErr) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		b.err = err
	}
	return n, err
}

// postFeedback stores the labels of the body, all or none.
func (h *Handler) postFeedback(w http.ResponseWriter, r *http.Request) error {
	fb, err := h.feedback()
	if err != nil {
		return err
	}
	endpoint, err := feedbackEndpoint(r)
	if err != nil {
		return err
	}
	format, err := feedback.FormatOfContentType(r.Header.Get("Content-Type"))
	if err != nil {
		return err
	}
	q := r.URL.Query()
	opts := feedback.DecodeOptions{IDColumn: q.Get("id_column"), RowColumn: q.Get("row_column"), LabelColumn: q.Get("label_column")}
	body := &bodyErr{r: http.MaxBytesReader(w, r.Body, MaxFeedbackBytes)}
	var labels []feedback.Label
	errTooMany := errdefs.TooLarge("More than %d labels in one request: send them in parts", MaxFeedbackLabels)
	err = feedback.Decode(body, format, opts, func(l feedback.Label) error {
		if len(labels) >= MaxFeedbackLabels {
			return errTooMany
		}
		labels = append(labels, l)
		return nil
	})
	if body.err != nil {
		return body.err
	}
	if err != nil {
		return err
	}
	n, err := fb.Put(r.Context(), endpoint, labels)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, FeedbackResponse{Accepted: n})
	return nil
}

func (h *Handler) getFeedback(w http.ResponseWriter, r *http.Request) error {
	fb, err := h.feedback()
	if err != nil {
		return err
	}
	endpoint, err := feedbackEndpoint(r)
	if err != nil {
		return err
	}
	id := r.PathValue("request_id")
	ls, err := fb.Get(r.Context(), endpoint, id)
	if err != nil {
		return err
	}
	if len(ls) == 0 {
		return errdefs.NotFound("No label for request '%s' of endpoint '%s'", clipText(id), endpoint)
	}
	writeJSON(w, http.StatusOK, FeedbackLabels{Endpoint: endpoint, RequestID: id, Labels: ls})
	return nil
}

// DefaultPerformanceRange is the range of GET …/performance without from.
const DefaultPerformanceRange = 24 * time.Hour

// parseInstant reads RFC 3339 or milliseconds since the Unix epoch.
func parseInstant(name, s string) (time.Time, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMilli(ms), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, errdefs.Invalid("Invalid %s %q: want RFC 3339 (2026-01-02T15:04:05Z) or milliseconds since the epoch", name, clipText(s))
	}
	return t, nil
}

// listParam reads a comma-separated (or repeated) query parameter.
func listParam(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

func (h *Handler) performance(w http.ResponseWriter, r *http.Request) error {
	fb, err := h.feedback()
	if err != nil {
		return err
	}
	endpoint, err := feedbackEndpoint(r)
	if err != nil {
		return err
	}
	v := r.URL.Query()
	q := feedback.Query{Endpoint: endpoint, Task: evaluate.Task(v.Get("task")), Metrics: listParam(v["metrics"]),
		SliceBy: listParam(v["slice_by"]), Route: v.Get("route"), Prediction: v.Get("prediction"), PositiveClass: v.Get("positive_class")}
	q.To = time.Now()
	if s := v.Get("to"); s != "" {
		if q.To, err = parseInstant("to", s); err != nil {
			return err
		}
	}
	q.From = q.To.Add(-DefaultPerformanceRange)
	if s := v.Get("from"); s != "" {
		if q.From, err = parseInstant("from", s); err != nil {
			return err
		}
	}
	if s := v.Get("window"); s != "" {
		if q.Window, err = time.ParseDuration(s); err != nil {
			return errdefs.Invalid("Invalid window %q: want a Go duration such as 1h or 15m", clipText(s))
		}
	}
	p, err := fb.Performance(r.Context(), q)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}
