package monitor

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/evaluate"
	"github.com/kiln-ml/kiln/monitor/alert"
	"github.com/kiln-ml/kiln/stattest"
)

// The document types of this package.
const (
	APIVersion        = "kiln.dev/v1"
	KindMonitor       = "Monitor"
	KindAlertReceiver = "AlertReceiver"
)

// Defaults and limits of a Monitor.
const (
	DefaultWindow   = time.Hour
	DefaultEvery    = 5 * time.Minute
	MinEvery        = 10 * time.Second
	MaxWindow       = 366 * 24 * time.Hour
	MaxSpecBytes    = 1 << 20
	maxFeatures     = 10000
	maxRules        = 100
	maxTextLen      = 1024
	maxFieldErrors  = 20
	defaultMinLabel = 1
)

// Monitor is a monitor document:
//
//	apiVersion: kiln.dev/v1
//	kind: Monitor
//	metadata: {name: churn}
//	spec:
//	  endpoint: churn
//	  reference: {dataset: churn-train@3}   # or {lineage: true} (default), or {window: {last: 7d, offset: 1d}}
//	  window: 1h
//	  schedule: {every: 5m}
//	  drift: {drift_share: 0.5, predictions: true}
//	  outliers: {quantile: 0.01}
//	  performance: {metrics: [accuracy, roc_auc], min_labels: 50}
//	  alerts:
//	    - {name: data-drift, expr: "drift_share >= 0.5", for: 10m, receivers: [oncall]}
type Monitor struct {
	APIVersion string   `json:"apiVersion" yaml:"apiVersion"`
	Kind       string   `json:"kind" yaml:"kind"`
	Metadata   Metadata `json:"metadata" yaml:"metadata"`
	Spec       Spec     `json:"spec" yaml:"spec"`
}

// Metadata names a document.
type Metadata struct {
	Name        string            `json:"name" yaml:"name"`
	Description string            `json:"description,omitempty" yaml:"description,omitempty"`
	Labels      map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
}

// Spec is what a monitor watches and checks.
type Spec struct {
	// Endpoint is the deployed endpoint whose prediction log is watched.
	Endpoint string `json:"endpoint" yaml:"endpoint"`
	// Reference is what the current window is compared with; nil is
	// {lineage: true}.
	Reference *Reference `json:"reference,omitempty" yaml:"reference,omitempty"`
	// Window is the span of log each evaluation looks at, ending at the
	// evaluation: [now-window, now). Default 1h.
	Window Duration `json:"window,omitempty" yaml:"window,omitempty"`
	// Schedule says how often the monitor is evaluated. Default every 5m.
	Schedule *Schedule `json:"schedule,omitempty" yaml:"schedule,omitempty"`
	// Features are the input features compared; empty: every column of
	// the reference that the log also has.
	Features []string `json:"features,omitempty" yaml:"features,omitempty"`
	// Drift configures the drift tests.
	Drift *DriftSpec `json:"drift,omitempty" yaml:"drift,omitempty"`
	// Outliers configures the outlier bounds (default: the reference's
	// min and max).
	Outliers *OutlierSpec `json:"outliers,omitempty" yaml:"outliers,omitempty"`
	// Performance, if set, computes quality metrics from the labels
	// joined to the window's predictions.
	Performance *PerformanceSpec `json:"performance,omitempty" yaml:"performance,omitempty"`
	// Alerts are the monitor's alert rules, evaluated on each result's
	// samples (see the package documentation for the metric names).
	Alerts []alert.Rule `json:"alerts,omitempty" yaml:"alerts,omitempty"`
}

// Reference is one of: a dataset version, the lineage of the served
// model version, or a past window of the endpoint's own log.
type Reference struct {
	// Dataset is "name@version", or "name" / "name@latest" for the newest
	// version (resolved at each evaluation).
	Dataset string `json:"dataset,omitempty" yaml:"dataset,omitempty"`
	// Lineage uses the training dataset version of the model version the
	// endpoint's primary route serves.
	Lineage bool `json:"lineage,omitempty" yaml:"lineage,omitempty"`
	// Window is a past window of the endpoint's log.
	Window *ReferenceWindow `json:"window,omitempty" yaml:"window,omitempty"`
}

// ReferenceWindow is a fixed window (Start, End) or one relative to each
// evaluation: [now-Offset-Last, now-Offset).
type ReferenceWindow struct {
	Start  *time.Time `json:"start,omitempty" yaml:"start,omitempty"`
	End    *time.Time `json:"end,omitempty" yaml:"end,omitempty"`
	Last   Duration   `json:"last,omitempty" yaml:"last,omitempty"`
	Offset Duration   `json:"offset,omitempty" yaml:"offset,omitempty"`
}

// Schedule is how often a monitor is evaluated.
type Schedule struct {
	// Every is the period (default 5m, at least 10s).
	Every Duration `json:"every,omitempty" yaml:"every,omitempty"`
}

// DriftSpec configures the drift tests (package monitor/drift).
type DriftSpec struct {
	// Method is the test of every feature (empty: Evidently's default
	// choice per feature); Threshold its threshold (0: the method's).
	Method    string  `json:"method,omitempty" yaml:"method,omitempty"`
	Threshold float64 `json:"threshold,omitempty" yaml:"threshold,omitempty"`
	// PerFeature overrides Method and Threshold per feature.
	PerFeature map[string]FeatureTest `json:"per_feature,omitempty" yaml:"per_feature,omitempty"`
	// DriftShare is the share of drifted features that makes dataset
	// drift (default 0.5).
	DriftShare float64 `json:"drift_share,omitempty" yaml:"drift_share,omitempty"`
	// Predictions also tests the model's outputs.
	Predictions bool `json:"predictions,omitempty" yaml:"predictions,omitempty"`
}

// FeatureTest is the drift test of one feature.
type FeatureTest struct {
	Method    string  `json:"method,omitempty" yaml:"method,omitempty"`
	Threshold float64 `json:"threshold,omitempty" yaml:"threshold,omitempty"`
}

// OutlierSpec configures outlier bounds: values outside [q, 1-q]
// quantiles of the reference (0: outside its min and max).
type OutlierSpec struct {
	Quantile float64 `json:"quantile" yaml:"quantile"`
}

// PerformanceSpec configures quality metrics from labels (package
// monitor/feedback).
type PerformanceSpec struct {
	Task          evaluate.Task `json:"task,omitempty" yaml:"task,omitempty"`
	Metrics       []string      `json:"metrics,omitempty" yaml:"metrics,omitempty"`
	Prediction    string        `json:"prediction,omitempty" yaml:"prediction,omitempty"`
	PositiveClass string        `json:"positive_class,omitempty" yaml:"positive_class,omitempty"`
	SliceBy       []string      `json:"slice_by,omitempty" yaml:"slice_by,omitempty"`
	// MinLabels is the fewest labelled predictions that give metrics
	// (default 1).
	MinLabels int64 `json:"min_labels,omitempty" yaml:"min_labels,omitempty"`
}

// Duration is a time.Duration written as Go writes it ("90s", "1h30m"),
// with days too ("7d", "1d12h"); in JSON a number is seconds.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String writes whole days as "Nd".
func (d Duration) String() string {
	v := time.Duration(d)
	const day = 24 * time.Hour
	if v >= day && v%day == 0 {
		return strconv.FormatInt(int64(v/day), 10) + "d"
	}
	return v.String()
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// UnmarshalJSON accepts a duration string or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		return d.UnmarshalText([]byte(s))
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e9 {
		return fmt.Errorf("invalid duration %s", b)
	}
	*d = Duration(f * float64(time.Second))
	return nil
}

var daysRE = regexp.MustCompile(`^(\d{1,5})d(.*)$`)

// ParseDuration parses a Go duration with an optional leading count of
// days: "7d", "1d12h", "90m".
func ParseDuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("invalid duration %q (use e.g. 30s, 10m, 1h, 7d)", clip(s))
	var days time.Duration
	rest := s
	if m := daysRE.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[1])
		days, rest = time.Duration(n)*24*time.Hour, m[2]
		if rest == "" {
			return days, nil
		}
	}
	v, err := time.ParseDuration(rest)
	if err != nil || (days > 0 && v < 0) {
		return 0, bad
	}
	return days + v, nil
}

// FieldError is one problem of a document at a field path
// ("spec.drift.drift_share").
type FieldError = errdefs.FieldError

// FieldErrors are the problems of a document; they are wrapped in an
// errdefs invalid-argument error (errors.As finds them).
type FieldErrors = errdefs.FieldErrors

func invalid(what string, es FieldErrors) error { return errdefs.InvalidFields(what, es) }

type validator struct{ errs FieldErrors }

func (v *validator) fail(path, format string, args ...any) {
	if len(v.errs) < maxFieldErrors {
		v.errs = append(v.errs, FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
}

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidateName checks a monitor or receiver name: a DNS label (lowercase
// letters, digits and '-', at most 63 characters).
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return errdefs.Invalid("%q is not a valid name: use a DNS label (lower-case letters, digits and '-', 1-63 characters)", clip(name))
	}
	return nil
}

// decodeDoc reads one YAML or JSON document into v, rejecting unknown
// fields and extra documents.
func decodeDoc(data []byte, what string, v any) error {
	if len(data) > MaxSpecBytes {
		return errdefs.TooLarge("The %s document is larger than %d bytes", what, MaxSpecBytes)
	}
	if !utf8.Valid(data) {
		return invalid(what, FieldErrors{{Msg: "the document is not valid UTF-8"}})
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		msg := "empty document"
		if !errors.Is(err, io.EOF) {
			msg = "not a valid YAML or JSON document: " + strings.TrimPrefix(err.Error(), "yaml: ")
		}
		return invalid(what, FieldErrors{{Msg: msg}})
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return invalid(what, FieldErrors{{Msg: "more than one document; send one per request"}})
	}
	return nil
}

// ParseMonitor reads a Monitor from YAML or JSON and validates it. With
// name set (the URL names it), a missing metadata.name is name and
// another one is an error.
func ParseMonitor(data []byte, name string) (*Monitor, error) {
	var m Monitor
	if err := decodeDoc(data, "monitor", &m); err != nil {
		return nil, err
	}
	if name != "" {
		switch m.Metadata.Name {
		case "":
			m.Metadata.Name = name
		case name:
		default:
			return nil, invalid("monitor", FieldErrors{{Path: "metadata.name", Msg: fmt.Sprintf("is %q, but the URL names monitor %q", clip(m.Metadata.Name), clip(name))}})
		}
	}
	m.Normalize()
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Normalize fills apiVersion and kind when empty.
func (m *Monitor) Normalize() {
	if m.APIVersion == "" {
		m.APIVersion = APIVersion
	}
	if m.Kind == "" {
		m.Kind = KindMonitor
	}
}

// Validate checks the document; the error wraps FieldErrors whose paths
// name the fields.
func (m *Monitor) Validate() error {
	v := &validator{}
	if m.APIVersion != APIVersion {
		v.fail("apiVersion", "must be %q, not %q", APIVersion, clip(m.APIVersion))
	}
	if m.Kind != KindMonitor {
		v.fail("kind", "must be %q, not %q", KindMonitor, clip(m.Kind))
	}
	if err := ValidateName(m.Metadata.Name); err != nil {
		v.fail("metadata.name", "%s", errdefs.Message(err))
	}
	v.metadata(&m.Metadata)
	s := &m.Spec
	if s.Endpoint == "" {
		v.fail("spec.endpoint", "is required (the deployed endpoint to watch)")
	} else if !nameRE.MatchString(s.Endpoint) {
		v.fail("spec.endpoint", "%q is not an endpoint name", clip(s.Endpoint))
	}
	v.reference(s.Reference)
	if s.Window < 0 || s.Window.D() > MaxWindow {
		v.fail("spec.window", "must be between 0 (the default, 1h) and 366d")
	} else if s.Window != 0 && s.Window.D() < time.Second {
		v.fail("spec.window", "must be at least 1s")
	}
	if s.Schedule != nil {
		if e := s.Schedule.Every.D(); e != 0 && (e < MinEvery || e > MaxWindow) {
			v.fail("spec.schedule.every", "must be between %s and 366d (got %s)", MinEvery, s.Schedule.Every)
		}
	}
	if len(s.Features) > maxFeatures {
		v.fail("spec.features", "more than %d features", maxFeatures)
	}
	seen := map[string]bool{}
	for i, f := range s.Features {
		p := fmt.Sprintf("spec.features[%d]", i)
		switch {
		case f == "" || len(f) > maxTextLen:
			v.fail(p, "must have 1 to %d bytes", maxTextLen)
		case seen[f]:
			v.fail(p, "%q is listed twice", clip(f))
		}
		seen[f] = true
	}
	if d := s.Drift; d != nil {
		v.method("spec.drift.method", d.Method)
		v.threshold("spec.drift.threshold", d.Threshold)
		if d.DriftShare < 0 || d.DriftShare > 1 || math.IsNaN(d.DriftShare) {
			v.fail("spec.drift.drift_share", "must be between 0 and 1 (0: the default, 0.5)")
		}
		for f, ft := range d.PerFeature {
			p := "spec.drift.per_feature." + clip(f)
			if f == "" {
				v.fail("spec.drift.per_feature", "keys must be feature names")
			}
			if ft.Method == "" && ft.Threshold == 0 {
				v.fail(p, "needs a method or a threshold")
			}
			v.method(p+".method", ft.Method)
			v.threshold(p+".threshold", ft.Threshold)
		}
	}
	if o := s.Outliers; o != nil && (o.Quantile < 0 || o.Quantile >= 0.5 || math.IsNaN(o.Quantile)) {
		v.fail("spec.outliers.quantile", "must be in [0, 0.5) (0: outside the reference's min and max)")
	}
	if p := s.Performance; p != nil {
		v.performance(p)
	}
	if len(s.Alerts) > maxRules {
		v.fail("spec.alerts", "more than %d rules", maxRules)
	} else {
		names := map[string]bool{}
		for i := range s.Alerts {
			r := &s.Alerts[i]
			p := fmt.Sprintf("spec.alerts[%d]", i)
			if err := r.Validate(); err != nil {
				v.fail(p, "%s", errdefs.Message(err))
			} else if names[r.Name] {
				v.fail(p+".name", "rule %q is defined twice", clip(r.Name))
			}
			names[r.Name] = true
		}
	}
	if len(v.errs) > 0 {
		return invalid("monitor", v.errs)
	}
	return nil
}

func (v *validator) metadata(md *Metadata) {
	if len(md.Description) > maxTextLen {
		v.fail("metadata.description", "longer than %d bytes", maxTextLen)
	}
	if len(md.Labels) > 64 {
		v.fail("metadata.labels", "more than 64 labels")
	}
	for k, val := range md.Labels {
		if k == "" || len(k) > 63 || len(val) > maxTextLen {
			v.fail("metadata.labels."+clip(k), "keys must have 1 to 63 bytes and values at most %d", maxTextLen)
		}
	}
}

func (v *validator) reference(r *Reference) {
	if r == nil {
		return
	}
	set := 0
	if r.Dataset != "" {
		set++
		if _, err := dataset.ParseVersionRef(r.Dataset); err != nil {
			v.fail("spec.reference.dataset", "%s", errdefs.Message(err))
		}
	}
	if r.Lineage {
		set++
	}
	if w := r.Window; w != nil {
		set++
		fixed := w.Start != nil || w.End != nil
		relative := w.Last != 0 || w.Offset != 0
		switch {
		case fixed && relative:
			v.fail("spec.reference.window", "give either start and end, or last (and offset), not both")
		case fixed:
			if w.Start == nil || w.End == nil {
				v.fail("spec.reference.window", "needs both start and end")
			} else if !w.End.After(*w.Start) {
				v.fail("spec.reference.window.end", "must be after start")
			}
		case relative:
			if w.Last <= 0 {
				v.fail("spec.reference.window.last", "must be a positive duration")
			}
			if w.Offset < 0 {
				v.fail("spec.reference.window.offset", "must not be negative")
			}
		default:
			v.fail("spec.reference.window", "needs start and end, or last (and offset)")
		}
	}
	if set != 1 {
		v.fail("spec.reference", "set exactly one of dataset, lineage: true, or window")
	}
}

func (v *validator) method(path, m string) {
	if m == "" {
		return
	}
	if _, err := stattest.ParseMethod(m); err != nil {
		v.fail(path, "%s", errdefs.Message(err))
	}
}

func (v *validator) threshold(path string, t float64) {
	if t < 0 || math.IsNaN(t) || math.IsInf(t, 0) {
		v.fail(path, "must be a finite number ≥ 0 (0: the method's default)")
	}
}

func (v *validator) performance(p *PerformanceSpec) {
	task := p.Task
	switch task {
	case "", evaluate.Classification, evaluate.Regression:
	default:
		v.fail("spec.performance.task", "must be classification or regression, not %q", clip(string(task)))
		task = ""
	}
	seen := map[string]bool{}
	for i, name := range p.Metrics {
		path := fmt.Sprintf("spec.performance.metrics[%d]", i)
		info, ok := evaluate.Lookup(name)
		switch {
		case !ok:
			v.fail(path, "unknown metric %q (known: %s)", clip(name), strings.Join(evaluate.MetricNames(""), ", "))
		case seen[name]:
			v.fail(path, "metric %q is listed twice", clip(name))
		case task != "" && info.Task != task:
			v.fail(path, "%s is a %s metric; the task is %s", name, info.Task, task)
		case task == "":
			task = info.Task
		}
		seen[name] = true
	}
	if task == evaluate.Regression && p.PositiveClass != "" {
		v.fail("spec.performance.positive_class", "applies to classification only")
	}
	if len(p.SliceBy) > 16 {
		v.fail("spec.performance.slice_by", "more than 16 columns")
	}
	for i, c := range p.SliceBy {
		if c == "" || len(c) > maxTextLen {
			v.fail(fmt.Sprintf("spec.performance.slice_by[%d]", i), "must have 1 to %d bytes", maxTextLen)
		}
	}
	if p.MinLabels < 0 {
		v.fail("spec.performance.min_labels", "must not be negative")
	}
}

// Effective returns the spec with its defaults filled in: the reference
// (lineage), the window (1h), the schedule (every 5m), the drift share
// (0.5) and the fewest labels (1).
func (s Spec) Effective() Spec {
	if s.Reference == nil {
		s.Reference = &Reference{Lineage: true}
	}
	if s.Window == 0 {
		s.Window = Duration(DefaultWindow)
	}
	sc := Schedule{}
	if s.Schedule != nil {
		sc = *s.Schedule
	}
	if sc.Every == 0 {
		sc.Every = Duration(DefaultEvery)
	}
	s.Schedule = &sc
	d := DriftSpec{}
	if s.Drift != nil {
		d = *s.Drift
	}
	if d.DriftShare == 0 {
		d.DriftShare = 0.5
	}
	s.Drift = &d
	if s.Performance != nil {
		p := *s.Performance
		if p.MinLabels == 0 {
			p.MinLabels = defaultMinLabel
		}
		s.Performance = &p
	}
	return s
}

// Digest identifies the monitor's spec: the SHA-256 of its JSON encoding.
func (m *Monitor) Digest() string {
	b, _ := json.Marshal(m.Spec)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// ReferenceString describes a reference: "dataset churn@3", "lineage",
// "window last 7d offset 1d".
func (r *Reference) String() string {
	switch {
	case r == nil || r.Lineage:
		return "lineage"
	case r.Dataset != "":
		return "dataset " + r.Dataset
	case r.Window != nil && r.Window.Start != nil && r.Window.End != nil:
		return "window " + r.Window.Start.UTC().Format(time.RFC3339) + " to " + r.Window.End.UTC().Format(time.RFC3339)
	case r.Window != nil:
		s := "window last " + r.Window.Last.String()
		if r.Window.Offset != 0 {
			s += " offset " + r.Window.Offset.String()
		}
		return s
	}
	return "?"
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
