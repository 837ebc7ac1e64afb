// Package gcs is a gocloud.dev/blob driver for Google Cloud Storage over
// its JSON API on plain HTTP.
//
// gocloud's own gcsblob wraps cloud.google.com/go/storage, which brings
// gRPC's xDS, OpenTelemetry and Cloud Monitoring with it and registers
// their protobuf descriptors when the program starts: 16 MB of Kiln's idle
// memory for a store most servers never open. This driver covers what
// Kiln's artifact store needs — reads with ranges, streaming uploads
// (one multipart request for a small object, a resumable session in 8 MiB
// chunks for a large one), attributes, listing with a delimiter, copy and
// delete — with the same credentials: Application Default Credentials
// (GOOGLE_APPLICATION_CREDENTIALS, gcloud's user credentials, the metadata
// server), or none with ?anonymous=true. STORAGE_EMULATOR_HOST points it
// at an emulator such as fake-gcs-server, without credentials, as it does
// Google's own client.
package gcs

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"gocloud.dev/blob/driver"
	"gocloud.dev/gcerrors"
	"golang.org/x/oauth2/google"

	"github.com/kiln-ml/kiln/blob/internal/driverio"
)

// Scope is the OAuth scope the driver asks for.
const Scope = "https://www.googleapis.com/auth/devstorage.read_write"

// ChunkSize is the size of one request of a resumable upload (a multiple
// of 256 KiB, as the API requires); an object smaller than it is sent in
// one request.
const ChunkSize = 8 << 20

// Options configure a bucket.
type Options struct {
	// Endpoint is the API's base URL (default https://storage.googleapis.com,
	// or the emulator of STORAGE_EMULATOR_HOST).
	Endpoint string
	// Client sends the requests; nil means one authenticated with
	// Application Default Credentials (or plain, with Anonymous or an
	// emulator).
	Client    *http.Client
	Anonymous bool
}

// Open returns the driver of bucket.
func Open(ctx context.Context, bucket string, o Options) (driver.Bucket, error) {
	if bucket == "" {
		return nil, errors.New("gcs: no bucket name")
	}
	emulator := false
	if o.Endpoint == "" {
		if h := os.Getenv("STORAGE_EMULATOR_HOST"); h != "" {
			if !strings.Contains(h, "://") {
				h = "http://" + h
			}
			o.Endpoint, emulator = h, true
		} else {
			o.Endpoint = "https://storage.googleapis.com"
		}
	}
	o.Endpoint = strings.TrimRight(o.Endpoint, "/")
	if o.Client == nil {
		if o.Anonymous || emulator {
			o.Client = &http.Client{}
		} else {
			c, err := google.DefaultClient(ctx, Scope)
			if err != nil {
				return nil, fmt.Errorf("gcs: no Google credentials (set GOOGLE_APPLICATION_CREDENTIALS, run gcloud auth application-default login, or add ?anonymous=true): %w", err)
			}
			o.Client = c
		}
	}
	return &bucketDriver{name: bucket, base: o.Endpoint, c: o.Client}, nil
}

// OpenURL opens gs://BUCKET?anonymous=true|false.
func OpenURL(ctx context.Context, u *url.URL) (driver.Bucket, error) {
	var o Options
	for k, v := range u.Query() {
		switch k {
		case "anonymous":
			b, err := strconv.ParseBool(v[0])
			if err != nil {
				return nil, fmt.Errorf("gcs: bad anonymous=%q in %s", v[0], u.Redacted())
			}
			o.Anonymous = b
		default:
			return nil, fmt.Errorf("gcs: unknown query parameter %q in %s (known: anonymous)", k, u.Redacted())
		}
	}
	return Open(ctx, u.Host, o)
}

type bucketDriver struct {
	name string
	base string
	c    *http.Client
}

// apiError is a non-2xx answer of the API.
type apiError struct {
	Status  int
	Message string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("gcs: %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

func (b *bucketDriver) objectURL(key string) string {
	return b.base + "/storage/v1/b/" + url.PathEscape(b.name) + "/o/" + url.PathEscape(key)
}

func (b *bucketDriver) ErrorCode(err error) gcerrors.ErrorCode {
	var e *apiError
	if !errors.As(err, &e) {
		if errors.Is(err, context.Canceled) {
			return gcerrors.Canceled
		}
		if errors.Is(err, context.DeadlineExceeded) {
			return gcerrors.DeadlineExceeded
		}
		return gcerrors.Unknown
	}
	switch e.Status {
	case http.StatusNotFound:
		return gcerrors.NotFound
	case http.StatusPreconditionFailed:
		return gcerrors.FailedPrecondition
	case http.StatusConflict:
		return gcerrors.AlreadyExists
	case http.StatusUnauthorized, http.StatusForbidden:
		return gcerrors.PermissionDenied
	case http.StatusBadRequest:
		return gcerrors.InvalidArgument
	case http.StatusTooManyRequests:
		return gcerrors.ResourceExhausted
	case http.StatusNotImplemented:
		return gcerrors.Unimplemented
	}
	return gcerrors.Internal
}

func (b *bucketDriver) As(any) bool             { return false }
func (b *bucketDriver) ErrorAs(error, any) bool { return false }
func (b *bucketDriver) Close() error            { return nil }

// do sends a request, retrying an idempotent one (GET, DELETE, or one
// with a generation precondition) on 429, 5xx and dropped connections
// with jittered exponential backoff, as Google's guidance has it. body
// makes the request's body anew for each try.
func (b *bucketDriver) do(ctx context.Context, method, u string, hdr http.Header, body func() io.Reader, idempotent bool) (*http.Response, error) {
	const tries = 4
	wait := 100 * time.Millisecond
	for try := 1; ; try++ {
		var r io.Reader
		if body != nil {
			r = body()
		}
		req, err := http.NewRequestWithContext(ctx, method, u, r)
		if err != nil {
			return nil, err
		}
		for k, v := range hdr {
			req.Header[k] = v
		}
		resp, err := b.c.Do(req)
		retry := err != nil && ctx.Err() == nil
		if err == nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500) {
			retry = true
		}
		if !retry || !idempotent || try == tries {
			if err != nil {
				return nil, err
			}
			return resp, nil
		}
		if resp != nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		t := time.NewTimer(wait/2 + rand.N(wait))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		wait *= 2
	}
}

// check turns a non-2xx answer into an apiError (closing its body).
func check(resp *http.Response, ok ...int) error {
	if resp.StatusCode/100 == 2 {
		return nil
	}
	for _, c := range ok {
		if resp.StatusCode == c {
			return nil
		}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	return parseError(resp.StatusCode, raw)
}

// parseError reads the API's error answer ({"error":{"message":…}}, or
// any text).
func parseError(status int, raw []byte) *apiError {
	var body struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	msg := strings.TrimSpace(string(raw))
	if json.Unmarshal(raw, &body) == nil && body.Error.Message != "" {
		msg = body.Error.Message
	}
	return &apiError{Status: status, Message: msg}
}

// object is the API's object resource (the fields the driver uses).
type object struct {
	Name               string            `json:"name,omitempty"`
	Size               string            `json:"size,omitempty"`
	ContentType        string            `json:"contentType,omitempty"`
	CacheControl       string            `json:"cacheControl,omitempty"`
	ContentDisposition string            `json:"contentDisposition,omitempty"`
	ContentEncoding    string            `json:"contentEncoding,omitempty"`
	ContentLanguage    string            `json:"contentLanguage,omitempty"`
	MD5Hash            string            `json:"md5Hash,omitempty"`
	ETag               string            `json:"etag,omitempty"`
	Metadata           map[string]string `json:"metadata,omitempty"`
	TimeCreated        time.Time         `json:"timeCreated,omitzero"`
	Updated            time.Time         `json:"updated,omitzero"`
}

func (o *object) size() int64 {
	n, _ := strconv.ParseInt(o.Size, 10, 64)
	return n
}

func (o *object) md5() []byte {
	m, _ := base64.StdEncoding.DecodeString(o.MD5Hash)
	return m
}

func decode(resp *http.Response, v any) error {
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("gcs: reading the answer: %w", err)
	}
	return nil
}

func (b *bucketDriver) Attributes(ctx context.Context, key string) (*driver.Attributes, error) {
	resp, err := b.do(ctx, http.MethodGet, b.objectURL(key), nil, nil, true)
	if err != nil {
		return nil, err
	}
	if err := check(resp); err != nil {
		return nil, err
	}
	var o object
	if err := decode(resp, &o); err != nil {
		return nil, err
	}
	return &driver.Attributes{
		CacheControl: o.CacheControl, ContentDisposition: o.ContentDisposition, ContentEncoding: o.ContentEncoding,
		ContentLanguage: o.ContentLanguage, ContentType: o.ContentType, Metadata: o.Metadata,
		CreateTime: o.TimeCreated, ModTime: o.Updated, Size: o.size(), MD5: o.md5(), ETag: o.ETag,
	}, nil
}

func (b *bucketDriver) ListPaged(ctx context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	q := url.Values{}
	if opts.Prefix != "" {
		q.Set("prefix", opts.Prefix)
	}
	if opts.Delimiter != "" {
		q.Set("delimiter", opts.Delimiter)
	}
	if opts.PageSize > 0 {
		q.Set("maxResults", strconv.Itoa(opts.PageSize))
	}
	if len(opts.PageToken) > 0 {
		q.Set("pageToken", string(opts.PageToken))
	}
	q.Set("fields", "items(name,size,md5Hash,updated),prefixes,nextPageToken")
	if err := driverio.Hook(opts.BeforeList); err != nil {
		return nil, err
	}
	resp, err := b.do(ctx, http.MethodGet, b.base+"/storage/v1/b/"+url.PathEscape(b.name)+"/o?"+q.Encode(), nil, nil, true)
	if err != nil {
		return nil, err
	}
	if err := check(resp); err != nil {
		return nil, err
	}
	var page struct {
		Items         []object `json:"items"`
		Prefixes      []string `json:"prefixes"`
		NextPageToken string   `json:"nextPageToken"`
	}
	if err := decode(resp, &page); err != nil {
		return nil, err
	}
	out := &driver.ListPage{}
	for i := range page.Items {
		o := &page.Items[i]
		out.Objects = append(out.Objects, &driver.ListObject{Key: o.Name, ModTime: o.Updated, Size: o.size(), MD5: o.md5()})
	}
	for _, p := range page.Prefixes {
		out.Objects = append(out.Objects, &driver.ListObject{Key: p, IsDir: true})
	}
	driverio.SortObjects(out.Objects)
	if page.NextPageToken != "" {
		out.NextPageToken = []byte(page.NextPageToken)
	}
	return out, nil
}

func (b *bucketDriver) NewRangeReader(ctx context.Context, key string, offset, length int64, opts *driver.ReaderOptions) (driver.Reader, error) {
	if length == 0 {
		// A zero-length range is not a valid Range header.
		return driverio.EmptyRead(ctx, b, key, opts)
	}
	hdr := http.Header{}
	switch {
	case length > 0:
		hdr.Set("Range", fmt.Sprintf("bytes=%d-%d", offset, offset+length-1))
	case offset > 0:
		hdr.Set("Range", fmt.Sprintf("bytes=%d-", offset))
	}
	// Stored bytes as they are, not decompressed in transit.
	hdr.Set("Accept-Encoding", "gzip")
	resp, err := b.do(ctx, http.MethodGet, b.objectURL(key)+"?alt=media", hdr, nil, true)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusRequestedRangeNotSatisfiable {
		// Reading from the end of an object: an empty read, as other drivers give.
		resp.Body.Close()
		return driverio.EmptyRead(ctx, b, key, opts)
	}
	if err := check(resp); err != nil {
		return nil, err
	}
	if err := driverio.Hook(opts.BeforeRead); err != nil {
		resp.Body.Close()
		return nil, err
	}
	attrs := driver.ReaderAttributes{ContentType: resp.Header.Get("Content-Type"), Size: resp.ContentLength}
	if cr := resp.Header.Get("Content-Range"); cr != "" {
		if n, ok := driverio.RangeTotal(cr); ok {
			attrs.Size = n
		}
	} else if s := resp.Header.Get("X-Goog-Stored-Content-Length"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			attrs.Size = n
		}
	}
	if t, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		attrs.ModTime = t
	}
	if attrs.ContentType == "" {
		attrs.ContentType = "application/octet-stream"
	}
	return &driverio.Reader{Body: resp.Body, Attrs: attrs}, nil
}

func (b *bucketDriver) NewTypedWriter(ctx context.Context, key, contentType string, opts *driver.WriterOptions) (driver.Writer, error) {
	meta := object{Name: key, ContentType: contentType, CacheControl: opts.CacheControl,
		ContentDisposition: opts.ContentDisposition, ContentEncoding: opts.ContentEncoding,
		ContentLanguage: opts.ContentLanguage, Metadata: opts.Metadata}
	if len(opts.ContentMD5) > 0 {
		meta.MD5Hash = base64.StdEncoding.EncodeToString(opts.ContentMD5)
	}
	if err := driverio.Hook(opts.BeforeWrite); err != nil {
		return nil, err
	}
	chunk := ChunkSize
	if opts.BufferSize > 0 {
		chunk = (opts.BufferSize + 256<<10 - 1) / (256 << 10) * (256 << 10)
	}
	return &writer{ctx: ctx, b: b, meta: meta, ifNotExist: opts.IfNotExist, chunk: chunk}, nil
}

// writer buffers up to one chunk; an object that fits is sent by one
// multipart request at Close, a larger one through a resumable session.
type writer struct {
	ctx        context.Context
	b          *bucketDriver
	meta       object
	ifNotExist bool
	chunk      int
	buf        []byte
	session    string // the resumable session's URL, once opened
	sent       int64
	err        error
}

func (w *writer) uploadQuery(kind string) url.Values {
	q := url.Values{"uploadType": {kind}}
	if w.ifNotExist {
		q.Set("ifGenerationMatch", "0")
	}
	return q
}

func (w *writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.buf == nil {
		w.buf = make([]byte, 0, min(w.chunk, max(len(p), 64<<10)))
	}
	n := 0
	for len(p) > 0 {
		room := w.chunk - len(w.buf)
		take := min(room, len(p))
		w.buf = append(w.buf, p[:take]...)
		p, n = p[take:], n+take
		if len(w.buf) == w.chunk && len(p) > 0 {
			// A full chunk with more to come: send it (the last chunk is
			// kept for Close, which must say the total size).
			if err := w.flush(false); err != nil {
				w.err = err
				return n, err
			}
		}
	}
	return n, nil
}

// flush sends the buffer as the session's next chunk (last: the final one).
func (w *writer) flush(last bool) error {
	if w.ctx.Err() != nil {
		return w.ctx.Err()
	}
	if w.session == "" {
		meta, _ := json.Marshal(w.meta)
		q := w.uploadQuery("resumable")
		resp, err := w.b.do(w.ctx, http.MethodPost,
			w.b.base+"/upload/storage/v1/b/"+url.PathEscape(w.b.name)+"/o?"+q.Encode(),
			http.Header{"Content-Type": {"application/json; charset=UTF-8"}},
			func() io.Reader { return bytes.NewReader(meta) }, true)
		if err != nil {
			return err
		}
		if err := check(resp); err != nil {
			return err
		}
		resp.Body.Close()
		if w.session = resp.Header.Get("Location"); w.session == "" {
			return errors.New("gcs: the resumable upload answered without a session URL")
		}
	}
	end := w.sent + int64(len(w.buf))
	total := "*"
	if last {
		total = strconv.FormatInt(end, 10)
	}
	cr := fmt.Sprintf("bytes %d-%d/%s", w.sent, end-1, total)
	if len(w.buf) == 0 {
		cr = "bytes */" + total
	}
	data := w.buf
	// A chunk is not retried here: after a dropped connection the session
	// may hold part of it, and the API wants the upload resumed from there.
	resp, err := w.b.do(w.ctx, http.MethodPut, w.session, http.Header{"Content-Range": {cr}},
		func() io.Reader { return bytes.NewReader(data) }, true)
	if err != nil {
		return err
	}
	if err := check(resp, http.StatusPermanentRedirect); err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if !last && resp.StatusCode != http.StatusPermanentRedirect {
		return fmt.Errorf("gcs: chunk at %d of %s answered %d, want 308", w.sent, w.meta.Name, resp.StatusCode)
	}
	w.sent = end
	w.buf = w.buf[:0]
	return nil
}

func (w *writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if err := w.ctx.Err(); err != nil {
		w.cancelSession()
		return err
	}
	if w.session != "" {
		err := w.flush(true)
		if err != nil {
			w.cancelSession()
		}
		return err
	}
	return w.multipart()
}

// cancelSession ends an unfinished resumable upload (the object is not
// created; any previous one stays).
func (w *writer) cancelSession() {
	if w.session == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if resp, err := w.b.do(ctx, http.MethodDelete, w.session, nil, nil, false); err == nil {
		resp.Body.Close()
	}
}

// multipart sends the whole (small) object in one request: its metadata
// and its bytes, as multipart/related.
func (w *writer) multipart() error {
	meta, _ := json.Marshal(w.meta)
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	p, _ := mw.CreatePart(textproto.MIMEHeader{"Content-Type": {"application/json; charset=UTF-8"}})
	p.Write(meta)
	ct := w.meta.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	p, _ = mw.CreatePart(textproto.MIMEHeader{"Content-Type": {ct}})
	p.Write(w.buf)
	mw.Close()
	raw := body.Bytes()
	q := w.uploadQuery("multipart")
	resp, err := w.b.do(w.ctx, http.MethodPost,
		w.b.base+"/upload/storage/v1/b/"+url.PathEscape(w.b.name)+"/o?"+q.Encode(),
		http.Header{"Content-Type": {"multipart/related; boundary=" + mw.Boundary()}},
		func() io.Reader { return bytes.NewReader(raw) }, true)
	if err != nil {
		return err
	}
	if err := check(resp); err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return nil
}

func (b *bucketDriver) Copy(ctx context.Context, dstKey, srcKey string, opts *driver.CopyOptions) error {
	if err := driverio.Hook(opts.BeforeCopy); err != nil {
		return err
	}
	base := b.objectURL(srcKey) + "/rewriteTo/b/" + url.PathEscape(b.name) + "/o/" + url.PathEscape(dstKey)
	token := ""
	for {
		u := base
		if token != "" {
			u += "?rewriteToken=" + url.QueryEscape(token)
		}
		resp, err := b.do(ctx, http.MethodPost, u, http.Header{"Content-Type": {"application/json"}},
			func() io.Reader { return strings.NewReader("{}") }, true)
		if err != nil {
			return err
		}
		if err := check(resp); err != nil {
			return err
		}
		var r struct {
			Done         bool   `json:"done"`
			RewriteToken string `json:"rewriteToken"`
		}
		if err := decode(resp, &r); err != nil {
			return err
		}
		if r.Done {
			return nil
		}
		if r.RewriteToken == "" {
			return errors.New("gcs: rewrite not done and no token to go on")
		}
		token = r.RewriteToken
	}
}

func (b *bucketDriver) Delete(ctx context.Context, key string, opts *driver.DeleteOptions) error {
	if err := driverio.Hook(opts.BeforeDelete); err != nil {
		return err
	}
	resp, err := b.do(ctx, http.MethodDelete, b.objectURL(key), nil, nil, true)
	if err != nil {
		return err
	}
	if err := check(resp); err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

func (b *bucketDriver) SignedURL(context.Context, string, *driver.SignedURLOptions) (string, error) {
	return "", &apiError{Status: http.StatusNotImplemented, Message: "signed URLs are not supported by Kiln's gs:// driver"}
}
