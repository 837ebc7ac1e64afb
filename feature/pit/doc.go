// Package pit joins feature rows to entity rows point in time: for each
// entity row (k, t) and each feature view it takes the view's row with
// the same join key k whose event time is at most t and, when the view
// has a TTL, at least t − TTL; among those the greatest event time wins,
// ties go to the greatest created time, and rows still tied go to the one
// read last from the source (source order). Where no row qualifies the
// view's features are null. These are Feast's get_historical_features
// semantics (both TTL bounds inclusive).
//
// The join is a sort-merge per key, columnar throughout:
//
//  1. the entity table is read into memory (its batches are kept as read,
//     so every entity column passes through and row order is preserved);
//  2. per view, each entity row's join-key tuple gets a dense key id (a
//     hash map over int64 keys, or over an encoding of the tuple), and
//     entity rows are bucketed by id (counting sort) and sorted by time
//     within a bucket;
//  3. the view's source is streamed: rows whose key no entity row has are
//     dropped as they are read, so memory holds only rows that can match;
//     kept rows are bucketed by key id and sorted by (event time, created
//     time, source order) within a bucket;
//  4. within each key the two sorted runs are merged with one cursor, and
//     each entity row records the index of its feature row (or −1);
//  5. the output is written batch by batch: each entity batch with the
//     feature columns gathered by those indices.
//
// Timestamps of any unit, naive or timezone-aware, and dates are compared
// as nanoseconds since the Unix epoch (UTC; naive values are read as UTC,
// as pandas compares them; instants past 2262 or before 1677 saturate).
// A null join key or a null timestamp never matches; a null created time
// sorts before every created time.
package pit
