package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"

	"github.com/kiln-ml/kiln/access"
	"github.com/kiln-ml/kiln/deploy"
	"github.com/kiln-ml/kiln/errdefs"
)

// Endpoints is what the endpoint routes need of the deployment manager
// (deploy.Manager implements it).
type Endpoints interface {
	Apply(ctx context.Context, e *deploy.Endpoint, actor, reason string) (*deploy.ApplyResult, error)
	Get(ctx context.Context, name string) (*deploy.State, error)
	Pending(ctx context.Context, s *deploy.State) string
	List(ctx context.Context) ([]*deploy.State, error)
	Delete(ctx context.Context, name, actor, reason string) error
	Promote(ctx context.Context, name, actor, reason string) (*deploy.State, error)
	Pause(ctx context.Context, name, actor, reason string) (*deploy.State, error)
	Resume(ctx context.Context, name, actor, reason string) (*deploy.State, error)
	Rollback(ctx context.Context, name, actor, reason string) (*deploy.State, error)
	Events(ctx context.Context, name string, limit int) ([]deploy.Event, error)
	Stats(name string) ([]deploy.RouteStats, error)
}

// Who and why of a change. Until access control exists, the actor is
// whatever the client says in ActorHeader.
const (
	ActorHeader    = "X-Kiln-Actor"
	DefaultActor   = "anonymous"
	maxActorLen    = 256
	maxReasonLen   = 1024
	maxEndpointDoc = 1 << 20
	// DefaultEventLimit and MaxEventLimit bound GET …/events.
	DefaultEventLimit = 50
	MaxEventLimit     = 1000
)

// Rollout actions of POST /endpoints/{name}/rollout/{action}.
var rolloutActions = []string{"promote", "pause", "resume", "rollback"}

// ApplyEndpointResponse is the answer of PUT /endpoints/{name}. Diff is a
// unified diff of the stored document (normalized YAML) against the
// applied one, empty when they are equal. A dry run (?dry_run=true)
// validates and diffs without applying: State is then the current state
// (null for an endpoint that would be created).
type ApplyEndpointResponse struct {
	Created bool          `json:"created"`
	Changed bool          `json:"changed"`
	DryRun  bool          `json:"dry_run,omitempty"`
	State   *deploy.State `json:"state"`
	Diff    string        `json:"diff"`
}

// EndpointList lists endpoints by name.
type EndpointList struct {
	Endpoints []*deploy.State `json:"endpoints"`
}

// RolloutRequest is the (optional) body of a rollout action.
type RolloutRequest struct {
	Reason string `json:"reason,omitempty"`
}

// EventList lists an endpoint's events, newest first.
type EventList struct {
	Events []deploy.Event `json:"events"`
}

// EndpointStats are the live figures of an endpoint: the whole endpoint
// first, then its routes, variants and shadow.
type EndpointStats struct {
	Endpoint string              `json:"endpoint"`
	Stats    []deploy.RouteStats `json:"stats"`
}

func (h *Handler) registerEndpoints(mux Mux) {
	h.handle(mux, "GET", "/endpoints", h.listEndpoints)
	h.handle(mux, "GET", "/endpoints/{name}", h.getEndpoint)
	h.handle(mux, "PUT", "/endpoints/{name}", h.applyEndpoint)
	h.handle(mux, "DELETE", "/endpoints/{name}", h.deleteEndpoint)
	h.handle(mux, "POST", "/endpoints/{name}/rollout/{action}", h.rolloutEndpoint)
	h.handle(mux, "GET", "/endpoints/{name}/events", h.endpointEvents)
	h.handle(mux, "GET", "/endpoints/{name}/stats", h.endpointStats)
}

func (h *Handler) endpoints() (Endpoints, error) {
	if h.d.Endpoints == nil {
		return nil, errdefs.NotImplemented("This server does not serve endpoints")
	}
	return h.d.Endpoints, nil
}

// endpointName reads and checks the {name} path value.
func endpointName(r *http.Request) (string, error) {
	name := r.PathValue("name")
	if !deploy.ValidName(name) {
		return "", errdefs.Invalid("Invalid endpoint name '%s': want a DNS label (lower-case letters, digits and '-', 1-63 characters)", clip(name))
	}
	return name, nil
}

// actor returns who makes a change: the X-Kiln-Actor header, or
// DefaultActor.
func actor(r *http.Request) (string, error) {
	a := strings.TrimSpace(r.Header.Get(ActorHeader))
	if a == "" {
		return DefaultActor, nil
	}
	if err := checkText(ActorHeader, a, maxActorLen); err != nil {
		return "", err
	}
	return a, nil
}

func checkText(what, s string, max int) error {
	if len(s) > max {
		return errdefs.Invalid("%s is longer than %d bytes", what, max)
	}
	for _, r := range s {
		if r == unicode.ReplacementChar || unicode.IsControl(r) && r != '\t' {
			return errdefs.Invalid("%s holds control characters or invalid UTF-8", what)
		}
	}
	return nil
}

// reasonParam reads the optional ?reason= of PUT and DELETE.
func reasonParam(r *http.Request) (string, error) {
	reason := r.URL.Query().Get("reason")
	return reason, checkText("The reason", reason, maxReasonLen)
}

// FieldDetail is one field of a request at fault, listed in the error
// body's details (for an invalid endpoint document).
type FieldDetail struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

// invalidDocument is an invalid endpoint document: its message names the
// endpoint and every problem, its details list the fields.
type invalidDocument struct {
	name string
	errs deploy.FieldErrors
}

func (e *invalidDocument) Error() string {
	return fmt.Sprintf("Invalid endpoint '%s': %s", e.name, e.errs.Error())
}

func (e *invalidDocument) Unwrap() error { return e.errs }

// FieldDetails lists the fields at fault.
func (e *invalidDocument) FieldDetails() []FieldDetail {
	out := make([]FieldDetail, len(e.errs))
	for i, fe := range e.errs {
		out[i] = FieldDetail{Path: fe.Path, Message: fe.Msg}
	}
	return out
}

// decodeEndpoint reads the document of PUT /endpoints/{name}, normalized
// and validated.
func decodeEndpoint(w http.ResponseWriter, r *http.Request, name string) (*deploy.Endpoint, error) {
	var e deploy.Endpoint
	if err := decodeJSON(w, r, maxEndpointDoc, &e, false); err != nil {
		return nil, err
	}
	switch e.Metadata.Name {
	case "":
		e.Metadata.Name = name
	case name:
	default:
		return nil, &invalidDocument{name: name, errs: deploy.FieldErrors{{Path: "metadata.name",
			Msg: fmt.Sprintf("is %q, but the URL names endpoint %q", clip(e.Metadata.Name), name)}}}
	}
	e.Normalize()
	if err := e.Validate(); err != nil {
		var fes deploy.FieldErrors
		if errors.As(err, &fes) {
			return nil, &invalidDocument{name: name, errs: fes}
		}
		return nil, err
	}
	return &e, nil
}

func (h *Handler) listEndpoints(w http.ResponseWriter, r *http.Request) error {
	m, err := h.endpoints()
	if err != nil {
		return err
	}
	states, err := m.List(r.Context())
	if err != nil {
		return err
	}
	states = access.FilterVisible(r.Context(), access.ResourceEndpoint, states, func(s *deploy.State) string { return s.Endpoint.Metadata.Name })
	if states == nil {
		states = []*deploy.State{}
	}
	writeShownJSON(w, http.StatusOK, EndpointList{Endpoints: states})
	return nil
}

func (h *Handler) getEndpoint(w http.ResponseWriter, r *http.Request) error {
	m, err := h.endpoints()
	if err != nil {
		return err
	}
	name, err := endpointName(r)
	if err != nil {
		return err
	}
	st, err := m.Get(r.Context(), name)
	if err != nil {
		return err
	}
	st.Status.Pending = m.Pending(r.Context(), st)
	writeShownJSON(w, http.StatusOK, st)
	return nil
}

func (h *Handler) applyEndpoint(w http.ResponseWriter, r *http.Request) error {
	m, err := h.endpoints()
	if err != nil {
		return err
	}
	name, err := endpointName(r)
	if err != nil {
		return err
	}
	who, err := actor(r)
	if err != nil {
		return err
	}
	reason, err := reasonParam(r)
	if err != nil {
		return err
	}
	dryRun := false
	if s := r.URL.Query().Get("dry_run"); s != "" {
		if dryRun, err = strconv.ParseBool(s); err != nil {
			return errdefs.Invalid("Invalid dry_run '%s': want true or false", clip(s))
		}
	}
	e, err := decodeEndpoint(w, r, name)
	if err != nil {
		return err
	}
	ctx := r.Context()
	cur, err := m.Get(ctx, name)
	if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return err
	}
	var before *deploy.Endpoint
	if cur != nil {
		if !access.Visible(ctx, access.ResourceEndpoint, name) {
			// Names are shared by all workspaces.
			return access.OwnedElsewhere(access.ResourceEndpoint, name, access.RequestWorkspace(ctx))
		}
		before = &cur.Endpoint
	}
	diff, err := endpointDiff(before, e)
	if err != nil {
		return err
	}
	if dryRun {
		writeShownJSON(w, http.StatusOK, ApplyEndpointResponse{Created: cur == nil, Changed: cur == nil || diff != "", DryRun: true, State: cur, Diff: diff})
		return nil
	}
	undo := func(context.Context) {}
	if cur == nil && access.Isolated(ctx) {
		// The endpoint's model references name models of its workspace,
		// which must own it before they are resolved.
		if undo, err = access.ClaimNow(ctx, access.ResourceEndpoint, name); err != nil {
			return err
		}
	}
	res, err := m.Apply(ctx, e, who, reason)
	if err != nil {
		undo(context.WithoutCancel(ctx))
		return err
	}
	if !res.Changed {
		diff = ""
	}
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
	}
	writeShownJSON(w, status, ApplyEndpointResponse{Created: res.Created, Changed: res.Changed, State: res.State, Diff: diff})
	return nil
}

func (h *Handler) deleteEndpoint(w http.ResponseWriter, r *http.Request) error {
	m, err := h.endpoints()
	if err != nil {
		return err
	}
	name, err := endpointName(r)
	if err != nil {
		return err
	}
	who, err := actor(r)
	if err != nil {
		return err
	}
	reason, err := reasonParam(r)
	if err != nil {
		return err
	}
	if err := m.Delete(r.Context(), name, who, reason); err != nil {
		return err
	}
	writeShownJSON(w, http.StatusOK, struct{}{})
	return nil
}

func (h *Handler) rolloutEndpoint(w http.ResponseWriter, r *http.Request) error {
	m, err := h.endpoints()
	if err != nil {
		return err
	}
	name, err := endpointName(r)
	if err != nil {
		return err
	}
	var act func(ctx context.Context, name, actor, reason string) (*deploy.State, error)
	switch a := r.PathValue("action"); a {
	case "promote":
		act = m.Promote
	case "pause":
		act = m.Pause
	case "resume":
		act = m.Resume
	case "rollback":
		act = m.Rollback
	default:
		return errdefs.NotFound("No rollout action '%s' (want %s)", clip(a), strings.Join(rolloutActions, ", "))
	}
	who, err := actor(r)
	if err != nil {
		return err
	}
	var req RolloutRequest
	if err := decodeJSON(w, r, DefaultMaxJSONBytes, &req, true); err != nil {
		return err
	}
	if err := checkText("The reason", req.Reason, maxReasonLen); err != nil {
		return err
	}
	st, err := act(r.Context(), name, who, req.Reason)
	if err != nil {
		return err
	}
	writeShownJSON(w, http.StatusOK, st)
	return nil
}

func (h *Handler) endpointEvents(w http.ResponseWriter, r *http.Request) error {
	m, err := h.endpoints()
	if err != nil {
		return err
	}
	name, err := endpointName(r)
	if err != nil {
		return err
	}
	limit, err := queryInt(r, "limit")
	if err != nil {
		return err
	}
	switch {
	case limit == 0:
		limit = DefaultEventLimit
	case limit < 0 || limit > MaxEventLimit:
		return errdefs.Invalid("Invalid limit %d: want 1 to %d", limit, MaxEventLimit)
	}
	evs, err := m.Events(r.Context(), name, limit)
	if err != nil {
		return err
	}
	if evs == nil {
		evs = []deploy.Event{}
	}
	writeShownJSON(w, http.StatusOK, EventList{Events: evs})
	return nil
}

func (h *Handler) endpointStats(w http.ResponseWriter, r *http.Request) error {
	m, err := h.endpoints()
	if err != nil {
		return err
	}
	name, err := endpointName(r)
	if err != nil {
		return err
	}
	stats, err := m.Stats(name)
	if err != nil {
		return err
	}
	if stats == nil {
		stats = []deploy.RouteStats{}
	}
	writeShownJSON(w, http.StatusOK, EndpointStats{Endpoint: name, Stats: stats})
	return nil
}

// EndpointYAML writes an endpoint document as YAML: the form that kiln
// get -o yaml prints, kiln apply takes back, and diffs compare.
func EndpointYAML(e *deploy.Endpoint) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(e); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// endpointDiff is the unified diff of two endpoint documents' YAML
// (before nil: a new endpoint), "" when they are equal.
func endpointDiff(before, after *deploy.Endpoint) (string, error) {
	b, err := EndpointYAML(after)
	if err != nil {
		return "", err
	}
	ref := "endpoint/" + after.Metadata.Name
	if before == nil {
		return UnifiedDiff("/dev/null", ref, "", string(b)), nil
	}
	a, err := EndpointYAML(before)
	if err != nil {
		return "", err
	}
	return UnifiedDiff(ref+" (live)", ref+" (applied)", string(a), string(b)), nil
}

// maxDiffCells bounds the table of the line diff; larger inputs are shown
// as all removed, then all added.
const maxDiffCells = 4 << 20

// UnifiedDiff returns the unified diff (three lines of context) that
// turns text a into text b, with the file names aName and bName in its
// header; "" when they are equal.
func UnifiedDiff(aName, bName, a, b string) string {
	if a == b {
		return ""
	}
	al, bl := splitLines(a), splitLines(b)
	ops := diffLines(al, bl)
	const context = 3
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", aName, bName)
	// Walk the edit script, gathering hunks of changes with context.
	type op struct {
		kind byte // ' ', '-', '+'
		line string
		ai   int // line numbers (from 0) in a and b before this op
		bi   int
	}
	var script []op
	ai, bi := 0, 0
	for _, k := range ops {
		switch k {
		case ' ':
			script = append(script, op{' ', al[ai], ai, bi})
			ai++
			bi++
		case '-':
			script = append(script, op{'-', al[ai], ai, bi})
			ai++
		case '+':
			script = append(script, op{'+', bl[bi], ai, bi})
			bi++
		}
	}
	for i := 0; i < len(script); {
		if script[i].kind == ' ' {
			i++
			continue
		}
		start := max(0, i-context)
		end := i
		// Extend the hunk while changes are within 2*context lines.
		for j := i; j < len(script); j++ {
			if script[j].kind != ' ' {
				end = j + 1
			} else if j-end >= 2*context {
				break
			}
		}
		end = min(len(script), end+context)
		h := script[start:end]
		var aLen, bLen int
		for _, o := range h {
			if o.kind != '+' {
				aLen++
			}
			if o.kind != '-' {
				bLen++
			}
		}
		aStart, bStart := h[0].ai+1, h[0].bi+1
		if aLen == 0 {
			aStart--
		}
		if bLen == 0 {
			bStart--
		}
		fmt.Fprintf(&out, "@@ -%s +%s @@\n", hunkRange(aStart, aLen), hunkRange(bStart, bLen))
		for _, o := range h {
			out.WriteByte(o.kind)
			out.WriteString(o.line)
			out.WriteByte('\n')
		}
		i = end
	}
	return out.String()
}

func hunkRange(start, n int) string {
	if n == 1 {
		return strconv.Itoa(start)
	}
	return strconv.Itoa(start) + "," + strconv.Itoa(n)
}

func splitLines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// diffLines returns an edit script (' ' keep, '-' delete from a, '+'
// insert from b) of a longest common subsequence of lines.
func diffLines(a, b []string) []byte {
	n, m := len(a), len(b)
	if n*m > maxDiffCells {
		ops := make([]byte, 0, n+m)
		for range a {
			ops = append(ops, '-')
		}
		for range b {
			ops = append(ops, '+')
		}
		return ops
	}
	// lcs[i][j] is the LCS length of a[i:] and b[j:].
	lcs := make([][]int32, n+1)
	for i := range lcs {
		lcs[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	ops := make([]byte, 0, n+m)
	i, j := 0, 0
	for i < n && j < m {
		switch {
		case a[i] == b[j]:
			ops = append(ops, ' ')
			i++
			j++
		case lcs[i+1][j] >= lcs[i][j+1]:
			ops = append(ops, '-')
			i++
		default:
			ops = append(ops, '+')
			j++
		}
	}
	for ; i < n; i++ {
		ops = append(ops, '-')
	}
	for ; j < m; j++ {
		ops = append(ops, '+')
	}
	return ops
}
