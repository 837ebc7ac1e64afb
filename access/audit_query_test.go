package access

import (
	"testing"

	"github.com/kiln-ml/kiln/store"
)

// TestAuditQuery: pages newest first (Desc, Before) and filters by
// action and by resource or path, on every database.
func TestAuditQuery(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		au := NewAudit(db)
		for i := 0; i < 10; i++ {
			e := &Event{Actor: "ada", Action: "POST /api/v1/users", Path: "/api/v1/users", Status: 201}
			switch i % 3 {
			case 1:
				e.Action, e.Path = "POST /api/v1/approval-requests/{id}/approve", "/api/v1/approval-requests/01ab/approve"
			case 2:
				e.Action, e.Path, e.Resource = "PUT /api/v1/endpoints/{name}", "/api/v1/endpoints/churn", "endpoint/churn"
			}
			if err := au.Append(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		seqs := func(q AuditQuery) []int64 {
			t.Helper()
			evs, err := au.List(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			out := []int64{}
			for _, e := range evs {
				out = append(out, e.Seq)
			}
			return out
		}
		eq := func(got, want []int64) {
			t.Helper()
			if len(got) != len(want) {
				t.Fatalf("got %v, want %v", got, want)
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("got %v, want %v", got, want)
				}
			}
		}
		eq(seqs(AuditQuery{Desc: true, Limit: 4}), []int64{10, 9, 8, 7})
		eq(seqs(AuditQuery{Desc: true, Limit: 4, Before: 7}), []int64{6, 5, 4, 3})
		eq(seqs(AuditQuery{After: 2, Before: 6}), []int64{3, 4, 5})
		eq(seqs(AuditQuery{Action: "approve"}), []int64{2, 5, 8})
		eq(seqs(AuditQuery{Resource: "endpoint/churn"}), []int64{3, 6, 9})
		eq(seqs(AuditQuery{Resource: "01ab", Desc: true}), []int64{8, 5, 2})
		eq(seqs(AuditQuery{Action: "APPROVE"}), nil)
	})
}
