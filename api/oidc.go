package api

import (
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/kiln-ml/kiln/access"
	"github.com/kiln-ml/kiln/errdefs"
)

// OIDCFlowCookie keeps a sign-in's state, nonce and PKCE verifier
// (signed, HttpOnly) between GET /oidc/login and the callback.
const OIDCFlowCookie = "kiln_oidc_flow"

// CSRFCookie carries the session's CSRF token after an OIDC sign-in,
// which ends in a redirect rather than a JSON answer: the UI reads it (it
// is not HttpOnly) and sends it as X-CSRF-Token. Another origin can
// neither read it nor make the browser send the header.
const CSRFCookie = "kiln_csrf"

func (h *Handler) registerOIDC(mux Mux) {
	h.handle(mux, "GET", "/oidc/login", h.oidcLogin)
	h.handle(mux, "GET", "/oidc/callback", h.oidcCallback)
}

func (h *Handler) oidc() (*Access, error) {
	a, err := h.access()
	if err != nil {
		return nil, err
	}
	if a.OIDC == nil {
		return nil, errdefs.NotImplemented("Single sign-on (OIDC) is not configured on this server: see --oidc-issuer, --oidc-client-id and docs/access.md")
	}
	if a.Auth == nil {
		return nil, errdefs.InvalidState("Access control is off on this server: there is nothing to sign in to")
	}
	return a, nil
}

// oidcLogin sends the browser to the provider: GET /oidc/login?redirect=/path.
func (h *Handler) oidcLogin(w http.ResponseWriter, r *http.Request) error {
	a, err := h.oidc()
	if err != nil {
		return err
	}
	st, err := a.OIDC.Start(r.Context(), r.URL.Query().Get("redirect"))
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: OIDCFlowCookie, Value: st.Flow, Path: Prefix + "/oidc/", Expires: st.Expires,
		MaxAge: int(time.Until(st.Expires).Seconds()), HttpOnly: true, Secure: a.Secure, SameSite: http.SameSiteLaxMode})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, st.URL, http.StatusFound)
	return nil
}

// oidcCallback is where the provider sends the browser back:
// GET /oidc/callback?code=…&state=…. It starts the same session as
// POST /login and redirects to the path the sign-in started with.
func (h *Handler) oidcCallback(w http.ResponseWriter, r *http.Request) error {
	a, err := h.oidc()
	if err != nil {
		return err
	}
	// The flow is used once, whatever happens.
	http.SetCookie(w, &http.Cookie{Name: OIDCFlowCookie, Value: "", Path: Prefix + "/oidc/", MaxAge: -1, HttpOnly: true, Secure: a.Secure, SameSite: http.SameSiteLaxMode})
	w.Header().Set("Cache-Control", "no-store")
	login, err := h.finishOIDC(w, r, a)
	if err != nil {
		h.auditOIDC(r, w, a, "anonymous", statusOf(err), errdefs.Message(err))
		return err
	}
	cookie, csrf, exp, err := a.Users.CreateSession(r.Context(), login.User.Name)
	if err != nil {
		return err
	}
	if login.Changed {
		h.invalidate() // a new admin flag, for the caches of passwords and tokens
	}
	http.SetCookie(w, &http.Cookie{Name: access.SessionCookie, Value: cookie, Path: "/", Expires: exp, HttpOnly: true,
		Secure: a.Secure, SameSite: http.SameSiteLaxMode})
	http.SetCookie(w, &http.Cookie{Name: CSRFCookie, Value: csrf, Path: "/", Expires: exp, Secure: a.Secure, SameSite: http.SameSiteLaxMode})
	detail := "signed in through OIDC"
	if login.Created {
		detail = "created on the first sign-in through OIDC"
	}
	h.auditOIDC(r, w, a, login.User.Name, http.StatusFound, detail+" ("+a.OIDC.Issuer()+")")
	http.Redirect(w, r, login.Redirect, http.StatusFound)
	return nil
}

func (h *Handler) finishOIDC(w http.ResponseWriter, r *http.Request, a *Access) (*access.OIDCLogin, error) {
	q := r.URL.Query()
	c, err := r.Cookie(OIDCFlowCookie)
	if err != nil || c.Value == "" {
		return nil, errdefs.Invalid("The sign-in is unknown to this browser (no %s cookie): start it again at %s/oidc/login", OIDCFlowCookie, Prefix)
	}
	if e := q.Get("error"); e != "" {
		msg := clip(e)
		if d := q.Get("error_description"); d != "" {
			msg += ": " + clip(d)
		}
		return nil, &errdefs.Error{Kind: errdefs.ErrUnauthenticated, Msg: "The OIDC provider refused the sign-in: " + msg}
	}
	return a.OIDC.Finish(r.Context(), c.Value, q.Get("state"), q.Get("code"))
}

func statusOf(err error) int {
	for _, k := range kinds {
		if errors.Is(err, k.kind) {
			return k.status
		}
	}
	return http.StatusInternalServerError
}

// auditOIDC records a sign-in through OIDC (a GET, which the middleware
// does not record), and every refused one.
func (h *Handler) auditOIDC(r *http.Request, w http.ResponseWriter, a *Access, actor string, status int, detail string) {
	if a.Audit == nil {
		return
	}
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		ip = r.RemoteAddr
	}
	if len(detail) > 1024 {
		detail = detail[:1024] + "…"
	}
	ev := &access.Event{Actor: actor, Auth: "oidc", Action: "GET " + Prefix + "/oidc/callback", Method: r.Method, Path: r.URL.Path,
		RequestID: w.Header().Get("X-Request-Id"), Status: status, SourceIP: ip, UserAgent: clip(r.UserAgent()), Detail: detail}
	if err := a.Audit.Append(r.Context(), ev); err != nil {
		h.log.Error("audit: an event was not recorded", "action", ev.Action, "actor", actor, "err", err)
	}
}
