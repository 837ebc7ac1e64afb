package client

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/dataset"
)

// Remote is the content store of a Kiln server as a dataset.Remote, so
// that dataset.Push, Fetch and Pull move objects over the API:
//
//	POST /api/v1/content/objects/missing   (Has, in batches)
//	PUT  /api/v1/content/objects/{digest}  (Put; the server verifies)
//	POST /api/v1/content/objects           (PutBatch: a tar stream of objects)
//	GET  /api/v1/content/objects/{digest}  (Get; the caller verifies)
//	PUT  /api/v1/content/manifests/{digest}
//	GET  /api/v1/content/manifests/{digest}
type Remote struct {
	c *Client
}

var _ dataset.BatchRemote = (*Remote)(nil)

// Remote returns the server's content store.
func (c *Client) Remote() *Remote { return &Remote{c: c} }

// Has asks which objects the server lacks, MaxMissingBatch at a time.
func (r *Remote) Has(ctx context.Context, ds []dataset.Digest) ([]dataset.Digest, error) {
	missing := []dataset.Digest{}
	for len(ds) > 0 {
		n := min(len(ds), api.MaxMissingBatch)
		var out api.MissingResponse
		if err := r.c.call(ctx, "POST", r.c.endpoint(nil, "content", "objects", "missing"), api.MissingRequest{Digests: ds[:n]}, &out); err != nil {
			return nil, err
		}
		missing = append(missing, out.Missing...)
		ds = ds[n:]
	}
	return missing, nil
}

// Put uploads an object. It is verified on the way out (a source file
// that changed since it was hashed fails before its last byte is sent)
// and again by the server, which stores nothing on a mismatch. Either
// way the error matches dataset.ErrDigestMismatch.
func (r *Remote) Put(ctx context.Context, d dataset.Digest, size int64, body io.Reader) error {
	vr := &recordingReader{r: dataset.NewVerifyingReader(body, d, size)}
	req, err := r.c.newRequest(ctx, "PUT", r.c.endpoint(nil, "content", "objects", d.String()), vr)
	if err != nil {
		return err
	}
	// With a known length the request announces it and the server checks
	// it; without one (size < 0) it is sent chunked.
	req.ContentLength = size
	if size == 0 {
		req.Body = http.NoBody
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := r.c.send(req)
	if err != nil {
		if vr.err != nil && errors.Is(vr.err, dataset.ErrDigestMismatch) {
			return vr.err
		}
		return err
	}
	io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// PutBatch uploads many objects in one request, a tar stream whose entry
// names are the digests. Each object is verified on the way out and again
// by the server, which acknowledges them all together.
func (r *Remote) PutBatch(ctx context.Context, objs []dataset.BatchObject) error {
	pr, pw := io.Pipe()
	var srcErr error // an error of a source, which the transport would hide
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Buffered, so that the transport sends large chunks rather than
		// one per tar header and object.
		bw := bufio.NewWriterSize(pw, 256<<10)
		tw := tar.NewWriter(bw)
		err := func() error {
			for _, o := range objs {
				if err := tw.WriteHeader(&tar.Header{Name: o.Digest.String(), Size: o.Size, Mode: 0o644, Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}); err != nil {
					return err
				}
				rc, err := o.Open(ctx)
				if err != nil {
					srcErr = err
					return err
				}
				_, err = io.Copy(tw, dataset.NewVerifyingReader(rc, o.Digest, o.Size))
				rc.Close()
				if err != nil {
					if errors.Is(err, dataset.ErrDigestMismatch) {
						srcErr = err
					}
					return err
				}
			}
			if err := tw.Close(); err != nil {
				return err
			}
			return bw.Flush()
		}()
		pw.CloseWithError(err)
	}()
	req, err := r.c.newRequest(ctx, "POST", r.c.endpoint(nil, "content", "objects"), pr)
	if err != nil {
		pr.Close()
		return err
	}
	req.Header.Set("Content-Type", "application/x-tar")
	resp, err := r.c.send(req)
	pr.Close()
	<-done
	if err != nil {
		if srcErr != nil {
			return srcErr
		}
		return err
	}
	io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// recordingReader keeps the first error other than io.EOF that its
// reader returned, which the HTTP transport would otherwise hide.
type recordingReader struct {
	r   io.Reader
	err error
}

func (r *recordingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF && r.err == nil {
		r.err = err
	}
	return n, err
}

// Get opens an object for reading. The caller verifies what it reads.
func (r *Remote) Get(ctx context.Context, d dataset.Digest) (io.ReadCloser, error) {
	req, err := r.c.newRequest(ctx, "GET", r.c.endpoint(nil, "content", "objects", d.String()), nil)
	if err != nil {
		return nil, err
	}
	resp, err := r.c.send(req)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// PutManifest uploads m's canonical encoding. The server refuses a
// manifest that names objects it does not hold.
func (r *Remote) PutManifest(ctx context.Context, m *dataset.Manifest) (dataset.Digest, error) {
	if err := m.Validate(); err != nil {
		return dataset.Digest{}, err
	}
	data := m.Encode()
	d := dataset.Sum(data)
	req, err := r.c.newRequest(ctx, "PUT", r.c.endpoint(nil, "content", "manifests", d.String()), bytes.NewReader(data))
	if err != nil {
		return dataset.Digest{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.c.send(req)
	if err != nil {
		return dataset.Digest{}, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return d, nil
}

// GetManifest downloads a manifest, checks that it hashes to d and
// decodes it.
func (r *Remote) GetManifest(ctx context.Context, d dataset.Digest) (*dataset.Manifest, error) {
	req, err := r.c.newRequest(ctx, "GET", r.c.endpoint(nil, "content", "manifests", d.String()), nil)
	if err != nil {
		return nil, err
	}
	resp, err := r.c.send(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, dataset.MaxManifestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", d, err)
	}
	if got := dataset.Sum(data); got != d {
		return nil, fmt.Errorf("manifest %s: the server sent content that hashes to %s: %w", d, got, dataset.ErrDigestMismatch)
	}
	return dataset.DecodeManifest(data)
}
