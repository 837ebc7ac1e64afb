package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/kiln-ml/kiln/access"
	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/errdefs"
)

// Error codes of the error body. Clients map them back to errdefs kinds
// (see CodeKind).
const (
	CodeNotFound         = "NOT_FOUND"
	CodeAlreadyExists    = "ALREADY_EXISTS"
	CodeInvalidArgument  = "INVALID_ARGUMENT"
	CodeDigestMismatch   = "DIGEST_MISMATCH"
	CodeInvalidState     = "INVALID_STATE"
	CodeTooLarge         = "TOO_LARGE"
	CodeNotImplemented   = "NOT_IMPLEMENTED"
	CodePermissionDenied = "PERMISSION_DENIED"
	CodeUnauthenticated  = "UNAUTHENTICATED"
	CodeDeadlineExceeded = "DEADLINE_EXCEEDED"
	CodeRateLimited      = "RATE_LIMITED"
	CodeInternal         = "INTERNAL"
)

// ErrorBody is the body of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is an error's code and message.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Details list the fields at fault of an invalid document, when the
	// error knows them.
	Details []FieldDetail `json:"details,omitempty"`
}

// kinds maps errdefs kinds to codes and statuses, in the order they are
// tried: a digest mismatch is also an invalid argument, and is reported as
// the more precise code.
var kinds = []struct {
	kind   error
	code   string
	status int
}{
	{dataset.ErrDigestMismatch, CodeDigestMismatch, http.StatusBadRequest},
	{errdefs.ErrNotFound, CodeNotFound, http.StatusNotFound},
	{errdefs.ErrAlreadyExists, CodeAlreadyExists, http.StatusConflict},
	{errdefs.ErrInvalidArgument, CodeInvalidArgument, http.StatusBadRequest},
	{errdefs.ErrInvalidState, CodeInvalidState, http.StatusConflict},
	{errdefs.ErrTooLarge, CodeTooLarge, http.StatusRequestEntityTooLarge},
	{errdefs.ErrNotImplemented, CodeNotImplemented, http.StatusNotImplemented},
	{errdefs.ErrPermission, CodePermissionDenied, http.StatusForbidden},
	{errdefs.ErrUnauthenticated, CodeUnauthenticated, http.StatusUnauthorized},
	{errdefs.ErrRateLimited, CodeRateLimited, http.StatusTooManyRequests},
}

// CodeKind returns the errdefs kind of an error code (nil for codes that
// have none, such as INTERNAL). A DIGEST_MISMATCH has two kinds; CodeKind
// returns dataset.ErrDigestMismatch, and clients should also match
// errdefs.ErrInvalidArgument.
func CodeKind(code string) error {
	for _, k := range kinds {
		if k.code == code {
			return k.kind
		}
	}
	return nil
}

// writeError answers err: a domain error with its code, status and
// message; anything else as a 500 whose message names the request id,
// with the error logged (never sent).
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	status, code, msg := http.StatusInternalServerError, CodeInternal, ""
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		status, code, msg = http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("Request body exceeds the limit of %d bytes", tooBig.Limit)
	case errors.Is(err, context.DeadlineExceeded):
		status, code, msg = http.StatusGatewayTimeout, CodeDeadlineExceeded, "The request took too long"
	default:
		for _, k := range kinds {
			if errors.Is(err, k.kind) {
				status, code, msg = k.status, k.code, errdefs.Message(err)
				break
			}
		}
	}
	if code == CodeInternal {
		id := w.Header().Get("X-Request-Id")
		if r.Context().Err() == nil {
			log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "request_id", id, "err", err)
		}
		msg = "internal error"
		if id != "" {
			msg += " (request id " + id + ")"
		}
	}
	var fd interface{ FieldDetails() []FieldDetail }
	var details []FieldDetail
	if code != CodeInternal && errors.As(err, &fd) {
		details = fd.FieldDetails()
	}
	// A registered model's stored name shows as the request names it.
	writeShownJSON(w, status, ErrorBody{Error: ErrorDetail{Code: code, Message: access.ShownText(msg), Details: details}})
}

// writeShownJSON is writeJSON for an answer that may name registered
// models by their stored names (an endpoint's routes, a lineage graph):
// they show without their workspace (access.ShownName). Only names carry
// access.NameSeparator in these answers.
func writeShownJSON(w http.ResponseWriter, status int, v any) {
	sw := &shownWriter{ResponseWriter: w, status: http.StatusOK}
	writeJSON(sw, status, v)
	b := sw.buf.Bytes()
	if bytes.Contains(b, []byte(jsonSeparator)) {
		b = shownJSON(b)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(sw.status)
	w.Write(b)
}

// shownWriter keeps writeJSON's answer for writeShownJSON.
type shownWriter struct {
	http.ResponseWriter
	status int
	buf    bytes.Buffer
}

func (w *shownWriter) WriteHeader(code int)        { w.status = code }
func (w *shownWriter) Write(b []byte) (int, error) { return w.buf.Write(b) }

// shownJSON removes the workspace qualifiers ("prod\u001f", as JSON
// encodes access.NameSeparator) from a JSON text.
func shownJSON(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for {
		i := bytes.Index(b, []byte(jsonSeparator))
		if i < 0 {
			return append(out, b...)
		}
		j := i
		for j > 0 && workspaceByte(b[j-1]) {
			j--
		}
		out = append(out, b[:j]...)
		b = b[i+len(jsonSeparator):]
	}
}

// jsonSeparator is access.NameSeparator as encoding/json writes it.
const jsonSeparator = `\u001f`

func workspaceByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '@' || c == '-'
}

func notFoundRoute(r *http.Request) error {
	return errdefs.NotFound("No API endpoint %s %s", r.Method, r.URL.Path)
}

// writeJSON writes v as a JSON response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only a value that cannot be encoded (a NaN) gets here.
		status = http.StatusInternalServerError
		buf.Reset()
		fmt.Fprintf(&buf, `{"error":{"code":%q,"message":"cannot encode the response: %s"}}`+"\n", CodeInternal, jsonEscape(err.Error()))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func jsonEscape(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// decodeJSON decodes a request body of at most limit bytes into v,
// strictly: unknown fields, trailing data and a wrong type are errors. An
// empty body leaves v as it is when optional.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, v any, optional bool) error {
	body := http.MaxBytesReader(w, r.Body, limit)
	data, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		if optional {
			return nil
		}
		return errdefs.Invalid("The request needs a JSON body")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errdefs.Invalid("Invalid JSON body: %s", clip(err.Error()))
	}
	if dec.More() {
		return errdefs.Invalid("Invalid JSON body: data after the JSON value")
	}
	return nil
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

// queryInt parses an optional integer query parameter.
func queryInt(r *http.Request, name string) (int, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, errdefs.Invalid("Invalid %s '%s': want an integer", name, clip(s))
	}
	return n, nil
}

// versionRef reads the {name} and {version} path values: a version number
// (optionally "v3") or "latest".
func versionRef(r *http.Request) (dataset.VersionRef, error) {
	name := r.PathValue("name")
	if err := dataset.ValidateName(name); err != nil {
		return dataset.VersionRef{}, err
	}
	v := r.PathValue("version")
	if v == "" {
		return dataset.VersionRef{}, errdefs.Invalid("Missing version")
	}
	return dataset.ParseVersionRef(name + "@" + v)
}

// digestParam reads and validates the {digest} path value.
func digestParam(r *http.Request) (dataset.Digest, error) {
	return dataset.ParseDigest(r.PathValue("digest"))
}

// invalidFields is an invalid document (a gate policy, monitor, alert
// receiver or pipeline); its details list the fields at fault.
type invalidFields struct {
	err error
	fes errdefs.FieldErrors
}

func (e *invalidFields) Error() string { return e.err.Error() }
func (e *invalidFields) Unwrap() error { return e.err }

// FieldDetails lists the fields at fault, with their lines when known.
func (e *invalidFields) FieldDetails() []FieldDetail {
	out := make([]FieldDetail, 0, len(e.fes))
	for _, fe := range e.fes {
		msg := fe.Msg
		if fe.Line > 0 {
			msg += " (line " + strconv.Itoa(fe.Line) + ")"
		}
		out = append(out, FieldDetail{Path: fe.Path, Message: msg})
	}
	return out
}

// withFieldDetails gives an error that carries field errors its details
// in the answer.
func withFieldDetails(err error) error {
	var fes errdefs.FieldErrors
	if errors.As(err, &fes) && len(fes) > 0 {
		return &invalidFields{err: err, fes: fes}
	}
	return err
}

// WriteError answers err in the API's error format (for middleware in
// front of the API, such as access control).
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	writeError(w, r, log, err)
}
