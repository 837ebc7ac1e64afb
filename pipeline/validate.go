package pipeline

import (
	"bytes"
	"container/heap"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/robfig/cron/v3"
	"gopkg.in/yaml.v3"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/errdefs"
)

// Limits of a pipeline document.
const (
	MaxSpecBytes  = 1 << 20
	MaxSteps      = 2000
	maxParameters = 200
	maxSchedules  = 50
	maxTriggers   = 50
	maxStepItems  = 200 // inputs, outputs, env, command elements of a step
	// A step may depend on every other step: a join after a wide fan-out
	// lists all its branches.
	maxDependsOn       = MaxSteps
	maxTextLen         = 1024
	maxValueLen        = 64 << 10
	maxSpecFieldErrors = 20
	maxBackoffLimit    = 24 * time.Hour
)

// Executors a spec may name.
const (
	ExecutorLocal      = "local"
	ExecutorKubernetes = "kubernetes"
)

var dnsLabelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// ValidateName checks a pipeline, step, schedule or trigger name: a DNS
// label (lower-case letters, digits and '-', at most 63 characters).
func ValidateName(name string) error {
	if !dnsLabelRE.MatchString(name) {
		return errdefs.Invalid("%q is not a valid name: use a DNS label (lower-case letters, digits and '-', 1-63 characters)", clipText(name))
	}
	return nil
}

// decodePipelineDoc reads one YAML or JSON document into v, rejecting
// unknown fields and extra documents.
func decodePipelineDoc(data []byte, v any) error {
	if len(data) > MaxSpecBytes {
		return errdefs.TooLarge("The pipeline document is larger than %d bytes", MaxSpecBytes)
	}
	if !utf8.Valid(data) {
		return errdefs.InvalidFields("pipeline", errdefs.FieldErrors{{Msg: "the document is not valid UTF-8"}})
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		msg := "empty document"
		if !errors.Is(err, io.EOF) {
			msg = "not a valid YAML or JSON document: " + strings.TrimPrefix(err.Error(), "yaml: ")
		}
		return errdefs.InvalidFields("pipeline", errdefs.FieldErrors{{Msg: msg}})
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return errdefs.InvalidFields("pipeline", errdefs.FieldErrors{{Msg: "more than one document; send one per request"}})
	}
	return nil
}

// ParsePipeline reads a Pipeline from YAML or JSON (unknown fields are
// rejected), normalizes and validates it. With name set (the URL names
// it), a missing metadata.name is name and another one is an error.
func ParsePipeline(data []byte, name string) (p *Pipeline, err error) {
	defer func() {
		// yaml.v3 panics on a few pathological inputs; a document must
		// never take the server down.
		if r := recover(); r != nil {
			p, err = nil, errdefs.InvalidFields("pipeline", errdefs.FieldErrors{{Msg: fmt.Sprintf("not a valid YAML or JSON document: %v", r)}})
		}
	}()
	var doc Pipeline
	if err := decodePipelineDoc(data, &doc); err != nil {
		return nil, err
	}
	if name != "" {
		switch doc.Metadata.Name {
		case "":
			doc.Metadata.Name = name
		case name:
		default:
			return nil, errdefs.InvalidFields("pipeline", errdefs.FieldErrors{{Path: "metadata.name", Msg: fmt.Sprintf("is %q, but the URL names pipeline %q", clipText(doc.Metadata.Name), clipText(name))}})
		}
	}
	doc.Normalize()
	if err := doc.Validate(); err != nil {
		return nil, err
	}
	return &doc, nil
}

// Normalize fills the defaults that are written in the stored document:
// apiVersion and kind, output type artifact, parameter type string,
// schedule concurrency forbid and timezone UTC, trigger concurrency
// allow.
func (p *Pipeline) Normalize() {
	if p.APIVersion == "" {
		p.APIVersion = APIVersion
	}
	if p.Kind == "" {
		p.Kind = KindPipeline
	}
	s := &p.Spec
	for i := range s.Parameters {
		if s.Parameters[i].Type == "" {
			s.Parameters[i].Type = ParamString
		}
	}
	norm := func(st *Step) {
		for j := range st.Outputs {
			if st.Outputs[j].Type == "" {
				st.Outputs[j].Type = OutputArtifact
			}
		}
	}
	for i := range s.Steps {
		norm(&s.Steps[i])
	}
	if s.OnExit != nil {
		norm(s.OnExit)
	}
	for i := range s.Schedules {
		sc := &s.Schedules[i]
		if sc.Concurrency == "" {
			sc.Concurrency = ConcurrencyForbid
		}
		if sc.Timezone == "" {
			sc.Timezone = "UTC"
		}
	}
	for i := range s.Triggers {
		if s.Triggers[i].Concurrency == "" {
			s.Triggers[i].Concurrency = ConcurrencyAllow
		}
	}
}

// Step returns the step (or the exit handler) of that name, nil if none.
func (s *Spec) Step(name string) *Step {
	for i := range s.Steps {
		if s.Steps[i].Name == name {
			return &s.Steps[i]
		}
	}
	if s.OnExit != nil && s.OnExit.Name == name {
		return s.OnExit
	}
	return nil
}

// ParseFrom splits an input's from, "steps.<step>.outputs.<name>", into
// the step and the output.
func ParseFrom(from string) (step, output string, err error) {
	parts := strings.Split(from, ".")
	if len(parts) != 4 || parts[0] != ScopeSteps || parts[2] != "outputs" || !refSegmentRE.MatchString(parts[1]) || !refSegmentRE.MatchString(parts[3]) {
		hint := ""
		if strings.Contains(from, "{{") {
			hint = " (without braces)"
		}
		return "", "", errdefs.Invalid("%q is not an upstream output: want steps.<step>.outputs.<name>%s", clipText(from), hint)
	}
	return parts[1], parts[3], nil
}

// templated calls f with every templated field of a step: its path
// (relative to the step) and its text.
func (st *Step) templated(f func(path, text string, input bool)) {
	for i, c := range st.Command {
		f(fmt.Sprintf("command[%d]", i), c, false)
	}
	if st.Image != "" {
		f("image", st.Image, false)
	}
	for _, k := range specSortedKeys(st.Env) {
		f("env."+k, st.Env[k], false)
	}
	if st.WorkingDir != "" {
		f("working_dir", st.WorkingDir, false)
	}
	for i, in := range st.Inputs {
		p := fmt.Sprintf("inputs[%d]", i)
		if in.Dataset != "" {
			f(p+".dataset", in.Dataset, true)
		}
		if in.Artifact != "" {
			f(p+".artifact", in.Artifact, true)
		}
		if in.Value != "" {
			f(p+".value", in.Value, true)
		}
	}
}

// stepRefs returns the steps st refers to (with duplicates, unsorted,
// possibly unknown names).
func (st *Step) stepRefs() []string {
	var names []string
	names = append(names, st.DependsOn...)
	for _, in := range st.Inputs {
		if in.From != "" {
			if s, _, err := ParseFrom(in.From); err == nil {
				names = append(names, s)
			}
		}
	}
	add := func(refs []Ref) {
		for _, r := range refs {
			if r.Scope == ScopeSteps {
				names = append(names, r.Name)
			}
		}
	}
	st.templated(func(_, text string, _ bool) {
		refs, _ := References(text)
		add(refs)
	})
	refs, _ := whenRefs(st.When)
	add(refs)
	return names
}

// Upstream returns, for every step (the exit handler excluded), the
// sorted steps it waits for: depends_on, the steps of its inputs' from,
// and the steps its templates refer to (command, image, env,
// working_dir, inputs, when). Names that are not steps are left out.
func (s *Spec) Upstream() map[string][]string {
	isStep := make(map[string]bool, len(s.Steps))
	for i := range s.Steps {
		isStep[s.Steps[i].Name] = true
	}
	up := make(map[string][]string, len(s.Steps))
	for i := range s.Steps {
		st := &s.Steps[i]
		seen := map[string]bool{}
		list := []string{}
		for _, n := range st.stepRefs() {
			if isStep[n] && !seen[n] {
				seen[n] = true
				list = append(list, n)
			}
		}
		sort.Strings(list)
		up[st.Name] = list
	}
	return up
}

type stepIndexHeap []int

func (h stepIndexHeap) Len() int           { return len(h) }
func (h stepIndexHeap) Less(i, j int) bool { return h[i] < h[j] }
func (h stepIndexHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *stepIndexHeap) Push(x any)        { *h = append(*h, x.(int)) }
func (h *stepIndexHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// Order returns the steps (the exit handler excluded) in a topological
// order: among the steps whose upstream are all placed, the one first in
// the spec comes first. Steps on a cycle (Validate rejects them) come
// last, in spec order.
func (s *Spec) Order() []string {
	index := make(map[string]int, len(s.Steps))
	for i := range s.Steps {
		if _, dup := index[s.Steps[i].Name]; !dup {
			index[s.Steps[i].Name] = i
		}
	}
	up := s.Upstream()
	pending := make([]int, len(s.Steps))
	down := make([][]int, len(s.Steps))
	for i := range s.Steps {
		if index[s.Steps[i].Name] != i {
			continue // a duplicate name: placed with the first
		}
		for _, u := range up[s.Steps[i].Name] {
			j := index[u]
			pending[i]++
			down[j] = append(down[j], i)
		}
	}
	h := &stepIndexHeap{}
	for i := range s.Steps {
		if pending[i] == 0 && index[s.Steps[i].Name] == i {
			heap.Push(h, i)
		}
	}
	order := make([]string, 0, len(s.Steps))
	placed := make([]bool, len(s.Steps))
	for h.Len() > 0 {
		i := heap.Pop(h).(int)
		placed[i] = true
		order = append(order, s.Steps[i].Name)
		for _, d := range down[i] {
			if pending[d]--; pending[d] == 0 {
				heap.Push(h, d)
			}
		}
	}
	for i := range s.Steps {
		if !placed[i] && index[s.Steps[i].Name] == i {
			order = append(order, s.Steps[i].Name)
		}
	}
	return order
}

// cycles returns the dependency cycles of the steps, each as the step
// names along it, the first repeated at the end; each cycle once.
func (s *Spec) cycles() [][]string {
	up := s.Upstream()
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var stack []string
	var found [][]string
	var visit func(n string)
	visit = func(n string) {
		color[n] = grey
		stack = append(stack, n)
		for _, u := range up[n] {
			switch color[u] {
			case white:
				visit(u)
			case grey:
				// u … n is a cycle: n waits for u, which waits … for n.
				k := len(stack) - 1
				for k >= 0 && stack[k] != u {
					k--
				}
				c := append([]string{}, stack[k:]...)
				// Written in the direction of the dependency: a -> b means
				// a depends on b.
				c = append(c, u)
				found = append(found, c)
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
	}
	for i := range s.Steps {
		if n := s.Steps[i].Name; color[n] == white {
			visit(n)
		}
	}
	return found
}

type specValidator struct {
	errs errdefs.FieldErrors
	spec *Spec
	// outputs of each step by name, and the index of each step.
	outputs map[string]map[string]string
	index   map[string]int
}

func (v *specValidator) fail(path, format string, args ...any) {
	if len(v.errs) < maxSpecFieldErrors {
		v.errs = append(v.errs, errdefs.FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
	}
}

// Validate checks the document; the error (errdefs invalid) wraps
// errdefs.FieldErrors whose paths name the fields
// ("spec.steps[2].depends_on[0]"), at most 20 of them.
func (p *Pipeline) Validate() error {
	v := &specValidator{spec: &p.Spec}
	if p.APIVersion != APIVersion {
		v.fail("apiVersion", "must be %q, not %q", APIVersion, clipText(p.APIVersion))
	}
	if p.Kind != KindPipeline {
		v.fail("kind", "must be %q, not %q", KindPipeline, clipText(p.Kind))
	}
	if err := ValidateName(p.Metadata.Name); err != nil {
		v.fail("metadata.name", "%s", errdefs.Message(err))
	}
	md := &p.Metadata
	if len(md.Description) > maxTextLen {
		v.fail("metadata.description", "longer than %d bytes", maxTextLen)
	}
	if len(md.Labels) > 64 {
		v.fail("metadata.labels", "more than 64 labels")
	}
	for _, k := range specSortedKeys(md.Labels) {
		if k == "" || len(k) > 63 || len(md.Labels[k]) > maxTextLen {
			v.fail("metadata.labels."+clipText(k), "keys must have 1 to 63 bytes and values at most %d", maxTextLen)
		}
	}
	s := &p.Spec
	v.parameters()
	switch s.Executor {
	case "", ExecutorLocal, ExecutorKubernetes:
	default:
		v.fail("spec.executor", "must be local or kubernetes, not %q", clipText(s.Executor))
	}
	if s.Parallelism < 0 {
		v.fail("spec.parallelism", "must not be negative (0: the executor's limit)")
	}
	if len(s.Experiment) > 500 {
		v.fail("spec.experiment", "longer than 500 bytes")
	}
	v.steps()
	v.schedules()
	v.triggers()
	if len(v.errs) > 0 {
		return errdefs.InvalidFields("pipeline", v.errs)
	}
	return nil
}

func (v *specValidator) parameters() {
	s := v.spec
	if len(s.Parameters) > maxParameters {
		v.fail("spec.parameters", "more than %d parameters", maxParameters)
		return
	}
	seen := map[string]string{}
	envs := map[string]string{}
	for i := range s.Parameters {
		pr := &s.Parameters[i]
		path := fmt.Sprintf("spec.parameters[%d]", i)
		if !specIdentRE.MatchString(pr.Name) {
			v.fail(path+".name", "%q is not a parameter name: use letters, digits, '_' and '-', starting with a letter or '_', at most 63", clipText(pr.Name))
		} else if prev, dup := seen[pr.Name]; dup {
			v.fail(path+".name", "parameter %q is defined twice (also %s)", pr.Name, prev)
		} else if prev, dup := envs[EnvName(pr.Name)]; dup {
			v.fail(path+".name", "parameter %q and %q are both $KILN_PARAM_%s", pr.Name, prev, EnvName(pr.Name))
		}
		seen[pr.Name], envs[EnvName(pr.Name)] = path, pr.Name
		switch pr.Type {
		case "", ParamString, ParamInt, ParamFloat, ParamBool:
			if pr.Default != nil {
				if _, err := defaultString(pr.Type, pr.Default); err != nil {
					v.fail(path+".default", "%s", err)
				}
			}
		default:
			v.fail(path+".type", "must be string, int, float or bool, not %q", clipText(pr.Type))
		}
		if len(pr.Description) > maxTextLen {
			v.fail(path+".description", "longer than %d bytes", maxTextLen)
		}
	}
}

func (v *specValidator) steps() {
	s := v.spec
	if len(s.Steps) == 0 {
		v.fail("spec.steps", "a pipeline needs at least one step")
	}
	if len(s.Steps) > MaxSteps {
		v.fail("spec.steps", "more than %d steps", MaxSteps)
		return
	}
	v.index = map[string]int{}
	v.outputs = map[string]map[string]string{}
	names := map[string]string{}
	all := make([]*Step, 0, len(s.Steps)+1)
	paths := make([]string, 0, len(s.Steps)+1)
	for i := range s.Steps {
		all = append(all, &s.Steps[i])
		paths = append(paths, fmt.Sprintf("spec.steps[%d]", i))
	}
	if s.OnExit != nil {
		all = append(all, s.OnExit)
		paths = append(paths, "spec.on_exit")
	}
	for k, st := range all {
		if err := ValidateName(st.Name); err != nil {
			v.fail(paths[k]+".name", "%s", errdefs.Message(err))
		} else if prev, dup := names[st.Name]; dup {
			v.fail(paths[k]+".name", "step %q is defined twice (also %s)", st.Name, prev)
			continue
		}
		names[st.Name] = paths[k]
		if k < len(s.Steps) {
			v.index[st.Name] = k
		}
		outs := map[string]string{}
		for _, o := range st.Outputs {
			if _, dup := outs[o.Name]; !dup {
				outs[o.Name] = o.Type
			}
		}
		v.outputs[st.Name] = outs
	}
	for k, st := range all {
		v.step(paths[k], st, k == len(s.Steps))
	}
	for _, c := range s.cycles() {
		v.fail(fmt.Sprintf("spec.steps[%d]", v.index[c[0]]), "cycle: %s", strings.Join(c, " -> "))
	}
}

func (v *specValidator) step(path string, st *Step, onExit bool) {
	if len(st.Command) == 0 {
		v.fail(path+".command", "is required (the argv to run)")
	}
	for _, c := range []struct {
		field string
		n     int
	}{{"command", len(st.Command)}, {"env", len(st.Env)}, {"inputs", len(st.Inputs)}, {"outputs", len(st.Outputs)}, {"resources", len(st.Resources)}} {
		if c.n > maxStepItems {
			v.fail(path+"."+c.field, "more than %d entries", maxStepItems)
			return
		}
	}
	if len(st.DependsOn) > maxDependsOn {
		v.fail(path+".depends_on", "more than %d entries", maxDependsOn)
		return
	}
	for _, k := range specSortedKeys(st.Env) {
		if !specEnvRE.MatchString(k) {
			v.fail(path+".env."+clipText(k), "is not an environment variable name")
		}
	}
	// Inputs.
	inputs := map[string]bool{}
	envs := map[string]string{}
	for i, in := range st.Inputs {
		p := fmt.Sprintf("%s.inputs[%d]", path, i)
		if !specIdentRE.MatchString(in.Name) {
			v.fail(p+".name", "%q is not an input name: use letters, digits, '_' and '-', starting with a letter or '_', at most 63", clipText(in.Name))
		} else if inputs[in.Name] {
			v.fail(p+".name", "input %q is defined twice", in.Name)
		} else if prev, dup := envs[EnvName(in.Name)]; dup {
			v.fail(p+".name", "inputs %q and %q are both $KILN_INPUT_%s", in.Name, prev, EnvName(in.Name))
		}
		inputs[in.Name], envs[EnvName(in.Name)] = true, in.Name
		n := 0
		for _, x := range []string{in.Dataset, in.Artifact, in.From, in.Value} {
			if x != "" {
				n++
			}
		}
		if n != 1 {
			v.fail(p, "set exactly one of dataset, artifact, from or value")
		}
		if in.Dataset != "" && !strings.Contains(in.Dataset, "{{") {
			if _, err := dataset.ParseVersionRef(in.Dataset); err != nil {
				v.fail(p+".dataset", "%s", errdefs.Message(err))
			}
		}
		if in.Artifact != "" && !strings.Contains(in.Artifact, "{{") && !knownArtifactURI(in.Artifact) {
			v.fail(p+".artifact", "%q is not an artifact URI (mlflow-artifacts:/…, runs:/…, models:/…)", clipText(in.Artifact))
		}
		if in.From != "" {
			step, out, err := ParseFrom(in.From)
			if err != nil {
				v.fail(p+".from", "%s", errdefs.Message(err))
			} else {
				v.stepRef(p+".from", st, onExit, step, out)
			}
		}
		if len(in.Value) > maxValueLen {
			v.fail(p+".value", "longer than %d bytes", maxValueLen)
		}
	}
	// Outputs.
	outs := map[string]bool{}
	for i, o := range st.Outputs {
		p := fmt.Sprintf("%s.outputs[%d]", path, i)
		if !specIdentRE.MatchString(o.Name) {
			v.fail(p+".name", "%q is not an output name: use letters, digits, '_' and '-', starting with a letter or '_', at most 63", clipText(o.Name))
		} else if outs[o.Name] {
			v.fail(p+".name", "output %q is defined twice", o.Name)
		}
		outs[o.Name] = true
		switch o.Type {
		case "", OutputArtifact, OutputMetric, OutputParameter, OutputModel:
		default:
			v.fail(p+".type", "must be artifact, metric, parameter or model, not %q", clipText(o.Type))
		}
		if o.Path != "" && !relativePath(o.Path) {
			v.fail(p+".path", "%q must be a relative path inside the working directory", clipText(o.Path))
		}
	}
	// Dependencies.
	if onExit && len(st.DependsOn) > 0 {
		v.fail(path+".depends_on", "the exit handler runs after every other step; it has no depends_on")
	} else {
		seen := map[string]bool{}
		for i, d := range st.DependsOn {
			p := fmt.Sprintf("%s.depends_on[%d]", path, i)
			if seen[d] {
				v.fail(p, "step %q is listed twice", clipText(d))
				continue
			}
			seen[d] = true
			v.stepRef(p, st, onExit, d, "")
		}
	}
	// Templates.
	st.templated(func(field, text string, input bool) {
		p := path + "." + field
		if len(text) > maxValueLen {
			v.fail(p, "longer than %d bytes", maxValueLen)
			return
		}
		refs, err := References(text)
		if err != nil {
			v.fail(p, "%s", errdefs.Message(err))
			return
		}
		v.refs(p, st, onExit, inputs, input, refs)
	})
	if st.When != "" {
		refs, err := whenRefs(st.When)
		if err != nil {
			v.fail(path+".when", "%s", errdefs.Message(err))
		} else {
			v.refs(path+".when", st, onExit, inputs, false, refs)
		}
	}
	// Policies.
	if r := st.Retry; r != nil {
		if r.Limit < 0 || r.Limit > MaxRetryLimit {
			v.fail(path+".retry.limit", "must be between 0 and %d", MaxRetryLimit)
		}
		if r.Backoff < 0 || r.Backoff.D() > maxBackoffLimit {
			v.fail(path+".retry.backoff", "must be between 0 and 24h")
		}
		if r.Factor != 0 && (r.Factor < 1 || r.Factor > 100 || math.IsNaN(r.Factor)) {
			v.fail(path+".retry.factor", "must be between 1 and 100 (0: the default, 2)")
		}
		if r.MaxBackoff < 0 || r.MaxBackoff.D() > maxBackoffLimit {
			v.fail(path+".retry.max_backoff", "must be between 0 (the default, 1h) and 24h")
		}
	}
	if st.Timeout < 0 {
		v.fail(path+".timeout", "must not be negative (0: no timeout)")
	}
	if st.Cache != nil && len(st.Cache.Version) > maxTextLen {
		v.fail(path+".cache.version", "longer than %d bytes", maxTextLen)
	}
	for _, k := range specSortedKeys(st.Resources) {
		p := path + ".resources." + clipText(k)
		if k == "" || len(k) > 253 {
			v.fail(path+".resources", "names must have 1 to 253 bytes")
			continue
		}
		if _, err := resource.ParseQuantity(st.Resources[k]); err != nil {
			v.fail(p, "%q is not a quantity (e.g. 500m, 2, 4Gi)", clipText(st.Resources[k]))
		}
	}
}

// stepRef checks that st (at path) may refer to step other (and, if
// output is set, to its output).
func (v *specValidator) stepRef(path string, st *Step, onExit bool, other, output string) {
	s := v.spec
	switch {
	case other == st.Name:
		v.fail(path, "step %q refers to itself", clipText(other))
		return
	case s.OnExit != nil && other == s.OnExit.Name:
		v.fail(path, "%q is the exit handler; other steps cannot depend on it", clipText(other))
		return
	}
	outs, ok := v.outputs[other]
	if !ok {
		v.fail(path, "unknown step %q", clipText(other))
		return
	}
	if output != "" {
		if _, ok := outs[output]; !ok {
			v.fail(path, "step %q has no output %q", clipText(other), clipText(output))
		}
	}
}

// refs checks the template references of one field of step st.
func (v *specValidator) refs(path string, st *Step, onExit bool, inputs map[string]bool, inInput bool, refs []Ref) {
	for _, r := range refs {
		switch r.Scope {
		case ScopeParams:
			if !v.hasParam(r.Name) {
				v.fail(path, "{{%s}}: unknown parameter %q", r, r.Name)
			}
		case ScopeSteps:
			v.stepRef(path, st, onExit, r.Name, r.Output())
		case ScopeInputs:
			switch {
			case inInput:
				v.fail(path, "{{%s}}: an input cannot refer to inputs", r)
			case !inputs[r.Name]:
				v.fail(path, "{{%s}}: the step has no input %q", r, r.Name)
			}
		case ScopePipeline:
			if !onExit {
				v.fail(path, "{{%s}}: only the exit handler (on_exit) knows the pipeline's status", r)
			}
		}
	}
}

func (v *specValidator) hasParam(name string) bool {
	for i := range v.spec.Parameters {
		if v.spec.Parameters[i].Name == name {
			return true
		}
	}
	return false
}

// runParameters checks the parameters a schedule or trigger sets (at
// path): declared names, values of the right type, only {{trigger.*}}
// templates (with one of fields, if given), and every required
// parameter set.
func (v *specValidator) runParameters(path string, ps map[string]string, fields []string) {
	for _, k := range specSortedKeys(ps) {
		p := path + "." + clipText(k)
		var param *Parameter
		for i := range v.spec.Parameters {
			if v.spec.Parameters[i].Name == k {
				param = &v.spec.Parameters[i]
			}
		}
		if param == nil {
			v.fail(p, "the pipeline has no parameter %q", clipText(k))
			continue
		}
		val := ps[k]
		refs, err := References(val)
		switch {
		case err != nil:
			v.fail(p, "%s", errdefs.Message(err))
		case len(refs) > 0:
			for _, r := range refs {
				if r.Scope != ScopeTrigger {
					v.fail(p, "{{%s}}: only {{trigger.<field>}} is known here", r)
				} else if fields != nil && !triggerFieldKnown(fields, r.Name) {
					v.fail(p, "{{%s}}: this trigger's events have %s", r, strings.Join(fields, ", "))
				}
			}
		default:
			if _, err := checkParamValue(param.Type, val); err != nil {
				v.fail(p, "%s", err)
			}
		}
	}
	for i := range v.spec.Parameters {
		pr := &v.spec.Parameters[i]
		if _, ok := ps[pr.Name]; !ok && pr.Default == nil {
			v.fail(path, "does not set parameter %q, which has no default", pr.Name)
		}
	}
}

// triggerFieldKnown says whether name is one of fields; a field ending in
// "*" stands for every name with the prefix before it (and something after).
func triggerFieldKnown(fields []string, name string) bool {
	for _, f := range fields {
		if pre, ok := strings.CutSuffix(f, "*"); ok {
			if len(name) > len(pre) && strings.HasPrefix(name, pre) {
				return true
			}
		} else if f == name {
			return true
		}
	}
	return false
}

func (v *specValidator) schedules() {
	s := v.spec
	if len(s.Schedules) > maxSchedules {
		v.fail("spec.schedules", "more than %d schedules", maxSchedules)
		return
	}
	if len(s.Triggers) > maxTriggers {
		v.fail("spec.triggers", "more than %d triggers", maxTriggers)
		return
	}
	seen := map[string]string{}
	check := func(path, name string) {
		if err := ValidateName(name); err != nil {
			v.fail(path+".name", "%s", errdefs.Message(err))
		} else if prev, dup := seen[name]; dup {
			v.fail(path+".name", "%q is defined twice (also %s); schedules and triggers share names", name, prev)
		}
		seen[name] = path
	}
	for i := range s.Schedules {
		sc := &s.Schedules[i]
		path := fmt.Sprintf("spec.schedules[%d]", i)
		check(path, sc.Name)
		if err := ValidateCron(sc.Cron); err != nil {
			v.fail(path+".cron", "%s", errdefs.Message(err))
		}
		if err := validateTimezone(sc.Timezone); err != nil {
			v.fail(path+".timezone", "%s", err)
		}
		v.concurrency(path, sc.Concurrency)
		if sc.StartingDeadline < 0 {
			v.fail(path+".starting_deadline", "must not be negative (0: the default, 1m)")
		}
		v.runParameters(path+".parameters", sc.Parameters, nil)
	}
	for i := range s.Triggers {
		check(fmt.Sprintf("spec.triggers[%d]", i), s.Triggers[i].Name)
	}
}

// ValidateCron checks a schedule's cron expression: five fields
// (minute hour day-of-month month day-of-week) or a descriptor (@yearly,
// @monthly, @weekly, @daily, @hourly, @every <duration>), as
// robfig/cron's standard parser reads them. The timezone is the
// schedule's timezone field, not a CRON_TZ= prefix.
func ValidateCron(expr string) error {
	e := strings.TrimSpace(expr)
	if e == "" {
		return errdefs.Invalid("is required (e.g. \"0 2 * * *\" or \"@every 1h\")")
	}
	if strings.HasPrefix(e, "TZ=") || strings.HasPrefix(e, "CRON_TZ=") {
		return errdefs.Invalid("set the timezone in the timezone field, not in the cron expression")
	}
	sched, err := cron.ParseStandard(e)
	if err != nil {
		return errdefs.Invalid("%q is not a cron expression: %s (want 5 fields, minute hour day-of-month month day-of-week, or @hourly, @daily, @every 10m …)", clipText(expr), err)
	}
	if c, ok := sched.(cron.ConstantDelaySchedule); ok && c.Delay < time.Second {
		return errdefs.Invalid("@every needs a duration of at least 1s")
	}
	return nil
}

func validateTimezone(tz string) error {
	switch tz {
	case "":
		return nil
	case "Local":
		return errors.New(`"Local" depends on the server; name an IANA zone (e.g. Europe/Berlin) or UTC`)
	}
	if _, err := time.LoadLocation(tz); err != nil {
		return fmt.Errorf("%q is not an IANA timezone (e.g. UTC, Europe/Berlin, America/New_York)", clipText(tz))
	}
	return nil
}

func (v *specValidator) concurrency(path, c string) {
	switch c {
	case "", ConcurrencyAllow, ConcurrencyForbid, ConcurrencyReplace:
	default:
		v.fail(path+".concurrency", "must be forbid, allow or replace, not %q", clipText(c))
	}
}

// The {{trigger.*}} fields of each kind of trigger event (webhooks: any
// top-level field of the body).
var (
	datasetTriggerFields = []string{"dataset", "version", "ref"}
	modelTriggerFields   = []string{"model", "version", "uri"}
	// alertTriggerFields are an alert event's fields (see pipeline/trigger's
	// alert hook); its labels come as label_<name>, matched by prefix.
	alertTriggerFields = []string{"monitor", "rule", "endpoint", "value", "fingerprint", "severity", "event_id", alertLabelPrefix + "*"}
	alertLabelPrefix   = "label_"
)

func (v *specValidator) triggers() {
	for i := range v.spec.Triggers {
		t := &v.spec.Triggers[i]
		path := fmt.Sprintf("spec.triggers[%d]", i)
		n := 0
		var fields []string
		if t.Dataset != "" {
			n++
			fields = datasetTriggerFields
			if err := dataset.ValidateName(t.Dataset); err != nil {
				v.fail(path+".dataset", "%s", errdefs.Message(err))
			}
		}
		if t.Model != "" {
			n++
			fields = modelTriggerFields
			if len(t.Model) > 256 || strings.ContainsAny(t.Model, "/\x00") {
				v.fail(path+".model", "%q is not a registered model name", clipText(t.Model))
			}
		}
		if a := t.Alert; a != nil {
			n++
			fields = alertTriggerFields
			if err := ValidateName(a.Monitor); err != nil {
				v.fail(path+".alert.monitor", "%s", errdefs.Message(err))
			}
			if len(a.Rule) > 128 {
				v.fail(path+".alert.rule", "longer than 128 bytes")
			}
		}
		if w := t.Webhook; w != nil {
			n++
			fields = nil
			if w.SecretEnv != "" && !specEnvRE.MatchString(w.SecretEnv) {
				v.fail(path+".webhook.secret_env", "%q is not an environment variable name", clipText(w.SecretEnv))
			}
		}
		if n != 1 {
			v.fail(path, "set exactly one of dataset, model, alert or webhook")
		}
		v.concurrency(path, t.Concurrency)
		v.runParameters(path+".parameters", t.Parameters, fields)
	}
}

func knownArtifactURI(s string) bool {
	for _, p := range []string{"mlflow-artifacts:/", "runs:/", "models:/"} {
		if strings.HasPrefix(s, p) && len(s) > len(p) {
			return true
		}
	}
	return false
}

// relativePath reports whether p is a relative path that stays inside
// its base ("out/model.pkl", not "/tmp/x" or "../x").
func relativePath(p string) bool {
	if strings.HasPrefix(p, "/") || strings.HasPrefix(p, "\\") || strings.ContainsRune(p, 0) {
		return false
	}
	for _, part := range strings.FieldsFunc(p, func(r rune) bool { return r == '/' || r == '\\' }) {
		if part == ".." {
			return false
		}
	}
	return true
}

func specContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func specSortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
