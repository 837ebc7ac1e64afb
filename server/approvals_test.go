package server

import (
	"net/http"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/access"
	"github.com/kiln-ml/kiln/approval"
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
