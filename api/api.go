// Package api serves Kiln's own REST API under /api/v1: JSON endpoints
// over the dataset store (datasets, versions, diffs, profiles,
// validations, splits, lineage) and the content store that the HTTP
// Remote of package api/client pushes to and pulls from. The routes are
// described by the OpenAPI 3 document openapi.yaml, which a test keeps in
// step with Register.
//
// Like every wire layer it translates and holds no business rules: the
// domain packages decide, and their errdefs kinds are mapped to HTTP
// statuses and the error body
//
//	{"error": {"code": "NOT_FOUND", "message": "Dataset 'x' does not exist"}}
//
// in one place (writeError).
package api

import (
	_ "embed"
	"github.com/kiln-ml/kiln/approval"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"

	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/tracking"
)

// OpenAPI is the OpenAPI 3 document of the routes, served at
// /api/v1/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte

// Prefix is the path prefix of every route.
const Prefix = "/api/v1"

// Defaults of Deps.
const (
	DefaultMaxManifestBytes = 256 << 20
	DefaultMaxJSONBytes     = 1 << 20
	DefaultMaxSuiteBytes    = 8 << 20
	// MaxMissingBatch bounds the digests of one existence check.
	MaxMissingBatch = 10000
	// MaxDiffTables bounds the table files whose rows and schemas one diff
	// reads.
	MaxDiffTables = 20
)

// DefaultSourceSchemes are the URL schemes of sources that the server
// reads itself when a version is created from a URL. Local paths and
// file:// URLs are not among them: the server never versions its own
// file system on a client's behalf.
var DefaultSourceSchemes = []string{"s3", "gs", "azblob"}

// Deps are what the API serves.
type Deps struct {
	Datasets *dataset.Store
	// Content is where dataset objects and manifests live, normally a
	// dataset.BucketRemote on the artifact store.
	Content dataset.Remote
	// Tracking, if set, lets /runs/{run_id}/datasets tell an unknown run
	// from a run without inputs.
	Tracking *tracking.Store
	// SourceOptions open the buckets of server-read sources (s3://…).
	SourceOptions blob.Options
	// SourceSchemes are the URL schemes a version may be created from on
	// the server (DefaultSourceSchemes when nil; empty to allow none).
	SourceSchemes []string
	// TempDir holds table files while they are profiled, validated, split
	// or compared (os.TempDir() when empty).
	TempDir string
	// MaxManifestBytes bounds an uploaded manifest
	// (DefaultMaxManifestBytes when 0).
	MaxManifestBytes int64
	// ScoreJobs, if set, serves /score-jobs (a *score.Jobs).
	ScoreJobs ScoreJobs
	// Endpoints, if set, serves /endpoints (a *deploy.Manager).
	Endpoints Endpoints
	// Gates, if set, serves /gate-policies and gate results (a
	// *gate.Service).
	Gates Gates
	// Predictions, if set, serves the prediction log
	// (/endpoints/{endpoint}/predictions…; api/predictions.go).
	Predictions Predictions
	// Feedback, if set, serves ground-truth labels and performance
	// (/endpoints/{endpoint}/feedback, …/performance; api/feedback.go).
	Feedback Feedback
	// Monitors, if set, serves /monitors, /alert-receivers and alerts
	// (api/monitors.go).
	Monitors Monitors
	// Pipelines, if set, serves /pipelines and /pipeline-runs; Triggers,
	// their schedules' and triggers' states and webhooks (api/pipelines.go).
	Pipelines Pipelines
	Triggers  Triggers
	// Access, if set, serves login, users, tokens, workspaces, grants and
	// the audit log (api/access.go).
	Access *Access
	// Approvals, if set, serves /approval-policies and
	// /approval-requests (api/approvals.go).
	Approvals *approval.Service
	// Lineage, if set, serves the lineage graph (GET /lineage; a
	// *lineage.Stores).
	Lineage LineageGraph
	// ModelCards, if set, serves model cards (a *lineage.Cards;
	// api/modelcard.go).
	ModelCards ModelCards
	// Registry, if set, copies model versions between workspaces
	// (api/modelcopy.go; a *registry.Store).
	Registry ModelRegistry
	// TrainingSets, if set, builds point-in-time correct training sets
	// (POST /training-sets; a *feature.Service; api/training_sets.go).
	TrainingSets TrainingSets
	// Features, if set, serves entities, feature views, materialization
	// and online lookups (a *feature.Service; api/features.go).
	Features Features
	Logger   *slog.Logger
}

// Handler serves the API.
type Handler struct {
	d      Deps
	log    *slog.Logger
	routes []string
}

// New returns a Handler over deps.
func New(deps Deps) *Handler {
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	if deps.SourceSchemes == nil {
		deps.SourceSchemes = DefaultSourceSchemes
	}
	if deps.TempDir == "" {
		deps.TempDir = os.TempDir()
	}
	if deps.MaxManifestBytes <= 0 {
		deps.MaxManifestBytes = DefaultMaxManifestBytes
	}
	return &Handler{d: deps, log: deps.Logger}
}

// handlerFunc handles one route: it writes a successful response itself
// or returns an error, which writeError maps.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// Register adds the routes to mux, and a catch-all that answers unknown
// paths under /api/v1/ in the API's error format.
func (h *Handler) Register(mux Mux) {
	h.registerDatasets(mux)
	h.registerContent(mux)
	h.registerTables(mux)
	h.registerLineage(mux)
	h.registerScoreJobs(mux)
	h.registerEndpoints(mux)
	h.registerGates(mux)
	h.registerPredictions(mux)
	h.registerFeedback(mux)
	h.registerMonitors(mux)
	h.registerPipelines(mux)
	h.registerAccess(mux)
	h.registerApprovals(mux)
	h.registerModelCards(mux)
	h.registerModelCopy(mux)
	h.registerTrainingSets(mux)
	h.registerFeatures(mux)
	h.handle(mux, "GET", "/openapi.yaml", func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("Content-Type", "application/yaml")
		w.Write(OpenAPI)
		return nil
	})
	mux.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, h.log, notFoundRoute(r))
	})
}

// handle registers fn for "METHOD /path" (path relative to Prefix).
func (h *Handler) handle(mux Mux, method, path string, fn handlerFunc) {
	pattern := method + " " + Prefix + path
	h.routes = append(h.routes, pattern)
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			writeError(w, r, h.log, err)
		}
	})
}

// Routes returns the registered routes as "METHOD /api/v1/path" patterns,
// sorted (after Register).
func (h *Handler) Routes() []string {
	out := slices.Clone(h.routes)
	slices.Sort(out)
	return out
}

func (h *Handler) sourceAllowed(uri string) bool {
	scheme, _, ok := strings.Cut(uri, "://")
	if !ok {
		return false
	}
	return slices.Contains(h.d.SourceSchemes, strings.ToLower(scheme))
}

// Mux is where Register adds routes: an *http.ServeMux, or a wrapper that
// also records the patterns (the server's route table, which access
// control checks every route of).
type Mux interface {
	Handle(pattern string, handler http.Handler)
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}
