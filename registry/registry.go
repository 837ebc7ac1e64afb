// Package registry stores registered models, model versions, their tags,
// aliases and stages.
package registry

import (
	"context"

	"github.com/kiln-ml/kiln/store"
)

// ModelSource resolves the sources of new model versions: logged models
// (models:/<model_id>) and runs (runs:/<run_id>/path). tracking.Store
// implements it.
type ModelSource interface {
	LoggedModelLocation(ctx context.Context, modelID string) (artifactURI, sourceRunID string, err error)
	RunArtifactURI(ctx context.Context, runID string) (string, error)
	SetLoggedModelTag(ctx context.Context, modelID, key, value string) error
}

// Store is the model registry.
type Store struct {
	db      *store.DB
	sources ModelSource
}

// New returns a registry on db that resolves sources through sources.
func New(db *store.DB, sources ModelSource) *Store {
	return &Store{db: db, sources: sources}
}
