package gcs

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"gocloud.dev/blob/driver"
	"gocloud.dev/gcerrors"
)

// The driver against fake-gcs-server is tested by package blob (its
// bucket matrix); these cases need answers an emulator does not give.

func TestErrorCodes(t *testing.T) {
	var b bucketDriver
	for _, tc := range []struct {
		status int
		want   gcerrors.ErrorCode
	}{
		{404, gcerrors.NotFound}, {412, gcerrors.FailedPrecondition}, {409, gcerrors.AlreadyExists},
		{401, gcerrors.PermissionDenied}, {403, gcerrors.PermissionDenied}, {400, gcerrors.InvalidArgument},
		{429, gcerrors.ResourceExhausted}, {503, gcerrors.Internal},
	} {
		if got := b.ErrorCode(&apiError{Status: tc.status}); got != tc.want {
			t.Errorf("%d: %v, want %v", tc.status, got, tc.want)
		}
	}
	if got := b.ErrorCode(context.Canceled); got != gcerrors.Canceled {
		t.Errorf("canceled: %v", got)
	}
}

func TestRetriesIdempotentReads(t *testing.T) {
	var calls atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":{"code":503,"message":"backend busy"}}`)
			return
		}
		if r.URL.EscapedPath() != "/storage/v1/b/bkt/o/a%2Fb%20c.txt" {
			t.Errorf("path %s: the object name is not one escaped segment", r.URL.EscapedPath())
		}
		io.WriteString(w, `{"name":"a/b c.txt","size":"12","contentType":"text/plain","md5Hash":"XrY7u+Ae7tCTyyK7j1rNww==","updated":"2026-12-06T10:00:00Z"}`)
	}))
	defer ts.Close()
	d, err := Open(context.Background(), "bkt", Options{Endpoint: ts.URL, Anonymous: true})
	if err != nil {
		t.Fatal(err)
	}
	a, err := d.Attributes(context.Background(), "a/b c.txt")
	if err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 3 || a.Size != 12 || a.ContentType != "text/plain" || len(a.MD5) != 16 || a.ModTime.Year() != 2026 {
		t.Errorf("after %d calls: %+v", calls.Load(), a)
	}
}

func TestGivesUpAndReportsTheAPIMessage(t *testing.T) {
	var calls atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"error":{"code":403,"message":"kiln@example.iam.gserviceaccount.com does not have storage.objects.get access"}}`)
	}))
	defer ts.Close()
	d, _ := Open(context.Background(), "bkt", Options{Endpoint: ts.URL, Anonymous: true})
	_, err := d.NewRangeReader(context.Background(), "k", 0, -1, &driver.ReaderOptions{})
	if d.ErrorCode(err) != gcerrors.PermissionDenied || !strings.Contains(err.Error(), "storage.objects.get") {
		t.Errorf("err = %v (%v)", err, d.ErrorCode(err))
	}
	if calls.Load() != 1 {
		t.Errorf("a 403 was tried %d times", calls.Load())
	}
}

func TestUploadFailureIsNotRetried(t *testing.T) {
	var posts atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			posts.Add(1)
		}
		if r.URL.Query().Get("ifGenerationMatch") != "0" {
			t.Errorf("IfNotExist not sent as ifGenerationMatch=0: %s", r.URL.RawQuery)
		}
		w.WriteHeader(http.StatusPreconditionFailed)
		io.WriteString(w, `{"error":{"code":412,"message":"conditionNotMet"}}`)
	}))
	defer ts.Close()
	d, _ := Open(context.Background(), "bkt", Options{Endpoint: ts.URL, Anonymous: true})
	w, err := d.NewTypedWriter(context.Background(), "k", "text/plain", &driver.WriterOptions{IfNotExist: true})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "hello")
	if err := w.Close(); d.ErrorCode(err) != gcerrors.FailedPrecondition {
		t.Errorf("close: %v", err)
	}
	if posts.Load() != 1 {
		t.Errorf("%d upload requests", posts.Load())
	}
}

func TestOpenURL(t *testing.T) {
	t.Setenv("STORAGE_EMULATOR_HOST", "127.0.0.1:1")
	if _, err := OpenURL(context.Background(), &url.URL{Scheme: "gs", Host: "b", RawQuery: "anonymous=maybe"}); err == nil {
		t.Error("anonymous=maybe accepted")
	}
	if _, err := OpenURL(context.Background(), &url.URL{Scheme: "gs", Host: "b", RawQuery: "access_id=x"}); err == nil || !strings.Contains(err.Error(), "access_id") {
		t.Errorf("unknown parameter: %v", err)
	}
	d, err := OpenURL(context.Background(), &url.URL{Scheme: "gs", Host: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.(*bucketDriver).base; got != "http://127.0.0.1:1" {
		t.Errorf("emulator endpoint %q", got)
	}
	if _, err := Open(context.Background(), "", Options{}); err == nil || errors.Is(err, nil) {
		t.Error("no bucket accepted")
	}
}
