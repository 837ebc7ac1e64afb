package feature

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/kiln-ml/kiln/errdefs"
)

// MaxDocBytes bounds an Entity or FeatureView document.
const MaxDocBytes = 1 << 20

// ParseEntity reads an Entity from YAML or JSON (unknown fields are
// errors) and validates it. With name set (a URL names it), a missing
// metadata.name is name and another one is an error.
func ParseEntity(data []byte, name string) (*Entity, error) {
	var e Entity
	if err := decodeDoc(data, "entity", &e); err != nil {
		return nil, err
	}
	if err := checkName(&e.Metadata, "entity", name); err != nil {
		return nil, err
	}
	e.Normalize()
	return &e, e.Validate()
}

// ParseFeatureView reads a FeatureView from YAML or JSON and validates
// it, as ParseEntity.
func ParseFeatureView(data []byte, name string) (*FeatureView, error) {
	var v FeatureView
	if err := decodeDoc(data, "feature view", &v); err != nil {
		return nil, err
	}
	if err := checkName(&v.Metadata, "feature view", name); err != nil {
		return nil, err
	}
	v.Normalize()
	return &v, v.Validate()
}

func checkName(m *Metadata, what, name string) error {
	switch {
	case name == "" || m.Name == name:
	case m.Name == "":
		m.Name = name
	default:
		return errdefs.InvalidFields(what, errdefs.FieldErrors{{Path: "metadata.name", Msg: fmt.Sprintf("is %q, but the URL names %q", clip(m.Name), clip(name))}})
	}
	return nil
}

func decodeDoc(data []byte, what string, v any) error {
	if len(data) > MaxDocBytes {
		return errdefs.TooLarge("The %s document is larger than %d bytes", what, MaxDocBytes)
	}
	if !utf8.Valid(data) {
		return errdefs.InvalidFields(what, errdefs.FieldErrors{{Msg: "the document is not valid UTF-8"}})
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		msg := "empty document"
		if !errors.Is(err, io.EOF) {
			msg = "not a valid YAML or JSON document: " + strings.TrimPrefix(err.Error(), "yaml: ")
		}
		return errdefs.InvalidFields(what, errdefs.FieldErrors{{Msg: msg}})
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return errdefs.InvalidFields(what, errdefs.FieldErrors{{Msg: "more than one document; send one per request"}})
	}
	return nil
}
