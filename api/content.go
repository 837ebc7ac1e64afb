package api

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/errdefs"
)

// The content store: objects (file contents by BLAKE3 digest) and
// manifests, shared by every dataset. These routes are what the HTTP
// Remote of package api/client speaks.
func (h *Handler) registerContent(mux Mux) {
	h.handle(mux, "POST", "/content/objects/missing", h.missingObjects)
	h.handle(mux, "POST", "/content/objects", h.putObjects)
	h.handle(mux, "PUT", "/content/objects/{digest}", h.putObject)
	h.handle(mux, "GET", "/content/objects/{digest}", h.getObject)
	h.handle(mux, "PUT", "/content/manifests/{digest}", h.putManifest)
	h.handle(mux, "GET", "/content/manifests/{digest}", h.getManifest)
}

func (h *Handler) missingObjects(w http.ResponseWriter, r *http.Request) error {
	var req MissingRequest
	// 64 hex digits and quotes and a comma per digest, and some slack.
	if err := decodeJSON(w, r, MaxMissingBatch*70+1024, &req, false); err != nil {
		return err
	}
	if len(req.Digests) > MaxMissingBatch {
		return errdefs.Invalid("At most %d digests per request, not %d", MaxMissingBatch, len(req.Digests))
	}
	missing, err := h.d.Content.Has(r.Context(), req.Digests)
	if err != nil {
		return err
	}
	if missing == nil {
		missing = []dataset.Digest{}
	}
	writeJSON(w, http.StatusOK, MissingResponse{Missing: missing})
	return nil
}

// putObject streams the body into the content store, verified against
// the digest in the path (and the Content-Length, when given): a mismatch
// stores nothing and answers DIGEST_MISMATCH.
func (h *Handler) putObject(w http.ResponseWriter, r *http.Request) error {
	d, err := digestParam(r)
	if err != nil {
		return err
	}
	size := r.ContentLength // -1 when the client streams without a length
	if err := h.d.Content.Put(r.Context(), d, size, r.Body); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, struct {
		Digest dataset.Digest `json:"digest"`
	}{d})
	return nil
}

// MaxBatchBody bounds the body of one batch upload (a tar of objects).
const MaxBatchBody = 256 << 20

// batchContent is a content store that acknowledges many objects at once.
type batchContent interface {
	NewBatchWriter() *dataset.BatchWriter
}

// putObjects stores a batch of objects sent as a tar stream (entry name =
// digest, entry size = object size), each verified like putObject; they
// are acknowledged together, after one durability barrier. Any bad entry
// fails the whole request, and no object of it is acknowledged.
func (h *Handler) putObjects(w http.ResponseWriter, r *http.Request) error {
	if ct := r.Header.Get("Content-Type"); ct != "application/x-tar" {
		return errdefs.Invalid("A batch of objects is a tar stream: Content-Type must be application/x-tar, not %q", ct)
	}
	body := http.MaxBytesReader(w, r.Body, MaxBatchBody)
	ctx := r.Context()
	put := h.d.Content.Put
	var bw *dataset.BatchWriter
	if bc, ok := h.d.Content.(batchContent); ok {
		bw = bc.NewBatchWriter()
		defer bw.Abort()
		put = bw.Put
	}
	tr := tar.NewReader(body)
	n := 0
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				return err
			}
			return errdefs.Invalid("Malformed tar stream after %d objects: %v", n, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			return errdefs.Invalid("Tar entry %q is not a regular file", hdr.Name)
		}
		d, err := dataset.ParseDigest(hdr.Name)
		if err != nil {
			return errdefs.Invalid("Tar entry %q: the name must be the object's digest: %v", hdr.Name, errdefs.Message(err))
		}
		if err := put(ctx, d, hdr.Size, tr); err != nil {
			var tooBig *http.MaxBytesError
			if errors.Is(err, io.ErrUnexpectedEOF) && !errors.As(err, &tooBig) {
				return errdefs.Invalid("Truncated tar stream: object %s ends early", d)
			}
			return err
		}
		n++
	}
	if bw != nil {
		if err := bw.Commit(ctx); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusCreated, BatchResponse{Stored: n})
	return nil
}

func (h *Handler) getObject(w http.ResponseWriter, r *http.Request) error {
	d, err := digestParam(r)
	if err != nil {
		return err
	}
	rc, err := h.d.Content.Get(r.Context(), d)
	if err != nil {
		return err
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable") // content-addressed
	if o, ok := rc.(*blob.Object); ok && o.Size >= 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(o.Size, 10))
	}
	if r.Method == http.MethodHead {
		return nil
	}
	if _, err := io.Copy(w, rc); err != nil {
		// The status is sent; a broken stream is all the client can be
		// told (it verifies what it reads).
		h.log.Warn("object download interrupted", "digest", d, "err", err)
	}
	return nil
}

// putManifest stores a manifest whose canonical encoding is the body. The
// manifest must hash to the digest in the path, and every object it names
// must be stored already, so that a stored manifest never names a missing
// object.
func (h *Handler) putManifest(w http.ResponseWriter, r *http.Request) error {
	d, err := digestParam(r)
	if err != nil {
		return err
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.d.MaxManifestBytes))
	if err != nil {
		return err
	}
	if got := dataset.Sum(data); got != d {
		return fmt.Errorf("%w: %w", dataset.ErrDigestMismatch, errdefs.Invalid("Manifest hashes to %s, not %s", got, d))
	}
	m, err := dataset.DecodeManifest(data)
	if err != nil {
		return err
	}
	seen := make(map[dataset.Digest]struct{}, len(m.Files))
	var ds []dataset.Digest
	for _, e := range m.Files {
		if _, ok := seen[e.Digest]; !ok {
			seen[e.Digest] = struct{}{}
			ds = append(ds, e.Digest)
		}
	}
	missing, err := h.d.Content.Has(r.Context(), ds)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		return errdefs.InvalidState("The manifest names %d objects that are not stored (e.g. %s): push them first", len(missing), missing[0])
	}
	if _, err := h.d.Content.PutManifest(r.Context(), m); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, struct {
		Digest dataset.Digest `json:"digest"`
	}{d})
	return nil
}

// getManifest answers a manifest's canonical encoding, which hashes to
// its digest.
func (h *Handler) getManifest(w http.ResponseWriter, r *http.Request) error {
	d, err := digestParam(r)
	if err != nil {
		return err
	}
	m, err := h.d.Content.GetManifest(r.Context(), d)
	if err != nil {
		return err
	}
	data := m.Encode()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(data)
	}
	return nil
}
