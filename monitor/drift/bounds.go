package drift

import (
	"math"

	"github.com/kiln-ml/kiln/dataset/profile"
	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/monitor/predlog"
)

// Bounds returns the reference range of each numeric (integer or float)
// column of ref, for the prediction log's outlier flags: [min, max] when
// q is 0 (or less), else the [q, 1−q] quantiles of the column's KLL sketch
// (q is capped at 0.5). Columns without finite values are left out; keys
// are ref's column names.
func Bounds(ref *profile.Profile, q float64) map[string]predlog.Range {
	out := map[string]predlog.Range{}
	if ref == nil {
		return out
	}
	if math.IsNaN(q) {
		q = 0
	}
	q = min(max(q, 0), 0.5)
	for _, c := range ref.Columns {
		if t := c.Field.Type; t != table.Int64 && t != table.Float64 {
			continue
		}
		if c.Min == nil || c.Max == nil {
			continue
		}
		r := predlog.Range{Lo: *c.Min, Hi: *c.Max}
		if q > 0 {
			if qs := c.QuantileValues([]float64{q, 1 - q}); len(qs) == 2 && !math.IsNaN(qs[0]) && !math.IsNaN(qs[1]) {
				r = predlog.Range{Lo: qs[0], Hi: qs[1]}
			}
		}
		out[c.Field.Name] = r
	}
	return out
}
