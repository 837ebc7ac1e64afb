package client

import (
	"context"
	"net/url"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/approval"
)

// ListApprovalPolicies returns the approval policies (of model, if set).
func (c *Client) ListApprovalPolicies(ctx context.Context, model string) ([]*approval.Policy, error) {
	q := url.Values{}
	if model != "" {
		q.Set("model", model)
	}
	var out struct {
		Policies []*approval.Policy `json:"policies"`
	}
	return out.Policies, c.call(ctx, "GET", c.endpoint(q, "approval-policies"), nil, &out)
}

// PutApprovalPolicy creates or replaces a policy.
func (c *Client) PutApprovalPolicy(ctx context.Context, p approval.Policy) (*approval.Policy, error) {
	var out approval.Policy
	return &out, c.call(ctx, "PUT", c.endpoint(nil, "approval-policies", p.Name), p, &out)
}

// DeleteApprovalPolicy removes a policy.
func (c *Client) DeleteApprovalPolicy(ctx context.Context, name string) error {
	return c.call(ctx, "DELETE", c.endpoint(nil, "approval-policies", name), nil, nil)
}

// RequestApproval asks for a move to be approved.
func (c *Client) RequestApproval(ctx context.Context, r approval.NewRequest) (*approval.Request, error) {
	var out approval.Request
	return &out, c.call(ctx, "POST", c.endpoint(nil, "approval-requests"), r, &out)
}

// ListApprovalRequests returns requests, newest first.
func (c *Client) ListApprovalRequests(ctx context.Context, model, state string) ([]*approval.Request, error) {
	q := url.Values{}
	if model != "" {
		q.Set("model", model)
	}
	if state != "" {
		q.Set("state", state)
	}
	var out struct {
		Requests []*approval.Request `json:"requests"`
	}
	return out.Requests, c.call(ctx, "GET", c.endpoint(q, "approval-requests"), nil, &out)
}

// DecideApproval approves or rejects a request.
func (c *Client) DecideApproval(ctx context.Context, id, decision, comment string) (*approval.Request, error) {
	var out approval.Request
	return &out, c.call(ctx, "POST", c.endpoint(nil, "approval-requests", id, decision), api.DecisionRequest{Comment: comment}, &out)
}
