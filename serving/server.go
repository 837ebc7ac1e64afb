// Package serving is Kiln's inference server: it answers the Open Inference
// Protocol (KServe V2) over HTTP/REST, with the binary tensor data and
// model repository extensions, and over gRPC (GRPCInferenceService), and
// MLflow's scoring protocol (/invocations, /ping, /health, /version), for
// the models of a Repository.
//
// A Server holds no globals: `kiln serve` builds one over a single model
// (NewStatic), and `kiln server` can build one over its deployed endpoints.
//
//	repo, _ := serving.NewStatic(&serving.Model{Name: "iris", Runtime: m})
//	srv, _ := serving.New(repo, logger, prometheus.NewRegistry(), serving.Options{})
//	http.ListenAndServe(addr, srv.Handler())
//
// Every request is validated against the model's runtime signature (input
// names, datatypes, ranks, fixed dimensions) and, for /invocations, against
// the MLflow signature; bad input gets a 400 naming the field, in each
// protocol's own error format. Adaptive batching (off by default) joins
// concurrent requests to one model into one prediction.
package serving

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// DefaultMaxBodySize is the request body limit when Options leaves it 0.
const DefaultMaxBodySize = 64 << 20

// Options configure a Server. The zero value is usable.
type Options struct {
	// MaxBodySize limits request bodies (and gRPC messages) in bytes; 0
	// means DefaultMaxBodySize.
	MaxBodySize int64
	// MaxBatchSize is the most rows adaptive batching joins into one
	// prediction; 0 or 1 turns batching off.
	MaxBatchSize int
	// MaxBatchDelay is the longest a request waits for others to join its
	// batch. Batching is on only when MaxBatchSize > 1 and MaxBatchDelay > 0.
	MaxBatchDelay time.Duration
	// ServerName and ServerVersion are reported by the server metadata
	// endpoints ("kiln" and "dev" by default).
	ServerName, ServerVersion string
	// InvocationsModel is the model that /invocations scores; empty means
	// the repository's only model.
	InvocationsModel string
	// MLflowVersion is what /version answers (as `mlflow models serve`
	// answers its MLflow version); default "3.6.0".
	MLflowVersion string
	// NoMetricsEndpoint leaves /metrics out of Handler, for embedding in a
	// process that serves its own.
	NoMetricsEndpoint bool
	// Observer, if set, sees every inference request that reached a
	// model (see Observer).
	Observer Observer
}

// Server answers inference requests for the models of a Repository.
type Server struct {
	repo     Repository
	log      *slog.Logger
	opts     Options
	metrics  *metrics
	gatherer prometheus.Gatherer
	states   sync.Map // *Model → *modelState
	handler  http.Handler
	unknown  *modelMetrics // requests for models that do not exist
	admitter Admitter      // the repository, when it limits requests
}

// New returns a Server over repo. Metrics are registered with reg (which
// may be nil); when reg is also a prometheus.Gatherer (a
// *prometheus.Registry is), Handler serves it on /metrics.
func New(repo Repository, log *slog.Logger, reg prometheus.Registerer, opts Options) (*Server, error) {
	if repo == nil {
		return nil, errors.New("serving: nil repository")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBodySize <= 0 {
		opts.MaxBodySize = DefaultMaxBodySize
	}
	if opts.ServerName == "" {
		opts.ServerName = "kiln"
	}
	if opts.ServerVersion == "" {
		opts.ServerVersion = "dev"
	}
	if opts.MLflowVersion == "" {
		opts.MLflowVersion = "3.6.0"
	}
	if opts.MaxBatchSize < 0 || opts.MaxBatchDelay < 0 {
		return nil, errors.New("serving: negative batch size or delay")
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("serving: register metrics: %w", err)
	}
	s := &Server{repo: repo, log: log, opts: opts, metrics: m}
	if g, ok := reg.(prometheus.Gatherer); ok && !opts.NoMetricsEndpoint {
		s.gatherer = g
	}
	s.unknown = m.forUnknown()
	s.admitter, _ = repo.(Admitter)
	s.handler = s.routes()
	return s, nil
}

// Handler returns the HTTP handler: the Open Inference Protocol under
// /v2, MLflow's scoring protocol (/invocations, /ping, /health, /version)
// and /metrics.
func (s *Server) Handler() http.Handler { return s.handler }

// Release drops the server's state for m (its batcher, its precomputed
// metadata); a Repository calls it after unloading a model.
func (s *Server) Release(m *Model) { s.states.Delete(m) }

// batching reports whether adaptive batching is on.
func (s *Server) batching() bool { return s.opts.MaxBatchSize > 1 && s.opts.MaxBatchDelay > 0 }

// modelState is what the server precomputes for one model.
type modelState struct {
	m        *Model
	sig      runtime.Signature
	inputIdx map[string]int
	outIdx   map[string]int
	metadata []byte // the V2 model metadata JSON response
	mm       *modelMetrics
	batcher  *batcher
	plan     *framePlan // how /invocations maps columns to inputs
}

func (s *Server) state(m *Model) *modelState {
	if st, ok := s.states.Load(m); ok {
		return st.(*modelState)
	}
	sig := m.Runtime.Signature()
	st := &modelState{
		m:        m,
		sig:      sig,
		inputIdx: make(map[string]int, len(sig.Inputs)),
		outIdx:   make(map[string]int, len(sig.Outputs)),
		mm:       s.metrics.forModel(m.Name),
	}
	for i, in := range sig.Inputs {
		st.inputIdx[in.Name] = i
	}
	for i, out := range sig.Outputs {
		st.outIdx[out.Name] = i
	}
	st.metadata = appendModelMetadata(nil, m, sig)
	st.plan = newFramePlan(m, sig)
	if s.batching() {
		st.batcher = newBatcher(m.Runtime, s.opts.MaxBatchSize, s.opts.MaxBatchDelay, st.mm.batch)
	}
	actual, _ := s.states.LoadOrStore(m, st)
	return actual.(*modelState)
}

// lookup finds a model and its state.
func (s *Server) lookup(ctx context.Context, name, version string) (*modelState, error) {
	m, err := s.repo.Model(ctx, name, version)
	if err != nil {
		return nil, err
	}
	return s.state(m), nil
}

// predict runs the model on inputs already matched to its signature.
func (s *Server) predict(ctx context.Context, st *modelState, inputs []*tensor.Tensor) ([]*tensor.Tensor, error) {
	var outs []*tensor.Tensor
	var err error
	if st.batcher != nil {
		outs, err = st.batcher.predict(ctx, inputs)
	} else {
		if len(inputs) > 0 && len(inputs[0].Shape) > 0 {
			st.mm.batch.Observe(float64(inputs[0].Shape[0]))
		}
		outs, err = st.m.Runtime.Predict(ctx, inputs)
	}
	if err != nil {
		if errors.Is(err, runtime.ErrInvalidInput) || ctx.Err() != nil {
			return nil, err
		}
		return nil, fmt.Errorf("model %q failed to predict: %w", st.m.Name, err)
	}
	for i, o := range outs {
		if err := o.Validate(); err != nil {
			return nil, fmt.Errorf("model %q returned a malformed output %d: %w", st.m.Name, i, err)
		}
		if o.Name == "" && i < len(st.sig.Outputs) {
			o.Name = st.sig.Outputs[i].Name
		}
	}
	return outs, nil
}

// matchInputs orders inputs by the model's signature, checking names,
// datatypes, ranks and fixed dimensions. Errors name the input.
func (st *modelState) matchInputs(inputs []*tensor.Tensor) ([]*tensor.Tensor, error) {
	sig := st.sig
	if len(sig.Inputs) == 0 {
		return inputs, nil
	}
	out := make([]*tensor.Tensor, len(sig.Inputs))
	for i, in := range inputs {
		j, ok := st.inputIdx[in.Name]
		if !ok {
			if len(sig.Inputs) == 1 && len(inputs) == 1 && sig.Inputs[0].Name == "" {
				j = 0
			} else if i < len(sig.Inputs) && sig.Inputs[i].Name == "" {
				j = i
			} else {
				return nil, badRequest("unexpected input %q: model %q takes %s", in.Name, st.m.Name, specList(sig.Inputs))
			}
		}
		if out[j] != nil {
			return nil, badRequest("input %q given twice", in.Name)
		}
		spec := &sig.Inputs[j]
		if spec.DType != tensor.Invalid && in.DType != spec.DType {
			return nil, badRequest("input %q has datatype %v, model %q expects %v", in.Name, in.DType, st.m.Name, spec.DType)
		}
		if spec.Shape != nil {
			ok := len(spec.Shape) == len(in.Shape)
			for k := 0; ok && k < len(spec.Shape); k++ {
				ok = spec.Shape[k] < 0 || spec.Shape[k] == in.Shape[k]
			}
			if !ok {
				return nil, badRequest("input %q has shape %v, model %q expects %v", in.Name, in.Shape, st.m.Name, spec.Shape)
			}
		}
		out[j] = in
	}
	for j, t := range out {
		if t == nil {
			return nil, badRequest("missing input %q: model %q takes %s", sig.Inputs[j].Name, st.m.Name, specList(sig.Inputs))
		}
	}
	return out, nil
}

func specList(specs []runtime.TensorSpec) string {
	b := make([]byte, 0, 64)
	for i, s := range specs {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = fmt.Appendf(b, "%q %v %v", s.Name, s.DType, s.Shape)
	}
	return string(b)
}

// bodyPool recycles request body buffers.
var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// readBody reads r's body, within the server's limit, into a pooled
// buffer; release it with putBody.
func (s *Server) readBody(r *http.Request) (*[]byte, error) {
	limit := s.opts.MaxBodySize
	if r.ContentLength > limit {
		return nil, &tooLargeError{limit: limit}
	}
	bp := bodyPool.Get().(*[]byte)
	b := (*bp)[:0]
	if r.ContentLength > 0 && int64(cap(b)) < r.ContentLength {
		b = make([]byte, 0, r.ContentLength+1) // +1: room to see EOF without growing
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Body.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if int64(len(b)) > limit {
			*bp = b[:0]
			putBody(bp)
			return nil, &tooLargeError{limit: limit}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			*bp = b[:0]
			putBody(bp)
			return nil, badRequest("reading the request body: %v", err)
		}
	}
	*bp = b
	return bp, nil
}

func putBody(bp *[]byte) {
	if cap(*bp) > 1<<20 { // let big buffers go
		return
	}
	*bp = (*bp)[:0]
	bodyPool.Put(bp)
}

// respPool recycles response buffers.
var respPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func putResp(bp *[]byte) {
	if cap(*bp) > 1<<20 {
		return
	}
	*bp = (*bp)[:0]
	respPool.Put(bp)
}

// recoverPanic turns a panic in a handler into a 500 in the protocol's
// error format, logged with its stack, never shown to the client.
func (s *Server) recoverPanic(w http.ResponseWriter, r *http.Request, writeErr func(http.ResponseWriter, int, string)) {
	p := recover()
	if p == nil {
		return
	}
	if p == http.ErrAbortHandler {
		panic(p)
	}
	s.log.Error("panic serving inference request", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(p))
	writeErr(w, http.StatusInternalServerError, "internal error")
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	s.registerV2(mux)
	s.registerMLflow(mux)
	if s.gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{}))
	}
	return &router{s: s, mux: mux}
}
