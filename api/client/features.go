package client

import (
	"context"
	"net/url"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/feature"
)

// ApplyEntity creates or updates an entity (PUT /entities/{name}); the
// answer says the version and whether it is new.
func (c *Client) ApplyEntity(ctx context.Context, e *feature.Entity, actor string) (*api.ApplyEntityResponse, error) {
	var out api.ApplyEntityResponse
	return &out, c.callAs(ctx, "PUT", c.endpoint(nil, "entities", e.Metadata.Name), actor, e, &out)
}

// ApplyFeatureView creates or updates a feature view (PUT
// /feature-views/{name}).
func (c *Client) ApplyFeatureView(ctx context.Context, v *feature.FeatureView, actor string) (*api.ApplyFeatureViewResponse, error) {
	var out api.ApplyFeatureViewResponse
	return &out, c.callAs(ctx, "PUT", c.endpoint(nil, "feature-views", v.Metadata.Name), actor, v, &out)
}

// Entities lists the entities.
func (c *Client) Entities(ctx context.Context) ([]*feature.EntityVersion, error) {
	var out api.EntityList
	return out.Entities, c.call(ctx, "GET", c.endpoint(nil, "entities"), nil, &out)
}

func versionQuery(version int64) url.Values {
	if version == 0 {
		return nil
	}
	return url.Values{"version": {strconv.FormatInt(version, 10)}}
}

// Entity returns a version of an entity (0: the latest).
func (c *Client) Entity(ctx context.Context, name string, version int64) (*feature.EntityVersion, error) {
	var out feature.EntityVersion
	return &out, c.call(ctx, "GET", c.endpoint(versionQuery(version), "entities", name), nil, &out)
}

// DeleteEntity deletes an entity (refused while a feature view uses it).
func (c *Client) DeleteEntity(ctx context.Context, name string) error {
	return c.call(ctx, "DELETE", c.endpoint(nil, "entities", name), nil, nil)
}

// FeatureViews lists the feature views.
func (c *Client) FeatureViews(ctx context.Context) ([]*feature.ViewVersion, error) {
	var out api.FeatureViewList
	return out.FeatureViews, c.call(ctx, "GET", c.endpoint(nil, "feature-views"), nil, &out)
}

// FeatureView returns a version of a feature view (0: the latest).
func (c *Client) FeatureView(ctx context.Context, name string, version int64) (*feature.ViewVersion, error) {
	var out feature.ViewVersion
	return &out, c.call(ctx, "GET", c.endpoint(versionQuery(version), "feature-views", name), nil, &out)
}

// FeatureViewVersions lists every version of a feature view, newest
// first.
func (c *Client) FeatureViewVersions(ctx context.Context, name string) ([]*feature.ViewVersion, error) {
	var out api.FeatureViewVersions
	return out.Versions, c.call(ctx, "GET", c.endpoint(nil, "feature-views", name, "versions"), nil, &out)
}

// DeleteFeatureView deletes a feature view and its online rows.
func (c *Client) DeleteFeatureView(ctx context.Context, name string) error {
	return c.call(ctx, "DELETE", c.endpoint(nil, "feature-views", name), nil, nil)
}

// Materialize loads a feature view's latest rows into the online store
// and returns the recorded materialization.
func (c *Client) Materialize(ctx context.Context, name string, req api.MaterializeRequest) (*feature.Materialization, error) {
	var out feature.Materialization
	return &out, c.call(ctx, "POST", c.endpoint(nil, "feature-views", name, "materialize"), req, &out)
}

// Materializations lists a feature view's materializations, newest
// first.
func (c *Client) Materializations(ctx context.Context, name string, limit int) ([]*feature.Materialization, error) {
	var q url.Values
	if limit > 0 {
		q = url.Values{"limit": {strconv.Itoa(limit)}}
	}
	var out api.MaterializationList
	return out.Materializations, c.call(ctx, "GET", c.endpoint(q, "feature-views", name, "materializations"), nil, &out)
}

// OnlineFeatures looks features up in the online store (POST
// /features/online). Entity values are JSON values: numbers, strings or
// booleans.
func (c *Client) OnlineFeatures(ctx context.Context, features []string, entities map[string][]any, useDefaults bool) (*api.OnlineFeaturesResponse, error) {
	body := map[string]any{"features": features, "entities": entities}
	if useDefaults {
		body["use_defaults"] = true
	}
	var out api.OnlineFeaturesResponse
	return &out, c.call(ctx, "POST", c.endpoint(nil, "features", "online"), body, &out)
}

// FeatureRefs splits "v:f,v:g" into references.
func FeatureRefs(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
