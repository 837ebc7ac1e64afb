package feedback

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/kiln-ml/kiln/errdefs"
)

// Bounds of a label.
const (
	// MaxRequestIDLen bounds a request id, in characters.
	MaxRequestIDLen = 128
	// MaxLabelLen bounds a string label, in bytes.
	MaxLabelLen = 1024
	// MaxSourceLen bounds a label's source, in bytes.
	MaxSourceLen = 256
)

// ErrInvalidLabel: a label that cannot be stored (an empty or too long
// request id, a negative row, a value that is not a string, a finite
// number or a bool). It comes wrapped in an errdefs.Error of kind
// errdefs.ErrInvalidArgument.
var ErrInvalidLabel = errors.New("invalid label")

func invalidf(format string, args ...any) error {
	return &errdefs.Error{Kind: errdefs.ErrInvalidArgument, Msg: fmt.Sprintf(format, args...), Err: ErrInvalidLabel}
}

// Label is the ground truth of one predicted row: the row Row of the
// request RequestID.
type Label struct {
	RequestID string `json:"request_id"`
	// Row is the row's index within its request (0 for a request of one
	// row).
	Row int64 `json:"row"`
	// Value is the true label or target: a string, a float64 or a bool.
	Value any `json:"label"`
	// ReceivedAt is when the server stored the label (set by Put when
	// zero).
	ReceivedAt time.Time `json:"received_time"`
	// Source says how the label came (the upload format: json, jsonl,
	// csv, parquet).
	Source string `json:"source,omitempty"`
}

// Validate checks l and normalises its value (integers and json.Number
// become float64).
func (l *Label) Validate() error {
	if err := ValidateRequestID(l.RequestID); err != nil {
		return err
	}
	if l.Row < 0 {
		return invalidf("request %q: row %d is negative", clip(l.RequestID), l.Row)
	}
	v, err := NormalizeValue(l.Value)
	if err != nil {
		return invalidf("request %q row %d: %s", clip(l.RequestID), l.Row, errdefs.Message(err))
	}
	l.Value = v
	if len(l.Source) > MaxSourceLen {
		return invalidf("source is longer than %d bytes", MaxSourceLen)
	}
	return nil
}

// ValidateRequestID checks a request id: 1 to MaxRequestIDLen characters
// of UTF-8, no NUL.
func ValidateRequestID(id string) error {
	switch {
	case id == "":
		return invalidf("empty request id")
	case !utf8.ValidString(id):
		return invalidf("request id %q is not UTF-8", clip(id))
	case utf8.RuneCountInString(id) > MaxRequestIDLen:
		return invalidf("request id %q is longer than %d characters", clip(id), MaxRequestIDLen)
	case strings.IndexByte(id, 0) >= 0:
		return invalidf("request id %q contains a NUL character", clip(id))
	}
	return nil
}

// NormalizeValue returns v as a string, a finite float64 or a bool, or an
// error for anything else (nil, NaN, objects, arrays).
func NormalizeValue(v any) (any, error) {
	switch x := v.(type) {
	case string:
		if x == "" {
			return nil, invalidf("the label is an empty string")
		}
		if len(x) > MaxLabelLen {
			return nil, invalidf("the label is longer than %d bytes", MaxLabelLen)
		}
		if !utf8.ValidString(x) || strings.IndexByte(x, 0) >= 0 {
			return nil, invalidf("the label %q is not UTF-8 text without NUL", clip(x))
		}
		return x, nil
	case bool:
		return x, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, invalidf("the label is %v; want a finite number", x)
		}
		return x, nil
	case float32:
		return NormalizeValue(float64(x))
	case int:
		return float64(x), nil
	case int32:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return nil, invalidf("the label %s is not a number", clip(string(x)))
		}
		return NormalizeValue(f)
	case nil:
		return nil, invalidf("no label (null)")
	}
	return nil, invalidf("the label is a %T; want a string, a number or a bool", v)
}

// ClassName is a label value's name as a class of a classifier: a string
// as it is, a number in its shortest decimal form ("1", "0.5"), a bool
// as "true" or "false".
func ClassName(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprint(v)
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
