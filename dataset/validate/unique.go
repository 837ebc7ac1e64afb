package validate

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"math"
	"strings"

	"github.com/kiln-ml/kiln/dataset/table"
)

// digest is a 128-bit hash of a row's key; two independent seeded 64-bit
// hashes. With k distinct keys, a false duplicate (two keys, one digest)
// has probability about k²/2¹²⁹.
type digest struct{ a, b uint64 }

// digestSet is an open-addressing hash set of digests (linear probing,
// 16-byte slots, at most 3/4 full). The zero digest marks an empty slot;
// a key hashing to it is stored as {0, 1}.
type digestSet struct {
	slots []digest
	n     int
	limit int
}

func newDigestSet(limit int) *digestSet {
	return &digestSet{slots: make([]digest, 1024), limit: limit}
}

// add inserts d and reports whether it was new; full is set (and d not
// inserted) when the set already holds limit digests.
func (s *digestSet) add(d digest) (added, full bool) {
	if d == (digest{}) {
		d.b = 1
	}
	mask := uint64(len(s.slots) - 1)
	for i := d.a & mask; ; i = (i + 1) & mask {
		switch s.slots[i] {
		case d:
			return false, false
		case digest{}:
			if s.n >= s.limit {
				return false, true
			}
			s.slots[i] = d
			s.n++
			if s.n*4 > len(s.slots)*3 {
				s.grow()
			}
			return true, false
		}
	}
}

func (s *digestSet) grow() {
	old := s.slots
	s.slots = make([]digest, 2*len(old))
	mask := uint64(len(s.slots) - 1)
	for _, d := range old {
		if d == (digest{}) {
			continue
		}
		i := d.a & mask
		for s.slots[i] != (digest{}) {
			i = (i + 1) & mask
		}
		s.slots[i] = d
	}
}

type uniqueCheck struct {
	rule   *Rule
	cols   []int
	fields []*table.Field
	set    *digestSet
	seeds  [2]maphash.Seed
	buf    []byte
	batch  []*table.Column // the key columns of the current batch
	full   bool
	limit  int
	tally
}

func compileUnique(e *env, r *Rule) (check, error) {
	c := &uniqueCheck{rule: r, seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}}
	for _, name := range r.Columns {
		i, f, err := e.column(name)
		if err != nil {
			return nil, err
		}
		c.cols = append(c.cols, i)
		c.fields = append(c.fields, f)
	}
	c.limit = e.opts.MaxUniqueKeys
	if c.limit <= 0 {
		c.limit = DefaultMaxUniqueKeys
	}
	c.set = newDigestSet(c.limit)
	c.tally = tally{max: e.maxEx}
	return c, nil
}

func (c *uniqueCheck) observe(b *table.Batch, base int64) {
	if c.full {
		return
	}
	cols := c.batch[:0]
	for _, ci := range c.cols {
		cols = append(cols, &b.Columns[ci])
	}
	c.batch = cols
rows:
	for i := 0; i < b.Len; i++ {
		buf := c.buf[:0]
		for _, col := range cols {
			if !valid(col, i) {
				continue rows // a key with a null is not checked (SQL UNIQUE)
			}
			buf = appendKey(buf, col, i)
		}
		c.buf = buf
		c.elements++
		d := digest{maphash.Bytes(c.seeds[0], buf), maphash.Bytes(c.seeds[1], buf)}
		added, full := c.set.add(d)
		if full {
			c.full = true
			c.elements--
			return
		}
		if !added {
			c.unexpected++
			if len(c.examples) < c.max {
				c.examples = append(c.examples, Example{Row: base + int64(i), Value: c.keyText(cols, i)})
			}
		}
	}
}

// appendKey encodes value i of col unambiguously: fixed-width numbers,
// length-prefixed strings. Floats compare as numbers: -0 is 0 and every
// NaN is one NaN.
func appendKey(buf []byte, col *table.Column, i int) []byte {
	switch col.Type {
	case table.Bool:
		if col.Bools[i] {
			return append(buf, 1)
		}
		return append(buf, 0)
	case table.Float64:
		v := col.Floats[i]
		switch {
		case v == 0:
			v = 0
		case v != v:
			v = math.NaN()
		}
		return binary.LittleEndian.AppendUint64(buf, math.Float64bits(v))
	case table.String:
		s := col.Bytes(i)
		buf = binary.LittleEndian.AppendUint32(buf, uint32(len(s)))
		return append(buf, s...)
	}
	return binary.LittleEndian.AppendUint64(buf, uint64(col.Ints[i]))
}

func (c *uniqueCheck) keyText(cols []*table.Column, i int) string {
	parts := make([]string, len(cols))
	for k, col := range cols {
		parts[k] = col.Format(i, c.fields[k])
	}
	return strings.Join(parts, ", ")
}

func (c *uniqueCheck) finish(_ context.Context, res *Result, _ int64, _ *Suite, _ *referenceCache) {
	res.Expected = "unique" + mostlyText(c.rule.Mostly)
	if len(c.cols) > 1 {
		res.Expected = "unique combination" + mostlyText(c.rule.Mostly)
	}
	if c.full {
		res.Status = StatusError
		res.Error = fmt.Sprintf("more than %d distinct keys: uniqueness was checked on the first %d keys only (raise the limit on distinct keys)", c.limit, c.elements)
		res.Elements, res.Unexpected, res.Examples = c.elements, c.unexpected, c.examples
		return
	}
	c.fill(res, c.rule.Mostly)
	res.Observed = fmt.Sprintf("%d repeated of %d keys", c.unexpected, c.elements)
}
