package mlflowapi

import "net/http"

// registerArtifacts registers the mlflow-artifacts proxy and artifact listing. (Being written.)
func (h *Handler) registerArtifacts(mux *http.ServeMux) {}
