// Package online holds the online stores of the feature store: for each
// feature view and entity key, only the latest feature values (Feast's online
// store semantics: no history). Materialization writes them with Put, online
// lookups at inference read them with Get.
//
// Two stores implement Store: Embedded keeps the rows in the metadata
// database (table feature_online, SQLite or PostgreSQL), Redis keeps one
// string per entity key in a Redis server. Both resolve concurrent and
// out-of-order writes the same way: a record replaces the stored one only if
// its (EventTime, CreatedTime) is not older, so materializing an old interval
// after a newer one never rolls values back, and of two rows with the same
// event time the later-created wins.
package online

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/kiln-ml/kiln/store"
)

// Record is the latest feature row of one entity key of a view.
type Record struct {
	// Key is the canonical entity key (feature.EntityKey of the join-key
	// values): valid UTF-8 without NUL bytes (the embedded store on
	// PostgreSQL keeps it in a TEXT column).
	Key string
	// EventTime and CreatedTime are Unix microseconds.
	EventTime, CreatedTime int64
	// Value is the encoded feature values (opaque to the store).
	Value []byte
}

// notOlder reports whether a's (EventTime, CreatedTime) is not older than b's,
// that is whether a may replace b.
func (a *Record) notOlder(b *Record) bool {
	if a.EventTime != b.EventTime {
		return a.EventTime > b.EventTime
	}
	return a.CreatedTime >= b.CreatedTime
}

// Store is an online store.
type Store interface {
	// Put upserts: a record replaces the stored one of (view,key) only if its
	// (EventTime, CreatedTime) is not older.
	Put(ctx context.Context, view string, recs []Record) error
	// Get returns one *Record per key, nil where absent, in key order.
	Get(ctx context.Context, view string, keys []string) ([]*Record, error)
	// DeleteView removes every record of view.
	DeleteView(ctx context.Context, view string) error
	// Name is "embedded" or "redis".
	Name() string
	Close() error
}

// Open opens the online store named by url: "" or "embedded" is the
// embedded store in db; redis://host:port/db (or rediss:// for TLS) is a
// Redis server.
func Open(ctx context.Context, rawURL string, db *store.DB) (Store, error) {
	switch {
	case rawURL == "" || rawURL == "embedded":
		if db == nil {
			return nil, fmt.Errorf("online: the embedded online store needs the metadata database")
		}
		return NewEmbedded(db), nil
	case strings.HasPrefix(rawURL, "redis://"), strings.HasPrefix(rawURL, "rediss://"):
		return NewRedis(ctx, rawURL)
	default:
		return nil, fmt.Errorf("online: unsupported online store %q (want \"embedded\", redis:// or rediss://)", redactURL(rawURL))
	}
}

// dedupe returns recs with one record per key, the one that would win if
// they were written one after another, sorted by key (so that concurrent
// batches lock rows in the same order).
func dedupe(recs []Record) []Record {
	if len(recs) <= 1 {
		return recs
	}
	idx := make(map[string]int, len(recs))
	out := make([]Record, 0, len(recs))
	for i := range recs {
		r := &recs[i]
		if j, ok := idx[r.Key]; ok {
			if r.notOlder(&out[j]) {
				out[j] = *r
			}
			continue
		}
		idx[r.Key] = len(out)
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b Record) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// redactURL hides the password of a URL in messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}
