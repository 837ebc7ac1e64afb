package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/deploy"
	"github.com/kiln-ml/kiln/errdefs"
)

// ChangeOptions say who makes a change and why (both recorded in the
// endpoint's events), and whether it is only a dry run.
type ChangeOptions struct {
	Actor  string
	Reason string
	DryRun bool
}

func (o ChangeOptions) query() url.Values {
	q := url.Values{}
	if o.Reason != "" {
		q.Set("reason", o.Reason)
	}
	if o.DryRun {
		q.Set("dry_run", "true")
	}
	return q
}

// callAs is call with the actor header. An invalid document's error
// carries its field errors: errors.As(err, &deploy.FieldErrors{}) finds
// them, with the paths the server named.
func (c *Client) callAs(ctx context.Context, method, u, actor string, in, out any) error {
	var body io.Reader
	if in != nil {
		data, ok := in.(json.RawMessage)
		if !ok {
			var err error
			if data, err = json.Marshal(in); err != nil {
				return err
			}
		}
		body = bytes.NewReader(data)
	}
	req, err := c.newRequest(ctx, method, u, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if actor != "" {
		req.Header.Set(api.ActorHeader, actor)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("kiln server %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return detailedError(resp)
	}
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	if raw, ok := out.(*json.RawMessage); ok {
		data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		*raw = data
		return err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("kiln server %s: decode the answer to %s %s: %w", c.base, method, req.URL.Path, err)
	}
	return nil
}

// detailedError is responseError, keeping the field details of an
// invalid document.
func detailedError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body = io.NopCloser(bytes.NewReader(data))
	err := responseError(resp)
	var body api.ErrorBody
	if json.Unmarshal(data, &body) != nil || len(body.Error.Details) == 0 {
		return err
	}
	fes := make(deploy.FieldErrors, len(body.Error.Details))
	for i, d := range body.Error.Details {
		fes[i] = &deploy.FieldError{Path: d.Path, Msg: d.Message}
	}
	return &errdefs.Error{Kind: errdefs.ErrInvalidArgument, Msg: body.Error.Message, Err: fes}
}

// ApplyEndpoint creates or changes an endpoint (or, with DryRun, says
// what applying would change).
func (c *Client) ApplyEndpoint(ctx context.Context, e *deploy.Endpoint, o ChangeOptions) (*api.ApplyEndpointResponse, error) {
	var out api.ApplyEndpointResponse
	return &out, c.callAs(ctx, "PUT", c.endpoint(o.query(), "endpoints", e.Metadata.Name), o.Actor, e, &out)
}

// GetEndpoint returns an endpoint's document and status.
func (c *Client) GetEndpoint(ctx context.Context, name string) (*deploy.State, error) {
	var out deploy.State
	return &out, c.call(ctx, "GET", c.endpoint(nil, "endpoints", name), nil, &out)
}

// ListEndpoints returns every endpoint, by name.
func (c *Client) ListEndpoints(ctx context.Context) ([]*deploy.State, error) {
	var out api.EndpointList
	return out.Endpoints, c.call(ctx, "GET", c.endpoint(nil, "endpoints"), nil, &out)
}

// DeleteEndpoint deletes an endpoint.
func (c *Client) DeleteEndpoint(ctx context.Context, name string, o ChangeOptions) error {
	return c.callAs(ctx, "DELETE", c.endpoint(o.query(), "endpoints", name), o.Actor, nil, nil)
}

// Rollout runs a rollout action (promote, pause, resume, rollback) on an
// endpoint and returns its state after it.
func (c *Client) Rollout(ctx context.Context, name, action string, o ChangeOptions) (*deploy.State, error) {
	var out deploy.State
	return &out, c.callAs(ctx, "POST", c.endpoint(nil, "endpoints", name, "rollout", action), o.Actor, api.RolloutRequest{Reason: o.Reason}, &out)
}

// EndpointEvents returns an endpoint's last events, newest first (limit
// 0: the server's default).
func (c *Client) EndpointEvents(ctx context.Context, name string, limit int) ([]deploy.Event, error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out api.EventList
	return out.Events, c.call(ctx, "GET", c.endpoint(q, "endpoints", name, "events"), nil, &out)
}

// EndpointStats returns the live figures of an endpoint.
func (c *Client) EndpointStats(ctx context.Context, name string) ([]deploy.RouteStats, error) {
	var out api.EndpointStats
	return out.Stats, c.call(ctx, "GET", c.endpoint(nil, "endpoints", name, "stats"), nil, &out)
}

// PutDocument sends a declarative document (JSON) to PUT
// /api/v1/{collection}/{name} (gate-policies, …) and returns the answer
// as it came.
func (c *Client) PutDocument(ctx context.Context, collection, name string, doc json.RawMessage, o ChangeOptions) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.callAs(ctx, "PUT", c.endpoint(o.query(), collection, name), o.Actor, doc, &out)
}

// GetDocument returns GET /api/v1/{collection}[/{name}] as it came.
func (c *Client) GetDocument(ctx context.Context, collection string, name ...string) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.callAs(ctx, "GET", c.endpoint(nil, append([]string{collection}, name...)...), "", nil, &out)
}

// DeleteDocument deletes /api/v1/{collection}/{name}.
func (c *Client) DeleteDocument(ctx context.Context, collection, name string, o ChangeOptions) error {
	return c.callAs(ctx, "DELETE", c.endpoint(o.query(), collection, name), o.Actor, nil, nil)
}
