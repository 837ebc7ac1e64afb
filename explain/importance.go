package explain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
)

// ImportanceTag is the model version tag StoreImportance writes.
const ImportanceTag = "kiln.explain.importance"

// Bounds of the stored tag: the most features kept, and MLflow's limit
// on a model version tag's value.
const (
	TagFeatures = 50
	maxTagValue = 5000
)

// FeatureImportance is one feature's global importance: the mean |SHAP
// value| over the rows explained, summed over the outputs (classes).
type FeatureImportance struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	// PerOutput is the mean |SHAP value| per output, when there are
	// several.
	PerOutput []float64 `json:"per_output,omitempty"`
}

// Importance is a model's global feature importance, most important
// first.
type Importance struct {
	Method   string              `json:"method"`
	Rows     int                 `json:"rows"`
	Outputs  []string            `json:"outputs,omitempty"`
	Features []FeatureImportance `json:"features"`
}

// ImportanceOf computes the global importance of an explanation: per
// feature, mean |φ| over its rows (as shap's bar summary plot), summed
// over the outputs, sorted descending (ties by name).
func ImportanceOf(e *Explanation) Importance {
	nf, k := len(e.FeatureNames), len(e.Expected)
	imp := Importance{Method: e.Method, Rows: e.Rows, Features: make([]FeatureImportance, nf)}
	if k > 1 {
		imp.Outputs = e.OutputNames
	}
	for f := range nf {
		fi := FeatureImportance{Name: e.FeatureNames[f]}
		if k > 1 {
			fi.PerOutput = make([]float64, k)
		}
		for o := range k {
			s := 0.0
			for r := range e.Rows {
				s += math.Abs(e.Values[(r*nf+f)*k+o])
			}
			if e.Rows > 0 {
				s /= float64(e.Rows)
			}
			fi.Value += s
			if k > 1 {
				fi.PerOutput[o] = s
			}
		}
		imp.Features[f] = fi
	}
	sort.SliceStable(imp.Features, func(i, j int) bool {
		a, b := imp.Features[i], imp.Features[j]
		if a.Value != b.Value {
			return a.Value > b.Value
		}
		return a.Name < b.Name
	})
	return imp
}

// tagJSON is the compact form of the tag: features as [name, value]
// pairs, values to 6 significant digits.
type tagJSON struct {
	Method   string  `json:"method"`
	Rows     int     `json:"rows"`
	Features [][]any `json:"features"`
}

// TagValue renders the importance compactly for the model version tag:
// the TagFeatures most important features (fewer when their names would
// not fit MLflow's 5000-character limit) as [name, value] pairs.
func (imp Importance) TagValue() (string, error) {
	n := min(len(imp.Features), TagFeatures)
	for ; n >= 0; n-- {
		t := tagJSON{Method: imp.Method, Rows: imp.Rows, Features: make([][]any, n)}
		for i, f := range imp.Features[:n] {
			v, _ := strconv.ParseFloat(strconv.FormatFloat(f.Value, 'g', 6, 64), 64)
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return "", fmt.Errorf("explain: feature %q has importance %v", f.Name, f.Value)
			}
			t.Features[i] = []any{f.Name, v}
		}
		b, err := json.Marshal(t)
		if err != nil {
			return "", err
		}
		if len(b) <= maxTagValue {
			return string(b), nil
		}
	}
	return "", errors.New("explain: the importance tag does not fit")
}

// ParseImportanceTag reads a tag written by TagValue.
func ParseImportanceTag(s string) (Importance, error) {
	var t tagJSON
	if err := json.Unmarshal([]byte(s), &t); err != nil {
		return Importance{}, fmt.Errorf("explain: %s tag: %w", ImportanceTag, err)
	}
	imp := Importance{Method: t.Method, Rows: t.Rows, Features: make([]FeatureImportance, len(t.Features))}
	for i, p := range t.Features {
		name, ok1 := elem[string](p, 0)
		v, ok2 := elem[float64](p, 1)
		if !ok1 || !ok2 || len(p) != 2 {
			return Importance{}, fmt.Errorf("explain: %s tag: feature %d is not a [name, value] pair", ImportanceTag, i)
		}
		imp.Features[i] = FeatureImportance{Name: name, Value: v}
	}
	return imp, nil
}

func elem[T any](p []any, i int) (T, bool) {
	var zero T
	if i >= len(p) {
		return zero, false
	}
	v, ok := p[i].(T)
	return v, ok
}

// TagSetter sets a tag on a registered model version (registry.Store has
// this method; a client of the MLflow REST API can, too).
type TagSetter interface {
	SetModelVersionTag(ctx context.Context, name string, version int64, key, value string) error
}

// StoreImportance records imp on model version name/version as the
// ImportanceTag tag.
func StoreImportance(ctx context.Context, ts TagSetter, name string, version int64, imp Importance) error {
	v, err := imp.TagValue()
	if err != nil {
		return err
	}
	if err := ts.SetModelVersionTag(ctx, name, version, ImportanceTag, v); err != nil {
		return fmt.Errorf("explain: storing the importance of %s version %d: %w", name, version, err)
	}
	return nil
}
