package table

import (
	"context"
	"errors"
	"io"
	"slices"
	"strconv"
)

// CategoryRule decides when a string or int64 column is categorical: it
// has at most MaxValues distinct values and they are at most MaxFraction
// of its non-null values. The zero value means 50 and 0.05.
type CategoryRule struct {
	MaxValues   int
	MaxFraction float64
}

func (r CategoryRule) withDefaults() CategoryRule {
	if r.MaxValues <= 0 {
		r.MaxValues = 50
	}
	if r.MaxFraction <= 0 {
		r.MaxFraction = 0.05
	}
	return r
}

// Categorical reports whether a column with distinct values among
// nonNull values is categorical under r.
func (r CategoryRule) Categorical(distinct, nonNull int64) bool {
	r = r.withDefaults()
	return nonNull > 0 && distinct <= int64(r.MaxValues) && float64(distinct) <= r.MaxFraction*float64(nonNull)
}

// Infer reads the rest of r and returns its schema with what the rows
// show: Nullable set exactly when a column had nulls, and categorical
// domains (sorted) for string and int64 columns that rule admits. Columns
// pandas marked as categorical stay categorical; their domain is filled in
// when it is small enough to list.
func Infer(ctx context.Context, r Reader, rule CategoryRule) (Schema, error) {
	rule = rule.withDefaults()
	s := r.Schema()
	type domain struct {
		strs    map[string]struct{}
		ints    map[int64]struct{}
		over    bool
		nulls   bool
		nonNull int64
	}
	doms := make([]domain, len(s.Fields))
	for i, f := range s.Fields {
		switch f.Type {
		case String:
			doms[i].strs = map[string]struct{}{}
		case Int64:
			doms[i].ints = map[int64]struct{}{}
		}
	}
	for {
		b, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Schema{}, err
		}
		for ci := range b.Columns {
			c := &b.Columns[ci]
			d := &doms[ci]
			nulls := c.Valid.CountNulls(b.Len)
			d.nulls = d.nulls || nulls > 0
			d.nonNull += int64(b.Len - nulls)
			if d.over || (d.strs == nil && d.ints == nil) {
				continue
			}
			for i := 0; i < b.Len && !d.over; i++ {
				if c.Null(i) {
					continue
				}
				if d.strs != nil {
					v := c.Bytes(i)
					if _, ok := d.strs[unsafeString(v)]; !ok {
						d.strs[string(v)] = struct{}{}
					}
					d.over = len(d.strs) > rule.MaxValues
				} else {
					d.ints[c.Ints[i]] = struct{}{}
					d.over = len(d.ints) > rule.MaxValues
				}
			}
		}
	}
	for i := range s.Fields {
		f := &s.Fields[i]
		d := &doms[i]
		f.Nullable = d.nulls
		if d.over || (d.strs == nil && d.ints == nil) {
			continue
		}
		n := int64(len(d.strs) + len(d.ints))
		if !f.Categorical && !rule.Categorical(n, d.nonNull) {
			continue
		}
		f.Categorical = true
		f.Categories = f.Categories[:0]
		if d.strs != nil {
			for v := range d.strs {
				f.Categories = append(f.Categories, v)
			}
			slices.Sort(f.Categories)
			continue
		}
		ints := make([]int64, 0, len(d.ints))
		for v := range d.ints {
			ints = append(ints, v)
		}
		slices.Sort(ints)
		for _, v := range ints {
			f.Categories = append(f.Categories, strconv.FormatInt(v, 10))
		}
	}
	return s, nil
}
