package gcs

import (
	"strings"
	"testing"
)

// FuzzAnswers: the error bodies the driver reads from the API never
// panic, and keep their status and a message.
func FuzzAnswers(f *testing.F) {
	f.Add(404, []byte(`{"error":{"code":404,"message":"No such object: kiln/a"}}`))
	f.Add(503, []byte("Service Unavailable"))
	f.Add(400, []byte(`{"error":"x"}`))
	f.Add(403, []byte(`{"error":{"message":""}}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := parseError(status, body)
		if e.Status != status || (len(strings.TrimSpace(string(body))) > 0 && e.Message == "") {
			t.Fatalf("%d %q gave %+v", status, body, e)
		}
		_ = e.Error()
	})
}
