package errdefs

import (
	"strconv"
	"strings"
)

// FieldError is one problem of a document: the field's path
// ("spec.steps[1].retry.limit"), what is wrong with it, and the line of the
// document where the field is, when known.
type FieldError struct {
	Path string `json:"path"`
	Msg  string `json:"message"`
	Line int    `json:"line,omitempty"`
}

func (e FieldError) Error() string {
	s := e.Msg
	if e.Path != "" {
		s = e.Path + ": " + e.Msg
	}
	if e.Line > 0 {
		s += " (line " + strconv.Itoa(e.Line) + ")"
	}
	return s
}

// FieldErrors are the problems of a document, in document order. They
// travel wrapped in an invalid-argument error (InvalidFields); get them
// back with errors.As.
type FieldErrors []FieldError

func (es FieldErrors) Error() string {
	parts := make([]string, len(es))
	for i, e := range es {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// InvalidFields is the invalid-argument error of a document ("Invalid
// pipeline: spec.steps[0].name: is empty") that wraps its field errors.
func InvalidFields(what string, es FieldErrors) error {
	return &Error{Kind: ErrInvalidArgument, Msg: "Invalid " + what + ": " + es.Error(), Err: es}
}
