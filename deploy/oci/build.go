package oci

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"

	"github.com/kiln-ml/kiln/model"
)

// Paths and settings of the image.
const (
	BinaryPath = "/usr/local/bin/kiln"
	ModelPath  = "/model"
	HTTPPort   = 8080
	GRPCPort   = 8081
	// User is the numeric user:group the server runs as (distroless's
	// "nonroot").
	User = "65532:65532"
)

// OCI annotation and label keys.
const (
	LabelTitle        = "org.opencontainers.image.title"
	LabelVersion      = "org.opencontainers.image.version"
	LabelCreated      = "org.opencontainers.image.created"
	LabelSource       = "org.opencontainers.image.source"
	LabelModelURI     = "kiln.model.uri"
	LabelModelFlavor  = "kiln.model.flavor"
	LabelModelName    = "kiln.model.name"
	LabelModelVersion = "kiln.model.version"
	LabelModelRunID   = "kiln.model.run_id"

	AnnotationRefName    = "org.opencontainers.image.ref.name"
	AnnotationImageName  = "io.containerd.image.name"
	AnnotationBaseDigest = "org.opencontainers.image.base.digest"
	AnnotationBaseName   = "org.opencontainers.image.base.name"
)

// ModelInfo describes the packaged model, for the image's labels.
type ModelInfo struct {
	URI     string // as the user gave it: ./iris, models:/churn/3, runs:/…/model
	Name    string // registered model name, else a name for the directory
	Version string // registered version, when known
	RunID   string
	Source  string // where the files came from (an artifact URI or local path)
}

// Progress hears about long steps: packing the model (bytes of files
// read) and writing an output (bytes of layers written).
type Progress interface {
	Begin(task string, bytes int64)
	Advance(bytes int64)
	End(task string)
}

// Options configure Build.
type Options struct {
	// ModelDir is a local MLflow model directory (with an MLmodel file).
	ModelDir string
	// Binary is the kiln executable copied to /usr/local/bin/kiln. Build
	// does not check it; see CheckBinary.
	Binary   string
	Platform Platform
	Model    ModelInfo
	// Base is the image to build on; nil means FROM scratch with a
	// minimal root filesystem layer (/etc/passwd, /etc/group, /tmp).
	Base *Base
	// Created is the time of every file, history entry and the image
	// itself; the zero value means the Unix epoch (reproducible builds;
	// callers pass SOURCE_DATE_EPOCH).
	Created time.Time
	// Labels are added to the image config's labels, over Kiln's own.
	Labels map[string]string
	// GzipLevel compresses the layers (gzip.BestSpeed … gzip.BestCompression);
	// 0 means gzip.DefaultCompression.
	GzipLevel int
	// TempDir holds the compressed layers until Close; "" means os.TempDir().
	TempDir  string
	Progress Progress
}

// Image is a built image: its layers wait in temporary files, to be
// written by WriteOCIArchive, WriteLayout or WriteDocker. Close removes
// them.
type Image struct {
	v1.Image
	// Digest is the manifest's digest, the image's identity.
	Digest v1.Hash
	// Flavor is the model flavor the image serves (onnx, xgboost, …).
	Flavor  string
	Backend string
	Config  *v1.ConfigFile

	tmp      string
	layers   []*fileLayer
	progress Progress
	written  atomic.Int64
}

// Close removes the image's temporary files.
func (img *Image) Close() error {
	if img.tmp == "" {
		return nil
	}
	err := os.RemoveAll(img.tmp)
	img.tmp = ""
	return err
}

// Build builds the image of opts.ModelDir. The model directory is read
// (and refused when no Kiln runtime can serve it) before anything is
// packed.
func Build(ctx context.Context, opts Options) (_ *Image, err error) {
	if opts.ModelDir == "" || opts.Binary == "" {
		return nil, errors.New("oci: ModelDir and Binary are required")
	}
	if _, err := ParsePlatform(opts.Platform.String()); err != nil {
		return nil, err
	}
	bundle, err := model.ReadBundle(opts.ModelDir, "")
	if err != nil {
		return nil, err
	}
	flavor, _ := bundle.Source.Options["flavor"].(string)
	if flavor == "" {
		flavor = bundle.Backend
	}
	bin, err := os.Stat(opts.Binary)
	if err != nil {
		return nil, fmt.Errorf("kiln binary: %w", err)
	}
	if !bin.Mode().IsRegular() {
		return nil, fmt.Errorf("kiln binary %s: not a regular file", opts.Binary)
	}
	if opts.Base != nil && opts.Base.Platform != opts.Platform {
		return nil, fmt.Errorf("base image %s is for %s, not %s", opts.Base.Name, opts.Base.Platform, opts.Platform)
	}
	created := opts.Created.UTC().Truncate(time.Second)
	if opts.Created.IsZero() {
		created = time.Unix(0, 0).UTC()
	}
	level := opts.GzipLevel
	if level == 0 {
		level = gzip.DefaultCompression
	}
	progress := opts.Progress
	if progress == nil {
		progress = noProgress{}
	}

	tmp, err := os.MkdirTemp(opts.TempDir, "kiln-package-")
	if err != nil {
		return nil, err
	}
	img := &Image{tmp: tmp, progress: progress, Flavor: flavor, Backend: bundle.Backend}
	defer func() {
		if err != nil {
			img.Close()
		}
	}()

	type step struct {
		entries   []entry
		createdBy string
		bytes     int64
		task      string
	}
	var steps []step
	if opts.Base == nil {
		steps = append(steps, step{entries: rootfsEntries(), createdBy: "kiln package: minimal root filesystem (/etc/passwd, /etc/group, /tmp)"})
	}
	binEntries := append(parents(strings.TrimPrefix(BinaryPath, "/")),
		entry{name: strings.TrimPrefix(BinaryPath, "/"), mode: 0o755, src: opts.Binary, size: bin.Size()})
	steps = append(steps, step{entries: binEntries, createdBy: "kiln package: " + BinaryPath, bytes: bin.Size(), task: "packing kiln binary"})
	modelEntries, modelBytes, err := dirEntries(opts.ModelDir, strings.TrimPrefix(ModelPath, "/")+"/")
	if err != nil {
		return nil, err
	}
	uri := opts.Model.URI
	if uri == "" {
		uri = opts.ModelDir
	}
	steps = append(steps, step{entries: modelEntries, createdBy: "kiln package: " + ModelPath + " from " + uri, bytes: modelBytes, task: "packing model"})

	hcreated := v1.Time{Time: created}
	var history []v1.History
	var adds []mutate.Addendum
	if opts.Base != nil {
		history = slices.Clone(opts.Base.Config.History)
		for _, l := range opts.Base.Layers {
			adds = append(adds, mutate.Addendum{Layer: ociLayer{l}})
		}
	}
	for _, s := range steps {
		if s.task != "" {
			progress.Begin(s.task, s.bytes)
		}
		l, err := writeLayer(ctx, tmp, s.entries, created, level, progress.Advance)
		if s.task != "" {
			progress.End(s.task)
		}
		if err != nil {
			return nil, err
		}
		l.progress = img.wrote
		img.layers = append(img.layers, l)
		adds = append(adds, mutate.Addendum{Layer: l})
		history = append(history, v1.History{Created: hcreated, CreatedBy: s.createdBy})
	}

	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	layered, err := mutate.Append(base, adds...)
	if err != nil {
		return nil, err
	}
	cf, err := layered.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS, cf.Created = opts.Platform.Architecture, opts.Platform.OS, hcreated
	cf.History = history
	cf.Config = imageConfig(opts, flavor, created)
	var manifestAnn map[string]string
	if opts.Base != nil {
		cf.Config = mergeBaseConfig(opts.Base.Config.Config, cf.Config)
		manifestAnn = map[string]string{AnnotationBaseDigest: opts.Base.Digest.String()}
		if opts.Base.Name != "" {
			manifestAnn[AnnotationBaseName] = opts.Base.Name
		}
	}
	final, err := mutate.ConfigFile(layered, cf)
	if err != nil {
		return nil, err
	}
	if manifestAnn != nil {
		final = mutate.Annotations(final, manifestAnn).(v1.Image)
	}
	img.Image = final
	if img.Digest, err = final.Digest(); err != nil {
		return nil, err
	}
	if img.Config, err = final.ConfigFile(); err != nil {
		return nil, err
	}
	return img, nil
}

func (img *Image) wrote(n int64) {
	img.written.Add(n)
	img.progress.Advance(n)
}

// layerBytes is the size of the layers this build wrote (base layers are
// copied but not counted).
func (img *Image) layerBytes() int64 {
	var n int64
	for _, l := range img.layers {
		n += l.size
	}
	return n
}

// imageConfig is the container configuration: kiln serve /model on all
// interfaces, as a non-root user, with a writable cache directory.
func imageConfig(opts Options, flavor string, created time.Time) v1.Config {
	m := opts.Model
	labels := map[string]string{
		LabelTitle:       m.Name,
		LabelCreated:     created.Format(time.RFC3339),
		LabelModelURI:    m.URI,
		LabelModelFlavor: flavor,
		LabelModelName:   m.Name,
	}
	if m.Version != "" {
		labels[LabelVersion] = m.Version
		labels[LabelModelVersion] = m.Version
	}
	if m.Source != "" {
		labels[LabelSource] = m.Source
	}
	if m.RunID != "" {
		labels[LabelModelRunID] = m.RunID
	}
	for k, v := range labels {
		if v == "" {
			delete(labels, k)
		}
	}
	maps.Copy(labels, opts.Labels)
	cmd := []string{"--addr", fmt.Sprintf("0.0.0.0:%d", HTTPPort), "--grpc-addr", fmt.Sprintf("0.0.0.0:%d", GRPCPort)}
	if m.Name != "" {
		cmd = append(cmd, "--name", m.Name)
	}
	return v1.Config{
		Entrypoint: []string{BinaryPath, "serve", ModelPath},
		Cmd:        cmd,
		ExposedPorts: map[string]struct{}{
			fmt.Sprintf("%d/tcp", HTTPPort): {},
			fmt.Sprintf("%d/tcp", GRPCPort): {},
		},
		User:       User,
		WorkingDir: ModelPath,
		Env: []string{
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"XDG_CACHE_HOME=/tmp",
		},
		Labels: labels,
	}
}

// mergeBaseConfig keeps the base image's environment (ours wins on the
// same variable), labels (ours win) and exposed ports; the rest is ours.
func mergeBaseConfig(base, ours v1.Config) v1.Config {
	env := map[string]int{}
	var merged []string
	for _, kv := range append(slices.Clone(base.Env), ours.Env...) {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := env[k]; ok {
			merged[i] = kv
			continue
		}
		env[k] = len(merged)
		merged = append(merged, kv)
	}
	ours.Env = merged
	labels := maps.Clone(base.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, ours.Labels)
	ours.Labels = labels
	ports := maps.Clone(base.ExposedPorts)
	if ports == nil {
		ports = map[string]struct{}{}
	}
	maps.Copy(ports, ours.ExposedPorts)
	ours.ExposedPorts = ports
	return ours
}

// rootfsEntries is the minimal root filesystem of a FROM-scratch image:
// users root and nonroot (65532), their groups, and /tmp (mode 1777) for
// the model cache.
func rootfsEntries() []entry {
	passwd := "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	group := "root:x:0:\nnonroot:x:65532:\n"
	return []entry{
		{name: "etc/", mode: 0o755},
		{name: "etc/group", mode: 0o644, data: []byte(group), size: int64(len(group))},
		{name: "etc/passwd", mode: 0o644, data: []byte(passwd), size: int64(len(passwd))},
		{name: "home/", mode: 0o755},
		{name: "home/nonroot/", mode: 0o700, uid: 65532, gid: 65532},
		{name: "root/", mode: 0o700},
		{name: "tmp/", mode: 0o1777},
	}
}

type noProgress struct{}

func (noProgress) Begin(string, int64) {}
func (noProgress) Advance(int64)       {}
func (noProgress) End(string)          {}
