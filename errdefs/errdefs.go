// Package errdefs defines the kinds of domain error that Kiln's packages
// return and that each wire layer (MLflow REST, native API, serving) maps to
// its own error format in one place.
//
// A domain error carries a kind (one of the sentinel values below, matched
// with errors.Is) and a human-readable message that is shown to clients as
// is, without the kind prefixed.
package errdefs

import (
	"errors"
	"fmt"
)

// Sentinel kinds. Match with errors.Is.
var (
	ErrNotFound        = errors.New("not found")
	ErrAlreadyExists   = errors.New("already exists")
	ErrInvalidArgument = errors.New("invalid argument")
	ErrInvalidState    = errors.New("invalid state")
	ErrNotImplemented  = errors.New("not implemented")
	ErrPermission      = errors.New("permission denied")
	ErrUnauthenticated = errors.New("unauthenticated")
	ErrTooLarge        = errors.New("too large")
	// ErrRateLimited: the caller made too many requests; retry later.
	ErrRateLimited = errors.New("rate limited")
)

// Error is a domain error: a kind and a message meant for clients.
type Error struct {
	Kind error
	Msg  string
	Err  error // optional underlying cause
}

func (e *Error) Error() string { return e.Msg }

// Is reports whether target is the error's kind.
func (e *Error) Is(target error) bool { return target == e.Kind }

// Unwrap returns the underlying cause, if any.
func (e *Error) Unwrap() error { return e.Err }

func newf(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// NotFound returns an ErrNotFound error with the formatted message.
func NotFound(format string, args ...any) error { return newf(ErrNotFound, format, args...) }

// AlreadyExists returns an ErrAlreadyExists error with the formatted message.
func AlreadyExists(format string, args ...any) error {
	return newf(ErrAlreadyExists, format, args...)
}

// Invalid returns an ErrInvalidArgument error with the formatted message.
func Invalid(format string, args ...any) error { return newf(ErrInvalidArgument, format, args...) }

// InvalidState returns an ErrInvalidState error with the formatted message.
func InvalidState(format string, args ...any) error { return newf(ErrInvalidState, format, args...) }

// NotImplemented returns an ErrNotImplemented error with the formatted message.
func NotImplemented(format string, args ...any) error {
	return newf(ErrNotImplemented, format, args...)
}

// TooLarge returns an ErrTooLarge error with the formatted message.
func TooLarge(format string, args ...any) error { return newf(ErrTooLarge, format, args...) }

// Message returns the client-facing message of err: the message of the
// outermost *Error in its chain, or err.Error() otherwise.
func Message(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Msg
	}
	return err.Error()
}
