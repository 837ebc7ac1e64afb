package oci

import (
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"fmt"
	"strings"
)

// Platform is an image's target: linux/amd64 or linux/arm64.
type Platform struct {
	OS           string
	Architecture string
}

func (p Platform) String() string { return p.OS + "/" + p.Architecture }

// ParsePlatform reads "linux/amd64" or "linux/arm64" (also "linux/arm64/v8").
func ParsePlatform(s string) (Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) == 3 && parts[1] == "arm64" && parts[2] == "v8" {
		parts = parts[:2]
	}
	if len(parts) == 2 && parts[0] == "linux" && (parts[1] == "amd64" || parts[1] == "arm64") {
		return Platform{OS: parts[0], Architecture: parts[1]}, nil
	}
	return Platform{}, fmt.Errorf("platform %q: want linux/amd64 or linux/arm64", s)
}

// ErrBinary reports a kiln binary that cannot run in the image.
var ErrBinary = errors.New("unusable kiln binary")

// mainPackage is the import path of the kiln command.
const mainPackage = "github.com/kiln-ml/kiln/cmd/kiln"

// BinaryInfo is what CheckBinary found in a binary.
type BinaryInfo struct {
	// Static is true when the binary needs no dynamic loader or shared
	// libraries (it runs FROM scratch).
	Static bool
	// GoVersion and Revision (the VCS commit, when stamped) come from the
	// binary's build information.
	GoVersion, Revision string
}

// CheckBinary checks that path is a kiln executable for p: an ELF binary of
// p's architecture whose main package is kiln's. A dynamically linked
// binary is refused unless allowDynamic (a base image may bring its
// libraries); the error says how to cross-build a static one.
func CheckBinary(path string, p Platform, allowDynamic bool) (BinaryInfo, error) {
	hint := fmt.Sprintf("build one with: CGO_ENABLED=0 GOOS=%s GOARCH=%s go build -trimpath -ldflags=\"-s -w\" -o kiln-%s-%s ./cmd/kiln, then pass --kiln-binary",
		p.OS, p.Architecture, p.OS, p.Architecture)
	f, err := elf.Open(path)
	if err != nil {
		return BinaryInfo{}, fmt.Errorf("%w: %s is not a Linux (ELF) executable (%v); %s", ErrBinary, path, err, hint)
	}
	defer f.Close()
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[p.Architecture]
	if f.Class != elf.ELFCLASS64 || f.Machine != want || (f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN) {
		return BinaryInfo{}, fmt.Errorf("%w: %s is an executable for %v, not %s; %s", ErrBinary, path, f.Machine, p, hint)
	}
	var info BinaryInfo
	info.Static = true
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			info.Static = false
		}
	}
	if libs, err := f.ImportedLibraries(); err == nil && len(libs) > 0 {
		info.Static = false
	}
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return BinaryInfo{}, fmt.Errorf("%w: %s is not a Go binary (%v); %s", ErrBinary, path, err, hint)
	}
	if bi.Path != mainPackage {
		return BinaryInfo{}, fmt.Errorf("%w: %s is not kiln (its main package is %q); %s", ErrBinary, path, bi.Path, hint)
	}
	info.GoVersion = bi.GoVersion
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			info.Revision = s.Value
		}
	}
	if !info.Static && !allowDynamic {
		return info, fmt.Errorf("%w: %s is dynamically linked, and the image has no C library (FROM scratch); %s", ErrBinary, path, hint)
	}
	return info, nil
}
