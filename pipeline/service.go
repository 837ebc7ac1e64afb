package pipeline

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/store"
	"github.com/kiln-ml/kiln/tracking"
)

// ServiceOptions configure a Service.
type ServiceOptions struct {
	DB        *store.DB
	Tracking  *tracking.Store
	Artifacts *blob.Bucket
	// Datasets resolves dataset inputs ("name@latest" to a version at run
	// start) and gives their digests for the cache key.
	Datasets *dataset.Store
	// Stager is handed to nothing here; executors get their own. It is
	// used for NewBucketStager's default.
	Stager Stager
	// Executors by name ("local", "kubernetes"); a step whose executor is
	// missing fails with a clear error.
	Executors map[string]Executor
	// Owner is the lease owner id (default host/pid/random).
	Owner string
	// ExternalURL is given to steps as KILN_URL and MLFLOW_TRACKING_URI.
	ExternalURL string
	// LeaseTTL is how long a step stays leased without renewal (30s);
	// leases are renewed every TTL/3 while an attempt runs.
	LeaseTTL time.Duration
	// Poll is how often the loop looks for work other servers made ready
	// (250ms); work of this server wakes it at once.
	Poll       time.Duration
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// Service stores pipelines and runs them.
type Service struct {
	o ServiceOptions
}

// NewService returns a Service; call Run to execute runs.
func NewService(o ServiceOptions) (*Service, error) {
	return &Service{o: o}, nil
}

var errNotYet = errdefs.NotImplemented("pipelines are not implemented yet")

// Run executes steps until ctx ends.
func (s *Service) Run(ctx context.Context) error { <-ctx.Done(); return nil }

// Put creates or replaces a pipeline.
func (s *Service) Put(ctx context.Context, p *Pipeline, actor string) (sp *StoredPipeline, created, changed bool, err error) {
	return nil, false, false, errNotYet
}

// Get returns a pipeline.
func (s *Service) Get(ctx context.Context, name string) (*StoredPipeline, error) {
	return nil, errNotYet
}

// List returns the pipelines by name.
func (s *Service) List(ctx context.Context) ([]*StoredPipeline, error) { return nil, errNotYet }

// Delete removes a pipeline and cancels its active runs.
func (s *Service) Delete(ctx context.Context, name string) error { return errNotYet }

// StartRun starts a run.
func (s *Service) StartRun(ctx context.Context, req RunRequest) (*Run, bool, error) {
	return nil, false, errNotYet
}

// GetRun returns a run with its steps and spec.
func (s *Service) GetRun(ctx context.Context, id string) (*Run, error) { return nil, errNotYet }

// ListRuns returns runs, newest first.
func (s *Service) ListRuns(ctx context.Context, q RunQuery) ([]*Run, string, error) {
	return nil, "", errNotYet
}

// CancelRun cancels a run.
func (s *Service) CancelRun(ctx context.Context, id, actor, reason string) (*Run, error) {
	return nil, errNotYet
}

// Logs returns a step attempt's log chunks after afterSeq.
func (s *Service) Logs(ctx context.Context, runID, step string, attempt int, afterSeq int64, limit int) ([]LogChunk, error) {
	return nil, errNotYet
}
