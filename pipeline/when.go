package pipeline

import "github.com/kiln-ml/kiln/errdefs"

// EvalWhen expands the templates of expr and evaluates it.
func EvalWhen(expr string, sc *Scope) (bool, error) {
	return false, errdefs.NotImplemented("EvalWhen is not implemented yet")
}

// CheckWhen checks the syntax of expr.
func CheckWhen(expr string) error { return nil }
