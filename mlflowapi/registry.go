package mlflowapi

import "net/http"

// registerRegistry registers the model registry RPCs. (Being written.)
func (h *Handler) registerRegistry(mux *http.ServeMux) {}
