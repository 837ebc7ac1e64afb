package driverio

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"gocloud.dev/blob/driver"
)

// FuzzRangeTotal: any Content-Range header gives a size only when it is
// a "bytes" range with a non-negative total.
func FuzzRangeTotal(f *testing.F) {
	for _, s := range []string{"bytes 0-99/1234", "bytes */0", "bytes 5-9/-1", "items 0-1/2", "bytes 0-1/99999999999999999999", "/", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cr string) {
		if n, ok := RangeTotal(cr); ok && (n < 0 || !strings.HasPrefix(cr, "bytes ")) {
			t.Fatalf("%q gave size %d", cr, n)
		}
	})
}

func TestRangeTotal(t *testing.T) {
	for cr, want := range map[string]int64{"bytes 0-99/1234": 1234, "bytes */0": 0} {
		if n, ok := RangeTotal(cr); !ok || n != want {
			t.Errorf("%q: %d %v", cr, n, ok)
		}
	}
	for _, cr := range []string{"bytes 0-99/*", "items 0-1/2", "bytes 0-1/-3", ""} {
		if _, ok := RangeTotal(cr); ok {
			t.Errorf("%q accepted", cr)
		}
	}
}

// attrsOnly is a driver.Bucket that only answers Attributes.
type attrsOnly struct {
	driver.Bucket
	a   *driver.Attributes
	err error
}

func (b attrsOnly) Attributes(context.Context, string) (*driver.Attributes, error) { return b.a, b.err }

func TestEmptyReadCallsTheHookOnce(t *testing.T) {
	mod := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	b := attrsOnly{a: &driver.Attributes{ContentType: "text/csv", ModTime: mod, Size: 42}}
	calls := 0
	r, err := EmptyRead(context.Background(), b, "k", &driver.ReaderOptions{BeforeRead: func(func(any) bool) error { calls++; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(r)
	if len(data) != 0 || calls != 1 || *r.Attributes() != (driver.ReaderAttributes{ContentType: "text/csv", ModTime: mod, Size: 42}) {
		t.Errorf("read %q, %d hook calls, attrs %+v", data, calls, r.Attributes())
	}
	// A hook's error and a missing object end the read.
	stop := errors.New("stop")
	if _, err := EmptyRead(context.Background(), b, "k", &driver.ReaderOptions{BeforeRead: func(func(any) bool) error { return stop }}); !errors.Is(err, stop) {
		t.Errorf("hook error: %v", err)
	}
	gone := errors.New("not found")
	if _, err := EmptyRead(context.Background(), attrsOnly{err: gone}, "k", &driver.ReaderOptions{}); !errors.Is(err, gone) {
		t.Errorf("attributes error: %v", err)
	}
}

func TestSortObjects(t *testing.T) {
	objs := []*driver.ListObject{{Key: "b"}, {Key: "a/", IsDir: true}, {Key: "a-b"}, {Key: "a"}}
	SortObjects(objs)
	var keys []string
	for _, o := range objs {
		keys = append(keys, o.Key)
	}
	if strings.Join(keys, " ") != "a a-b a/ b" {
		t.Errorf("order %v", keys)
	}
}
