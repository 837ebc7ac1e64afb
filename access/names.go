package access

import (
	"context"
	"strings"

	"github.com/kiln-ml/kiln/errdefs"
)

// Names of registered models are per workspace: dev and prod may both
// have a model "churn". The registry keeps one namespace, so a model of a
// workspace other than DefaultWorkspace is stored under a qualified name,
// the workspace, NameSeparator and the name ("prod\x1fchurn"); the default
// workspace keeps plain names, so a server that uses only it stores
// nothing differently. Handlers translate at the edges: StoredName on
// what a request names, ShownName on what an answer shows. A user-facing
// name never contains NameSeparator (StoredName refuses it), and no
// workspace name does (ValidateName), so a stored name says which
// workspace owns it.
//
// A model created in a workspace before names were per workspace keeps
// its plain stored name (its owner is a workspace_resources row) and is
// still found by that name in its workspace.
//
// Experiment names are qualified the same way (ExperimentName), but
// experiments are owned by id: the handler looks for one made before
// names were per workspace under its plain name. Endpoint names are not
// qualified: they are still shared by all workspaces.

// NameSeparator separates the workspace from the name in a stored name.
const NameSeparator = "\x1f"

// qualified reports whether a resource type's names are per workspace.
func qualified(rt ResourceType) bool { return rt == ResourceModel }

// StoredName returns the name under which the request of ctx's workspace
// stores the resource it calls name (unchanged for other resource types
// than registered models, and in DefaultWorkspace). A name containing
// NameSeparator is refused.
func StoredName(ctx context.Context, rt ResourceType, name string) (string, error) {
	return StoredNameIn(ctx, rt, RequestWorkspace(ctx), name)
}

// StoredNameIn is StoredName for workspace ws (a model version copied to
// another workspace).
func StoredNameIn(ctx context.Context, rt ResourceType, ws, name string) (string, error) {
	var o *Owners
	if s, _ := ctx.Value(scopeKey{}).(*scope); s != nil {
		o = s.owners
	}
	return o.StoredName(ctx, rt, ws, name)
}

// StoredName returns the name under which workspace ws stores the
// resource it calls name (see the package's StoredName). o may be nil
// (no ownership records: no model made before names were per workspace
// is looked for).
func (o *Owners) StoredName(ctx context.Context, rt ResourceType, ws, name string) (string, error) {
	if !qualified(rt) {
		return name, nil
	}
	if strings.Contains(name, NameSeparator) {
		return "", errdefs.Invalid("Invalid %s name '%s': it may not contain the control character U+001F", strings.ToLower(resourceTitle(rt)), clip(strings.ReplaceAll(name, NameSeparator, "\\x1f")))
	}
	if ws == DefaultWorkspace || ws == "" {
		return name, nil
	}
	if o != nil {
		// Made in ws before names were per workspace: a row says so.
		owner, explicit, err := o.Owner(ctx, rt, name)
		if err != nil {
			return "", err
		}
		if explicit && owner == ws {
			return name, nil
		}
	}
	return ws + NameSeparator + name, nil
}

// EndpointModel returns the stored name of the registered model an
// endpoint's document names: the model of the endpoint's workspace.
func (o *Owners) EndpointModel(ctx context.Context, endpoint, model string) (string, error) {
	ws, _, err := o.Owner(ctx, ResourceEndpoint, endpoint)
	if err != nil {
		return "", err
	}
	return o.StoredName(ctx, ResourceModel, ws, model)
}

// ClaimNow records at once that the request's workspace owns a resource
// about to be made (before the handler makes it, unlike the middleware's
// record after it: an endpoint's model references are resolved in its
// workspace while it is created). It returns OwnedElsewhere for a name
// another workspace owns, and a function that forgets the claim (the
// resource was not made after all). Outside the default workspace it
// needs the workspace scope of access control.
func ClaimNow(ctx context.Context, rt ResourceType, name string) (undo func(context.Context), err error) {
	ws := RequestWorkspace(ctx)
	claim, err := Claim(ctx, rt, name, ws, false)
	if err != nil {
		return nil, err
	}
	s, _ := ctx.Value(scopeKey{}).(*scope)
	if ws == DefaultWorkspace || s == nil || s.owners == nil {
		return func(context.Context) {}, nil
	}
	if err := claim(ctx); err != nil {
		return nil, err
	}
	return func(ctx context.Context) { _ = s.owners.Remove(ctx, rt, name) }, nil
}

// ShownName returns the name a stored name shows as: without its
// workspace ("prod\x1fchurn" shows as "churn"). Handlers check first that
// the request may see the resource, so the workspace is the request's.
func ShownName(stored string) string {
	if _, name, ok := strings.Cut(stored, NameSeparator); ok {
		return name
	}
	return stored
}

// SplitStoredName returns the workspace a stored name is qualified with
// and the name it shows as; ok is false for a plain name (of the default
// workspace, or made before names were per workspace).
func SplitStoredName(stored string) (ws, name string, ok bool) {
	return strings.Cut(stored, NameSeparator)
}

// ShownText removes the workspace qualifiers of stored names from a text
// (an error message that quotes a stored name).
func ShownText(s string) string {
	for {
		i := strings.Index(s, NameSeparator)
		if i < 0 {
			return s
		}
		j := i
		for j > 0 && isNameByte(s[j-1]) {
			j--
		}
		s = s[:j] + s[i+len(NameSeparator):]
	}
}

// isNameByte reports whether c may be in a workspace name.
func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '@' || c == '-'
}

// ExperimentName returns the name under which the request of ctx's
// workspace stores the experiment it calls name: as StoredName does for
// models, without looking for an experiment made before names were per
// workspace (experiments are owned by id: the handler looks its plain
// name up). A blank name is returned as it is, for the store to refuse.
func ExperimentName(ctx context.Context, name string) (string, error) {
	if strings.Contains(name, NameSeparator) {
		return "", errdefs.Invalid("Invalid experiment name '%s': it may not contain the control character U+001F", clip(strings.ReplaceAll(name, NameSeparator, "\\x1f")))
	}
	ws := RequestWorkspace(ctx)
	if ws == DefaultWorkspace || strings.TrimSpace(name) == "" {
		return name, nil
	}
	return ws + NameSeparator + name, nil
}
