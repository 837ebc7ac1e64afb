package tune

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/kiln-ml/kiln/errdefs"
)

// The document type of this package.
const (
	APIVersion = "kiln.dev/v1"
	KindStudy  = "Study"
)

// Limits of a Study document.
const (
	MaxSpecBytes   = 1 << 20
	MaxTrials      = 100000
	MaxParallelism = 256
	maxFieldErrors = 20
	maxTextLen     = 1024
	maxCommandArgs = 1000
)

// Study is a study document:
//
//	apiVersion: kiln.dev/v1
//	kind: Study
//	metadata: {name: rf-search}
//	spec:
//	  experiment: rf-search                      # default studies/<name>
//	  objective: {metric: val_loss, direction: minimize}
//	  command: [python, train.py, --lr, "{{params.lr}}"]
//	  parameters:
//	    - {name: lr, type: float, low: 1e-4, high: 0.1, log: true}
//	    - {name: depth, type: int, low: 2, high: 12}
//	    - {name: optimizer, type: categorical, choices: [sgd, adam]}
//	    - {name: momentum, type: float, low: 0, high: 0.99, when: {optimizer: sgd}}
//	  sampler: {type: tpe, seed: 7}
//	  pruner: {type: median}
//	  trials: 50
//	  parallelism: 4
//	  timeout: 2h
type Study struct {
	APIVersion string    `json:"apiVersion" yaml:"apiVersion"`
	Kind       string    `json:"kind" yaml:"kind"`
	Metadata   Metadata  `json:"metadata" yaml:"metadata"`
	Spec       StudySpec `json:"spec" yaml:"spec"`
}

// Metadata names a document.
type Metadata struct {
	Name        string            `json:"name" yaml:"name"`
	Description string            `json:"description,omitempty" yaml:"description,omitempty"`
	Labels      map[string]string `json:"labels,omitempty" yaml:"labels,omitempty"`
}

// StudySpec is what a study searches and how.
type StudySpec struct {
	// Experiment is the MLflow experiment of the study's parent run and
	// its trials' child runs (default "studies/<name>", created if absent).
	Experiment string        `json:"experiment,omitempty" yaml:"experiment,omitempty"`
	Objective  ObjectiveSpec `json:"objective" yaml:"objective"`
	// Command runs one trial; {{params.NAME}}, {{trial.number}},
	// {{trial.run_id}} and {{study.name}} are substituted in each argument.
	Command []string `json:"command" yaml:"command"`
	// Env is added to the trial's environment (templates as in Command).
	Env map[string]string `json:"env,omitempty" yaml:"env,omitempty"`
	// WorkingDir is the trials' working directory (default the current one).
	WorkingDir string          `json:"working_dir,omitempty" yaml:"working_dir,omitempty"`
	Parameters []ParameterSpec `json:"parameters" yaml:"parameters"`
	Sampler    *SamplerSpec    `json:"sampler,omitempty" yaml:"sampler,omitempty"`
	Pruner     *PrunerSpec     `json:"pruner,omitempty" yaml:"pruner,omitempty"`
	// Trials is how many trials to run (for a grid: at most the grid's
	// size, which is the default). Required unless Timeout is set.
	Trials int `json:"trials,omitempty" yaml:"trials,omitempty"`
	// Parallelism is how many trials run at once (default 1).
	Parallelism int `json:"parallelism,omitempty" yaml:"parallelism,omitempty"`
	// Timeout stops starting trials once this long has passed; running
	// ones finish.
	Timeout Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	// MaxFailedTrials ends the study after this many failed trials (0:
	// never).
	MaxFailedTrials int `json:"max_failed_trials,omitempty" yaml:"max_failed_trials,omitempty"`
}

// ObjectiveSpec names the metric a trial is judged by.
type ObjectiveSpec struct {
	// Metric is the MLflow metric key the trial logs; its last value is
	// the trial's value, its history (by step) the intermediate values.
	Metric    string    `json:"metric" yaml:"metric"`
	Direction Direction `json:"direction,omitempty" yaml:"direction,omitempty"`
}

// ParameterSpec is a Param as written in a document.
type ParameterSpec struct {
	Name    string         `json:"name" yaml:"name"`
	Type    ParamType      `json:"type" yaml:"type"`
	Low     *float64       `json:"low,omitempty" yaml:"low,omitempty"`
	High    *float64       `json:"high,omitempty" yaml:"high,omitempty"`
	Log     bool           `json:"log,omitempty" yaml:"log,omitempty"`
	Step    *float64       `json:"step,omitempty" yaml:"step,omitempty"`
	Choices []any          `json:"choices,omitempty" yaml:"choices,omitempty"`
	When    map[string]any `json:"when,omitempty" yaml:"when,omitempty"`
}

// SamplerSpec chooses and configures the sampler.
type SamplerSpec struct {
	// Type is grid, random or tpe (the default).
	Type string `json:"type,omitempty" yaml:"type,omitempty"`
	// Seed makes the study reproducible (absent: a random seed, reported
	// with the result).
	Seed *int64 `json:"seed,omitempty" yaml:"seed,omitempty"`
	// NStartupTrials are random trials before TPE models (default 10).
	NStartupTrials *int `json:"n_startup_trials,omitempty" yaml:"n_startup_trials,omitempty"`
	// NEICandidates are the candidates TPE scores per parameter (default 24).
	NEICandidates int `json:"n_ei_candidates,omitempty" yaml:"n_ei_candidates,omitempty"`
	// ConstantLiar counts running trials as bad ones when TPE samples
	// (default: true when parallelism > 1).
	ConstantLiar *bool `json:"constant_liar,omitempty" yaml:"constant_liar,omitempty"`
}

// PrunerSpec chooses and configures the pruner.
type PrunerSpec struct {
	// Type is none (the default), median or asha.
	Type string `json:"type,omitempty" yaml:"type,omitempty"`
	// Median: NStartupTrials completed trials before any pruning (default
	// 5), NWarmupSteps steps of each trial before it may be pruned
	// (default 0), IntervalSteps between checks (default 1).
	NStartupTrials *int `json:"n_startup_trials,omitempty" yaml:"n_startup_trials,omitempty"`
	NWarmupSteps   int  `json:"n_warmup_steps,omitempty" yaml:"n_warmup_steps,omitempty"`
	IntervalSteps  int  `json:"interval_steps,omitempty" yaml:"interval_steps,omitempty"`
	// ASHA: rung k is at step MinResource·ReductionFactor^(MinEarlyStoppingRate+k)
	// (defaults 1, 3, 0).
	MinResource          int `json:"min_resource,omitempty" yaml:"min_resource,omitempty"`
	ReductionFactor      int `json:"reduction_factor,omitempty" yaml:"reduction_factor,omitempty"`
	MinEarlyStoppingRate int `json:"min_early_stopping_rate,omitempty" yaml:"min_early_stopping_rate,omitempty"`
}

// Duration is a time.Duration written as Go writes it ("90s", "1h30m");
// in JSON a number is seconds.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q (use e.g. 90s, 30m, 2h)", clip(string(b)))
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
		return fmt.Errorf("invalid duration %s", clip(string(b)))
	}
	*d = Duration(f * float64(time.Second))
	return nil
}

// UnmarshalYAML accepts a duration string or a number of seconds.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: a duration is a string such as 30m", n.Line)
	}
	if f, err := strconv.ParseFloat(n.Value, 64); err == nil && n.Tag != "!!str" {
		if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e9 {
			return fmt.Errorf("line %d: invalid duration %s", n.Line, clip(n.Value))
		}
		*d = Duration(f * float64(time.Second))
		return nil
	}
	if err := d.UnmarshalText([]byte(n.Value)); err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	return nil
}

type validator struct{ errs errdefs.FieldErrors }

func (v *validator) fail(path, format string, args ...any) {
	if len(v.errs) < maxFieldErrors {
		v.errs = append(v.errs, errdefs.FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
}

var (
	nameRE      = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	paramNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,63}$`)
	envNameRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	templateRE  = regexp.MustCompile(`\{\{\s*([^{}]*?)\s*\}\}`)
)

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// ValidateName checks a study name: a DNS label.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) {
		return errdefs.Invalid("%q is not a valid study name: use a DNS label (lower-case letters, digits and '-', 1-63 characters)", clip(name))
	}
	return nil
}

// ParseStudy reads a Study from YAML or JSON, rejecting unknown fields,
// fills its defaults and validates it. With name set, a missing
// metadata.name is name. The error wraps errdefs.FieldErrors whose paths
// name the fields ("spec.parameters[2].low").
func ParseStudy(data []byte, name string) (*Study, error) {
	if len(data) > MaxSpecBytes {
		return nil, errdefs.TooLarge("The study document is larger than %d bytes", MaxSpecBytes)
	}
	if !utf8.Valid(data) {
		return nil, errdefs.InvalidFields("study", errdefs.FieldErrors{{Msg: "the document is not valid UTF-8"}})
	}
	var s Study
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		msg := "empty document"
		if !errors.Is(err, io.EOF) {
			msg = "not a valid YAML or JSON document: " + strings.TrimPrefix(err.Error(), "yaml: ")
		}
		return nil, errdefs.InvalidFields("study", errdefs.FieldErrors{{Msg: msg}})
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, errdefs.InvalidFields("study", errdefs.FieldErrors{{Msg: "more than one document"}})
	}
	if s.Metadata.Name == "" {
		s.Metadata.Name = name
	}
	s.Normalize()
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// Normalize fills the defaults: apiVersion, kind, experiment, direction,
// sampler (tpe, 10 startup trials, 24 candidates), pruner (none; median
// 5/0/1, ASHA 1/3/0), parallelism 1.
func (s *Study) Normalize() {
	if s.APIVersion == "" {
		s.APIVersion = APIVersion
	}
	if s.Kind == "" {
		s.Kind = KindStudy
	}
	sp := &s.Spec
	if sp.Experiment == "" && s.Metadata.Name != "" {
		sp.Experiment = "studies/" + s.Metadata.Name
	}
	if sp.Objective.Direction == "" {
		sp.Objective.Direction = Minimize
	}
	if sp.Sampler == nil {
		sp.Sampler = &SamplerSpec{}
	}
	if sp.Sampler.Type == "" {
		sp.Sampler.Type = "tpe"
	}
	if sp.Sampler.Type == "tpe" {
		if sp.Sampler.NStartupTrials == nil {
			n := DefaultStartupTrials
			sp.Sampler.NStartupTrials = &n
		}
		if sp.Sampler.NEICandidates == 0 {
			sp.Sampler.NEICandidates = DefaultEICandidates
		}
	}
	if sp.Pruner == nil {
		sp.Pruner = &PrunerSpec{}
	}
	p := sp.Pruner
	if p.Type == "" {
		p.Type = "none"
	}
	switch p.Type {
	case "median":
		if p.NStartupTrials == nil {
			n := 5
			p.NStartupTrials = &n
		}
		if p.IntervalSteps == 0 {
			p.IntervalSteps = 1
		}
	case "asha":
		if p.MinResource == 0 {
			p.MinResource = 1
		}
		if p.ReductionFactor == 0 {
			p.ReductionFactor = 3
		}
	}
	if sp.Parallelism == 0 {
		sp.Parallelism = 1
	}
	for i := range sp.Parameters {
		if sp.Parameters[i].Type == TypeInt && sp.Parameters[i].Step == nil {
			one := 1.0
			sp.Parameters[i].Step = &one
		}
	}
}

// Params converts the document's parameters to Params.
func (s *StudySpec) Params() []Param {
	ps := make([]Param, len(s.Parameters))
	for i, p := range s.Parameters {
		q := Param{Name: p.Name, Type: p.Type, Log: p.Log, Choices: p.Choices, When: p.When}
		if p.Low != nil {
			q.Low = *p.Low
		}
		if p.High != nil {
			q.High = *p.High
		}
		if p.Step != nil {
			q.Step = *p.Step
		}
		ps[i] = q
	}
	return ps
}

// Validate checks a normalized document; the error wraps FieldErrors.
func (s *Study) Validate() error {
	v := &validator{}
	if s.APIVersion != APIVersion {
		v.fail("apiVersion", "must be %q, not %q", APIVersion, clip(s.APIVersion))
	}
	if s.Kind != KindStudy {
		v.fail("kind", "must be %q, not %q", KindStudy, clip(s.Kind))
	}
	if err := ValidateName(s.Metadata.Name); err != nil {
		v.fail("metadata.name", "%s", errdefs.Message(err))
	}
	if len(s.Metadata.Description) > maxTextLen {
		v.fail("metadata.description", "longer than %d bytes", maxTextLen)
	}
	sp := &s.Spec
	if len(sp.Experiment) > 500 {
		v.fail("spec.experiment", "longer than 500 bytes")
	}
	switch m := sp.Objective.Metric; {
	case m == "":
		v.fail("spec.objective.metric", "is required (the MLflow metric each trial logs)")
	case len(m) > 250 || strings.ContainsAny(m, "\x00\n"):
		v.fail("spec.objective.metric", "%q is not an MLflow metric key", clip(m))
	}
	if d := sp.Objective.Direction; d != Minimize && d != Maximize {
		v.fail("spec.objective.direction", "must be minimize or maximize, not %q", clip(string(d)))
	}
	// The search space first: templates are checked against it.
	for i, p := range sp.Parameters {
		path := fmt.Sprintf("spec.parameters[%d]", i)
		if p.Type == TypeFloat || p.Type == TypeInt {
			if p.Low == nil {
				v.fail(path+".low", "is required")
			}
			if p.High == nil {
				v.fail(path+".high", "is required")
			}
			if p.Step != nil && *p.Step <= 0 {
				v.fail(path+".step", "must be positive")
			}
		}
	}
	params := sp.Params()
	space := v.space("spec.parameters", params)
	if len(sp.Command) == 0 {
		v.fail("spec.command", "is required: the program and arguments that run one trial")
	} else if len(sp.Command) > maxCommandArgs {
		v.fail("spec.command", "more than %d arguments", maxCommandArgs)
	}
	if len(sp.Command) > 0 && sp.Command[0] == "" {
		v.fail("spec.command[0]", "is empty")
	}
	for i, a := range sp.Command {
		v.templates(fmt.Sprintf("spec.command[%d]", i), a, space)
	}
	keys := make([]string, 0, len(sp.Env))
	for k := range sp.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !envNameRE.MatchString(k) {
			v.fail("spec.env", "%q is not an environment variable name", clip(k))
			continue
		}
		v.templates("spec.env."+k, sp.Env[k], space)
	}
	v.templates("spec.working_dir", sp.WorkingDir, space)
	grid := v.sampler(sp.Sampler, space)
	v.pruner(sp.Pruner)
	switch {
	case sp.Trials < 0 || sp.Trials > MaxTrials:
		v.fail("spec.trials", "must be between 1 and %d", MaxTrials)
	case sp.Trials == 0 && sp.Timeout == 0 && sp.Sampler.Type != "grid":
		v.fail("spec.trials", "is required (or set spec.timeout)")
	case grid > 0 && sp.Trials > grid:
		v.fail("spec.trials", "is %d, but the grid has %d points", sp.Trials, grid)
	}
	if sp.Parallelism < 1 || sp.Parallelism > MaxParallelism {
		v.fail("spec.parallelism", "must be between 1 and %d", MaxParallelism)
	}
	if sp.Timeout < 0 {
		v.fail("spec.timeout", "must not be negative")
	}
	if sp.MaxFailedTrials < 0 {
		v.fail("spec.max_failed_trials", "must not be negative")
	}
	if len(v.errs) > 0 {
		return errdefs.InvalidFields("study", v.errs)
	}
	return nil
}

// templates checks the {{…}} references of a command argument or env
// value.
func (v *validator) templates(path, s string, space *Space) {
	if strings.Count(s, "{{") != len(templateRE.FindAllString(s, -1)) {
		v.fail(path, "has an unclosed {{")
		return
	}
	for _, m := range templateRE.FindAllStringSubmatch(s, -1) {
		ref := m[1]
		switch {
		case strings.HasPrefix(ref, "params."):
			if !space.has(strings.TrimPrefix(ref, "params.")) {
				v.fail(path, "{{%s}} names no parameter", clip(ref))
			}
		case ref == "trial.number", ref == "trial.run_id", ref == "study.name":
		default:
			v.fail(path, "{{%s}} is not a known reference (params.NAME, trial.number, trial.run_id, study.name)", clip(ref))
		}
	}
}

// sampler checks the sampler block; for a grid it returns the grid's size.
func (v *validator) sampler(s *SamplerSpec, space *Space) int {
	switch s.Type {
	case "tpe":
		if s.NStartupTrials != nil && (*s.NStartupTrials < 0 || *s.NStartupTrials > MaxTrials) {
			v.fail("spec.sampler.n_startup_trials", "must be between 0 and %d", MaxTrials)
		}
		if s.NEICandidates < 1 || s.NEICandidates > 10000 {
			v.fail("spec.sampler.n_ei_candidates", "must be between 1 and 10000")
		}
	case "random", "grid":
		if s.NStartupTrials != nil || s.NEICandidates != 0 || s.ConstantLiar != nil {
			v.fail("spec.sampler", "n_startup_trials, n_ei_candidates and constant_liar apply to the tpe sampler only")
		}
	default:
		v.fail("spec.sampler.type", "must be grid, random or tpe, not %q", clip(s.Type))
	}
	if s.Type != "grid" || len(v.errs) > 0 {
		return 0
	}
	g, err := NewGridSampler(space)
	if err != nil {
		v.fail("spec.sampler", "%s", errdefs.Message(err))
		return 0
	}
	return g.Size()
}

func (v *validator) pruner(p *PrunerSpec) {
	switch p.Type {
	case "none", "median", "asha":
	default:
		v.fail("spec.pruner.type", "must be none, median or asha, not %q", clip(p.Type))
		return
	}
	median := p.NStartupTrials != nil || p.NWarmupSteps != 0 || p.IntervalSteps != 0
	asha := p.MinResource != 0 || p.ReductionFactor != 0 || p.MinEarlyStoppingRate != 0
	if p.Type != "median" && median {
		v.fail("spec.pruner", "n_startup_trials, n_warmup_steps and interval_steps apply to the median pruner only")
	}
	if p.Type != "asha" && asha {
		v.fail("spec.pruner", "min_resource, reduction_factor and min_early_stopping_rate apply to the asha pruner only")
	}
	switch p.Type {
	case "median":
		if *p.NStartupTrials < 0 {
			v.fail("spec.pruner.n_startup_trials", "must not be negative")
		}
		if p.NWarmupSteps < 0 {
			v.fail("spec.pruner.n_warmup_steps", "must not be negative")
		}
		if p.IntervalSteps < 1 {
			v.fail("spec.pruner.interval_steps", "must be at least 1")
		}
	case "asha":
		if p.MinResource < 1 {
			v.fail("spec.pruner.min_resource", "must be at least 1")
		}
		if p.ReductionFactor < 2 || p.ReductionFactor > 100 {
			v.fail("spec.pruner.reduction_factor", "must be between 2 and 100")
		}
		if p.MinEarlyStoppingRate < 0 || p.MinEarlyStoppingRate > 30 {
			v.fail("spec.pruner.min_early_stopping_rate", "must be between 0 and 30")
		}
	}
}

// Optimizer builds the study's optimizer (search space, sampler, pruner,
// budget). seed is used when the document has none.
func (s *Study) Optimizer(seed int64) (*Optimizer, error) {
	sp := &s.Spec
	space, err := NewSpace(sp.Params()...)
	if err != nil {
		return nil, err
	}
	if sp.Sampler.Seed != nil {
		seed = *sp.Sampler.Seed
	}
	o := &Optimizer{Space: space, Direction: sp.Objective.Direction, Trials: sp.Trials, Parallelism: sp.Parallelism,
		Timeout: sp.Timeout.D(), MaxFailed: sp.MaxFailedTrials, Seed: seed}
	switch sp.Sampler.Type {
	case "grid":
		g, err := NewGridSampler(space)
		if err != nil {
			return nil, err
		}
		o.Sampler = g
		if o.Trials == 0 {
			o.Trials = g.Size()
		}
	case "random":
		o.Sampler = &RandomSampler{Seed: seed}
	default:
		t := NewTPESampler(seed)
		t.NStartupTrials = *sp.Sampler.NStartupTrials
		t.NEICandidates = sp.Sampler.NEICandidates
		t.ConstantLiar = sp.Parallelism > 1
		if sp.Sampler.ConstantLiar != nil {
			t.ConstantLiar = *sp.Sampler.ConstantLiar
		}
		o.Sampler = t
	}
	switch p := sp.Pruner; p.Type {
	case "median":
		o.Pruner = &MedianPruner{NStartupTrials: *p.NStartupTrials, NWarmupSteps: p.NWarmupSteps, IntervalSteps: p.IntervalSteps}
	case "asha":
		o.Pruner = &SuccessiveHalvingPruner{MinResource: p.MinResource, ReductionFactor: p.ReductionFactor, MinEarlyStoppingRate: p.MinEarlyStoppingRate}
	}
	return o, nil
}
