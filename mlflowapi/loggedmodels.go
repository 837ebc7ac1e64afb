package mlflowapi

import "net/http"

// registerLoggedModels registers the MLflow 3 logged-model RPCs. (Being written.)
func (h *Handler) registerLoggedModels(mux *http.ServeMux) {}
