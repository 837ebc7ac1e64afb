// Package mlflowapi is the MLflow REST API 2.0 wire layer: it serves
// /api/2.0/mlflow/..., its /ajax-api twin and the mlflow-artifacts proxy over
// Kiln's tracking, registry and artifact packages. It translates between
// MLflow's JSON shapes and Kiln's domain types and maps domain errors to
// MLflow's {"error_code", "message"} bodies in one place (writeError); it
// holds no business rules.
package mlflowapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/access"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/registry"
)

// MaxBodyBytes bounds a JSON request body. MLflow documents 1 MB for
// log-batch; larger bodies (e.g. a logged model's 16 MB dataset profile)
// are accepted up to this limit.
const MaxBodyBytes = 32 << 20

// MLflow error codes and their HTTP statuses (mlflow/exceptions.py).
const (
	codeInternal         = "INTERNAL_ERROR"
	codeBadRequest       = "BAD_REQUEST"
	codeInvalidParameter = "INVALID_PARAMETER_VALUE"
	codeAlreadyExists    = "RESOURCE_ALREADY_EXISTS"
	codeDoesNotExist     = "RESOURCE_DOES_NOT_EXIST"
	codeEndpointNotFound = "ENDPOINT_NOT_FOUND"
	codeInvalidState     = "INVALID_STATE"
	codeNotImplemented   = "NOT_IMPLEMENTED"
	codePermissionDenied = "PERMISSION_DENIED"
	codeUnauthenticated  = "UNAUTHENTICATED"
	codeRequestLimit     = "REQUEST_LIMIT_EXCEEDED"
)

var codeStatus = map[string]int{
	codeInternal:         http.StatusInternalServerError,
	codeBadRequest:       http.StatusBadRequest,
	codeInvalidParameter: http.StatusBadRequest,
	codeAlreadyExists:    http.StatusBadRequest,
	codeDoesNotExist:     http.StatusNotFound,
	codeEndpointNotFound: http.StatusNotFound,
	codeInvalidState:     http.StatusInternalServerError,
	codeNotImplemented:   http.StatusNotImplemented,
	codePermissionDenied: http.StatusForbidden,
	codeUnauthenticated:  http.StatusUnauthorized,
	codeRequestLimit:     http.StatusTooManyRequests,
}

// apiError is an error with an explicit MLflow error code, for wire-level
// failures (bad JSON, wrong content type) that have no domain kind.
type apiError struct {
	code string
	msg  string
}

func (e *apiError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &apiError{code: codeBadRequest, msg: fmt.Sprintf(format, args...)}
}

func invalidParam(format string, args ...any) error {
	return &apiError{code: codeInvalidParameter, msg: fmt.Sprintf(format, args...)}
}

// errorCode maps an error to MLflow's error code. This is the one place
// where domain errors meet the MLflow wire format.
func errorCode(err error) string {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae.code
	case errors.Is(err, errdefs.ErrNotFound):
		return codeDoesNotExist
	case errors.Is(err, errdefs.ErrAlreadyExists):
		return codeAlreadyExists
	case errors.Is(err, errdefs.ErrInvalidArgument), errors.Is(err, errdefs.ErrTooLarge):
		return codeInvalidParameter
	case errors.Is(err, errdefs.ErrInvalidState):
		return codeInvalidState
	case errors.Is(err, errdefs.ErrNotImplemented):
		return codeNotImplemented
	case errors.Is(err, errdefs.ErrPermission):
		return codePermissionDenied
	case errors.Is(err, errdefs.ErrUnauthenticated):
		return codeUnauthenticated
	case errors.Is(err, errdefs.ErrRateLimited):
		return codeRequestLimit
	}
	return codeInternal
}

func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	code := errorCode(err)
	status := codeStatus[code]
	if errors.Is(err, registry.ErrAliasRefused) {
		// A promotion gate refused the alias: the client's request, not a
		// server fault (MLflow clients retry 500s).
		status = http.StatusBadRequest
	}
	msg := errdefs.Message(err)
	var ae *apiError
	if errors.As(err, &ae) {
		msg = ae.msg
	}
	if status >= 500 && code == codeInternal {
		log.ErrorContext(r.Context(), "mlflow api: internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "Internal error: " + err.Error()
	}
	// A registered model's stored name shows as the request names it.
	msg = access.ShownText(msg)
	writeJSON(w, status, map[string]string{"error_code": code, "message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		fmt.Fprintf(&buf, `{"error_code":%q,"message":%q}`, codeInternal, "encode response: "+err.Error())
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// decode reads a request into v, a pointer to a struct with json tags. GET
// and DELETE-without-body requests carry their fields in the query string
// (repeated keys for repeated fields); others carry a JSON body, for which
// POST/PUT/PATCH need Content-Type application/json, as in MLflow. Unknown
// fields are ignored, as MLflow's parse_dict does.
func decode(r *http.Request, v any) error {
	hasBody := r.ContentLength > 0 || (r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody)
	if r.Method == http.MethodGet || (r.Method == http.MethodDelete && !hasBody) || (r.Method == http.MethodDelete && r.URL.RawQuery != "" && !isJSON(r)) {
		return decodeQuery(r, v)
	}
	if !isJSON(r) {
		if r.Method == http.MethodDelete || r.Method == http.MethodPatch {
			// The Python client sends JSON on DELETE/PATCH; tolerate a missing header.
		} else if r.Header.Get("Content-Type") == "" {
			return invalidParam("Bad Request. Content-Type header is missing.")
		} else {
			return invalidParam("Bad Request. Content-Type must be application/json.")
		}
	}
	body, err := readBody(r)
	if err != nil {
		return err
	}
	return decodeJSON(body, v)
}

// readBody reads a request body up to MaxBodyBytes.
func readBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, invalidParam("Request body exceeds the limit of %d bytes", MaxBodyBytes)
		}
		return nil, badRequest("Failed to read request body: %v", err)
	}
	return body, nil
}

func isJSON(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.EqualFold(strings.TrimSpace(ct), "application/json")
}

// decodeJSON parses a JSON request body into v. A legacy double-encoded
// body (a JSON string holding JSON) is accepted.
func decodeJSON(body []byte, v any) error {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		body = []byte("{}")
	}
	if body[0] == '"' {
		var inner string
		if err := json.Unmarshal(body, &inner); err == nil {
			body = []byte(inner)
		}
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return invalidParam("Invalid value for parameter '%s': expected %s, got JSON %s", te.Field, jsonTypeName(te.Type), te.Value)
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return badRequest("Malformed JSON request body: %v", err)
		}
		var ae *apiError
		if errors.As(err, &ae) {
			return ae
		}
		return invalidParam("Invalid request body: %v", err)
	}
	return nil
}

func jsonTypeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Int, reflect.Int32, reflect.Int64, reflect.Float64, reflect.Float32:
		return "a number"
	}
	return t.String()
}

// decodeQuery maps query parameters onto v's json-tagged fields by building
// the equivalent JSON object, so query and body requests share one parser.
func decodeQuery(r *http.Request, v any) error {
	q := r.URL.Query()
	obj := map[string]any{}
	queryFields(q, reflect.TypeOf(v).Elem(), obj)
	b, err := json.Marshal(obj)
	if err != nil {
		return badRequest("bad query: %v", err)
	}
	return decodeJSON(b, v)
}

// queryFields collects the query values of t's json-tagged fields,
// including those of embedded structs, into obj.
func queryFields(q url.Values, t reflect.Type, obj map[string]any) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			queryFields(q, f.Type, obj)
			continue
		}
		name := strings.Split(f.Tag.Get("json"), ",")[0]
		if name == "" || name == "-" {
			continue
		}
		vals, ok := q[name]
		if !ok || len(vals) == 0 {
			continue
		}
		if f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() != reflect.Uint8 {
			arr := make([]any, 0, len(vals))
			for _, s := range vals {
				arr = append(arr, queryValue(f.Type.Elem(), s))
			}
			obj[name] = arr
			continue
		}
		obj[name] = queryValue(f.Type, vals[len(vals)-1])
	}
}

func queryValue(t reflect.Type, s string) any {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		if b, err := strconv.ParseBool(s); err == nil {
			return b
		}
	case reflect.Int, reflect.Int32, reflect.Int64:
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n
		}
	case reflect.Float32, reflect.Float64:
		if n, err := strconv.ParseFloat(s, 64); err == nil {
			return n
		}
	}
	return s // let the JSON decoder report the type error, or the custom types parse it
}

// Int64 is an int64 field that, like protobuf JSON, accepts a JSON number or
// a decimal string, and encodes as a number.
type Int64 int64

func (n *Int64) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	if len(s) >= 2 && s[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f, ferr := strconv.ParseFloat(s, 64)
		if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<63 {
			return invalidParam("Invalid value %s for an integer field", string(b))
		}
		v = int64(f)
	}
	*n = Int64(v)
	return nil
}

// Float64 is a double field that accepts a JSON number, a numeric string, or
// protobuf JSON's "NaN", "Infinity" and "-Infinity", and encodes the same way.
type Float64 float64

func (f *Float64) UnmarshalJSON(b []byte) error {
	s := string(b)
	if s == "null" {
		return nil
	}
	if len(s) >= 2 && s[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		switch s {
		case "NaN", "nan":
			*f = Float64(math.NaN())
			return nil
		case "Infinity", "inf":
			*f = Float64(math.Inf(1))
			return nil
		case "-Infinity", "-inf":
			*f = Float64(math.Inf(-1))
			return nil
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return invalidParam("Invalid value %s for a double field", string(b))
	}
	*f = Float64(v)
	return nil
}

func (f Float64) MarshalJSON() ([]byte, error) {
	v := float64(f)
	switch {
	case math.IsNaN(v):
		return []byte(`"NaN"`), nil
	case math.IsInf(v, 1):
		return []byte(`"Infinity"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-Infinity"`), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

// WriteError answers err in MLflow's error format (for middleware in
// front of the MLflow routes, such as access control).
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	writeError(w, r, log, err)
}
