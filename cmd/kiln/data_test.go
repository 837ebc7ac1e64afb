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
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/api"
	"github.com/kiln-ml/kiln/config"
	"github.com/kiln-ml/kiln/dataset"
	"github.com/kiln-ml/kiln/dataset/validate"
	"github.com/kiln-ml/kiln/server"
)

func TestServerURL(t *testing.T) {
	for _, tc := range []struct {
		flag string
		env  map[string]string
		want string
	}{
		{"", nil, defaultServer},
		{"http://flag:1", map[string]string{"KILN_URL": "http://env:2"}, "http://flag:1"},
		{"", map[string]string{"KILN_URL": "http://env:2", "MLFLOW_TRACKING_URI": "http://mlflow:3"}, "http://env:2"},
		{"", map[string]string{"MLFLOW_TRACKING_URI": "https://mlflow:3"}, "https://mlflow:3"},
		{"", map[string]string{"MLFLOW_TRACKING_URI": "file:./mlruns"}, defaultServer},
		{"", map[string]string{"MLFLOW_TRACKING_URI": "databricks"}, defaultServer},
	} {
		if got := serverURL(tc.flag, func(k string) string { return tc.env[k] }); got != tc.want {
			t.Errorf("serverURL(%q, %v) = %q, want %q", tc.flag, tc.env, got, tc.want)
		}
	}
}

func TestSplitParts(t *testing.T) {
	for _, tc := range []struct {
		names, fractions string
		cuts             int
		want             []dataset.SplitPart
		err              bool
	}{
		{"", "", 0, nil, false},
		{"", "0.8,0.1,0.1", 0, []dataset.SplitPart{part("train", 0.8), part("validation", 0.1), part("test", 0.1)}, false},
		{"", "0.9, 0.1", 0, []dataset.SplitPart{part("train", 0.9), part("test", 0.1)}, false},
		{"a,b,c,d", "0.25,0.25,0.25,0.25", 0, []dataset.SplitPart{part("a", 0.25), part("b", 0.25), part("c", 0.25), part("d", 0.25)}, false},
		{"train,test", "", 1, []dataset.SplitPart{part("train", 0), part("test", 0)}, false},
		{"", "", 1, []dataset.SplitPart{part("train", 0), part("test", 0)}, false},
		{"", "0.5,0.3,0.1,0.1", 0, nil, true},
		{"a,b", "0.5,0.3,0.2", 0, nil, true},
		{"a,b", "", 0, nil, true},
		{"", "0.5,x", 0, nil, true},
	} {
		got, err := splitParts(tc.names, tc.fractions, tc.cuts)
		if (err != nil) != tc.err || !tc.err && !equalParts(got, tc.want) {
			t.Errorf("splitParts(%q, %q, %d) = %v, %v; want %v (error %v)", tc.names, tc.fractions, tc.cuts, got, err, tc.want, tc.err)
		}
	}
}

func part(name string, f float64) dataset.SplitPart {
	return dataset.SplitPart{Name: name, Fraction: f}
}

func equalParts(a, b []dataset.SplitPart) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestWriteYAMLKeepsJSONNamesAndTypes(t *testing.T) {
	var buf bytes.Buffer
	err := writeYAML(&buf, map[string]any{"tags": map[string]string{"ok": "yes", "n": "123", "s": "plain"}, "version": 3, "list": []string{}})
	if err != nil {
		t.Fatal(err)
	}
	want := "list: []\ntags:\n  \"n\": \"123\"\n  ok: \"yes\"\n  s: plain\nversion: 3\n"
	if buf.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestParseModelVersion(t *testing.T) {
	for in, want := range map[string]string{"churn/4": "churn 4", "models:/churn/4": "churn 4", "a/b/2": "a/b 2", "churn": "", "churn/0": "", "/4": ""} {
		name, v, err := parseModelVersion(in)
		got := ""
		if err == nil {
			got = name + " " + itoa(v)
		}
		if got != want {
			t.Errorf("parseModelVersion(%q) = %q (%v), want %q", in, got, err, want)
		}
	}
}

func itoa(v int64) string { b, _ := json.Marshal(v); return string(b) }

// kilnCLI runs the kiln command line against a server.
type kilnCLI struct {
	t      *testing.T
	server string
	cache  string
}

func newTestServer(t *testing.T) *kilnCLI {
	cfg := config.Default()
	dir := t.TempDir()
	cfg.Store.URL = "sqlite://" + filepath.Join(dir, "kiln.db")
	cfg.Artifacts.URL = "file://" + filepath.Join(dir, "artifacts")
	cfg.Deploy.ModelCacheDir = filepath.Join(dir, "model-cache")
	cfg.Deploy.GRPCAddr = "" // no shared gRPC port between test servers
	srv, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { hs.Close(); srv.Close() })
	return &kilnCLI{t: t, server: hs.URL, cache: t.TempDir()}
}

// run runs kiln with args and returns its standard output and exit code.
func (k *kilnCLI) run(args ...string) (string, int) {
	k.t.Helper()
	cmd := newRootCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetIn(strings.NewReader(""))
	cmd.SetArgs(append(args, "--server", k.server, "--cache-dir", k.cache))
	err := cmd.ExecuteContext(context.Background())
	code := 0
	if err != nil {
		var msg error
		code, msg = exitCode(err)
		if msg != nil {
			errOut.WriteString("kiln: " + msg.Error())
		}
	}
	if code != 0 {
		k.t.Logf("kiln %s: exit %d\n%s", strings.Join(args, " "), code, errOut.String())
	}
	return out.String(), code
}

func (k *kilnCLI) mustRun(args ...string) string {
	k.t.Helper()
	out, code := k.run(args...)
	if code != 0 {
		k.t.Fatalf("kiln %s: exit %d", strings.Join(args, " "), code)
	}
	return out
}

func (k *kilnCLI) json(v any, args ...string) {
	k.t.Helper()
	out := k.mustRun(append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		k.t.Fatalf("kiln %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	old := time.Now().Add(-time.Hour)
	for p, c := range files {
		full := filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(full, old, old)
	}
}

// TestDataWorkflow walks the documented workflow: add → push → pull /
// checkout → diff → profile → validate (exit codes) → split → lineage.
func TestDataWorkflow(t *testing.T) {
	k := newTestServer(t)
	src := t.TempDir()
	writeFiles(t, src, map[string]string{"train.csv": "id,amount,label\n1,10,a\n2,20,b\n3,30,a\n4,40,b\n", "notes/readme.txt": "v1\n"})

	var added addResult
	k.json(&added, "data", "add", "sales", src, "-m", "first load", "--tag", "source=erp", "--description", "sales data")
	if !added.Created || added.Version.Version != 1 || added.Version.Tags["source"] != "erp" || added.Transfer.Sent != 2 || added.Hash.HashedFiles != 2 {
		t.Fatalf("add: %+v", added)
	}
	// Unchanged files come from the stat cache the second time.
	k.json(&added, "data", "add", "sales", src)
	if added.Created || added.Hash.CachedFiles != 2 || added.Transfer.Sent != 0 {
		t.Fatalf("re-add: created %v, hash %+v, transfer %+v", added.Created, added.Hash, added.Transfer)
	}
	writeFiles(t, src, map[string]string{"train.csv": "id,amount,label,region\n1,10,a,eu\n2,20,b,us\n3,30,a,eu\n4,40,b,us\n5,50,a,eu\n6,60,b,us\n"})
	k.json(&added, "data", "add", "sales", src, "-m", "with regions")
	if added.Version.Version != 2 || added.Transfer.Sent != 1 {
		t.Fatalf("v2: %+v %+v", added.Version, added.Transfer)
	}

	var ds []dataset.Dataset
	k.json(&ds, "data", "list")
	if len(ds) != 1 || ds[0].Name != "sales" || ds[0].Description != "sales data" || ds[0].LatestVersion != 2 {
		t.Fatalf("list: %+v", ds)
	}
	if out := k.mustRun("data", "versions", "sales"); !strings.Contains(out, "with regions") || !strings.Contains(out, "first load") {
		t.Fatalf("versions table:\n%s", out)
	}
	if out := k.mustRun("data", "versions", "sales", "-o", "yaml"); !strings.Contains(out, "- dataset: sales\n") {
		t.Fatalf("versions yaml:\n%s", out)
	}

	// Push from the folder: everything is there already.
	if out := k.mustRun("data", "push", "sales@2", src); !strings.Contains(out, "uploaded 0 of 2 objects") {
		t.Fatalf("push:\n%s", out)
	}
	// A folder that does not hold the version is refused.
	other := t.TempDir()
	writeFiles(t, other, map[string]string{"x": "y"})
	if _, code := k.run("data", "push", "sales@2", other); code != 1 {
		t.Fatalf("push of other content: exit %d", code)
	}

	// Pull v1, then check out v2 over it from the cache with --clean.
	dst := filepath.Join(t.TempDir(), "work")
	k.mustRun("data", "pull", "sales@1", dst)
	if b, _ := os.ReadFile(filepath.Join(dst, "train.csv")); !strings.HasPrefix(string(b), "id,amount,label\n") {
		t.Fatalf("pulled v1: %q", b)
	}
	os.WriteFile(filepath.Join(dst, "junk.txt"), []byte("junk"), 0o644)
	if _, code := k.run("data", "checkout", "sales@2", dst, "--clean"); code != 1 {
		t.Fatalf("checkout of objects not in the cache should fail, got exit %d", code)
	}
	k.mustRun("data", "pull", "sales@2", t.TempDir()) // fills the cache
	os.WriteFile(filepath.Join(dst, "junk.txt"), []byte("junk"), 0o644)
	var co checkoutResult
	k.json(&co, "data", "checkout", "sales@2", dst, "--clean")
	if co.Stats.Written != 1 || co.Stats.Unchanged != 1 || co.Stats.Removed != 1 {
		t.Fatalf("checkout: %+v", co.Stats)
	}
	if _, err := os.Stat(filepath.Join(dst, "junk.txt")); !os.IsNotExist(err) {
		t.Fatalf("--clean left junk.txt: %v", err)
	}

	// Diff: files and table rows/schema.
	var d api.DiffResponse
	k.json(&d, "data", "diff", "sales@1", "sales@2")
	if len(d.Files.Changed) != 1 || len(d.Tables) != 1 || *d.Tables[0].OldRows != 4 || *d.Tables[0].NewRows != 6 || len(d.Tables[0].SchemaChanges) != 1 {
		t.Fatalf("diff: %+v", d)
	}
	if out := k.mustRun("data", "diff", "sales"); !strings.Contains(out, "rows 4 → 6") || !strings.Contains(out, "added region") {
		t.Fatalf("diff table:\n%s", out)
	}

	// Profile: computed once, then read back.
	if out := k.mustRun("data", "profile", "sales@2"); !strings.Contains(out, "6 rows, 4 columns") || !strings.Contains(out, "amount") {
		t.Fatalf("profile:\n%s", out)
	}
	var p api.ProfileResponse
	k.json(&p, "data", "profile", "sales@2")
	if !p.Stored || p.Profile.Rows != 6 {
		t.Fatalf("stored profile: %+v", p)
	}

	// Validate: exit 0 when the suite passes, 1 when it fails, 2 when it cannot run.
	dir := t.TempDir()
	pass := filepath.Join(dir, "pass.yaml")
	fail := filepath.Join(dir, "fail.yaml")
	os.WriteFile(pass, []byte("kind: ValidationSuite\nname: ok\nrules:\n  - check: not_null\n    column: id\n"), 0o644)
	os.WriteFile(fail, []byte("kind: ValidationSuite\nname: strict\nrules:\n  - check: range\n    column: amount\n    max: 25\n"), 0o644)
	if out, code := k.run("data", "validate", "sales@2", "-f", pass); code != validate.ExitPassed || !strings.Contains(out, "PASSED") {
		t.Fatalf("passing suite: exit %d\n%s", code, out)
	}
	if out, code := k.run("data", "validate", "sales@2", "-f", fail); code != validate.ExitFailed || !strings.Contains(out, "FAILED") {
		t.Fatalf("failing suite: exit %d\n%s", code, out)
	}
	if _, code := k.run("data", "validate", "sales@2", "-f", filepath.Join(dir, "missing.yaml")); code != validate.ExitError {
		t.Fatalf("missing suite: exit %d", code)
	}
	if _, code := k.run("data", "validate", "nope@1", "-f", pass); code != validate.ExitError {
		t.Fatalf("unknown dataset: exit %d", code)
	}
	if out, code := k.run("data", "validate", "--local", filepath.Join(src, "train.csv"), "-f", fail); code != validate.ExitFailed || !strings.Contains(out, "range(amount)") {
		t.Fatalf("local validation: exit %d\n%s", code, out)
	}
	var det api.VersionDetail
	k.json(&det, "data", "show", "sales@2")
	if len(det.Validations) != 2 || det.Validations[0].Passed == det.Validations[1].Passed {
		t.Fatalf("validations on the version: %+v", det.Validations)
	}
	// The versions table shows the profile's rows and the latest validation.
	if out := k.mustRun("data", "versions", "sales"); !regexp.MustCompile(`(?m)^2 .*\b6\s+FAILED \(strict\)`).MatchString(out) {
		t.Fatalf("versions table after profile and validate:\n%s", out)
	}

	// Split into parts of their own, twice: nothing new the second time.
	var sp api.SplitResponse
	k.json(&sp, "data", "split", "sales@2", "--method", "stratified", "--column", "label", "--fractions", "0.5,0.5", "--seed", "42", "--path", "train.csv")
	if len(sp.Outputs) != 2 || sp.Outputs[0].Version.Dataset != "sales-train" || sp.Outputs[0].Rows+sp.Outputs[1].Rows != 6 || !sp.Outputs[0].Created {
		t.Fatalf("split: %+v", sp.Outputs)
	}
	k.json(&sp, "data", "split", "sales@2", "--method", "stratified", "--column", "label", "--fractions", "0.5,0.5", "--seed", "42", "--path", "train.csv")
	if sp.Outputs[0].Created {
		t.Fatalf("repeated split created a version")
	}

	// Tags and lineage.
	k.mustRun("data", "tag", "sales@2", "approved=true")
	k.mustRun("data", "tag", "sales", "owner=ana")
	var lin api.Lineage
	k.json(&lin, "data", "lineage", "sales@2")
	if len(lin.Children) != 2 || len(lin.Runs) != 0 {
		t.Fatalf("lineage: %+v", lin)
	}
	if out := k.mustRun("data", "lineage", "sales@2"); !strings.Contains(out, "kiln://datasets/sales@2") {
		t.Fatalf("lineage table:\n%s", out)
	}
	k.json(&det, "data", "show", "sales@2")
	if det.Version.Tags["approved"] != "true" {
		t.Fatalf("version tags %v", det.Version.Tags)
	}
	if _, code := k.run("data", "lineage"); code != 1 {
		t.Fatalf("lineage without a target: exit %d", code)
	}
	if _, code := k.run("data", "list", "-o", "xml"); code != 1 {
		t.Fatalf("bad --output: exit %d", code)
	}
}
