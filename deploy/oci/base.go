package oci

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Base is a base image read from local files.
type Base struct {
	Name     string // its ref name in the layout or tarball, when it has one
	Digest   v1.Hash
	Platform Platform
	Config   *v1.ConfigFile
	Layers   []v1.Layer

	tmp string
}

// Close removes the files an OCI archive was extracted to.
func (b *Base) Close() error {
	if b == nil || b.tmp == "" {
		return nil
	}
	err := os.RemoveAll(b.tmp)
	b.tmp = ""
	return err
}

// ErrBase reports a base image that cannot be used.
var ErrBase = errors.New("base image")

// LoadBase reads the image for p from src, with no registry access: an
// OCI image layout directory, an OCI archive (a tar of a layout, as
// `skopeo copy … oci-archive:` or `docker save` of Docker 25+ write) or a
// `docker save` tarball. When the layout holds several images for p,
// src may end in ":REF" to pick the one whose ref name is REF. Extracted
// files go to tmpDir ("" means os.TempDir()) until Close.
func LoadBase(src string, p Platform, tmpDir string) (*Base, error) {
	file, ref := src, ""
	if _, err := os.Stat(src); err != nil {
		// PATH:REF, where REF may hold colons too (churn:3).
		for i := range len(src) {
			if src[i] != ':' || i == 0 {
				continue
			}
			if _, err := os.Stat(src[:i]); err == nil {
				file, ref = src[:i], src[i+1:]
				break
			}
		}
	}
	st, err := os.Stat(file)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBase, err)
	}
	if st.IsDir() {
		return fromLayout(file, ref, p)
	}
	isOCI, err := tarHas(file, "oci-layout")
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrBase, file, err)
	}
	if isOCI {
		dir, err := os.MkdirTemp(tmpDir, "kiln-base-")
		if err != nil {
			return nil, err
		}
		if err := extractLayout(file, dir); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("%w %s: %w", ErrBase, file, err)
		}
		b, err := fromLayout(dir, ref, p)
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		b.tmp = dir
		return b, nil
	}
	if ref != "" {
		return nil, fmt.Errorf("%w %s: a docker tarball holds one image; drop %q", ErrBase, file, ":"+ref)
	}
	img, err := tarball.ImageFromPath(file, nil)
	if err != nil {
		return nil, fmt.Errorf("%w %s: neither an OCI layout nor a docker tarball: %w", ErrBase, file, err)
	}
	m, err := tarball.LoadManifest(func() (io.ReadCloser, error) { return os.Open(file) })
	name := ""
	if err == nil && len(m) == 1 && len(m[0].RepoTags) > 0 {
		name = m[0].RepoTags[0]
	}
	return fromImage(img, name, p)
}

// fromLayout picks the image for p (and ref, when given) from the layout
// in dir, looking into nested indexes.
func fromLayout(dir, ref string, p Platform) (*Base, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("%w %s: not an OCI layout: %w", ErrBase, dir, err)
	}
	type found struct {
		img  v1.Image
		name string
	}
	var matches []found
	var seen []string
	var walk func(ii v1.ImageIndex, name string, depth int) error
	walk = func(ii v1.ImageIndex, name string, depth int) error {
		if depth > 4 {
			return errors.New("indexes nested too deep")
		}
		im, err := ii.IndexManifest()
		if err != nil {
			return err
		}
		for _, d := range im.Manifests {
			n := name
			if a := d.Annotations[AnnotationRefName]; a != "" {
				n = a
			}
			switch d.MediaType {
			case types.OCIImageIndex, types.DockerManifestList:
				child, err := ii.ImageIndex(d.Digest)
				if err != nil {
					return err
				}
				if err := walk(child, n, depth+1); err != nil {
					return err
				}
			case types.OCIManifestSchema1, types.DockerManifestSchema2:
				img, err := ii.Image(d.Digest)
				if err != nil {
					return err
				}
				cf, err := img.ConfigFile()
				if err != nil {
					return err
				}
				seen = append(seen, fmt.Sprintf("%s/%s %q", cf.OS, cf.Architecture, n))
				if cf.OS == p.OS && cf.Architecture == p.Architecture && (ref == "" || ref == n) {
					matches = append(matches, found{img, n})
				}
			}
		}
		return nil
	}
	if err := walk(idx, "", 0); err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrBase, dir, err)
	}
	switch {
	case len(matches) == 0:
		want := p.String()
		if ref != "" {
			want += " named " + ref
		}
		return nil, fmt.Errorf("%w %s: no image for %s (it has %s)", ErrBase, dir, want, strings.Join(seen, ", "))
	case len(matches) > 1:
		return nil, fmt.Errorf("%w %s: %d images for %s; pick one with PATH:REF (it has %s)", ErrBase, dir, len(matches), p, strings.Join(seen, ", "))
	}
	return fromImage(matches[0].img, matches[0].name, p)
}

func fromImage(img v1.Image, name string, p Platform) (*Base, error) {
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("%w: config: %w", ErrBase, err)
	}
	if cf.OS != p.OS || cf.Architecture != p.Architecture {
		return nil, fmt.Errorf("%w %s: it is for %s/%s, not %s", ErrBase, name, cf.OS, cf.Architecture, p)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("%w: layers: %w", ErrBase, err)
	}
	d, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBase, err)
	}
	return &Base{Name: name, Digest: d, Platform: p, Config: cf.DeepCopy(), Layers: layers}, nil
}

// tarHas says whether the tar file holds an entry called name.
func tarHas(file, name string) (bool, error) {
	f, err := os.Open(file)
	if err != nil {
		return false, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("not a tar file: %w", err)
		}
		if path.Clean(h.Name) == name {
			return true, nil
		}
	}
}

// extractLayout extracts the regular files of an OCI archive (oci-layout,
// index.json, blobs/…) into dir, refusing paths that leave it.
func extractLayout(file, dir string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if !filepath.IsLocal(name) {
			return fmt.Errorf("entry %q leaves the layout", h.Name)
		}
		dst := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		_, err = io.Copy(out, tr)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
}

// ociLayer reports a base image's Docker layer media types as their OCI
// equivalents, so the image's manifest is plain OCI.
type ociLayer struct{ v1.Layer }

func (l ociLayer) MediaType() (types.MediaType, error) {
	mt, err := l.Layer.MediaType()
	switch mt {
	case types.DockerLayer:
		return types.OCILayer, err
	case types.DockerUncompressedLayer:
		return types.OCIUncompressedLayer, err
	case types.DockerForeignLayer:
		return types.OCIRestrictedLayer, err
	}
	return mt, err
}
