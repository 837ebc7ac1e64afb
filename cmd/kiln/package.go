package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/kiln-ml/kiln/deploy/oci"
	"github.com/kiln-ml/kiln/model"
)

type packageFlags struct {
	oci, docker, layout string
	platform            string
	kilnBinary          string
	tag                 string
	base                string
	trackingURI         string
	labels              []string
	quiet               bool
}

func newPackageCmd() *cobra.Command {
	var f packageFlags
	cmd := &cobra.Command{
		Use:   "package MODEL_URI --oci FILE | --docker FILE | --layout DIR",
		Short: "Build an OCI container image of a model (no Docker daemon needed)",
		Long: `Build a container image that serves one model with 'kiln serve': the kiln
binary at /usr/local/bin/kiln and the MLflow model directory at /model,
listening on 0.0.0.0:8080 (HTTP: Open Inference Protocol, /invocations,
/metrics) and 0.0.0.0:8081 (gRPC), as user 65532:65532. No Dockerfile, no
Docker daemon and no registry are involved.

MODEL_URI is an MLflow model directory, or, through the tracking server at
--tracking-uri, runs:/RUN_ID/PATH, models:/NAME/VERSION, models:/NAME@ALIAS
or models:/m-ID (the same URIs as 'kiln serve').

Outputs (at least one):
  --oci FILE     an OCI image layout as a tar ("oci-archive"), for podman,
                 skopeo, containerd and Docker 25+ ('docker load')
  --docker FILE  a 'docker load' tarball (any Docker version)
  --layout DIR   an OCI image layout directory (added to one that exists)

The image is FROM scratch with a minimal /etc/passwd and a writable /tmp,
unless --base names a local image (an OCI layout directory, an OCI archive
or a 'docker save' tarball; PATH:REF picks a tagged image of a layout).
The kiln binary is this one when it is a static Linux binary for
--platform; otherwise cross-build one and pass --kiln-binary.

Builds are reproducible: the same binary and model give the same digest.
Every file is dated SOURCE_DATE_EPOCH when it is set, else 1970-01-01.`,
		Example: `  # Package a local model and run it with podman
  kiln package ./mlruns/1/models/m-4f.../artifacts --oci iris.tar --tag iris:1
  podman load -i iris.tar && podman run --rm -p 8080:8080 iris:1

  # A registered version, into Docker through skopeo
  KILN_URL=http://127.0.0.1:5000 kiln package models:/churn/3 --oci churn.tar
  skopeo copy oci-archive:churn.tar docker-daemon:churn:3

  # For arm64 nodes, with a cross-built binary, as a docker load tarball
  CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -o kiln-arm64 ./cmd/kiln
  kiln package models:/churn@champion --platform linux/arm64 \
      --kiln-binary ./kiln-arm64 --docker churn-arm64.tar --tag registry.example.com/churn:3

  # On a distroless base saved locally (e.g. skopeo copy docker://… oci:base:static)
  kiln package ./model --base ./base:static --layout ./images --tag churn:3`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.trackingURI == "" {
				f.trackingURI = os.Getenv("KILN_URL")
			}
			if f.trackingURI == "" {
				f.trackingURI = os.Getenv("MLFLOW_TRACKING_URI")
			}
			return runPackage(cmd.Context(), args[0], f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.oci, "oci", "", `write an OCI archive (oci-archive: tar of an OCI layout) to FILE; "-" for standard output`)
	fl.StringVar(&f.docker, "docker", "", `write a 'docker load' tarball to FILE; "-" for standard output`)
	fl.StringVar(&f.layout, "layout", "", "write into the OCI image layout directory DIR")
	fl.StringVar(&f.platform, "platform", "linux/"+goruntime.GOARCH, "target platform: linux/amd64 or linux/arm64")
	fl.StringVar(&f.kilnBinary, "kiln-binary", "", "kiln executable for the image (default: this one, when it is a static Linux binary for --platform)")
	fl.StringVar(&f.tag, "tag", "", "image name and tag, e.g. registry.example.com/churn:3 (default: MODEL_NAME:VERSION, else MODEL_NAME:latest)")
	fl.StringVar(&f.base, "base", "", "base image: an OCI layout directory (DIR or DIR:REF), an OCI archive or a 'docker save' tarball (default: FROM scratch)")
	fl.StringVar(&f.trackingURI, "tracking-uri", "", "tracking server for runs:/ and models:/ URIs (default $KILN_URL, else $MLFLOW_TRACKING_URI)")
	fl.StringArrayVar(&f.labels, "label", nil, "extra image label KEY=VALUE (repeatable)")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "print only the image digest")
	for _, name := range []string{"oci", "docker", "kiln-binary", "base"} {
		cmd.MarkFlagFilename(name)
	}
	cmd.MarkFlagDirname("layout")
	cmd.RegisterFlagCompletionFunc("platform", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"linux/amd64", "linux/arm64"}, cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

func runPackage(ctx context.Context, uri string, f packageFlags, stdout, stderr io.Writer) error {
	if f.oci == "" && f.docker == "" && f.layout == "" {
		return errors.New("say where the image goes: --oci FILE, --docker FILE and/or --layout DIR")
	}
	if f.oci == "-" && f.docker == "-" {
		return errors.New("only one of --oci and --docker can go to standard output")
	}
	if f.oci == "-" || f.docker == "-" {
		stdout = stderr // the summary must not mix with the image
	}
	platform, err := oci.ParsePlatform(f.platform)
	if err != nil {
		return err
	}
	labels, err := parseTags(f.labels)
	if err != nil {
		return fmt.Errorf("--label: %w", err)
	}
	created, err := oci.Created(os.Getenv("SOURCE_DATE_EPOCH"))
	if err != nil {
		return err
	}

	bin := f.kilnBinary
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return fmt.Errorf("finding this kiln binary: %w (pass --kiln-binary)", err)
		}
	}
	binInfo, err := oci.CheckBinary(bin, platform, f.base != "")
	if err != nil {
		return err
	}
	if !binInfo.Static {
		fmt.Fprintf(stderr, "warning: %s is dynamically linked; it runs only if the base image has its C library\n", bin)
	}

	res, err := resolvePackageModel(ctx, uri, f.trackingURI)
	if err != nil {
		return err
	}
	info := oci.ModelInfo{URI: uri, Name: res.Name, RunID: res.RunID}
	if res.Version > 0 {
		info.Version = strconv.FormatInt(res.Version, 10)
	}
	if info.Name == "" {
		info.Name = defaultModelName(uri, res.Dir)
	}
	if res.URI.Kind != model.URILocal {
		info.Source = res.Source // an artifact URI; local paths would differ from machine to machine
	}
	tag := f.tag
	if tag == "" {
		tag = defaultImageTag(info.Name, info.Version)
	}
	if tag, err = oci.ParseTag(tag); err != nil {
		return fmt.Errorf("--tag: %w", err)
	}

	var base *oci.Base
	if f.base != "" {
		if base, err = oci.LoadBase(f.base, platform, ""); err != nil {
			return err
		}
		defer base.Close()
	}
	prog := newPackageProgress(stderr)
	if f.quiet {
		prog = nil
	}
	opts := oci.Options{
		ModelDir: res.Dir, Binary: bin, Platform: platform, Model: info, Base: base,
		Created: created, Labels: labels,
	}
	if prog != nil {
		opts.Progress = prog
	}
	img, err := oci.Build(ctx, opts)
	if err != nil {
		return err
	}
	defer img.Close()
	if img.Backend == model.BackendPython && base == nil {
		fmt.Fprintf(stderr, "warning: %s is served by the Python worker (flavor %s), and a FROM scratch image has no Python; pass --base with an image that has python3 and mlflow\n", info.Name, img.Flavor)
	}

	type output struct {
		what, path string
		write      func() error
	}
	var outs []output
	toFile := func(path string, w func(io.Writer, string) error, file func(string, string) error) func() error {
		if path == "-" {
			return func() error { return w(os.Stdout, tag) }
		}
		return func() error { return file(path, tag) }
	}
	if f.oci != "" {
		outs = append(outs, output{"OCI archive", f.oci, toFile(f.oci, img.WriteOCIArchive, img.WriteOCIArchiveFile)})
	}
	if f.docker != "" {
		outs = append(outs, output{"docker tarball", f.docker, toFile(f.docker, img.WriteDocker, img.WriteDockerFile)})
	}
	if f.layout != "" {
		outs = append(outs, output{"OCI layout", f.layout, func() error { return img.WriteLayout(f.layout, tag) }})
	}
	for _, o := range outs {
		if err := o.write(); err != nil {
			return fmt.Errorf("writing the %s %s: %w", o.what, o.path, err)
		}
	}

	if f.quiet {
		fmt.Fprintln(stdout, img.Digest)
		return nil
	}
	layers, _ := img.Layers()
	var size int64
	for _, l := range layers {
		n, _ := l.Size()
		size += n
	}
	fmt.Fprintf(stdout, "image %s\n", tag)
	fmt.Fprintf(stdout, "  digest   %s\n", img.Digest)
	fmt.Fprintf(stdout, "  platform %s, %s, %s compressed\n", platform, plural(len(layers), "layer"), humanBytes(size))
	fmt.Fprintf(stdout, "  model    %s (%s) from %s\n", info.Name, img.Flavor, uri)
	for _, o := range outs {
		fmt.Fprintf(stdout, "wrote %s %s\n", o.what, o.path)
	}
	fmt.Fprintln(stdout, "\nRun it:")
	for _, o := range outs {
		p := o.path
		if p == "-" {
			continue
		}
		switch o.what {
		case "OCI archive":
			fmt.Fprintf(stdout, "  podman load -i %s && podman run --rm -p 8080:8080 -p 8081:8081 %s\n", p, tag)
			fmt.Fprintf(stdout, "  skopeo copy oci-archive:%s docker-daemon:%s && docker run --rm -p 8080:8080 -p 8081:8081 %s\n", p, tag, tag)
			fmt.Fprintf(stdout, "  skopeo copy oci-archive:%s docker://REGISTRY/%s   # push to a registry\n", p, tag)
		case "docker tarball":
			fmt.Fprintf(stdout, "  docker load -i %s && docker run --rm -p 8080:8080 -p 8081:8081 %s\n", p, tag)
		case "OCI layout":
			fmt.Fprintf(stdout, "  skopeo copy oci:%s:%s docker-daemon:%s\n", p, tag, tag)
		}
	}
	fmt.Fprintf(stdout, "then: curl -s localhost:8080/v2/models/%s\n", info.Name)
	return nil
}

// resolvePackageModel finds the model directory of uri: local, or through
// the tracking server like kiln serve.
func resolvePackageModel(ctx context.Context, uri, trackingURI string) (*model.Resolved, error) {
	if st, err := os.Stat(uri); err == nil && st.Mode().IsRegular() && filepath.Base(uri) != model.MLmodelFile {
		return nil, fmt.Errorf("%s is a model file; kiln package needs an MLflow model directory (with an MLmodel file), e.g. one written by mlflow.onnx.save_model", uri)
	}
	r := model.LocalResolver()
	if trackingURI != "" {
		var err error
		r, err = model.NewRemoteResolver(trackingURI, model.RemoteOptions{
			Username: os.Getenv("MLFLOW_TRACKING_USERNAME"),
			Password: os.Getenv("MLFLOW_TRACKING_PASSWORD"),
			Token:    os.Getenv("MLFLOW_TRACKING_TOKEN"),
		})
		if err != nil {
			return nil, err
		}
	}
	res, err := r.Resolve(ctx, uri)
	if err != nil {
		if trackingURI == "" && (strings.HasPrefix(uri, "runs:") || strings.HasPrefix(uri, "models:")) {
			return nil, fmt.Errorf("%w (set --tracking-uri, $KILN_URL or $MLFLOW_TRACKING_URI to resolve %s)", err, uri)
		}
		return nil, err
	}
	return res, nil
}

// defaultImageTag names an image after its model: "Churn Model" version 3
// is churn-model:3.
func defaultImageTag(name, version string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
		if !ok || r == '-' {
			dash = b.Len() > 0
			continue
		}
		if dash {
			b.WriteByte('-')
			dash = false
		}
		b.WriteRune(r)
	}
	repo := strings.Trim(b.String(), "._")
	if repo == "" {
		repo = "kiln-model"
	}
	if len(repo) > 128 {
		repo = repo[:128]
	}
	if version == "" {
		version = "latest"
	}
	return repo + ":" + version
}

// packageProgress shows oci.Build's steps: a bar on a terminal, a line
// per step otherwise.
type packageProgress struct {
	w     io.Writer
	tty   bool
	mu    sync.Mutex
	bar   *progressbar.ProgressBar
	start time.Time
	total int64
}

func newPackageProgress(w io.Writer) *packageProgress {
	f, ok := w.(*os.File)
	return &packageProgress{w: w, tty: ok && isTerminal(f)}
}

func (p *packageProgress) Begin(task string, bytes int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.start, p.total = time.Now(), bytes
	if !p.tty {
		fmt.Fprintf(p.w, "%s (%s)\n", task, humanBytes(bytes))
		return
	}
	p.bar = progressbar.NewOptions64(bytes,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(fmt.Sprintf("%-22s", task)),
		progressbar.OptionShowBytes(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionShowCount(),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetPredictTime(true),
	)
}

func (p *packageProgress) Advance(bytes int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		p.bar.Add64(bytes)
	}
}

func (p *packageProgress) End(task string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		p.bar.Finish()
		p.bar = nil
	}
	if p.tty {
		fmt.Fprintf(p.w, "%s: %s in %s\n", task, humanBytes(p.total), time.Since(p.start).Round(time.Millisecond))
	}
}
