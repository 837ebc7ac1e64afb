package oci

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// fixture is an MLflow ONNX model written by the mlflow client.
const fixture = "../../model/testdata/onnx_logreg"

var amd64 = Platform{OS: "linux", Architecture: "amd64"}

// copyDir copies the fixture so tests can change it.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// fakeBinary is a stand-in for the kiln binary (Build does not check it).
func fakeBinary(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "kiln")
	if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func build(t *testing.T, opts Options) *Image {
	t.Helper()
	if opts.Platform == (Platform{}) {
		opts.Platform = amd64
	}
	if opts.Model.URI == "" {
		opts.Model = ModelInfo{URI: "models:/iris/3", Name: "iris", Version: "3", Source: "mlflow-artifacts:/1/models/m-1/artifacts"}
	}
	opts.TempDir = t.TempDir()
	img, err := Build(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { img.Close() })
	return img
}

func archiveSum(t *testing.T, img *Image, tag string) [32]byte {
	t.Helper()
	var buf bytes.Buffer
	if err := img.WriteOCIArchive(&buf, tag); err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(buf.Bytes())
}

func TestBuildIsReproducible(t *testing.T) {
	bin := fakeBinary(t, "#!kiln v1")
	model := copyDir(t, fixture)
	base := build(t, Options{ModelDir: model, Binary: bin})

	// The same inputs from other copies, on a later day, give the same bytes.
	again := build(t, Options{ModelDir: copyDir(t, fixture), Binary: fakeBinary(t, "#!kiln v1")})
	if again.Digest != base.Digest {
		t.Errorf("rebuild digest %s, want %s", again.Digest, base.Digest)
	}
	if archiveSum(t, again, "iris:3") != archiveSum(t, base, "iris:3") {
		t.Error("OCI archives of the same image differ")
	}
	if err := os.Chtimes(filepath.Join(model, "MLmodel"), time.Now(), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if d := build(t, Options{ModelDir: model, Binary: bin}).Digest; d != base.Digest {
		t.Errorf("touching a file changed the digest: %s, want %s", d, base.Digest)
	}

	changed := copyDir(t, fixture)
	os.WriteFile(filepath.Join(changed, "extra.txt"), []byte("x"), 0o644)
	tests := []struct {
		name string
		opts Options
	}{
		{"model file added", Options{ModelDir: changed, Binary: bin}},
		{"other binary", Options{ModelDir: model, Binary: fakeBinary(t, "#!kiln v2")}},
		{"other time", Options{ModelDir: model, Binary: bin, Created: time.Unix(1700000000, 0)}},
		{"other platform", Options{ModelDir: model, Binary: bin, Platform: Platform{"linux", "arm64"}}},
		{"other model version", Options{ModelDir: model, Binary: bin, Model: ModelInfo{URI: "models:/iris/4", Name: "iris", Version: "4"}}},
	}
	for _, tt := range tests {
		if d := build(t, tt.opts).Digest; d == base.Digest {
			t.Errorf("%s: digest unchanged (%s)", tt.name, d)
		}
	}
}

func TestImageConfig(t *testing.T) {
	created := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	img := build(t, Options{ModelDir: fixture, Binary: fakeBinary(t, "k"), Created: created, Labels: map[string]string{"team": "ml"}})
	cf := img.Config
	c := cf.Config
	if !slices.Equal(c.Entrypoint, []string{"/usr/local/bin/kiln", "serve", "/model"}) {
		t.Errorf("entrypoint %q", c.Entrypoint)
	}
	if !slices.Equal(c.Cmd, []string{"--addr", "0.0.0.0:8080", "--grpc-addr", "0.0.0.0:8081", "--name", "iris"}) {
		t.Errorf("cmd %q", c.Cmd)
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok || len(c.ExposedPorts) != 2 {
		t.Errorf("ports %v", c.ExposedPorts)
	}
	if _, ok := c.ExposedPorts["8081/tcp"]; !ok {
		t.Errorf("ports %v", c.ExposedPorts)
	}
	if c.User != "65532:65532" || c.WorkingDir != "/model" || !slices.Contains(c.Env, "XDG_CACHE_HOME=/tmp") {
		t.Errorf("user %q, workdir %q, env %q", c.User, c.WorkingDir, c.Env)
	}
	want := map[string]string{
		"org.opencontainers.image.title":   "iris",
		"org.opencontainers.image.version": "3",
		"org.opencontainers.image.created": "2026-03-01T12:00:00Z",
		"org.opencontainers.image.source":  "mlflow-artifacts:/1/models/m-1/artifacts",
		"kiln.model.uri":                   "models:/iris/3",
		"kiln.model.flavor":                "onnx",
		"kiln.model.name":                  "iris",
		"kiln.model.version":               "3",
		"team":                             "ml",
	}
	if fmt.Sprint(c.Labels) != fmt.Sprint(want) {
		t.Errorf("labels\n got %v\nwant %v", c.Labels, want)
	}
	if cf.OS != "linux" || cf.Architecture != "amd64" || !cf.Created.Time.Equal(created) {
		t.Errorf("os %s arch %s created %v", cf.OS, cf.Architecture, cf.Created)
	}
	if len(cf.History) != 3 || len(cf.RootFS.DiffIDs) != 3 {
		t.Errorf("%d history entries, %d layers; want 3 and 3", len(cf.History), len(cf.RootFS.DiffIDs))
	}
	mt, _ := img.MediaType()
	m, _ := img.Manifest()
	if mt != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("media types %s, config %s", mt, m.Config.MediaType)
	}
	for _, l := range m.Layers {
		if l.MediaType != types.OCILayer {
			t.Errorf("layer media type %s", l.MediaType)
		}
	}
}

type tarEntry struct {
	hdr  *tar.Header
	data string
}

func layerEntries(t *testing.T, l v1.Layer) []tarEntry {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var out []tarEntry
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out = append(out, tarEntry{h, string(b)})
	}
}

func TestLayerContents(t *testing.T) {
	img := build(t, Options{ModelDir: fixture, Binary: fakeBinary(t, "the kiln binary")})
	layers, err := img.Layers()
	if err != nil || len(layers) != 3 {
		t.Fatalf("%d layers, %v", len(layers), err)
	}
	mlmodel, _ := os.ReadFile(filepath.Join(fixture, "MLmodel"))
	type want struct {
		mode     int64
		uid, gid int
		data     string
	}
	tests := []struct {
		layer int
		files map[string]want
	}{
		{0, map[string]want{
			"etc/":          {0o755, 0, 0, ""},
			"etc/passwd":    {0o644, 0, 0, "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"},
			"etc/group":     {0o644, 0, 0, "root:x:0:\nnonroot:x:65532:\n"},
			"tmp/":          {0o1777, 0, 0, ""},
			"home/nonroot/": {0o700, 65532, 65532, ""},
		}},
		{1, map[string]want{
			"usr/":               {0o755, 0, 0, ""},
			"usr/local/bin/":     {0o755, 0, 0, ""},
			"usr/local/bin/kiln": {0o755, 0, 0, "the kiln binary"},
		}},
		{2, map[string]want{
			"model/":        {0o755, 0, 0, ""},
			"model/MLmodel": {0o644, 0, 0, string(mlmodel)},
		}},
	}
	for _, tt := range tests {
		ents := layerEntries(t, layers[tt.layer])
		var names []string
		got := map[string]tarEntry{}
		for _, e := range ents {
			names = append(names, e.hdr.Name)
			got[e.hdr.Name] = e
			if !e.hdr.ModTime.Equal(time.Unix(0, 0)) || e.hdr.Uname != "" || e.hdr.Gname != "" {
				t.Errorf("layer %d %s: mtime %v, owner names %q %q", tt.layer, e.hdr.Name, e.hdr.ModTime, e.hdr.Uname, e.hdr.Gname)
			}
		}
		if !slices.IsSorted(names) {
			t.Errorf("layer %d: entries not sorted: %q", tt.layer, names)
		}
		for name, w := range tt.files {
			e, ok := got[name]
			if !ok {
				t.Errorf("layer %d: no %s in %q", tt.layer, name, names)
				continue
			}
			if e.hdr.Mode != w.mode || e.hdr.Uid != w.uid || e.hdr.Gid != w.gid || e.data != w.data {
				t.Errorf("layer %d %s: mode %o uid %d gid %d data %q; want %o %d %d %q", tt.layer, name, e.hdr.Mode, e.hdr.Uid, e.hdr.Gid, e.data, w.mode, w.uid, w.gid, w.data)
			}
		}
	}
	// Every file of the model directory is in the model layer.
	ents, _ := os.ReadDir(fixture)
	model := layerEntries(t, layers[2])
	if len(model) != len(ents)+1 {
		t.Errorf("model layer has %d entries, want %d files + the directory", len(model), len(ents))
	}
}

func TestModelDirectoryRules(t *testing.T) {
	bin := fakeBinary(t, "k")
	tests := []struct {
		name  string
		setup func(dir string) error
		err   string
	}{
		{"no MLmodel", func(dir string) error { return os.Remove(filepath.Join(dir, "MLmodel")) }, "MLmodel"},
		{"link outside", func(dir string) error { return os.Symlink("/etc/hostname", filepath.Join(dir, "x")) }, "links outside"},
		{"link to a directory", func(dir string) error { return os.Symlink(".", filepath.Join(dir, "self")) }, "not a regular file"},
		{"link inside is followed", func(dir string) error { return os.Symlink("model.onnx", filepath.Join(dir, "alias.onnx")) }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyDir(t, fixture)
			if err := tt.setup(dir); err != nil {
				t.Fatal(err)
			}
			img, err := Build(context.Background(), Options{ModelDir: dir, Binary: bin, Platform: amd64, TempDir: t.TempDir()})
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				defer img.Close()
				layers, _ := img.Layers()
				onnx, _ := os.ReadFile(filepath.Join(dir, "model.onnx"))
				for _, e := range layerEntries(t, layers[2]) {
					if e.hdr.Name == "model/alias.onnx" && (e.hdr.Typeflag != tar.TypeReg || e.data != string(onnx)) {
						t.Errorf("alias.onnx: type %c, %d bytes", e.hdr.Typeflag, len(e.data))
					}
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("err = %v, want one containing %q", err, tt.err)
			}
		})
	}
}

func TestBuildCleansUp(t *testing.T) {
	tmp := t.TempDir()
	img, err := Build(context.Background(), Options{ModelDir: fixture, Binary: fakeBinary(t, "k"), Platform: amd64, TempDir: tmp})
	if err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 1 {
		t.Errorf("%d temporary entries while open, want 1", len(ents))
	}
	img.Close()
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("%d temporary entries left after Close", len(ents))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Build(ctx, Options{ModelDir: fixture, Binary: fakeBinary(t, "k"), Platform: amd64, TempDir: tmp}); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled build: %v", err)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("%d temporary entries left after a failed build", len(ents))
	}
}

type recProgress struct {
	begun, ended []string
	bytes        map[string]int64
	totals       map[string]int64
	cur          string
}

func (p *recProgress) Begin(task string, n int64) {
	p.begun, p.cur = append(p.begun, task), task
	p.totals[task] = n
}
func (p *recProgress) Advance(n int64) { p.bytes[p.cur] += n }
func (p *recProgress) End(task string) { p.ended = append(p.ended, task) }

func TestProgress(t *testing.T) {
	p := &recProgress{bytes: map[string]int64{}, totals: map[string]int64{}}
	img := build(t, Options{ModelDir: fixture, Binary: fakeBinary(t, "12345"), Progress: p})
	if err := img.WriteOCIArchive(io.Discard, ""); err != nil {
		t.Fatal(err)
	}
	var modelBytes int64
	ents, _ := os.ReadDir(fixture)
	for _, e := range ents {
		info, _ := e.Info()
		modelBytes += info.Size()
	}
	want := []string{"packing kiln binary", "packing model", "writing OCI archive"}
	if !slices.Equal(p.begun, want) || !slices.Equal(p.ended, want) {
		t.Errorf("tasks %q / %q, want %q", p.begun, p.ended, want)
	}
	for task, n := range map[string]int64{"packing kiln binary": 5, "packing model": modelBytes, "writing OCI archive": img.layerBytes()} {
		if p.totals[task] != n || p.bytes[task] != n {
			t.Errorf("%s: total %d, advanced %d; want %d", task, p.totals[task], p.bytes[task], n)
		}
	}
}

// TestOutputs writes every output format and reads each back with
// go-containerregistry: the same image comes out.
func TestOutputs(t *testing.T) {
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
	// The archive is the layout, tarred.
	extracted := t.TempDir()
	if err := extractLayout(archive, extracted); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{lay, extracted} {
		idx, err := layout.ImageIndexFromPath(d)
		if err != nil {
			t.Fatal(err)
		}
		im, _ := idx.IndexManifest()
		if len(im.Manifests) != 1 || im.Manifests[0].Digest != img.Digest {
			t.Fatalf("%s: index %+v, want the image %s", d, im.Manifests, img.Digest)
		}
		ann := im.Manifests[0].Annotations
		if ann[AnnotationRefName] != "iris:3" || ann[AnnotationImageName] != "docker.io/library/iris:3" {
			t.Errorf("%s: annotations %v", d, ann)
		}
		if p := im.Manifests[0].Platform; p == nil || p.OS != "linux" || p.Architecture != "amd64" {
			t.Errorf("%s: platform %v", d, p)
		}
		read, err := idx.Image(img.Digest)
		if err != nil {
			t.Fatal(err)
		}
		layers, _ := read.Layers()
		for _, l := range layers { // reading through the digest checks the blobs
			rc, _ := l.Compressed()
			if _, err := io.Copy(io.Discard, rc); err != nil {
				t.Errorf("%s: layer: %v", d, err)
			}
			rc.Close()
		}
	}
	dimg, err := tarball.ImageFromPath(docker, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfgName, _ := dimg.ConfigName()
	want, _ := img.ConfigName()
	if cfgName != want {
		t.Errorf("docker tarball config %s, want %s", cfgName, want)
	}
	m, _ := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(docker) })
	if len(m) != 1 || !slices.Equal(m[0].RepoTags, []string{"iris:3"}) {
		t.Errorf("docker manifest %+v", m)
	}

	// A second image into the same layout keeps the first; the same tag replaces.
	other := build(t, Options{ModelDir: fixture, Binary: fakeBinary(t, "other")})
	if err := other.WriteLayout(lay, "iris:4"); err != nil {
		t.Fatal(err)
	}
	if err := other.WriteLayout(lay, "iris:3"); err != nil {
		t.Fatal(err)
	}
	idx, _ := layout.ImageIndexFromPath(lay)
	im, _ := idx.IndexManifest()
	var got []string
	for _, d := range im.Manifests {
		got = append(got, d.Annotations[AnnotationRefName]+"="+d.Digest.Hex[:8])
	}
	slices.Sort(got)
	if w := []string{"iris:3=" + other.Digest.Hex[:8], "iris:4=" + other.Digest.Hex[:8]}; !slices.Equal(got, w) {
		t.Errorf("layout holds %q, want %q", got, w)
	}
	// A directory that is not a layout is left alone.
	junk := t.TempDir()
	os.WriteFile(filepath.Join(junk, "notes.txt"), nil, 0o644)
	if err := img.WriteLayout(junk, "iris:3"); err == nil || !strings.Contains(err.Error(), "neither empty nor an OCI layout") {
		t.Errorf("WriteLayout into a non-layout: %v", err)
	}
}

func TestBase(t *testing.T) {
	bin := fakeBinary(t, "k")
	dir := t.TempDir()
	first := build(t, Options{ModelDir: fixture, Binary: bin})
	lay := filepath.Join(dir, "layout")
	if err := first.WriteLayout(lay, "base:1"); err != nil {
		t.Fatal(err)
	}
	docker := filepath.Join(dir, "docker.tar")
	if err := first.WriteDockerFile(docker, "base:1"); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "base.tar")
	if err := first.WriteOCIArchiveFile(archive, "base:1"); err != nil {
		t.Fatal(err)
	}
	arm := build(t, Options{ModelDir: fixture, Binary: bin, Platform: Platform{"linux", "arm64"}})
	if err := arm.WriteLayout(lay, "base:1-arm64"); err != nil {
		t.Fatal(err)
	}
	firstLayers, _ := first.Layers()
	for _, src := range []string{lay, lay + ":base:1", archive, docker} {
		t.Run(filepath.Base(src), func(t *testing.T) {
			b, err := LoadBase(src, amd64, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if b.Name != "base:1" || len(b.Layers) != 3 {
				t.Errorf("base %q with %d layers", b.Name, len(b.Layers))
			}
			b.Config.Config.Env = append(b.Config.Config.Env, "LANG=C.UTF-8", "XDG_CACHE_HOME=/var/cache")
			img := build(t, Options{ModelDir: fixture, Binary: bin, Base: b})
			layers, _ := img.Layers()
			if len(layers) != 5 {
				t.Fatalf("%d layers, want the base's 3 + 2", len(layers))
			}
			for i, l := range firstLayers {
				d1, _ := l.DiffID()
				d2, _ := layers[i].DiffID()
				if d1 != d2 {
					t.Errorf("layer %d: %s, want the base's %s", i, d2, d1)
				}
			}
			m, _ := img.Manifest()
			for _, l := range m.Layers {
				if l.MediaType != types.OCILayer {
					t.Errorf("layer media type %s", l.MediaType)
				}
			}
			if m.Annotations[AnnotationBaseDigest] != b.Digest.String() || m.Annotations[AnnotationBaseName] != "base:1" {
				t.Errorf("manifest annotations %v", m.Annotations)
			}
			env := img.Config.Config.Env
			if !slices.Contains(env, "LANG=C.UTF-8") || !slices.Contains(env, "XDG_CACHE_HOME=/tmp") || slices.Contains(env, "XDG_CACHE_HOME=/var/cache") {
				t.Errorf("env %q", env)
			}
			if len(img.Config.History) != 3+2 {
				t.Errorf("%d history entries", len(img.Config.History))
			}
		})
	}
	errs := []struct {
		src  string
		p    Platform
		want string
	}{
		{lay, Platform{"linux", "arm64"}, ""},
		{lay + ":nope", amd64, "no image for linux/amd64 named nope"},
		{docker, Platform{"linux", "arm64"}, "not linux/arm64"},
		{docker + ":x", amd64, "holds one image"},
		{filepath.Join(dir, "missing"), amd64, "no such file"},
		{bin, amd64, "not a tar file"},
	}
	for _, e := range errs {
		b, err := LoadBase(e.src, e.p, t.TempDir())
		if e.want == "" {
			if err != nil {
				t.Errorf("LoadBase(%s, %s): %v", e.src, e.p, err)
			}
			continue
		}
		if err == nil || !errors.Is(err, ErrBase) || !strings.Contains(err.Error(), e.want) {
			t.Errorf("LoadBase(%s, %s) = %v, want an ErrBase containing %q", e.src, e.p, err, e.want)
		}
		b.Close()
	}
	b, _ := LoadBase(lay, Platform{"linux", "arm64"}, "")
	if _, err := Build(context.Background(), Options{ModelDir: fixture, Binary: bin, Platform: amd64, Base: b}); err == nil {
		t.Error("an arm64 base for an amd64 image was accepted")
	}
}

func TestParsePlatformAndTag(t *testing.T) {
	for in, want := range map[string]string{"linux/amd64": "linux/amd64", "linux/arm64": "linux/arm64", "linux/arm64/v8": "linux/arm64", "darwin/arm64": "", "linux/386": "", "amd64": ""} {
		p, err := ParsePlatform(in)
		if (err != nil) != (want == "") || (err == nil && p.String() != want) {
			t.Errorf("ParsePlatform(%q) = %v, %v; want %q", in, p, err, want)
		}
	}
	for in, want := range map[string]string{"iris": "iris:latest", "iris:3": "iris:3", "reg.example.com:5000/ml/iris:3": "reg.example.com:5000/ml/iris:3", "reg:5000/iris": "reg:5000/iris:latest", "Iris:3": "", "iris:": "", "": ""} {
		got, err := ParseTag(in)
		if (err != nil) != (want == "") || got != want {
			t.Errorf("ParseTag(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{"iris:3": "docker.io/library/iris:3", "ml/iris:3": "docker.io/ml/iris:3", "localhost/iris:3": "localhost/iris:3", "ghcr.io/a/iris:3": "ghcr.io/a/iris:3"} {
		if got := fullName(in); got != want {
			t.Errorf("fullName(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]int64{"": 0, "0": 0, "1700000000": 1700000000, "-1": -1, "1.5": -1, "x": -1, "017": -1} {
		got, err := Created(in)
		if (err != nil) != (want < 0) || (err == nil && in != "" && got.Unix() != want) || (in == "" && !got.IsZero()) {
			t.Errorf("Created(%q) = %v, %v", in, got, err)
		}
	}
}

func TestCheckBinaryRefuses(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	other := Platform{"linux", "arm64"}
	if amd64.Architecture != hostArch() {
		other = amd64
	}
	tests := []struct {
		path string
		p    Platform
		want string
	}{
		{fakeBinary(t, "#!/bin/sh\n"), amd64, "not a Linux (ELF) executable"},
		{self, Platform{"linux", hostArch()}, "is not kiln"},
		{self, other, "not " + other.String()},
	}
	for _, tt := range tests {
		_, err := CheckBinary(tt.path, tt.p, false)
		if !errors.Is(err, ErrBinary) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "CGO_ENABLED=0 GOOS=linux GOARCH="+tt.p.Architecture) {
			t.Errorf("CheckBinary(%s, %s) = %v, want an ErrBinary containing %q and the build hint", tt.path, tt.p, err, tt.want)
		}
	}
}
