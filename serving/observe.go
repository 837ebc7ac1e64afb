package serving

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

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
	// ID is the request id the client gave (the OIP "id"), if any.
	ID string
	// Inputs are the request's inputs matched to the model's signature;
	// nil when the request failed before they were decoded.
	Inputs []*tensor.Tensor
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

// withHeader makes an HTTP request's headers visible to RequestHeader.
func withHeader(ctx context.Context, h http.Header) context.Context {
	return context.WithValue(ctx, headerKey{}, h)
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
func (s *Server) observe(ctx context.Context, st *modelState, p protocol, id string, start time.Time, inputs, outputs []*tensor.Tensor, err error, status int) {
	if s.opts.Observer == nil {
		return
	}
	s.opts.Observer.Observe(ctx, &Call{
		Model: st.m, Protocol: protocolNames[p], ID: id,
		Inputs: inputs, Outputs: outputs, Err: err, Status: status,
		Start: start, Duration: time.Since(start),
	})
}
