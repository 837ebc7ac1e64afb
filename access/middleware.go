package access

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/errdefs"
)

// WorkspaceHeader names the workspace a request acts in (default
// DefaultWorkspace).
const WorkspaceHeader = "X-Kiln-Workspace"

// UIHeader marks the web UI's API calls: a refusal for want of
// credentials then carries no Basic challenge.
const UIHeader = "X-Kiln-UI"

// ActorHeader is where the middleware writes who a request comes from,
// for the handlers that record it (created_by, updated_by); a client's
// own value is replaced when access control is on.
const ActorHeader = "X-Kiln-Actor"

// DeniedHeader marks an answer of access control itself (a 401 or 403
// that no handler wrote).
const DeniedHeader = "X-Kiln-Access-Denied"

// SignatureHeader is the header of a signed webhook call.
const SignatureHeader = "X-Kiln-Signature"

// MiddlewareOptions configure Middleware.
type MiddlewareOptions struct {
	Policy Policy
	// Auth checks credentials; nil turns access control off: every
	// request is Anonymous, which may do anything (loopback only).
	Auth *Authenticator
	// Audit, if set, records every change and every refusal.
	Audit *Audit
	// RunExperiment returns the experiment id of a run (for grants on
	// one experiment).
	RunExperiment func(ctx context.Context, runID string) (string, error)
	// WriteError answers an error in the protocol's own format (the
	// route's: MLflow's, /api/v1's, the Open Inference Protocol's).
	WriteError func(w http.ResponseWriter, r *http.Request, err error)
	Logger     *slog.Logger
	// RateLimit is the requests per second each signed-in identity (a
	// token, or a user signing in otherwise) may make, in bursts of up to
	// RateBurst (default twice the rate); 0: no limit.
	RateLimit float64
	RateBurst int
	// Owners, if set, makes workspaces namespaces: a request sees only
	// the experiments, registered models and endpoints of its workspace
	// (isolation.go).
	Owners *Owners
}

// maxPeek bounds how much of a body is read to find a resource's name.
const maxPeek = 1 << 20

type middleware struct {
	next   http.Handler
	o      MiddlewareOptions
	policy *http.ServeMux
	log    *slog.Logger
	limits *limiters
	runs   runExperiments
}

type matchKey struct{}

type match struct {
	perm    Permission
	pattern string
	req     *http.Request
}

// Middleware checks every request against the policy: who it comes from
// (Authenticator), whether they may (Principal.Can, with the route's
// Permission), and records changes and refusals in the audit log.
func Middleware(next http.Handler, o MiddlewareOptions) http.Handler {
	m := &middleware{next: next, o: o, policy: http.NewServeMux(), log: o.Logger}
	if o.RateLimit > 0 {
		m.limits = newLimiters(o.RateLimit, o.RateBurst)
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.o.WriteError == nil {
		m.o.WriteError = func(w http.ResponseWriter, r *http.Request, err error) {
			status := http.StatusForbidden
			if isUnauthenticated(err) {
				status = http.StatusUnauthorized
			}
			http.Error(w, err.Error(), status)
		}
	}
	for pattern, perm := range o.Policy {
		m.policy.HandleFunc(pattern, func(_ http.ResponseWriter, r *http.Request) {
			if mt, ok := r.Context().Value(matchKey{}).(*match); ok {
				mt.perm, mt.pattern, mt.req = perm, pattern, r
			}
		})
	}
	return m
}

type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header {
	if d.h == nil {
		d.h = http.Header{}
	}
	return d.h
}
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

// route finds the policy's pattern for r.
func (m *middleware) route(r *http.Request) *match {
	mt := &match{}
	m.policy.ServeHTTP(&discardWriter{}, r.WithContext(context.WithValue(r.Context(), matchKey{}, mt)))
	if mt.req == nil {
		return nil
	}
	return mt
}

func (m *middleware) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	mt := m.route(r)
	perm := Permission{Action: ActionServerAdmin} // a route without a check
	pattern := ""
	if mt != nil {
		perm, pattern = mt.perm, mt.pattern
	}
	ws := r.Header.Get(WorkspaceHeader)
	if ws == "" {
		ws = DefaultWorkspace
	} else if err := ValidateName("workspace", ws); err != nil {
		m.o.WriteError(w, r, err)
		return
	}
	if pw, ok := strings.CutPrefix(perm.From, "workspace:"); ok && mt != nil {
		ws = mt.req.PathValue(pw)
	}
	ev := &Event{Action: pattern, Method: r.Method, Path: clipPath(r.URL.Path), Workspace: ws, RequestID: w.Header().Get("X-Request-Id"),
		SourceIP: sourceIP(r), UserAgent: clip(r.UserAgent())}
	if ev.Action == "" {
		ev.Action = r.Method + " " + ev.Path
	}
	if mt != nil {
		ev.Resource = resourceLabel(perm, mt.req)
	}

	p := Anonymous
	if m.o.Auth != nil {
		var err error
		p, err = m.o.Auth.Authenticate(ctx, r)
		if err != nil && perm.Action == ActionPublic && r.Header.Get("Authorization") == "" {
			// Only a session cookie the server no longer knows (expired, or
			// signed out elsewhere): a public route (login, OIDC) still
			// serves, or the browser could never sign in again.
			p, err = nil, nil
		}
		if err != nil {
			m.refuse(w, r, ev, "anonymous", err)
			return
		}
		if p == nil {
			switch {
			case perm.Action == ActionPublic:
				ev.Actor = "anonymous"
				m.serve(w, r, ev, perm, nil)
				return
			case pattern == "POST /api/v1/pipelines/{name}/triggers/{trigger}" && r.Header.Get(SignatureHeader) != "":
				// The trigger checks the signature against its secret.
				ev.Actor, ev.Auth = "webhook", "signature"
				m.serve(w, r, ev, perm, nil)
				return
			}
			if r.Header.Get(UIHeader) == "" {
				// Not to the web UI's own calls: a browser would answer
				// the challenge with its password dialog instead of
				// letting the page show its sign-in form.
				w.Header().Set("WWW-Authenticate", `Basic realm="kiln", charset="UTF-8"`)
			}
			m.refuse(w, r, ev, "anonymous", unauthenticated("Authentication required: send a Kiln API token (Authorization: Bearer kiln_…, or MLFLOW_TRACKING_TOKEN) or a user name and password (HTTP Basic, or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD)"))
			return
		}
	}
	ev.Actor, ev.Auth = p.User, p.Auth
	if p.TokenWorkspace != "" && r.Header.Get(WorkspaceHeader) == "" && !strings.HasPrefix(perm.From, "workspace:") {
		// A token bound to a workspace acts in it unless told otherwise
		// (the mlflow client cannot send X-Kiln-Workspace).
		ws, ev.Workspace = p.TokenWorkspace, p.TokenWorkspace
	}
	if m.limits != nil && p != Anonymous {
		if wait, ok := m.limits.allow(p); !ok {
			secs := int(wait.Seconds()) + 1
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			m.refuse(w, r, ev, p.User, &errdefs.Error{Kind: errdefs.ErrRateLimited,
				Msg: sprintf("Too many requests from %s: at most %g a second; retry in %ds", p.limitKey(), m.o.RateLimit, secs)})
			return
		}
	}
	if p.Auth == "session" && mutating(r.Method) && !constantEqual(r.Header.Get(CSRFHeader), p.csrf) {
		m.refuse(w, r, ev, p.User, permissionDenied("Missing or wrong %s header: a signed-in browser session must send the CSRF token it got at login", CSRFHeader))
		return
	}
	allowed := p.Can(perm.Action, ws, "", "")
	rn := resourceOf{m: m, perm: perm, mt: mt, r: r}
	if !allowed && mt != nil && p.needsResource(perm.Action, ws, perm.Resource) {
		name, err := rn.name(ctx)
		if err == nil && name != "" {
			allowed = p.Can(perm.Action, ws, perm.Resource, name)
			ev.Resource = string(perm.Resource) + "/" + clip(name)
		}
	}
	if !allowed {
		m.refuse(w, r, ev, p.User, denial(p, perm, ws))
		return
	}
	if m.o.Auth != nil {
		r.Header.Set(ActorHeader, p.User)
	}
	ctx = WithPrincipal(ctx, p)
	var after func(*lifecycleWriter)
	if m.o.Owners != nil {
		sc := &scope{owners: m.o.Owners, ws: ws}
		ctx = context.WithValue(ctx, scopeKey{}, sc)
		if mt != nil && sc.isolated(ctx) {
			var err error
			if after, err = m.isolate(ctx, ws, pattern, &rn); err != nil {
				m.hidden(w, r, ev, err)
				return
			}
		}
	}
	r2 := r.WithContext(ctx)
	if after != nil {
		lw := &lifecycleWriter{ResponseWriter: w, status: http.StatusOK}
		m.serve(lw, r2, ev, perm, p)
		after(lw)
	} else {
		m.serve(w, r2, ev, perm, p)
	}
	r.Pattern = r2.Pattern // for the metrics and logs of the middleware outside
}

// serve runs the handler, recording the request in the audit log when it
// changes something.
func (m *middleware) serve(w http.ResponseWriter, r *http.Request, ev *Event, perm Permission, p *Principal) {
	if m.o.Audit == nil || !(audited(perm.Action, r.Method) || auditedReads[ev.Action]) {
		m.next.ServeHTTP(w, r)
		return
	}
	var body *hashingReader
	if r.Body != nil && r.Body != http.NoBody {
		body = &hashingReader{r: r.Body, h: sha256.New()}
		r.Body = body
	}
	rw := &hashingWriter{ResponseWriter: w, h: sha256.New(), status: http.StatusOK}
	m.next.ServeHTTP(rw, r)
	ev.Status = rw.status
	if body != nil && body.n > 0 {
		ev.RequestDigest = "sha256:" + hex.EncodeToString(body.h.Sum(nil))
	}
	if rw.n > 0 {
		ev.ResponseDigest = "sha256:" + hex.EncodeToString(rw.h.Sum(nil))
	}
	m.append(r.Context(), ev)
}

func (m *middleware) append(ctx context.Context, ev *Event) {
	if err := m.o.Audit.Append(context.WithoutCancel(ctx), ev); err != nil {
		m.log.Error("audit: an event was not recorded", "action", ev.Action, "actor", ev.Actor, "request_id", ev.RequestID, "err", err)
	}
}

// refuse answers 401 or 403 and records the refusal.
func (m *middleware) refuse(w http.ResponseWriter, r *http.Request, ev *Event, actor string, err error) {
	if ev.Actor == "" {
		ev.Actor = actor
	}
	ev.Status = http.StatusForbidden
	if isUnauthenticated(err) {
		ev.Status = http.StatusUnauthorized
	} else if errors.Is(err, errdefs.ErrRateLimited) {
		ev.Status = http.StatusTooManyRequests
	}
	ev.Detail = err.Error()
	if len(ev.Detail) > 1024 {
		ev.Detail = ev.Detail[:1024] + "…"
	}
	if m.o.Audit != nil {
		m.append(r.Context(), ev)
	}
	w.Header().Set(DeniedHeader, "true")
	m.o.WriteError(w, r, err)
}

func denial(p *Principal, perm Permission, ws string) error {
	switch perm.Action {
	case ActionServerAdmin:
		return permissionDenied("User '%s' is not a server administrator", p.User)
	}
	if !p.Scope.allows(perm.Action) {
		return permissionDenied("Token %s has scope %s, which does not allow %s", p.TokenID, p.Scope, perm.Action)
	}
	if p.TokenWorkspace != "" && p.TokenWorkspace != ws {
		return permissionDenied("Token %s may act only in workspace '%s', not '%s'", p.TokenID, p.TokenWorkspace, ws)
	}
	return permissionDenied("User '%s' may not %s in workspace '%s' (needs role %s or above)", p.User, perm.Action, ws, perm.Action.minRole())
}

// audited reports whether the audit log records a request: changes, and
// the administration of access itself.
func audited(a Action, method string) bool {
	switch a {
	case ActionWrite, ActionManage, ActionGrant:
		return true
	case ActionServerAdmin, ActionAuthenticated, ActionPublic:
		return mutating(method)
	}
	return false
}

// resourceName finds the name of the resource a request acts on.
func (m *middleware) resourceName(ctx context.Context, perm Permission, matched, r *http.Request) (string, error) {
	src, field, _ := strings.Cut(perm.From, ":")
	switch src {
	case "path":
		return matched.PathValue(field), nil
	case "param":
		return param(r, field)
	case "run":
		id, err := param(r, field)
		if err != nil || id == "" || m.o.RunExperiment == nil {
			return "", err
		}
		if exp, ok := m.runs.get(id); ok {
			return exp, nil
		}
		exp, err := m.o.RunExperiment(ctx, id)
		if err == nil {
			m.runs.put(id, exp) // a run never changes experiment
		}
		return exp, err
	}
	return "", nil
}

// param reads a field from the query string of a GET, else the JSON
// body's top level (the body is put back for the handler).
func param(r *http.Request, field string) (string, error) {
	if v := r.URL.Query().Get(field); v != "" || r.Method == http.MethodGet {
		return v, nil
	}
	if r.Body == nil || r.Body == http.NoBody {
		return "", nil
	}
	peek, err := io.ReadAll(io.LimitReader(r.Body, maxPeek))
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(peek), r.Body), r.Body}
	if err != nil {
		return "", err
	}
	var doc map[string]json.RawMessage
	if json.Unmarshal(peek, &doc) != nil {
		return "", nil
	}
	raw := doc[field]
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String(), nil
	}
	return "", nil
}

// resourceLabel names a route's resource from its path, when the path
// has it ("endpoint/churn"), for the audit log.
func resourceLabel(perm Permission, matched *http.Request) string {
	if w, ok := strings.CutPrefix(perm.From, "path:"); ok {
		if v := matched.PathValue(w); v != "" {
			return string(perm.Resource) + "/" + clip(v)
		}
	}
	return ""
}

func sourceIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func clipPath(p string) string {
	if len(p) > 512 {
		return p[:512] + "…"
	}
	return p
}

func constantEqual(a, b string) bool {
	if a == "" || b == "" || len(a) != len(b) {
		return false
	}
	var d byte
	for i := 0; i < len(a); i++ {
		d |= a[i] ^ b[i]
	}
	return d == 0
}

type hashingReader struct {
	r io.ReadCloser
	h hash.Hash
	n int64
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

func (h *hashingReader) Close() error { return h.r.Close() }

type hashingWriter struct {
	http.ResponseWriter
	h      hash.Hash
	n      int64
	status int
	wrote  bool
}

func (w *hashingWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *hashingWriter) Write(b []byte) (int, error) {
	w.wrote = true
	w.h.Write(b)
	w.n += int64(len(b))
	return w.ResponseWriter.Write(b)
}

func (w *hashingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *hashingWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
