// Package evaluate computes model-quality metrics the way scikit-learn
// defines them, streaming: rows are added one at a time (or a batch at a
// time) and metrics are read at the end, so memory does not grow with the
// data except where a metric needs every score (ROC AUC keeps the scores,
// up to a bound).
//
// Classification (Classifier): accuracy; precision, recall and F1 for the
// positive class ("precision", "recall", "f1", sklearn's average="binary")
// and averaged over the labels ("_macro", "_micro", "_weighted"
// suffixes); ROC AUC of the positive class ("roc_auc") and one-vs-rest
// macro ROC AUC ("roc_auc_ovr"); log loss ("log_loss"); the confusion
// matrix. Labels are strings; the label set is the union of the true and
// predicted labels, ordered numerically when every label is a number and
// lexicographically otherwise (sklearn's unique_labels order).
//
// Regression (Regressor): "mae", "mse", "rmse", "mape", "r2".
//
// Undefined values follow scikit-learn's defaults: a precision or recall
// with an empty denominator is 0 (zero_division=0), R² of a constant
// target is 1 for a perfect fit and 0 otherwise (force_finite). Values
// that sklearn refuses (ROC AUC with one class present, R² of fewer than
// two rows, binary metrics of a multiclass target) are errors wrapping
// ErrUndefined. NaN or infinite inputs are errors wrapping ErrInvalidInput
// that name the row.
//
// Slices (Slices) keep one accumulator per value of a column, and
// ComputeDisparity reports how far a metric differs across them: the
// difference max − min and the ratio min / max.
//
// The tests compare every metric with scikit-learn on fixtures written by
// testdata/gen.py.
package evaluate
