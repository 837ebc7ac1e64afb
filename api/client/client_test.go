package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/errdefs"
)

func TestNewValidatesURL(t *testing.T) {
	for url, ok := range map[string]bool{
		"http://127.0.0.1:5000": true, "https://kiln.example.com/prefix/": true, " http://h:1 ": true,
		"127.0.0.1:5000": false, "file:./mlruns": false, "databricks": false, "http://": false, "http://h/?x=1": false,
	} {
		c, err := New(url, nil)
		if (err == nil) != ok {
			t.Errorf("New(%q): %v", url, err)
		}
		if ok && c.endpoint(nil, "datasets", "a b") != c.URL()+"/api/v1/datasets/a%20b" {
			t.Errorf("New(%q): endpoint %s", url, c.endpoint(nil, "datasets", "a b"))
		}
	}
}

// TestErrorsKeepTheirKind checks that the server's error codes come back
// as errdefs kinds, and that answers which are not the API's (a proxy's
// 502, another server's 404) are still explained.
func TestErrorsKeepTheirKind(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		kinds  []error
	}{
		{404, `{"error":{"code":"NOT_FOUND","message":"Dataset 'x' does not exist"}}`, []error{errdefs.ErrNotFound}},
		{409, `{"error":{"code":"ALREADY_EXISTS","message":"m"}}`, []error{errdefs.ErrAlreadyExists}},
		{400, `{"error":{"code":"DIGEST_MISMATCH","message":"m"}}`, []error{dataset.ErrDigestMismatch, errdefs.ErrInvalidArgument}},
		{409, `{"error":{"code":"INVALID_STATE","message":"m"}}`, []error{errdefs.ErrInvalidState}},
		{500, `{"error":{"code":"INTERNAL","message":"internal error"}}`, nil},
		{404, `404 page not found`, []error{errdefs.ErrNotFound}},
		{502, `<html>bad gateway</html>`, nil},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tc.status)
			w.Write([]byte(tc.body))
		}))
		c, _ := New(srv.URL, nil)
		_, err := c.GetDataset(context.Background(), "x")
		srv.Close()
		if err == nil {
			t.Fatalf("%d %s: no error", tc.status, tc.body)
		}
		for _, k := range tc.kinds {
			if !errors.Is(err, k) {
				t.Errorf("%d %s: %v is not %v", tc.status, tc.body, err, k)
			}
		}
		if tc.kinds == nil && (errors.Is(err, errdefs.ErrNotFound) || errors.Is(err, errdefs.ErrInvalidArgument)) {
			t.Errorf("%d %s: %v has a kind", tc.status, tc.body, err)
		}
		if tc.status == 404 && tc.body[0] == '{' && errdefs.Message(err) != "Dataset 'x' does not exist" {
			t.Errorf("message %q", errdefs.Message(err))
		}
	}
}
