package client

import (
	"context"

	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/feature"
)

// TrainingSet asks the server for a point-in-time correct training set
// (POST /training-sets) and returns the version of req.Output.Dataset
// that holds it. req.Entities must name a dataset version; push a local
// entity file first (kiln data add) — the server reads no client paths.
func (c *Client) TrainingSet(ctx context.Context, req feature.TrainingSetRequest) (*dataset.Version, error) {
	var out dataset.Version
	if err := c.call(ctx, "POST", c.endpoint(nil, "training-sets"), req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
