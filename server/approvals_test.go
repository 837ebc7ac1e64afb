package server

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/access"
	"github.com/kiln-ml/kiln/approval"
	"github.com/kiln-ml/kiln/pipeline"
)

// TestApprovalsBlockPromotion: a protected alias moves only after two
// maintainers other than the requester approve; the approvals are audited.
func TestApprovalsBlockPromotion(t *testing.T) {
	_, h, admin := authServer(t)
	users := map[string]string{}
	for _, u := range []string{"ada", "bob", "cy"} {
		users[u] = token(t, h, admin, u, "default", "maintainer", "all")
	}
	ada := users["ada"]
	mustCall(t, h, ada, "POST", "/api/2.0/mlflow/registered-models/create", `{"name":"churn"}`, http.StatusOK, nil)
	for i := 0; i < 2; i++ {
		mustCall(t, h, ada, "POST", "/api/2.0/mlflow/model-versions/create", `{"name":"churn","source":"mlflow-artifacts:/0/models/m-1/artifacts"}`, http.StatusOK, nil)
	}
	// Before a policy, the alias moves freely.
	mustCall(t, h, ada, "POST", "/api/2.0/mlflow/registered-models/alias", `{"name":"churn","alias":"champion","version":"1"}`, http.StatusOK, nil)
	// Editors cannot set policies; maintainers can.
	ed := token(t, h, admin, "ed", "default", "editor", "all")
	if rec := call(t, h, ed, "PUT", "/api/v1/approval-policies/prod", `{"model":"churn","aliases":["champion"],"required":2}`, nil); rec.Code != http.StatusForbidden {
		t.Fatalf("editor set a policy: %d", rec.Code)
	}
	mustCall(t, h, admin, "PUT", "/api/v1/approval-policies/prod", `{"model":"churn","aliases":["champion"],"required":2}`, http.StatusOK, nil)

	rec := call(t, h, ada, "POST", "/api/2.0/mlflow/registered-models/alias", `{"name":"churn","alias":"champion","version":"2"}`, nil)
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "needs 2 approval(s)") {
		t.Fatalf("unapproved alias: %d %s", rec.Code, rec.Body)
	}
	var req approval.Request
	mustCall(t, h, ada, "POST", "/api/v1/approval-requests", `{"model":"churn","version":2,"alias":"champion","reason":"better AUC"}`, http.StatusCreated, &req)
	if req.RequestedBy != "ada" || req.State != approval.StatePending {
		t.Fatalf("request %+v", req)
	}
	// The requester cannot approve (the identity is the signed-in user,
	// whatever X-Kiln-Actor says).
	r := call(t, h, ada, "POST", "/api/v1/approval-requests/"+req.ID+"/approve", `{}`, nil)
	if r.Code != http.StatusForbidden || !strings.Contains(r.Body.String(), "cannot decide it") {
		t.Fatalf("self-approval: %d %s", r.Code, r.Body)
	}
	// An editor cannot approve at all.
	if r := call(t, h, ed, "POST", "/api/v1/approval-requests/"+req.ID+"/approve", `{}`, nil); r.Header().Get(access.DeniedHeader) == "" {
		t.Fatalf("an editor approved: %d %s", r.Code, r.Body)
	}
	mustCall(t, h, users["bob"], "POST", "/api/v1/approval-requests/"+req.ID+"/approve", `{"comment":"ok"}`, http.StatusOK, &req)
	if req.State != approval.StatePending || req.Approvals != 1 {
		t.Fatalf("after bob: %+v", req)
	}
	if rec := call(t, h, ada, "POST", "/api/2.0/mlflow/registered-models/alias", `{"name":"churn","alias":"champion","version":"2"}`, nil); rec.Code != http.StatusBadRequest {
		t.Fatalf("half-approved alias: %d", rec.Code)
	}
	mustCall(t, h, users["cy"], "POST", "/api/v1/approval-requests/"+req.ID+"/approve", ``, http.StatusOK, &req)
	if req.State != approval.StateApproved || len(req.Votes) != 2 {
		t.Fatalf("after cy: %+v", req)
	}
	mustCall(t, h, ada, "POST", "/api/2.0/mlflow/registered-models/alias", `{"name":"churn","alias":"champion","version":"2"}`, http.StatusOK, nil)
	var mv struct {
		ModelVersion struct {
			Version string `json:"version"`
		} `json:"model_version"`
	}
	mustCall(t, h, ada, "GET", "/api/2.0/mlflow/registered-models/alias?name=churn&alias=champion", "", http.StatusOK, &mv)
	if mv.ModelVersion.Version != "2" {
		t.Errorf("champion is %q", mv.ModelVersion.Version)
	}
	// The decisions are in the audit log, by who made them.
	var evs struct {
		Events []access.Event `json:"events"`
	}
	mustCall(t, h, admin, "GET", "/api/v1/audit?limit=10000", "", http.StatusOK, &evs)
	seen := map[string]bool{}
	for _, e := range evs.Events {
		if e.Action == "POST /api/v1/approval-requests/{id}/approve" {
			seen[e.Actor+" "+http.StatusText(e.Status)] = true
		}
	}
	for _, want := range []string{"ada Forbidden", "ed Forbidden", "bob OK", "cy OK"} {
		if !seen[want] {
			t.Errorf("audit: no %q approval event in %v", want, seen)
		}
	}
	var list struct {
		Requests []approval.Request `json:"requests"`
	}
	mustCall(t, h, ed, "GET", "/api/v1/approval-requests?model=churn", "", http.StatusOK, &list)
	if len(list.Requests) != 1 || list.Requests[0].State != approval.StateApproved {
		t.Errorf("list: %+v", list.Requests)
	}
}

// TestPipelineStepsSignIn: with access control on, local steps get the
// kiln-pipelines service account's token and can call the server (here:
// log a metric to their own MLflow child run and ask who they are).
func TestPipelineStepsSignIn(t *testing.T) {
	cfg := testConfig(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Server.Addr = ln.Addr().String()
	cfg.Access.Auth, cfg.Access.AdminPassword = "on", "admin-password-1"
	srv, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	defer func() { cancel(); <-served }()
	h := srv.Handler()
	admin := "Basic YWRtaW46YWRtaW4tcGFzc3dvcmQtMQ=="
	doc := `{"apiVersion":"kiln.dev/v1","kind":"Pipeline","metadata":{"name":"signin"},"spec":{"steps":[{"name":"ask","command":["python3","-c",` +
		`"import os,json,urllib.request as u\nh={'Authorization':'Bearer '+os.environ['MLFLOW_TRACKING_TOKEN'],'Content-Type':'application/json'}\n` +
		`me=json.load(u.urlopen(u.Request(os.environ['KILN_URL']+'/api/v1/whoami',headers=h)))['user']\n` +
		`u.urlopen(u.Request(os.environ['KILN_URL']+'/api/2.0/mlflow/runs/log-metric',data=json.dumps({'run_id':os.environ['MLFLOW_RUN_ID'],'key':'ok','value':1,'timestamp':1}).encode(),headers=h))\n` +
		`open(os.environ['KILN_OUTPUTS']+'/me','w').write(me)"],"outputs":[{"name":"me","type":"parameter"}]}]}}`
	mustCall(t, h, admin, "PUT", "/api/v1/pipelines/signin", doc, http.StatusCreated, nil)
	var started struct {
		Run pipeline.Run `json:"run"`
	}
	mustCall(t, h, admin, "POST", "/api/v1/pipelines/signin/runs", `{}`, http.StatusCreated, &started)
	var run pipeline.Run
	deadline := time.Now().Add(60 * time.Second)
	for {
		mustCall(t, h, admin, "GET", "/api/v1/pipeline-runs/"+started.Run.ID, "", http.StatusOK, &run)
		if pipeline.Terminal(run.State) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if run.State != pipeline.StateSucceeded || len(run.Steps) != 1 || run.Steps[0].Outputs["me"] != PipelineAccount {
		t.Fatalf("run %s (%s): %+v", run.State, run.Error, run.Steps)
	}
	// The service account is a maintainer of the default workspace, and
	// its calls are audited under its name.
	var evs struct {
		Events []access.Event `json:"events"`
	}
	mustCall(t, h, admin, "GET", "/api/v1/audit?actor="+PipelineAccount, "", http.StatusOK, &evs)
	found := false
	for _, e := range evs.Events {
		found = found || (e.Action == "POST /api/2.0/mlflow/runs/log-metric" && e.Status == 200)
	}
	if !found {
		t.Errorf("no audited log-metric by %s: %+v", PipelineAccount, evs.Events)
	}
}
