package mlflowapi

import (
	"log/slog"
	"net/http"

	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/registry"
	"github.com/kiln-ml/kiln/tracking"
)

// CompatVersion is the MLflow version reported on /version. The MLflow
// client gates features on the server's version, so it must be a 3.x
// version whose features Kiln implements.
const CompatVersion = "3.6.0"

// Deps are what the MLflow API serves.
type Deps struct {
	Tracking  *tracking.Store
	Registry  *registry.Store
	Artifacts *blob.Bucket
	Logger    *slog.Logger
}

// Handler serves the MLflow REST API.
type Handler struct {
	tracking  *tracking.Store
	registry  *registry.Store
	artifacts *blob.Bucket
	log       *slog.Logger
}

// New returns a Handler over deps.
func New(deps Deps) *Handler {
	log := deps.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Handler{tracking: deps.Tracking, registry: deps.Registry, artifacts: deps.Artifacts, log: log}
}

// rpcFunc handles one MLflow RPC: it decodes its request from r and returns
// the response message (encoded as JSON) or an error (mapped by writeError).
type rpcFunc func(r *http.Request) (any, error)

// Register adds the MLflow routes to mux: every RPC under /api/2.0 and
// /ajax-api/2.0, the mlflow-artifacts proxy, /health and /version.
func (h *Handler) Register(mux Mux) {
	h.registerExperiments(mux)
	h.registerRuns(mux)
	h.registerLoggedModels(mux)
	h.registerRegistry(mux)
	h.registerArtifacts(mux)

	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("OK"))
	})
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte(CompatVersion))
	})
	mux.HandleFunc("GET /api/2.0/mlflow/server-features", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"workspaces_enabled": false})
	})
	// Unknown API routes answer in MLflow's error format.
	notFound := func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{
			"error_code": codeEndpointNotFound,
			"message":    "No API endpoint " + r.Method + " " + r.URL.Path,
		})
	}
	mux.HandleFunc("/api/", notFound)
	mux.HandleFunc("/ajax-api/", notFound)
}

// rpc registers fn for method and path (e.g. "/mlflow/runs/create") under
// both /api/2.0 and /ajax-api/2.0.
func (h *Handler) rpc(mux Mux, method, path string, fn rpcFunc) {
	handler := func(w http.ResponseWriter, r *http.Request) {
		resp, err := fn(r)
		if err != nil {
			writeError(w, r, h.log, err)
			return
		}
		if resp == nil {
			resp = struct{}{}
		}
		writeJSON(w, http.StatusOK, resp)
	}
	for _, prefix := range []string{"/api/2.0", "/ajax-api/2.0"} {
		mux.HandleFunc(method+" "+prefix+path, handler)
	}
}

// Mux is where Register adds routes: an *http.ServeMux, or a wrapper that
// also records the patterns (the server's route table, which access
// control checks every route of).
type Mux interface {
	Handle(pattern string, handler http.Handler)
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}
