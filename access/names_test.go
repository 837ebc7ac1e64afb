package access

import (
	"errors"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/store"
)

// TestStoredNames: a registered model's name is stored qualified with its
// workspace outside the default one, and shows without it; other
// resource types and the default workspace keep plain names; a name with
// the separator is refused; a model made in a workspace before names
// were per workspace keeps its plain name.
func TestStoredNames(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		o := NewOwners(db, time.Minute)
		if err := o.Set(ctx, ResourceModel, "old", "prod"); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			ws   string
			rt   ResourceType
			name string
			want string
			err  error
		}{
			{DefaultWorkspace, ResourceModel, "churn", "churn", nil},
			{"prod", ResourceModel, "churn", "prod\x1fchurn", nil},
			{"dev", ResourceModel, "churn", "dev\x1fchurn", nil},
			{"prod", ResourceModel, "old", "old", nil},
			{"dev", ResourceModel, "old", "dev\x1fold", nil},
			{"prod", ResourceEndpoint, "churn", "churn", nil},
			{"prod", ResourceExperiment, "42", "42", nil},
			{"prod", ResourceModel, "a\x1fb", "", errdefs.ErrInvalidArgument},
			{DefaultWorkspace, ResourceModel, "prod\x1fchurn", "", errdefs.ErrInvalidArgument},
		} {
			got, err := StoredName(withScope(ctx, o, c.ws), c.rt, c.name)
			if got != c.want || !errors.Is(err, c.err) && (err != nil || c.err != nil) {
				t.Errorf("StoredName(%s, %s, %q) = %q, %v; want %q, %v", c.ws, c.rt, c.name, got, err, c.want, c.err)
			}
			if err == nil && ShownName(got) != c.name {
				t.Errorf("ShownName(%q) = %q, want %q", got, ShownName(got), c.name)
			}
		}
		// Without access control only the default workspace exists.
		if got, err := StoredName(ctx, ResourceModel, "churn"); got != "churn" || err != nil {
			t.Errorf("StoredName without a scope = %q, %v", got, err)
		}
		if ws, explicit, err := o.Owner(ctx, ResourceModel, "prod\x1fchurn"); ws != "prod" || explicit || err != nil {
			t.Errorf("Owner of an unrecorded qualified name = %q, %v, %v; want prod without a row", ws, explicit, err)
		}
		if Visible(withScope(ctx, o, DefaultWorkspace), ResourceModel, "prod\x1fchurn") || !Visible(withScope(ctx, o, "prod"), ResourceModel, "prod\x1fchurn") {
			t.Error("a qualified name is visible outside its workspace, or not in it")
		}
	})
	for _, c := range []struct{ ws, name, want string }{
		{DefaultWorkspace, "exp", "exp"}, {"prod", "exp", "prod\x1fexp"}, {"prod", "  ", "  "},
	} {
		if got, err := ExperimentName(withScope(ctx, nil, c.ws), c.name); got != c.want || err != nil {
			t.Errorf("ExperimentName(%s, %q) = %q, %v; want %q", c.ws, c.name, got, err, c.want)
		}
	}
	if _, err := ExperimentName(ctx, "a\x1fb"); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("ExperimentName of a name with the separator: %v", err)
	}
	for in, want := range map[string]string{
		"Registered Model with name=prod\x1fchurn not found": "Registered Model with name=churn not found",
		"model 'my_ws-1.x\x1fa' and 'b@c\x1fd'":              "model 'a' and 'd'",
		"plain":                                              "plain",
	} {
		if got := ShownText(in); got != want {
			t.Errorf("ShownText(%q) = %q, want %q", in, got, want)
		}
	}
}
