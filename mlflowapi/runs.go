package mlflowapi

import "net/http"

// registerRuns registers the run, metric, param, tag and input RPCs. (Being written.)
func (h *Handler) registerRuns(mux *http.ServeMux) {}
