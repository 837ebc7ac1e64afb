// Package tracking stores experiments, runs, metrics, params, tags, dataset
// inputs and logged models, and answers MLflow's searches over them.
package tracking

import "github.com/kiln-ml/kiln/store"

// Options configure a Store.
type Options struct {
	// DefaultArtifactRoot is the root under which new experiments get their
	// artifact location, "<root>/<experiment_id>". Default "mlflow-artifacts:/".
	DefaultArtifactRoot string
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
