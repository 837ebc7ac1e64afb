package serving

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/kiln-ml/kiln/tensor"
)

// An Observer sees every inference request that reached a model: the
// prediction log, per-route statistics of deployed endpoints and shadow
// mirroring hook in here. Observe runs synchronously, after the model has
// answered (or the request failed) and before the response is written, so
// it must be quick; work that may block belongs on the observer's own
// goroutines.
type Observer interface {
	Observe(ctx context.Context, c *Call)
}

// Call is one inference request as an Observer sees it. Its tensors are
// valid only during Observe: they may alias pooled request buffers, so an
// observer that keeps them copies them (tensor.Tensor.Clone).
type Call struct {
	// Model is the model that served the request.
	Model *Model
	// Protocol is "v2-rest", "v2-grpc" or "mlflow".
	Protocol string
	// ID is the request's id: the OIP "id" the client gave, else its
	// X-Request-Id header (generated when absent, and sent back).
	ID string
	// Inputs are the request's inputs matched to the model's signature;
	// nil when the request failed before they were decoded.
	Inputs []*tensor.Tensor
	// Keys are the entity join keys of a request whose features were
	// filled in (Model.Features) that the model does not take itself,
	// one column each; nil otherwise. The filled-in features are in
	// Inputs.
	Keys []*tensor.Tensor
	// Outputs are the model's outputs; nil on failure.
	Outputs []*tensor.Tensor
	// Err is why the request failed; nil on success.
	Err error
	// Status is the HTTP status of the answer (for gRPC, the HTTP status
	// of the same outcome).
	Status int
	// Start is when the request arrived; Duration how long it took to
	// answer, up to this call.
	Start    time.Time
	Duration time.Duration
}

// ErrOverloaded is returned (wrapped) by an Admitter that sheds a request.
// Protocols answer it as HTTP 429 with a Retry-After header, or gRPC
// ResourceExhausted.
var ErrOverloaded = errors.New("overloaded")

// An Admitter is a Repository that limits the inference requests of its
// models: the server calls Admit before it serves an inference request
// for m, and release once the response is decided. Admit may wait (a
// queue) and returns an error wrapping ErrOverloaded to shed the request;
// the error may implement RetryAfter() time.Duration.
type Admitter interface {
	Admit(ctx context.Context, m *Model) (release func(), err error)
}

// retryAfter is the Retry-After hint of an overload error, in whole
// seconds (at least 1).
func retryAfter(err error) string {
	var ra interface{ RetryAfter() time.Duration }
	secs := int64(1)
	if errors.As(err, &ra) {
		if d := ra.RetryAfter(); d > time.Second {
			secs = int64((d + time.Second - 1) / time.Second)
		}
	}
	return itoa(secs)
}

func itoa(n int64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			break
		}
	}
	return string(b[i:])
}

type headerKey struct{}

// RequestIDHeader is the header that carries an inference request's id
// when the protocol's body has none (MLflow /invocations), and that
// answers it: with an Observer set, every HTTP inference response carries
// it, the client's own or one generated for the request, so that ground
// truth can be joined to the prediction later (package monitor).
const RequestIDHeader = "X-Request-Id"

// withHeader makes an HTTP request's headers visible to RequestHeader and,
// when an observer will see the request, makes sure it has a request id
// and echoes it in the response.
func (s *Server) withHeader(ctx context.Context, w http.ResponseWriter, r *http.Request) context.Context {
	if s.opts.Observer != nil {
		id := r.Header.Get(RequestIDHeader)
		if id == "" || len(id) > 128 {
			id = NewRequestID()
			r.Header.Set(RequestIDHeader, id)
		}
		w.Header().Set(RequestIDHeader, id)
	}
	return context.WithValue(ctx, headerKey{}, r.Header)
}

// NewRequestID returns a random request id: 16 lower-case hex digits.
func NewRequestID() string {
	var b [8]byte
	crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// RequestHeader returns a header of the inference request whose context
// ctx is (an HTTP header, or gRPC metadata, matched case-insensitively),
// or "" — for repositories that route by a request key, such as sticky
// A/B assignment.
func RequestHeader(ctx context.Context, name string) string {
	if h, ok := ctx.Value(headerKey{}).(http.Header); ok {
		return h.Get(name)
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(strings.ToLower(name)); len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// admit asks an Admitter repository to let a request for st in.
func (s *Server) admit(ctx context.Context, st *modelState) (func(), error) {
	if s.admitter == nil {
		return nopRelease, nil
	}
	return s.admitter.Admit(ctx, st.m)
}

func nopRelease() {}

// observe reports a call to the observer, if there is one.
func (s *Server) observe(ctx context.Context, st *modelState, p protocol, id string, start time.Time, inputs, keys, outputs []*tensor.Tensor, err error, status int) {
	if s.opts.Observer == nil {
		return
	}
	if id == "" {
		// The OIP body had no id: the header's (HTTP: always set, see
		// withHeader), or the gRPC metadata's, or a new one sent back in
		// the response headers.
		if id = RequestHeader(ctx, RequestIDHeader); id == "" && p == protoGRPC {
			id = NewRequestID()
			grpc.SetHeader(ctx, metadata.Pairs("x-request-id", id))
		}
	}
	s.opts.Observer.Observe(ctx, &Call{
		Model: st.m, Protocol: protocolNames[p], ID: id,
		Inputs: inputs, Keys: keys, Outputs: outputs, Err: err, Status: status,
		Start: start, Duration: time.Since(start),
	})
}
