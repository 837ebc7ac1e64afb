package api_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/access"
	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/store/storetest"
)

// TestEndpointsWorkspace: with access control's workspaces, an endpoint
// created in prod is listed and found only there, its name cannot be
// taken (or an existing endpoint of the default workspace changed) from
// another workspace, and deleting it frees the name.
func TestEndpointsWorkspace(t *testing.T) {
	db := storetest.TestDatabases(t)["sqlite"](t)
	e := newEndpointsEnv(t, db)
	e.register(t, "clf", "skl_svc_rbf_multi")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mux := http.NewServeMux()
	api.New(api.Deps{Endpoints: e.m, Logger: log}).Register(mux)
	owners := access.NewOwners(db, time.Minute)
	srv := httptest.NewServer(access.Middleware(mux, access.MiddlewareOptions{Policy: access.DefaultPolicy(), Owners: owners,
		WriteError: func(w http.ResponseWriter, r *http.Request, err error) { api.WriteError(w, r, log, err) }}))
	t.Cleanup(srv.Close)
	do := func(ws, method, path, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+"/api/v1"+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if ws != "" {
			req.Header.Set(access.WorkspaceHeader, ws)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(data)
	}
	doc := func(name string) string { return strings.Replace(irisV1, `"name":"iris"`, `"name":"`+name+`"`, 1) }
	for _, s := range []struct {
		ws, method, path, body string
		want                   int
		has, hasNot            string
	}{
		{"prod", "PUT", "/endpoints/iris", doc("iris"), 201, "", ""},
		{"prod", "GET", "/endpoints", "", 200, `"iris"`, ""},
		{"", "GET", "/endpoints", "", 200, "", `"iris"`},
		{"", "GET", "/endpoints/iris", "", 404, "does not exist in workspace 'default'", ""},
		{"", "PUT", "/endpoints/iris", doc("iris"), 409, "another workspace", ""},
		{"", "PUT", "/endpoints/other", doc("other"), 201, "", ""},
		{"prod", "PUT", "/endpoints/other", doc("other"), 409, "another workspace", ""},
		{"prod", "GET", "/endpoints", "", 200, `"iris"`, `"other"`},
		{"prod", "DELETE", "/endpoints/iris", "", 200, "", ""},
		{"", "PUT", "/endpoints/iris", doc("iris"), 201, "", ""},
		{"", "GET", "/endpoints", "", 200, `"other"`, ""},
	} {
		code, body := do(s.ws, s.method, s.path, s.body)
		if code != s.want || !strings.Contains(body, s.has) || (s.hasNot != "" && strings.Contains(body, s.hasNot)) {
			t.Fatalf("%s %s in %q: %d %s, want %d with %q and not %q", s.method, s.path, s.ws, code, body, s.want, s.has, s.hasNot)
		}
	}
	if ws, explicit, err := owners.Owner(context.Background(), access.ResourceEndpoint, "iris"); err != nil || explicit || ws != access.DefaultWorkspace {
		t.Errorf("iris after its deletion in prod and creation in default: %q %v %v", ws, explicit, err)
	}
}
