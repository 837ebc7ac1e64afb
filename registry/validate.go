package registry

import (
	"encoding/json"
	"path"
	"strconv"
	"strings"
	"unicode"

	"github.com/kiln-ml/kiln/errdefs"
)

// MLflow's registry limits (mlflow/utils/validation.py).
const (
	maxNameLength  = 256 // MLflow's column width; MLflow itself has no check
	maxTagKey      = 250
	maxTagValue    = 5000
	maxAliasLength = 255
)

// missingValue is MLflow's missing_value(path) message.
func missingValue(param string) error {
	return errdefs.Invalid("Missing value for required parameter '%s'.", param)
}

// exceedsMaxLength is MLflow's exceeds_maximum_length(path, limit) message.
func exceedsMaxLength(what string, limit int) error {
	return errdefs.Invalid("'%s' exceeds the maximum length of %d characters", what, limit)
}

// invalidValue is MLflow's invalid_value(path, value, message): the value is
// rendered as JSON.
func invalidValue(param, value, msg string) error {
	v, _ := json.Marshal(value)
	return errdefs.Invalid("Invalid value %s for parameter '%s' supplied: %s", v, param, msg)
}

// validateName checks a registered model name (MLflow only requires one).
// NUL is refused because PostgreSQL cannot store it in text.
func validateName(param, name string) error {
	if name == "" {
		return missingValue(param)
	}
	if len(name) > maxNameLength {
		return exceedsMaxLength(param, maxNameLength)
	}
	if strings.ContainsRune(name, 0) {
		return invalidValue(param, name, "Names must not contain NUL characters.")
	}
	return nil
}

// isWord reports whether r matches Python's Unicode \w.
func isWord(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Nl, r) || unicode.Is(unicode.No, r)
}

// validateTagName checks a tag key as MLflow's _validate_tag_name: only
// word characters, / . - space and colon, and no path that resolves to
// another name.
func validateTagName(key string) error {
	for _, r := range key {
		if !(isWord(r) || strings.ContainsRune("/.- :", r)) {
			return invalidValue("key", key, "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/).")
		}
	}
	norm := path.Clean(key)
	if key == "" {
		norm = "."
	}
	if norm != key || norm == "." || strings.HasPrefix(norm, "..") || strings.HasPrefix(norm, "/") {
		return invalidValue("key", key, "Names may be treated as files in certain cases, and must not resolve to other names when treated as such. This name would resolve to "+pyRepr(norm))
	}
	return nil
}

// pyRepr renders s as Python's repr of a str (enough for path names).
func pyRepr(s string) string {
	if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
		return `"` + s + `"`
	}
	return "'" + strings.ReplaceAll(s, "'", `\'`) + "'"
}

// validateTag checks a registered model or model version tag.
func validateTag(key, value string) error {
	if err := validateTagName(key); err != nil {
		return err
	}
	if len(key) > maxTagKey {
		return exceedsMaxLength("key", maxTagKey)
	}
	if len(value) > maxTagValue {
		return exceedsMaxLength("value", maxTagValue)
	}
	return nil
}

// ValidateAlias checks an alias name as MLflow's _validate_model_alias_name.
func ValidateAlias(alias string) error {
	if alias == "" {
		return errdefs.Invalid("Registered model alias name cannot be empty.")
	}
	for _, r := range alias {
		if !isWord(r) && r != '-' {
			return errdefs.Invalid("Invalid alias name: '%s'. Names may only contain alphanumerics, underscores (_), and dashes (-).", alias)
		}
	}
	if len([]rune(alias)) > maxAliasLength {
		return exceedsMaxLength("Registered model alias name", maxAliasLength)
	}
	if strings.EqualFold(alias, "latest") {
		return errdefs.Invalid("'latest' alias name (case insensitive) is reserved.")
	}
	if isVersionAlias(alias) {
		return errdefs.Invalid("Version alias name '%s' is reserved.", alias)
	}
	return nil
}

// isVersionAlias matches ^[vV]\d+$.
func isVersionAlias(s string) bool {
	if len(s) < 2 || (s[0] != 'v' && s[0] != 'V') {
		return false
	}
	for _, r := range s[1:] {
		if !unicode.IsDigit(r) {
			return false
		}
	}
	return true
}

// ParseVersion parses a version number given as a string, as Python's
// int() would (surrounding spaces and a sign allowed).
func ParseVersion(s string) (int64, error) {
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, errdefs.Invalid("Parameter 'version' must be an integer, got '%s'.", s)
	}
	return v, nil
}
