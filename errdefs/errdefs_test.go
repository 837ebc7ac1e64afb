package errdefs

import (
	"errors"
	"fmt"
	"testing"
)

func TestKinds(t *testing.T) {
	tests := []struct {
		name string
		err  error
		kind error
		msg  string
	}{
		{"not found", NotFound("Run '%s' not found", "abc"), ErrNotFound, "Run 'abc' not found"},
		{"exists", AlreadyExists("Model 'm' already exists"), ErrAlreadyExists, "Model 'm' already exists"},
		{"invalid wrapped", fmt.Errorf("log batch: %w", Invalid("bad key %q", "x")), ErrInvalidArgument, "bad key \"x\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !errors.Is(tt.err, tt.kind) {
				t.Fatalf("errors.Is(%v, %v) = false", tt.err, tt.kind)
			}
			if errors.Is(tt.err, ErrNotImplemented) {
				t.Fatalf("error matched an unrelated kind")
			}
			if got := Message(tt.err); got != tt.msg {
				t.Fatalf("Message = %q, want %q", got, tt.msg)
			}
		})
	}
	if Message(errors.New("plain")) != "plain" {
		t.Fatal("plain error message changed")
	}
}
