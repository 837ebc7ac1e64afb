package pipeline

import "github.com/kiln-ml/kiln/errdefs"

// ResolveParameters checks the given parameters and fills in defaults.
func (s *Spec) ResolveParameters(given map[string]string) (map[string]string, error) {
	return nil, errdefs.NotImplemented("ResolveParameters is not implemented yet")
}
