package serving

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"google.golang.org/grpc/codes"

	"github.com/kiln-ml/kiln/runtime"
)

// requestError is a request the client must fix: malformed, or not fitting
// the model. Its message names the offending field.
type requestError struct{ msg string }

func (e *requestError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &requestError{msg: fmt.Sprintf(format, args...)}
}

// errTooLarge is a request body over the configured limit.
type tooLargeError struct{ limit int64 }

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("request body is larger than the limit of %d bytes", e.limit)
}

// errKind classifies an error for the protocols' status codes.
type errKind uint8

const (
	kindInternal errKind = iota
	kindBadRequest
	kindNotFound
	kindTooLarge
	kindUnavailable
	kindCanceled
	kindOverloaded
)

func classify(err error) errKind {
	var re *requestError
	var tl *tooLargeError
	switch {
	case errors.As(err, &re), errors.Is(err, runtime.ErrInvalidInput):
		return kindBadRequest
	case errors.Is(err, ErrModelNotFound):
		return kindNotFound
	case errors.As(err, &tl):
		return kindTooLarge
	case errors.Is(err, ErrModelNotReady):
		return kindUnavailable
	case errors.Is(err, ErrOverloaded):
		return kindOverloaded
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return kindCanceled
	}
	return kindInternal
}

func (k errKind) httpStatus() int {
	switch k {
	case kindBadRequest:
		return http.StatusBadRequest
	case kindNotFound:
		return http.StatusNotFound
	case kindTooLarge:
		return http.StatusRequestEntityTooLarge
	case kindUnavailable:
		return http.StatusServiceUnavailable
	case kindCanceled:
		return 499 // client closed the request (nginx's convention)
	case kindOverloaded:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

func (k errKind) grpcCode() codes.Code {
	switch k {
	case kindBadRequest:
		return codes.InvalidArgument
	case kindNotFound:
		return codes.NotFound
	case kindTooLarge:
		return codes.ResourceExhausted
	case kindUnavailable:
		return codes.Unavailable
	case kindCanceled:
		return codes.Canceled
	case kindOverloaded:
		return codes.ResourceExhausted
	}
	return codes.Internal
}
