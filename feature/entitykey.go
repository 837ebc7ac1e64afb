package feature

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Entity keys. The online store keys a view's rows by the text of their
// join-key values:
//
//   - an integer is its decimal form: 42 whether it came from an int64
//     column, a JSON number 42 or 42.0, or a JSON string "42";
//   - a string is itself ("042" stays "042": a string is never parsed);
//   - a bool is "true" or "false";
//   - a number with a fraction, an integer beyond int64, a null or any
//     other value is not a key (an error).
//
// So an int64 key column is looked up equally with 42, 42.0 and "42",
// and a string column with its exact text. A composite key (several join
// keys, in the order of the view's entities and their join keys) joins
// the texts with the unit separator U+001F, after escaping '\' as `\\`
// and U+001F as `\u`, so distinct tuples give distinct keys.

// keySep separates the values of a composite key.
const keySep = '\x1f'

// EntityKey returns the canonical key of join-key values written as text
// (see KeyText).
func EntityKey(values []string) string {
	if len(values) == 1 && !strings.ContainsAny(values[0], "\\\x1f") {
		return values[0]
	}
	var b strings.Builder
	for i, v := range values {
		if i > 0 {
			b.WriteByte(keySep)
		}
		for j := 0; j < len(v); j++ {
			switch v[j] {
			case '\\':
				b.WriteString(`\\`)
			case keySep:
				b.WriteString(`\u`)
			default:
				b.WriteByte(v[j])
			}
		}
	}
	return b.String()
}

// KeyText returns the text of one join-key value from a request (JSON or
// YAML) or a source row, by the rules above.
func KeyText(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case int:
		return strconv.Itoa(x), nil
	case int32:
		return strconv.FormatInt(int64(x), 10), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case uint64:
		if x > math.MaxInt64 {
			return "", fmt.Errorf("entity key %d is beyond int64", x)
		}
		return strconv.FormatUint(x, 10), nil
	case float64:
		return floatKey(x, strconv.FormatFloat(x, 'g', -1, 64))
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return strconv.FormatInt(i, 10), nil
		}
		f, err := x.Float64()
		if err != nil {
			return "", fmt.Errorf("entity key %s is not a number", x)
		}
		return floatKey(f, x.String())
	case bool:
		return strconv.FormatBool(x), nil
	case nil:
		return "", fmt.Errorf("an entity key is null")
	}
	return "", fmt.Errorf("entity key %v (%T) is not a string, integer or bool", v, v)
}

func floatKey(f float64, text string) (string, error) {
	if f != math.Trunc(f) || math.IsInf(f, 0) || f < -(1<<63) || f >= 1<<63 {
		return "", fmt.Errorf("entity key %s is not an integer", text)
	}
	return strconv.FormatInt(int64(f), 10), nil
}
