package local

import (
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/pipeline"
)

func envMap(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func TestBuildEnvRefAndPath(t *testing.T) {
	task := &pipeline.Task{Inputs: []pipeline.TaskInput{
		{Name: "data", URI: "dataset:iris@3"},
		{Name: "model", URI: "runs:/abc/model"},
		{Name: "data_ref", Value: "own"},
	}}
	paths := map[string]string{"data": "/in/data", "model": "/in/model"}
	tests := []struct {
		name     string
		base     []string
		kilnDir  string
		wantPath string
	}{
		{"prepended", []string{"PATH=/usr/bin:/bin"}, "/opt/kiln", "/opt/kiln:/usr/bin:/bin"},
		{"not duplicated", []string{"PATH=/opt/kiln:/usr/bin"}, "/opt/kiln", "/opt/kiln:/usr/bin"},
		{"relative ignored", []string{"PATH=/usr/bin"}, "rel/kiln", "/usr/bin"},
		{"empty ignored", []string{"PATH=/usr/bin"}, "", "/usr/bin"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env, err := buildEnv(tc.base, task, "/in", "/out", paths, tc.kilnDir)
			if err != nil {
				t.Fatal(err)
			}
			m := envMap(env)
			if got := m["PATH"]; got != tc.wantPath {
				t.Errorf("PATH = %q, want %q", got, tc.wantPath)
			}
			if got := m["KILN_INPUT_MODEL_REF"]; got != "" {
				t.Errorf("KILN_INPUT_MODEL_REF = %q for a non-dataset input", got)
			}
			if got := m["KILN_INPUT_DATA_REF"]; got != "own" {
				t.Errorf("KILN_INPUT_DATA_REF = %q, want the input's own value %q", got, "own")
			}
			if got := m["KILN_INPUT_DATA"]; got != "/in/data" {
				t.Errorf("KILN_INPUT_DATA = %q", got)
			}
		})
	}
	env, err := buildEnv(nil, &pipeline.Task{Inputs: task.Inputs[:2]}, "/in", "/out", paths, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := envMap(env)["KILN_INPUT_DATA_REF"]; got != "iris@3" {
		t.Errorf("KILN_INPUT_DATA_REF = %q, want iris@3", got)
	}
}
