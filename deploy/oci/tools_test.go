package oci

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// needTool finds a command-line tool; without it the test skips, except
// under CI=true, where .ci/run installs it and its absence is a failure.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (CI=true): %v", name, err)
		}
		t.Skipf("%s is not installed (apt-get install %s)", name, name)
	}
	return p
}

func runTool(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, stderr.String())
	}
	return out
}

// TestSkopeoInspect reads each output format with skopeo, the standard
// tool of containers/image (podman's and CRI-O's image library).
func TestSkopeoInspect(t *testing.T) {
	skopeo := needTool(t, "skopeo")
	img := build(t, Options{ModelDir: fixture, Binary: fakeBinary(t, "k")})
	dir := t.TempDir()
	archive, docker, lay := filepath.Join(dir, "out.tar"), filepath.Join(dir, "docker.tar"), filepath.Join(dir, "layout")
	if err := img.WriteOCIArchiveFile(archive, "iris:3"); err != nil {
		t.Fatal(err)
	}
	if err := img.WriteDockerFile(docker, "iris:3"); err != nil {
		t.Fatal(err)
	}
	if err := img.WriteLayout(lay, "iris:3"); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"oci-archive:" + archive, "oci-archive:" + archive + ":iris:3", "oci:" + lay + ":iris:3", "docker-archive:" + docker} {
		t.Run(strings.ReplaceAll(ref, dir+"/", ""), func(t *testing.T) {
			var cfg struct {
				Architecture string `json:"architecture"`
				OS           string `json:"os"`
				Config       struct {
					User         string              `json:"User"`
					ExposedPorts map[string]struct{} `json:"ExposedPorts"`
					Env          []string            `json:"Env"`
					Entrypoint   []string            `json:"Entrypoint"`
					Cmd          []string            `json:"Cmd"`
					WorkingDir   string              `json:"WorkingDir"`
					Labels       map[string]string   `json:"Labels"`
				} `json:"config"`
				RootFS struct {
					DiffIDs []string `json:"diff_ids"`
				} `json:"rootfs"`
			}
			if err := json.Unmarshal(runTool(t, skopeo, "inspect", "--config", ref), &cfg); err != nil {
				t.Fatal(err)
			}
			c := cfg.Config
			if cfg.OS != "linux" || cfg.Architecture != "amd64" || c.User != "65532:65532" || c.WorkingDir != "/model" {
				t.Errorf("os %s arch %s user %s workdir %s", cfg.OS, cfg.Architecture, c.User, c.WorkingDir)
			}
			if !slices.Equal(c.Entrypoint, []string{"/usr/local/bin/kiln", "serve", "/model"}) || !slices.Equal(c.Cmd[:4], []string{"--addr", "0.0.0.0:8080", "--grpc-addr", "0.0.0.0:8081"}) {
				t.Errorf("entrypoint %q cmd %q", c.Entrypoint, c.Cmd)
			}
			if _, ok := c.ExposedPorts["8080/tcp"]; !ok || len(c.ExposedPorts) != 2 {
				t.Errorf("ports %v", c.ExposedPorts)
			}
			if !slices.Contains(c.Env, "XDG_CACHE_HOME=/tmp") {
				t.Errorf("env %q", c.Env)
			}
			if c.Labels[LabelModelURI] != "models:/iris/3" || c.Labels[LabelModelFlavor] != "onnx" || c.Labels[LabelTitle] != "iris" || c.Labels[LabelVersion] != "3" || c.Labels[LabelCreated] != "1970-01-01T00:00:00Z" {
				t.Errorf("labels %v", c.Labels)
			}
			if len(cfg.RootFS.DiffIDs) != 3 {
				t.Errorf("%d layers", len(cfg.RootFS.DiffIDs))
			}

			var info struct {
				Digest string   `json:"Digest"`
				Layers []string `json:"Layers"`
			}
			if err := json.Unmarshal(runTool(t, skopeo, "inspect", ref), &info); err != nil {
				t.Fatal(err)
			}
			if len(info.Layers) != 3 {
				t.Errorf("skopeo inspect: %d layers", len(info.Layers))
			}
			if !strings.HasPrefix(ref, "docker-archive:") && info.Digest != img.Digest.String() {
				t.Errorf("skopeo digest %s, want %s", info.Digest, img.Digest)
			}
		})
	}
	// skopeo copies (and so verifies every blob's digest) between formats.
	runTool(t, skopeo, "copy", "--quiet", "oci-archive:"+archive, "oci:"+filepath.Join(dir, "copied")+":iris:3")
	runTool(t, skopeo, "copy", "--quiet", "docker-archive:"+docker, "oci:"+filepath.Join(dir, "copied")+":from-docker")
}

// TestUmociUnpack unpacks the image into a root filesystem with umoci,
// as a container runtime would, and checks the files.
func TestUmociUnpack(t *testing.T) {
	umoci := needTool(t, "umoci")
	img := build(t, Options{ModelDir: fixture, Binary: fakeBinary(t, "the kiln binary")})
	dir := t.TempDir()
	lay := filepath.Join(dir, "layout")
	if err := img.WriteLayout(lay, "iris"); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(dir, "bundle")
	runTool(t, umoci, "unpack", "--rootless", "--image", lay+":iris", bundle)
	rootfs := filepath.Join(bundle, "rootfs")
	mlmodel, _ := os.ReadFile(filepath.Join(fixture, "MLmodel"))
	onnx, _ := os.ReadFile(filepath.Join(fixture, "model.onnx"))
	for path, want := range map[string]string{
		"usr/local/bin/kiln": "the kiln binary",
		"model/MLmodel":      string(mlmodel),
		"model/model.onnx":   string(onnx),
	} {
		got, err := os.ReadFile(filepath.Join(rootfs, path))
		if err != nil || string(got) != want {
			t.Errorf("%s: %d bytes, %v; want %d bytes", path, len(got), err, len(want))
		}
	}
	for path, want := range map[string]os.FileMode{"usr/local/bin/kiln": 0o755, "model/MLmodel": 0o644, "tmp": os.ModeDir | os.ModeSticky | 0o777} {
		st, err := os.Stat(filepath.Join(rootfs, path))
		if err != nil || st.Mode() != want {
			t.Errorf("%s: mode %v, %v; want %v", path, st.Mode(), err, want)
		}
	}
	var spec struct {
		Process struct {
			Args []string `json:"args"`
			Cwd  string   `json:"cwd"`
			Env  []string `json:"env"`
		} `json:"process"`
	}
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	if want := []string{"/usr/local/bin/kiln", "serve", "/model", "--addr", "0.0.0.0:8080", "--grpc-addr", "0.0.0.0:8081", "--name", "iris"}; !slices.Equal(spec.Process.Args, want) || spec.Process.Cwd != "/model" {
		t.Errorf("runtime config: args %q cwd %q; want %q", spec.Process.Args, spec.Process.Cwd, want)
	}
}
