package client

import (
	"context"
	"net/url"
	"strconv"

	"github.com/kiln-ml/kiln/access"
	"github.com/kiln-ml/kiln/api"
)

// WhoAmI returns who the client's credentials are.
func (c *Client) WhoAmI(ctx context.Context) (*access.Principal, error) {
	var out access.Principal
	return &out, c.call(ctx, "GET", c.endpoint(nil, "whoami"), nil, &out)
}

// ListUsers returns the users (server administrators).
func (c *Client) ListUsers(ctx context.Context) ([]*access.User, error) {
	var out struct {
		Users []*access.User `json:"users"`
	}
	return out.Users, c.call(ctx, "GET", c.endpoint(nil, "users"), nil, &out)
}

// CreateUser adds a user or service account.
func (c *Client) CreateUser(ctx context.Context, u access.NewUser) (*access.User, error) {
	var out access.User
	return &out, c.call(ctx, "POST", c.endpoint(nil, "users"), u, &out)
}

// UpdateUser changes a user.
func (c *Client) UpdateUser(ctx context.Context, name string, u access.UserUpdate) (*access.User, error) {
	var out access.User
	return &out, c.call(ctx, "PATCH", c.endpoint(nil, "users", name), u, &out)
}

// DeleteUser removes a user.
func (c *Client) DeleteUser(ctx context.Context, name string) error {
	return c.call(ctx, "DELETE", c.endpoint(nil, "users", name), nil, nil)
}

// ListTokens returns tokens: yours, or user's ("" with an administrator's
// credentials: everyone's).
func (c *Client) ListTokens(ctx context.Context, user string) ([]*access.Token, error) {
	q := url.Values{}
	if user != "" {
		q.Set("user", user)
	}
	var out struct {
		Tokens []*access.Token `json:"tokens"`
	}
	return out.Tokens, c.call(ctx, "GET", c.endpoint(q, "tokens"), nil, &out)
}

// CreateToken makes a token; the answer holds its secret, shown once.
func (c *Client) CreateToken(ctx context.Context, req api.CreateTokenRequest) (*api.CreateTokenResponse, error) {
	var out api.CreateTokenResponse
	return &out, c.call(ctx, "POST", c.endpoint(nil, "tokens"), req, &out)
}

// RevokeToken revokes a token.
func (c *Client) RevokeToken(ctx context.Context, id string) (*access.Token, error) {
	var out access.Token
	return &out, c.call(ctx, "DELETE", c.endpoint(nil, "tokens", id), nil, &out)
}

// ListWorkspaces returns the workspaces.
func (c *Client) ListWorkspaces(ctx context.Context) ([]*access.Workspace, error) {
	var out struct {
		Workspaces []*access.Workspace `json:"workspaces"`
	}
	return out.Workspaces, c.call(ctx, "GET", c.endpoint(nil, "workspaces"), nil, &out)
}

// CreateWorkspace adds a workspace.
func (c *Client) CreateWorkspace(ctx context.Context, w access.Workspace) (*access.Workspace, error) {
	var out access.Workspace
	return &out, c.call(ctx, "POST", c.endpoint(nil, "workspaces"), w, &out)
}

// DeleteWorkspace removes a workspace.
func (c *Client) DeleteWorkspace(ctx context.Context, name string) error {
	return c.call(ctx, "DELETE", c.endpoint(nil, "workspaces", name), nil, nil)
}

// ListGrants returns a workspace's grants (of user, when set).
func (c *Client) ListGrants(ctx context.Context, workspace, user string) ([]*access.Grant, error) {
	q := url.Values{}
	if user != "" {
		q.Set("user", user)
	}
	var out struct {
		Grants []*access.Grant `json:"grants"`
	}
	return out.Grants, c.call(ctx, "GET", c.endpoint(q, "workspaces", workspace, "grants"), nil, &out)
}

// PutGrant gives or changes a grant.
func (c *Client) PutGrant(ctx context.Context, g access.Grant) (*access.Grant, error) {
	var out access.Grant
	return &out, c.call(ctx, "PUT", c.endpoint(nil, "workspaces", g.Workspace, "grants"), g, &out)
}

// DeleteGrant removes a grant.
func (c *Client) DeleteGrant(ctx context.Context, g access.Grant) error {
	q := url.Values{"user": {g.User}}
	if g.ResourceType != "" {
		q.Set("resource_type", string(g.ResourceType))
		q.Set("resource", g.Resource)
	}
	return c.call(ctx, "DELETE", c.endpoint(q, "workspaces", g.Workspace, "grants"), nil, nil)
}

// AuditEvents returns a page of the audit log after sequence number after.
func (c *Client) AuditEvents(ctx context.Context, after int64, actor string, limit int) ([]*access.Event, error) {
	q := url.Values{"after": {strconv.FormatInt(after, 10)}}
	if actor != "" {
		q.Set("actor", actor)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out struct {
		Events []*access.Event `json:"events"`
	}
	return out.Events, c.call(ctx, "GET", c.endpoint(q, "audit"), nil, &out)
}

// VerifyAudit asks the server to walk its audit chain.
func (c *Client) VerifyAudit(ctx context.Context) (*access.Verification, error) {
	var out access.Verification
	return &out, c.call(ctx, "GET", c.endpoint(nil, "audit", "verify"), nil, &out)
}
