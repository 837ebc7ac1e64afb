package config

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestOIDCSettings: the OIDC settings come from the environment and
// flags, with their defaults, and an issuer needs a client id.
func TestOIDCSettings(t *testing.T) {
	t.Chdir(t.TempDir()) // no kiln.yaml
	env := map[string]string{"KILN_OIDC_ISSUER": "https://idp.example.com/realms/acme", "KILN_OIDC_CLIENT_ID": "kiln",
		"KILN_OIDC_CLIENT_SECRET": "s3cret", "KILN_OIDC_ADMIN_GROUP": "kiln-admins"}
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	RegisterFlags(fs)
	if err := fs.Parse([]string{"--oidc-groups-claim", "roles", "--oidc-default-role", "editor"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load(fs, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := OIDC{Issuer: "https://idp.example.com/realms/acme", ClientID: "kiln", ClientSecret: "s3cret", Scopes: "openid,email,profile",
		UsernameClaim: "preferred_username", GroupsClaim: "roles", AdminGroup: "kiln-admins", DefaultRole: "editor", Workspace: "default"}
	if c.Access.OIDC != want {
		t.Errorf("oidc settings %+v, want %+v", c.Access.OIDC, want)
	}
	delete(env, "KILN_OIDC_CLIENT_ID")
	if _, err := Load(nil, func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "client_id") {
		t.Errorf("an issuer without a client id: %v", err)
	}
}
