package dataset

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kiln-ml/kiln/errdefs"
)

// Limits on the metadata of datasets and versions.
const (
	MaxNameLength        = 250
	MaxTagKeyLength      = 250
	MaxTagValueLength    = 5000
	MaxDescriptionLength = 64 << 10
	MaxTextLength        = 4096 // source URIs, creators, run ids, MLflow names
)

// ValidateName checks a dataset name. Names appear in URLs, file names and
// references (name@3), so they are kept plain: letters, digits, '_', '-'
// and '.', starting with a letter, digit or '_', at most MaxNameLength
// bytes.
func ValidateName(name string) error {
	if name == "" {
		return errdefs.Invalid("Invalid dataset name: empty")
	}
	if len(name) > MaxNameLength {
		return errdefs.Invalid("Invalid dataset name '%s': %d bytes, more than the limit of %d", clip(name), len(name), MaxNameLength)
	}
	if !utf8.ValidString(name) {
		return errdefs.Invalid("Invalid dataset name %q: not valid UTF-8", clip(name))
	}
	for i, r := range name {
		ok := unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || (i > 0 && (r == '-' || r == '.'))
		if !ok {
			return errdefs.Invalid("Invalid dataset name %q: names may only contain letters, digits, '_', '-' and '.', and start with a letter, digit or '_'", clip(name))
		}
	}
	return nil
}

func validateTag(key, value string) error {
	switch {
	case key == "":
		return errdefs.Invalid("Invalid tag key: empty")
	case len(key) > MaxTagKeyLength:
		return errdefs.Invalid("Tag key '%s' has %d bytes, more than the limit of %d", clip(key), len(key), MaxTagKeyLength)
	case len(value) > MaxTagValueLength:
		return errdefs.Invalid("Value of tag '%s' has %d bytes, more than the limit of %d", clip(key), len(value), MaxTagValueLength)
	}
	if err := validateText("tag key", key, MaxTagKeyLength); err != nil {
		return err
	}
	return validateText("tag value", value, MaxTagValueLength)
}

func validateTags(tags map[string]string) error {
	for k, v := range tags {
		if err := validateTag(k, v); err != nil {
			return err
		}
	}
	return nil
}

// validateText checks free text stored in the database: bounded, valid
// UTF-8 and without NUL (PostgreSQL text cannot hold it).
func validateText(what, s string, limit int) error {
	switch {
	case len(s) > limit:
		return errdefs.Invalid("The %s has %d bytes, more than the limit of %d", what, len(s), limit)
	case strings.IndexByte(s, 0) >= 0:
		return errdefs.Invalid("The %s contains a NUL byte", what)
	case !utf8.ValidString(s):
		return errdefs.Invalid("The %s is not valid UTF-8", what)
	}
	return nil
}

// VersionRef names a version: a dataset and a version number. Version 0
// means the latest version.
type VersionRef struct {
	Dataset string `json:"dataset"`
	Version int64  `json:"version"`
}

// String returns "name@3", or "name@latest" for version 0.
func (r VersionRef) String() string {
	if r.Version == 0 {
		return r.Dataset + "@latest"
	}
	return r.Dataset + "@" + strconv.FormatInt(r.Version, 10)
}

// ParseVersionRef parses "name", "name@latest", "name@3" or "name@v3".
func ParseVersionRef(s string) (VersionRef, error) {
	name, ver, has := strings.Cut(s, "@")
	if err := ValidateName(name); err != nil {
		return VersionRef{}, err
	}
	ref := VersionRef{Dataset: name}
	if !has || ver == "latest" {
		return ref, nil
	}
	n, err := strconv.ParseInt(strings.TrimPrefix(ver, "v"), 10, 64)
	if err != nil || n < 1 || strings.HasPrefix(ver, "+") || strings.HasPrefix(strings.TrimPrefix(ver, "v"), "+") {
		return VersionRef{}, errdefs.Invalid("Invalid dataset version '%s' in '%s': want a number from 1, or 'latest'", clip(ver), clip(s))
	}
	ref.Version = n
	return ref, nil
}

// ValidateTag checks a tag of a dataset or version: a non-empty key, and
// key and value within their limits, valid UTF-8 and without NUL.
func ValidateTag(key, value string) error { return validateTag(key, value) }
