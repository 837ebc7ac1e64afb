package server

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/access"
	"github.com/kiln-ml/kiln/api"
)

// fakeIDP is an OpenID Connect provider in the test process: discovery,
// a JWKS of a generated RSA key, /authorize (which signs in whoever
// the test says, at once) and /token (which checks the PKCE verifier and
// answers an RS256 ID token).
type fakeIDP struct {
	t      *testing.T
	srv    *httptest.Server
	key    *rsa.PrivateKey
	client string
	secret string

	mu sync.Mutex
	// claims are the next sign-in's claims (beyond iss, aud, iat, exp,
	// nonce); tamper, if set, changes the ID token's claims last.
	claims  map[string]any
	tamper  func(map[string]any)
	signer  *rsa.PrivateKey // nil: key
	codes   map[string]idpCode
	lastReq url.Values // the last /authorize query
}

type idpCode struct {
	challenge, nonce, redirect string
	claims                     map[string]any
}

func newFakeIDP(t *testing.T) *fakeIDP {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &fakeIDP{t: t, key: key, client: "kiln-test", secret: "idp-client-secret", codes: map[string]idpCode{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		u := p.srv.URL
		writeJSONTest(w, map[string]any{"issuer": u, "authorization_endpoint": u + "/authorize", "token_endpoint": u + "/token",
			"jwks_uri": u + "/jwks", "id_token_signing_alg_values_supported": []string{"RS256"}, "response_types_supported": []string{"code"},
			"code_challenge_methods_supported": []string{"S256"}})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		pub := p.key.PublicKey
		writeJSONTest(w, map[string]any{"keys": []map[string]any{{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
			"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes())}}})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		p.mu.Lock()
		defer p.mu.Unlock()
		p.lastReq = q
		if q.Get("client_id") != p.client || q.Get("response_type") != "code" || q.Get("code_challenge_method") != "S256" {
			http.Error(w, "bad authorization request", http.StatusBadRequest)
			return
		}
		code := fmt.Sprintf("code-%d", len(p.codes)+1)
		p.codes[code] = idpCode{challenge: q.Get("code_challenge"), nonce: q.Get("nonce"), redirect: q.Get("redirect_uri"), claims: p.claims}
		http.Redirect(w, r, q.Get("redirect_uri")+"?code="+code+"&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		id, secret, ok := r.BasicAuth()
		if !ok {
			id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		c, found := p.codes[r.PostForm.Get("code")]
		delete(p.codes, r.PostForm.Get("code"))
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		fail := func(code string) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"error":%q}`, code)
		}
		switch {
		case id != p.client || secret != p.secret:
			fail("invalid_client")
			return
		case !found || r.PostForm.Get("grant_type") != "authorization_code" || r.PostForm.Get("redirect_uri") != c.redirect:
			fail("invalid_grant")
			return
		case b64(sum[:]) != c.challenge:
			fail("invalid_grant") // PKCE: the verifier does not match the challenge
			return
		}
		now := time.Now()
		claims := map[string]any{"iss": p.srv.URL, "aud": p.client, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "nonce": c.nonce}
		for k, v := range c.claims {
			claims[k] = v
		}
		if p.tamper != nil {
			p.tamper(claims)
		}
		signer := p.key
		if p.signer != nil {
			signer = p.signer
		}
		writeJSONTest(w, map[string]any{"access_token": "at-" + r.PostForm.Get("code"), "token_type": "Bearer", "expires_in": 300,
			"id_token": signJWT(t, signer, claims)})
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

// next sets the claims of the next sign-in and how its ID token is
// tampered with.
func (p *fakeIDP) next(claims map[string]any, tamper func(map[string]any), signer *rsa.PrivateKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.claims, p.tamper, p.signer = claims, tamper, signer
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func signJWT(t *testing.T, key *rsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	hdr, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": "k1"})
	body, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	in := b64(hdr) + "." + b64(body)
	sum := sha256.Sum256([]byte(in))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + b64(sig)
}

func writeJSONTest(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

// oidcServer is a Kiln server with access control on and OIDC sign-in
// through idp, listening on 127.0.0.1.
func oidcServer(t *testing.T, idp *fakeIDP) (base string, admin string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base = "http://" + ln.Addr().String()
	cfg := testConfig(t)
	cfg.Access.Auth = "on"
	cfg.Access.AdminPassword = "admin-password-1"
	cfg.Pipeline.Disabled = true
	cfg.Access.OIDC.Issuer = idp.srv.URL
	cfg.Access.OIDC.ClientID = idp.client
	cfg.Access.OIDC.ClientSecret = idp.secret
	cfg.Access.OIDC.RedirectURL = base + "/api/v1/oidc/callback"
	cfg.Access.OIDC.GroupsClaim = "groups"
	cfg.Access.OIDC.AdminGroup = "kiln-admins"
	srv, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv.Handler())
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return base, "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:admin-password-1"))
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects: each hop is the test's to take.
func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func get(t *testing.T, c *http.Client, u string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// signIn runs the flow up to Kiln's callback and returns its answer.
func signIn(t *testing.T, c *http.Client, base, redirect string) (*http.Response, string) {
	t.Helper()
	resp, body := get(t, c, base+"/api/v1/oidc/login?redirect="+url.QueryEscape(redirect))
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("oidc/login: %d %s", resp.StatusCode, body)
	}
	resp, body = get(t, c, resp.Header.Get("Location")) // the provider
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %d %s", resp.StatusCode, body)
	}
	return get(t, c, resp.Header.Get("Location")) // Kiln's callback
}

func apiCode(t *testing.T, body string) string {
	t.Helper()
	var eb api.ErrorBody
	if err := json.Unmarshal([]byte(body), &eb); err != nil {
		t.Fatalf("not the API's error body: %s", body)
	}
	return eb.Error.Code
}

// TestOIDCLogin signs in through the provider end to end: the redirect
// carries state, nonce and a PKCE challenge; the callback creates the
// user, starts a session (cookie + CSRF token) that whoami answers, and
// maps the admin group.
func TestOIDCLogin(t *testing.T) {
	idp := newFakeIDP(t)
	base, admin := oidcServer(t, idp)
	c := browser(t)

	// The redirect to the provider.
	resp, body := get(t, c, base+"/api/v1/oidc/login?redirect="+url.QueryEscape("/api/v1/whoami"))
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("oidc/login: %d %s", resp.StatusCode, body)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || !strings.HasPrefix(loc.String(), idp.srv.URL+"/authorize?") {
		t.Fatalf("redirected to %q, not the provider's authorization endpoint", resp.Header.Get("Location"))
	}
	q := loc.Query()
	if len(q.Get("state")) < 20 || len(q.Get("nonce")) < 20 || q.Get("code_challenge_method") != "S256" || len(q.Get("code_challenge")) != 43 ||
		q.Get("client_id") != idp.client || q.Get("redirect_uri") != base+"/api/v1/oidc/callback" || !strings.Contains(" "+q.Get("scope")+" ", " openid ") {
		t.Errorf("authorization request %v", q)
	}
	var flow *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == api.OIDCFlowCookie {
			flow = ck
		}
	}
	if flow == nil || !flow.HttpOnly || flow.MaxAge <= 0 || flow.MaxAge > 600 || strings.Contains(flow.Value, q.Get("code_challenge")) {
		t.Fatalf("flow cookie %+v", flow)
	}

	// A user of the admin group.
	idp.next(map[string]any{"sub": "u-ada", "preferred_username": "ada", "email": "ada@example.com", "name": "Ada L", "groups": []string{"staff", "kiln-admins"}}, nil, nil)
	resp, body = signIn(t, c, base, "/api/v1/whoami?x=1")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/api/v1/whoami?x=1" {
		t.Fatalf("callback: %d %q %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	var csrf string
	for _, ck := range resp.Cookies() {
		switch ck.Name {
		case access.SessionCookie:
			if !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Value == "" {
				t.Errorf("session cookie %+v", ck)
			}
		case api.CSRFCookie:
			csrf = ck.Value
		}
	}
	if csrf == "" {
		t.Fatalf("no CSRF cookie in %v", resp.Header["Set-Cookie"])
	}
	var who access.Principal
	resp, body = get(t, c, base+"/api/v1/whoami")
	if resp.StatusCode != 200 || json.Unmarshal([]byte(body), &who) != nil || who.User != "ada" || who.Auth != "session" || !who.Admin {
		t.Fatalf("whoami: %d %s", resp.StatusCode, body)
	}
	// The session changes things only with its CSRF token.
	post := func(path, csrf string) int {
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(`{"name":"by-ada"}`))
		req.Header.Set("Content-Type", "application/json")
		if csrf != "" {
			req.Header.Set(access.CSRFHeader, csrf)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("/api/2.0/mlflow/experiments/create", ""); code != http.StatusForbidden {
		t.Errorf("a change without the CSRF token: %d", code)
	}
	if code := post("/api/2.0/mlflow/experiments/create", csrf); code != http.StatusOK {
		t.Errorf("a change with the CSRF token: %d", code)
	}
	if code := post("/api/v1/tokens", csrf); code != http.StatusCreated {
		t.Errorf("an OIDC user making a token for themselves: %d", code)
	}

	// The user as stored: an OIDC user without a password, with the
	// default role.
	var u access.User
	hc := &http.Client{Timeout: 10 * time.Second}
	adminGet := func(path string, out any) {
		t.Helper()
		resp, body := get(t, hc, base+path, "Authorization", admin)
		if u, ok := out.(*access.User); ok {
			*u = access.User{} // omitempty fields would keep their old values
		}
		if resp.StatusCode != 200 || json.Unmarshal([]byte(body), out) != nil {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
	}
	adminGet("/api/v1/users/ada", &u)
	if u.HasPassword || u.Email != "ada@example.com" || u.DisplayName != "Ada L" || !u.Admin || u.CreatedBy != access.OIDCCreator(idp.srv.URL) {
		t.Errorf("user %+v", u)
	}
	var gs struct{ Grants []access.Grant }
	adminGet("/api/v1/workspaces/default/grants?user=ada", &gs)
	if len(gs.Grants) != 1 || gs.Grants[0].Role != access.RoleViewer {
		t.Errorf("grants of ada: %+v", gs.Grants)
	}

	// A second sign-in out of the admin group, with a new email: no
	// longer an administrator, the email follows.
	c2 := browser(t)
	idp.next(map[string]any{"sub": "u-ada", "preferred_username": "ada", "email": "ada@new.example.com", "groups": []string{"staff"}}, nil, nil)
	if resp, body := signIn(t, c2, base, ""); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/" {
		t.Fatalf("second sign-in: %d %q %s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	adminGet("/api/v1/users/ada", &u)
	if u.Admin || u.Email != "ada@new.example.com" {
		t.Errorf("after the second sign-in: %+v", u)
	}
	resp, body = get(t, c2, base+"/api/v1/whoami")
	who = access.Principal{}
	if json.Unmarshal([]byte(body), &who) != nil || who.User != "ada" || who.Admin {
		t.Errorf("whoami after the second sign-in: %d %s", resp.StatusCode, body)
	}

	// Without a preferred_username, the (verified) email names the user;
	// an unverified one does not.
	idp.next(map[string]any{"sub": "u-bob", "email": "bob@example.com", "email_verified": true}, nil, nil)
	if resp, body := signIn(t, browser(t), base, "/"); resp.StatusCode != http.StatusFound {
		t.Fatalf("sign-in by email: %d %s", resp.StatusCode, body)
	}
	adminGet("/api/v1/users/bob@example.com", &u)
	idp.next(map[string]any{"sub": "u-eve", "email": "eve@example.com", "email_verified": false}, nil, nil)
	if resp, body := signIn(t, browser(t), base, "/"); resp.StatusCode != http.StatusUnauthorized || apiCode(t, body) != api.CodeUnauthenticated {
		t.Errorf("sign-in by an unverified email: %d %s", resp.StatusCode, body)
	}

	// A local account is never signed into through the provider.
	idp.next(map[string]any{"sub": "u-x", "preferred_username": "admin"}, nil, nil)
	if resp, body := signIn(t, browser(t), base, "/"); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "account of this server") {
		t.Errorf("sign-in as the local admin: %d %s", resp.StatusCode, body)
	}

	// The audit log has the sign-ins.
	var evs struct{ Events []access.Event }
	adminGet("/api/v1/audit?actor=ada", &evs)
	n := 0
	for _, e := range evs.Events {
		if e.Action == "GET /api/v1/oidc/callback" && e.Auth == "oidc" && e.Status == http.StatusFound {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d audited sign-ins of ada, want 2: %+v", n, evs.Events)
	}

	// Users are known by the provider's subject: ada renamed at the
	// provider is still ada here, and another account of the provider
	// calling itself ada does not get in.
	c3 := browser(t)
	idp.next(map[string]any{"sub": "u-ada", "preferred_username": "ada-renamed", "email": "ada@new.example.com"}, nil, nil)
	if resp, body := signIn(t, c3, base, ""); resp.StatusCode != http.StatusFound {
		t.Fatalf("sign-in after a rename at the provider: %d %s", resp.StatusCode, body)
	}
	_, body = get(t, c3, base+"/api/v1/whoami")
	who = access.Principal{}
	if json.Unmarshal([]byte(body), &who) != nil || who.User != "ada" {
		t.Errorf("whoami after a rename at the provider: %s", body)
	}
	if resp, _ := get(t, hc, base+"/api/v1/users/ada-renamed", "Authorization", admin); resp.StatusCode != http.StatusNotFound {
		t.Errorf("a rename at the provider made a user: %d", resp.StatusCode)
	}
	idp.next(map[string]any{"sub": "u-not-ada", "preferred_username": "ada"}, nil, nil)
	if resp, body := signIn(t, browser(t), base, "/"); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "another account of the OIDC provider") {
		t.Errorf("another subject named ada: %d %s", resp.StatusCode, body)
	}
}

// TestOIDCRefusals: a bad state, a missing flow, ID tokens that do not
// check out, the provider's own refusal and open redirects are refused,
// and no user is created.
func TestOIDCRefusals(t *testing.T) {
	idp := newFakeIDP(t)
	base, admin := oidcServer(t, idp)
	claims := map[string]any{"sub": "u-mal", "preferred_username": "mallory"}

	// The state must be the one of this browser's sign-in.
	c := browser(t)
	idp.next(claims, nil, nil)
	resp, body := get(t, c, base+"/api/v1/oidc/login")
	resp, body = get(t, c, resp.Header.Get("Location"))
	cb, _ := url.Parse(resp.Header.Get("Location"))
	cq := cb.Query()
	cq.Set("state", "forged-state")
	cb.RawQuery = cq.Encode()
	if resp, body = get(t, c, cb.String()); resp.StatusCode != http.StatusBadRequest || apiCode(t, body) != api.CodeInvalidArgument || !strings.Contains(body, "state") {
		t.Errorf("forged state: %d %s", resp.StatusCode, body)
	}
	// A callback in a browser that never started a sign-in.
	if resp, body = get(t, browser(t), base+"/api/v1/oidc/callback?code=code-1&state=x"); resp.StatusCode != http.StatusBadRequest || apiCode(t, body) != api.CodeInvalidArgument {
		t.Errorf("no flow cookie: %d %s", resp.StatusCode, body)
	}
	// The provider's own refusal.
	c = browser(t)
	resp, _ = get(t, c, base+"/api/v1/oidc/login")
	state := mustQuery(t, resp.Header.Get("Location")).Get("state")
	if resp, body = get(t, c, base+"/api/v1/oidc/callback?error=access_denied&state="+state); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "access_denied") {
		t.Errorf("provider's refusal: %d %s", resp.StatusCode, body)
	}

	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		tamper func(map[string]any)
		signer *rsa.PrivateKey
		want   string
	}{
		{"wrong audience", func(m map[string]any) { m["aud"] = "another-client" }, nil, "audience"},
		{"expired", func(m map[string]any) {
			m["iat"], m["exp"] = time.Now().Add(-time.Hour).Unix(), time.Now().Add(-30*time.Minute).Unix()
		}, nil, "expired"},
		{"bad nonce", func(m map[string]any) { m["nonce"] = "not-the-nonce" }, nil, "nonce"},
		{"wrong issuer", func(m map[string]any) { m["iss"] = "https://idp.example.com" }, nil, "different provider"},
		{"another key", nil, other, "signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			idp.next(claims, tc.tamper, tc.signer)
			resp, body := signIn(t, browser(t), base, "/")
			if resp.StatusCode != http.StatusUnauthorized || apiCode(t, body) != api.CodeUnauthenticated || !strings.Contains(strings.ToLower(body), tc.want) {
				t.Errorf("%d %s (want 401 mentioning %q)", resp.StatusCode, body, tc.want)
			}
			if resp.Header.Get("Location") != "" || strings.Contains(strings.Join(resp.Header["Set-Cookie"], ";"), access.SessionCookie+"=") {
				t.Errorf("a refused sign-in redirected or set a session: %v", resp.Header)
			}
		})
	}
	idp.next(nil, nil, nil)

	// Open redirects.
	for _, target := range []string{"//evil.example/x", "https://evil.example/", "/\\evil.example", "evil", "javascript:alert(1)", "/%0d%0aSet-Cookie:x"} {
		resp, body := get(t, browser(t), base+"/api/v1/oidc/login?redirect="+url.QueryEscape(target))
		if target == "/%0d%0aSet-Cookie:x" {
			// Escaped, it is a harmless path on this server.
			if resp.StatusCode != http.StatusFound {
				t.Errorf("redirect %q: %d %s", target, resp.StatusCode, body)
			}
			continue
		}
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" || apiCode(t, body) != api.CodeInvalidArgument {
			t.Errorf("redirect %q: %d %q %s", target, resp.StatusCode, resp.Header.Get("Location"), body)
		}
	}

	resp, body = get(t, &http.Client{Timeout: 10 * time.Second}, base+"/api/v1/users/mallory", "Authorization", admin)
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("a refused sign-in created its user: %d %s", resp.StatusCode, body)
	}
}

func mustQuery(t *testing.T, u string) url.Values {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	return pu.Query()
}

// TestOIDCNotConfigured: without an issuer the routes say so; with a
// provider that cannot be reached the server starts and sign-ins say
// that.
func TestOIDCNotConfigured(t *testing.T) {
	_, h, _ := authServer(t)
	rec := call(t, h, "", "GET", "/api/v1/oidc/login", "", nil)
	if rec.Code != http.StatusNotImplemented || apiCode(t, rec.Body.String()) != api.CodeNotImplemented || !strings.Contains(rec.Body.String(), "not configured") {
		t.Errorf("oidc/login without OIDC: %d %s", rec.Code, rec.Body)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there
	cfg := testConfig(t)
	cfg.Access.Auth = "on"
	cfg.Access.AdminPassword = "admin-password-1"
	cfg.Pipeline.Disabled = true
	cfg.Access.OIDC.Issuer, cfg.Access.OIDC.ClientID = down, "kiln"
	srv, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("the server did not start with its OIDC provider down: %v", err)
	}
	t.Cleanup(func() { srv.Close() })
	rec = call(t, srv.Handler(), "", "GET", "/api/v1/oidc/login", "", nil)
	if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "cannot be reached") {
		t.Errorf("oidc/login with the provider down: %d %s", rec.Code, rec.Body)
	}

	// An issuer over plain HTTP beyond loopback is refused at start.
	cfg = testConfig(t)
	cfg.Access.Auth = "on"
	cfg.Pipeline.Disabled = true
	cfg.Access.OIDC.Issuer, cfg.Access.OIDC.ClientID = "http://idp.example.com", "kiln"
	if srv, err := New(context.Background(), cfg, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "https") {
		if srv != nil {
			srv.Close()
		}
		t.Errorf("an http issuer: %v", err)
	}
}
