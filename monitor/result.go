package monitor

import (
	"time"

	"github.com/kiln-ml/kiln/monitor/alert"
	"github.com/kiln-ml/kiln/monitor/drift"
)

// Statuses of a result.
const (
	StatusOK     = "ok"
	StatusDrift  = "drift"
	StatusNoData = "no_data"
	StatusError  = "error"
)

// Result is one evaluation of a monitor: a point of its time series.
type Result struct {
	ID         string `json:"id"`
	Monitor    string `json:"monitor"`
	Endpoint   string `json:"endpoint"`
	Generation int64  `json:"generation"`
	// Time is when the evaluation ran; the window is [WindowStart,
	// WindowEnd).
	Time            time.Time `json:"time"`
	WindowStart     time.Time `json:"window_start"`
	WindowEnd       time.Time `json:"window_end"`
	DurationSeconds float64   `json:"duration_seconds"`
	// Status is ok, drift (dataset drift of the inputs, or drift of the
	// predictions), no_data (nothing logged in the window) or error.
	Status string `json:"status"`
	// Message says what went wrong (error) or what was left out.
	Message   string         `json:"message,omitempty"`
	Reference *ReferenceInfo `json:"reference,omitempty"`
	Traffic   Traffic        `json:"traffic"`
	// Drift compares the logged inputs with the reference.
	Drift *drift.Report `json:"drift,omitempty"`
	// PredictionDrift compares the logged outputs with the reference's
	// prediction columns, or with the previous window.
	PredictionDrift *drift.Report `json:"prediction_drift,omitempty"`
	Outliers        *Outliers     `json:"outliers,omitempty"`
	Performance     *Performance  `json:"performance,omitempty"`
	// Alerts are the alert state changes this evaluation made.
	Alerts []alert.Transition `json:"alerts,omitempty"`
}

// ReferenceInfo says what a result was compared with.
type ReferenceInfo struct {
	// Kind is dataset, lineage or window.
	Kind string `json:"kind"`
	// Dataset is the dataset version ("name@3") of dataset and lineage
	// references.
	Dataset string `json:"dataset,omitempty"`
	// Model is the model version the lineage was read from ("churn/3").
	Model string `json:"model,omitempty"`
	// Start and End bound a window reference.
	Start time.Time `json:"start,omitzero"`
	End   time.Time `json:"end,omitzero"`
	Rows  int64     `json:"rows"`
	// Predictions says where prediction drift's reference came from:
	// "reference" or "previous_window".
	Predictions string `json:"predictions,omitempty"`
}

// Traffic is the window's requests, errors and latency.
type Traffic struct {
	Requests     int64   `json:"requests"`
	Rows         int64   `json:"rows"`
	Errors       int64   `json:"errors"`
	ClientErrors int64   `json:"client_errors"`
	ErrorRate    float64 `json:"error_rate"`
	RPS          float64 `json:"rps"`
	// Latency percentiles in seconds (0 without requests).
	LatencyP50 float64 `json:"latency_p50_seconds"`
	LatencyP95 float64 `json:"latency_p95_seconds"`
	LatencyP99 float64 `json:"latency_p99_seconds"`
}

// Outliers counts the logged rows with inputs outside the reference's
// bounds.
type Outliers struct {
	Rows  int64   `json:"rows"`
	Share float64 `json:"share"`
	// Features are the outlier counts and shares per feature.
	Features map[string]FeatureOutliers `json:"features,omitempty"`
}

// FeatureOutliers are one feature's outliers.
type FeatureOutliers struct {
	Count int64   `json:"count"`
	Share float64 `json:"share"`
}

// Performance is the quality of the window's labelled predictions.
type Performance struct {
	Task        string `json:"task,omitempty"`
	Labelled    int64  `json:"labelled"`
	Predictions int64  `json:"predictions"`
	// Metrics are empty when fewer than min_labels predictions have labels.
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// Slices: slice column → value → metric → value.
	Slices map[string]map[string]map[string]float64 `json:"slices,omitempty"`
}

// FiringAlerts returns the number of alerts of a monitor that are firing
// in states.
func FiringAlerts(states []alert.State) int {
	n := 0
	for _, s := range states {
		if s.State == alert.StateFiring {
			n++
		}
	}
	return n
}
