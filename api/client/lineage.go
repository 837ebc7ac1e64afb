package client

import (
	"context"
	"net/url"
	"strconv"

	"github.com/kiln-ml/kiln/lineage"
)

// LineageGraph walks the lineage graph from node (GET /api/v1/lineage); zero
// depth and maxNodes take the server's defaults.
func (c *Client) LineageGraph(ctx context.Context, node string, dir lineage.Direction, depth, maxNodes int) (*lineage.Graph, error) {
	q := url.Values{"node": {node}}
	if dir != "" {
		q.Set("direction", string(dir))
	}
	if depth > 0 {
		q.Set("depth", strconv.Itoa(depth))
	}
	if maxNodes > 0 {
		q.Set("max_nodes", strconv.Itoa(maxNodes))
	}
	var out lineage.Graph
	return &out, c.call(ctx, "GET", c.endpoint(q, "lineage"), nil, &out)
}
