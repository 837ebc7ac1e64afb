package tracking

import (
	"path"
	"regexp"
	"strings"

	"github.com/kiln-ml/kiln/errdefs"
)

// MLflow's limits (mlflow/utils/validation.py).
const (
	MaxMetricsPerBatch      = 1000
	MaxParamsTagsPerBatch   = 100
	MaxEntitiesPerBatch     = 1000
	MaxEntityKeyLength      = 250
	MaxParamValueLength     = 6000
	MaxTagValueLength       = 8000
	MaxExperimentNameLength = 500
	MaxExperimentTagValue   = 5000
	MaxDatasetNameLength    = 500
	MaxDatasetDigestLength  = 36
	MaxInputTagKeyLength    = 255
	MaxInputTagValueLength  = 500
)

var (
	keyRe    = regexp.MustCompile(`^[/\w.\- :]*$`)
	runIDRe  = regexp.MustCompile(`^[a-zA-Z0-9][\w\-]{0,255}$`)
	expIDRe  = regexp.MustCompile(`^[0-9]{1,19}$`)
	modelIDs = regexp.MustCompile(`^m-[0-9a-f]{32}$`)
)

// validateKey checks a metric, param or tag name as MLflow does: only
// letters, digits, _ - . space : and /, and no path that would resolve to
// another name. It runs for every key of every batch, so it is a byte loop
// rather than a regular expression and path.Clean.
func validateKey(kind, key string) error {
	if key == "" {
		return errdefs.Invalid("Invalid %s name: ''. Names must be non-empty.", kind)
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c >= 0x80 {
			// Non-ASCII: let the Unicode-aware expression decide (\w is Unicode in MLflow's Python).
			if !keyRe.MatchString(key) {
				return badKeyChars(kind, key)
			}
			break
		}
		if !(c == '_' || c == '-' || c == '.' || c == ' ' || c == ':' || c == '/' ||
			(c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
			return badKeyChars(kind, key)
		}
	}
	if key[0] == '/' || strings.HasPrefix(key, "..") || resolvesElsewhere(key) {
		return errdefs.Invalid("Invalid %s name: '%s'. Names may be treated as files in certain cases, and must not resolve to other names when treated as such. This name would resolve to '%s'", kind, key, path.Clean(key))
	}
	if len(key) > MaxEntityKeyLength {
		return errdefs.Invalid("%s name '%s' had length %d, which exceeded length limit of %d", capitalize(kind), key, len(key), MaxEntityKeyLength)
	}
	return nil
}

func badKeyChars(kind, key string) error {
	return errdefs.Invalid("Invalid %s name: '%s'. Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colons (:) and slashes (/).", kind, key)
}

// resolvesElsewhere reports whether path.Clean(key) != key, without
// allocating in the common case.
func resolvesElsewhere(key string) bool {
	if strings.Contains(key, "//") || strings.HasSuffix(key, "/") && len(key) > 1 {
		return true
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

func validateValueLength(kind, key, value string, limit int) error {
	if len(value) > limit {
		short := value
		if len(short) > 64 {
			short = short[:64] + "..."
		}
		return errdefs.Invalid("%s value '%s' had length %d, which exceeded length limit of %d (key '%s')", capitalize(kind), short, len(value), limit, key)
	}
	return nil
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func validateRunID(id string) error {
	if !runIDRe.MatchString(id) {
		return errdefs.Invalid("Invalid value '%s' for parameter 'run_id' supplied", id)
	}
	return nil
}

func validateExperimentID(id string) error {
	if !expIDRe.MatchString(id) {
		return errdefs.NotFound("No Experiment with id=%s exists", id)
	}
	return nil
}

func validateBatchLimits(metrics, params, tags int) error {
	switch {
	case metrics > MaxMetricsPerBatch:
		return errdefs.Invalid("A batch logging request can contain at most %d metrics. Got %d metrics. Please split up metrics across multiple requests and try again.", MaxMetricsPerBatch, metrics)
	case params > MaxParamsTagsPerBatch:
		return errdefs.Invalid("A batch logging request can contain at most %d params. Got %d params. Please split up params across multiple requests and try again.", MaxParamsTagsPerBatch, params)
	case tags > MaxParamsTagsPerBatch:
		return errdefs.Invalid("A batch logging request can contain at most %d tags. Got %d tags. Please split up tags across multiple requests and try again.", MaxParamsTagsPerBatch, tags)
	case metrics+params+tags > MaxEntitiesPerBatch:
		return errdefs.Invalid("A batch logging request can contain at most %d total metrics, params, and tags. Got %d total. Please split up the batch across multiple requests and try again.", MaxEntitiesPerBatch, metrics+params+tags)
	}
	return nil
}

func validateExperimentName(name string) error {
	if strings.TrimSpace(name) == "" {
		return errdefs.Invalid("Invalid experiment name: '%s'", name)
	}
	if len(name) > MaxExperimentNameLength {
		return errdefs.Invalid("Experiment name '%s' had length %d, which exceeded length limit of %d", name[:64]+"...", len(name), MaxExperimentNameLength)
	}
	return nil
}

func notFoundRun(id string) error { return errdefs.NotFound("Run with id=%s not found", id) }

func notActiveRun(id, stage string) error {
	return errdefs.Invalid("The run %s must be in the 'active' state. Current state is %s.", id, stage)
}
