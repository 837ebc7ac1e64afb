package mlflowapi

import "net/http"

// registerExperiments registers the experiment RPCs. (Being written.)
func (h *Handler) registerExperiments(mux *http.ServeMux) {}
