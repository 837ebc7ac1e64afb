package filter

import (
	"strings"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/store"
)

// CompareSQL renders "col <op> value" as parameterised SQL for dialect d,
// with the same meaning on SQLite and PostgreSQL: LIKE is case-sensitive and
// ILIKE case-insensitive (as in MLflow), IN/NOT IN take the value's list.
// Numeric values are bound as float64 and strings as strings; the caller
// must have checked that the value's type suits the column.
func CompareSQL(d store.Dialect, col string, op Op, v Value) (string, []any, error) {
	var arg any = v.Str
	if v.IsNum {
		arg = v.Num
	}
	switch op {
	case Eq, Ne, Gt, Ge, Lt, Le:
		return col + " " + string(op) + " ?", []any{arg}, nil
	case Like:
		if d == store.SQLite {
			// SQLite's LIKE ignores ASCII case; GLOB is case-sensitive.
			return col + " GLOB ?", []any{likeToGlob(v.Str)}, nil
		}
		return col + " LIKE ?", []any{v.Str}, nil
	case ILike:
		if d == store.SQLite {
			return "LOWER(" + col + ") LIKE LOWER(?)", []any{v.Str}, nil
		}
		return col + " ILIKE ?", []any{v.Str}, nil
	case In, NotIn:
		if len(v.List) == 0 {
			if op == In {
				return "1 = 0", nil, nil
			}
			return "1 = 1", nil, nil
		}
		args := make([]any, len(v.List))
		for i, s := range v.List {
			args[i] = s
		}
		return col + " " + string(op) + " (" + strings.TrimSuffix(strings.Repeat("?, ", len(args)), ", ") + ")", args, nil
	case IsNull:
		return col + " IS NULL", nil, nil
	case IsNotNull:
		return col + " IS NOT NULL", nil, nil
	}
	return "", nil, errdefs.Invalid("Invalid comparator '%s'", op)
}

// likeToGlob translates a SQL LIKE pattern (% and _) to a GLOB pattern,
// escaping GLOB's own metacharacters.
func likeToGlob(p string) string {
	var b strings.Builder
	for _, r := range p {
		switch r {
		case '%':
			b.WriteByte('*')
		case '_':
			b.WriteByte('?')
		case '*', '?', '[':
			b.WriteByte('[')
			b.WriteRune(r)
			b.WriteByte(']')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// OrderSQL returns "expr ASC|DESC" with NULLs last on both dialects.
func OrderSQL(expr string, ascending bool) string {
	dir := " DESC"
	if ascending {
		dir = " ASC"
	}
	return "(" + expr + " IS NULL)" + ", " + expr + dir
}
