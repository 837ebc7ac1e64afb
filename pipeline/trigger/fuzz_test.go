package trigger

import (
	"encoding/json"
	"errors"
	"maps"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/errdefs"
)

// FuzzParsePayload: any body either is refused with a domain error or
// gives a payload without NUL characters that reads back the same once
// written as a JSON object of strings.
func FuzzParsePayload(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"a":"b","n":1,"t":true,"z":null,"o":{"x":[1,2]}}`, `[1]`, `null`, `{"a":"\u0000"}`,
		`{"a":1e999}`, `{"a":"x"} {}`, `  {"é":"\ud800"}`, `{"a":"b","a":"c"}`, `{"x":-0.0}`, "{\"a\":\"\xff\"}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := parsePayload(body)
		if err != nil {
			var de *errdefs.Error
			if !errors.As(err, &de) {
				t.Fatalf("error %v is not a domain error", err)
			}
			return
		}
		for k, v := range p {
			if strings.IndexByte(k, 0) >= 0 || strings.IndexByte(v, 0) >= 0 {
				t.Fatalf("NUL in %q: %q", k, v)
			}
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		again, err := parsePayload(b)
		if err != nil || !maps.Equal(p, again) {
			t.Fatalf("%s read back as %v, %v; want %v", b, again, err, p)
		}
	})
}
