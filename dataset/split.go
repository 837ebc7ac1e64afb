package dataset

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zeebo/blake3"

	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/errdefs"
)

// SplitMethod says how rows are assigned to the parts of a split.
type SplitMethod string

const (
	// SplitRandom assigns each row by a hash of the seed and the row's key
	// (the Key column) or, without one, its index. A row keeps its part
	// whatever else the table holds, so a test set stays a test set when
	// rows are added (with a key column, also when rows are reordered).
	SplitRandom SplitMethod = "random"
	// SplitStratified keeps each class of the Column (a label) in the
	// parts' proportions, to within a row or two per class: the n-th row of
	// a class goes to the part that a low-discrepancy sequence (golden-ratio
	// steps from a seeded, per-class offset) gives for n. Assignment depends
	// only on the seed, the class, the row's rank within its class and the
	// fractions, so appended rows never move earlier ones.
	SplitStratified SplitMethod = "stratified"
	// SplitTime orders rows by the timestamp Column: rows before the first
	// cut go to the first part, and so on. Cuts are given, or found from
	// the fractions (quantiles of the column; ties stay together).
	SplitTime SplitMethod = "time"
	// SplitGroup assigns whole groups (rows sharing a value of Column) by a
	// hash of the seed and the group: no group crosses parts. Proportions
	// are met in expectation, by groups.
	SplitGroup SplitMethod = "group"
)

// SplitPart is one output of a split.
type SplitPart struct {
	Name     string  `json:"name"`
	Fraction float64 `json:"fraction"`
}

// SplitSpec describes a split. It is recorded, as JSON, on every version
// the split creates, so that the split can be repeated: the same spec on
// the same content gives the same digests.
type SplitSpec struct {
	Method SplitMethod `json:"method"`
	Seed   uint64      `json:"seed"`
	// Parts default to train 0.8, validation 0.1, test 0.1. Fractions sum
	// to 1 (they are ignored for a time split with Cuts).
	Parts []SplitPart `json:"parts"`
	// Key is the row key column of a random split (default: the row index).
	Key string `json:"key,omitempty"`
	// Column is the label (stratified), timestamp (time) or group (group)
	// column.
	Column string `json:"column,omitempty"`
	// Cuts are the len(Parts)-1 boundaries of a time split, as timestamps
	// (RFC 3339, "2006-01-02 15:04:05", "2006-01-02") or numbers, in the
	// column's terms.
	Cuts []string `json:"cuts,omitempty"`
	// Path picks the table file of a folder version (needed when it holds
	// more than one).
	Path string `json:"path,omitempty"`
}

// DefaultSplitParts are the parts of a spec that names none.
var DefaultSplitParts = []SplitPart{{"train", 0.8}, {"validation", 0.1}, {"test", 0.1}}

// maxStrata bounds the classes of a stratified split.
const maxStrata = 100000

// normalize fills defaults and validates the spec.
func (s SplitSpec) normalize() (SplitSpec, error) {
	if len(s.Parts) == 0 {
		s.Parts = slices.Clone(DefaultSplitParts)
	}
	if len(s.Parts) > 64 {
		return s, errdefs.Invalid("Invalid split: %d parts, at most 64", len(s.Parts))
	}
	seen := map[string]bool{}
	sum := 0.0
	for _, p := range s.Parts {
		if err := ValidateName("x-" + p.Name); err != nil || p.Name == "" {
			return s, errdefs.Invalid("Invalid split part name '%s': use letters, digits, '_', '-' and '.'", clip(p.Name))
		}
		if seen[p.Name] {
			return s, errdefs.Invalid("Invalid split: part '%s' named twice", p.Name)
		}
		seen[p.Name] = true
		cutsGiven := s.Method == SplitTime && len(s.Cuts) > 0
		if !cutsGiven && (!(p.Fraction > 0) || p.Fraction > 1) {
			return s, errdefs.Invalid("Invalid split: part '%s' has fraction %v, want more than 0 and at most 1", p.Name, p.Fraction)
		}
		sum += p.Fraction
	}
	switch s.Method {
	case SplitRandom:
		if s.Column != "" {
			return s, errdefs.Invalid("Invalid split: a random split takes a key column (key), not column")
		}
	case SplitStratified, SplitGroup, SplitTime:
		if s.Column == "" {
			return s, errdefs.Invalid("Invalid split: a %s split needs a column", s.Method)
		}
		if s.Key != "" {
			return s, errdefs.Invalid("Invalid split: only a random split takes a key column")
		}
	default:
		return s, errdefs.Invalid("Invalid split method '%s' (want random, stratified, time or group)", clip(string(s.Method)))
	}
	if s.Method == SplitTime && len(s.Cuts) > 0 {
		if len(s.Cuts) != len(s.Parts)-1 {
			return s, errdefs.Invalid("Invalid time split: %d cuts for %d parts, want %d", len(s.Cuts), len(s.Parts), len(s.Parts)-1)
		}
	} else {
		if len(s.Cuts) > 0 {
			return s, errdefs.Invalid("Invalid split: only a time split takes cuts")
		}
		if math.Abs(sum-1) > 1e-9 {
			return s, errdefs.Invalid("Invalid split: fractions sum to %v, want 1", sum)
		}
	}
	return s, nil
}

// SplitStats say how a split came out.
type SplitStats struct {
	Rows []int64 `json:"rows"` // per part
	// Strata holds the rows per part of each class (stratified splits).
	Strata map[string][]int64 `json:"strata,omitempty"`
	// Cuts are the boundaries used by a time split, as given or as found
	// from the fractions.
	Cuts []string `json:"cuts,omitempty"`
}

// SplitTable reads the table file at path (CSV, Parquet or JSON Lines) and
// writes its rows, as a table of the same format and columns, to outs (one
// writer per part of spec, in order). CSV cells are carried as text,
// unchanged (no type inference, no NA conversion), so that a split never
// alters a value.
func SplitTable(ctx context.Context, path string, spec SplitSpec, outs []io.Writer) (*SplitStats, error) {
	spec, err := spec.normalize()
	if err != nil {
		return nil, err
	}
	if len(outs) != len(spec.Parts) {
		return nil, fmt.Errorf("dataset: split: %d writers for %d parts", len(outs), len(spec.Parts))
	}
	format, opts, err := splitReadOptions(ctx, path)
	if err != nil {
		return nil, err
	}
	sp := &splitter{spec: spec, cum: cumulative(spec.Parts), stats: &SplitStats{Rows: make([]int64, len(spec.Parts))}}
	if spec.Method == SplitStratified {
		sp.strata = map[string]*stratum{}
		sp.stats.Strata = map[string][]int64{}
	}
	if spec.Method == SplitTime {
		if err := sp.prepareTime(ctx, path, opts); err != nil {
			return nil, err
		}
	}
	r, err := table.Open(ctx, path, opts)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	schema := r.Schema()
	col, err := sp.column(schema)
	if err != nil {
		return nil, err
	}
	writers := make([]table.Writer, len(outs))
	for i, w := range outs {
		if writers[i], err = table.NewWriter(w, schema, format); err != nil {
			return nil, err
		}
	}
	rows := make([][]int, len(spec.Parts))
	var index int64
	for {
		b, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		for k := range rows {
			rows[k] = rows[k][:0]
		}
		for i := 0; i < b.Len; i++ {
			k, err := sp.assign(b, col, &schema, i, index)
			if err != nil {
				return nil, err
			}
			rows[k] = append(rows[k], i)
			index++
		}
		for k, rs := range rows {
			if len(rs) == 0 {
				continue
			}
			part := b
			if len(rs) != b.Len {
				part = b.Take(rs)
			}
			if err := writers[k].Write(part); err != nil {
				return nil, fmt.Errorf("dataset: split: write part %s: %w", spec.Parts[k].Name, err)
			}
			sp.stats.Rows[k] += int64(len(rs))
		}
	}
	for k, w := range writers {
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("dataset: split: write part %s: %w", spec.Parts[k].Name, err)
		}
	}
	return sp.stats, nil
}

// splitReadOptions detects the format and returns how to read it: CSV as
// text columns, so that values are written back exactly as they were.
func splitReadOptions(ctx context.Context, path string) (table.Format, table.Options, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", table.Options{}, fmt.Errorf("dataset: split: %w", err)
	}
	head := make([]byte, 512)
	n, err := io.ReadFull(f, head)
	f.Close()
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return "", table.Options{}, fmt.Errorf("dataset: split: %w", err)
	}
	format, err := table.DetectFormat(path, head[:n])
	if err != nil {
		return "", table.Options{}, err
	}
	opts := table.Options{Format: format}
	switch format {
	case table.CSV:
		r, err := table.Open(ctx, path, table.Options{Format: table.CSV, InferRows: 1})
		if err != nil {
			return "", opts, err
		}
		names := r.Schema().Names()
		r.Close()
		s := table.Schema{Fields: make([]table.Field, len(names))}
		for i, n := range names {
			s.Fields[i] = table.Field{Name: n, Type: table.String}
		}
		opts.Schema = &s
		opts.InferRows = 1
		opts.CSV.NoDefaultNA = true
	case table.JSONL:
		opts.InferRows = -1 // every row: a late value of another type must not fail the split
	}
	return format, opts, nil
}

func cumulative(parts []SplitPart) []float64 {
	out := make([]float64, len(parts))
	sum := 0.0
	for i, p := range parts {
		sum += p.Fraction
		out[i] = sum
	}
	return out
}

type stratum struct {
	offset float64
	n      int64
	rows   []int64
}

type splitter struct {
	spec   SplitSpec
	cum    []float64
	stats  *SplitStats
	strata map[string]*stratum
	cuts   []timeValue // time splits
	key    []byte      // scratch
}

// column returns the index of the spec's column (or key column) in the
// schema, or -1 when none is used.
func (sp *splitter) column(s table.Schema) (int, error) {
	name := sp.spec.Column
	if sp.spec.Method == SplitRandom {
		name = sp.spec.Key
	}
	if name == "" {
		return -1, nil
	}
	i := s.Index(name)
	if i < 0 {
		return -1, errdefs.Invalid("Invalid split: no column '%s' (columns: %s)", clip(name), clip(strings.Join(s.Names(), ", ")))
	}
	return i, nil
}

// unit maps a hash of the seed, a domain and a key to [0, 1).
func (sp *splitter) unit(domain byte, key []byte, null bool) float64 {
	b := binary.LittleEndian.AppendUint64(sp.key[:0], sp.spec.Seed)
	b = append(b, domain)
	if null {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = append(b, key...)
	}
	sp.key = b
	sum := blake3.Sum256(b)
	return float64(binary.LittleEndian.Uint64(sum[:8])>>11) / (1 << 53)
}

func (sp *splitter) bucket(u float64) int {
	for k, c := range sp.cum[:len(sp.cum)-1] {
		if u < c {
			return k
		}
	}
	return len(sp.cum) - 1
}

// cellText returns the bytes that identify a cell (for hashing), and
// whether it is null.
func cellText(b *table.Batch, col int, s *table.Schema, i int) ([]byte, bool) {
	c := &b.Columns[col]
	if c.Null(i) {
		return nil, true
	}
	if c.Type == table.String {
		return c.Bytes(i), false
	}
	return []byte(c.Format(i, &s.Fields[col])), false
}

// invPhi is 1/φ, the golden-ratio step of the stratified sequence.
const invPhi = 0.6180339887498949

func (sp *splitter) assign(b *table.Batch, col int, s *table.Schema, i int, index int64) (int, error) {
	switch sp.spec.Method {
	case SplitRandom:
		if col < 0 {
			var idx [8]byte
			binary.LittleEndian.PutUint64(idx[:], uint64(index))
			return sp.bucket(sp.unit('r', idx[:], false)), nil
		}
		key, null := cellText(b, col, s, i)
		return sp.bucket(sp.unit('k', key, null)), nil
	case SplitGroup:
		key, null := cellText(b, col, s, i)
		return sp.bucket(sp.unit('g', key, null)), nil
	case SplitStratified:
		key, null := cellText(b, col, s, i)
		name := string(key)
		if null {
			name = "\x00null"
		}
		st, ok := sp.strata[name]
		if !ok {
			if len(sp.strata) >= maxStrata {
				return 0, errdefs.Invalid("Invalid stratified split: column '%s' has more than %d classes", sp.spec.Column, maxStrata)
			}
			st = &stratum{offset: sp.unit('s', key, null), rows: make([]int64, len(sp.spec.Parts))}
			sp.strata[name] = st
			label := name
			if null {
				label = ""
			}
			sp.stats.Strata[label] = st.rows
		}
		_, u := math.Modf(st.offset + float64(st.n)*invPhi)
		st.n++
		k := sp.bucket(u)
		st.rows[k]++
		return k, nil
	case SplitTime:
		t, err := timeOf(b, col, s, i, index)
		if err != nil {
			return 0, err
		}
		for k, c := range sp.cuts {
			if t.less(c) {
				return k, nil
			}
		}
		return len(sp.cuts), nil
	}
	return 0, fmt.Errorf("dataset: split: method %s", sp.spec.Method)
}

// timeValue is a point on a time column: an instant (nanoseconds since the
// epoch) or, for a numeric column, a number.
type timeValue struct {
	numeric bool
	ns      int64
	f       float64
}

func (a timeValue) less(b timeValue) bool {
	if a.numeric {
		return a.f < b.f
	}
	return a.ns < b.ns
}

func (a timeValue) String() string {
	if a.numeric {
		return strconv.FormatFloat(a.f, 'g', -1, 64)
	}
	return time.Unix(0, a.ns).UTC().Format(time.RFC3339Nano)
}

var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999", time.DateOnly}

// parseTimeText parses a timestamp as text; naive times are taken as UTC
// (as the table package stores naive columns).
func parseTimeText(s string) (int64, bool) {
	s = strings.TrimSpace(s)
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UnixNano(), true
		}
	}
	return 0, false
}

func timeOf(b *table.Batch, col int, s *table.Schema, i int, index int64) (timeValue, error) {
	c := &b.Columns[col]
	name := s.Fields[col].Name
	if c.Null(i) {
		return timeValue{}, errdefs.Invalid("Invalid time split: row %d has no value in column '%s'", index+1, name)
	}
	switch c.Type {
	case table.Timestamp:
		per := s.Fields[col].Unit.PerSecond()
		return timeValue{ns: c.Ints[i] * (1e9 / per)}, nil
	case table.Date:
		return timeValue{ns: c.Ints[i] * 86400 * 1e9}, nil
	case table.Int64, table.Float64:
		return timeValue{numeric: true, f: c.Float(i)}, nil
	case table.String:
		text := string(c.Bytes(i))
		if ns, ok := parseTimeText(text); ok {
			return timeValue{ns: ns}, nil
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(text), 64); err == nil {
			return timeValue{numeric: true, f: f}, nil
		}
		return timeValue{}, errdefs.Invalid("Invalid time split: row %d, column '%s': '%s' is neither a timestamp nor a number", index+1, name, clip(text))
	}
	return timeValue{}, errdefs.Invalid("Invalid time split: column '%s' is of type %s, not a timestamp or a number", name, c.Type)
}

// prepareTime sets the cuts: parsed from the spec, or the quantiles of the
// column at the cumulative fractions (a first pass over the file).
func (sp *splitter) prepareTime(ctx context.Context, path string, opts table.Options) error {
	if len(sp.spec.Cuts) > 0 {
		// The column's kind decides how cuts parse; find it from the data.
		kindNumeric, err := sp.timeKind(ctx, path, opts)
		if err != nil {
			return err
		}
		for _, c := range sp.spec.Cuts {
			var v timeValue
			if kindNumeric {
				f, err := strconv.ParseFloat(strings.TrimSpace(c), 64)
				if err != nil {
					return errdefs.Invalid("Invalid time split: cut '%s' is not a number, as column '%s' holds", clip(c), sp.spec.Column)
				}
				v = timeValue{numeric: true, f: f}
			} else {
				ns, ok := parseTimeText(c)
				if !ok {
					return errdefs.Invalid("Invalid time split: cut '%s' is not a timestamp (RFC 3339, \"2006-01-02 15:04:05\" or \"2006-01-02\")", clip(c))
				}
				v = timeValue{ns: ns}
			}
			if len(sp.cuts) > 0 && !sp.cuts[len(sp.cuts)-1].less(v) {
				return errdefs.Invalid("Invalid time split: cuts must increase ('%s' after '%s')", clip(c), sp.cuts[len(sp.cuts)-1])
			}
			sp.cuts = append(sp.cuts, v)
		}
		sp.stats.Cuts = slices.Clone(sp.spec.Cuts)
		return nil
	}
	var vals []timeValue
	err := sp.scanTimes(ctx, path, opts, func(v timeValue) bool { vals = append(vals, v); return true })
	if err != nil {
		return err
	}
	for _, v := range vals[1:] {
		if v.numeric != vals[0].numeric {
			return errdefs.Invalid("Invalid time split: column '%s' mixes timestamps and numbers", sp.spec.Column)
		}
	}
	slices.SortFunc(vals, func(a, b timeValue) int {
		switch {
		case a.less(b):
			return -1
		case b.less(a):
			return 1
		}
		return 0
	})
	for _, c := range sp.cum[:len(sp.cum)-1] {
		at := int(math.Floor(float64(len(vals))*c + 1e-9))
		var cut timeValue
		if at >= len(vals) {
			last := vals[len(vals)-1]
			cut = timeValue{numeric: last.numeric, ns: math.MaxInt64, f: math.Inf(1)}
		} else {
			cut = vals[at]
		}
		sp.cuts = append(sp.cuts, cut)
		sp.stats.Cuts = append(sp.stats.Cuts, cut.String())
	}
	return nil
}

func (sp *splitter) timeKind(ctx context.Context, path string, opts table.Options) (bool, error) {
	numeric := false
	err := sp.scanTimes(ctx, path, opts, func(v timeValue) bool { numeric = v.numeric; return false })
	return numeric, err
}

// scanTimes reads the time column, calling fn for each value until it
// returns false. An empty table is an error: it cannot be split by time.
func (sp *splitter) scanTimes(ctx context.Context, path string, opts table.Options, fn func(timeValue) bool) error {
	opts.Columns = []string{sp.spec.Column}
	r, err := table.Open(ctx, path, opts)
	if err != nil {
		if errors.Is(err, table.ErrSchema) {
			return errdefs.Invalid("Invalid split: no column '%s'", clip(sp.spec.Column))
		}
		return err
	}
	defer r.Close()
	s := r.Schema()
	var index int64
	for {
		b, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		for i := 0; i < b.Len; i++ {
			v, err := timeOf(b, 0, &s, i, index)
			if err != nil {
				return err
			}
			index++
			if !fn(v) {
				return nil
			}
		}
	}
	if index == 0 {
		return errdefs.Invalid("Invalid time split: the table has no rows")
	}
	return nil
}

// pickTable returns the entry of m that a split reads.
func pickTable(m *Manifest, want string) (Entry, error) {
	if want != "" {
		e, ok := m.Lookup(want)
		if !ok {
			return Entry{}, errdefs.NotFound("The version has no file '%s'", clip(want))
		}
		return e, nil
	}
	var tables []Entry
	for _, e := range m.Files {
		if IsTablePath(e.Path) && !strings.HasSuffix(strings.ToLower(e.Path), ".gz") {
			tables = append(tables, e)
		}
	}
	switch {
	case m.Kind == KindFile:
		return m.Files[0], nil
	case len(tables) == 1:
		return tables[0], nil
	case len(tables) == 0:
		return Entry{}, errdefs.Invalid("The version holds no table file (CSV, Parquet or JSON Lines) to split")
	}
	return Entry{}, errdefs.Invalid("The version holds %d table files; name the one to split (path)", len(tables))
}

// SplitRequest asks Split to cut a version into parts.
type SplitRequest struct {
	Source VersionRef // the version to split (0: the latest)
	Spec   SplitSpec
	// Names maps a part to its dataset's name; by default "<source>-<part>".
	Names     map[string]string
	CreatedBy string
	// TempDir holds the downloaded table and the parts while they are
	// written (default os.TempDir()).
	TempDir string
}

// SplitOutput is one part of a split, recorded as a version of its own
// dataset.
type SplitOutput struct {
	Part    string   `json:"part"`
	Rows    int64    `json:"rows"`
	Version *Version `json:"version"`
	Created bool     `json:"created"` // false when the same split was already recorded
}

// Split cuts a tabular version into the parts of req.Spec, stores each
// part in remote as a single-file version of its own dataset (named as
// the source file), with the source as parent and the spec recorded, and
// returns the parts. Re-running the same split gives the same digests, and
// so creates nothing new.
func Split(ctx context.Context, st *Store, remote Remote, req SplitRequest) ([]SplitOutput, *SplitStats, error) {
	spec, err := req.Spec.normalize()
	if err != nil {
		return nil, nil, err
	}
	src, err := st.GetVersion(ctx, req.Source)
	if err != nil {
		return nil, nil, err
	}
	names := make([]string, len(spec.Parts))
	for i, p := range spec.Parts {
		names[i] = req.Names[p.Name]
		if names[i] == "" {
			names[i] = src.Dataset + "-" + p.Name
		}
		if err := ValidateName(names[i]); err != nil {
			return nil, nil, err
		}
		if names[i] == src.Dataset {
			return nil, nil, errdefs.Invalid("Invalid split: part '%s' would be recorded in the source dataset itself", p.Name)
		}
	}
	m, err := remote.GetManifest(ctx, src.Digest)
	if err != nil {
		return nil, nil, err
	}
	e, err := pickTable(m, spec.Path)
	if err != nil {
		return nil, nil, err
	}
	tmp, err := os.MkdirTemp(req.TempDir, "kiln-split-*")
	if err != nil {
		return nil, nil, fmt.Errorf("dataset: split: %w", err)
	}
	defer os.RemoveAll(tmp)

	// The source table, verified as it is downloaded (Parquet needs random
	// access, so it goes to a file).
	base := path.Base(e.Path)
	input := tmp + "/in-" + base
	rc, err := remote.Get(ctx, e.Digest)
	if err != nil {
		return nil, nil, err
	}
	err = writeAtomic(input, tmp, newVerifier(ctxReader{ctx, rc}, e.Digest, e.Size, "'"+e.Path+"'", nil), 0o600)
	rc.Close()
	if err != nil {
		return nil, nil, err
	}

	files := make([]*os.File, len(spec.Parts))
	hashers := make([]*blake3.Hasher, len(spec.Parts))
	outs := make([]io.Writer, len(spec.Parts))
	defer func() {
		for _, f := range files {
			if f != nil {
				f.Close()
			}
		}
	}()
	for i := range spec.Parts {
		if files[i], err = os.Create(fmt.Sprintf("%s/part-%d-%s", tmp, i, base)); err != nil {
			return nil, nil, fmt.Errorf("dataset: split: %w", err)
		}
		hashers[i] = blake3.New()
		outs[i] = newBufferedTee(files[i], hashers[i])
	}
	stats, err := SplitTable(ctx, input, spec, outs)
	if err != nil {
		return nil, nil, err
	}
	for _, w := range outs {
		if err := w.(*bufferedTee).Flush(); err != nil {
			return nil, nil, fmt.Errorf("dataset: split: %w", err)
		}
	}

	out := make([]SplitOutput, len(spec.Parts))
	for i, p := range spec.Parts {
		var d Digest
		hashers[i].Sum(d[:0])
		size, err := files[i].Seek(0, io.SeekCurrent)
		if err != nil {
			return nil, nil, fmt.Errorf("dataset: split: %w", err)
		}
		pm, err := NewManifest(KindFile, []Entry{{Path: base, Size: size, Digest: d}})
		if err != nil {
			return nil, nil, err
		}
		if miss, err := remote.Has(ctx, []Digest{d}); err != nil {
			return nil, nil, err
		} else if len(miss) == 1 {
			if _, err := files[i].Seek(0, io.SeekStart); err != nil {
				return nil, nil, fmt.Errorf("dataset: split: %w", err)
			}
			if err := remote.Put(ctx, d, size, files[i]); err != nil {
				return nil, nil, err
			}
		}
		if _, err := remote.PutManifest(ctx, pm); err != nil {
			return nil, nil, err
		}
		parent := src.Ref()
		v, created, err := st.CreateVersion(ctx, NewVersion{
			Dataset:     names[i],
			Manifest:    pm,
			Description: fmt.Sprintf("%s part of %s (%d rows)", p.Name, parent, stats.Rows[i]),
			Source:      "split:" + parent.String(),
			CreatedBy:   req.CreatedBy,
			Parent:      &parent,
			SplitSpec:   spec,
		})
		if err != nil {
			return nil, nil, err
		}
		out[i] = SplitOutput{Part: p.Name, Rows: stats.Rows[i], Version: v, Created: created}
	}
	return out, stats, nil
}
