// Package driverio holds what Kiln's own gocloud blob drivers (blob/gcs,
// blob/azure) share: their reader, the empty read, key-ordered listings,
// the option hooks and Content-Range parsing.
package driverio

import (
	"context"
	"io"
	"sort"
	"strconv"
	"strings"

	"gocloud.dev/blob/driver"
)

// Reader is a driver.Reader over a response body.
type Reader struct {
	Body  io.ReadCloser
	Attrs driver.ReaderAttributes
}

func (r *Reader) Read(p []byte) (int, error)           { return r.Body.Read(p) }
func (r *Reader) Close() error                         { return r.Body.Close() }
func (r *Reader) Attributes() *driver.ReaderAttributes { return &r.Attrs }
func (r *Reader) As(any) bool                          { return false }

// Empty is an empty read of the object of a: a zero-length range, or a
// range starting at the object's end.
func Empty(a *driver.Attributes) *Reader {
	return &Reader{Body: io.NopCloser(strings.NewReader("")),
		Attrs: driver.ReaderAttributes{ContentType: a.ContentType, ModTime: a.ModTime, Size: a.Size}}
}

// Hook calls one of the options' Before* callbacks, if set (the drivers
// expose no driver-specific types to it).
func Hook(f func(asFunc func(any) bool) error) error {
	if f == nil {
		return nil
	}
	return f(func(any) bool { return false })
}

// SortObjects puts a page's objects in key order: services list objects
// and "directories" (prefixes) as two lists, the driver contract wants one.
func SortObjects(objs []*driver.ListObject) {
	sort.Slice(objs, func(i, j int) bool { return objs[i].Key < objs[j].Key })
}

// RangeTotal reads the object's size from a Content-Range header
// ("bytes 0-99/1234").
func RangeTotal(cr string) (int64, bool) {
	i := strings.LastIndexByte(cr, '/')
	if i < 0 || !strings.HasPrefix(cr, "bytes ") {
		return 0, false
	}
	n, err := strconv.ParseInt(cr[i+1:], 10, 64)
	return n, err == nil && n >= 0
}

// EmptyRead answers a read that yields no bytes (a zero-length range, or
// one starting at the object's end) from the object's attributes, calling
// the BeforeRead hook as a read must.
func EmptyRead(ctx context.Context, b driver.Bucket, key string, opts *driver.ReaderOptions) (driver.Reader, error) {
	a, err := b.Attributes(ctx, key)
	if err != nil {
		return nil, err
	}
	if err := Hook(opts.BeforeRead); err != nil {
		return nil, err
	}
	return Empty(a), nil
}
