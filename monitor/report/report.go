// Package report renders a monitor's results as one self-contained HTML
// file: inline CSS and inline SVG charts, no scripts, no external URLs, so
// the file opens offline, can be mailed or attached to a ticket, and is
// safe to open whatever the feature names contain.
//
// The report has a summary (status, window, reference, dataset drift),
// the firing alerts, a table of every feature with its test, score,
// threshold and verdict (drifted features first, then by how far the
// score is past its threshold), time-series charts (dataset drift share,
// performance metrics, traffic, error rate, p99 latency, outlier share),
// the performance table per slice, the alert history, and one section per
// feature with its reference-versus-current histogram and its score over
// time. Line charts are downsampled to at most MaxPoints points per series
// (largest-triangle-three-buckets), so long histories stay small.
//
//	err := report.Render(w, &report.Data{
//		Monitor: "fraud-drift", Endpoint: "fraud",
//		GeneratedAt: time.Now(),
//		Dataset: &report.DatasetDrift{Drifted: 3, Total: 10, Share: 0.3, Threshold: 0.5},
//		Features: []report.Feature{{Name: "amount", Kind: "numeric", Method: "ks", Score: 0.01, Threshold: 0.05, Drift: true}},
//	})
package report

import (
	"time"
)

// MaxPoints bounds the points drawn per line-chart series; longer series
// are downsampled.
const MaxPoints = 300

// Data is everything one report shows. Every field is optional: a zero
// Data renders a report that says there is nothing to show.
type Data struct {
	// Monitor is the monitor's name; Endpoint the endpoint it watches.
	Monitor  string
	Endpoint string
	// GeneratedAt is when the report was made (shown in UTC).
	GeneratedAt time.Time
	// Window is the current window the results describe.
	Window Window
	// Reference describes the reference, e.g. "dataset churn-train v3" or
	// "window 2024-05-01 – 2024-05-08".
	Reference string
	// Status is the monitor's state in one word: ok, drift, degraded,
	// alerting, error, pending (any other word is shown as is).
	Status string
	// Errors are problems of the last evaluation (a check that could not
	// run), shown under the summary.
	Errors []string

	// Dataset is the dataset-level drift verdict; nil when drift was not
	// checked.
	Dataset *DatasetDrift
	// Features are the per-column drift results (inputs and predictions),
	// in any order: the report sorts them.
	Features []Feature
	// Outliers summarises input values outside the reference range.
	Outliers *Outliers

	// Performance is the model quality from delayed labels; nil when no
	// performance check ran.
	Performance *Performance
	// Traffic is the endpoint's request rate, error rate and latency over
	// time.
	Traffic *Traffic
	// DriftShare is the dataset drift share (drifted columns / columns)
	// over time, drawn with Dataset.Threshold as its threshold line.
	DriftShare []Point

	// Alerts are the monitor's active alerts (pending and firing).
	Alerts []Alert
	// AlertHistory are past alert transitions, newest first.
	AlertHistory []AlertEvent
}

// Window is a time interval [Start, End).
type Window struct {
	Start, End time.Time
}

// Point is one value of a time series. Non-finite values are gaps.
type Point struct {
	Time  time.Time
	Value float64
}

// DatasetDrift is the dataset-level drift verdict: the dataset drifts when
// the share of drifted columns reaches Threshold.
type DatasetDrift struct {
	Drifted, Total int
	// Share is Drifted / Total.
	Share float64
	// Threshold is the drift share at which the dataset drifts.
	Threshold float64
	Drift     bool
}

// Feature is one column's drift result; its fields mirror
// drift.FeatureResult.
type Feature struct {
	Name string
	// Kind is "numeric" or "categorical".
	Kind string
	// Method is the test (stattest.Method: ks, chi2, z, wasserstein,
	// jensenshannon, psi, kl, hellinger).
	Method string
	// Score is the test's score: a p-value for ks, chi2 and z (drift when
	// small), a distance otherwise (drift when large).
	Score     float64
	Statistic float64
	Threshold float64
	Drift     bool
	// RefCount and CurCount are the values compared on each side.
	RefCount, CurCount int64
	// Error says why the column could not be tested.
	Error string
	// Histogram is the reference and current distribution; nil draws no
	// histogram.
	Histogram *Histogram
	// Scores is the feature's drift score over time, drawn with Threshold.
	Scores []Point
	// Outliers is how many current values fell outside the reference range.
	Outliers int64
}

// Histogram is a column's distribution on both sides, as shares (each
// side sums to 1 over its bins, or is empty): numeric columns have
// len(Edges) = len(Ref)+1 bin edges, categorical columns one category
// per bin. It mirrors drift.Histogram.
type Histogram struct {
	Edges      []float64
	Categories []string
	Ref, Cur   []float64
}

// Outliers summarises values outside the reference bounds.
type Outliers struct {
	// Rows is the current rows with at least one outlying value, of Total.
	Rows, Total int64
	// Share is Rows / Total.
	Share float64
	// Threshold is the alerting share, 0 when none.
	Threshold float64
	// History is the outlier share over time.
	History []Point
}

// Performance is model quality from labels joined to predictions.
type Performance struct {
	// Task is "classification" or "regression" (free text).
	Task string
	// Labelled is the predictions with a label, of Predictions.
	Labelled, Predictions int64
	// Metrics are the window's metrics by name (accuracy, f1, roc_auc, rmse …).
	Metrics map[string]float64
	// Thresholds are the alerting bounds of some metrics, drawn as lines
	// on their charts and listed in the table.
	Thresholds map[string]float64
	// Slices are the metrics per slice: slice column → value → metric →
	// value (the shape of feedback.Window.Slices).
	Slices map[string]map[string]map[string]float64
	// History is each metric over time.
	History map[string][]Point
}

// Traffic is an endpoint's operational series.
type Traffic struct {
	// Requests is requests per second.
	Requests []Point
	// ErrorRate is the share of requests that failed (0 … 1).
	ErrorRate []Point
	// LatencyP50, LatencyP95, LatencyP99 are latency quantiles in seconds.
	LatencyP50, LatencyP95, LatencyP99 []Point
}

// Alert is an active alert.
type Alert struct {
	Name string
	// State is pending or firing.
	State    string
	Severity string
	Labels   map[string]string
	Value    float64
	// Since is when the alert entered its state.
	Since time.Time
	// Summary is the rendered summary (or description) annotation.
	Summary string
}

// AlertEvent is one alert transition.
type AlertEvent struct {
	Time time.Time
	Name string
	// From and To are states: inactive, pending, firing, resolved.
	From, To string
	Severity string
	Labels   map[string]string
	Value    float64
	Summary  string
}
