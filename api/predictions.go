package api

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/kiln-ml/kiln/access"
	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/deploy"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/monitor/predlog"
)

// Predictions serves the prediction log (a *predlog.Service).
type Predictions interface {
	// Flush ships every record the endpoint logged so far.
	Flush(ctx context.Context, endpoint string) error
	// Segments lists the shipped segments overlapping [from, to).
	Segments(ctx context.Context, endpoint string, from, to time.Time) ([]predlog.Segment, error)
	// Export writes the rows logged in [from, to) as one Parquet or JSON
	// Lines file.
	Export(ctx context.Context, endpoint string, from, to time.Time, w io.Writer, f table.Format) (int64, error)
	// Erase deletes every record the endpoint logged with the subject key.
	Erase(ctx context.Context, endpoint, subject string) (predlog.ErasureReport, error)
}

// ErasePredictionsRequest is the body of POST
// /endpoints/{endpoint}/predictions/erase.
type ErasePredictionsRequest struct {
	// Subject is the subject key whose records are erased (the value of
	// the endpoint's spec.logging.subject_header).
	Subject string `json:"subject"`
}

// ErasePredictionsResponse answers an erasure: what it did, and the
// digest of the subject key under which the audit log records it.
type ErasePredictionsResponse struct {
	predlog.ErasureReport
	SubjectDigest string `json:"subject_digest"`
}

// maxSubjectKey bounds a subject key (a header value).
const maxSubjectKey = 4096

// PredictionSegmentList lists an endpoint's shipped prediction-log
// segments, oldest first.
type PredictionSegmentList struct {
	Segments []predlog.Segment `json:"segments"`
}

// FlushPredictionsResponse answers a flush: every record logged before
// it is now readable.
type FlushPredictionsResponse struct {
	Endpoint string `json:"endpoint"`
	Flushed  bool   `json:"flushed"`
}

// Content types of prediction downloads.
const (
	ParquetContentType = "application/vnd.apache.parquet"
	JSONLContentType   = "application/x-ndjson"
)

func (h *Handler) registerPredictions(mux Mux) {
	h.handle(mux, "GET", "/endpoints/{endpoint}/predictions", h.downloadPredictions)
	h.handle(mux, "POST", "/endpoints/{endpoint}/predictions/flush", h.flushPredictions)
	h.handle(mux, "GET", "/endpoints/{endpoint}/predictions/segments", h.listPredictionSegments)
	h.handle(mux, "POST", "/endpoints/{endpoint}/predictions/erase", h.erasePredictions)
}

// predictionWindow reads {endpoint} and the from/to query parameters.
func (h *Handler) predictionWindow(r *http.Request) (string, time.Time, time.Time, error) {
	if h.d.Predictions == nil {
		return "", time.Time{}, time.Time{}, errdefs.NotImplemented("This server does not keep a prediction log")
	}
	name := r.PathValue("endpoint")
	if !deploy.ValidName(name) {
		return "", time.Time{}, time.Time{}, errdefs.Invalid("Invalid endpoint name '%s': want a DNS label (lower-case letters, digits and '-', 1-63 characters)", clip(name))
	}
	q := r.URL.Query()
	from, err := predlog.ParseTime(q.Get("from"))
	if err != nil {
		return "", time.Time{}, time.Time{}, errdefs.Invalid("Invalid 'from': %v", err)
	}
	to, err := predlog.ParseTime(q.Get("to"))
	if err != nil {
		return "", time.Time{}, time.Time{}, errdefs.Invalid("Invalid 'to': %v", err)
	}
	if !to.IsZero() && !from.Before(to) {
		return "", time.Time{}, time.Time{}, errdefs.Invalid("Invalid window: 'from' (%s) must be before 'to' (%s)", from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
	}
	return name, from, to, nil
}

// countingWriter notes whether anything was written.
type countingWriter struct {
	w http.ResponseWriter
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func (h *Handler) downloadPredictions(w http.ResponseWriter, r *http.Request) error {
	name, from, to, err := h.predictionWindow(r)
	if err != nil {
		return err
	}
	var f table.Format
	ct := ""
	switch format := r.URL.Query().Get("format"); format {
	case "", "parquet":
		f, ct = table.Parquet, ParquetContentType
	case "jsonl", "ndjson":
		f, ct = table.JSONL, JSONLContentType
	default:
		return errdefs.Invalid("Invalid format '%s': want parquet or jsonl", clip(format))
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`-predictions.`+string(f)+`"`)
	cw := &countingWriter{w: w}
	rows, err := h.d.Predictions.Export(r.Context(), name, from, to, cw, f)
	if err != nil {
		if cw.n == 0 {
			w.Header().Del("Content-Disposition")
			return err
		}
		// The file is half sent: break the connection rather than end a
		// body that looks complete.
		h.log.Error("prediction download failed mid-stream", "endpoint", name, "rows", rows, "err", err)
		panic(http.ErrAbortHandler)
	}
	if cw.n == 0 {
		w.Header().Set("X-Kiln-Rows", strconv.FormatInt(rows, 10))
		w.WriteHeader(http.StatusOK)
	}
	return nil
}

func (h *Handler) flushPredictions(w http.ResponseWriter, r *http.Request) error {
	name, _, _, err := h.predictionWindow(r)
	if err != nil {
		return err
	}
	if err := h.d.Predictions.Flush(r.Context(), name); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, FlushPredictionsResponse{Endpoint: name, Flushed: true})
	return nil
}

func (h *Handler) listPredictionSegments(w http.ResponseWriter, r *http.Request) error {
	name, from, to, err := h.predictionWindow(r)
	if err != nil {
		return err
	}
	segs, err := h.d.Predictions.Segments(r.Context(), name, from, to)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, PredictionSegmentList{Segments: segs})
	return nil
}

func (h *Handler) erasePredictions(w http.ResponseWriter, r *http.Request) error {
	name, _, _, err := h.predictionWindow(r)
	if err != nil {
		return err
	}
	var req ErasePredictionsRequest
	if err := decodeJSON(w, r, DefaultMaxJSONBytes, &req, false); err != nil {
		return err
	}
	switch {
	case req.Subject == "":
		return errdefs.Invalid("Missing 'subject': the subject key whose records are erased")
	case len(req.Subject) > maxSubjectKey:
		return errdefs.Invalid("Invalid 'subject': longer than %d bytes", maxSubjectKey)
	}
	// An erasure, once asked for, runs to its end even if the client
	// goes away (each segment is rewritten atomically either way).
	rep, err := h.d.Predictions.Erase(context.WithoutCancel(r.Context()), name, req.Subject)
	digest := access.Digest([]byte(req.Subject))
	h.auditErasure(w, r, rep, digest, err)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ErasePredictionsResponse{ErasureReport: rep, SubjectDigest: digest})
	return nil
}

// auditErasure records an erasure's result in the audit log (when the
// server keeps one), next to the event of the request itself that the
// access middleware records: the endpoint, the SHA-256 digest of the
// subject key (never the key) and the counts; a failed erasure with what
// it did before it failed.
func (h *Handler) auditErasure(w http.ResponseWriter, r *http.Request, rep predlog.ErasureReport, digest string, failure error) {
	if h.d.Access == nil || h.d.Access.Audit == nil {
		return
	}
	detail := struct {
		SubjectDigest     string `json:"subject_digest"`
		RecordsDeleted    int64  `json:"records_deleted"`
		RowsDeleted       int64  `json:"rows_deleted"`
		SegmentsScanned   int    `json:"segments_scanned"`
		SegmentsRewritten int    `json:"segments_rewritten"`
		SegmentsDeleted   int    `json:"segments_deleted"`
		Error             string `json:"error,omitempty"`
	}{digest, rep.RecordsDeleted, rep.RowsDeleted, rep.SegmentsScanned, rep.SegmentsRewritten, rep.SegmentsDeleted, ""}
	status := http.StatusOK
	if failure != nil {
		detail.Error, status = clip(errdefs.Message(failure)), http.StatusInternalServerError
	}
	doc, _ := json.Marshal(detail) // strings and ints
	ev := &access.Event{Action: ErasureAuditAction, Method: r.Method, Path: r.URL.Path, Resource: "endpoint/" + rep.Endpoint,
		RequestID: w.Header().Get("X-Request-Id"), Status: status, Detail: string(doc)}
	if ev.RequestID == "" {
		ev.RequestID = r.Header.Get("X-Request-Id")
	}
	if p := access.FromContext(r.Context()); p != nil {
		ev.Actor, ev.Auth = p.User, p.Auth
	}
	if err := h.d.Access.Audit.Append(context.WithoutCancel(r.Context()), ev); err != nil {
		h.log.Error("audit: an erasure's result was not recorded", "endpoint", rep.Endpoint, "subject_digest", digest, "err", err)
	}
}

// ErasureAuditAction is the action of the audit event that records an
// erasure's result.
const ErasureAuditAction = "predictions.erase"
