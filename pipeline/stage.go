package pipeline

import (
	"context"

	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/registry"
	"github.com/kiln-ml/kiln/tracking"
)

// NewBucketStager returns a Stager over the server's own stores.
func NewBucketStager(b *blob.Bucket, t *tracking.Store, r *registry.Store, d *dataset.Store) Stager {
	return &bucketStager{b: b, t: t, r: r, d: d}
}

type bucketStager struct {
	b *blob.Bucket
	t *tracking.Store
	r *registry.Store
	d *dataset.Store
}

func (s *bucketStager) Fetch(ctx context.Context, uri, dst string) error {
	return errdefs.NotImplemented("staging is not implemented yet")
}

func (s *bucketStager) Store(ctx context.Context, src, uri string) error {
	return errdefs.NotImplemented("staging is not implemented yet")
}
