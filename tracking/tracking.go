// Package tracking stores experiments, runs, metrics, params, tags, dataset
// inputs and logged models, and answers MLflow's searches over them.
package tracking

import (
	"context"

	"github.com/kiln-ml/kiln/store"
)

// Options configure a Store.
type Options struct {
	// DefaultArtifactRoot is the root under which new experiments get their
	// artifact location, "<root>/<experiment_id>". Default "mlflow-artifacts:/".
	DefaultArtifactRoot string
	// InputsLogged, if set, is called after LogInputs has committed, with
	// the run and the dataset inputs it logged: the hook through which the
	// server links runs to dataset versions without this package knowing
	// about them. It runs before LogInputs returns and cannot fail it; it
	// handles (logs) its own errors.
	InputsLogged func(ctx context.Context, runID string, inputs []DatasetInput)
}

// Store is the tracking store.
type Store struct {
	db   *store.DB
	opts Options
}

// New returns a tracking store on db.
func New(db *store.DB, opts Options) *Store {
	if opts.DefaultArtifactRoot == "" {
		opts.DefaultArtifactRoot = "mlflow-artifacts:/"
	}
	return &Store{db: db, opts: opts}
}
