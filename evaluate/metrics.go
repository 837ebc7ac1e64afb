package evaluate

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/kiln-ml/kiln/errdefs"
)

// Task is the kind of model a metric measures.
type Task string

// Tasks.
const (
	Classification Task = "classification"
	Regression     Task = "regression"
)

// Sentinel errors, each wrapped in an errdefs.Error of kind
// errdefs.ErrInvalidArgument so that wire layers answer a bad request.
var (
	// ErrUnknownMetric: no metric has that name.
	ErrUnknownMetric = errors.New("unknown metric")
	// ErrUndefined: the metric has no value on these rows (one class
	// present for ROC AUC, a multiclass target for a binary metric, …).
	ErrUndefined = errors.New("metric undefined")
	// ErrInvalidInput: a NaN or infinite value, or a label or score that
	// does not fit.
	ErrInvalidInput = errors.New("invalid input")
)

func invalidf(sentinel error, format string, args ...any) error {
	return &errdefs.Error{Kind: errdefs.ErrInvalidArgument, Msg: fmt.Sprintf(format, args...), Err: sentinel}
}

// MetricInfo describes a metric.
type MetricInfo struct {
	Name string `json:"name"`
	Task Task   `json:"task"`
	// HigherIsBetter is the metric's direction: true for accuracy, F1,
	// AUC and R²; false for losses and errors.
	HigherIsBetter bool `json:"higher_is_better"`
	// NeedsScores says the metric reads the model's scores (class
	// probabilities), not only its predicted labels.
	NeedsScores bool   `json:"needs_scores"`
	Description string `json:"description"`
}

var metricList = []MetricInfo{
	{"accuracy", Classification, true, false, "fraction of rows whose predicted label is the true label"},
	{"precision", Classification, true, false, "precision of the positive class (binary targets)"},
	{"recall", Classification, true, false, "recall of the positive class (binary targets)"},
	{"f1", Classification, true, false, "F1 score of the positive class (binary targets)"},
	{"precision_macro", Classification, true, false, "unweighted mean of the per-label precisions"},
	{"precision_micro", Classification, true, false, "precision of the pooled counts of every label"},
	{"precision_weighted", Classification, true, false, "mean of the per-label precisions weighted by support"},
	{"recall_macro", Classification, true, false, "unweighted mean of the per-label recalls"},
	{"recall_micro", Classification, true, false, "recall of the pooled counts of every label"},
	{"recall_weighted", Classification, true, false, "mean of the per-label recalls weighted by support"},
	{"f1_macro", Classification, true, false, "unweighted mean of the per-label F1 scores"},
	{"f1_micro", Classification, true, false, "F1 score of the pooled counts of every label"},
	{"f1_weighted", Classification, true, false, "mean of the per-label F1 scores weighted by support"},
	{"roc_auc", Classification, true, true, "area under the ROC curve of the positive class's score (binary targets)"},
	{"roc_auc_ovr", Classification, true, true, "one-vs-rest ROC AUC, unweighted mean over the true labels"},
	{"log_loss", Classification, false, true, "mean negative log-likelihood of the true labels"},
	{"mae", Regression, false, false, "mean absolute error"},
	{"mse", Regression, false, false, "mean squared error"},
	{"rmse", Regression, false, false, "root mean squared error"},
	{"mape", Regression, false, false, "mean absolute percentage error (as a fraction, sklearn's definition)"},
	{"r2", Regression, true, false, "coefficient of determination"},
}

var metricByName = func() map[string]MetricInfo {
	m := make(map[string]MetricInfo, len(metricList))
	for _, mi := range metricList {
		m[mi.Name] = mi
	}
	return m
}()

// Lookup returns the metric named name.
func Lookup(name string) (MetricInfo, bool) {
	m, ok := metricByName[name]
	return m, ok
}

// Metrics lists every metric, classification first.
func Metrics() []MetricInfo {
	return append([]MetricInfo(nil), metricList...)
}

// MetricNames lists the names of the metrics of a task (all when task is
// empty).
func MetricNames(task Task) []string {
	var out []string
	for _, m := range metricList {
		if task == "" || m.Task == task {
			out = append(out, m.Name)
		}
	}
	return out
}

func unknownMetric(name string, task Task) error {
	if m, ok := Lookup(name); ok {
		return invalidf(ErrUnknownMetric, "metric %q is a %s metric, not a %s one", name, m.Task, task)
	}
	return invalidf(ErrUnknownMetric, "unknown %s metric %q (known: %v)", task, name, MetricNames(task))
}

// Accumulator is what a slice holds: rows added, metrics read.
type Accumulator interface {
	// Value returns the metric named name over the rows added so far.
	Value(name string) (float64, error)
	// Count is the number of rows added.
	Count() int64
}

// finite reports whether v is neither NaN nor infinite.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// sortLabels orders labels as sklearn's unique_labels does: numerically
// when every label is a number, else as strings.
func sortLabels(labels []string) []string {
	out := append([]string(nil), labels...)
	nums := make(map[string]float64, len(out))
	numeric := true
	for _, l := range out {
		v, err := strconv.ParseFloat(l, 64)
		if err != nil || math.IsNaN(v) {
			numeric = false
			break
		}
		nums[l] = v
	}
	if numeric {
		sort.SliceStable(out, func(i, j int) bool {
			if nums[out[i]] != nums[out[j]] {
				return nums[out[i]] < nums[out[j]]
			}
			return out[i] < out[j]
		})
	} else {
		sort.Strings(out)
	}
	return out
}
