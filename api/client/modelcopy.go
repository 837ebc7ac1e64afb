package client

import (
	"context"
	"strconv"

	"github.com/kiln-ml/kiln/api"
)

// CopyModelVersion copies a model version of the client's workspace to a
// registered model of another workspace (created there when absent) and
// returns the new version.
func (c *Client) CopyModelVersion(ctx context.Context, model string, version int64, req api.CopyModelVersionRequest) (*api.ModelVersion, error) {
	var out api.ModelVersion
	u := c.endpoint(nil, "models", model, "versions", strconv.FormatInt(version, 10), "copy")
	if err := c.call(ctx, "POST", u, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
