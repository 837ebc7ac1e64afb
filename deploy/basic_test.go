package deploy

import (
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestServeEndpoint(t *testing.T) {
	f := newFixture(t, openSQLite(t))
	v1 := f.register(t, "clf", "skl_svc_rbf_multi")
	m := f.manager(t, ManagerOptions{})
	hs := serve(t, m, prometheus.NewRegistry())
	res, err := m.Apply(bg, parseDoc(t, `{"metadata":{"name":"iris"},"spec":{"model":"clf","routes":[{"name":"main","version":"1","weight":100}]}}`), "alice", "first")
	if err != nil {
		t.Fatal(err)
	}
	if !res.Created || res.State.Status.Routes[0].State != RouteReady {
		t.Fatalf("apply: %+v", res.State.Status)
	}
	tc := loadCase(t, "skl_svc_rbf_multi")
	code, out, _ := infer(t, http.DefaultClient, hs.URL+"/v2/models/iris/infer", tc.body, nil)
	if code != 200 || !equalLabels(labelsOf(out), tc.labels) {
		t.Fatalf("infer: %d %+v", code, out)
	}
	if out.ModelName != "iris" || out.ModelVersion != "1" {
		t.Errorf("answered by %q %q", out.ModelName, out.ModelVersion)
	}
	_ = v1
}
