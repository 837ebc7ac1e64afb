package access

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
)

func TestOIDCSafeRedirect(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"", "/", true},
		{"/", "/", true},
		{"/ui/runs?x=1#y", "/ui/runs?x=1#y", true},
		{"/%2F%2Fevil", "/%2F%2Fevil", true}, // a path on this server
		{"//evil.example/x", "", false},
		{"///evil.example", "", false},
		{"/\\evil.example", "", false},
		{"/a\\b", "", false},
		{"https://evil.example/", "", false},
		{"javascript:alert(1)", "", false},
		{"evil.example", "", false},
		{"/a\r\nSet-Cookie: x=1", "", false},
		{"/a\tb", "", false},
		{"/" + strings.Repeat("a", 3000), "", false},
	} {
		got, err := SafeRedirect(tc.in)
		if tc.ok != (err == nil) || got != tc.want {
			t.Errorf("SafeRedirect(%q) = %q, %v; want %q, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("SafeRedirect(%q): %v is not an invalid argument", tc.in, err)
		}
	}
}

func testOIDC(t *testing.T, secret string) *OIDC {
	t.Helper()
	o, err := NewOIDC(OIDCConfig{Issuer: "https://idp.example.com/realms/kiln", ClientID: "kiln", ClientSecret: secret,
		RedirectURL: "https://kiln.example.com/api/v1/oidc/callback"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestOIDCOIDCFlowCookie: the flow cookie opens only unaltered, unexpired
// and under the key of the same client secret (so that every server of a
// deployment shares it).
func TestOIDCFlowCookie(t *testing.T) {
	o := testOIDC(t, "s3cret")
	now := time.Unix(1_800_000_000, 0)
	o.now = func() time.Time { return now }
	f := flow{State: "st", Nonce: "no", Verifier: "ve", Redirect: "/x", Expires: now.Add(OIDCFlowTTL).Unix()}
	v := o.seal(f)
	if got, ok := o.open(v); !ok || *got != f {
		t.Fatalf("open(seal(f)) = %+v, %v", got, ok)
	}
	if _, ok := testOIDC(t, "s3cret").open(v); !ok {
		t.Error("another server with the same client secret refused the cookie")
	}
	if _, ok := testOIDC(t, "other").open(v); ok {
		t.Error("a server with another client secret accepted the cookie")
	}
	body, sig, _ := strings.Cut(v, ".")
	for name, bad := range map[string]string{
		"no signature":   body,
		"other body":     o.seal(flow{State: "x", Expires: f.Expires})[:len(body)] + "." + sig,
		"flipped sig":    body + "." + strings.ToUpper(sig[:1]) + strings.ToLower(sig[1:]),
		"empty":          "",
		"garbage base64": "!!!." + sig,
	} {
		if _, ok := o.open(bad); ok {
			t.Errorf("%s: an altered cookie opened", name)
		}
	}
	now = now.Add(OIDCFlowTTL + time.Second)
	if _, ok := o.open(v); ok {
		t.Error("an expired flow opened")
	}
}

func TestOIDCConfig(t *testing.T) {
	ok := OIDCConfig{Issuer: "https://idp.example.com", ClientID: "kiln", RedirectURL: "https://kiln.example.com/api/v1/oidc/callback"}
	for _, tc := range []struct {
		name   string
		change func(*OIDCConfig)
		want   string // "" when it is valid
	}{
		{"valid", func(*OIDCConfig) {}, ""},
		{"loopback http", func(c *OIDCConfig) { c.Issuer = "http://127.0.0.1:5556/dex" }, ""},
		{"http beyond loopback", func(c *OIDCConfig) { c.Issuer = "http://idp.example.com" }, "https"},
		{"not a URL", func(c *OIDCConfig) { c.Issuer = "idp.example.com" }, "not an http(s) URL"},
		{"no client id", func(c *OIDCConfig) { c.ClientID = "" }, "client id"},
		{"relative redirect", func(c *OIDCConfig) { c.RedirectURL = "/api/v1/oidc/callback" }, "redirect URL"},
		{"bad role", func(c *OIDCConfig) { c.DefaultRole = "owner" }, "role"},
		{"no role", func(c *OIDCConfig) { c.DefaultRole = "none" }, ""},
		{"bad workspace", func(c *OIDCConfig) { c.Workspace = "a b" }, "workspace"},
		{"admin group without claim", func(c *OIDCConfig) { c.AdminGroup = "admins" }, "groups claim"},
	} {
		c := ok
		tc.change(&c)
		o, err := NewOIDC(c, nil)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			} else if o.cfg.Scopes[0] != "openid" || o.cfg.UsernameClaim != "preferred_username" || o.cfg.Workspace != DefaultWorkspace {
				t.Errorf("%s: defaults %+v", tc.name, o.cfg)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error about %q", tc.name, err, tc.want)
		}
	}
	o, err := NewOIDC(OIDCConfig{Issuer: ok.Issuer, ClientID: "kiln", RedirectURL: ok.RedirectURL, Scopes: []string{"email", "groups"}}, nil)
	if err != nil || strings.Join(o.cfg.Scopes, " ") != "openid email groups" {
		t.Errorf("openid is added to the scopes: %v %v", o, err)
	}
}

func TestOIDCClaims(t *testing.T) {
	claims := map[string]any{"groups": []any{"a", 3, "kiln-admins"}, "one": "solo", "n": 4}
	if g := groups(claims, "groups"); strings.Join(g, ",") != "a,kiln-admins" {
		t.Errorf("groups %v", g)
	}
	if g := groups(claims, "one"); len(g) != 1 || g[0] != "solo" {
		t.Errorf("one group %v", g)
	}
	if g := groups(claims, "n"); g != nil {
		t.Errorf("a number is no group: %v", g)
	}
	if nameRE.MatchString(OIDCCreator("https://x")) {
		t.Error("the OIDC creator could be a user's name")
	}
}
