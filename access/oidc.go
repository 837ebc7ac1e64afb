package access

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/kiln-ml/kiln/errdefs"
)

// OIDCConfig configures sign-in through an OpenID Connect provider
// (Keycloak, Dex, Okta, Google, Azure AD …).
type OIDCConfig struct {
	// Issuer is the provider's issuer URL; its discovery document is at
	// Issuer/.well-known/openid-configuration. It must be https, except
	// on loopback.
	Issuer       string
	ClientID     string
	ClientSecret string // "" for a public client (PKCE only)
	// RedirectURL is Kiln's callback as the browser reaches it
	// (https://kiln.example.com/api/v1/oidc/callback).
	RedirectURL string
	// Scopes asked for ("openid" is added when missing; default openid,
	// email, profile).
	Scopes []string
	// UsernameClaim names the Kiln user (default preferred_username; the
	// email claim when the token has no such claim).
	UsernameClaim string
	// GroupsClaim holds the user's groups (a list of strings); members of
	// AdminGroup are server administrators, and others are not.
	GroupsClaim string
	AdminGroup  string
	// DefaultRole (default viewer; "none": no grant) is given in
	// Workspace (default "default") to users on their first sign-in.
	DefaultRole string
	Workspace   string
	// HTTPClient talks to the provider (default: a client with a 15 s
	// timeout).
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// OIDCFlowTTL is how long a sign-in at the provider may take.
const OIDCFlowTTL = 10 * time.Minute

// OIDC signs users in through an OpenID Connect provider: the
// authorization code flow with PKCE (S256), a state and a nonce, the ID
// token checked by go-oidc (signature, issuer, audience, expiry), then
// mapped to a Kiln user (created on the first sign-in, without a
// password). The provider's discovery document is fetched lazily: the
// first sign-in that finds none retries it.
type OIDC struct {
	cfg     OIDCConfig
	st      *Store
	log     *slog.Logger
	flowKey []byte
	creator string
	now     func() time.Time

	mu       sync.Mutex
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	lastTry  time.Time
}

// OIDCCreator is the created_by of the users that sign-ins through the
// provider issuer created: a user name cannot hold ':', so no local
// account can carry it. Only those users may be signed into through it.
func OIDCCreator(issuer string) string { return "oidc:" + issuer }

// NewOIDC checks cfg and returns an OIDC over st. It does not reach the
// provider (Discover does).
func NewOIDC(cfg OIDCConfig, st *Store) (*OIDC, error) {
	cfg.Issuer = strings.TrimSpace(cfg.Issuer)
	u, err := url.Parse(cfg.Issuer)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("oidc: issuer %q is not an http(s) URL", cfg.Issuer)
	}
	if u.Scheme == "http" && !loopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("oidc: issuer %q must be https (http only on loopback)", cfg.Issuer)
	}
	if cfg.ClientID == "" {
		return nil, errors.New("oidc: a client id is needed (--oidc-client-id)")
	}
	ru, err := url.Parse(cfg.RedirectURL)
	if err != nil || ru.Host == "" || (ru.Scheme != "https" && ru.Scheme != "http") {
		return nil, fmt.Errorf("oidc: redirect URL %q is not an absolute http(s) URL", cfg.RedirectURL)
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{oidc.ScopeOpenID, "email", "profile"}
	}
	hasOpenID := false
	for _, s := range cfg.Scopes {
		hasOpenID = hasOpenID || s == oidc.ScopeOpenID
	}
	if !hasOpenID {
		cfg.Scopes = append([]string{oidc.ScopeOpenID}, cfg.Scopes...)
	}
	if cfg.UsernameClaim == "" {
		cfg.UsernameClaim = "preferred_username"
	}
	if cfg.DefaultRole == "" {
		cfg.DefaultRole = string(RoleViewer)
	}
	if cfg.DefaultRole != "none" {
		if _, err := ParseRole(cfg.DefaultRole); err != nil {
			return nil, fmt.Errorf("oidc: default role: %w", err)
		}
	}
	if cfg.Workspace == "" {
		cfg.Workspace = DefaultWorkspace
	}
	if err := ValidateName("workspace", cfg.Workspace); err != nil {
		return nil, fmt.Errorf("oidc: %w", err)
	}
	if cfg.AdminGroup != "" && cfg.GroupsClaim == "" {
		return nil, errors.New("oidc: an admin group needs the groups claim that lists it (--oidc-groups-claim)")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 15 * time.Second}
	}
	o := &OIDC{cfg: cfg, st: st, log: cfg.Logger, creator: OIDCCreator(cfg.Issuer), now: time.Now}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	// The flow cookie's key: from the client secret, so that every server
	// of one deployment accepts the others' cookies; a public client gets
	// a key of this process.
	if cfg.ClientSecret != "" {
		m := hmac.New(sha256.New, []byte("kiln oidc flow cookie"))
		m.Write([]byte(cfg.ClientSecret))
		o.flowKey = m.Sum(nil)
	} else {
		o.flowKey = make([]byte, 32)
		if _, err := rand.Read(o.flowKey); err != nil {
			return nil, fmt.Errorf("oidc: random: %w", err)
		}
	}
	return o, nil
}

// Issuer is the provider's issuer URL.
func (o *OIDC) Issuer() string { return o.cfg.Issuer }

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// discoverEvery bounds how often a failed discovery is retried.
const discoverEvery = 5 * time.Second

// Discover fetches the provider's discovery document (once it has one,
// it keeps it).
func (o *OIDC) Discover(ctx context.Context) error {
	_, _, err := o.discovered(ctx)
	return err
}

func (o *OIDC) discovered(ctx context.Context) (*oidc.Provider, *oidc.IDTokenVerifier, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.provider != nil {
		return o.provider, o.verifier, nil
	}
	now := o.now()
	if !o.lastTry.IsZero() && now.Sub(o.lastTry) < discoverEvery {
		return nil, nil, providerDown(o.cfg.Issuer, errors.New("the last attempt failed moments ago"))
	}
	o.lastTry = now
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, o.cfg.HTTPClient), 15*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(ctx, o.cfg.Issuer)
	if err != nil {
		return nil, nil, providerDown(o.cfg.Issuer, err)
	}
	// The key set outlives this request: its context carries the client
	// and no deadline.
	o.verifier = p.VerifierContext(oidc.ClientContext(context.Background(), o.cfg.HTTPClient), &oidc.Config{ClientID: o.cfg.ClientID, Now: o.now})
	o.provider = p
	return o.provider, o.verifier, nil
}

func providerDown(issuer string, err error) error {
	return &errdefs.Error{Kind: errdefs.ErrInvalidState, Msg: sprintf("The OIDC provider %s cannot be reached: try again later", issuer),
		Err: fmt.Errorf("oidc discovery: %w", err)}
}

func (o *OIDC) oauth2(p *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{ClientID: o.cfg.ClientID, ClientSecret: o.cfg.ClientSecret, RedirectURL: o.cfg.RedirectURL,
		Endpoint: p.Endpoint(), Scopes: o.cfg.Scopes}
}

// flow is what the browser keeps (signed) between the redirect to the
// provider and the callback.
type flow struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Redirect string `json:"r"`
	Expires  int64  `json:"e"` // unix seconds
}

// OIDCStart is the start of a sign-in: send the browser to URL, with
// Flow in a short-lived HttpOnly cookie (until Expires) that the callback
// hands to Finish.
type OIDCStart struct {
	URL     string
	Flow    string
	Expires time.Time
}

// SafeRedirect checks where a sign-in may return: a path on this server
// ("/ui/runs?x=1"), never another origin ("//evil", "https://…", "/\evil").
func SafeRedirect(target string) (string, error) {
	if target == "" {
		return "/", nil
	}
	bad := errdefs.Invalid("redirect %q is not a path on this server: it must start with a single '/'", clip(target))
	if len(target) > 2048 || !strings.HasPrefix(target, "/") || strings.HasPrefix(target, "//") || strings.HasPrefix(target, "/\\") {
		return "", bad
	}
	for _, c := range target {
		if c < 0x20 || c == 0x7f || c == '\\' {
			return "", bad
		}
	}
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "", bad
	}
	return target, nil
}

// Start begins a sign-in that returns to redirect (a path on this
// server).
func (o *OIDC) Start(ctx context.Context, redirect string) (*OIDCStart, error) {
	redirect, err := SafeRedirect(redirect)
	if err != nil {
		return nil, err
	}
	p, _, err := o.discovered(ctx)
	if err != nil {
		o.log.Warn("oidc: sign-in refused: the provider cannot be reached", "issuer", o.cfg.Issuer, "err", errors.Unwrap(err))
		return nil, err
	}
	f := flow{Redirect: redirect, Verifier: oauth2.GenerateVerifier()}
	if f.State, err = randomText(24); err != nil {
		return nil, err
	}
	if f.Nonce, err = randomText(24); err != nil {
		return nil, err
	}
	exp := o.now().Add(OIDCFlowTTL)
	f.Expires = exp.Unix()
	u := o.oauth2(p).AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier))
	return &OIDCStart{URL: u, Flow: o.seal(f), Expires: exp}, nil
}

func (o *OIDC) seal(f flow) string {
	b, _ := json.Marshal(f) // strings and an int
	body := base64.RawURLEncoding.EncodeToString(b)
	m := hmac.New(sha256.New, o.flowKey)
	m.Write([]byte(body))
	return body + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (o *OIDC) open(v string) (*flow, bool) {
	body, sig, ok := strings.Cut(v, ".")
	if !ok {
		return nil, false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return nil, false
	}
	m := hmac.New(sha256.New, o.flowKey)
	m.Write([]byte(body))
	if !hmac.Equal(got, m.Sum(nil)) {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return nil, false
	}
	var f flow
	if json.Unmarshal(b, &f) != nil || o.now().Unix() >= f.Expires {
		return nil, false
	}
	return &f, true
}

// OIDCLogin is a finished sign-in: the Kiln user, whether this sign-in
// created it or changed it (email, name, admin), and where to go.
type OIDCLogin struct {
	User     *User
	Created  bool
	Changed  bool
	Redirect string
}

// Finish completes a sign-in at the callback: flowCookie is the cookie
// Start made, state and code the callback's parameters. A missing,
// forged or expired flow, or a state that does not match it, is
// errdefs.ErrInvalidArgument; an ID token that does not check out (or a
// code the provider refuses) is errdefs.ErrUnauthenticated.
func (o *OIDC) Finish(ctx context.Context, flowCookie, state, code string) (*OIDCLogin, error) {
	f, ok := o.open(flowCookie)
	if !ok {
		return nil, errdefs.Invalid("The sign-in is unknown or took longer than %s (its cookie is missing, expired or altered): start it again", OIDCFlowTTL)
	}
	if state == "" || subtle.ConstantTimeCompare([]byte(state), []byte(f.State)) != 1 {
		return nil, errdefs.Invalid("The callback's state does not match the sign-in this browser started: start it again")
	}
	if code == "" {
		return nil, errdefs.Invalid("The callback has no code")
	}
	p, verifier, err := o.discovered(ctx)
	if err != nil {
		return nil, err
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, o.cfg.HTTPClient)
	tok, err := o.oauth2(p).Exchange(ctx, code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		o.log.Warn("oidc: the provider refused the code", "issuer", o.cfg.Issuer, "err", err)
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			return nil, unauthenticated("The OIDC provider refused the sign-in's code (%s)", clip(re.ErrorCode))
		}
		return nil, unauthenticated("The OIDC provider could not exchange the sign-in's code")
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, unauthenticated("The OIDC provider answered no ID token (is the openid scope allowed for this client?)")
	}
	idt, err := verifier.Verify(ctx, raw)
	if err != nil {
		return nil, unauthenticated("The ID token does not check out: %s", clip(err.Error()))
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 {
		return nil, unauthenticated("The ID token's nonce does not match the sign-in's")
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return nil, unauthenticated("The ID token's claims are not JSON: %s", clip(err.Error()))
	}
	login, err := o.user(ctx, claims)
	if err != nil {
		return nil, err
	}
	login.Redirect = f.Redirect
	return login, nil
}

func claimString(claims map[string]any, name string) string {
	s, _ := claims[name].(string)
	return strings.TrimSpace(s)
}

// groups reads a groups claim: a list of strings, or one string.
func groups(claims map[string]any, name string) []string {
	switch v := claims[name].(type) {
	case string:
		return []string{v}
	case []any:
		out := make([]string, 0, len(v))
		for _, g := range v {
			if s, ok := g.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// user maps an ID token's claims to a Kiln user, creating it on the first
// sign-in. The user is found by the token's subject (sub) first: a user
// name claim may be renamed at the provider, or passed to someone else;
// the subject stays. A subject seen for the first time signs into the
// user its name claim names — a new one, or one this provider created
// before subjects were recorded (then linked) — and never into a user
// linked to another subject.
func (o *OIDC) user(ctx context.Context, claims map[string]any) (*OIDCLogin, error) {
	sub := claimString(claims, "sub")
	if sub == "" || len(sub) > 255 {
		return nil, unauthenticated("The ID token has no usable sub claim")
	}
	email := claimString(claims, "email")
	display := claimString(claims, "name")
	if len(display) > 256 {
		display = display[:256]
	}
	var admin *bool
	if o.cfg.AdminGroup != "" {
		in := false
		for _, g := range groups(claims, o.cfg.GroupsClaim) {
			in = in || g == o.cfg.AdminGroup
		}
		admin = &in
	}
	if u, err := o.st.UserBySubject(ctx, o.cfg.Issuer, sub); err == nil {
		return o.update(ctx, u, validEmail(email), display, admin)
	} else if !errorsIsNotFound(err) {
		return nil, err
	}
	name := claimString(claims, o.cfg.UsernameClaim)
	if name == "" {
		if email == "" {
			return nil, unauthenticated("The ID token has neither a %s nor an email claim to name the user by", o.cfg.UsernameClaim)
		}
		if v, ok := claims["email_verified"].(bool); ok && !v {
			return nil, unauthenticated("The ID token's email %q is not verified, and it would name the user", clip(email))
		}
		name = email
	}
	if err := ValidateName("user", name); err != nil {
		return nil, unauthenticated("The ID token's user name %q is not a valid Kiln user name (1 to 128 letters, digits, '.', '_', '@' or '-')", clip(name))
	}
	email = validEmail(email)
	var login *OIDCLogin
	u, err := o.st.GetUser(ctx, name)
	switch {
	case errorsIsNotFound(err):
		if login, err = o.create(ctx, name, email, display, admin != nil && *admin); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	default:
		if u.CreatedBy == o.creator {
			other, err := o.st.SubjectOf(ctx, o.cfg.Issuer, u.Name)
			if err != nil {
				return nil, err
			}
			if other != "" {
				return nil, o.takenBy(u.Name)
			}
		}
		if login, err = o.update(ctx, u, email, display, admin); err != nil {
			return nil, err
		}
	}
	if err := o.st.LinkSubject(ctx, o.cfg.Issuer, sub, login.User.Name); err != nil {
		if errors.Is(err, errdefs.ErrAlreadyExists) {
			return nil, o.takenBy(login.User.Name) // a concurrent first sign-in of another subject
		}
		return nil, err
	}
	return login, nil
}

// takenBy is the refusal of a subject whose name claim names a user that
// another subject of the provider signs in as.
func (o *OIDC) takenBy(user string) error {
	return permissionDenied("User '%s' belongs to another account of the OIDC provider %s (another sub): it cannot be signed into with this one", user, o.cfg.Issuer)
}

func validEmail(email string) string {
	if len(email) > 256 {
		return ""
	}
	return email
}

func (o *OIDC) create(ctx context.Context, name, email, display string, admin bool) (*OIDCLogin, error) {
	if o.cfg.DefaultRole != "none" {
		ws, err := o.st.ListWorkspaces(ctx)
		if err != nil {
			return nil, err
		}
		found := false
		for _, w := range ws {
			found = found || w.Name == o.cfg.Workspace
		}
		if !found {
			return nil, errdefs.InvalidState("Workspace '%s', where users signing in with OIDC get their first role, does not exist: create it (kiln workspaces create %s)", o.cfg.Workspace, o.cfg.Workspace)
		}
	}
	u, err := o.st.CreateUser(ctx, NewUser{Name: name, Kind: KindUser, Email: email, DisplayName: display, Admin: admin}, o.creator)
	if errors.Is(err, errdefs.ErrAlreadyExists) {
		// Another sign-in of the same user made it first.
		if u, err = o.st.GetUser(ctx, name); err != nil {
			return nil, err
		}
		var a *bool
		if o.cfg.AdminGroup != "" {
			a = &admin
		}
		return o.update(ctx, u, email, display, a)
	}
	if err != nil {
		return nil, err
	}
	if o.cfg.DefaultRole != "none" {
		if _, err := o.st.PutGrant(ctx, Grant{User: name, Workspace: o.cfg.Workspace, Role: Role(o.cfg.DefaultRole)}, o.creator); err != nil {
			return nil, fmt.Errorf("oidc: first role of %s: %w", name, err)
		}
	}
	o.log.Info("oidc: created user on first sign-in", "user", name, "issuer", o.cfg.Issuer, "admin", admin,
		"role", o.cfg.DefaultRole, "workspace", o.cfg.Workspace)
	return &OIDCLogin{User: u, Created: true}, nil
}

func (o *OIDC) update(ctx context.Context, u *User, email, display string, admin *bool) (*OIDCLogin, error) {
	if u.CreatedBy != o.creator {
		return nil, permissionDenied("User '%s' is an account of this server, not of the OIDC provider %s: it cannot be signed into through OIDC", u.Name, o.cfg.Issuer)
	}
	if u.Disabled {
		return nil, unauthenticated("User '%s' is disabled", u.Name)
	}
	var up UserUpdate
	changed := false
	if email != "" && email != u.Email {
		up.Email, changed = &email, true
	}
	if display != "" && display != u.DisplayName {
		up.DisplayName, changed = &display, true
	}
	if admin != nil && *admin != u.Admin {
		up.Admin, changed = admin, true
	}
	if !changed {
		return &OIDCLogin{User: u}, nil
	}
	u2, err := o.st.UpdateUser(ctx, u.Name, up)
	if err != nil {
		return nil, err
	}
	if up.Admin != nil {
		o.log.Info("oidc: server administrator changed by the admin group", "user", u.Name, "admin", *up.Admin, "group", o.cfg.AdminGroup)
	}
	return &OIDCLogin{User: u2, Changed: true}, nil
}
