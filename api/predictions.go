package api

import "net/http"

// Predictions serves the prediction log (package monitor/predlog).
type Predictions interface{}

func (h *Handler) registerPredictions(mux *http.ServeMux) {
	if h.d.Predictions == nil {
		return
	}
}
