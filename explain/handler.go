package explain

import (
	"bytes"
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/serving"
	"github.com/kiln-ml/kiln/tensor"
)

// Limits of the HTTP handler, per request.
const (
	// MaxBodySize bounds a request body.
	MaxBodySize = 16 << 20
	// MaxRows bounds the rows explained with the tree methods.
	MaxRows = 1000
	// MaxKernelRows bounds the rows explained with Kernel SHAP.
	MaxKernelRows = 100
	// MaxEvaluations bounds the model rows Kernel SHAP may predict for one
	// request (rows × coalitions × background rows).
	MaxEvaluations = 1 << 25
	// cachedExplainers is how many models' default explainers are kept.
	cachedExplainers = 64
)

// Response is the JSON answer of the explain endpoint and of
// `kiln explain --output json`. With one output, ExpectedValue is a number
// and ShapValues [rows][features]; with several (classes), ExpectedValue
// is a list and ShapValues [outputs][rows][features], shap's list-per-class
// layout, with OutputNames naming them.
type Response struct {
	ExpectedValue any      `json:"expected_value"`
	ShapValues    any      `json:"shap_values"`
	FeatureNames  []string `json:"feature_names"`
	OutputNames   []string `json:"output_names,omitempty"`
	Method        string   `json:"method"`
	ModelVersion  string   `json:"model_version"`
}

// NewResponse lays an explanation out as a Response.
func NewResponse(e *Explanation, modelVersion string) *Response {
	nf, k := len(e.FeatureNames), len(e.Expected)
	r := &Response{FeatureNames: e.FeatureNames, Method: e.Method, ModelVersion: modelVersion}
	matrix := func(o int) [][]float64 {
		m := make([][]float64, e.Rows)
		for row := range m {
			m[row] = make([]float64, nf)
			for f := range nf {
				m[row][f] = e.Values[(row*nf+f)*k+o]
			}
		}
		return m
	}
	if k == 1 {
		r.ExpectedValue, r.ShapValues = e.Expected[0], matrix(0)
		return r
	}
	per := make([][][]float64, k)
	for o := range k {
		per[o] = matrix(o)
	}
	r.ExpectedValue, r.ShapValues, r.OutputNames = e.Expected, per, e.OutputNames
	return r
}

// Lookup finds the model an endpoint serves now.
type Lookup func(ctx context.Context, endpoint string) (*serving.Model, error)

// NewHandler serves POST /endpoints/{endpoint}/explain: the body is any
// /invocations body (dataframe_split, dataframe_records, instances,
// inputs as JSON; CSV), and a JSON body may carry a "background" member,
// itself such a body, to explain against (default: the model's input
// example). Query parameters: method (tree, kernel, ...), nsamples, seed.
// Errors are MLflow's {"error_code", "message"}.
func NewHandler(lookup Lookup, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &handler{lookup: lookup, log: log, cache: newExplainerCache(cachedExplainers)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /endpoints/{endpoint}/explain", h.explain)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "ENDPOINT_NOT_FOUND", "no such endpoint: "+r.Method+" "+r.URL.Path+" (explanations are POST /endpoints/{endpoint}/explain)")
	})
	return mux
}

type handler struct {
	lookup Lookup
	log    *slog.Logger
	cache  *explainerCache
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	b, _ := json.Marshal(struct {
		Code    string `json:"error_code"`
		Message string `json:"message"`
	}{code, msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
}

// requestOptions are the explainer settings a request may choose.
type requestOptions struct {
	method   string
	nsamples int
	seed     uint64
}

func (h *handler) explain(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	endpoint := r.PathValue("endpoint")
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodySize+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "BAD_REQUEST", "reading the request body: "+err.Error())
		return
	}
	if len(body) > MaxBodySize {
		writeError(w, http.StatusRequestEntityTooLarge, "RESOURCE_EXHAUSTED", fmt.Sprintf("request body is larger than the limit of %d bytes", MaxBodySize))
		return
	}
	var ro requestOptions
	q := r.URL.Query()
	ro.method = q.Get("method")
	if s := q.Get("nsamples"); s != "" {
		if ro.nsamples, err = strconv.Atoi(s); err != nil || ro.nsamples < 1 || ro.nsamples > 1<<20 {
			writeError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("nsamples=%q: want an integer from 1 to %d", s, 1<<20))
			return
		}
	}
	if s := q.Get("seed"); s != "" {
		if ro.seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			writeError(w, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", fmt.Sprintf("seed=%q: want a non-negative integer", s))
			return
		}
	}
	m, err := h.lookup(ctx, endpoint)
	if err != nil {
		status, code := http.StatusInternalServerError, "INTERNAL_ERROR"
		switch {
		case errors.Is(err, serving.ErrModelNotFound), errors.Is(err, errdefs.ErrNotFound):
			status, code = http.StatusNotFound, "ENDPOINT_NOT_FOUND"
		case errors.Is(err, serving.ErrModelNotReady):
			status, code = http.StatusServiceUnavailable, "TEMPORARILY_UNAVAILABLE"
		case errors.Is(err, serving.ErrOverloaded):
			status, code = http.StatusTooManyRequests, "RESOURCE_EXHAUSTED"
		default:
			h.log.Error("explain: looking up the endpoint", "endpoint", endpoint, "err", err)
		}
		writeError(w, status, code, err.Error())
		return
	}
	ct := r.Header.Get("Content-Type")
	inv, err := serving.DecodeInvocation(body, ct, m)
	if err != nil {
		h.fail(w, endpoint, err)
		return
	}
	var bg []*tensor.Tensor
	if bgBody := backgroundMember(body, ct); bgBody != nil {
		b, err := serving.DecodeInvocation(bgBody, "application/json", m)
		if err != nil {
			h.fail(w, endpoint, fmt.Errorf("background: %w", err))
			return
		}
		bg = b.Inputs
	}
	e, err := h.explainer(ctx, m, ro, bg)
	if err != nil {
		h.fail(w, endpoint, err)
		return
	}
	rows := rowCount(inv.Inputs)
	limit := MaxRows
	if e.Method() == MethodKernel {
		limit = MaxKernelRows
	}
	if rows > limit {
		h.fail(w, endpoint, fmt.Errorf("%w: %d rows; %s explanations take at most %d rows per request", ErrTooLarge, rows, e.Method(), limit))
		return
	}
	if n := e.Evaluations(rows); n > MaxEvaluations {
		h.fail(w, endpoint, fmt.Errorf("%w: explaining %d rows takes %.0f model evaluations, more than the %d a request may; send fewer rows or a smaller background", ErrTooLarge, rows, n, MaxEvaluations))
		return
	}
	ex, err := e.Explain(ctx, inv.Inputs)
	if err != nil {
		h.fail(w, endpoint, err)
		return
	}
	if !e.NamedByModel() && inv.Columns != nil {
		ex.FeatureNames = inv.Columns
	}
	b, err := json.Marshal(NewResponse(ex, m.Version))
	if err != nil {
		h.fail(w, endpoint, fmt.Errorf("encoding the explanation: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
}

// fail answers err in MLflow's error format with its status.
func (h *handler) fail(w http.ResponseWriter, endpoint string, err error) {
	status, code := http.StatusInternalServerError, "INTERNAL_ERROR"
	switch {
	case errors.Is(err, serving.ErrUnsupportedMediaType):
		status, code = http.StatusUnsupportedMediaType, "BAD_REQUEST"
	case errors.Is(err, serving.ErrInvalidRequest):
		status, code = http.StatusBadRequest, serving.InvocationErrorCode(err)
	case errors.Is(err, ErrInvalidInput), errors.Is(err, ErrNoBackground), errors.Is(err, ErrNotApplicable),
		errors.Is(err, ErrTooLarge), errors.Is(err, errUnknownMethod):
		status, code = http.StatusBadRequest, "INVALID_PARAMETER_VALUE"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		status, code = http.StatusServiceUnavailable, "TEMPORARILY_UNAVAILABLE"
	default:
		h.log.Error("explain failed", "endpoint", endpoint, "err", err)
	}
	writeError(w, status, code, err.Error())
}

func rowCount(inputs []*tensor.Tensor) int {
	if len(inputs) == 0 || len(inputs[0].Shape) == 0 {
		return 0
	}
	return int(inputs[0].Shape[0])
}

// backgroundMember returns the "background" member of a JSON body, or nil.
func backgroundMember(body []byte, contentType string) []byte {
	mime, _, _ := strings.Cut(contentType, ";")
	if strings.EqualFold(strings.TrimSpace(mime), "text/csv") || !bytes.Contains(body, []byte(`"background"`)) {
		return nil
	}
	var doc map[string]json.RawMessage
	if json.Unmarshal(body, &doc) != nil {
		return nil
	}
	if b, ok := doc["background"]; ok && len(b) > 0 && b[0] == '{' {
		return b
	}
	return nil
}

// errUnknownMethod marks a method the request named that does not exist.
var errUnknownMethod = errors.New("unknown method")

// explainer returns the explainer for a request: the cached default one
// of the model, or a fresh one when the request sets a background or
// options.
func (h *handler) explainer(ctx context.Context, m *serving.Model, ro requestOptions, bg []*tensor.Tensor) (*Explainer, error) {
	switch ro.method {
	case "", "tree", MethodTreePathDependent, MethodTreeInterventional, MethodKernel:
	default:
		return nil, fmt.Errorf("%w %q: want tree, kernel, %s or %s", errUnknownMethod, ro.method, MethodTreePathDependent, MethodTreeInterventional)
	}
	key := cacheKey{model: m, opts: ro}
	if bg == nil {
		if e, ok := h.cache.get(key); ok {
			return e, nil
		}
	}
	opts := Options{Method: ro.method, NSamples: ro.nsamples, Seed: ro.seed, FeatureNames: SignatureColumns(m)}
	opts.Background = bg
	if bg == nil {
		opts.Background = InputExample(m)
	}
	e, err := New(ctx, m.Runtime, opts)
	if err != nil {
		if errors.Is(err, ErrNoBackground) {
			err = fmt.Errorf("%w (send one as the body's \"background\" member, e.g. {\"dataframe_split\": ..., \"background\": {\"dataframe_split\": ...}}, or log the model with an input example)", err)
		}
		return nil, err
	}
	if bg == nil {
		h.cache.put(key, e)
	}
	return e, nil
}

// SignatureColumns returns the column names of m's MLflow column
// signature, nil when it has none.
func SignatureColumns(m *serving.Model) []string {
	if m.Signature == nil || m.Signature.Inputs == nil || m.Signature.Inputs.IsTensor() {
		return nil
	}
	var names []string
	for _, c := range m.Signature.Inputs.Columns {
		names = append(names, c.Name)
	}
	return names
}

// InputExample decodes m's MLflow input example into model inputs, for a
// background; nil when it has none or it does not decode. The example is
// either a serving body ({"dataframe_split": ...}, from
// serving_input_example.json) or pandas' split or records layout
// (input_example.json).
func InputExample(m *serving.Model) []*tensor.Tensor {
	ex := bytes.TrimSpace(m.InputExample)
	if len(ex) == 0 {
		return nil
	}
	tries := [][]byte{ex}
	switch ex[0] {
	case '{':
		tries = append(tries, append(append([]byte(`{"dataframe_split": `), ex...), '}'))
	case '[':
		tries = append(tries, append(append([]byte(`{"dataframe_records": `), ex...), '}'), append(append([]byte(`{"instances": `), ex...), '}'))
	}
	for _, b := range tries {
		if inv, err := serving.DecodeInvocation(b, "application/json", m); err == nil && rowCount(inv.Inputs) > 0 {
			return inv.Inputs
		}
	}
	return nil
}

// explainerCache keeps the default explainers of the most recently used
// models.
type explainerCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *cacheEntry, most recent first
	byKey map[cacheKey]*list.Element
}

type cacheKey struct {
	model *serving.Model
	opts  requestOptions
}

type cacheEntry struct {
	key cacheKey
	e   *Explainer
}

func newExplainerCache(n int) *explainerCache {
	return &explainerCache{max: n, order: list.New(), byKey: map[cacheKey]*list.Element{}}
}

func (c *explainerCache) get(k cacheKey) (*Explainer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byKey[k]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*cacheEntry).e, true
}

func (c *explainerCache) put(k cacheKey, e *Explainer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[k]; ok {
		el.Value.(*cacheEntry).e = e
		c.order.MoveToFront(el)
		return
	}
	c.byKey[k] = c.order.PushFront(&cacheEntry{key: k, e: e})
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.byKey, last.Value.(*cacheEntry).key)
	}
}
