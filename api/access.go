package api

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/kiln-ml/kiln/access"
	"github.com/kiln-ml/kiln/errdefs"
)

// Access is what the access routes serve: users, tokens, workspaces and
// grants (Users), credential checks (Auth) and the audit log (Audit).
type Access struct {
	Users *access.Store
	Auth  *access.Authenticator
	Audit *access.Audit
	// Secure marks the session cookie Secure (the server speaks TLS).
	Secure bool
	// OIDC, if set, signs users in through an OpenID Connect provider
	// (api/oidc.go).
	OIDC *access.OIDC
}

// LoginRequest is the body of POST /login.
type LoginRequest struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// LoginResponse answers a login: the session cookie is set, and
// csrf_token goes in the X-CSRF-Token header of every change.
type LoginResponse struct {
	User      string `json:"user"`
	CSRFToken string `json:"csrf_token"`
	Expires   int64  `json:"expires"`
}

// CreateTokenRequest is the body of POST /tokens: ttl is a Go duration
// ("720h"; empty: until revoked); user (administrators only) makes a token
// for another user or a service account.
type CreateTokenRequest struct {
	User      string `json:"user,omitempty"`
	Name      string `json:"name,omitempty"`
	Scope     string `json:"scope,omitempty"`
	Workspace string `json:"workspace,omitempty"`
	TTL       string `json:"ttl,omitempty"`
}

// CreateTokenResponse holds the token itself, shown this once.
type CreateTokenResponse struct {
	Token  *access.Token `json:"token"`
	Secret string        `json:"secret"`
}

const maxAccessBody = 64 << 10

func (h *Handler) registerAccess(mux Mux) {
	h.handle(mux, "POST", "/login", h.login)
	h.handle(mux, "POST", "/logout", h.logout)
	h.handle(mux, "GET", "/whoami", h.whoami)
	h.handle(mux, "GET", "/users", h.listUsers)
	h.handle(mux, "POST", "/users", h.createUser)
	h.handle(mux, "GET", "/users/{name}", h.getUser)
	h.handle(mux, "PATCH", "/users/{name}", h.updateUser)
	h.handle(mux, "DELETE", "/users/{name}", h.deleteUser)
	h.handle(mux, "GET", "/tokens", h.listTokens)
	h.handle(mux, "POST", "/tokens", h.createToken)
	h.handle(mux, "DELETE", "/tokens/{id}", h.revokeToken)
	h.handle(mux, "GET", "/workspaces", h.listWorkspaces)
	h.handle(mux, "POST", "/workspaces", h.createWorkspace)
	h.handle(mux, "DELETE", "/workspaces/{name}", h.deleteWorkspace)
	h.handle(mux, "GET", "/workspaces/{name}/grants", h.listGrants)
	h.handle(mux, "PUT", "/workspaces/{name}/grants", h.putGrant)
	h.handle(mux, "DELETE", "/workspaces/{name}/grants", h.deleteGrant)
	h.handle(mux, "GET", "/audit", h.listAudit)
	h.handle(mux, "GET", "/audit/verify", h.verifyAudit)
	h.registerOIDC(mux)
}

func (h *Handler) access() (*Access, error) {
	if h.d.Access == nil || h.d.Access.Users == nil {
		return nil, errdefs.NotImplemented("This server has no access control store")
	}
	return h.d.Access, nil
}

// principal is who the request comes from (the middleware put it there;
// without the middleware, as in package tests, it is access.Anonymous).
func principal(r *http.Request) *access.Principal {
	if p := access.FromContext(r.Context()); p != nil {
		return p
	}
	return access.Anonymous
}

func forbidden(format string, args ...any) error {
	return &errdefs.Error{Kind: errdefs.ErrPermission, Msg: sprintf(format, args...)}
}

func (h *Handler) invalidate() {
	if a := h.d.Access; a != nil && a.Auth != nil {
		a.Auth.Invalidate()
	}
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) error {
	a, err := h.access()
	if err != nil {
		return err
	}
	if a.Auth == nil {
		return errdefs.InvalidState("Access control is off on this server: there is nothing to sign in to")
	}
	var req LoginRequest
	if err := decodeJSON(w, r, maxAccessBody, &req, false); err != nil {
		return err
	}
	p, err := a.Auth.Login(r.Context(), req.User, req.Password)
	if err != nil {
		return err
	}
	cookie, csrf, exp, err := a.Users.CreateSession(r.Context(), p.User)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: access.SessionCookie, Value: cookie, Path: "/", Expires: exp, HttpOnly: true,
		Secure: a.Secure, SameSite: http.SameSiteLaxMode})
	writeJSON(w, http.StatusOK, LoginResponse{User: p.User, CSRFToken: csrf, Expires: exp.UnixMilli()})
	return nil
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) error {
	a, err := h.access()
	if err != nil {
		return err
	}
	if c, err := r.Cookie(access.SessionCookie); err == nil && c.Value != "" {
		if err := a.Users.DeleteSession(r.Context(), c.Value); err != nil {
			return err
		}
	}
	http.SetCookie(w, &http.Cookie{Name: access.SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: a.Secure, SameSite: http.SameSiteLaxMode})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) whoami(w http.ResponseWriter, r *http.Request) error {
	p := principal(r)
	if t := p.CSRFToken(); t != "" {
		// A signed-in browser learns its session's CSRF token again after
		// a reload (only a same-origin page can read this answer).
		writeJSON(w, http.StatusOK, struct {
			*access.Principal
			CSRFToken string `json:"csrf_token"`
		}{p, t})
		return nil
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (h *Handler) listUsers(w http.ResponseWriter, r *http.Request) error {
	a, err := h.access()
	if err != nil {
		return err
	}
	us, err := a.Users.ListUsers(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": us})
	return nil
}

func (h *Handler) createUser(w http.ResponseWriter, r *http.Request) error {
	a, err := h.access()
	if err != nil {
		return err
	}
	var nu access.NewUser
	if err := decodeJSON(w, r, maxAccessBody, &nu, false); err != nil {
		return err
	}
	u, err := a.Users.CreateUser(r.Context(), nu, principal(r).User)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, u)
	return nil
}

// selfOrAdmin checks that the request is by the user named in the path,
// or by a server administrator.
func selfOrAdmin(r *http.Request, name string) error {
	p := principal(r)
	if p.Admin || p.User == name {
		return nil
	}
	return forbidden("User '%s' may only see and change their own account", p.User)
}

func (h *Handler) getUser(w http.ResponseWriter, r *http.Request) error {
	a, err := h.access()
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	if err := selfOrAdmin(r, name); err != nil {
		return err
	}
	u, err := a.Users.GetUser(r.Context(), name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, u)
	return nil
}

func (h *Handler) updateUser(w http.ResponseWriter, r *http.Request) error {
	a, err := h.access()
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	if err := selfOrAdmin(r, name); err != nil {
		return err
	}
	var up access.UserUpdate
	if err := decodeJSON(w, r, maxAccessBody, &up, false); err != nil {
		return err
	}
	p := principal(r)
	if !p.Admin && (up.Admin != nil || up.Disabled != nil) {
		return forbidden("Only a server administrator changes admin or disabled")
	}
	if p.Admin && p.User == name && ((up.Admin != nil && !*up.Admin) || (up.Disabled != nil && *up.Disabled)) {
		if n, err := a.Users.CountAdmins(r.Context()); err != nil {
			return err
		} else if n <= 1 {
			return errdefs.InvalidState("User '%s' is the last server administrator", name)
		}
	}
	u, err := a.Users.UpdateUser(r.Context(), name, up)
	if err != nil {
		return err
	}
	h.invalidate()
	writeJSON(w, http.StatusOK, u)
	return nil
}

func (h *Handler) deleteUser(w http.ResponseWriter, r *http.Request) error {
	a, err := h.access()
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	if u, err := a.Users.GetUser(r.Context(), name); err != nil {
		return err
	} else if u.Admin && !u.Disabled {
		if n, err := a.Users.CountAdmins(r.Context()); err != nil {
			return err
		} else if n <= 1 {
			return errdefs.InvalidState("User '%s' is the last server administrator", name)
		}
	}
	if err := a.Users.DeleteUser(r.Context(), name); err != nil {
		return err
	}
	h.invalidate()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) listTokens(w http.ResponseWriter, r *http.Request) error {
	a, err := h.access()
	if err != nil {
		return err
	}
	p := principal(r)
	user := r.URL.Query().Get("user")
	switch {
	case user == "" && !p.Admin, user == "me":
		user = p.User
	case user != "" && user != p.User && !p.Admin:
		return forbidden("User '%s' may only list their own tokens", p.User)
	}
	ts, err := a.Users.ListTokens(r.Context(), user)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": ts})
	return nil
}

func (h *Handler) createToken(w http.ResponseWriter, r *http.Request) error {
	a, err := h.access()
	if err != nil {
		return err
	}
	var req CreateTokenRequest
	if err := decodeJSON(w, r, maxAccessBody, &req, true); err != nil {
		return err
	}
	p := principal(r)
	if req.User == "" {
		req.User = p.User
	}
	if req.User != p.User && !p.Admin {
		return forbidden("User '%s' may only make tokens for themselves", p.User)
	}
	if p.TokenID != "" && p.Scope != access.ScopeAll {
		return forbidden("A token of scope %s cannot make tokens", p.Scope)
	}
	var ttl time.Duration
	if req.TTL != "" {
		if ttl, err = time.ParseDuration(req.TTL); err != nil || ttl <= 0 {
			return errdefs.Invalid("ttl %q is not a positive duration (e.g. 720h)", clip(req.TTL))
		}
	}
	t, secret, err := a.Users.CreateToken(r.Context(), access.NewToken{User: req.User, Name: req.Name, Scope: req.Scope, Workspace: req.Workspace, TTL: ttl}, p.User)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, CreateTokenResponse{Token: t, Secret: secret})
	return nil
}

func (h *Handler) revokeToken(w http.ResponseWriter, r *http.Request) error {
	a, err := h.access()
	if err != nil {
		return err
	}
	t, err := a.Users.GetToken(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if p := principal(r); t.User != p.User && !p.Admin {
		return forbidden("User '%s' may only revoke their own tokens", p.User)
	}
	t, err = a.Users.RevokeToken(r.Context(), t.ID)
	if err != nil {
		return err
	}
	h.invalidate()
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (h *Handler) listWorkspaces(w http.ResponseWriter, r *http.Request) error {
	a, err := h.access()
	if err != nil {
		return err
	}
	ws, err := a.Users.ListWorkspaces(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"workspaces": ws})
	return nil
}

func (h *Handler) createWorkspace(w http.ResponseWriter, r *http.Request) error {
	a, err := h.access()
	if err != nil {
		return err
	}
	var ws access.Workspace
	if err := decodeJSON(w, r, maxAccessBody, &ws, false); err != nil {
		return err
	}
	out, err := a.Users.CreateWorkspace(r.Context(), access.Workspace{Name: ws.Name, Description: ws.Description}, principal(r).User)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (h *Handler) deleteWorkspace(w http.ResponseWriter, r *http.Request) error {
	a, err := h.access()
	if err != nil {
		return err
	}
	if err := a.Users.DeleteWorkspace(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	h.invalidate()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) listGrants(w http.ResponseWriter, r *http.Request) error {
	a, err := h.access()
	if err != nil {
		return err
	}
	gs, err := a.Users.ListGrants(r.Context(), r.PathValue("name"), r.URL.Query().Get("user"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"grants": gs})
	return nil
}

func (h *Handler) putGrant(w http.ResponseWriter, r *http.Request) error {
	a, err := h.access()
	if err != nil {
		return err
	}
	var g access.Grant
	if err := decodeJSON(w, r, maxAccessBody, &g, false); err != nil {
		return err
	}
	g.Workspace = r.PathValue("name")
	p := principal(r)
	if g.Role == access.RoleAdmin && !p.Admin && !p.Can(access.ActionGrant, g.Workspace, "", "") {
		return forbidden("Only a workspace or server administrator grants admin")
	}
	out, err := a.Users.PutGrant(r.Context(), g, p.User)
	if err != nil {
		return err
	}
	h.invalidate()
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *Handler) deleteGrant(w http.ResponseWriter, r *http.Request) error {
	a, err := h.access()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	g := access.Grant{User: q.Get("user"), Workspace: r.PathValue("name"), ResourceType: access.ResourceType(q.Get("resource_type")), Resource: q.Get("resource")}
	if g.User == "" {
		return errdefs.Invalid("DELETE …/grants needs ?user= (and resource_type= and resource= for a grant on one resource)")
	}
	if err := a.Users.DeleteGrant(r.Context(), g); err != nil {
		return err
	}
	h.invalidate()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) listAudit(w http.ResponseWriter, r *http.Request) error {
	a, err := h.access()
	if err != nil {
		return err
	}
	if a.Audit == nil {
		return errdefs.NotImplemented("This server keeps no audit log")
	}
	q := r.URL.Query()
	var aq access.AuditQuery
	for _, f := range []struct {
		name string
		dst  *int64
	}{{"after", &aq.After}, {"before", &aq.Before}, {"since", &aq.Since}, {"until", &aq.Until}} {
		if v := q.Get(f.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return errdefs.Invalid("%s=%q is not a non-negative integer", f.name, clip(v))
			}
			*f.dst = n
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return errdefs.Invalid("limit=%q is not a positive integer", clip(v))
		}
		aq.Limit = n
	}
	aq.Actor, aq.Action, aq.Resource = q.Get("actor"), q.Get("action"), q.Get("resource")
	switch o := q.Get("order"); o {
	case "", "asc":
	case "desc":
		aq.Desc = true
	default:
		return errdefs.Invalid("order=%q: want asc or desc", clip(o))
	}
	evs, err := a.Audit.List(r.Context(), aq)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": evs})
	return nil
}

func (h *Handler) verifyAudit(w http.ResponseWriter, r *http.Request) error {
	a, err := h.access()
	if err != nil {
		return err
	}
	if a.Audit == nil {
		return errdefs.NotImplemented("This server keeps no audit log")
	}
	v, err := a.Audit.Verify(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
