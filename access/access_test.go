package access

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/store"
	"github.com/kiln-ml/kiln/store/storetest"
)

var ctx = context.Background()

func forEachDB(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	for name, open := range storetest.TestDatabases(t) {
		t.Run(name, func(t *testing.T) { fn(t, open(t)) })
	}
}

func TestPasswords(t *testing.T) {
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q", h)
	}
	h2, _ := HashPassword("correct horse")
	if h == h2 {
		t.Error("two hashes of one password are equal: no salt")
	}
	for _, tc := range []struct {
		hash, pw string
		want     bool
	}{
		{h, "correct horse", true},
		{h, "correct horsE", false},
		{h, "", false},
		{"", "correct horse", false},
		{"$argon2id$v=19$m=0,t=2,p=1$AAAA$AAAA", "x", false},
		{strings.Replace(h, "argon2id", "argon2i", 1), "correct horse", false},
		{"$argon2id$v=19$m=19456,t=2,p=1$!!$!!", "correct horse", false},
	} {
		if got := VerifyPassword(tc.hash, tc.pw); got != tc.want {
			t.Errorf("VerifyPassword(%.30q, %q) = %v", tc.hash, tc.pw, got)
		}
	}
	if _, err := HashPassword("short"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("short password: %v", err)
	}
}

func TestTokenShape(t *testing.T) {
	tok, id, hash, err := newToken()
	if err != nil {
		t.Fatal(err)
	}
	gid, secret, ok := parseToken(tok)
	if !ok || gid != id || hashSecret(secret) != hash || strings.Contains(hash, secret) {
		t.Fatalf("token %q: id %q/%q secret %q ok %v", tok, gid, id, secret, ok)
	}
	for _, bad := range []string{"", "kiln_", tok[:len(tok)-1], "xkiln" + tok[4:], strings.Replace(tok, "_", "-", 2), tok + "a"} {
		if _, _, ok := parseToken(bad); ok {
			t.Errorf("parseToken(%q) accepted", bad)
		}
	}
}

func TestCan(t *testing.T) {
	g := func(ws string, rt ResourceType, res string, r Role) *Grant {
		return &Grant{Workspace: ws, ResourceType: rt, Resource: res, Role: r}
	}
	editor := &Principal{User: "e", Scope: ScopeAll, Grants: []*Grant{g("dev", "", "", RoleEditor), g("prod", ResourceModel, "churn", RoleMaintainer)}}
	tests := []struct {
		name string
		p    *Principal
		a    Action
		ws   string
		rt   ResourceType
		res  string
		want bool
	}{
		{"editor reads dev", editor, ActionRead, "dev", "", "", true},
		{"editor writes dev", editor, ActionWrite, "dev", "", "", true},
		{"editor cannot manage dev", editor, ActionManage, "dev", "", "", false},
		{"no grant in staging", editor, ActionRead, "staging", "", "", false},
		{"prod: the one model", editor, ActionManage, "prod", ResourceModel, "churn", true},
		{"prod: another model", editor, ActionRead, "prod", ResourceModel, "fraud", false},
		{"prod: same name, other type", editor, ActionRead, "prod", ResourceEndpoint, "churn", false},
		{"prod: the workspace as a whole", editor, ActionRead, "prod", "", "", false},
		{"not a server admin", editor, ActionServerAdmin, "dev", "", "", false},
		{"authenticated needs no role", editor, ActionAuthenticated, "nowhere", "", "", true},
		{"read scope token cannot write", &Principal{Scope: ScopeRead, Grants: editor.Grants}, ActionWrite, "dev", "", "", false},
		{"read scope token reads", &Principal{Scope: ScopeRead, Grants: editor.Grants}, ActionRead, "dev", "", "", true},
		{"predict scope token cannot read", &Principal{Scope: ScopePredict, Grants: editor.Grants}, ActionRead, "dev", "", "", false},
		{"predict scope token predicts", &Principal{Scope: ScopePredict, Grants: editor.Grants}, ActionPredict, "dev", "", "", true},
		{"write scope admin cannot manage", &Principal{Scope: ScopeWrite, Admin: true}, ActionManage, "dev", "", "", false},
		{"workspace-bound token elsewhere", &Principal{Scope: ScopeAll, Admin: true, TokenWorkspace: "dev"}, ActionRead, "prod", "", "", false},
		{"workspace-bound token at home", &Principal{Scope: ScopeAll, Admin: true, TokenWorkspace: "dev"}, ActionRead, "dev", "", "", true},
		{"server admin", &Principal{Scope: ScopeAll, Admin: true}, ActionServerAdmin, "any", "", "", true},
		{"workspace admin grants", &Principal{Scope: ScopeAll, Grants: []*Grant{g("dev", "", "", RoleAdmin)}}, ActionGrant, "dev", "", "", true},
		{"maintainer cannot grant", &Principal{Scope: ScopeAll, Grants: []*Grant{g("dev", "", "", RoleMaintainer)}}, ActionGrant, "dev", "", "", false},
		{"viewer predicts", &Principal{Scope: ScopeAll, Grants: []*Grant{g("dev", "", "", RoleViewer)}}, ActionPredict, "dev", "", "", true},
	}
	for _, tt := range tests {
		if got := tt.p.Can(tt.a, tt.ws, tt.rt, tt.res); got != tt.want {
			t.Errorf("%s: Can(%s, %s, %s, %s) = %v", tt.name, tt.a, tt.ws, tt.rt, tt.res, got)
		}
	}
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func authWith(t *testing.T, a *Authenticator, header string) (*Principal, error) {
	t.Helper()
	r := httptest.NewRequest("GET", "/x", nil)
	if header != "" {
		r.Header.Set("Authorization", header)
	}
	return a.Authenticate(ctx, r)
}

func TestAuthenticate(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		st := NewStore(db)
		clk := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
		st.now = func() time.Time { return clk }
		if _, err := st.CreateUser(ctx, NewUser{Name: "ada", Password: "lovelace-1843"}, "test"); err != nil {
			t.Fatal(err)
		}
		if _, err := st.CreateUser(ctx, NewUser{Name: "ada", Password: "lovelace-1843"}, "test"); !errors.Is(err, errdefs.ErrAlreadyExists) {
			t.Fatalf("second ada: %v", err)
		}
		if _, err := st.CreateUser(ctx, NewUser{Name: "bot", Kind: KindService, Password: "nope-nope"}, "test"); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("service account with a password: %v", err)
		}
		if _, err := st.CreateUser(ctx, NewUser{Name: "bot", Kind: KindService}, "test"); err != nil {
			t.Fatal(err)
		}
		if _, err := st.CreateWorkspace(ctx, Workspace{Name: "prod"}, "test"); err != nil {
			t.Fatal(err)
		}
		if _, err := st.PutGrant(ctx, Grant{User: "ada", Workspace: "prod", Role: RoleEditor}, "test"); err != nil {
			t.Fatal(err)
		}
		if _, err := st.PutGrant(ctx, Grant{User: "ada", Workspace: "nope", Role: RoleEditor}, "test"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("grant in a missing workspace: %v", err)
		}
		if _, err := st.PutGrant(ctx, Grant{User: "ada", Workspace: "prod", ResourceType: ResourceModel, Role: RoleEditor}, "test"); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("resource type without a resource: %v", err)
		}
		a := NewAuthenticator(st, time.Minute)
		a.now = func() time.Time { return clk }

		p, err := authWith(t, a, basic("ada", "lovelace-1843"))
		if err != nil || p.User != "ada" || p.Auth != "password" || len(p.Grants) != 1 || !p.Can(ActionWrite, "prod", "", "") {
			t.Fatalf("basic: %+v %v", p, err)
		}
		for _, h := range []string{basic("ada", "wrong-password"), basic("nobody", "lovelace-1843"), "Basic !!", "Digest x", "Bearer nope", "Bearer kiln_000000000000_" + strings.Repeat("a", 43)} {
			if _, err := authWith(t, a, h); !errors.Is(err, errdefs.ErrUnauthenticated) {
				t.Errorf("%q: %v", h, err)
			}
		}
		if p, err := authWith(t, a, ""); p != nil || err != nil {
			t.Errorf("no credentials: %v %v", p, err)
		}

		tok, secret, err := st.CreateToken(ctx, NewToken{User: "bot", Scope: "predict", Workspace: "prod", TTL: time.Hour}, "ada")
		if err != nil {
			t.Fatal(err)
		}
		p, err = authWith(t, a, "Bearer "+secret)
		if err != nil || p.User != "bot" || p.TokenID != tok.ID || p.Scope != ScopePredict || p.TokenWorkspace != "prod" {
			t.Fatalf("bearer: %+v %v", p, err)
		}
		// The MLflow client sends a token as a password too.
		if p, err := authWith(t, a, basic("anything", secret)); err != nil || p.User != "bot" {
			t.Fatalf("token as basic password: %+v %v", p, err)
		}
		ts, _ := st.ListTokens(ctx, "bot")
		if len(ts) != 1 || ts[0].LastUsed == 0 {
			t.Errorf("listed %+v", ts)
		}
		// Revocation takes effect on this server at once (Invalidate),
		// on others within the cache TTL.
		if _, err := st.RevokeToken(ctx, tok.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := authWith(t, a, "Bearer "+secret); err != nil {
			t.Errorf("cached token refused before Invalidate: %v", err)
		}
		a.Invalidate()
		if _, err := authWith(t, a, "Bearer "+secret); err == nil || !strings.Contains(err.Error(), "revoked") {
			t.Errorf("revoked token: %v", err)
		}
		// Expiry.
		_, secret2, err := st.CreateToken(ctx, NewToken{User: "ada", TTL: time.Hour}, "ada")
		if err != nil {
			t.Fatal(err)
		}
		clk = clk.Add(2 * time.Hour)
		if _, err := authWith(t, a, "Bearer "+secret2); err == nil || !strings.Contains(err.Error(), "expired") {
			t.Errorf("expired token: %v", err)
		}
		// A disabled user cannot sign in, a changed password works at once.
		dis := true
		if _, err := st.UpdateUser(ctx, "ada", UserUpdate{Disabled: &dis}); err != nil {
			t.Fatal(err)
		}
		a.Invalidate()
		if _, err := authWith(t, a, basic("ada", "lovelace-1843")); !errors.Is(err, errdefs.ErrUnauthenticated) {
			t.Errorf("disabled user: %v", err)
		}
		// Sessions.
		dis = false
		pw := "analytical-engine"
		if _, err := st.UpdateUser(ctx, "ada", UserUpdate{Disabled: &dis, Password: &pw}); err != nil {
			t.Fatal(err)
		}
		a.Invalidate()
		if _, err := authWith(t, a, basic("ada", "lovelace-1843")); err == nil {
			t.Error("the old password still works")
		}
		cookie, csrf, _, err := st.CreateSession(ctx, "ada")
		if err != nil || csrf == "" {
			t.Fatal(err)
		}
		r := httptest.NewRequest("GET", "/x", nil)
		r.Header.Set("Cookie", SessionCookie+"="+cookie)
		if p, err := a.Authenticate(ctx, r); err != nil || p.User != "ada" || p.Auth != "session" || p.csrf != csrf {
			t.Fatalf("session: %+v %v", p, err)
		}
		if err := st.DeleteSession(ctx, cookie); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Authenticate(ctx, r); !errors.Is(err, errdefs.ErrUnauthenticated) {
			t.Errorf("after logout: %v", err)
		}
		// Deleting a user removes their grants and tokens.
		if err := st.DeleteUser(ctx, "bot"); err != nil {
			t.Fatal(err)
		}
		if ts, _ := st.ListTokens(ctx, "bot"); len(ts) != 0 {
			t.Errorf("tokens of a deleted user: %+v", ts)
		}
	})
}

func TestAuditChain(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		au := NewAudit(db)
		for i := 0; i < 25; i++ {
			e := &Event{Actor: "ada", Action: "POST /api/2.0/mlflow/runs/create", Status: 200, RequestDigest: Digest([]byte{byte(i)})}
			if err := au.Append(ctx, e); err != nil {
				t.Fatal(err)
			}
			if e.Seq != int64(i+1) || e.Hash != EventHash(e) {
				t.Fatalf("event %d: %+v", i, e)
			}
		}
		v, err := au.Verify(ctx)
		if err != nil || !v.OK || v.Events != 25 || v.Last != 25 {
			t.Fatalf("verify: %+v %v", v, err)
		}
		// The log refuses updates.
		if _, err := db.W.ExecContext(ctx, `UPDATE audit_events SET actor = 'eve' WHERE seq = 7`); err == nil {
			t.Fatal("an audit event was updated")
		}
		// Someone with the database goes around it.
		drop := `DROP TRIGGER audit_events_no_update`
		if db.Dialect == store.Postgres {
			drop = `DROP TRIGGER audit_events_append_only ON audit_events`
		}
		if _, err := db.W.ExecContext(ctx, drop); err != nil {
			t.Fatal(err)
		}
		if _, err := db.W.ExecContext(ctx, `UPDATE audit_events SET actor = 'eve' WHERE seq = 7`); err != nil {
			t.Fatal(err)
		}
		v, _ = au.Verify(ctx)
		if v.OK || v.FirstBad != 7 || !strings.Contains(v.Problem, "changed") || v.Events != 6 {
			t.Fatalf("tampered actor: %+v", v)
		}
		if _, err := db.W.ExecContext(ctx, `UPDATE audit_events SET actor = 'ada' WHERE seq = 7`); err != nil {
			t.Fatal(err)
		}
		if v, _ := au.Verify(ctx); !v.OK {
			t.Fatalf("restored: %+v", v)
		}
		// Removing an event breaks the chain at the next one.
		if _, err := db.W.ExecContext(ctx, `DELETE FROM audit_events WHERE seq = 12`); err != nil {
			t.Fatal(err)
		}
		v, _ = au.Verify(ctx)
		if v.OK || v.FirstBad != 13 || !strings.Contains(v.Problem, "missing") {
			t.Fatalf("deleted event: %+v", v)
		}
		// A forged replacement (recomputed hash) still breaks the link to
		// the next event.
		if _, err := db.W.ExecContext(ctx, `DELETE FROM audit_events WHERE seq > 11`); err != nil {
			t.Fatal(err)
		}
		evs, _ := au.List(ctx, AuditQuery{})
		forged := *evs[9] // seq 10
		forged.Actor = "eve"
		forged.Hash = EventHash(&forged)
		if _, err := db.W.ExecContext(ctx, db.Rebind(`UPDATE audit_events SET actor = ?, hash = ? WHERE seq = 10`), forged.Actor, forged.Hash); err != nil {
			t.Fatal(err)
		}
		v, _ = au.Verify(ctx)
		if v.OK || v.FirstBad != 11 || !strings.Contains(v.Problem, "does not chain") {
			t.Fatalf("forged event: %+v", v)
		}
	})
}

// FuzzAuthorization feeds arbitrary Authorization headers and cookies to
// the authenticator: it never panics, and anything but no credentials at
// all is either a known principal or an unauthenticated error.
func FuzzAuthorization(f *testing.F) {
	db := storetest.TestDatabases(f)["sqlite"](f)
	st := NewStore(db)
	if _, err := st.CreateUser(ctx, NewUser{Name: "ada", Password: "lovelace-1843"}, "test"); err != nil {
		f.Fatal(err)
	}
	_, secret, err := st.CreateToken(ctx, NewToken{User: "ada"}, "test")
	if err != nil {
		f.Fatal(err)
	}
	a := NewAuthenticator(st, time.Minute)
	for _, s := range []string{basic("ada", "lovelace-1843"), "Bearer " + secret, "Basic", "Bearer", "bearer  " + secret, "Basic Og==", "Basic " + base64.StdEncoding.EncodeToString([]byte("ada:"+secret)), "Negotiate x", "Bearer kiln_" + strings.Repeat("f", 12) + "_" + strings.Repeat("A", 43)} {
		f.Add(s, "")
	}
	f.Add("", "abc")
	f.Fuzz(func(t *testing.T, header, cookie string) {
		r := httptest.NewRequest("GET", "/x", nil)
		if header != "" {
			r.Header["Authorization"] = []string{header}
		}
		if cookie != "" {
			r.Header["Cookie"] = []string{SessionCookie + "=" + cookie}
		}
		p, err := a.Authenticate(ctx, r)
		switch {
		case err != nil:
			if !errors.Is(err, errdefs.ErrUnauthenticated) {
				t.Fatalf("%q: %v", header, err)
			}
		case p != nil:
			if p.User != "ada" {
				t.Fatalf("%q authenticated as %+v", header, p)
			}
		case header != "" && r.Header.Get("Authorization") != "":
			t.Fatalf("%q: neither a principal nor an error", header)
		}
	})
}

// Text PostgreSQL would refuse (NUL, invalid UTF-8) is stored replaced,
// and the chain still verifies.
func TestAuditOddText(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		au := NewAudit(db)
		e := &Event{Actor: "ada", Action: "PUT /api/2.0/mlflow-artifacts/artifacts/{path...}", Status: 200,
			Path: "/api/2.0/mlflow-artifacts/artifacts/a\x00b", Resource: "run/\xff\xfe", Detail: "bad\x00"}
		if err := au.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
		if e.Path != "/api/2.0/mlflow-artifacts/artifacts/a\uFFFDb" || e.Resource != "run/\uFFFD" || e.Detail != "bad\uFFFD" {
			t.Errorf("stored %+v", e)
		}
		if v, err := au.Verify(ctx); err != nil || !v.OK || v.Events != 1 {
			t.Fatalf("verify: %+v %v", v, err)
		}
	})
}
