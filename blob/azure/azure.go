// Package azure is a gocloud.dev/blob driver for Azure Blob Storage over
// the Azure SDK's azblob client, with Kiln's own Microsoft Entra token
// credential.
//
// gocloud's azureblob brings azidentity (and with it MSAL) for
// DefaultAzureCredential, and Google's API client options for a user-agent
// string: 8 MB of Kiln's idle memory for a store most servers never open.
// This driver keeps the SDK's blob client (requests, retries, shared-key
// signing, block uploads) and takes credentials as gocloud's azureblob
// does, in this order:
//
//   - AZURE_STORAGE_CONNECTION_STRING (Azurite's too);
//   - AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY (shared key) or
//     AZURE_STORAGE_SAS_TOKEN;
//   - AZURE_STORAGE_ACCOUNT with a Microsoft Entra token (see Credential):
//     a client secret, workload identity, managed identity or the Azure CLI.
//
// The service URL is https://ACCOUNT.blob.core.windows.net/, changed by
// AZURE_STORAGE_DOMAIN, AZURE_STORAGE_PROTOCOL and
// AZURE_STORAGE_IS_LOCAL_EMULATOR (http://DOMAIN/ACCOUNT/), or by the
// URL's domain, protocol and localemu parameters.
package azure

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"gocloud.dev/blob/driver"
	"gocloud.dev/gcerrors"

	"github.com/kiln-ml/kiln/blob/internal/driverio"
)

// BlockSize is the size of one block of an upload; an object smaller
// than it is sent in one request.
const BlockSize = 8 << 20

// OpenURL opens azblob://CONTAINER[?domain=&protocol=&localemu=].
func OpenURL(ctx context.Context, u *url.URL) (driver.Bucket, error) {
	if u.Host == "" {
		return nil, errors.New("azure: no container name")
	}
	env := func(k string) string { return os.Getenv(k) }
	domain, protocol := env("AZURE_STORAGE_DOMAIN"), env("AZURE_STORAGE_PROTOCOL")
	localEmu, _ := strconv.ParseBool(env("AZURE_STORAGE_IS_LOCAL_EMULATOR"))
	for k, v := range u.Query() {
		switch k {
		case "domain":
			domain = v[0]
		case "protocol":
			protocol = v[0]
		case "localemu":
			b, err := strconv.ParseBool(v[0])
			if err != nil {
				return nil, fmt.Errorf("azure: bad localemu=%q in %s", v[0], u.Redacted())
			}
			localEmu = b
		default:
			return nil, fmt.Errorf("azure: unknown query parameter %q in %s (known: domain, protocol, localemu)", k, u.Redacted())
		}
	}
	opts := &container.ClientOptions{ClientOptions: policy.ClientOptions{Telemetry: policy.TelemetryOptions{ApplicationID: "kiln"}}}
	if cs := firstEnv("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGEBLOB_CONNECTIONSTRING"); cs != "" {
		c, err := container.NewClientFromConnectionString(cs, u.Host, opts)
		if err != nil {
			return nil, fmt.Errorf("azure: the connection string: %w", err)
		}
		return &bucketDriver{c: c}, nil
	}
	account := env("AZURE_STORAGE_ACCOUNT")
	if account == "" {
		return nil, errors.New("azure: set AZURE_STORAGE_ACCOUNT (with AZURE_STORAGE_KEY, AZURE_STORAGE_SAS_TOKEN or a Microsoft Entra credential), or AZURE_STORAGE_CONNECTION_STRING")
	}
	if domain == "" {
		domain = "blob.core.windows.net"
	}
	if protocol == "" {
		protocol = "https"
	}
	svc := fmt.Sprintf("%s://%s.%s/", protocol, account, domain)
	if localEmu {
		svc = fmt.Sprintf("%s://%s/%s/", protocol, domain, account)
	}
	containerURL := svc + url.PathEscape(u.Host)
	var (
		c   *container.Client
		err error
	)
	switch {
	case env("AZURE_STORAGE_KEY") != "":
		var cred *container.SharedKeyCredential
		if cred, err = container.NewSharedKeyCredential(account, env("AZURE_STORAGE_KEY")); err == nil {
			c, err = container.NewClientWithSharedKeyCredential(containerURL, cred, opts)
		}
	case env("AZURE_STORAGE_SAS_TOKEN") != "":
		c, err = container.NewClientWithNoCredential(containerURL+"?"+strings.TrimPrefix(env("AZURE_STORAGE_SAS_TOKEN"), "?"), opts)
	default:
		c, err = container.NewClient(containerURL, NewCredential(), opts)
	}
	if err != nil {
		return nil, fmt.Errorf("azure: a client of %s: %w", containerURL, err)
	}
	return &bucketDriver{c: c}, nil
}

func firstEnv(keys ...string) string {
	for _, k := range keys {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return ""
}

type bucketDriver struct {
	c *container.Client
}

func (b *bucketDriver) ErrorCode(err error) gcerrors.ErrorCode {
	switch {
	case errors.Is(err, context.Canceled):
		return gcerrors.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return gcerrors.DeadlineExceeded
	case bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound, bloberror.ResourceNotFound, bloberror.CannotVerifyCopySource):
		return gcerrors.NotFound
	case bloberror.HasCode(err, bloberror.ConditionNotMet, bloberror.BlobAlreadyExists):
		return gcerrors.FailedPrecondition
	case bloberror.HasCode(err, bloberror.AuthenticationFailed, bloberror.AuthorizationFailure, bloberror.AuthorizationPermissionMismatch, bloberror.InsufficientAccountPermissions):
		return gcerrors.PermissionDenied
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		switch re.StatusCode {
		case http.StatusNotFound:
			return gcerrors.NotFound
		case http.StatusPreconditionFailed, http.StatusConflict:
			return gcerrors.FailedPrecondition
		case http.StatusUnauthorized, http.StatusForbidden:
			return gcerrors.PermissionDenied
		case http.StatusBadRequest:
			return gcerrors.InvalidArgument
		case http.StatusTooManyRequests, http.StatusServiceUnavailable:
			return gcerrors.ResourceExhausted
		case http.StatusNotImplemented:
			return gcerrors.Unimplemented
		}
		return gcerrors.Internal
	}
	return gcerrors.Unknown
}

func (b *bucketDriver) As(i any) bool {
	if p, ok := i.(**container.Client); ok {
		*p = b.c
		return true
	}
	return false
}

func (b *bucketDriver) ErrorAs(err error, i any) bool { return errors.As(err, i) }
func (b *bucketDriver) Close() error                  { return nil }

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func tm(p *time.Time) time.Time {
	if p == nil {
		return time.Time{}
	}
	return *p
}

func i64(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

func (b *bucketDriver) Attributes(ctx context.Context, key string) (*driver.Attributes, error) {
	p, err := b.c.NewBlobClient(key).GetProperties(ctx, nil)
	if err != nil {
		return nil, err
	}
	md := make(map[string]string, len(p.Metadata))
	for k, v := range p.Metadata {
		md[strings.ToLower(k)] = str(v)
	}
	ct := str(p.ContentType)
	if ct == "" {
		ct = "application/octet-stream"
	}
	a := &driver.Attributes{
		CacheControl: str(p.CacheControl), ContentDisposition: str(p.ContentDisposition),
		ContentEncoding: str(p.ContentEncoding), ContentLanguage: str(p.ContentLanguage), ContentType: ct,
		Metadata: md, CreateTime: tm(p.CreationTime), ModTime: tm(p.LastModified), Size: i64(p.ContentLength),
		MD5: p.ContentMD5,
	}
	if p.ETag != nil {
		a.ETag = string(*p.ETag)
	}
	return a, nil
}

func (b *bucketDriver) ListPaged(ctx context.Context, opts *driver.ListOptions) (*driver.ListPage, error) {
	if err := driverio.Hook(opts.BeforeList); err != nil {
		return nil, err
	}
	var prefix, marker *string
	if opts.Prefix != "" {
		prefix = &opts.Prefix
	}
	if len(opts.PageToken) > 0 {
		m := string(opts.PageToken)
		marker = &m
	}
	var max *int32
	if opts.PageSize > 0 {
		n := int32(min(opts.PageSize, 5000))
		max = &n
	}
	out := &driver.ListPage{}
	var items []*container.BlobItem
	var next *string
	if opts.Delimiter == "" {
		page, err := b.c.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: prefix, Marker: marker, MaxResults: max}).NextPage(ctx)
		if err != nil {
			return nil, err
		}
		items, next = page.Segment.BlobItems, page.NextMarker
	} else {
		page, err := b.c.NewListBlobsHierarchyPager(opts.Delimiter, &container.ListBlobsHierarchyOptions{Prefix: prefix, Marker: marker, MaxResults: max}).NextPage(ctx)
		if err != nil {
			return nil, err
		}
		items, next = page.Segment.BlobItems, page.NextMarker
		for _, p := range page.Segment.BlobPrefixes {
			out.Objects = append(out.Objects, &driver.ListObject{Key: str(p.Name), IsDir: true})
		}
	}
	for _, it := range items {
		o := &driver.ListObject{Key: str(it.Name)}
		if p := it.Properties; p != nil {
			o.ModTime, o.Size, o.MD5 = tm(p.LastModified), i64(p.ContentLength), p.ContentMD5
		}
		out.Objects = append(out.Objects, o)
	}
	driverio.SortObjects(out.Objects)
	if n := str(next); n != "" {
		out.NextPageToken = []byte(n)
	}
	return out, nil
}

func (b *bucketDriver) NewRangeReader(ctx context.Context, key string, offset, length int64, opts *driver.ReaderOptions) (driver.Reader, error) {
	bc := b.c.NewBlobClient(key)
	if length == 0 {
		// Count 0 means "to the end" in the SDK.
		return driverio.EmptyRead(ctx, b, key, opts)
	}
	r := blob.HTTPRange{Offset: offset}
	if length > 0 {
		r.Count = length
	}
	resp, err := bc.DownloadStream(ctx, &blob.DownloadStreamOptions{Range: r})
	if err != nil {
		if bloberror.HasCode(err, bloberror.InvalidRange) {
			// Reading from the end of a blob: an empty read.
			return driverio.EmptyRead(ctx, b, key, opts)
		}
		return nil, err
	}
	if err := driverio.Hook(opts.BeforeRead); err != nil {
		resp.Body.Close()
		return nil, err
	}
	attrs := driver.ReaderAttributes{ContentType: str(resp.ContentType), ModTime: tm(resp.LastModified), Size: i64(resp.ContentLength)}
	if n, ok := driverio.RangeTotal(str(resp.ContentRange)); ok {
		attrs.Size = n
	}
	if attrs.ContentType == "" {
		attrs.ContentType = "application/octet-stream"
	}
	return &driverio.Reader{Body: resp.Body, Attrs: attrs}, nil
}

func (b *bucketDriver) NewTypedWriter(ctx context.Context, key, contentType string, opts *driver.WriterOptions) (driver.Writer, error) {
	if err := driverio.Hook(opts.BeforeWrite); err != nil {
		return nil, err
	}
	md := make(map[string]*string, len(opts.Metadata))
	for k, v := range opts.Metadata {
		md[k] = &v
	}
	h := &blob.HTTPHeaders{BlobContentType: &contentType}
	for p, v := range map[**string]string{&h.BlobCacheControl: opts.CacheControl, &h.BlobContentDisposition: opts.ContentDisposition,
		&h.BlobContentEncoding: opts.ContentEncoding, &h.BlobContentLanguage: opts.ContentLanguage} {
		if v != "" {
			*p = &v
		}
	}
	if len(opts.ContentMD5) > 0 {
		h.BlobContentMD5 = opts.ContentMD5
	}
	up := &blockblob.UploadStreamOptions{BlockSize: BlockSize, Concurrency: 1, HTTPHeaders: h, Metadata: md}
	if opts.BufferSize > 0 {
		up.BlockSize = int64(opts.BufferSize)
	}
	if opts.MaxConcurrency > 0 {
		up.Concurrency = opts.MaxConcurrency
	}
	if opts.IfNotExist {
		any := azcore.ETagAny
		up.AccessConditions = &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: &any}}
	}
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	w := &writer{ctx: ctx, cancel: cancel, pw: pw, done: make(chan struct{})}
	bb := b.c.NewBlockBlobClient(key)
	go func() {
		defer close(w.done)
		// UploadStream sends one Put Blob for a body shorter than a block,
		// else Put Block per block and one Put Block List at the end: the
		// blob appears (or the previous one stays) all at once.
		_, err := bb.UploadStream(ctx, pr, up)
		w.err = err
		pr.CloseWithError(err)
	}()
	return w, nil
}

type writer struct {
	ctx    context.Context
	cancel context.CancelFunc
	pw     *io.PipeWriter
	done   chan struct{}
	err    error
}

func (w *writer) Write(p []byte) (int, error) {
	n, err := w.pw.Write(p)
	if err != nil {
		<-w.done
		if w.err != nil {
			return n, w.err
		}
	}
	return n, err
}

func (w *writer) Close() error {
	if err := w.ctx.Err(); err != nil {
		w.pw.CloseWithError(err)
		<-w.done
		return err
	}
	w.pw.Close()
	<-w.done
	w.cancel()
	return w.err
}

func (b *bucketDriver) Copy(ctx context.Context, dstKey, srcKey string, opts *driver.CopyOptions) error {
	if err := driverio.Hook(opts.BeforeCopy); err != nil {
		return err
	}
	src := b.c.NewBlobClient(srcKey)
	if _, err := src.GetProperties(ctx, nil); err != nil {
		return err
	}
	dst := b.c.NewBlobClient(dstKey)
	resp, err := dst.StartCopyFromURL(ctx, src.URL(), nil)
	if err != nil {
		return err
	}
	st := resp.CopyStatus
	for wait := 50 * time.Millisecond; st != nil && *st == blob.CopyStatusTypePending; wait = min(2*wait, 2*time.Second) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		p, err := dst.GetProperties(ctx, nil)
		if err != nil {
			return err
		}
		st = p.CopyStatus
	}
	if st != nil && *st != blob.CopyStatusTypeSuccess {
		return fmt.Errorf("azure: copy of %s to %s ended %s", srcKey, dstKey, *st)
	}
	return nil
}

func (b *bucketDriver) Delete(ctx context.Context, key string, opts *driver.DeleteOptions) error {
	if err := driverio.Hook(opts.BeforeDelete); err != nil {
		return err
	}
	_, err := b.c.NewBlobClient(key).Delete(ctx, nil)
	return err
}

func (b *bucketDriver) SignedURL(context.Context, string, *driver.SignedURLOptions) (string, error) {
	return "", &azcore.ResponseError{StatusCode: http.StatusNotImplemented, ErrorCode: "signed URLs are not supported by Kiln's azblob:// driver"}
}
