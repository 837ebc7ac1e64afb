package gate

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/evaluate"
	"github.com/kiln-ml/kiln/registry"
)

// The document type of a gate policy.
const (
	APIVersion = "kiln.dev/v1"
	Kind       = "GatePolicy"
)

// Defaults and limits of a policy.
const (
	DefaultBaseline = "champion"
	// NoBaseline as the baseline compares with nothing: change thresholds
	// are skipped (a rubber stamp), value thresholds still apply.
	NoBaseline = "none"
	// MaxSpecBytes bounds a policy document.
	MaxSpecBytes = 1 << 20
	maxNameLen   = 63
	maxMetrics   = 64
	maxSlices    = 16
	maxProtected = 64
	maxTextLen   = 1024
)

// Policy is a gate policy document:
//
//	apiVersion: kiln.dev/v1
//	kind: GatePolicy
//	metadata: {name: churn-quality}
//	spec:
//	  model: churn
//	  data: churn-eval@3/test.parquet
//	  label: churned
//	  metrics:
//	    - name: roc_auc
//	      threshold: {min: 0.8}
//	      change: {max_worsening: 0.01}
//	  slices:
//	    - {column: region, metrics: [accuracy], max_disparity: 0.1}
//	  protect_aliases: [champion]
type Policy struct {
	APIVersion string   `json:"apiVersion" yaml:"apiVersion"`
	Kind       string   `json:"kind" yaml:"kind"`
	Metadata   Metadata `json:"metadata" yaml:"metadata"`
	Spec       Spec     `json:"spec" yaml:"spec"`
}

// Metadata names a policy.
type Metadata struct {
	Name        string            `json:"name" yaml:"name"`
	Description string            `json:"description,omitempty" yaml:"description,omitempty"`
	Labels      map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
}

// Spec is what a policy checks and protects.
type Spec struct {
	// Model is the registered model whose versions the policy gates.
	Model string `json:"model" yaml:"model"`
	// Data is the evaluation data: a dataset version "name@3" or
	// "name@latest", optionally with a file inside it
	// ("name@3/test.parquet"), or a URI of a table file
	// (mlflow-artifacts:/…, s3://…; a local path or file:// only where
	// the evaluation runs locally).
	Data string `json:"data" yaml:"data"`
	// Label is the column of the true labels (or target values).
	Label string `json:"label" yaml:"label"`
	// Task is classification or regression; empty infers it from the
	// metrics.
	Task evaluate.Task `json:"task,omitempty" yaml:"task,omitempty"`
	// PositiveClass is the positive label of binary metrics (precision,
	// recall, f1, roc_auc). Empty: "1" when it is a label, else the
	// greatest label.
	PositiveClass string `json:"positive_class,omitempty" yaml:"positive_class,omitempty"`
	// Features are the columns given to the model, in order. Empty: every
	// column but the label (a model with a column signature picks its
	// own by name).
	Features []string `json:"features,omitempty" yaml:"features,omitempty"`
	// Prediction names the model output to read predictions from, when
	// the default rules (see the package documentation) pick the wrong
	// one.
	Prediction string `json:"prediction,omitempty" yaml:"prediction,omitempty"`
	// Baseline is the alias of the model to compare with (default
	// "champion"; "none" never compares). When the alias is not set, the
	// candidate is rubber-stamped: change thresholds are skipped.
	Baseline string `json:"baseline,omitempty" yaml:"baseline,omitempty"`
	// Metrics are the checks of the whole data.
	Metrics []MetricCheck `json:"metrics" yaml:"metrics"`
	// Slices are the checks per value of a column.
	Slices []SliceCheck `json:"slices,omitempty" yaml:"slices,omitempty"`
	// MaxRows bounds the rows read (0: the evaluator's bound). More rows
	// is an error, not a truncation.
	MaxRows int64 `json:"max_rows,omitempty" yaml:"max_rows,omitempty"`
	// ProtectAliases are aliases of Model that may point only at versions
	// with a passing result of this policy.
	ProtectAliases []string `json:"protect_aliases,omitempty" yaml:"protect_aliases,omitempty"`
	// ProtectEndpoints are endpoints that may route traffic to a version
	// of Model only when it has a passing result of this policy.
	ProtectEndpoints []string `json:"protect_endpoints,omitempty" yaml:"protect_endpoints,omitempty"`
}

// Direction says which way a metric improves.
type Direction string

// Directions.
const (
	HigherIsBetter Direction = "higher"
	LowerIsBetter  Direction = "lower"
)

// MetricCheck is a metric with its thresholds. A metric without either
// is computed and reported, not checked.
type MetricCheck struct {
	Name string `json:"name" yaml:"name"`
	// Direction overrides the metric's own (higher for accuracy, lower
	// for log_loss …); it decides what max_worsening means.
	Direction Direction        `json:"direction,omitempty" yaml:"direction,omitempty"`
	Threshold *ValueThreshold  `json:"threshold,omitempty" yaml:"threshold,omitempty"`
	Change    *ChangeThreshold `json:"change,omitempty" yaml:"change,omitempty"`
}

// ValueThreshold bounds a metric's value: Min ≤ value ≤ Max.
type ValueThreshold struct {
	Min *float64 `json:"min,omitempty" yaml:"min,omitempty"`
	Max *float64 `json:"max,omitempty" yaml:"max,omitempty"`
}

// ChangeThreshold bounds a metric's change from the baseline's value:
// delta = candidate − baseline, or, when Relative, (candidate − baseline)
// / |baseline|. MaxDecrease fails a delta below −MaxDecrease, MaxIncrease
// one above MaxIncrease; MaxWorsening is whichever of the two the metric's
// direction makes a worsening. Zero allows no change that way.
type ChangeThreshold struct {
	MaxDecrease  *float64 `json:"max_decrease,omitempty" yaml:"max_decrease,omitempty"`
	MaxIncrease  *float64 `json:"max_increase,omitempty" yaml:"max_increase,omitempty"`
	MaxWorsening *float64 `json:"max_worsening,omitempty" yaml:"max_worsening,omitempty"`
	Relative     bool     `json:"relative,omitempty" yaml:"relative,omitempty"`
}

// SliceCheck computes metrics per value of Column and bounds how much
// they differ across slices: max − min ≤ MaxDisparity, min / max ≥
// MinRatio, and, with Threshold, every slice's value.
type SliceCheck struct {
	Column       string          `json:"column" yaml:"column"`
	Metrics      []string        `json:"metrics" yaml:"metrics"`
	MaxDisparity *float64        `json:"max_disparity,omitempty" yaml:"max_disparity,omitempty"`
	MinRatio     *float64        `json:"min_ratio,omitempty" yaml:"min_ratio,omitempty"`
	Threshold    *ValueThreshold `json:"threshold,omitempty" yaml:"threshold,omitempty"`
	// MinRows leaves slices with fewer rows out of the comparison (they
	// are still reported).
	MinRows int64 `json:"min_rows,omitempty" yaml:"min_rows,omitempty"`
}

// ParsePolicy reads a policy from YAML or JSON (one document) and
// validates it. Errors are errdefs invalid-argument errors wrapping
// FieldErrors, with lines.
func ParsePolicy(data []byte) (*Policy, error) { return parsePolicy(data, "") }

// ParsePolicyNamed is ParsePolicy for a document stored under name (a URL
// names it): a missing metadata.name is name, another one is an error.
func ParsePolicyNamed(data []byte, name string) (*Policy, error) { return parsePolicy(data, name) }

func parsePolicy(data []byte, name string) (*Policy, error) {
	if len(data) > MaxSpecBytes {
		return nil, errdefs.TooLarge("The policy document is larger than %d bytes", MaxSpecBytes)
	}
	if !utf8.Valid(data) {
		return nil, invalid(FieldErrors{{Msg: "the document is not valid UTF-8"}})
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		return nil, invalid(FieldErrors{{Msg: "not a YAML or JSON document: " + yamlMessage(err)}})
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, invalid(FieldErrors{{Msg: "more than one document; put one policy per document", Line: extra.Line}})
	}
	d := &decoder{lines: map[string]int{}}
	d.check("", &doc, reflect.TypeOf(Policy{}))
	if len(d.errs) > 0 {
		return nil, invalid(d.errs)
	}
	var p Policy
	if err := doc.Decode(&p); err != nil {
		return nil, invalid(FieldErrors{{Msg: yamlMessage(err)}})
	}
	if name != "" {
		switch p.Metadata.Name {
		case "":
			p.Metadata.Name = name
		case name:
		default:
			return nil, invalid(FieldErrors{{Path: "metadata.name", Line: d.lines["metadata.name"],
				Msg: fmt.Sprintf("is %q, but the URL names policy %q", clip(p.Metadata.Name), clip(name))}})
		}
	}
	if err := p.validate(d.lines); err != nil {
		return nil, err
	}
	return &p, nil
}

func yamlMessage(err error) string {
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

func invalid(es FieldErrors) error {
	return &errdefs.Error{Kind: errdefs.ErrInvalidArgument, Msg: "Invalid gate policy: " + es.Error(), Err: es}
}

// Validate checks the policy. The error is an errdefs invalid-argument
// error wrapping FieldErrors whose paths name the fields
// ("spec.metrics[1].threshold.min: must be a number").
func (p *Policy) Validate() error { return p.validate(nil) }

type validator struct {
	errs  FieldErrors
	lines map[string]int
}

func (v *validator) fail(path, format string, args ...any) {
	if len(v.errs) < maxFieldErrors {
		v.errs = append(v.errs, FieldError{Path: path, Msg: fmt.Sprintf(format, args...), Line: v.lines[path]})
	}
}

func (p *Policy) validate(lines map[string]int) error {
	v := &validator{lines: lines}
	if p.APIVersion != APIVersion {
		v.fail("apiVersion", "must be %q, not %q", APIVersion, clip(p.APIVersion))
	}
	if p.Kind != Kind {
		v.fail("kind", "must be %q, not %q", Kind, clip(p.Kind))
	}
	if err := ValidateName(p.Metadata.Name); err != nil {
		v.fail("metadata.name", "%s", errdefs.Message(err))
	}
	if len(p.Metadata.Description) > maxTextLen {
		v.fail("metadata.description", "longer than %d bytes", maxTextLen)
	}
	if len(p.Metadata.Labels) > maxProtected {
		v.fail("metadata.labels", "more than %d labels", maxProtected)
	}
	for k, val := range p.Metadata.Labels {
		if k == "" || len(k) > maxNameLen || len(val) > maxTextLen {
			v.fail("metadata.labels."+clip(k), "keys must have 1 to %d bytes and values at most %d", maxNameLen, maxTextLen)
		}
	}
	s := &p.Spec
	if s.Model == "" {
		v.fail("spec.model", "is required (the registered model the policy gates)")
	} else if len(s.Model) > 256 || strings.ContainsAny(s.Model, "\x00/") {
		v.fail("spec.model", "is not a registered model name")
	}
	if s.Data == "" {
		v.fail("spec.data", "is required (a dataset version name@version[/path], or a table file URI)")
	} else if _, err := ParseDataRef(s.Data); err != nil {
		v.fail("spec.data", "%s", errdefs.Message(err))
	}
	if s.Label == "" {
		v.fail("spec.label", "is required (the column of the true labels)")
	}
	switch s.Task {
	case "", evaluate.Classification, evaluate.Regression:
	default:
		v.fail("spec.task", "must be classification or regression, not %q", clip(string(s.Task)))
	}
	if s.Baseline != "" && s.Baseline != NoBaseline {
		if err := registry.ValidateAlias(s.Baseline); err != nil {
			v.fail("spec.baseline", "%s", errdefs.Message(err))
		}
	}
	if s.MaxRows < 0 {
		v.fail("spec.max_rows", "must not be negative")
	}
	if len(s.Prediction) > maxTextLen {
		v.fail("spec.prediction", "longer than %d bytes", maxTextLen)
	}
	seenFeature := map[string]bool{}
	for i, f := range s.Features {
		p := fmt.Sprintf("spec.features[%d]", i)
		switch {
		case f == "":
			v.fail(p, "must not be empty")
		case f == s.Label:
			v.fail(p, "is the label column")
		case seenFeature[f]:
			v.fail(p, "%q is listed twice", clip(f))
		}
		seenFeature[f] = true
	}
	if len(s.Features) > 100000 {
		v.fail("spec.features", "too many columns")
	}
	task := v.metrics(s)
	if task == evaluate.Regression && s.PositiveClass != "" {
		v.fail("spec.positive_class", "applies to classification only")
	}
	v.slices(s, task)
	v.names("spec.protect_aliases", s.ProtectAliases, func(a string) error { return registry.ValidateAlias(a) })
	v.names("spec.protect_endpoints", s.ProtectEndpoints, ValidateName)
	if len(v.errs) > 0 {
		return invalid(v.errs)
	}
	return nil
}

// metrics checks spec.metrics and returns the task they imply.
func (v *validator) metrics(s *Spec) evaluate.Task {
	task := s.Task
	if len(s.Metrics) == 0 && len(s.Slices) == 0 {
		v.fail("spec.metrics", "needs at least one metric (known: %s)", strings.Join(evaluate.MetricNames(""), ", "))
	}
	if len(s.Metrics) > maxMetrics {
		v.fail("spec.metrics", "more than %d metrics", maxMetrics)
		return task
	}
	seen := map[string]bool{}
	for i, m := range s.Metrics {
		path := fmt.Sprintf("spec.metrics[%d]", i)
		task = v.metricName(path+".name", m.Name, task)
		if seen[m.Name] {
			v.fail(path+".name", "metric %q is listed twice", clip(m.Name))
		}
		seen[m.Name] = true
		switch m.Direction {
		case "", HigherIsBetter, LowerIsBetter:
		default:
			v.fail(path+".direction", "must be higher or lower, not %q", clip(string(m.Direction)))
		}
		v.threshold(path+".threshold", m.Threshold)
		if c := m.Change; c != nil {
			cp := path + ".change"
			if c.MaxDecrease == nil && c.MaxIncrease == nil && c.MaxWorsening == nil {
				v.fail(cp, "needs max_decrease, max_increase or max_worsening")
			}
			v.nonNegative(cp+".max_decrease", c.MaxDecrease)
			v.nonNegative(cp+".max_increase", c.MaxIncrease)
			v.nonNegative(cp+".max_worsening", c.MaxWorsening)
		}
	}
	return task
}

// metricName checks a metric name against the task so far and returns
// the task.
func (v *validator) metricName(path, name string, task evaluate.Task) evaluate.Task {
	info, ok := evaluate.Lookup(name)
	switch {
	case name == "":
		v.fail(path, "is required")
	case !ok:
		v.fail(path, "unknown metric %q (known: %s)", clip(name), strings.Join(evaluate.MetricNames(""), ", "))
	case task == "":
		return info.Task
	case info.Task != task:
		v.fail(path, "%s is a %s metric; the policy's task is %s", name, info.Task, task)
	}
	return task
}

func (v *validator) threshold(path string, t *ValueThreshold) {
	if t == nil {
		return
	}
	if t.Min == nil && t.Max == nil {
		v.fail(path, "needs min or max")
	}
	v.finite(path+".min", t.Min)
	v.finite(path+".max", t.Max)
	if t.Min != nil && t.Max != nil && *t.Min > *t.Max {
		v.fail(path, "min %v is greater than max %v", *t.Min, *t.Max)
	}
}

func (v *validator) finite(path string, x *float64) {
	if x != nil && (math.IsNaN(*x) || math.IsInf(*x, 0)) {
		v.fail(path, "must be a finite number")
	}
}

func (v *validator) nonNegative(path string, x *float64) {
	v.finite(path, x)
	if x != nil && *x < 0 {
		v.fail(path, "must not be negative")
	}
}

func (v *validator) slices(s *Spec, task evaluate.Task) {
	if len(s.Slices) > maxSlices {
		v.fail("spec.slices", "more than %d slice checks", maxSlices)
		return
	}
	for i, sc := range s.Slices {
		path := fmt.Sprintf("spec.slices[%d]", i)
		switch {
		case sc.Column == "":
			v.fail(path+".column", "is required (the column to slice by)")
		case sc.Column == s.Label:
			v.fail(path+".column", "is the label column; slice by a feature")
		}
		if len(sc.Metrics) == 0 {
			v.fail(path+".metrics", "needs at least one metric")
		}
		if len(sc.Metrics) > maxMetrics {
			v.fail(path+".metrics", "more than %d metrics", maxMetrics)
			continue
		}
		seen := map[string]bool{}
		for j, m := range sc.Metrics {
			mp := fmt.Sprintf("%s.metrics[%d]", path, j)
			task = v.metricName(mp, m, task)
			if seen[m] {
				v.fail(mp, "metric %q is listed twice", clip(m))
			}
			seen[m] = true
		}
		if sc.MaxDisparity == nil && sc.MinRatio == nil && sc.Threshold == nil {
			v.fail(path, "needs max_disparity, min_ratio or threshold")
		}
		v.nonNegative(path+".max_disparity", sc.MaxDisparity)
		v.finite(path+".min_ratio", sc.MinRatio)
		if sc.MinRatio != nil && (*sc.MinRatio < 0 || *sc.MinRatio > 1) {
			v.fail(path+".min_ratio", "must be between 0 and 1")
		}
		v.threshold(path+".threshold", sc.Threshold)
		if sc.MinRows < 0 {
			v.fail(path+".min_rows", "must not be negative")
		}
	}
}

func (v *validator) names(path string, names []string, check func(string) error) {
	if len(names) > maxProtected {
		v.fail(path, "more than %d names", maxProtected)
		return
	}
	seen := map[string]bool{}
	for i, n := range names {
		p := fmt.Sprintf("%s[%d]", path, i)
		if err := check(n); err != nil {
			v.fail(p, "%s", errdefs.Message(err))
		} else if seen[n] {
			v.fail(p, "%q is listed twice", n)
		}
		seen[n] = true
	}
}

// ValidateName checks the name of a policy or an endpoint: 1 to 63
// lowercase letters, digits, '-' and '_', starting with a letter or digit
// (names appear in tag keys kiln.gate.<name>).
func ValidateName(name string) error {
	if name == "" {
		return errdefs.Invalid("is required")
	}
	if len(name) > maxNameLen {
		return errdefs.Invalid("%q is longer than %d characters", clip(name), maxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || i > 0 && (c == '-' || c == '_')
		if !ok {
			return errdefs.Invalid("%q is not a valid name: use lowercase letters, digits, '-' and '_', starting with a letter or digit", clip(name))
		}
	}
	return nil
}

// Normalized returns the policy with defaults filled in: the baseline
// alias and the task.
func (p *Policy) Normalized() *Policy {
	q := *p
	q.Spec.Metrics = append([]MetricCheck(nil), p.Spec.Metrics...)
	if q.Spec.Baseline == "" {
		q.Spec.Baseline = DefaultBaseline
	}
	if q.Spec.Task == "" {
		q.Spec.Task = p.Spec.InferTask()
	}
	return &q
}

// InferTask returns the task: Task, else that of the first metric.
func (s *Spec) InferTask() evaluate.Task {
	if s.Task != "" {
		return s.Task
	}
	for _, m := range s.Metrics {
		if info, ok := evaluate.Lookup(m.Name); ok {
			return info.Task
		}
	}
	for _, sc := range s.Slices {
		for _, m := range sc.Metrics {
			if info, ok := evaluate.Lookup(m); ok {
				return info.Task
			}
		}
	}
	return evaluate.Classification
}

// Digest identifies the policy's spec: the SHA-256 of its JSON encoding.
// A result records the digest of the spec it was evaluated under; a
// changed spec needs new results before it lets a version through.
func (p *Policy) Digest() string {
	b, _ := json.Marshal(p.Spec)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// DataRef is a parsed spec.data: a dataset version (and a file in it),
// or a URI.
type DataRef struct {
	// Dataset is set for a dataset version reference.
	Dataset *dataset.VersionRef
	// Path is the file inside the dataset version ("" for every table
	// file of the version).
	Path string
	// URI is set for anything else: a local path, file://,
	// mlflow-artifacts:/…, s3://….
	URI string
}

func (r DataRef) String() string {
	if r.Dataset != nil {
		if r.Path != "" {
			return r.Dataset.String() + "/" + r.Path
		}
		return r.Dataset.String()
	}
	return r.URI
}

// IsLocal reports whether the reference is a path on the local machine.
func (r DataRef) IsLocal() bool {
	if r.Dataset != nil {
		return false
	}
	return !strings.Contains(r.URI, "://") && !strings.HasPrefix(r.URI, "mlflow-artifacts:") || strings.HasPrefix(r.URI, "file:")
}

// ParseDataRef parses spec.data: "name@version" or "name@latest" with an
// optional "/path/in/version", else a URI or a local path. A reference
// starting with '/', '.' or a URI scheme is never a dataset.
func ParseDataRef(s string) (DataRef, error) {
	if strings.ContainsRune(s, 0) || len(s) > 4096 {
		return DataRef{}, errdefs.Invalid("invalid data reference")
	}
	if s == "" {
		return DataRef{}, errdefs.Invalid("empty data reference")
	}
	if strings.Contains(s, "://") || strings.HasPrefix(s, "mlflow-artifacts:") || strings.HasPrefix(s, "file:") ||
		strings.HasPrefix(s, "/") || strings.HasPrefix(s, ".") || !strings.Contains(s, "@") {
		return DataRef{URI: s}, nil
	}
	at := strings.IndexByte(s, '@')
	refPart, path := s, ""
	if slash := strings.IndexByte(s[at:], '/'); slash >= 0 {
		refPart, path = s[:at+slash], s[at+slash+1:]
		if err := dataset.ValidatePath(path); err != nil {
			return DataRef{}, err
		}
	}
	ref, err := dataset.ParseVersionRef(refPart)
	if err != nil {
		return DataRef{}, err
	}
	return DataRef{Dataset: &ref, Path: path}, nil
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
