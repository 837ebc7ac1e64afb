package pipeline

import (
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/kiln-ml/kiln/errdefs"
)

// Template scopes: the first word of a template.
const (
	ScopeParams   = "params"   // {{params.<name>}}
	ScopeSteps    = "steps"    // {{steps.<step>.outputs.<name>}}, {{steps.<step>.state}}
	ScopeInputs   = "inputs"   // {{inputs.<name>}}
	ScopeTrigger  = "trigger"  // {{trigger.<field>}}
	ScopeRun      = "run"      // {{run.id}}, {{run.pipeline}}, {{run.tracking_run_id}}
	ScopePipeline = "pipeline" // {{pipeline.status}} (on_exit only)
)

// Scope holds the values templates refer to.
type Scope struct {
	Params  map[string]string
	Steps   map[string]StepScope // by step name
	Inputs  map[string]string    // the step's own inputs: path or value
	Trigger map[string]string
	Run     RunScope
	// PipelineStatus is "Succeeded" or "Failed" in on_exit, "" elsewhere.
	PipelineStatus string
}

// StepScope is what templates see of a step: its state and its scalar
// outputs' values (artifact outputs: their URIs).
type StepScope struct {
	State   string
	Outputs map[string]string
}

// RunScope is what templates see of the run.
type RunScope struct {
	ID, Pipeline, TrackingRunID string
}

// Ref is one template reference:
//
//	{{params.min_auc}}             Ref{Scope: "params", Name: "min_auc"}
//	{{steps.train.outputs.auc}}    Ref{Scope: "steps", Name: "train", Field: "outputs.auc"}
//	{{steps.train.state}}          Ref{Scope: "steps", Name: "train", Field: "state"}
//	{{inputs.data}}                Ref{Scope: "inputs", Name: "data"}
//	{{trigger.version}}            Ref{Scope: "trigger", Name: "version"}
//	{{run.id}}                     Ref{Scope: "run", Name: "id"}
//	{{pipeline.status}}            Ref{Scope: "pipeline", Name: "status"}
type Ref struct {
	Scope string
	Name  string
	Field string
}

// String writes the reference as it appears inside the braces.
func (r Ref) String() string {
	s := r.Scope + "." + r.Name
	if r.Field != "" {
		s += "." + r.Field
	}
	return s
}

// Output returns the output name of a {{steps.X.outputs.Y}} reference,
// "" for any other.
func (r Ref) Output() string {
	if r.Scope != ScopeSteps {
		return ""
	}
	if o, ok := strings.CutPrefix(r.Field, "outputs."); ok {
		return o
	}
	return ""
}

var refSegmentRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// parseRef parses the inside of a template (spaces trimmed).
func parseRef(s string) (Ref, error) {
	parts := strings.Split(s, ".")
	for _, p := range parts {
		if !refSegmentRE.MatchString(p) {
			return Ref{}, errdefs.Invalid("invalid template {{%s}}: want e.g. {{params.x}}, {{steps.s.outputs.o}}, {{inputs.n}}, {{run.id}}", clipText(s))
		}
	}
	bad := func(want string) (Ref, error) {
		return Ref{}, errdefs.Invalid("invalid template {{%s}}: want %s", clipText(s), want)
	}
	switch parts[0] {
	case ScopeParams, ScopeInputs, ScopeTrigger:
		if len(parts) != 2 {
			return bad("{{" + parts[0] + ".<name>}}")
		}
		return Ref{Scope: parts[0], Name: parts[1]}, nil
	case ScopeSteps:
		switch {
		case len(parts) == 3 && parts[2] == "state":
			return Ref{Scope: ScopeSteps, Name: parts[1], Field: "state"}, nil
		case len(parts) == 4 && parts[2] == "outputs":
			return Ref{Scope: ScopeSteps, Name: parts[1], Field: "outputs." + parts[3]}, nil
		}
		return bad("{{steps.<step>.outputs.<name>}} or {{steps.<step>.state}}")
	case ScopeRun:
		if len(parts) == 2 {
			switch parts[1] {
			case "id", "pipeline", "tracking_run_id":
				return Ref{Scope: ScopeRun, Name: parts[1]}, nil
			}
		}
		return bad("{{run.id}}, {{run.pipeline}} or {{run.tracking_run_id}}")
	case ScopePipeline:
		if len(parts) == 2 && parts[1] == "status" {
			return Ref{Scope: ScopePipeline, Name: "status"}, nil
		}
		return bad("{{pipeline.status}}")
	}
	return Ref{}, errdefs.Invalid("invalid template {{%s}}: unknown scope %q (known: params, steps, inputs, trigger, run, pipeline)", clipText(s), clipText(parts[0]))
}

// tmplSegment is a piece of a template string: literal text, or a reference.
type tmplSegment struct {
	lit   string
	ref   Ref
	isRef bool
}

// scanTemplate splits s into literal text and references. Inside the
// braces, spaces around the reference are allowed; a quoted string
// ({{"{{"}} or {{'}}'}}) is literal text, the way to write braces.
func scanTemplate(s string) ([]tmplSegment, error) {
	var segs []tmplSegment
	var lit strings.Builder
	for {
		i := strings.Index(s, "{{")
		if i < 0 {
			lit.WriteString(s)
			break
		}
		lit.WriteString(s[:i])
		rest := s[i+2:]
		inner := strings.TrimLeft(rest, " \t")
		if inner != "" && (inner[0] == '"' || inner[0] == '\'') {
			q := inner[0]
			j := strings.IndexByte(inner[1:], q)
			if j < 0 {
				return nil, errdefs.Invalid("unterminated quote in template %q", clipText(s[i:]))
			}
			text := inner[1 : 1+j]
			after := strings.TrimLeft(inner[2+j:], " \t")
			if !strings.HasPrefix(after, "}}") {
				return nil, errdefs.Invalid("a quoted string in a template must be followed by }}: %q", clipText(s[i:]))
			}
			lit.WriteString(text)
			s = after[2:]
			continue
		}
		j := strings.Index(rest, "}}")
		if j < 0 {
			return nil, errdefs.Invalid("unclosed template %q: missing }}", clipText(s[i:]))
		}
		body := strings.Trim(rest[:j], " \t")
		ref, err := parseRef(body)
		if err != nil {
			return nil, err
		}
		if lit.Len() > 0 {
			segs = append(segs, tmplSegment{lit: lit.String()})
			lit.Reset()
		}
		segs = append(segs, tmplSegment{ref: ref, isRef: true})
		s = rest[j+2:]
	}
	if lit.Len() > 0 {
		segs = append(segs, tmplSegment{lit: lit.String()})
	}
	return segs, nil
}

// Expand substitutes the templates of s with values from sc:
// {{params.x}}, {{steps.s.outputs.o}}, {{steps.s.state}}, {{inputs.n}},
// {{trigger.f}}, {{run.id}}, {{run.pipeline}}, {{run.tracking_run_id}}
// and {{pipeline.status}}. Spaces inside the braces are allowed
// ("{{ params.x }}"). A quoted string inside braces is copied as is:
// {{"{{"}} writes "{{". A reference with no value in sc is an error
// (errdefs invalid) naming it. Values are not expanded again.
func Expand(s string, sc *Scope) (string, error) {
	if !strings.Contains(s, "{{") {
		return s, nil
	}
	segs, err := scanTemplate(s)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, sg := range segs {
		if !sg.isRef {
			b.WriteString(sg.lit)
			continue
		}
		v, err := lookupRef(sg.ref, sc)
		if err != nil {
			return "", err
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

// lookup returns the value of one reference.
func lookupRef(r Ref, sc *Scope) (string, error) {
	if sc == nil {
		sc = &Scope{}
	}
	missing := func(what string) (string, error) {
		return "", errdefs.Invalid("{{%s}}: %s", r.String(), what)
	}
	switch r.Scope {
	case ScopeParams:
		if v, ok := sc.Params[r.Name]; ok {
			return v, nil
		}
		return missing("no parameter " + quoteText(r.Name))
	case ScopeInputs:
		if v, ok := sc.Inputs[r.Name]; ok {
			return v, nil
		}
		return missing("the step has no input " + quoteText(r.Name))
	case ScopeTrigger:
		if v, ok := sc.Trigger[r.Name]; ok {
			return v, nil
		}
		if len(sc.Trigger) == 0 {
			return missing("the run was not started by a trigger")
		}
		return missing("the trigger's event has no field " + quoteText(r.Name))
	case ScopeSteps:
		st, ok := sc.Steps[r.Name]
		if !ok {
			return missing("no step " + quoteText(r.Name) + " (or it has not finished)")
		}
		if r.Field == "state" {
			return st.State, nil
		}
		o := r.Output()
		if v, ok := st.Outputs[o]; ok {
			return v, nil
		}
		state := ""
		if st.State != "" {
			state = " (it is " + st.State + ")"
		}
		return missing("step " + quoteText(r.Name) + " has no output " + quoteText(o) + state)
	case ScopeRun:
		switch r.Name {
		case "id":
			return sc.Run.ID, nil
		case "pipeline":
			return sc.Run.Pipeline, nil
		case "tracking_run_id":
			return sc.Run.TrackingRunID, nil
		}
	case ScopePipeline:
		if sc.PipelineStatus == "" {
			return missing("only the exit handler (on_exit) knows the pipeline's status")
		}
		return sc.PipelineStatus, nil
	}
	return missing("unknown reference")
}

// References lists the templates of s in order (duplicates included); a
// malformed template is an error (errdefs invalid) that names it.
func References(s string) ([]Ref, error) {
	if !strings.Contains(s, "{{") {
		return nil, nil
	}
	segs, err := scanTemplate(s)
	if err != nil {
		return nil, err
	}
	var refs []Ref
	for _, sg := range segs {
		if sg.isRef {
			refs = append(refs, sg.ref)
		}
	}
	return refs, nil
}

func quoteText(s string) string { return `"` + clipText(s) + `"` }

// clip shortens a string quoted in an error message.
func clipText(s string) string {
	if len(s) <= 64 {
		return s
	}
	n := 64
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
