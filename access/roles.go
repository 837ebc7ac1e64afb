package access

import (
	"slices"

	"github.com/kiln-ml/kiln/errdefs"
)

// Role is what a grant gives: each role can do what the ones before it
// can, and more.
type Role string

const (
	// RoleViewer reads everything in its scope and calls endpoints.
	RoleViewer Role = "viewer"
	// RoleEditor also writes: runs, metrics, artifacts, model versions,
	// dataset versions, pipeline runs, feedback.
	RoleEditor Role = "editor"
	// RoleMaintainer also manages: deletes, aliases and stages, endpoint
	// deployments and rollouts, pipelines (which run commands), monitors,
	// gate policies and alert receivers.
	RoleMaintainer Role = "maintainer"
	// RoleAdmin also grants roles in its workspace.
	RoleAdmin Role = "admin"
)

// Roles lists the roles, weakest first.
var Roles = []Role{RoleViewer, RoleEditor, RoleMaintainer, RoleAdmin}

func (r Role) rank() int { return slices.Index(Roles, r) + 1 } // 0: not a role

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	if r := Role(s); r.rank() > 0 {
		return r, nil
	}
	return "", errdefs.Invalid("%q is not a role: use viewer, editor, maintainer or admin", clip(s))
}

// Action is what a route does, in increasing order of power.
type Action string

const (
	// ActionPublic needs no identity (health checks, the login form,
	// signed webhooks).
	ActionPublic Action = "public"
	// ActionAuthenticated needs an identity but no role (whoami, your
	// own tokens, /metrics, unknown routes' 404s).
	ActionAuthenticated Action = "authenticated"
	// ActionPredict calls an endpoint (inference, explanations).
	ActionPredict Action = "predict"
	ActionRead    Action = "read"
	ActionWrite   Action = "write"
	ActionManage  Action = "manage"
	// ActionGrant manages a workspace's role grants.
	ActionGrant Action = "grant"
	// ActionServerAdmin is for server administrators only: users, the
	// audit log, workspaces.
	ActionServerAdmin Action = "server-admin"
)

// minRole is the weakest role allowed an action ("" for actions no role
// gives or none needs).
func (a Action) minRole() Role {
	switch a {
	case ActionPredict, ActionRead:
		return RoleViewer
	case ActionWrite:
		return RoleEditor
	case ActionManage:
		return RoleMaintainer
	case ActionGrant:
		return RoleAdmin
	}
	return ""
}

// Allows reports whether a role may take an action that roles govern.
func (r Role) Allows(a Action) bool {
	m := a.minRole()
	return m != "" && r.rank() >= m.rank()
}

// Scope narrows a token below its user's roles.
type Scope string

const (
	ScopePredict Scope = "predict" // inference only
	ScopeRead    Scope = "read"    // read and predict
	ScopeWrite   Scope = "write"   // read, predict and write
	ScopeAll     Scope = "all"     // whatever the user may do
)

// ParseScope checks a scope name ("" is all).
func ParseScope(s string) (Scope, error) {
	switch Scope(s) {
	case "":
		return ScopeAll, nil
	case ScopePredict, ScopeRead, ScopeWrite, ScopeAll:
		return Scope(s), nil
	}
	return "", errdefs.Invalid("%q is not a token scope: use predict, read, write or all", clip(s))
}

// allows reports whether a token of scope s may take action a.
func (s Scope) allows(a Action) bool {
	switch s {
	case ScopePredict:
		return a == ActionPublic || a == ActionAuthenticated || a == ActionPredict
	case ScopeRead:
		return a == ActionPublic || a == ActionAuthenticated || a == ActionPredict || a == ActionRead
	case ScopeWrite:
		return a != ActionManage && a != ActionGrant && a != ActionServerAdmin
	}
	return true
}

// ResourceType is the kind of resource a grant may name.
type ResourceType string

const (
	ResourceWorkspace  ResourceType = "" // the whole workspace
	ResourceExperiment ResourceType = "experiment"
	ResourceModel      ResourceType = "registered_model"
	ResourceEndpoint   ResourceType = "endpoint"
)

// ParseResourceType checks a resource type.
func ParseResourceType(s string) (ResourceType, error) {
	switch t := ResourceType(s); t {
	case ResourceWorkspace, ResourceExperiment, ResourceModel, ResourceEndpoint:
		return t, nil
	}
	return "", errdefs.Invalid("%q is not a resource type: use experiment, registered_model or endpoint (or none for the whole workspace)", clip(s))
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
