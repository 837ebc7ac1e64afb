package server

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/config"
	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/feature"
	"github.com/kiln-ml/kiln/feature/online"
	"github.com/kiln-ml/kiln/store"
)

// newFeatures builds the feature store: definitions and materializations
// in the metadata database, sources read from datasets in the artifact
// store (or paths), and the online store that --online-store names
// (embedded in the metadata database by default, or Redis).
func newFeatures(ctx context.Context, cfg config.Config, db *store.DB, datasets *dataset.Store, content dataset.Remote, opts blob.Options, log *slog.Logger) (*feature.Service, error) {
	st, err := online.Open(ctx, cfg.Feature.OnlineStore, db)
	if err != nil {
		return nil, fmt.Errorf("open the online store: %w", err)
	}
	log.Info("feature store", "online_store", st.Name())
	return &feature.Service{DB: db, Datasets: datasets, Content: content, SourceOptions: opts, OnlineStore: st, Logger: log}, nil
}
