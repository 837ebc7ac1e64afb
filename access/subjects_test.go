package access

import (
	"errors"
	"testing"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/store"
)

func TestOIDCSubjects(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		st := NewStore(db)
		const iss = "https://idp.example.com"
		for _, n := range []string{"ada", "bob"} {
			if _, err := st.CreateUser(ctx, NewUser{Name: n}, "oidc:"+iss); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := st.UserBySubject(ctx, iss, "s-ada"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatalf("unlinked subject: %v", err)
		}
		if err := st.LinkSubject(ctx, iss, "s-ada", "ada"); err != nil {
			t.Fatal(err)
		}
		if err := st.LinkSubject(ctx, iss, "s-ada", "ada"); err != nil {
			t.Errorf("linking the same pair again: %v", err)
		}
		for _, tc := range []struct{ sub, user string }{{"s-ada", "bob"}, {"s-other", "ada"}} {
			if err := st.LinkSubject(ctx, iss, tc.sub, tc.user); !errors.Is(err, errdefs.ErrAlreadyExists) {
				t.Errorf("link %s → %s: %v, want AlreadyExists", tc.sub, tc.user, err)
			}
		}
		// Another issuer is another namespace of subjects.
		if err := st.LinkSubject(ctx, "https://other.example.com", "s-ada", "bob"); err != nil {
			t.Errorf("same subject at another issuer: %v", err)
		}
		if u, err := st.UserBySubject(ctx, iss, "s-ada"); err != nil || u.Name != "ada" {
			t.Fatalf("by subject: %+v %v", u, err)
		}
		if sub, err := st.SubjectOf(ctx, iss, "bob"); err != nil || sub != "" {
			t.Errorf("bob's subject at %s: %q %v", iss, sub, err)
		}
		// Deleting the user forgets its subject: the next sign-in starts over.
		if err := st.DeleteUser(ctx, "ada"); err != nil {
			t.Fatal(err)
		}
		if _, err := st.UserBySubject(ctx, iss, "s-ada"); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("after deleting the user: %v", err)
		}
	})
}
