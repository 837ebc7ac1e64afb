package pit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/errdefs"
)

// DefaultTimestampField is the entity table's timestamp column when
// Options.TimestampField is empty (Feast's name).
const DefaultTimestampField = "event_timestamp"

// Feature is one wanted column of a view's source.
type Feature struct {
	Name string
	// Type is the output type: Int64, Float64, String or Bool (a source
	// int64 column converts to Float64, an integral float64 to Int64, and
	// anything to String as text). Invalid keeps the source column's type.
	Type table.Type
}

// View is one feature view to join.
type View struct {
	// Name prefixes the output columns when Options.FullFeatureNames is
	// set ("view__feature").
	Name string
	// Source yields the view's feature rows; Join reads it to the end but
	// does not close it.
	Source table.Reader
	// JoinKeys are the key columns, named alike in the entity table and in
	// the source, in order (several for a composite key).
	JoinKeys []string
	// TimestampField is the source's event-time column (a timestamp or a
	// date); CreatedField, optional, its created-time column.
	TimestampField string
	CreatedField   string
	// TTL, when positive, ignores feature rows older than the entity
	// row's time minus TTL.
	TTL      time.Duration
	Features []Feature
}

// Options configure Join.
type Options struct {
	// TimestampField is the entity table's time column
	// (DefaultTimestampField when empty).
	TimestampField string
	// FullFeatureNames names output columns "view__feature" instead of
	// "feature" (Feast's full_feature_names).
	FullFeatureNames bool
}

func (o Options) timestampField() string {
	if o.TimestampField == "" {
		return DefaultTimestampField
	}
	return o.TimestampField
}

// Stats describe a finished join.
type Stats struct {
	EntityRows int64
	// SourceRows counts the rows read from each view's source; KeptRows
	// those whose key some entity row has (the rest were dropped as read);
	// Matched the entity rows that got a feature row of the view.
	SourceRows, KeptRows, Matched []int64
}

// ColumnName is the output column of feature f of view v.
func ColumnName(view, feature string, full bool) string {
	if full {
		return view + "__" + feature
	}
	return feature
}

// Schema returns the schema of Join's output: the entity table's columns
// followed by each view's features, in order, all nullable.
func Schema(entities table.Schema, views []View, opts Options) (table.Schema, error) {
	out := entities.Clone()
	seen := make(map[string]bool, len(out.Fields))
	for _, f := range out.Fields {
		seen[f.Name] = true
	}
	ts := opts.timestampField()
	if i := entities.Index(ts); i < 0 {
		return table.Schema{}, errdefs.Invalid("the entity table has no timestamp column %q", ts)
	} else if _, err := timeScale(entities.Fields[i]); err != nil {
		return table.Schema{}, fmt.Errorf("entity table: %w", err)
	}
	for vi := range views {
		v := &views[vi]
		src := v.Source.Schema()
		if len(v.JoinKeys) == 0 {
			return table.Schema{}, errdefs.Invalid("view %q has no join keys", v.Name)
		}
		for _, k := range v.JoinKeys {
			if entities.Index(k) < 0 {
				return table.Schema{}, errdefs.Invalid("the entity table has no join key column %q (view %q)", k, v.Name)
			}
			if src.Index(k) < 0 {
				return table.Schema{}, errdefs.Invalid("view %q: the source has no join key column %q", v.Name, k)
			}
		}
		i := src.Index(v.TimestampField)
		if i < 0 {
			return table.Schema{}, errdefs.Invalid("view %q: the source has no timestamp column %q", v.Name, v.TimestampField)
		}
		if _, err := timeScale(src.Fields[i]); err != nil {
			return table.Schema{}, fmt.Errorf("view %q: %w", v.Name, err)
		}
		if v.CreatedField != "" {
			i := src.Index(v.CreatedField)
			if i < 0 {
				return table.Schema{}, errdefs.Invalid("view %q: the source has no created timestamp column %q", v.Name, v.CreatedField)
			}
			if _, err := timeScale(src.Fields[i]); err != nil {
				return table.Schema{}, fmt.Errorf("view %q: %w", v.Name, err)
			}
		}
		for _, f := range v.Features {
			i := src.Index(f.Name)
			if i < 0 {
				return table.Schema{}, errdefs.Invalid("view %q: the source has no feature column %q", v.Name, f.Name)
			}
			sf := src.Fields[i]
			of := table.Field{Name: ColumnName(v.Name, f.Name, opts.FullFeatureNames), Type: f.Type, Nullable: true}
			if f.Type == table.Invalid || f.Type == sf.Type {
				of.Type, of.Unit, of.UTC, of.TimeZone = sf.Type, sf.Unit, sf.UTC, sf.TimeZone
			} else if !convertible(sf.Type, f.Type) {
				return table.Schema{}, errdefs.Invalid("view %q: feature %q is %v in the source, cannot be read as %v", v.Name, f.Name, sf.Type, f.Type)
			}
			if seen[of.Name] {
				return table.Schema{}, errdefs.Invalid("output column %q appears twice (set full feature names to prefix features with their view)", of.Name)
			}
			seen[of.Name] = true
			out.Fields = append(out.Fields, of)
		}
	}
	return out, nil
}

func convertible(from, to table.Type) bool {
	switch to {
	case table.String:
		return true
	case table.Float64:
		return from == table.Int64 || from == table.Bool
	case table.Int64:
		return from == table.Float64 || from == table.Bool
	}
	return false
}

// timeScale returns the factor that turns a time column's values into
// nanoseconds since the epoch.
func timeScale(f table.Field) (int64, error) {
	switch f.Type {
	case table.Timestamp:
		per := f.Unit.PerSecond()
		if per == 0 {
			per = 1e9
		}
		return 1e9 / per, nil
	case table.Date:
		return 86400 * 1e9, nil
	}
	return 0, errdefs.Invalid("column %q is %v, not a timestamp or a date", f.Name, f.Type)
}

// Join writes the point-in-time join of entities with views to w, whose
// schema must be Schema(entities.Schema(), views, opts). It reads
// entities and every source to the end and closes none of them, nor w.
func Join(ctx context.Context, entities table.Reader, views []View, opts Options, w table.Writer) (*Stats, error) {
	esch := entities.Schema()
	osch, err := Schema(esch, views, opts)
	if err != nil {
		return nil, err
	}
	ent, err := readEntities(ctx, entities, esch.Index(opts.timestampField()))
	if err != nil {
		return nil, err
	}
	st := &Stats{EntityRows: int64(ent.n), SourceRows: make([]int64, len(views)), KeptRows: make([]int64, len(views)), Matched: make([]int64, len(views))}
	results := make([]*viewResult, len(views))
	for vi := range views {
		r, err := joinView(ctx, ent, esch, &views[vi], st, vi)
		if err != nil {
			return nil, fmt.Errorf("view %q: %w", views[vi].Name, err)
		}
		results[vi] = r
	}
	return st, writeOutput(ent, results, osch, w)
}

// entityTable is the entity table in memory.
type entityTable struct {
	batches []*table.Batch
	offsets []int // first global row of each batch
	n       int
	times   []int64 // nanoseconds; math.MinInt64 for a null
}

const nullTime = math.MinInt64

func readEntities(ctx context.Context, r table.Reader, tsCol int) (*entityTable, error) {
	scale, err := timeScale(r.Schema().Fields[tsCol])
	if err != nil {
		return nil, err
	}
	e := &entityTable{}
	for {
		b, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("entity table: %w", err)
		}
		if b.Len == 0 {
			continue
		}
		e.batches = append(e.batches, b)
		e.offsets = append(e.offsets, e.n)
		e.n += b.Len
		e.times = appendTimes(e.times, &b.Columns[tsCol], scale)
	}
	return e, nil
}

// toNanos scales v to nanoseconds, saturating: instants past 2262 (or
// before 1677), such as the "9999-12-31" that marks an open end, compare
// as the latest (earliest) representable time instead of wrapping around.
func toNanos(v, scale int64) int64 {
	if scale == 1 {
		return max(v, nullTime+1)
	}
	if v > math.MaxInt64/scale {
		return math.MaxInt64
	}
	if v < (nullTime+1)/scale {
		return nullTime + 1
	}
	return v * scale
}

func appendTimes(dst []int64, c *table.Column, scale int64) []int64 {
	for i, v := range c.Ints {
		if c.Valid != nil && !c.Valid.Valid(i) {
			dst = append(dst, nullTime)
			continue
		}
		dst = append(dst, toNanos(v, scale))
	}
	return dst
}

// keyKind says how one key column is compared.
type keyKind uint8

const (
	keyInt  keyKind = iota // both sides int-like: 8 bytes
	keyStr                 // both sides strings: the bytes
	keyText                // mixed types: the canonical text
)

// keyer assigns dense ids to join-key tuples.
type keyer struct {
	kinds []keyKind
	ints  map[int64]int32 // single int key
	// dense, when set, replaces ints for lookups: the id of key lo+i
	// (−1 for none), for keys in a compact range.
	dense []int32
	lo    int64
	tups  map[string]int32
	buf   []byte
	n     int32
}

func newKeyer(es, ss table.Schema, keys []string) *keyer {
	k := &keyer{}
	for _, name := range keys {
		et, st := es.Fields[es.Index(name)].Type, ss.Fields[ss.Index(name)].Type
		intLike := func(t table.Type) bool {
			return t == table.Int64 || t == table.Timestamp || t == table.Date || t == table.Bool
		}
		switch {
		case intLike(et) && intLike(st):
			k.kinds = append(k.kinds, keyInt)
		case et == table.String && st == table.String:
			k.kinds = append(k.kinds, keyStr)
		default:
			k.kinds = append(k.kinds, keyText)
		}
	}
	if len(k.kinds) == 1 && k.kinds[0] == keyInt {
		k.ints = make(map[int64]int32)
	} else {
		k.tups = make(map[string]int32)
	}
	return k
}

func intOf(c *table.Column, i int) int64 {
	if c.Type == table.Bool {
		if c.Bools[i] {
			return 1
		}
		return 0
	}
	return c.Ints[i]
}

// encode writes row i's key tuple to k.buf; false if a key is null.
func (k *keyer) encode(cols []*table.Column, i int) bool {
	k.buf = k.buf[:0]
	for j, c := range cols {
		if c.Null(i) {
			return false
		}
		switch k.kinds[j] {
		case keyInt:
			k.buf = binary.LittleEndian.AppendUint64(k.buf, uint64(intOf(c, i)))
		case keyStr:
			b := c.Bytes(i)
			k.buf = binary.AppendUvarint(k.buf, uint64(len(b)))
			k.buf = append(k.buf, b...)
		case keyText:
			start := len(k.buf)
			k.buf = append(k.buf, 0, 0, 0, 0)
			switch c.Type {
			case table.String:
				k.buf = append(k.buf, c.Bytes(i)...)
			case table.Bool:
				k.buf = strconv.AppendBool(k.buf, c.Bools[i])
			case table.Float64:
				k.buf = strconv.AppendFloat(k.buf, c.Floats[i], 'g', -1, 64)
			default:
				k.buf = strconv.AppendInt(k.buf, c.Ints[i], 10)
			}
			binary.LittleEndian.PutUint32(k.buf[start:], uint32(len(k.buf)-start-4))
		}
	}
	return true
}

// add returns the id of row i's key, assigning one if new (−1 for a null
// key).
func (k *keyer) add(cols []*table.Column, i int) int32 {
	if k.ints != nil {
		c := cols[0]
		if c.Null(i) {
			return -1
		}
		v := intOf(c, i)
		id, ok := k.ints[v]
		if !ok {
			id = k.n
			k.ints[v] = id
			k.n++
		}
		return id
	}
	if !k.encode(cols, i) {
		return -1
	}
	id, ok := k.tups[string(k.buf)]
	if !ok {
		id = k.n
		k.tups[string(k.buf)] = id
		k.n++
	}
	return id
}

// densify switches lookups of a single int key to an array when the
// entity keys span a range at most 4× their count (plus 64Ki): a load
// instead of a hash probe.
func (k *keyer) densify() {
	if k.ints == nil || len(k.ints) == 0 {
		return
	}
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for v := range k.ints {
		lo, hi = min(lo, v), max(hi, v)
	}
	span := uint64(hi) - uint64(lo)
	if span >= uint64(4*len(k.ints)+1<<16) {
		return
	}
	k.dense = make([]int32, span+1)
	for i := range k.dense {
		k.dense[i] = -1
	}
	for v, id := range k.ints {
		k.dense[v-lo] = id
	}
	k.lo = lo
}

// find returns the id of row i's key, or −1 when no entity row has it.
func (k *keyer) find(cols []*table.Column, i int) int32 {
	if k.ints != nil {
		c := cols[0]
		if c.Null(i) {
			return -1
		}
		if k.dense != nil {
			d := uint64(intOf(c, i)) - uint64(k.lo)
			if d >= uint64(len(k.dense)) {
				return -1
			}
			return k.dense[d]
		}
		if id, ok := k.ints[intOf(c, i)]; ok {
			return id
		}
		return -1
	}
	if !k.encode(cols, i) {
		return -1
	}
	if id, ok := k.tups[string(k.buf)]; ok {
		return id
	}
	return -1
}

func columns(b *table.Batch, idx []int) []*table.Column {
	cols := make([]*table.Column, len(idx))
	for j, i := range idx {
		cols[j] = &b.Columns[i]
	}
	return cols
}

func indexes(s table.Schema, names []string) []int {
	out := make([]int, len(names))
	for j, n := range names {
		out[j] = s.Index(n)
	}
	return out
}

// buckets groups rows by key id, stably: the rows of id g are
// rows[start[g]:start[g+1]], in their original relative order, each made
// by mk from its index. It is a two-pass radix scatter: rows go first to
// one of at most partitions ranges of ids (few enough write streams to
// stay in cache), then each range, small enough for the cache, is
// counting-sorted by id in place through a buffer.
func buckets(ids *vec[int32], nkeys int32, mk func(i int32) row) (start []int32, rows []row) {
	start = make([]int32, nkeys+1)
	ids.each(func(_ int32, id int32) {
		if id >= 0 {
			start[id+1]++
		}
	})
	for g := int32(1); g <= nkeys; g++ {
		start[g] += start[g-1]
	}
	rows = make([]row, start[nkeys])
	if len(rows) == 0 {
		return start, rows
	}
	const partitions = 1024
	shift := uint(0)
	for (nkeys-1)>>shift >= partitions {
		shift++
	}
	np := (nkeys-1)>>shift + 1
	pos := make([]int32, np)
	for p := int32(0); p < np; p++ {
		pos[p] = start[p<<shift]
	}
	ids.each(func(i int32, id int32) {
		if id >= 0 {
			r := mk(i)
			r.g = id
			p := id >> shift
			rows[pos[p]] = r
			pos[p]++
		}
	})
	if shift == 0 {
		return start, rows
	}
	var buf []row
	cur := make([]int32, 1<<shift)
	for p := int32(0); p < np; p++ {
		base := p << shift
		end := min(base+1<<shift, nkeys)
		lo, hi := start[base], start[end]
		chunk := rows[lo:hi]
		buf = append(buf[:0], chunk...)
		for g := base; g < end; g++ {
			cur[g-base] = start[g] - lo
		}
		for _, r := range buf {
			k := r.g - base
			chunk[cur[k]] = r
			cur[k]++
		}
	}
	return start, rows
}

// sliceVec wraps a slice as a one-chunk vec (read only).
func sliceVec[T any](s []T) *vec[T] { return &vec[T]{chunks: [][]T{s}, n: len(s)} }

// viewResult is one view's match per entity row and its kept feature
// columns.
type viewResult struct {
	match []int32 // feature row per entity row, −1 for none
	cols  []*accum
}

func joinView(ctx context.Context, ent *entityTable, esch table.Schema, v *View, st *Stats, vi int) (*viewResult, error) {
	ssch := v.Source.Schema()
	k := newKeyer(esch, ssch, v.JoinKeys)
	ekeys := indexes(esch, v.JoinKeys)
	eids := make([]int32, ent.n)
	for bi, b := range ent.batches {
		cols := columns(b, ekeys)
		off := ent.offsets[bi]
		for i := 0; i < b.Len; i++ {
			if ent.times[off+i] == nullTime {
				eids[off+i] = -1
				continue
			}
			eids[off+i] = k.add(cols, i)
		}
	}
	nkeys := k.n

	// Stream the source, keeping the rows whose key an entity row has.
	skeys := indexes(ssch, v.JoinKeys)
	tsCol := ssch.Index(v.TimestampField)
	tsScale, _ := timeScale(ssch.Fields[tsCol])
	crCol, crScale := -1, int64(0)
	if v.CreatedField != "" {
		crCol = ssch.Index(v.CreatedField)
		crScale, _ = timeScale(ssch.Fields[crCol])
	}
	res := &viewResult{cols: make([]*accum, len(v.Features))}
	featCols := make([]int, len(v.Features))
	for j, f := range v.Features {
		featCols[j] = ssch.Index(f.Name)
		t := f.Type
		if t == table.Invalid {
			t = ssch.Fields[featCols[j]].Type
		}
		res.cols[j] = &accum{typ: t, field: ssch.Fields[featCols[j]]}
	}
	var (
		fids    vec[int32]
		ftimes  vec[int64]
		fcreate vec[int64]
		sel     []int
	)
	k.densify()
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		b, err := v.Source.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		st.SourceRows[vi] += int64(b.Len)
		cols := columns(b, skeys)
		tc := &b.Columns[tsCol]
		sel = sel[:0]
		for i := 0; i < b.Len; i++ {
			if tc.Null(i) {
				continue
			}
			id := k.find(cols, i)
			if id < 0 {
				continue
			}
			sel = append(sel, i)
			fids.push(id)
			ftimes.push(toNanos(tc.Ints[i], tsScale))
		}
		if len(sel) == 0 {
			continue
		}
		if crCol >= 0 {
			cc := &b.Columns[crCol]
			for _, i := range sel {
				if cc.Null(i) {
					fcreate.push(nullTime)
				} else {
					fcreate.push(toNanos(cc.Ints[i], crScale))
				}
			}
		}
		for j, ci := range featCols {
			if err := res.cols[j].appendRows(&b.Columns[ci], sel); err != nil {
				return nil, fmt.Errorf("feature %q: %w", v.Features[j].Name, err)
			}
		}
	}
	st.KeptRows[vi] = int64(fids.n)

	// Bucket both sides by key; within a key sort feature rows by (event
	// time, created time, source order) and entity rows by (time, row).
	hasCreated := crCol >= 0
	fstart, frowsAll := buckets(&fids, nkeys, func(i int32) row {
		r := row{t: ftimes.at(i), i: i}
		if hasCreated {
			r.c = fcreate.at(i)
		}
		return r
	})
	fids, ftimes, fcreate = vec[int32]{}, vec[int64]{}, vec[int64]{}
	estart, erowsAll := buckets(sliceVec(eids), nkeys, func(i int32) row { return row{t: ent.times[i], i: i} })
	eids = nil
	res.match = make([]int32, ent.n)
	for i := range res.match {
		res.match[i] = -1
	}
	ttl := v.TTL.Nanoseconds()
	// Keys are independent: merge them in parallel, in ranges of about
	// equal feature rows.
	workers := max(1, min(runtime.GOMAXPROCS(0), int(nkeys)/1024))
	counts := make([]int64, workers)
	var wg sync.WaitGroup
	lo := int32(0)
	for w := 0; w < workers; w++ {
		hi := int(nkeys)
		if w < workers-1 {
			target := int32((int64(len(frowsAll)) * int64(w+1)) / int64(workers))
			hi, _ = slices.BinarySearch(fstart, target)
			hi = min(max(hi, int(lo)), int(nkeys))
		}
		wg.Add(1)
		go func(w int, lo, hi int32) {
			defer wg.Done()
			counts[w] = mergeKeys(lo, hi, fstart, estart, frowsAll, erowsAll, ttl, res.match)
		}(w, lo, int32(hi))
		lo = int32(hi)
	}
	wg.Wait()
	var matched int64
	for _, c := range counts {
		matched += c
	}
	st.Matched[vi] = matched
	return res, nil
}

// mergeKeys joins the keys in [lo, hi): each key's feature rows and
// entity rows sorted by time, then one cursor over the feature rows.
// It returns the entity rows matched.
func mergeKeys(lo, hi int32, fstart, estart []int32, frowsAll, erowsAll []row, ttl int64, match []int32) int64 {
	var matched int64
	for g := lo; g < hi; g++ {
		frows := frowsAll[fstart[g]:fstart[g+1]]
		if len(frows) == 0 {
			continue
		}
		erows := erowsAll[estart[g]:estart[g+1]]
		sortRows(frows)
		sortRows(erows)
		j := -1
		for _, e := range erows {
			for j+1 < len(frows) && frows[j+1].t <= e.t {
				j++
			}
			if j < 0 || (ttl > 0 && frows[j].t < e.t-ttl) {
				continue
			}
			match[e.i] = frows[j].i
			matched++
		}
	}
	return matched
}

// row is one side's row in a key's run: its time, its created time (0 on
// the entity side) and its index, which breaks the remaining ties (source
// order for feature rows).
type row struct {
	t, c int64
	i    int32
	g    int32 // the key id (while bucketing)
}

func cmpRow(a, b row) int {
	switch {
	case a.t != b.t:
		if a.t < b.t {
			return -1
		}
		return 1
	case a.c != b.c:
		if a.c < b.c {
			return -1
		}
		return 1
	}
	return int(a.i - b.i)
}

// sortRows sorts a key's run unless it already is (sources are often in
// time order).
func sortRows(s []row) {
	for i := 1; i < len(s); i++ {
		if cmpRow(s[i-1], s[i]) > 0 {
			slices.SortFunc(s, cmpRow)
			return
		}
	}
}

func writeOutput(ent *entityTable, results []*viewResult, osch table.Schema, w table.Writer) error {
	for bi, b := range ent.batches {
		off := ent.offsets[bi]
		out := &table.Batch{Len: b.Len, Columns: make([]table.Column, 0, len(osch.Fields))}
		out.Columns = append(out.Columns, b.Columns...)
		for _, r := range results {
			m := r.match[off : off+b.Len]
			for _, a := range r.cols {
				out.Columns = append(out.Columns, a.gather(m))
			}
		}
		if err := w.Write(out); err != nil {
			return err
		}
	}
	return nil
}
