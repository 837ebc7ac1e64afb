package alert

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
)

// Severities of a rule.
const (
	SeverityInfo     = "info"
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)

// Rule is one alert rule of a monitor: when Expr holds for a series for at
// least For, the series' alert fires.
type Rule struct {
	// Name is the rule's name, unique within its monitor; it becomes the
	// alert's "alertname" label.
	Name string `json:"name" yaml:"name"`
	// Expr is the condition (see ParseExpr).
	Expr string `json:"expr" yaml:"expr"`
	// For is how long the condition must hold before the alert fires;
	// 0 fires at the first evaluation that finds it true.
	For Duration `json:"for,omitempty" yaml:"for,omitempty"`
	// Severity is info, warning (the default when empty) or critical.
	Severity string `json:"severity,omitempty" yaml:"severity,omitempty"`
	// Labels are added to every alert of the rule.
	Labels map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
	// Annotations are Go text/templates rendered per alert with .Value,
	// .Labels and .Rule, e.g. "{{ .Labels.feature }} drifted ({{ .Value }})".
	Annotations map[string]string `json:"annotations,omitempty" yaml:"annotations,omitempty"`
	// Receivers name the receivers (PutReceiver) notified of the rule's
	// firing and resolved alerts.
	Receivers []string `json:"receivers,omitempty" yaml:"receivers,omitempty"`
	// Trigger, when set, names the pipeline that a firing alert starts
	// (through the engine's Hook).
	Trigger *Trigger `json:"trigger,omitempty" yaml:"trigger,omitempty"`
}

// Trigger names a pipeline to run when an alert fires, with parameters.
type Trigger struct {
	Pipeline   string            `json:"pipeline" yaml:"pipeline"`
	Parameters map[string]string `json:"parameters,omitempty" yaml:"parameters,omitempty"`
}

// Duration is a time.Duration written as Go writes it ("10m", "90s"); in
// JSON a number is read as seconds.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q (use e.g. 30s, 10m, 1h)", b)
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
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("invalid duration %s", b)
	}
	*d = Duration(f * float64(time.Second))
	return nil
}

var (
	ruleNameRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,127}$`)
	labelNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
)

// severity returns the rule's severity, warning when unset.
func (r *Rule) severity() string {
	if r.Severity == "" {
		return SeverityWarning
	}
	return r.Severity
}

// Validate checks the rule: a name, an expression that parses, a duration
// ≥ 0, a known severity, label names, annotation templates that parse and
// named receivers. Errors are errdefs invalid-argument errors naming the
// field.
func (r *Rule) Validate() error {
	if !ruleNameRE.MatchString(r.Name) {
		return errdefs.Invalid("alert rule %q: name must start with a letter or _ and hold only letters, digits, _ . - (at most 128)", r.Name)
	}
	if strings.TrimSpace(r.Expr) == "" {
		return errdefs.Invalid("alert rule %q: expr is required", r.Name)
	}
	if _, err := ParseExpr(r.Expr); err != nil {
		return errdefs.Invalid("alert rule %q: expr: %s", r.Name, errdefs.Message(err))
	}
	if r.For < 0 {
		return errdefs.Invalid("alert rule %q: for must be ≥ 0 (got %s)", r.Name, r.For.D())
	}
	switch r.Severity {
	case "", SeverityInfo, SeverityWarning, SeverityCritical:
	default:
		return errdefs.Invalid("alert rule %q: severity must be info, warning or critical (got %q)", r.Name, r.Severity)
	}
	for k := range r.Labels {
		if !labelNameRE.MatchString(k) {
			return errdefs.Invalid("alert rule %q: label name %q is not a valid label name", r.Name, k)
		}
		if k == LabelAlertName || k == LabelMonitor || k == LabelSeverity {
			return errdefs.Invalid("alert rule %q: label %q is set by Kiln", r.Name, k)
		}
	}
	for k, v := range r.Annotations {
		if !labelNameRE.MatchString(k) {
			return errdefs.Invalid("alert rule %q: annotation name %q is not a valid name", r.Name, k)
		}
		if _, err := parseTemplate(k, v); err != nil {
			return errdefs.Invalid("alert rule %q: annotation %q: %v", r.Name, k, err)
		}
	}
	seen := map[string]bool{}
	for i, name := range r.Receivers {
		if strings.TrimSpace(name) == "" {
			return errdefs.Invalid("alert rule %q: receivers[%d] is empty", r.Name, i)
		}
		if seen[name] {
			return errdefs.Invalid("alert rule %q: receiver %q is listed twice", r.Name, name)
		}
		seen[name] = true
	}
	if r.Trigger != nil && strings.TrimSpace(r.Trigger.Pipeline) == "" {
		return errdefs.Invalid("alert rule %q: trigger.pipeline is required", r.Name)
	}
	return nil
}

// ValidateRules validates each rule and that names are unique.
func ValidateRules(rules []Rule) error {
	seen := map[string]bool{}
	for i := range rules {
		if err := rules[i].Validate(); err != nil {
			return err
		}
		if seen[rules[i].Name] {
			return errdefs.Invalid("alert rule %q is defined twice", rules[i].Name)
		}
		seen[rules[i].Name] = true
	}
	return nil
}
