package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/access"
	"github.com/kiln-ml/kiln/approval"
	"github.com/kiln-ml/kiln/config"
	"github.com/kiln-ml/kiln/server"
	"github.com/kiln-ml/kiln/store"
)

// runAs runs kiln with args against url, with env set, feeding stdin;
// it returns stdout, stderr and the exit code.
func runAs(t *testing.T, url string, env map[string]string, stdin string, args ...string) (string, string, int) {
	t.Helper()
	for _, k := range []string{"KILN_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN", "KILN_URL"} {
		t.Setenv(k, env[k])
	}
	cmd := newRootCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetArgs(append(args, "--server", url))
	code := 0
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		var msg error
		code, msg = exitCode(err)
		if msg != nil {
			errOut.WriteString("kiln: " + msg.Error())
		}
	}
	return out.String(), errOut.String(), code
}

func TestAccessCommands(t *testing.T) {
	cfg := config.Default()
	dir := t.TempDir()
	cfg.Store.URL = "sqlite://" + filepath.Join(dir, "kiln.db")
	cfg.Artifacts.URL = "file://" + filepath.Join(dir, "artifacts")
	cfg.Deploy.ModelCacheDir = filepath.Join(dir, "model-cache")
	cfg.Deploy.GRPCAddr = ""
	cfg.Pipeline.Disabled = true
	cfg.Access.Auth, cfg.Access.AdminPassword = "on", "admin-password-1"
	srv, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	admin := map[string]string{"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": "admin-password-1"}
	must := func(env map[string]string, stdin string, args ...string) string {
		t.Helper()
		out, errOut, code := runAs(t, hs.URL, env, stdin, args...)
		if code != 0 {
			t.Fatalf("kiln %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}

	// Anonymous is refused, with the server's message.
	if _, errOut, code := runAs(t, hs.URL, nil, "", "whoami"); code == 0 || !strings.Contains(errOut, "Authentication required") {
		t.Fatalf("anonymous whoami: %d %s", code, errOut)
	}
	if out := must(admin, "", "whoami"); !strings.Contains(out, "admin (user)") || !strings.Contains(out, "password") {
		t.Errorf("whoami:\n%s", out)
	}
	must(admin, "ada-password-9\n", "users", "create", "ada", "--email", "ada@example.com")
	must(admin, "", "users", "create", "ci-bot", "--service")
	var users []access.User
	if err := json.Unmarshal([]byte(must(admin, "", "users", "list", "-o", "json")), &users); err != nil || len(users) != 3 {
		t.Fatalf("users: %v %+v", err, users)
	}
	if out := must(admin, "", "users", "list", "-o", "yaml"); !strings.Contains(out, "name: ci-bot") || !strings.Contains(out, "kind: service") {
		t.Errorf("users yaml:\n%s", out)
	}
	must(admin, "", "workspaces", "create", "prod", "--description", "production")
	must(admin, "", "grants", "set", "prod", "ada", "maintainer")
	must(admin, "", "grants", "set", "prod", "ci-bot", "editor", "--resource-type", "registered_model", "--resource", "churn")
	if out := must(admin, "", "grants", "list", "prod"); !strings.Contains(out, "ci-bot") || !strings.Contains(out, "registered_model") || !strings.Contains(out, "maintainer") {
		t.Errorf("grants:\n%s", out)
	}
	if _, errOut, code := runAs(t, hs.URL, admin, "", "grants", "set", "prod", "ada", "boss"); code == 0 || !strings.Contains(errOut, "not a role") {
		t.Errorf("bad role: %d %s", code, errOut)
	}
	// A token for the service account, shown once, works as KILN_TOKEN
	// and as MLFLOW_TRACKING_TOKEN.
	var tok struct {
		Secret string       `json:"secret"`
		Token  access.Token `json:"token"`
	}
	if err := json.Unmarshal([]byte(must(admin, "", "tokens", "create", "--user", "ci-bot", "--scope", "write", "--workspace", "prod", "--ttl", "24h", "-o", "json")), &tok); err != nil || !strings.HasPrefix(tok.Secret, access.TokenPrefix) {
		t.Fatalf("token: %v %+v", err, tok)
	}
	for _, env := range []map[string]string{{"KILN_TOKEN": tok.Secret}, {"MLFLOW_TRACKING_TOKEN": tok.Secret}} {
		if out := must(env, "", "whoami", "-o", "json"); !strings.Contains(out, `"user": "ci-bot"`) || !strings.Contains(out, `"scope": "write"`) {
			t.Errorf("whoami with %v:\n%s", env, out)
		}
	}
	if out := must(admin, "", "tokens", "list", "--user", "ci-bot"); !strings.Contains(out, tok.Token.ID) || strings.Contains(out, tok.Secret) {
		t.Errorf("token list:\n%s", out)
	}
	// Ada changes her own password; the old one stops working.
	ada := map[string]string{"MLFLOW_TRACKING_USERNAME": "ada", "MLFLOW_TRACKING_PASSWORD": "ada-password-9"}
	must(ada, "ada-password-10\n", "users", "passwd", "ada")
	if _, _, code := runAs(t, hs.URL, ada, "", "whoami"); code == 0 {
		t.Error("the old password still works")
	}
	ada["MLFLOW_TRACKING_PASSWORD"] = "ada-password-10"
	must(ada, "", "whoami")
	// Ada is no server administrator.
	if _, errOut, code := runAs(t, hs.URL, ada, "", "users", "list"); code == 0 || !strings.Contains(errOut, "not a server administrator") {
		t.Errorf("ada lists users: %d %s", code, errOut)
	}
	must(admin, "", "tokens", "revoke", tok.Token.ID)
	if _, _, code := runAs(t, hs.URL, map[string]string{"KILN_TOKEN": tok.Secret}, "", "whoami"); code == 0 {
		t.Error("a revoked token still works")
	}

	// The audit log: listed, exported, verified here and from the file.
	if out := must(admin, "", "audit", "list", "--actor", "admin"); !strings.Contains(out, "POST /api/v1/users") {
		t.Errorf("audit list:\n%s", out)
	}
	export := filepath.Join(t.TempDir(), "audit.jsonl")
	must(admin, "", "audit", "export", "-f", export)
	data, err := os.ReadFile(export)
	if err != nil || bytes.Count(data, []byte("\n")) < 10 {
		t.Fatalf("export: %v, %d lines", err, bytes.Count(data, []byte("\n")))
	}
	if out := must(admin, "", "audit", "verify"); !strings.HasPrefix(out, "OK: ") {
		t.Errorf("verify: %s", out)
	}
	if out := must(nil, "", "audit", "verify", "--file", export); !strings.HasPrefix(out, "OK: ") {
		t.Errorf("verify file: %s", out)
	}
	// A changed line in the file is found.
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	lines[3] = strings.Replace(lines[3], `"actor":"admin"`, `"actor":"eve"`, 1)
	os.WriteFile(export, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	if out, _, code := runAs(t, hs.URL, nil, "", "audit", "verify", "--file", export); code != 1 || !strings.Contains(out, "TAMPERED: event 4") {
		t.Errorf("tampered file: %d %s", code, out)
	}
	// And so is a changed row in the server's database.
	db, err := store.Open(context.Background(), cfg.Store.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{`DROP TRIGGER audit_events_no_update`, `UPDATE audit_events SET actor = 'eve' WHERE seq = 5`} {
		if _, err := db.W.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if out, _, code := runAs(t, hs.URL, admin, "", "audit", "verify"); code != 1 || !strings.Contains(out, "TAMPERED: event 5") {
		t.Errorf("tampered database: %d %s", code, out)
	}
}

func TestApprovalCommands(t *testing.T) {
	cfg := config.Default()
	dir := t.TempDir()
	cfg.Store.URL = "sqlite://" + filepath.Join(dir, "kiln.db")
	cfg.Artifacts.URL = "file://" + filepath.Join(dir, "artifacts")
	cfg.Deploy.ModelCacheDir = filepath.Join(dir, "model-cache")
	cfg.Deploy.GRPCAddr = ""
	cfg.Pipeline.Disabled = true
	srv, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	must := func(args ...string) string {
		t.Helper()
		out, errOut, code := runAs(t, hs.URL, nil, "", args...)
		if code != 0 {
			t.Fatalf("kiln %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		return out
	}
	must("approvals", "set-policy", "prod", "--model", "churn", "--aliases", "champion", "--endpoints", "churn-prod", "--required", "1")
	if out := must("approvals", "policies"); !strings.Contains(out, "alias champion, endpoint churn-prod") {
		t.Errorf("policies:\n%s", out)
	}
	if _, errOut, code := runAs(t, hs.URL, nil, "", "approvals", "request", "churn/2"); code == 0 || !strings.Contains(errOut, "exactly one of alias or endpoint") {
		t.Errorf("request without a target: %d %s", code, errOut)
	}
	var r approval.Request
	if err := json.Unmarshal([]byte(must("approvals", "request", "churn/2", "--alias", "champion", "--reason", "better", "-o", "json")), &r); err != nil || r.State != "pending" {
		t.Fatalf("request: %v %+v", err, r)
	}
	// With access control off everyone is anonymous: the requester
	// cannot approve their own request.
	if _, errOut, code := runAs(t, hs.URL, nil, "", "approvals", "approve", r.ID); code == 0 || !strings.Contains(errOut, "cannot decide it") {
		t.Errorf("self-approval: %d %s", code, errOut)
	}
	if out := must("approvals", "list", "--state", "pending"); !strings.Contains(out, r.ID) || !strings.Contains(out, "0/1") {
		t.Errorf("list:\n%s", out)
	}
	must("approvals", "delete-policy", "prod")
	if out := must("approvals", "policies", "-o", "json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("after delete: %s", out)
	}
}
