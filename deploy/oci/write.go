package oci

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// ParseTag checks an image reference such as "churn:3" or
// "registry.example.com/ml/churn:3" (a missing tag means "latest") and
// returns it as given.
func ParseTag(tag string) (string, error) {
	if _, err := name.NewTag(tag); err != nil {
		return "", fmt.Errorf("image tag %q: %w", tag, err)
	}
	if !strings.Contains(tag[strings.LastIndex(tag, "/")+1:], ":") {
		tag += ":" + name.DefaultTag
	}
	return tag, nil
}

// CheckReference checks an image reference a cluster pulls: a tag
// (churn:3, registry.example.com/ml/churn:3) or a digest
// (churn@sha256:…).
func CheckReference(ref string) error {
	if _, err := name.ParseReference(ref); err != nil {
		return fmt.Errorf("image reference %q: %w", ref, err)
	}
	return nil
}

// fullName is the fully qualified name container engines give tag:
// "churn:3" is docker.io/library/churn:3.
func fullName(tag string) string {
	repo := tag
	if i := strings.Index(tag, "/"); i < 0 {
		repo = "docker.io/library/" + tag
	} else if first := tag[:i]; !strings.ContainsAny(first, ".:") && first != "localhost" {
		repo = "docker.io/" + tag
	}
	return repo
}

// indexAnnotations name the image in an OCI index: its ref name (what
// skopeo's oci-archive:FILE:REF and podman load use) and the name
// containerd and Docker 25+ load it as.
func indexAnnotations(tag string) map[string]string {
	if tag == "" {
		return nil
	}
	return map[string]string{AnnotationRefName: tag, AnnotationImageName: fullName(tag)}
}

func (img *Image) index(tag string) v1.ImageIndex {
	return mutate.AppendManifests(empty.Index, mutate.IndexAddendum{
		Add: img.Image,
		Descriptor: v1.Descriptor{
			Annotations: indexAnnotations(tag),
			Platform:    &v1.Platform{OS: img.Config.OS, Architecture: img.Config.Architecture},
		},
	})
}

// WriteOCIArchive writes the image as a tar of an OCI image layout
// (oci-layout, index.json, blobs/sha256/…), the format of skopeo's and
// podman's oci-archive: transport, named tag ("" leaves it unnamed).
// Entries are in a fixed order with fixed times, so the archive is as
// reproducible as the image.
func (img *Image) WriteOCIArchive(w io.Writer, tag string) error {
	idx := img.index(tag)
	rawIndex, err := idx.RawManifest()
	if err != nil {
		return err
	}
	rawManifest, err := img.RawManifest()
	if err != nil {
		return err
	}
	rawConfig, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	task := "writing OCI archive"
	img.progress.Begin(task, img.layerBytes())
	defer img.progress.End(task)

	mtime := img.Config.Created.Time
	tw := tar.NewWriter(w)
	small := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: mtime}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	dir := func(name string) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: mtime})
	}
	if err := small("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := small("index.json", rawIndex); err != nil {
		return err
	}
	if err := dir("blobs/"); err != nil {
		return err
	}
	if err := dir("blobs/sha256/"); err != nil {
		return err
	}
	if err := small(blobName(img.Digest), rawManifest); err != nil {
		return err
	}
	if err := small(blobName(cfgName), rawConfig); err != nil {
		return err
	}
	seen := map[v1.Hash]bool{img.Digest: true, cfgName: true}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return err
		}
		if seen[d] {
			continue
		}
		seen[d] = true
		size, err := l.Size()
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: blobName(d), Mode: 0o644, Size: size, ModTime: mtime}); err != nil {
			return err
		}
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		n, err := io.Copy(tw, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("layer %s: %w", d, err)
		}
		if n != size {
			return fmt.Errorf("layer %s: %d bytes, its descriptor says %d", d, n, size)
		}
	}
	return tw.Close()
}

func blobName(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

// WriteOCIArchiveFile writes the OCI archive to path, replacing it only
// when the whole archive was written.
func (img *Image) WriteOCIArchiveFile(path, tag string) error {
	return writeFileAtomic(path, func(w io.Writer) error { return img.WriteOCIArchive(w, tag) })
}

// WriteDocker writes the image as a `docker load` tarball (manifest.json,
// config and layers) tagged tag; docker load needs a tag, so "" means
// kiln-model:latest.
func (img *Image) WriteDocker(w io.Writer, tag string) error {
	if tag == "" {
		tag = "kiln-model:latest"
	}
	t, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("image tag %q: %w", tag, err)
	}
	task := "writing docker tarball"
	img.progress.Begin(task, img.layerBytes())
	defer img.progress.End(task)
	return tarball.Write(t, img.Image, w)
}

// WriteDockerFile writes the docker tarball to path, replacing it only
// when the whole tarball was written.
func (img *Image) WriteDockerFile(path, tag string) error {
	return writeFileAtomic(path, func(w io.Writer) error { return img.WriteDocker(w, tag) })
}

// WriteLayout writes the image into the OCI image layout directory dir,
// named tag. A new or empty dir becomes a layout; an existing layout
// keeps its other images, and an image of the same tag is replaced.
func (img *Image) WriteLayout(dir, tag string) error {
	opts := []layout.Option{layout.WithPlatform(v1.Platform{OS: img.Config.OS, Architecture: img.Config.Architecture})}
	if tag != "" {
		opts = append(opts, layout.WithAnnotations(indexAnnotations(tag)))
	}
	task := "writing OCI layout"
	img.progress.Begin(task, img.layerBytes())
	defer img.progress.End(task)

	if _, err := os.Stat(filepath.Join(dir, "index.json")); err == nil {
		p, err := layout.FromPath(dir)
		if err != nil {
			return err
		}
		if tag == "" {
			return p.AppendImage(img.Image, opts...)
		}
		return p.ReplaceImage(img.Image, match.Annotation(AnnotationRefName, tag), opts...)
	}
	if ents, err := os.ReadDir(dir); err == nil && len(ents) > 0 {
		return fmt.Errorf("%s is neither empty nor an OCI layout (no index.json)", dir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	return p.AppendImage(img.Image, opts...)
}

// writeFileAtomic writes path through a temporary file in its directory.
func writeFileAtomic(path string, write func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := write(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// Created reads SOURCE_DATE_EPOCH (seconds since the Unix epoch), the
// reproducible-builds convention for the time stamped into an image;
// empty gives the zero time (Build then uses the epoch).
func Created(sourceDateEpoch string) (time.Time, error) {
	if sourceDateEpoch == "" {
		return time.Time{}, nil
	}
	var secs int64
	if _, err := fmt.Sscanf(sourceDateEpoch, "%d", &secs); err != nil || secs < 0 || fmt.Sprint(secs) != sourceDateEpoch {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q: want a whole number of seconds since 1970-01-01", sourceDateEpoch)
	}
	return time.Unix(secs, 0).UTC(), nil
}
