package api

import (
	"net/http/httptest"
	"testing"

	"github.com/kiln-ml/kiln/access"
)

// A gate evaluation's actor is the signed-in user, whatever the body says;
// without access control the body, then the header, name it.
func TestGateActor(t *testing.T) {
	cases := []struct {
		name      string
		principal *access.Principal
		body      string
		header    string
		want      string
	}{
		{"signed in, body ignored", &access.Principal{User: "ada"}, "mallory", "", "ada"},
		{"signed in, header ignored", &access.Principal{User: "ada"}, "", "mallory", "ada"},
		{"access off: body", access.Anonymous, "ci", "bob", "ci"},
		{"no principal: header", nil, "", "bob", "bob"},
		{"nothing", nil, "", "", DefaultActor},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/api/v1/gate-policies/p/evaluate", nil)
			if c.header != "" {
				r.Header.Set(ActorHeader, c.header)
			}
			if c.principal != nil {
				r = r.WithContext(access.WithPrincipal(r.Context(), c.principal))
			}
			got, err := gateActor(r, c.body)
			if err != nil || got != c.want {
				t.Errorf("actor %q, %v; want %q", got, err, c.want)
			}
		})
	}
}
