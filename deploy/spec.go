package deploy

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/feature"
	"github.com/kiln-ml/kiln/pii"
)

// APIVersion is the apiVersion of Kiln's declarative documents.
const APIVersion = "kiln.dev/v1"

// KindEndpoint is the kind of an Endpoint document.
const KindEndpoint = "Endpoint"

// Endpoint is the declarative description of a deployed endpoint: what
// `kiln apply -f endpoint.yaml` sends and `kiln get endpoint` shows.
//
//	apiVersion: kiln.dev/v1
//	kind: Endpoint
//	metadata: {name: churn, labels: {env: prod}}
//	spec:
//	  model: churn
//	  routes:
//	    - {name: main, alias: champion, weight: 100}
//	  shadow: {version: "7", percent: 10}
//	  rollout:
//	    strategy: canary
//	    steps: [{weight: 10, interval: 5m}, {weight: 50, interval: 10m}]
//	    analysis: {max_error_rate: 0.01, max_p99_latency: 50ms, min_requests: 100}
type Endpoint struct {
	APIVersion string       `json:"apiVersion" yaml:"apiVersion"`
	Kind       string       `json:"kind" yaml:"kind"`
	Metadata   Metadata     `json:"metadata" yaml:"metadata"`
	Spec       EndpointSpec `json:"spec" yaml:"spec"`
}

// Metadata names a document.
type Metadata struct {
	Name        string            `json:"name" yaml:"name"`
	Description string            `json:"description,omitempty" yaml:"description,omitempty"`
	Labels      map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
}

// EndpointSpec is the desired state of an endpoint.
type EndpointSpec struct {
	// Model is the registered model that routes, the shadow and the
	// experiment refer to unless they name their own.
	Model string `json:"model,omitempty" yaml:"model,omitempty"`
	// Routes share the endpoint's traffic by weight (at least one; the
	// weights need not sum to 100, they are relative; a weight of 0 keeps
	// a route loaded but idle).
	Routes []Route `json:"routes" yaml:"routes"`
	// Shadow, if set, receives a copy of a percentage of the requests;
	// its answers are recorded, never returned.
	Shadow *Shadow `json:"shadow,omitempty" yaml:"shadow,omitempty"`
	// Experiment, if set, makes the routes the variants of an A/B test:
	// a request carrying the key header always reaches the same variant.
	Experiment *Experiment `json:"experiment,omitempty" yaml:"experiment,omitempty"`
	// Rollout says how a change of the (single) route's model version
	// reaches traffic; nil means at once.
	Rollout *Rollout `json:"rollout,omitempty" yaml:"rollout,omitempty"`
	// Capacity limits concurrency and sizes the worker pool.
	Capacity *Capacity `json:"capacity,omitempty" yaml:"capacity,omitempty"`
	// Logging says which requests the prediction log records (package
	// monitor/predlog); nil means every request and response.
	Logging *Logging `json:"logging,omitempty" yaml:"logging,omitempty"`
	// Features, if set, makes the endpoint fill in its model's features
	// from the feature store: requests carry the entity join keys, and
	// the features are looked up online and added as columns named by
	// the feature (see EndpointFeatures).
	Features *EndpointFeatures `json:"features,omitempty" yaml:"features,omitempty"`
}

// What an endpoint does for an entity without a feature value.
const (
	// OnMissingError answers the request 400, naming the entity key and
	// the feature (the default).
	OnMissingError = "error"
	// OnMissingDefault serves the feature's declared default, and the
	// error where the feature has none.
	OnMissingDefault = "default"
)

// EndpointFeatures are the features an endpoint's model needs, looked up
// in the online store by the entity keys each request carries:
//
//	features:
//	  refs: [customer_stats:orders_7d, customer_stats:spend_7d]
//	  on_missing: default
//
// The model sees each feature as a column named by the feature
// ("orders_7d"), so two refs may not share a feature name. A column the
// request sends itself wins over the looked-up value (a null cell is
// filled in).
type EndpointFeatures struct {
	// Refs are "view:feature" references (the views must be online).
	Refs []string `json:"refs" yaml:"refs"`
	// OnMissing is "error" (default) or "default": what an entity that
	// the online store has no value for (NOT_FOUND, OUTSIDE_MAX_AGE)
	// gets.
	OnMissing string `json:"on_missing,omitempty" yaml:"on_missing,omitempty"`
}

// Logging modes.
const (
	LogAll      = "all"      // inputs and outputs
	LogRequest  = "request"  // inputs only
	LogResponse = "response" // outputs only
	LogNone     = "none"     // nothing
)

// Logging configures an endpoint's prediction log, as KServe's
// InferenceService logger does.
type Logging struct {
	// Mode is "all" (default), "request", "response" or "none". Every mode
	// but none records the request's metadata (id, route, model version,
	// latency, status).
	Mode string `json:"mode,omitempty" yaml:"mode,omitempty"`
	// SampleRate is the share of requests recorded, in (0, 1]; 0 means 1.
	SampleRate float64 `json:"sample_rate,omitempty" yaml:"sample_rate,omitempty"`
	// SubjectHeader names the request header whose value is recorded as
	// the request's subject key (a customer id, for erasure and slicing);
	// default "X-Kiln-Subject".
	SubjectHeader string `json:"subject_header,omitempty" yaml:"subject_header,omitempty"`
	// PII masks personal data in the logged string inputs and outputs
	// (and error messages) before they are written; nil logs them as
	// they came.
	PII *LogPII `json:"pii,omitempty" yaml:"pii,omitempty"`
	// Retention is how long the endpoint's shipped prediction logs are
	// kept ("30d", "720h"), overriding the server's default
	// (monitor.prediction_log.retention) for this endpoint; absent or 0
	// means the default. It must not be negative.
	Retention Duration `json:"retention,omitempty" yaml:"retention,omitempty"`
}

// LogPII chooses what the prediction log masks (package pii): with Mask,
// every built-in kind unless Kinds names some, plus the Custom detectors
// (name → regular expression).
type LogPII struct {
	Mask   bool              `json:"mask" yaml:"mask"`
	Kinds  []pii.Kind        `json:"kinds,omitempty" yaml:"kinds,omitempty"`
	Custom map[string]string `json:"custom,omitempty" yaml:"custom,omitempty"`
}

// Scanner returns the detectors of p (nil when p masks nothing).
func (p *LogPII) Scanner() (*pii.Scanner, error) {
	if p == nil || !p.Mask {
		return nil, nil
	}
	return pii.New(pii.Config{Kinds: p.Kinds, Custom: p.Custom})
}

// DefaultSubjectHeader is the subject header of Logging.
const DefaultSubjectHeader = "X-Kiln-Subject"

// Effective returns l with its defaults filled in (l may be nil).
func (l *Logging) Effective() Logging {
	var e Logging
	if l != nil {
		e = *l
	}
	if e.Mode == "" {
		e.Mode = LogAll
	}
	if e.SampleRate == 0 {
		e.SampleRate = 1
	}
	if e.SubjectHeader == "" {
		e.SubjectHeader = DefaultSubjectHeader
	}
	return e
}

// ModelRef names a registered model version directly or through an alias.
type ModelRef struct {
	// Model is the registered model name; empty means EndpointSpec.Model.
	Model string `json:"model,omitempty" yaml:"model,omitempty"`
	// Version is a version number ("3"); exclusive with Alias.
	Version string `json:"version,omitempty" yaml:"version,omitempty"`
	// Alias is a registry alias ("champion"); exclusive with Version. An
	// alias is resolved when the endpoint is applied and whenever it moves.
	Alias string `json:"alias,omitempty" yaml:"alias,omitempty"`
}

// Route is one share of an endpoint's traffic.
type Route struct {
	// Name identifies the route in metrics, events and A/B results;
	// default "r<index>".
	Name     string `json:"name,omitempty" yaml:"name,omitempty"`
	ModelRef `json:",inline" yaml:",inline"`
	Weight   float64 `json:"weight" yaml:"weight"`
}

// Shadow mirrors traffic to a model whose answers are only recorded.
type Shadow struct {
	ModelRef `json:",inline" yaml:",inline"`
	// Percent of requests mirrored, 0 < Percent ≤ 100.
	Percent float64 `json:"percent" yaml:"percent"`
}

// Experiment is an A/B test over the routes.
type Experiment struct {
	// KeyHeader is the request header (HTTP header or gRPC metadata) whose
	// value assigns a request to a variant, stickily; requests without it
	// are assigned at random by weight.
	KeyHeader string `json:"key_header" yaml:"key_header"`
	// Metric is the quality metric compared between variants when labels
	// arrive (monitoring), e.g. "accuracy".
	Metric string `json:"metric,omitempty" yaml:"metric,omitempty"`
}

// Strategies of a Rollout.
const (
	StrategyCanary    = "canary"
	StrategyBlueGreen = "blue-green"
)

// Rollout is how a new model version reaches traffic.
type Rollout struct {
	// Strategy is "canary" or "blue-green".
	Strategy string `json:"strategy" yaml:"strategy"`
	// Steps of a canary: the new version's traffic percentage and how
	// long it holds before the next step. After the last step the new
	// version gets 100%.
	Steps []Step `json:"steps,omitempty" yaml:"steps,omitempty"`
	// Analysis bounds the live metrics of the new version; outside them
	// the rollout rolls back automatically.
	Analysis *Analysis `json:"analysis,omitempty" yaml:"analysis,omitempty"`
	// KeepPrevious is how long the previous version stays loaded after a
	// blue-green switch or a finished canary, for an instant rollback
	// (default 10m).
	KeepPrevious Duration `json:"keep_previous,omitempty" yaml:"keep_previous,omitempty"`
}

// Step is one step of a canary rollout.
type Step struct {
	Weight   float64  `json:"weight" yaml:"weight"`
	Interval Duration `json:"interval,omitempty" yaml:"interval,omitempty"`
}

// Analysis is the health check of a rollout step.
type Analysis struct {
	// MaxErrorRate is the largest tolerated share of failed requests
	// (server errors and model errors; 0.01 = 1%).
	MaxErrorRate *float64 `json:"max_error_rate,omitempty" yaml:"max_error_rate,omitempty"`
	// MaxP99Latency is the largest tolerated 99th percentile latency.
	MaxP99Latency Duration `json:"max_p99_latency,omitempty" yaml:"max_p99_latency,omitempty"`
	// MinRequests is how many requests the new version must have served
	// in a step before the step can pass (default 20).
	MinRequests int `json:"min_requests,omitempty" yaml:"min_requests,omitempty"`
	// Quality, when labels exist, bounds a quality metric of the new
	// version (e.g. accuracy ≥ 0.8).
	Quality *QualityBound `json:"quality,omitempty" yaml:"quality,omitempty"`
}

// QualityBound bounds a labelled quality metric.
type QualityBound struct {
	Metric string   `json:"metric" yaml:"metric"`
	Min    *float64 `json:"min,omitempty" yaml:"min,omitempty"`
	Max    *float64 `json:"max,omitempty" yaml:"max,omitempty"`
}

// Capacity limits an endpoint's concurrency.
type Capacity struct {
	// MaxConcurrency is the most requests predicted at once (0: no limit
	// beyond the worker pool).
	MaxConcurrency int `json:"max_concurrency,omitempty" yaml:"max_concurrency,omitempty"`
	// MinWorkers and MaxWorkers bound the worker pool, which scales by
	// in-flight load in steps.
	MinWorkers int `json:"min_workers,omitempty" yaml:"min_workers,omitempty"`
	MaxWorkers int `json:"max_workers,omitempty" yaml:"max_workers,omitempty"`
	// QueueSize is how many requests may wait for a worker; beyond it
	// requests are shed with 429 and Retry-After.
	QueueSize int `json:"queue_size,omitempty" yaml:"queue_size,omitempty"`
	// QueueTimeout is the longest a request waits in the queue.
	QueueTimeout Duration `json:"queue_timeout,omitempty" yaml:"queue_timeout,omitempty"`
}

// Duration is a time.Duration written as Go writes it ("5m", "250ms").
// It is read as Go reads it, or with a leading number of days: "30d",
// "1.5d", "1d12h".
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := parseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q (use e.g. 30s, 5m, 250ms, 30d)", b)
	}
	*d = Duration(v)
	return nil
}

// parseDuration is time.ParseDuration that also takes a leading number
// of days ("30d", "-1.5d", "1d12h").
func parseDuration(s string) (time.Duration, error) {
	num, rest, ok := strings.Cut(s, "d")
	if !ok {
		return time.ParseDuration(s)
	}
	neg := strings.HasPrefix(num, "-")
	num = strings.TrimPrefix(strings.TrimPrefix(num, "-"), "+")
	if num == "" || strings.ContainsAny(num, "+-eEinfINFxX_") {
		return 0, errors.New("invalid number of days")
	}
	days, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, err
	}
	v := days * float64(24*time.Hour)
	if rest != "" {
		if strings.ContainsAny(rest[:1], "+-") {
			return 0, errors.New("sign after the days")
		}
		r, err := time.ParseDuration(rest)
		if err != nil {
			return 0, err
		}
		v += float64(r)
	}
	if v >= math.MaxInt64 {
		return 0, errors.New("duration out of range")
	}
	if neg {
		v = -v
	}
	return time.Duration(v), nil
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
	if err != nil {
		return fmt.Errorf("invalid duration %s", b)
	}
	*d = Duration(f * float64(time.Second))
	return nil
}

// ErrInvalidSpec is wrapped by every validation error.
var ErrInvalidSpec = errors.New("invalid endpoint spec")

// FieldError is one problem of a document, at a field path such as
// "spec.routes[1].weight" (which `kiln apply` maps to a line of the YAML).
type FieldError struct {
	Path string
	Msg  string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Msg }

// FieldErrors are all the problems of one document.
type FieldErrors []*FieldError

func (es FieldErrors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "; ")
}

// Unwrap makes errors.Is(err, ErrInvalidSpec) and
// errors.Is(err, errdefs.ErrInvalidArgument) hold.
func (es FieldErrors) Unwrap() []error { return []error{ErrInvalidSpec, errdefs.ErrInvalidArgument} }

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidName reports whether s is a valid endpoint or route name: a DNS
// label (lower-case letters, digits and '-', at most 63), so it fits URLs,
// metric labels and Kubernetes object names.
func ValidName(s string) bool { return nameRE.MatchString(s) }

// Normalize fills defaults: apiVersion, kind and route names.
func (e *Endpoint) Normalize() {
	if e.APIVersion == "" {
		e.APIVersion = APIVersion
	}
	if e.Kind == "" {
		e.Kind = KindEndpoint
	}
	for i := range e.Spec.Routes {
		if e.Spec.Routes[i].Name == "" {
			e.Spec.Routes[i].Name = "r" + strconv.Itoa(i)
		}
	}
}

// Validate checks the document and returns FieldErrors (wrapping
// ErrInvalidSpec), or nil.
func (e *Endpoint) Validate() error {
	var errs FieldErrors
	add := func(path, format string, args ...any) {
		errs = append(errs, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
	if e.APIVersion != "" && e.APIVersion != APIVersion {
		add("apiVersion", "must be %q", APIVersion)
	}
	if e.Kind != "" && e.Kind != KindEndpoint {
		add("kind", "must be %q", KindEndpoint)
	}
	if !ValidName(e.Metadata.Name) {
		add("metadata.name", "must be a DNS label: lower-case letters, digits and '-', 1-63 characters, got %q", e.Metadata.Name)
	}
	s := &e.Spec
	checkRef := func(path string, r ModelRef) {
		if r.Model == "" && s.Model == "" {
			add(path+".model", "required (or set spec.model)")
		}
		switch {
		case r.Version != "" && r.Alias != "":
			add(path, "give version or alias, not both")
		case r.Version == "" && r.Alias == "":
			add(path, "give a version or an alias")
		case r.Version != "":
			if n, err := strconv.ParseInt(r.Version, 10, 64); err != nil || n < 1 {
				add(path+".version", "must be a positive integer, got %q", r.Version)
			}
		}
	}
	if len(s.Routes) == 0 {
		add("spec.routes", "at least one route is required")
	}
	names := map[string]int{}
	total := 0.0
	for i, r := range s.Routes {
		p := fmt.Sprintf("spec.routes[%d]", i)
		if r.Name != "" && !ValidName(r.Name) {
			add(p+".name", "must be a DNS label, got %q", r.Name)
		}
		if j, dup := names[r.Name]; dup && r.Name != "" {
			add(p+".name", "route %q is also spec.routes[%d]", r.Name, j)
		}
		names[r.Name] = i
		checkRef(p, r.ModelRef)
		if r.Weight < 0 || r.Weight != r.Weight {
			add(p+".weight", "must not be negative")
		}
		total += r.Weight
	}
	if len(s.Routes) > 0 && total <= 0 {
		add("spec.routes", "the weights sum to 0: no route would get traffic")
	}
	if sh := s.Shadow; sh != nil {
		checkRef("spec.shadow", sh.ModelRef)
		if !(sh.Percent > 0 && sh.Percent <= 100) {
			add("spec.shadow.percent", "must be in (0, 100], got %v", sh.Percent)
		}
	}
	if ex := s.Experiment; ex != nil {
		if ex.KeyHeader == "" {
			add("spec.experiment.key_header", "required")
		}
		if len(s.Routes) < 2 {
			add("spec.experiment", "an experiment needs at least two routes (its variants)")
		}
	}
	if ro := s.Rollout; ro != nil {
		if len(s.Routes) != 1 {
			add("spec.rollout", "a rollout moves traffic to the new version of a single route; this endpoint has %d routes", len(s.Routes))
		}
		if s.Experiment != nil {
			add("spec.rollout", "an endpoint runs an experiment or a rollout, not both")
		}
		switch ro.Strategy {
		case StrategyCanary:
			if len(ro.Steps) == 0 {
				add("spec.rollout.steps", "a canary needs at least one step")
			}
			prev := 0.0
			for i, st := range ro.Steps {
				p := fmt.Sprintf("spec.rollout.steps[%d]", i)
				if !(st.Weight > prev && st.Weight <= 100) {
					add(p+".weight", "must increase step by step within (0, 100], got %v", st.Weight)
				}
				if st.Weight < 100 && st.Interval <= 0 {
					add(p+".interval", "required (how long the step holds), e.g. 5m")
				}
				prev = st.Weight
			}
		case StrategyBlueGreen:
			if len(ro.Steps) > 0 {
				add("spec.rollout.steps", "blue-green switches at once; steps are for canary")
			}
		default:
			add("spec.rollout.strategy", "must be %q or %q, got %q", StrategyCanary, StrategyBlueGreen, ro.Strategy)
		}
		if a := ro.Analysis; a != nil {
			if a.MaxErrorRate != nil && !(*a.MaxErrorRate >= 0 && *a.MaxErrorRate <= 1) {
				add("spec.rollout.analysis.max_error_rate", "must be in [0, 1], got %v", *a.MaxErrorRate)
			}
			if a.MaxP99Latency < 0 {
				add("spec.rollout.analysis.max_p99_latency", "must not be negative")
			}
			if a.MinRequests < 0 {
				add("spec.rollout.analysis.min_requests", "must not be negative")
			}
			if q := a.Quality; q != nil {
				if q.Metric == "" {
					add("spec.rollout.analysis.quality.metric", "required")
				}
				if q.Min == nil && q.Max == nil {
					add("spec.rollout.analysis.quality", "give min or max")
				}
			}
		}
		if ro.KeepPrevious < 0 {
			add("spec.rollout.keep_previous", "must not be negative")
		}
	}
	if c := s.Capacity; c != nil {
		if c.MaxConcurrency < 0 || c.MinWorkers < 0 || c.MaxWorkers < 0 || c.QueueSize < 0 || c.QueueTimeout < 0 {
			add("spec.capacity", "values must not be negative")
		}
		if c.MaxWorkers > 0 && c.MinWorkers > c.MaxWorkers {
			add("spec.capacity.min_workers", "is larger than max_workers (%d > %d)", c.MinWorkers, c.MaxWorkers)
		}
	}
	if l := s.Logging; l != nil {
		switch l.Mode {
		case "", LogAll, LogRequest, LogResponse, LogNone:
		default:
			add("spec.logging.mode", "must be %q, %q, %q or %q, got %q", LogAll, LogRequest, LogResponse, LogNone, l.Mode)
		}
		if !(l.SampleRate >= 0 && l.SampleRate <= 1) {
			add("spec.logging.sample_rate", "must be in (0, 1], got %v", l.SampleRate)
		}
		if l.SubjectHeader != "" && !validHeaderName(l.SubjectHeader) {
			add("spec.logging.subject_header", "is not a valid header name: %q", l.SubjectHeader)
		}
		if _, err := l.PII.Scanner(); err != nil {
			add("spec.logging.pii", "%s", errdefs.Message(err))
		}
		if l.Retention < 0 {
			add("spec.logging.retention", "must not be negative, got %s (omit it or use 0 for the server's default)", l.Retention.D())
		}
	}
	if f := s.Features; f != nil {
		if len(f.Refs) == 0 {
			add("spec.features.refs", "name at least one feature (view:feature)")
		}
		names := map[string]int{}
		for i, r := range f.Refs {
			p := fmt.Sprintf("spec.features.refs[%d]", i)
			ref, err := feature.ParseRef(r)
			if err != nil {
				add(p, "%s", errdefs.Message(err))
				continue
			}
			if j, dup := names[ref.Feature]; dup {
				if f.Refs[j] == r {
					add(p, "%q is also spec.features.refs[%d]", r, j)
				} else {
					add(p, "feature %q is also spec.features.refs[%d] (%s): the model's columns are named by the feature, so the names must differ", ref.Feature, j, f.Refs[j])
				}
				continue
			}
			names[ref.Feature] = i
		}
		switch f.OnMissing {
		case "", OnMissingError, OnMissingDefault:
		default:
			add("spec.features.on_missing", "must be %q or %q, got %q", OnMissingError, OnMissingDefault, f.OnMissing)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return errs
}

// validHeaderName reports whether s is an HTTP header field name (an RFC
// 9110 token).
func validHeaderName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}
