package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/api"
)

// kiln model copy against a whole server (access control off: only the
// default workspace exists, so a copy stays in it under a new name).
func TestModelCopyCLI(t *testing.T) {
	k := newTestServer(t)
	cardPost(t, k.server, "registered-models/create", map[string]any{"name": "churn"})
	cardPost(t, k.server, "model-versions/create", map[string]any{"name": "churn", "source": "s3://models/churn/1",
		"tags": []map[string]any{{"key": "team", "value": "risk"}}})

	out := cardRun(t, k.server, "model", "copy", "churn/1", "--to-workspace", "default", "--name", "churn-copy", "-o", "json")
	var v api.ModelVersion
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if v.Name != "churn-copy" || v.Version != 1 || v.CopiedFrom != "default:churn/1" || v.Source != "s3://models/churn/1" || v.Tags["team"] != "risk" {
		t.Errorf("copy = %+v", v)
	}
	out = cardRun(t, k.server, "model", "copy", "models:/churn/1", "--to-workspace", "default", "--name", "churn-copy", "--description", "again")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[1]), " ") != "default churn-copy 2 default:churn/1 s3://models/churn/1" {
		t.Errorf("table:\n%s", out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"churn/1", "--to-workspace", "prod", "--name", "x"}, "access control off"},
		{[]string{"churn/1", "--name", "x"}, "--to-workspace (--to) is required"},
		{[]string{"churn", "--to-workspace", "prod", "--name", "x"}, "NAME/VERSION"},
		{[]string{"churn/9", "--to-workspace", "default", "--name", "x"}, "not found"},
		{[]string{"churn/1", "--to-workspace", "default", "--name", "x", "-o", "xml"}, "unknown --output"},
	} {
		_, errOut, code := runGate(t, append([]string{"model", "copy", "--server", k.server}, tc.args...)...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("kiln model copy %s: exit %d %q, want an error with %q", strings.Join(tc.args, " "), code, errOut, tc.want)
		}
	}
}
