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
	"context"
	"log/slog"
	"sync"
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

	// viewCache holds the online views recently looked up (see
	// onlineView).
	viewMu    sync.Mutex
	viewCache map[string]cachedView
}

// viewCacheTTL is how long an online lookup reuses a view definition and
// its join keys read from the database. Changes made through this Service
// clear the cache at once; changes made by another server are seen within
// it.
const viewCacheTTL = time.Second

type cachedView struct {
	view *FeatureView
	keys []string
	at   time.Time
}

// onlineView returns the latest version of view and its join keys, from
// the cache when read less than viewCacheTTL ago.
func (s *Service) onlineView(ctx context.Context, name string) (*FeatureView, []string, error) {
	s.viewMu.Lock()
	c, ok := s.viewCache[name]
	s.viewMu.Unlock()
	if ok && time.Since(c.at) < viewCacheTTL {
		return c.view, c.keys, nil
	}
	v, _, err := s.View(ctx, name, 0)
	if err != nil {
		return nil, nil, err
	}
	keys, err := s.JoinKeys(ctx, v)
	if err != nil {
		return nil, nil, err
	}
	s.viewMu.Lock()
	if s.viewCache == nil || len(s.viewCache) > 10000 {
		s.viewCache = map[string]cachedView{}
	}
	s.viewCache[name] = cachedView{view: v, keys: keys, at: time.Now()}
	s.viewMu.Unlock()
	return v, keys, nil
}

// forgetViews empties the view cache (after a definition changed).
func (s *Service) forgetViews() {
	s.viewMu.Lock()
	s.viewCache = nil
	s.viewMu.Unlock()
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
