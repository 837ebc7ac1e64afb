package access

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
)

// Principal is who a request comes from, with the grants that say what
// they may do.
type Principal struct {
	User  string `json:"user"`
	Kind  string `json:"kind"`
	Admin bool   `json:"admin,omitempty"`
	// Auth is how the request proved it: password, token, session, or
	// none (access control is off).
	Auth    string `json:"auth"`
	TokenID string `json:"token_id,omitempty"`
	Scope   Scope  `json:"scope"`
	// TokenWorkspace, when set, is the only workspace the token may act
	// in.
	TokenWorkspace string   `json:"token_workspace,omitempty"`
	Grants         []*Grant `json:"grants"`

	csrf string // a session's CSRF token
}

// CSRFToken is the CSRF token of a browser session ("" for other
// requests): the UI reads it back after a reload.
func (p *Principal) CSRFToken() string { return p.csrf }

// Anonymous is the principal of every request when access control is off
// (a server on loopback that was told so): it may do anything.
var Anonymous = &Principal{User: "anonymous", Kind: KindUser, Admin: true, Auth: "none", Scope: ScopeAll}

// Can reports whether p may take action a in workspace ws, on resource
// (rt, name) when the route names one ("" otherwise).
func (p *Principal) Can(a Action, ws string, rt ResourceType, name string) bool {
	if !p.Scope.allows(a) {
		return false
	}
	switch a {
	case ActionPublic, ActionAuthenticated:
		return true
	}
	if p.TokenWorkspace != "" && ws != p.TokenWorkspace {
		return false
	}
	if p.Admin {
		return true
	}
	if a == ActionServerAdmin {
		return false
	}
	for _, g := range p.Grants {
		if g.Workspace != ws || !g.Role.Allows(a) {
			continue
		}
		if g.ResourceType == ResourceWorkspace || (rt != "" && g.ResourceType == rt && g.Resource == name && name != "") {
			return true
		}
	}
	return false
}

// needsResource reports whether p's answer could depend on the resource's
// name: only a grant on one resource of that type can make a difference.
func (p *Principal) needsResource(a Action, ws string, rt ResourceType) bool {
	if rt == "" {
		return false
	}
	for _, g := range p.Grants {
		if g.Workspace == ws && g.ResourceType == rt && g.Role.Allows(a) {
			return true
		}
	}
	return false
}

type ctxKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the principal of a request (nil when access control
// did not see it).
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(ctxKey{}).(*Principal)
	return p
}

// Authenticator tells who a request comes from: HTTP Basic (the MLflow
// client's MLFLOW_TRACKING_USERNAME/PASSWORD), a Bearer token (its
// MLFLOW_TRACKING_TOKEN, or KILN_TOKEN), or the UI's session cookie.
// Checked credentials are remembered for CacheTTL, so that a client
// sending its password with every request does not pay argon2id each
// time; Invalidate forgets them all (a change of users, tokens or grants
// on this server), and other servers notice within CacheTTL.
type Authenticator struct {
	st       *Store
	cacheTTL time.Duration
	now      func() time.Time

	mu    sync.Mutex
	cache map[[32]byte]cached
}

type cached struct {
	p       *Principal
	expires time.Time
}

// DefaultCacheTTL is how long checked credentials are remembered.
const DefaultCacheTTL = 30 * time.Second

// maxCached bounds the credential cache.
const maxCached = 10000

// NewAuthenticator returns an Authenticator over st.
func NewAuthenticator(st *Store, cacheTTL time.Duration) *Authenticator {
	if cacheTTL <= 0 {
		cacheTTL = DefaultCacheTTL
	}
	return &Authenticator{st: st, cacheTTL: cacheTTL, now: time.Now, cache: map[[32]byte]cached{}}
}

// Invalidate forgets every checked credential.
func (a *Authenticator) Invalidate() {
	a.mu.Lock()
	defer a.mu.Unlock()
	clear(a.cache)
}

// SessionCookie is the UI's session cookie.
const SessionCookie = "kiln_session"

// Authenticate returns the principal of r, nil when r carries no
// credentials, or errdefs.ErrUnauthenticated when they are wrong.
func (a *Authenticator) Authenticate(ctx context.Context, r *http.Request) (*Principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
			return a.session(ctx, c.Value)
		}
		return nil, nil
	}
	scheme, cred, _ := strings.Cut(h, " ")
	cred = strings.TrimSpace(cred)
	switch strings.ToLower(scheme) {
	case "basic":
		raw, err := base64.StdEncoding.DecodeString(cred)
		if err != nil {
			return nil, unauthenticated("The Authorization header's Basic credentials are not base64")
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok || user == "" {
			return nil, unauthenticated("The Authorization header's Basic credentials are not user:password")
		}
		if _, _, isToken := parseToken(pass); isToken {
			// git-style: any user name, the token as the password.
			return a.token(ctx, pass)
		}
		return a.password(ctx, user, pass)
	case "bearer":
		return a.token(ctx, cred)
	}
	return nil, unauthenticated("Unsupported Authorization scheme %q: use Basic or Bearer", clip(scheme))
}

func unauthenticated(format string, args ...any) error {
	return &errdefs.Error{Kind: errdefs.ErrUnauthenticated, Msg: sprintf(format, args...)}
}

func (a *Authenticator) lookup(key [32]byte) *Principal {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.cache[key]
	if !ok {
		return nil
	}
	if a.now().After(c.expires) {
		delete(a.cache, key)
		return nil
	}
	return c.p
}

func (a *Authenticator) remember(key [32]byte, p *Principal) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.cache) >= maxCached {
		clear(a.cache)
	}
	a.cache[key] = cached{p: p, expires: a.now().Add(a.cacheTTL)}
}

func credKey(kind string, parts ...string) [32]byte {
	h := sha256.New()
	h.Write([]byte(kind))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	var k [32]byte
	copy(k[:], h.Sum(nil))
	return k
}

// errBadLogin is the one answer to every wrong user name or password, so
// that it does not tell which users exist.
const badLogin = "Invalid user name or password"

func (a *Authenticator) password(ctx context.Context, user, pass string) (*Principal, error) {
	key := credKey("password", user, pass)
	if p := a.lookup(key); p != nil {
		return p, nil
	}
	u, err := a.st.GetUser(ctx, user)
	if err != nil {
		if errorsIsNotFound(err) {
			VerifyPassword(dummyHash(), pass) // the same work as a real user's
			return nil, unauthenticated(badLogin)
		}
		return nil, err
	}
	if u.Disabled || !VerifyPassword(u.passwordHash, pass) {
		return nil, unauthenticated(badLogin)
	}
	p, err := a.principal(ctx, u, "password")
	if err != nil {
		return nil, err
	}
	a.remember(key, p)
	return p, nil
}

// Login checks a user name and password (the UI's login form).
func (a *Authenticator) Login(ctx context.Context, user, pass string) (*Principal, error) {
	return a.password(ctx, user, pass)
}

func (a *Authenticator) token(ctx context.Context, tok string) (*Principal, error) {
	id, secret, ok := parseToken(tok)
	if !ok {
		return nil, unauthenticated("Not a Kiln API token (kiln_…)")
	}
	key := credKey("token", tok)
	if p := a.lookup(key); p != nil {
		return p, nil
	}
	t, hash, err := a.st.tokenSecret(ctx, id)
	if err != nil {
		return nil, err
	}
	if t == nil || subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(hash)) != 1 {
		return nil, unauthenticated("Invalid API token")
	}
	now := a.now()
	if t.Revoked != 0 {
		return nil, unauthenticated("API token %s was revoked", t.ID)
	}
	if t.Expires != 0 && now.UnixMilli() >= t.Expires {
		return nil, unauthenticated("API token %s has expired", t.ID)
	}
	u, err := a.st.GetUser(ctx, t.User)
	if err != nil {
		return nil, err
	}
	if u.Disabled {
		return nil, unauthenticated("User '%s' is disabled", u.Name)
	}
	p, err := a.principal(ctx, u, "token")
	if err != nil {
		return nil, err
	}
	p.TokenID, p.Scope, p.TokenWorkspace = t.ID, t.Scope, t.Workspace
	a.st.touchToken(context.WithoutCancel(ctx), t.ID, now)
	a.remember(key, p)
	return p, nil
}

func (a *Authenticator) principal(ctx context.Context, u *User, how string) (*Principal, error) {
	gs, err := a.st.ListGrants(ctx, "", u.Name)
	if err != nil {
		return nil, err
	}
	return &Principal{User: u.Name, Kind: u.Kind, Admin: u.Admin, Auth: how, Scope: ScopeAll, Grants: gs}, nil
}

// dummyHash is verified against when a user does not exist.
var dummyHash = sync.OnceValue(func() string {
	h, _ := HashPassword("not-a-real-password")
	return h
})
