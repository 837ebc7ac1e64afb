package server

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kiln-ml/kiln/config"
	"github.com/kiln-ml/kiln/pipeline"
)

const testKubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: https://127.0.0.1:6443
contexts:
- name: test
  context:
    cluster: test
    user: test
current-context: test
users:
- name: test
  user:
    token: abc
`

// TestPipelineKubernetesWiring starts a server with the Kubernetes
// executor on (no longer refused) from a kubeconfig file; a kubeconfig
// that cannot be read, or no kiln image, stops the server with a clear
// error.
func TestPipelineKubernetesWiring(t *testing.T) {
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(testKubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	cfg := testConfig(t)
	cfg.Pipeline.Kubernetes.Enabled = true
	cfg.Pipeline.Kubernetes.Kubeconfig = kubeconfig
	cfg.Pipeline.Kubernetes.Namespace = "ml"
	cfg.Pipeline.Kubernetes.ServerURL = "http://kiln.kiln.svc:5000"
	srv, err := New(context.Background(), cfg, log)
	if err != nil {
		t.Fatalf("a server with the Kubernetes executor: %v", err)
	}
	srv.Close()

	x, err := newKubeExecutor(cfg.Pipeline.Kubernetes, "http://127.0.0.1:5000", nil, log)
	if err != nil {
		t.Fatal(err)
	}
	job, err := x.BuildJob(testKubeTask())
	if err != nil {
		t.Fatal(err)
	}
	if job.Namespace != "ml" || job.Spec.Template.Spec.InitContainers[0].Image != config.Default().Pipeline.Kubernetes.KilnImage {
		t.Errorf("Job %s/%s, init image %s", job.Namespace, job.Name, job.Spec.Template.Spec.InitContainers[0].Image)
	}

	for _, tc := range []struct {
		name   string
		mod    func(*config.Kubernetes)
		errHas string
	}{
		{"missing kubeconfig", func(k *config.Kubernetes) { k.Kubeconfig = filepath.Join(t.TempDir(), "none") }, "kubeconfig"},
		{"no kiln image", func(k *config.Kubernetes) { k.KilnImage = "" }, "no kiln image"},
	} {
		kc := cfg.Pipeline.Kubernetes
		tc.mod(&kc)
		c := testConfig(t)
		c.Pipeline.Kubernetes = kc
		_, err := New(context.Background(), c, log)
		if err == nil || !strings.Contains(err.Error(), tc.errHas) {
			t.Errorf("%s: New = %v, want an error with %q", tc.name, err, tc.errHas)
		}
	}
	if !isLoopbackURL("http://127.0.0.1:5000") || !isLoopbackURL("http://localhost:1") || isLoopbackURL("http://kiln.svc:5000") {
		t.Error("isLoopbackURL")
	}
}

func testKubeTask() *pipeline.Task {
	return &pipeline.Task{Pipeline: "p", RunID: "01J", Step: "s", Attempt: 1, Image: "busybox", Command: []string{"true"}}
}
