// Package feedback stores the ground truth of logged predictions — labels
// that arrive late, keyed by the request id of the prediction and the row
// within its request — and computes the performance of an endpoint from
// the predictions that have a label.
//
// A Store keeps labels in the prediction_labels table (SQLite or
// PostgreSQL): a later label for the same endpoint, request id and row
// replaces the earlier one. Decode reads labels from CSV, JSON Lines, JSON
// and Parquet. A Service joins the labels to the prediction log (anything
// with a Scan method, normally a *predlog.Reader) by (request id, row) and
// computes package evaluate's metrics per time window of the prediction
// timestamps, per slice, over the labelled rows only.
//
// See docs/feedback.md for the semantics, with examples.
package feedback
