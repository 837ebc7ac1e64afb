package client

import (
	"context"
	"net/url"
	"strconv"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/deploy/gate"
)

// ListGatePolicies returns the server's gate policies.
func (c *Client) ListGatePolicies(ctx context.Context) (*api.GatePolicyList, error) {
	var out api.GatePolicyList
	return &out, c.call(ctx, "GET", c.endpoint(nil, "gate-policies"), nil, &out)
}

// EvaluateGate evaluates a model version under a policy and returns the
// stored result (passed or not; an error means no evaluation happened).
func (c *Client) EvaluateGate(ctx context.Context, policy string, req api.EvaluateGateRequest) (*gate.Result, error) {
	var out gate.Result
	if err := c.call(ctx, "POST", c.endpoint(nil, "gate-policies", policy, "evaluate"), req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GateResults lists a model version's gate results, of one policy when
// policy is not empty.
func (c *Client) GateResults(ctx context.Context, model string, version int64, policy string) (*api.GateResultList, error) {
	q := url.Values{}
	if policy != "" {
		q.Set("policy", policy)
	}
	var out api.GateResultList
	return &out, c.call(ctx, "GET", c.endpoint(q, "models", model, "versions", strconv.FormatInt(version, 10), "gate-results"), nil, &out)
}
