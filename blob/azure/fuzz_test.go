package azure

import (
	"strings"
	"testing"
	"time"
)

// FuzzParseToken: any answer of a token endpoint gives a token with an
// end in the future, or an error naming the host; never a panic.
func FuzzParseToken(f *testing.F) {
	for _, s := range []string{
		`{"access_token":"t","expires_in":3599}`,
		`{"access_token":"t","expires_in":"3599"}`,
		`{"access_token":"t","expires_on":"4102444800"}`,
		`{"access_token":"t","expires_on":-5}`,
		`{"error":"invalid_client","error_description":"AADSTS7000215"}`,
		`{"access_token":""}`, `null`, `[]`, `{`, "",
	} {
		f.Add(200, []byte(s))
	}
	f.Add(500, []byte(`{"access_token":"t"}`))
	now := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, status int, raw []byte) {
		tok, err := parseToken("login.example", status, raw, now)
		if err != nil {
			if !strings.Contains(err.Error(), "login.example") {
				t.Fatalf("error without the host: %v", err)
			}
			return
		}
		if status != 200 || tok.Token == "" || !tok.ExpiresOn.After(now) {
			t.Fatalf("status %d gave %+v", status, tok)
		}
	})
}
