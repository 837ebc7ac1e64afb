package client

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strconv"

	"github.com/kiln-ml/kiln/lineage"
)

// maxCardBytes bounds a rendered card read by ModelCardText.
const maxCardBytes = 64 << 20

func (c *Client) cardURL(model string, version int64, q url.Values) string {
	return c.endpoint(q, "models", model, "versions", strconv.FormatInt(version, 10), "card")
}

// ModelCard returns a model version's card.
func (c *Client) ModelCard(ctx context.Context, model string, version int64) (*lineage.ModelCard, error) {
	var out lineage.ModelCard
	if err := c.call(ctx, "GET", c.cardURL(model, version, nil), nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ModelCardText returns a model version's card rendered by the server:
// format is json, markdown or html.
func (c *Client) ModelCardText(ctx context.Context, model string, version int64, format string) ([]byte, error) {
	req, err := c.newRequest(ctx, "GET", c.cardURL(model, version, url.Values{"format": {format}}), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.send(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxCardBytes+1))
	if err != nil {
		return nil, fmt.Errorf("kiln server %s: read the model card: %w", c.base, err)
	}
	if len(data) > maxCardBytes {
		return nil, fmt.Errorf("kiln server %s: the model card is over %d bytes", c.base, maxCardBytes)
	}
	return data, nil
}

// EditModelCard changes the edited text of a model version's card (nil
// fields are kept, empty ones cleared) and returns the card.
func (c *Client) EditModelCard(ctx context.Context, model string, version int64, edit lineage.CardEdit) (*lineage.ModelCard, error) {
	var out lineage.ModelCard
	if err := c.call(ctx, "PUT", c.cardURL(model, version, nil), edit, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
