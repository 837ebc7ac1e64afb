// Package feature is Kiln's feature store: Entity and FeatureView
// documents (versioned in the metadata database), the source tables that
// views read (Kiln dataset versions or Parquet/CSV/JSON Lines paths),
// materialization of the latest row per entity into an online store
// (package feature/online), online lookups with Feast's
// get-online-features semantics, and point-in-time correct training sets.
//
// Times in the feature tables are Unix microseconds.
package feature

import (
	"log/slog"
	"time"

	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/feature/online"
	"github.com/kiln-ml/kiln/store"
)

// Service is the feature store. DB holds the definitions and the
// materialization history; Datasets and Content read dataset sources
// (nil: views over datasets cannot be read); SourceOptions open path
// sources in buckets; OnlineStore is where views are materialized (nil: no
// online store); TempDir holds checked-out dataset files while they are
// read ("" is the system's).
//
// The online store is the field OnlineStore, not Online as first
// planned: Online is the lookup method.
type Service struct {
	DB            *store.DB
	Datasets      *dataset.Store
	Content       dataset.Remote
	SourceOptions blob.Options
	OnlineStore   online.Store
	TempDir       string
	Logger        *slog.Logger

	// now, when set, replaces time.Now (tests).
	now func() time.Time
}

func (s *Service) log() *slog.Logger {
	if s.Logger == nil {
		return slog.Default()
	}
	return s.Logger
}

func (s *Service) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

// micros converts t to Unix microseconds.
func micros(t time.Time) int64 { return t.UnixMicro() }

// fromMicros converts Unix microseconds to a UTC time.
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }
