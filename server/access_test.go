package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/access"
	"github.com/kiln-ml/kiln/api"
)

// authServer is a server with access control on, its handler, and the
// admin's credentials.
func authServer(t *testing.T) (*Server, http.Handler, string) {
	t.Helper()
	cfg := testConfig(t)
	cfg.Access.Auth = "on"
	cfg.Access.AdminPassword = "admin-password-1"
	cfg.Pipeline.Disabled = true
	srv, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv, srv.Handler(), "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:admin-password-1"))
}

// call sends one request and decodes a JSON answer into out (if set).
func call(t *testing.T, h http.Handler, auth, method, path, body string, out any) *httptest.ResponseRecorder {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, path, rd)
	r.RemoteAddr = "127.0.0.1:40000"
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if out != nil {
		if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
			t.Fatalf("%s %s: %d %s", method, path, rec.Code, rec.Body)
		}
	}
	return rec
}

// mustCall is call that fails the test unless the status is want.
func mustCall(t *testing.T, h http.Handler, auth, method, path, body string, want int, out any) {
	t.Helper()
	if rec := call(t, h, auth, method, path, body, out); rec.Code != want {
		t.Fatalf("%s %s: %d %s, want %d", method, path, rec.Code, rec.Body, want)
	}
}

// token makes a user with a grant (role "" for none) and returns a
// Bearer header for a token of scope.
func token(t *testing.T, h http.Handler, admin, user, workspace, role, scope string) string {
	t.Helper()
	if rec := call(t, h, admin, "GET", "/api/v1/users/"+user, "", nil); rec.Code == http.StatusNotFound {
		mustCall(t, h, admin, "POST", "/api/v1/users", `{"name":"`+user+`","password":"password-of-`+user+`"}`, http.StatusCreated, nil)
	}
	if role != "" {
		mustCall(t, h, admin, "PUT", "/api/v1/workspaces/"+workspace+"/grants", `{"user":"`+user+`","role":"`+role+`"}`, http.StatusOK, nil)
	}
	var tok api.CreateTokenResponse
	mustCall(t, h, admin, "POST", "/api/v1/tokens", `{"user":"`+user+`","scope":"`+scope+`"}`, http.StatusCreated, &tok)
	return "Bearer " + tok.Secret
}

var wildcardRE = regexp.MustCompile(`\{[a-z_]+(\.\.\.)?\}`)

// sampleRequest turns a route pattern into a method and a path that it
// matches.
func sampleRequest(pattern string) (string, string) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		method, path = "GET", pattern
	}
	if strings.HasPrefix(path, "/api/v1/workspaces/{name}") {
		path = strings.Replace(path, "{name}", "default", 1)
	}
	path = strings.ReplaceAll(path, "{$}", "")
	path = wildcardRE.ReplaceAllString(path, "x-sample")
	if strings.HasSuffix(path, "/") && path != "/" {
		path += "no-such-route"
	}
	return method, path
}

// TestRouteRoles is the proof that every route checks permissions: the
// policy has a permission for every route the server serves, and each
// route, called by each kind of principal, is refused by access control
// exactly when the principal's role (or token scope, or workspace) does
// not allow the route's action.
func TestRouteRoles(t *testing.T) {
	srv, h, admin := authServer(t)
	policy := access.DefaultPolicy()
	routes := srv.Routes()
	for _, rt := range routes {
		if _, ok := policy.Lookup(rt); !ok {
			t.Errorf("route %q has no permission in access.DefaultPolicy", rt)
		}
	}
	for pattern := range policy {
		// The policy may be finer than the routes under a catch-all the
		// serving stack routes itself (/v2/…).
		if !slices.Contains(routes, pattern) && !strings.Contains(pattern, "/v2/") {
			t.Errorf("policy entry %q is not a route of the server", pattern)
		}
	}
	mustCall(t, h, admin, "POST", "/api/v1/workspaces", `{"name":"other"}`, http.StatusCreated, nil)

	type principal struct {
		name   string
		auth   string
		allows func(access.Action) bool
	}
	upTo := func(as ...access.Action) func(access.Action) bool {
		return func(a access.Action) bool { return slices.Contains(as, a) }
	}
	pub, authn, pred, read, write, manage, grant := access.ActionPublic, access.ActionAuthenticated, access.ActionPredict, access.ActionRead, access.ActionWrite, access.ActionManage, access.ActionGrant
	principals := []principal{
		{"anonymous", "", upTo(pub)},
		{"wrong password", "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:nope-nope-nope")), upTo()},
		{"viewer", token(t, h, admin, "vera", "default", "viewer", "all"), upTo(pub, authn, pred, read)},
		{"editor", token(t, h, admin, "ed", "default", "editor", "all"), upTo(pub, authn, pred, read, write)},
		{"maintainer", token(t, h, admin, "max", "default", "maintainer", "all"), upTo(pub, authn, pred, read, write, manage)},
		{"workspace admin", token(t, h, admin, "wanda", "default", "admin", "all"), upTo(pub, authn, pred, read, write, manage, grant)},
		{"editor elsewhere", token(t, h, admin, "olga", "other", "editor", "all"), upTo(pub, authn)},
		{"predict token of a maintainer", token(t, h, admin, "max", "default", "", "predict"), upTo(pub, authn, pred)},
		{"read token of a maintainer", token(t, h, admin, "max", "default", "", "read"), upTo(pub, authn, pred, read)},
		{"server admin", admin, func(access.Action) bool { return true }},
	}
	patterns := make([]string, 0, len(policy))
	for p := range policy {
		patterns = append(patterns, p)
	}
	slices.Sort(patterns)
	checked := 0
	for _, pattern := range patterns {
		perm := policy[pattern]
		method, path := sampleRequest(pattern)
		for _, p := range principals {
			body := ""
			if method != "GET" && method != "HEAD" {
				body = "{}"
			}
			rec := call(t, h, p.auth, method, path, body, nil)
			denied := rec.Header().Get(access.DeniedHeader) != ""
			if want := !p.allows(perm.Action); denied != want {
				t.Errorf("%s %s (%s, needs %s) as %s: denied=%v, want %v (%d %s)", method, path, pattern, perm.Action, p.name, denied, want, rec.Code, strings.TrimSpace(rec.Body.String()))
				continue
			}
			if denied {
				wantCode := http.StatusForbidden
				if p.name == "anonymous" || p.name == "wrong password" {
					wantCode = http.StatusUnauthorized
				}
				if rec.Code != wantCode {
					t.Errorf("%s %s as %s: refused with %d, want %d", method, path, p.name, rec.Code, wantCode)
				}
			}
			checked++
		}
	}
	t.Logf("%d routes, %d policy entries, %d requests checked", len(routes), len(policy), checked)
}

// TestResourceGrants: a grant on one registered model, endpoint or
// experiment lets its holder act on that resource only, whether the
// request names it in the path, the query, the JSON body or through a
// run of the experiment.
func TestResourceGrants(t *testing.T) {
	_, h, admin := authServer(t)
	rita := token(t, h, admin, "rita", "default", "", "all")
	for _, g := range []string{
		`{"user":"rita","resource_type":"registered_model","resource":"churn","role":"maintainer"}`,
		`{"user":"rita","resource_type":"endpoint","resource":"churn-ep","role":"viewer"}`,
	} {
		mustCall(t, h, admin, "PUT", "/api/v1/workspaces/default/grants", g, http.StatusOK, nil)
	}
	var exp struct {
		ExperimentID string `json:"experiment_id"`
	}
	mustCall(t, h, admin, "POST", "/api/2.0/mlflow/experiments/create", `{"name":"mine"}`, http.StatusOK, &exp)
	var other struct {
		ExperimentID string `json:"experiment_id"`
	}
	mustCall(t, h, admin, "POST", "/api/2.0/mlflow/experiments/create", `{"name":"theirs"}`, http.StatusOK, &other)
	mustCall(t, h, admin, "PUT", "/api/v1/workspaces/default/grants", `{"user":"rita","resource_type":"experiment","resource":"`+exp.ExperimentID+`","role":"editor"}`, http.StatusOK, nil)
	var theirRun struct {
		Run struct {
			Info struct {
				RunID string `json:"run_id"`
			} `json:"info"`
		} `json:"run"`
	}
	mustCall(t, h, admin, "POST", "/api/2.0/mlflow/runs/create", `{"experiment_id":"`+other.ExperimentID+`"}`, http.StatusOK, &theirRun)

	denied := func(rec *httptest.ResponseRecorder) bool { return rec.Header().Get(access.DeniedHeader) != "" }
	// The registry: churn yes (body and query), fraud no.
	if rec := call(t, h, rita, "POST", "/api/2.0/mlflow/registered-models/create", `{"name":"churn"}`, nil); rec.Code != 200 {
		t.Fatalf("create churn: %d %s", rec.Code, rec.Body)
	}
	if rec := call(t, h, rita, "GET", "/api/2.0/mlflow/registered-models/get?name=churn", "", nil); rec.Code != 200 {
		t.Errorf("get churn: %d %s", rec.Code, rec.Body)
	}
	rec := call(t, h, rita, "POST", "/api/2.0/mlflow/registered-models/create", `{"name":"fraud"}`, nil)
	if rec.Code != http.StatusForbidden || !denied(rec) || !strings.Contains(rec.Body.String(), `"error_code":"PERMISSION_DENIED"`) {
		t.Errorf("create fraud: %d %s", rec.Code, rec.Body)
	}
	if rec := call(t, h, rita, "GET", "/api/2.0/mlflow/registered-models/search", "", nil); !denied(rec) {
		t.Errorf("a grant on one model does not let her search them all: %d", rec.Code)
	}
	// Endpoints by path: viewer on churn-ep reads it (404: it does not
	// exist, but access let it through) and cannot deploy it.
	if rec := call(t, h, rita, "GET", "/api/v1/endpoints/churn-ep", "", nil); denied(rec) || rec.Code != http.StatusNotFound {
		t.Errorf("read churn-ep: %d %s", rec.Code, rec.Body)
	}
	if rec := call(t, h, rita, "PUT", "/api/v1/endpoints/churn-ep", `{}`, nil); !denied(rec) {
		t.Errorf("deploy churn-ep as a viewer: %d", rec.Code)
	}
	if rec := call(t, h, rita, "GET", "/api/v1/endpoints/other-ep", "", nil); !denied(rec) {
		t.Errorf("read other-ep: %d", rec.Code)
	}
	// Experiments, through runs.
	var myRun struct {
		Run struct {
			Info struct {
				RunID string `json:"run_id"`
			} `json:"info"`
		} `json:"run"`
	}
	mustCall(t, h, rita, "POST", "/api/2.0/mlflow/runs/create", `{"experiment_id":"`+exp.ExperimentID+`"}`, http.StatusOK, &myRun)
	mustCall(t, h, rita, "POST", "/api/2.0/mlflow/runs/log-metric", `{"run_id":"`+myRun.Run.Info.RunID+`","key":"auc","value":0.9,"timestamp":1}`, http.StatusOK, nil)
	if rec := call(t, h, rita, "POST", "/api/2.0/mlflow/runs/log-metric", `{"run_id":"`+theirRun.Run.Info.RunID+`","key":"auc","value":0.1,"timestamp":1}`, nil); !denied(rec) {
		t.Errorf("log to another experiment's run: %d %s", rec.Code, rec.Body)
	}
	if rec := call(t, h, rita, "POST", "/api/2.0/mlflow/runs/create", `{"experiment_id":"`+other.ExperimentID+`"}`, nil); !denied(rec) {
		t.Errorf("create a run in another experiment: %d", rec.Code)
	}
	if rec := call(t, h, rita, "GET", "/api/2.0/mlflow/runs/get?run_id="+myRun.Run.Info.RunID, "", nil); rec.Code != 200 {
		t.Errorf("get own run: %d %s", rec.Code, rec.Body)
	}
}

// TestAuditAndSessions: changes and refusals land in the audit log with
// who made them, the chain verifies, and a browser session must send its
// CSRF token with changes.
func TestAuditAndSessions(t *testing.T) {
	_, h, admin := authServer(t)
	ed := token(t, h, admin, "ed", "default", "editor", "all")
	mustCall(t, h, ed, "POST", "/api/2.0/mlflow/experiments/create", `{"name":"audited"}`, http.StatusOK, nil)
	call(t, h, ed, "DELETE", "/api/2.0/mlflow/registered-models/delete", `{"name":"nope"}`, nil) // refused: manage
	if rec := call(t, h, ed, "GET", "/api/v1/audit", "", nil); rec.Code != http.StatusForbidden {
		t.Errorf("an editor read the audit log: %d", rec.Code)
	}
	var evs struct {
		Events []access.Event `json:"events"`
	}
	mustCall(t, h, admin, "GET", "/api/v1/audit?actor=ed", "", http.StatusOK, &evs)
	var created, refused bool
	for _, e := range evs.Events {
		if e.Action == "POST /api/2.0/mlflow/experiments/create" && e.Status == 200 && e.Auth == "token" && strings.HasPrefix(e.RequestDigest, "sha256:") && e.ResponseDigest != "" {
			created = true
		}
		if e.Action == "DELETE /api/2.0/mlflow/registered-models/delete" && e.Status == http.StatusForbidden && strings.Contains(e.Detail, "needs role maintainer") {
			refused = true
		}
		if e.Action == "GET /api/v1/audit" && e.Status != http.StatusForbidden {
			t.Errorf("a read was audited: %+v", e)
		}
	}
	if !created || !refused {
		t.Errorf("audit events of ed (created %v, refused %v): %+v", created, refused, evs.Events)
	}
	var v access.Verification
	mustCall(t, h, admin, "GET", "/api/v1/audit/verify", "", http.StatusOK, &v)
	if !v.OK || v.Events < 5 {
		t.Errorf("verify: %+v", v)
	}

	// Sessions.
	r := httptest.NewRequest("POST", "/api/v1/login", strings.NewReader(`{"user":"admin","password":"admin-password-1"}`))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	var login api.LoginResponse
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &login) != nil || login.CSRFToken == "" {
		t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteLaxMode {
		t.Fatalf("cookies %+v", cookies)
	}
	withSession := func(method, path, body, csrf string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.AddCookie(cookies[0])
		r.Header.Set("Content-Type", "application/json")
		if csrf != "" {
			r.Header.Set(access.CSRFHeader, csrf)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}
	if rec := withSession("GET", "/api/v1/whoami", "", ""); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"auth":"session"`) ||
		!strings.Contains(rec.Body.String(), `"csrf_token":"`+login.CSRFToken+`"`) {
		t.Errorf("whoami by session (with its CSRF token, for the UI after a reload): %d %s", rec.Code, rec.Body)
	}
	if rec := call(t, h, admin, "GET", "/api/v1/whoami", "", nil); strings.Contains(rec.Body.String(), "csrf_token") {
		t.Errorf("whoami by password names a CSRF token: %s", rec.Body)
	}
	if rec := withSession("POST", "/api/2.0/mlflow/experiments/create", `{"name":"s1"}`, ""); rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "CSRF") {
		t.Errorf("change without CSRF token: %d %s", rec.Code, rec.Body)
	}
	if rec := withSession("POST", "/api/2.0/mlflow/experiments/create", `{"name":"s1"}`, login.CSRFToken); rec.Code != 200 {
		t.Errorf("change with CSRF token: %d %s", rec.Code, rec.Body)
	}
	if rec := withSession("POST", "/api/v1/logout", "", login.CSRFToken); rec.Code != http.StatusNoContent {
		t.Errorf("logout: %d %s", rec.Code, rec.Body)
	}
	if rec := withSession("GET", "/api/v1/whoami", "", ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("whoami after logout: %d", rec.Code)
	}
}

// TestUIChallenge: a refusal for want of credentials challenges HTTP
// clients (Basic) but not the web UI's calls, which a browser would answer
// with its password dialog; the UI's files are public, its data is not.
func TestUIChallenge(t *testing.T) {
	_, h, _ := authServer(t)
	for _, tc := range []struct {
		ui        bool
		challenge bool
	}{{false, true}, {true, false}} {
		r := httptest.NewRequest("GET", "/api/v1/whoami", nil)
		if tc.ui {
			r.Header.Set(access.UIHeader, "1")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != http.StatusUnauthorized || (rec.Header().Get("WWW-Authenticate") != "") != tc.challenge {
			t.Errorf("ui=%v: %d, WWW-Authenticate %q", tc.ui, rec.Code, rec.Header().Get("WWW-Authenticate"))
		}
	}
	for path, want := range map[string]int{"/ui/": 200, "/ui/experiments/1": 200, "/ui/app.js": 200, "/api/2.0/mlflow/experiments/search": 401} {
		if rec := call(t, h, "", "GET", path, "", nil); rec.Code != want {
			t.Errorf("GET %s without credentials: %d, want %d", path, rec.Code, want)
		}
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Accept", "text/html,application/xhtml+xml")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != http.StatusFound || rec.Header().Get("Location") != "/ui/" {
		t.Errorf("a browser at /: %d → %q, want a redirect to /ui/", rec.Code, rec.Header().Get("Location"))
	}
}

// TestAuthDefault: access control is on by default beyond loopback, and
// cannot be turned off there.
func TestAuthDefault(t *testing.T) {
	for _, tc := range []struct {
		addr, mode string
		on         bool
		err        bool
	}{
		{"127.0.0.1:5000", "auto", false, false},
		{"localhost:5000", "", false, false},
		{"[::1]:5000", "auto", false, false},
		{"0.0.0.0:5000", "auto", true, false},
		{":5000", "auto", true, false},
		{"10.1.2.3:5000", "auto", true, false},
		{"127.0.0.1:5000", "on", true, false},
		{"0.0.0.0:5000", "off", false, true},
		{"127.0.0.1:5000", "off", false, false},
		{"127.0.0.1:5000", "maybe", false, true},
	} {
		cfg := testConfig(t)
		cfg.Server.Addr, cfg.Access.Auth = tc.addr, tc.mode
		on, err := authOn(cfg)
		if on != tc.on || (err != nil) != tc.err {
			t.Errorf("%s --auth %q: on=%v err=%v", tc.addr, tc.mode, on, err)
		}
	}
}

// A browser holding a session cookie the server no longer knows can still
// reach the public routes and sign in again; other routes refuse it.
func TestStaleSessionPublicRoutes(t *testing.T) {
	_, h, _ := authServer(t)
	send := func(method, path, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.RemoteAddr = "127.0.0.1:40000"
		r.Header.Set("Cookie", access.SessionCookie+"=stale-session-id")
		if body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec
	}
	if rec := send("POST", "/api/v1/login", `{"user":"admin","password":"admin-password-1"}`); rec.Code != http.StatusOK ||
		!strings.Contains(strings.Join(rec.Header()["Set-Cookie"], ";"), access.SessionCookie+"=") {
		t.Errorf("login with a stale cookie: %d %s", rec.Code, rec.Body)
	}
	if rec := send("GET", "/api/v1/whoami", ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("whoami with a stale cookie: %d, want 401", rec.Code)
	}
}
