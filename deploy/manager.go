package deploy

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/model"
	"github.com/kiln-ml/kiln/registry"
	"github.com/kiln-ml/kiln/serving"
	"github.com/kiln-ml/kiln/store"
)

// ManagerOptions configure a Manager. The zero value is usable.
type ManagerOptions struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// MemoryBudget bounds the estimated memory of loaded models, in
	// bytes; 0 means 2 GiB.
	MemoryBudget int64
	// CacheDir is where resolved model files are kept on disk (the
	// resolver's cache; informational here).
	CacheDir string
	// Guard, if set, must allow a model version before it gets traffic.
	Guard RouteGuard
	// Quality, if set, provides labelled quality metrics for the rollout
	// analysis' quality bound.
	Quality QualitySource
	// Tick is the controller period; 0 means 1s.
	Tick time.Duration
}

// Manager stores endpoints, serves them and drives their rollouts. It
// implements serving.Repository, serving.Admitter and serving.Observer.
type Manager struct {
	db       *store.DB
	reg      *registry.Store
	resolver model.Resolver
	opts     ManagerOptions
}

// NewManager returns a Manager over the endpoints stored in db.
func NewManager(db *store.DB, reg *registry.Store, resolver model.Resolver, opts ManagerOptions) (*Manager, error) {
	return &Manager{db: db, reg: reg, resolver: resolver, opts: opts}, nil
}

var errTODO = errdefs.NotImplemented("deploy: not implemented yet")

// Run loads the stored endpoints and runs the rollout controller until
// ctx ends.
func (m *Manager) Run(ctx context.Context) error { <-ctx.Done(); return nil }

// Apply stores e as the desired state of its endpoint and converges to it.
func (m *Manager) Apply(ctx context.Context, e *Endpoint, actor, reason string) (*ApplyResult, error) {
	return nil, errTODO
}

// Get returns an endpoint.
func (m *Manager) Get(ctx context.Context, name string) (*State, error) { return nil, errTODO }

// List returns all endpoints, by name.
func (m *Manager) List(ctx context.Context) ([]*State, error) { return nil, errTODO }

// Delete removes an endpoint.
func (m *Manager) Delete(ctx context.Context, name, actor, reason string) error { return errTODO }

// Promote gives the candidate all traffic now.
func (m *Manager) Promote(ctx context.Context, name, actor, reason string) (*State, error) {
	return nil, errTODO
}

// Pause holds a progressing rollout at its step.
func (m *Manager) Pause(ctx context.Context, name, actor, reason string) (*State, error) {
	return nil, errTODO
}

// Resume continues a paused rollout, or retries a rolled back one.
func (m *Manager) Resume(ctx context.Context, name, actor, reason string) (*State, error) {
	return nil, errTODO
}

// Rollback puts all traffic back on the stable (previous) version at once.
func (m *Manager) Rollback(ctx context.Context, name, actor, reason string) (*State, error) {
	return nil, errTODO
}

// Events returns an endpoint's events, newest first.
func (m *Manager) Events(ctx context.Context, name string, limit int) ([]Event, error) {
	return nil, errTODO
}

// Stats returns the live figures of an endpoint.
func (m *Manager) Stats(name string) ([]RouteStats, error) { return nil, errTODO }

// Lookup returns the model of the endpoint's primary route.
func (m *Manager) Lookup(ctx context.Context, endpoint string) (*serving.Model, error) {
	return nil, errTODO
}

// Model implements serving.Repository.
func (m *Manager) Model(ctx context.Context, name, version string) (*serving.Model, error) {
	return nil, serving.ErrModelNotFound
}

// Models implements serving.Repository.
func (m *Manager) Models(ctx context.Context) []serving.ModelInfo { return nil }

// Admit implements serving.Admitter.
func (m *Manager) Admit(ctx context.Context, sm *serving.Model) (func(), error) {
	return func() {}, nil
}

// Observe implements serving.Observer.
func (m *Manager) Observe(ctx context.Context, c *serving.Call) {}

var (
	_ serving.Repository = (*Manager)(nil)
	_ serving.Admitter   = (*Manager)(nil)
	_ serving.Observer   = (*Manager)(nil)
)
