// Package online holds the online stores of the feature store: the latest
// encoded feature values per feature view and entity key.
package online

import "context"

// Record is one entity's latest row of a view: its key, the event and
// created times of the source row (Unix microseconds) and the encoded
// feature values.
type Record struct {
	Key                    string
	EventTime, CreatedTime int64 // unix µs
	Value                  []byte
}

// Store is an online store.
type Store interface {
	// Put upserts: a record replaces the stored one of (view,key) only if its
	// (EventTime, CreatedTime) is not older.
	Put(ctx context.Context, view string, recs []Record) error
	// Get returns one *Record per key, nil where absent, in key order.
	Get(ctx context.Context, view string, keys []string) ([]*Record, error)
	DeleteView(ctx context.Context, view string) error
	Name() string // "embedded" or "redis"
	Close() error
}
