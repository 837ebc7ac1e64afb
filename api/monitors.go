package api

import "net/http"

// Monitors serves monitors, their results, alert receivers and alerts
// (package monitor).
type Monitors interface{}

func (h *Handler) registerMonitors(mux *http.ServeMux) {
	if h.d.Monitors == nil {
		return
	}
}
