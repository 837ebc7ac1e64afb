package api

import "net/http"

// Feedback serves ground-truth labels and performance (package
// monitor/feedback).
type Feedback interface{}

func (h *Handler) registerFeedback(mux *http.ServeMux) {
	if h.d.Feedback == nil {
		return
	}
}
