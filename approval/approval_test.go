package approval

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/store"
	"github.com/kiln-ml/kiln/store/storetest"
)

var ctx = context.Background()

func TestPolicyValidate(t *testing.T) {
	for _, tc := range []struct {
		p    Policy
		want string
	}{
		{Policy{Name: "Bad Name", Model: "m", Aliases: []string{"a"}, Required: 1}, "name"},
		{Policy{Name: "p", Aliases: []string{"a"}, Required: 1}, "model"},
		{Policy{Name: "p", Model: "m", Required: 1}, "at least one alias or endpoint"},
		{Policy{Name: "p", Model: "m", Aliases: []string{"a", "a"}, Required: 1}, "aliases[1]"},
		{Policy{Name: "p", Model: "m", Aliases: []string{"a"}, Required: 0}, "required"},
		{Policy{Name: "p", Model: "m", Endpoints: []string{"e"}, Required: 11}, "required"},
	} {
		err := tc.p.Validate()
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.p, err, tc.want)
		}
	}
}

func TestApprovals(t *testing.T) {
	for name, open := range storetest.TestDatabases(t) {
		t.Run(name, func(t *testing.T) { testApprovals(t, open(t)) })
	}
}

func testApprovals(t *testing.T, db *store.DB) {
	s := NewService(db)
	if _, err := s.PutPolicy(ctx, Policy{Name: "prod", Model: "churn", Aliases: []string{"champion"}, Endpoints: []string{"churn-prod"}, Required: 2}, "admin"); err != nil {
		t.Fatal(err)
	}
	// Unprotected moves pass; protected ones need approval.
	if err := s.AllowAlias(ctx, "churn", "staging", 3); err != nil {
		t.Errorf("unprotected alias: %v", err)
	}
	if err := s.AllowAlias(ctx, "fraud", "champion", 3); err != nil {
		t.Errorf("another model's alias: %v", err)
	}
	err := s.AllowAlias(ctx, "churn", "champion", 3)
	if !errors.Is(err, ErrNotApproved) || !strings.Contains(err.Error(), "needs 2 approval(s)") || !strings.Contains(err.Error(), "kiln approvals request churn/3 --alias champion") {
		t.Fatalf("protected alias: %v", err)
	}
	if _, err := s.CreateRequest(ctx, NewRequest{Model: "churn", Version: 3, Alias: "staging"}, "ada"); !errors.Is(err, errdefs.ErrInvalidState) {
		t.Errorf("request for an unprotected alias: %v", err)
	}
	r, err := s.CreateRequest(ctx, NewRequest{Model: "churn", Version: 3, Alias: "champion", Reason: "AUC +0.02"}, "ada")
	if err != nil || r.State != StatePending || r.Required != 2 {
		t.Fatalf("request: %+v %v", r, err)
	}
	if again, err := s.CreateRequest(ctx, NewRequest{Model: "churn", Version: 3, Alias: "champion"}, "bob"); err != nil || again.ID != r.ID {
		t.Errorf("a second request for the same move: %+v %v", again, err)
	}
	if _, err := s.Decide(ctx, r.ID, "ada", Approve, ""); !errors.Is(err, errdefs.ErrPermission) {
		t.Errorf("the requester approved: %v", err)
	}
	r, err = s.Decide(ctx, r.ID, "bob", Approve, "looks good")
	if err != nil || r.State != StatePending || r.Approvals != 1 {
		t.Fatalf("first approval: %+v %v", r, err)
	}
	if _, err := s.Decide(ctx, r.ID, "bob", Approve, ""); !errors.Is(err, errdefs.ErrInvalidState) {
		t.Errorf("bob voted twice: %v", err)
	}
	if err := s.AllowAlias(ctx, "churn", "champion", 3); err == nil || !strings.Contains(err.Error(), "has 1 of 2 approvals") {
		t.Errorf("half approved: %v", err)
	}
	r, err = s.Decide(ctx, r.ID, "cy", Approve, "")
	if err != nil || r.State != StateApproved || r.Approvals != 2 || len(r.Votes) != 2 || r.DecidedTime == 0 {
		t.Fatalf("second approval: %+v %v", r, err)
	}
	if err := s.AllowAlias(ctx, "churn", "champion", 3); err != nil {
		t.Errorf("approved: %v", err)
	}
	// The approval is for version 3 only, and for the alias only.
	if err := s.AllowAlias(ctx, "churn", "champion", 4); !errors.Is(err, ErrNotApproved) {
		t.Errorf("version 4: %v", err)
	}
	if err := s.AllowRoute(ctx, "churn-prod", "churn", 3); !errors.Is(err, ErrNotApproved) {
		t.Errorf("endpoint route: %v", err)
	}
	if err := s.AllowRoute(ctx, "churn-dev", "churn", 3); err != nil {
		t.Errorf("unprotected endpoint: %v", err)
	}
	if _, err := s.Decide(ctx, r.ID, "dee", Reject, ""); !errors.Is(err, errdefs.ErrInvalidState) {
		t.Errorf("vote on a decided request: %v", err)
	}
	// A rejection closes a request.
	e, err := s.CreateRequest(ctx, NewRequest{Model: "churn", Version: 3, Endpoint: "churn-prod"}, "ada")
	if err != nil {
		t.Fatal(err)
	}
	s.Decide(ctx, e.ID, "bob", Approve, "")
	e, err = s.Decide(ctx, e.ID, "cy", Reject, "latency regression")
	if err != nil || e.State != StateRejected {
		t.Fatalf("reject: %+v %v", e, err)
	}
	if err := s.AllowRoute(ctx, "churn-prod", "churn", 3); !errors.Is(err, ErrNotApproved) {
		t.Errorf("rejected route: %v", err)
	}
	rs, err := s.ListRequests(ctx, RequestQuery{Model: "churn"})
	if err != nil || len(rs) != 2 || rs[0].ID != e.ID {
		t.Errorf("list: %v %+v", err, rs)
	}
	if rs, _ := s.ListRequests(ctx, RequestQuery{State: StateApproved}); len(rs) != 1 || rs[0].ID != r.ID {
		t.Errorf("approved list: %+v", rs)
	}
	// Raising the policy's bar makes the old approval insufficient.
	if _, err := s.PutPolicy(ctx, Policy{Name: "prod", Model: "churn", Aliases: []string{"champion"}, Required: 3}, "admin"); err != nil {
		t.Fatal(err)
	}
	if err := s.AllowAlias(ctx, "churn", "champion", 3); !errors.Is(err, ErrNotApproved) {
		t.Errorf("after raising the bar: %v", err)
	}
	if p, _ := s.GetPolicy(ctx, "prod"); p.Generation != 2 {
		t.Errorf("generation %d", p.Generation)
	}
	if err := s.DeletePolicy(ctx, "prod"); err != nil {
		t.Fatal(err)
	}
	if err := s.AllowAlias(ctx, "churn", "champion", 9); err != nil {
		t.Errorf("no policy: %v", err)
	}
}
