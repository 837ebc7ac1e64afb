package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

const packageFixture = "../../model/testdata/onnx_logreg"

// buildStaticKiln cross-builds a static kiln for linux on this machine's
// architecture into dir: what `kiln package` puts in images.
func buildStaticKiln(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "kiln")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestPackage runs the kiln package tests that need a real static kiln,
// built once.
func TestPackage(t *testing.T) {
	bin := buildStaticKiln(t, t.TempDir())
	t.Run("RunsWithoutAContainerEngine", func(t *testing.T) { testPackageRunsWithoutAContainerEngine(t, bin) })
	t.Run("Refuses", func(t *testing.T) { testPackageRefuses(t, bin) })
	t.Run("RegisteredModel", func(t *testing.T) { testPackageRegisteredModel(t, bin) })
}

// needTool finds a tool; it skips without one, except under CI=true,
// where .ci/run installs it and its absence fails.
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

// kiln runs the command line in process and returns stdout, stderr and
// the error.
func kiln(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

var digestRE = regexp.MustCompile(`digest   (sha256:[0-9a-f]{64})`)

// testPackageRunsWithoutAContainerEngine packages the fixture model with
// a real static kiln, checks the image with skopeo, unpacks it with umoci
// and runs the unpacked root filesystem's kiln, with the image's own
// arguments, against the unpacked model: it answers predictions.
func testPackageRunsWithoutAContainerEngine(t *testing.T, bin string) {
	skopeo, umoci := needTool(t, "skopeo"), needTool(t, "umoci")
	dir := t.TempDir()
	archive, docker, lay := filepath.Join(dir, "iris.tar"), filepath.Join(dir, "iris-docker.tar"), filepath.Join(dir, "layout")
	t.Setenv("SOURCE_DATE_EPOCH", "1767225600")
	out, stderr, err := kiln(t, "package", packageFixture, "--oci", archive, "--docker", docker, "--layout", lay,
		"--kiln-binary", bin, "--tag", "iris:1", "--label", "team=ml")
	if err != nil {
		t.Fatalf("kiln package: %v\n%s", err, stderr)
	}
	m := digestRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no digest in the output:\n%s", out)
	}
	digest := m[1]
	for _, want := range []string{"image iris:1", "onnx", "podman load -i " + archive, "skopeo copy oci-archive:" + archive + " docker-daemon:iris:1", "docker load -i " + docker} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(stderr, "packing model") {
		t.Errorf("no progress on stderr: %q", stderr)
	}

	// Reproducible through the command line too.
	again, stderr, err := kiln(t, "package", packageFixture, "--oci", filepath.Join(dir, "again.tar"), "--kiln-binary", bin, "--tag", "iris:1", "--label", "team=ml", "-q")
	if err != nil {
		t.Fatalf("kiln package: %v\n%s", err, stderr)
	}
	if strings.TrimSpace(again) != digest {
		t.Errorf("second build: %q, want %s", again, digest)
	}
	a, _ := os.ReadFile(archive)
	b, _ := os.ReadFile(filepath.Join(dir, "again.tar"))
	if !bytes.Equal(a, b) {
		t.Error("the two OCI archives differ")
	}

	var cfg struct {
		Config struct {
			User       string
			Entrypoint []string
			Cmd        []string
			Labels     map[string]string
		} `json:"config"`
		Created string `json:"created"`
	}
	for _, ref := range []string{"oci-archive:" + archive, "docker-archive:" + docker, "oci:" + lay + ":iris:1"} {
		raw, err := exec.Command(skopeo, "inspect", "--config", ref).Output()
		if err != nil {
			t.Fatalf("skopeo inspect %s: %v", ref, err)
		}
		if err := json.Unmarshal(raw, &cfg); err != nil {
			t.Fatal(err)
		}
		c := cfg.Config
		if c.User != "65532:65532" || c.Labels["kiln.model.flavor"] != "onnx" || c.Labels["team"] != "ml" ||
			c.Labels["org.opencontainers.image.created"] != "2026-01-01T00:00:00Z" || !strings.HasPrefix(cfg.Created, "2026-01-01T00:00:00") {
			t.Errorf("%s: config %+v created %s", ref, c, cfg.Created)
		}
	}
	raw, err := exec.Command(skopeo, "inspect", "oci-archive:"+archive).Output()
	if err != nil || !strings.Contains(string(raw), digest) {
		t.Errorf("skopeo inspect: digest %s not in %s (%v)", digest, raw, err)
	}

	bundle := filepath.Join(dir, "bundle")
	if out, err := exec.Command(umoci, "unpack", "--rootless", "--image", lay+":iris:1", bundle).CombinedOutput(); err != nil {
		t.Fatalf("umoci unpack: %v\n%s", err, out)
	}
	rootfs := filepath.Join(bundle, "rootfs")
	for path, src := range map[string]string{"usr/local/bin/kiln": bin, "model/MLmodel": filepath.Join(packageFixture, "MLmodel"), "model/model.onnx": filepath.Join(packageFixture, "model.onnx")} {
		got, err := os.ReadFile(filepath.Join(rootfs, path))
		want, _ := os.ReadFile(src)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s in the image: %d bytes (%v), want the %d of %s", path, len(got), err, len(want), src)
		}
	}

	// Run the image's process (from the runtime config umoci wrote) with
	// its paths inside the unpacked root and its addresses on loopback.
	var spec struct {
		Process struct {
			Args []string `json:"args"`
			Env  []string `json:"env"`
		} `json:"process"`
	}
	rawSpec, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(rawSpec, &spec); err != nil {
		t.Fatal(err)
	}
	args := slices.Clone(spec.Process.Args)
	if len(args) < 3 || args[0] != "/usr/local/bin/kiln" || args[2] != "/model" {
		t.Fatalf("image process %q", args)
	}
	addr := freeAddr(t)
	for i, a := range args {
		switch {
		case i == 0 || a == "/model":
			args[i] = filepath.Join(rootfs, a)
		case a == "0.0.0.0:8080":
			args[i] = addr
		case a == "0.0.0.0:8081":
			args[i] = freeAddr(t)
		}
	}
	proc := exec.Command(args[0], args[1:]...)
	proc.Dir = filepath.Join(rootfs, "model")
	proc.Env = []string{"XDG_CACHE_HOME=" + t.TempDir(), "PATH=/usr/bin:/bin"}
	var logs bytes.Buffer
	proc.Stdout, proc.Stderr = &logs, &logs
	if err := proc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		proc.Process.Kill()
		proc.Wait()
		if t.Failed() {
			t.Logf("kiln serve log:\n%s", logs.String())
		}
	})
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(base + "/v2/health/ready")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the unpacked kiln did not become ready: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The image names the model after its directory (--name onnx_logreg).
	res, err := http.Post(base+"/v2/models/onnx_logreg/infer", "application/json", strings.NewReader(
		`{"inputs":[{"name":"X","shape":[2,4],"datatype":"FP32","data":[5.1,3.5,1.4,0.2,6.7,3.0,5.2,2.3]}],"outputs":[{"name":"output_label"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), `"name":"output_label","datatype":"INT64","shape":[2],"data":[0,2]`) {
		t.Errorf("infer = %d %s", res.StatusCode, body)
	}
}

func testPackageRefuses(t *testing.T, bin string) {
	dir := t.TempDir()
	notELF := filepath.Join(dir, "kiln.sh")
	os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755)
	out := filepath.Join(dir, "out.tar")
	t.Setenv("KILN_URL", "")
	t.Setenv("MLFLOW_TRACKING_URI", "")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no output", []string{packageFixture}, "--oci FILE, --docker FILE and/or --layout DIR"},
		{"two to stdout", []string{packageFixture, "--oci", "-", "--docker", "-"}, "only one of --oci and --docker"},
		{"platform", []string{packageFixture, "--oci", out, "--platform", "windows/amd64"}, "want linux/amd64 or linux/arm64"},
		{"not a binary", []string{packageFixture, "--oci", out, "--kiln-binary", notELF}, "not a Linux (ELF) executable"},
		{"not kiln", []string{packageFixture, "--oci", out, "--kiln-binary", "GO"}, "is not kiln"},
		{"model file", []string{filepath.Join(packageFixture, "model.onnx"), "--oci", out, "--kiln-binary", "BIN"}, "needs an MLflow model directory"},
		{"no model", []string{filepath.Join(dir, "missing"), "--oci", out, "--kiln-binary", "BIN"}, "no such file"},
		{"registry without server", []string{"models:/iris/1", "--oci", out, "--kiln-binary", "BIN"}, "set --tracking-uri"},
		{"bad tag", []string{packageFixture, "--oci", out, "--kiln-binary", "BIN", "--tag", "Iris:1"}, "--tag"},
		{"bad label", []string{packageFixture, "--oci", out, "--kiln-binary", "BIN", "--label", "novalue"}, "--label"},
		{"bad base", []string{packageFixture, "--oci", out, "--kiln-binary", "BIN", "--base", notELF}, "base image"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := slices.Clone(tt.args)
			for i, a := range args {
				switch a {
				case "BIN":
					args[i] = bin
				case "GO": // a Go binary for this platform, but not kiln
					args[i] = filepath.Join(goruntime.GOROOT(), "bin", "gofmt")
				}
			}
			_, stderr, err := kiln(t, append([]string{"package"}, args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q\n%s", err, tt.want, stderr)
			}
			if _, serr := os.Stat(out); serr == nil {
				t.Errorf("%s was written", out)
			}
		})
	}
	t.Run("bad SOURCE_DATE_EPOCH", func(t *testing.T) {
		t.Setenv("SOURCE_DATE_EPOCH", "yesterday")
		if _, _, err := kiln(t, "package", packageFixture, "--oci", out); err == nil || !strings.Contains(err.Error(), "SOURCE_DATE_EPOCH") {
			t.Errorf("err = %v", err)
		}
	})
}

// testPackageRegisteredModel packages models:/NAME/VERSION through a
// Kiln server: the labels and the default tag carry name and version.
func testPackageRegisteredModel(t *testing.T, bin string) {
	k := newTestServer(t)
	call := func(method, path string, body []byte) map[string]any {
		req, _ := http.NewRequest(method, k.server+path, bytes.NewReader(body))
		if method == "POST" {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 {
			t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, raw)
		}
		out := map[string]any{}
		json.Unmarshal(raw, &out)
		return out
	}
	mlflow := func(path string, body any) map[string]any {
		b, _ := json.Marshal(body)
		return call("POST", "/api/2.0/mlflow/"+path, b)
	}
	info := mlflow("runs/create", map[string]any{"experiment_id": "0"})["run"].(map[string]any)["info"].(map[string]any)
	runID, artifacts := info["run_id"].(string), info["artifact_uri"].(string)
	key, ok := strings.CutPrefix(artifacts, "mlflow-artifacts:/")
	if !ok {
		t.Fatalf("artifact URI %s is not proxied", artifacts)
	}
	ents, _ := os.ReadDir(packageFixture)
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(packageFixture, e.Name()))
		call("PUT", "/api/2.0/mlflow-artifacts/artifacts/"+key+"/model/"+e.Name(), b)
	}
	mlflow("registered-models/create", map[string]any{"name": "Iris Classifier"})
	mlflow("model-versions/create", map[string]any{"name": "Iris Classifier", "source": "runs:/" + runID + "/model", "run_id": runID})
	t.Setenv("KILN_URL", k.server)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	lay := filepath.Join(t.TempDir(), "layout")
	out, stderr, err := kiln(t, "package", "models:/Iris Classifier/1", "--layout", lay, "--kiln-binary", bin)
	if err != nil {
		t.Fatalf("kiln package: %v\n%s", err, stderr)
	}
	if !strings.Contains(out, "image iris-classifier:1\n") || !strings.Contains(out, "model    Iris Classifier (onnx) from models:/Iris Classifier/1") {
		t.Errorf("output:\n%s", out)
	}
	idx, _ := os.ReadFile(filepath.Join(lay, "index.json"))
	var manifests struct {
		Manifests []struct {
			Digest      string
			Annotations map[string]string
		}
	}
	if err := json.Unmarshal(idx, &manifests); err != nil || len(manifests.Manifests) != 1 ||
		manifests.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "iris-classifier:1" {
		t.Fatalf("index.json (%v): %s", err, idx)
	}
	// The config carries what the registry said.
	readBlob := func(digest string) []byte {
		b, err := os.ReadFile(filepath.Join(lay, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:")))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var manifest struct{ Config struct{ Digest string } }
	json.Unmarshal(readBlob(manifests.Manifests[0].Digest), &manifest)
	var cfg struct {
		Config struct{ Labels map[string]string }
	}
	json.Unmarshal(readBlob(manifest.Config.Digest), &cfg)
	for k, v := range map[string]string{
		"kiln.model.name": "Iris Classifier", "kiln.model.version": "1", "org.opencontainers.image.version": "1",
		"kiln.model.run_id": runID, "kiln.model.uri": "models:/Iris Classifier/1", "org.opencontainers.image.source": artifacts + "/model",
	} {
		if got := cfg.Config.Labels[k]; got != v {
			t.Errorf("label %s = %q, want %q", k, got, v)
		}
	}
}

func TestDefaultImageTag(t *testing.T) {
	for _, tt := range []struct{ name, version, want string }{
		{"iris", "", "iris:latest"},
		{"Iris Classifier", "3", "iris-classifier:3"},
		{"onnx_logreg", "", "onnx_logreg:latest"},
		{"  --weird//name!! ", "12", "weird-name:12"},
		{"___", "", "kiln-model:latest"},
	} {
		if got := defaultImageTag(tt.name, tt.version); got != tt.want {
			t.Errorf("defaultImageTag(%q, %q) = %q, want %q", tt.name, tt.version, got, tt.want)
		}
	}
}

func TestDeployExport(t *testing.T) {
	type doc struct {
		Kind     string
		Metadata struct {
			Name, Namespace string
			Labels          map[string]string
		}
		Spec map[string]any
	}
	parse := func(t *testing.T, y string) []doc {
		t.Helper()
		var docs []doc
		for _, part := range strings.Split(y, "\n---\n") {
			var d doc
			if err := yaml.Unmarshal([]byte(part), &d); err != nil {
				t.Fatalf("%v\n%s", err, part)
			}
			docs = append(docs, d)
		}
		return docs
	}
	out, _, err := kiln(t, "deploy", "export", "--kubernetes", "--name", "churn", "--image", "registry.example.com/churn:3",
		"--model", "models:/churn/3", "--namespace", "ml", "--max-replicas", "6", "--label", "team=risk")
	if err != nil {
		t.Fatal(err)
	}
	docs := parse(t, out)
	var kinds []string
	for _, d := range docs {
		kinds = append(kinds, d.Kind)
		l := d.Metadata.Labels
		if d.Metadata.Name != "churn" || d.Metadata.Namespace != "ml" || l["app.kubernetes.io/name"] != "churn" ||
			l["kiln.dev/model-version"] != "3" || l["app.kubernetes.io/managed-by"] != "kiln" || l["team"] != "risk" {
			t.Errorf("%s metadata %+v", d.Kind, d.Metadata)
		}
	}
	if !slices.Equal(kinds, []string{"Deployment", "Service", "HorizontalPodAutoscaler"}) {
		t.Errorf("kinds %q", kinds)
	}
	if hpa := docs[2].Spec; hpa["maxReplicas"] != 6.0 || hpa["minReplicas"] != 1.0 {
		t.Errorf("hpa spec %v", hpa)
	}

	file := filepath.Join(t.TempDir(), "iris.yaml")
	if _, _, err := kiln(t, "deploy", "export", "--kubernetes", "--name", "iris", "--image", "iris@sha256:"+strings.Repeat("0", 64), "--replicas", "2", "-o", file); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(file)
	docs = parse(t, string(b))
	if len(docs) != 2 || docs[0].Spec["replicas"] != 2.0 {
		t.Errorf("fixed size: %d documents, spec %v", len(docs), docs[0].Spec)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--name", "churn", "--image", "c:1"}, "--kubernetes"},
		{[]string{"--kubernetes", "--image", "c:1"}, "--name is required"},
		{[]string{"--kubernetes", "--name", "Churn_Model", "--image", "c:1"}, `--name "Churn_Model" is not a valid DNS-1123 label`},
		{[]string{"--kubernetes", "--name", "churn"}, "--image is required"},
		{[]string{"--kubernetes", "--name", "churn", "--image", "not an image"}, "--image"},
		{[]string{"--kubernetes", "--name", "churn", "--image", "c:1", "--replicas", "2", "--max-replicas", "4"}, "use one or the other"},
		{[]string{"--kubernetes", "--name", "churn", "--image", "c:1", "--namespace", "Prod"}, `namespace "Prod"`},
		{[]string{"--kubernetes", "--name", "churn", "--image", "c:1", "--cpu-request", "x"}, `cpu request "x"`},
		{[]string{"--kubernetes", "--name", "churn", "--image", "c:1", "--model", "models:/"}, "--model"},
	} {
		if _, _, err := kiln(t, append([]string{"deploy", "export"}, tt.args...)...); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("export %q: err = %v, want one containing %q", tt.args, err, tt.want)
		}
	}
}
