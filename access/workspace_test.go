package access

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/serving/inferencepb"
	"github.com/kiln-ml/kiln/store"
	"github.com/kiln-ml/kiln/store/storetest"
)

func TestWorkspaceOwners(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		o := NewOwners(db, time.Minute)
		if o.Active(ctx) {
			t.Fatal("active without rows")
		}
		if ws, explicit, err := o.Owner(ctx, ResourceModel, "churn"); err != nil || ws != DefaultWorkspace || explicit {
			t.Fatalf("Owner without rows = %q %v %v", ws, explicit, err)
		}
		if err := o.Set(ctx, ResourceModel, "churn", "prod"); err != nil {
			t.Fatal(err)
		}
		if err := o.Set(ctx, ResourceExperiment, "7", "dev"); err != nil {
			t.Fatal(err)
		}
		if !o.Active(ctx) {
			t.Fatal("not active after Set")
		}
		// Another server on the same database: it reads the rows.
		other := NewOwners(db, time.Minute)
		for _, tc := range []struct {
			rt       ResourceType
			name, ws string
			explicit bool
		}{
			{ResourceModel, "churn", "prod", true},
			{ResourceExperiment, "7", "dev", true},
			{ResourceExperiment, "churn", DefaultWorkspace, false}, // types are apart
			{ResourceEndpoint, "x", DefaultWorkspace, false},
		} {
			for _, ow := range []*Owners{o, other} {
				ws, explicit, err := ow.Owner(ctx, tc.rt, tc.name)
				if err != nil || ws != tc.ws || explicit != tc.explicit {
					t.Errorf("Owner(%s, %s) = %q %v %v, want %q %v", tc.rt, tc.name, ws, explicit, err, tc.ws, tc.explicit)
				}
			}
		}
		// Set again moves it; Set to default removes the row.
		if err := o.Set(ctx, ResourceModel, "churn", "staging"); err != nil {
			t.Fatal(err)
		}
		if ws, _, _ := o.Owner(ctx, ResourceModel, "churn"); ws != "staging" {
			t.Errorf("after a second Set: %q", ws)
		}
		if err := o.Rename(ctx, ResourceModel, "churn", "churn2"); err != nil {
			t.Fatal(err)
		}
		fresh := NewOwners(db, time.Minute)
		if ws, _, _ := fresh.Owner(ctx, ResourceModel, "churn2"); ws != "staging" {
			t.Errorf("renamed: churn2 owned by %q", ws)
		}
		if ws, explicit, _ := fresh.Owner(ctx, ResourceModel, "churn"); ws != DefaultWorkspace || explicit {
			t.Errorf("renamed: churn still owned by %q", ws)
		}
		if err := o.Set(ctx, ResourceModel, "churn2", DefaultWorkspace); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.R.QueryRow(`SELECT COUNT(*) FROM workspace_resources`).Scan(&n); err != nil || n != 1 {
			t.Errorf("rows after Set(default) = %d %v, want 1 (the experiment)", n, err)
		}

		// Listings filter with one lookup for the uncached names.
		for i, name := range []string{"a", "b", "c"} {
			if err := o.Set(ctx, ResourceModel, name, []string{"dev", "prod", "dev"}[i]); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			ws   string
			want string
		}{{"dev", "a,c"}, {"prod", "b"}, {DefaultWorkspace, "d"}} {
			for _, ow := range []*Owners{o, NewOwners(db, time.Minute)} {
				c := withScope(ctx, ow, tc.ws)
				got := FilterVisible(c, ResourceModel, []string{"a", "b", "c", "d"}, func(s string) string { return s })
				if strings.Join(got, ",") != tc.want {
					t.Errorf("FilterVisible in %s = %v, want %s", tc.ws, got, tc.want)
				}
			}
		}
		if !Visible(ctx, ResourceModel, "b") {
			t.Error("without a workspace scope everything is visible")
		}
	})
}

// TestWorkspaceOwnersInactive: a workspace other than the default sees
// nothing of it before any row exists, without asking the database for
// each resource; the default workspace sees everything.
func TestWorkspaceOwnersInactive(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		o := NewOwners(db, time.Minute)
		if !Visible(withScope(ctx, o, DefaultWorkspace), ResourceModel, "m") {
			t.Error("the default workspace does not see an unowned model")
		}
		if Visible(withScope(ctx, o, "dev"), ResourceModel, "m") {
			t.Error("dev sees a model of the default workspace")
		}
		if Isolated(withScope(ctx, o, DefaultWorkspace)) {
			t.Error("a default-workspace request is isolated before any row exists")
		}
		// Claim: an existing resource without a row is the default
		// workspace's.
		c := withScope(ctx, o, "dev")
		if _, err := Claim(c, ResourceModel, "m", "prod", true); !errors.Is(err, errdefs.ErrAlreadyExists) {
			t.Errorf("Claim of a default model for prod: %v", err)
		}
		record, err := Claim(c, ResourceModel, "new", "prod", false)
		if err != nil {
			t.Fatal(err)
		}
		if err := record(ctx); err != nil {
			t.Fatal(err)
		}
		if ws, _, _ := o.Owner(ctx, ResourceModel, "new"); ws != "prod" {
			t.Errorf("claimed model owned by %q", ws)
		}
		if _, err := Claim(c, ResourceModel, "new", "dev", true); !errors.Is(err, errdefs.ErrAlreadyExists) {
			t.Errorf("Claim of prod's model for dev: %v", err)
		}
		if _, err := Claim(ctx, ResourceModel, "x", "prod", false); !errors.Is(err, errdefs.ErrInvalidState) {
			t.Errorf("Claim without access control: %v", err)
		}
	})
}

// TestWorkspaceMiddleware: registered model names are per workspace
// (each workspace names its own, stored qualified); a model made before
// that (a plain name with a row) is answered as not found elsewhere and
// cannot be created in the default workspace; what is created in a
// workspace other than the default is recorded.
func TestWorkspaceMiddleware(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		o := NewOwners(db, time.Minute)
		next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch {
			case strings.HasSuffix(r.URL.Path, "/experiments/create"):
				w.Write([]byte(`{"experiment_id":"42"}`))
			case r.URL.Path == "/list":
				w.Write([]byte(strings.Join(FilterVisible(r.Context(), ResourceModel, []string{"a", "prod\x1fa", "dev\x1fa", "legacy", "b"}, func(s string) string { return s }), ",")))
			case r.URL.Path == "/fail/create":
				http.Error(w, "no", http.StatusBadRequest)
			default:
				w.Write([]byte("ok"))
			}
		})
		h := Middleware(next, MiddlewareOptions{
			Policy: Policy{
				"GET /models/{name}":                            {ActionRead, ResourceModel, "path:name"},
				"POST /api/2.0/mlflow/registered-models/create": {ActionWrite, ResourceModel, "param:name"},
				"POST /api/2.0/mlflow/experiments/create":       {ActionWrite, "", ""},
				"GET /list": {Action: ActionRead},
			},
			Owners: o,
			WriteError: func(w http.ResponseWriter, r *http.Request, err error) {
				http.Error(w, err.Error(), statusOf(err))
			},
		})
		do := func(ws, method, path, body string) *httptest.ResponseRecorder {
			r := httptest.NewRequest(method, path, strings.NewReader(body))
			if ws != "" {
				r.Header.Set(WorkspaceHeader, ws)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			return rec
		}
		// Made in prod before names were per workspace: a plain stored
		// name with a row.
		if err := o.Set(ctx, ResourceModel, "legacy", "prod"); err != nil {
			t.Fatal(err)
		}
		steps := []struct {
			ws, method, path, body string
			want                   int
			wantBody               string
		}{
			{"", "GET", "/models/a", "", 200, "ok"},
			// Each workspace names its own "a" (stored as "prod\x1fa"):
			// the middleware passes, the handler answers.
			{"prod", "GET", "/models/a", "", 200, "ok"},
			{"prod", "POST", "/api/2.0/mlflow/registered-models/create", `{"name":"a"}`, 200, "ok"},
			{"prod", "GET", "/models/a", "", 200, "ok"},
			{"", "GET", "/models/a", "", 200, "ok"},
			{"dev", "POST", "/api/2.0/mlflow/registered-models/create", `{"name":"a"}`, 200, "ok"},
			{"", "POST", "/api/2.0/mlflow/registered-models/create", `{"name":"a"}`, 200, "ok"},
			{"dev", "POST", "/api/2.0/mlflow/registered-models/create", `{"name":"dev\u001fb"}`, 400, "may not contain"},
			// A legacy name stays prod's: found there, hidden elsewhere,
			// and not creatable in the default workspace, whose plain
			// name it is.
			{"prod", "GET", "/models/legacy", "", 200, "ok"},
			{"", "GET", "/models/legacy", "", 404, "does not exist in workspace 'default'"},
			{"dev", "GET", "/models/legacy", "", 200, "ok"},
			{"", "POST", "/api/2.0/mlflow/registered-models/create", `{"name":"legacy"}`, 409, "already exists in another workspace"},
			{"prod", "GET", "/list", "", 200, "prod\x1fa,legacy"},
			{"", "GET", "/list", "", 200, "a,b"},
			{"dev", "GET", "/list", "", 200, "dev\x1fa"},
			{"prod", "POST", "/api/2.0/mlflow/experiments/create", `{"name":"e"}`, 200, "42"},
		}
		for _, s := range steps {
			rec := do(s.ws, s.method, s.path, s.body)
			if rec.Code != s.want || !strings.Contains(rec.Body.String(), s.wantBody) {
				t.Errorf("%s %s in %q: %d %q, want %d %q", s.method, s.path, s.ws, rec.Code, rec.Body, s.want, s.wantBody)
			}
		}
		if ws, _, _ := o.Owner(ctx, ResourceExperiment, "42"); ws != "prod" {
			t.Errorf("the experiment created in prod is owned by %q", ws)
		}
		for _, c := range []struct{ stored, ws string }{{"prod\x1fa", "prod"}, {"dev\x1fa", "dev"}, {"a", DefaultWorkspace}} {
			if ws, explicit, _ := o.Owner(ctx, ResourceModel, c.stored); ws != c.ws || explicit != (c.ws != DefaultWorkspace) {
				t.Errorf("the model %q is owned by %q (row %v), want %q", c.stored, ws, explicit, c.ws)
			}
		}
	})
}

// TestWorkspaceGRPC: gRPC inference on an endpoint of another workspace
// is not found; a token bound to the endpoint's workspace reaches it
// without naming the workspace.
func TestWorkspaceGRPC(t *testing.T) {
	db := storetest.TestDatabases(t)["sqlite"](t)
	st := NewStore(db)
	if _, err := st.CreateWorkspace(ctx, Workspace{Name: "prod"}, "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateUser(ctx, NewUser{Name: "app", Kind: KindService}, "test"); err != nil {
		t.Fatal(err)
	}
	for _, ws := range []string{DefaultWorkspace, "prod"} {
		if _, err := st.PutGrant(ctx, Grant{User: "app", Workspace: ws, Role: RoleViewer}, "test"); err != nil {
			t.Fatal(err)
		}
	}
	_, tok, _ := st.CreateToken(ctx, NewToken{User: "app"}, "test")
	_, bound, _ := st.CreateToken(ctx, NewToken{User: "app", Workspace: "prod"}, "test")
	owners := NewOwners(db, time.Minute)
	if err := owners.Set(ctx, ResourceEndpoint, "churn", "prod"); err != nil {
		t.Fatal(err)
	}
	ic := UnaryInterceptor(NewAuthenticator(st, time.Minute), owners)
	for _, tc := range []struct {
		token, ws, endpoint string
		want                codes.Code
	}{
		{tok, "", "churn", codes.NotFound},
		{tok, "prod", "churn", codes.OK},
		{tok, "", "other", codes.OK},
		{tok, "prod", "other", codes.NotFound},
		{bound, "", "churn", codes.OK},
	} {
		md := metadata.Pairs("authorization", "Bearer "+tc.token)
		if tc.ws != "" {
			md.Append("x-kiln-workspace", tc.ws)
		}
		_, err := ic(metadata.NewIncomingContext(ctx, md), &inferencepb.ModelInferRequest{ModelName: tc.endpoint},
			&grpc.UnaryServerInfo{FullMethod: "/inference.GRPCInferenceService/ModelInfer"},
			func(context.Context, any) (any, error) { return "ok", nil })
		if got := status.Code(err); got != tc.want {
			t.Errorf("ModelInfer %s in %q: %v (%v), want %v", tc.endpoint, tc.ws, got, err, tc.want)
		}
	}
}

// BenchmarkWorkspaceMiddleware: what ownership costs a request of a
// server that only uses the default workspace (none: Owners inactive),
// against no Owners at all, and once isolation is active (a cached
// lookup of the route's resource).
func BenchmarkWorkspaceMiddleware(b *testing.B) {
	db := storetest.TestDatabases(b)["sqlite"](b)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	policy := Policy{"GET /models/{name}": {ActionRead, ResourceModel, "path:name"}}
	active := NewOwners(db, time.Minute)
	for _, c := range []struct {
		name   string
		owners *Owners
		prep   func()
	}{
		{"no-owners", nil, func() {}},
		{"default-only", NewOwners(db, time.Minute), func() {}},
		{"isolation-active", active, func() {
			if err := active.Set(ctx, ResourceModel, "other", "prod"); err != nil {
				b.Fatal(err)
			}
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			c.prep()
			h := Middleware(ok, MiddlewareOptions{Policy: policy, Owners: c.owners})
			r := httptest.NewRequest("GET", "/models/churn", nil)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				if rec.Code != 200 {
					b.Fatal(rec.Code)
				}
			}
		})
	}
}
