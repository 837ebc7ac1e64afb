package gcs

import (
	"strings"
	"testing"
)

// FuzzAnswers: the headers and error bodies the driver reads from the API
// never panic, and what they give is sane.
func FuzzAnswers(f *testing.F) {
	for _, s := range []string{"bytes 0-99/1234", "bytes */0", "bytes 5-9/-1", "items 0-1/2", "bytes 0-1/99999999999999999999", "/", ""} {
		f.Add(s, 404, []byte(`{"error":{"code":404,"message":"No such object: kiln/a"}}`))
	}
	f.Add("bytes 0-0/1", 503, []byte("Service Unavailable"))
	f.Add("", 400, []byte(`{"error":"x"}`))
	f.Fuzz(func(t *testing.T, cr string, status int, body []byte) {
		if n, ok := rangeTotal(cr); ok && (n < 0 || !strings.HasPrefix(cr, "bytes ")) {
			t.Fatalf("%q gave size %d", cr, n)
		}
		e := parseError(status, body)
		if e.Status != status || (len(strings.TrimSpace(string(body))) > 0 && e.Message == "") {
			t.Fatalf("%d %q gave %+v", status, body, e)
		}
		_ = e.Error()
	})
}
