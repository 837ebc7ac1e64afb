package table

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

type csvReader struct {
	src      io.ReaderAt
	size     int64
	opts     Options
	quote    byte // the dialect's quote when not '"' (swapped with '"'), else 0
	cr       *csv.Reader
	names    []string // the file's columns
	schema   Schema   // the columns returned, in order
	proj     []int    // schema column i is file column proj[i]
	builders []*builder
	pending  [][]string // sampled records not yet returned
	lines    []int      // their line numbers
	extraNA  map[string]bool
	defNA    bool
	line     int
	done     bool
}

func openCSV(ctx context.Context, src io.ReaderAt, size int64, opts Options) (_ *csvReader, err error) {
	r := &csvReader{src: src, size: size, opts: opts, defNA: !opts.CSV.NoDefaultNA}
	if q := opts.CSV.Quote; q != 0 && q != '"' {
		if q >= utf8.RuneSelf || q == '\n' || q == '\r' {
			return nil, invalidf(ErrSchema, "CSV quote %q must be a printable ASCII character", q)
		}
		r.quote = byte(q)
	}
	if d := opts.CSV.Delimiter; d != 0 && (d == '"' || d == opts.CSV.Quote) {
		return nil, invalidf(ErrSchema, "CSV delimiter %q cannot be the quote character", d)
	}
	if len(opts.CSV.NAValues) > 0 {
		r.extraNA = make(map[string]bool, len(opts.CSV.NAValues))
		for _, v := range opts.CSV.NAValues {
			r.extraNA[v] = true
		}
	}
	if err := r.start(); err != nil {
		return nil, err
	}
	header, line, err := r.read()
	if errors.Is(err, io.EOF) {
		return nil, invalidf(ErrFormat, "empty CSV file: no header or columns")
	}
	if err != nil {
		return nil, err
	}
	if opts.CSV.NoHeader {
		r.names = make([]string, len(header))
		for i := range header {
			r.names[i] = strconv.Itoa(i)
		}
		r.pending = append(r.pending, clone(header))
		r.lines = append(r.lines, line)
	} else {
		r.names = mangleNames(header)
	}

	inferRows := opts.inferRows()
	infs := make([]inference, len(r.names))
	for i := range infs {
		infs[i] = newInference()
	}
	for _, rec := range r.pending {
		r.observe(infs, rec)
	}
	for inferRows < 0 || len(r.pending) < inferRows {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rec, line, err := r.read()
		if errors.Is(err, io.EOF) {
			r.done = true
			break
		}
		if err != nil {
			return nil, err
		}
		if len(rec) > len(r.names) {
			return nil, r.errWidth(line, len(rec))
		}
		r.observe(infs, rec)
		if inferRows > 0 {
			r.pending = append(r.pending, clone(rec))
			r.lines = append(r.lines, line)
		}
	}
	if inferRows < 0 {
		// Every row was inspected; read the file again from the top.
		r.pending, r.lines, r.done = nil, nil, false
		if err := r.start(); err != nil {
			return nil, err
		}
		if !opts.CSV.NoHeader {
			if _, _, err := r.read(); err != nil {
				return nil, err
			}
		}
	}

	all := make([]Field, len(r.names))
	for i, n := range r.names {
		all[i] = infs[i].field(n)
		if opts.Schema != nil {
			if j := opts.Schema.Index(n); j >= 0 {
				given := opts.Schema.Fields[j]
				given.Nullable = given.Nullable || all[i].Nullable
				all[i] = given
			}
		}
	}
	if r.proj, err = projection(r.names, opts.Columns); err != nil {
		return nil, err
	}
	r.schema.Fields = make([]Field, len(r.proj))
	r.builders = make([]*builder, len(r.proj))
	for i, j := range r.proj {
		r.schema.Fields[i] = all[j]
	}
	for i := range r.proj {
		r.builders[i] = newBuilder(&r.schema.Fields[i], min(opts.batchRows(), 1024))
	}
	return r, nil
}

// start (re)opens the CSV stream at the top of the file.
func (r *csvReader) start() error {
	var in io.Reader = bufio.NewReaderSize(io.NewSectionReader(r.src, 0, r.size), 256<<10)
	br := in.(*bufio.Reader)
	if b, err := br.Peek(3); err == nil && string(b) == "\ufeff" {
		br.Discard(3)
	}
	if r.quote != 0 {
		in = &quoteSwapper{r: br, q: r.quote}
	}
	cr := csv.NewReader(in)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	cr.LazyQuotes = r.opts.CSV.LazyQuotes
	if d := r.opts.CSV.Delimiter; d != 0 {
		cr.Comma = d
	}
	if c := r.opts.CSV.Comment; c != 0 {
		cr.Comment = c
	}
	r.cr = cr
	r.line = 0
	return nil
}

// read returns the next record (valid until the next read) and its line.
func (r *csvReader) read() ([]string, int, error) {
	rec, err := r.cr.Read()
	if err != nil {
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return nil, 0, invalidf(ErrFormat, "CSV line %d, column %d: %v", pe.Line, pe.Column, pe.Err)
		}
		if errors.Is(err, csv.ErrFieldCount) {
			return nil, 0, invalidf(ErrFormat, "CSV: %v", err)
		}
		return nil, 0, err
	}
	line, _ := r.cr.FieldPos(0)
	if r.quote != 0 {
		for i, f := range rec {
			if strings.IndexByte(f, '"') >= 0 || strings.IndexByte(f, r.quote) >= 0 {
				rec[i] = swapQuotes(f, r.quote)
			}
		}
	}
	return rec, line, nil
}

func (r *csvReader) errWidth(line, n int) error {
	return invalidf(ErrFormat, "CSV line %d: expected %d fields, saw %d", line, len(r.names), n)
}

func (r *csvReader) isNA(s string, t Type) bool {
	if s == "" && t != String {
		return true
	}
	if r.defNA && isDefaultNA(s) {
		return true
	}
	return r.extraNA != nil && r.extraNA[s]
}

func (r *csvReader) observe(infs []inference, rec []string) {
	for i := range infs {
		if i >= len(rec) || r.isNA(rec[i], Float64) {
			infs[i].null()
			continue
		}
		infs[i].text(rec[i])
	}
}

func (r *csvReader) Schema() Schema { return r.schema.Clone() }

func (r *csvReader) Next(ctx context.Context) (*Batch, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	limit := r.opts.batchRows()
	n := 0
	for n < limit && len(r.pending) > 0 {
		if err := r.appendRecord(r.pending[0], r.lines[0]); err != nil {
			return nil, err
		}
		r.pending, r.lines = r.pending[1:], r.lines[1:]
		n++
	}
	for n < limit && !r.done {
		rec, line, err := r.read()
		if errors.Is(err, io.EOF) {
			r.done = true
			break
		}
		if err != nil {
			return nil, err
		}
		if err := r.appendRecord(rec, line); err != nil {
			return nil, err
		}
		n++
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
	}
	if n == 0 {
		return nil, io.EOF
	}
	b := &Batch{Len: n, Columns: make([]Column, len(r.builders))}
	for i, bl := range r.builders {
		b.Columns[i] = bl.finish(min(limit, 2*n))
	}
	return b, nil
}

func (r *csvReader) appendRecord(rec []string, line int) error {
	if len(rec) > len(r.names) {
		return r.errWidth(line, len(rec))
	}
	for i, j := range r.proj {
		b := r.builders[i]
		if j >= len(rec) || r.isNA(rec[j], b.field.Type) {
			b.appendNull()
			continue
		}
		if err := b.appendText(rec[j]); err != nil {
			return fmt.Errorf("CSV line %d, column %q: %w (the type was inferred from the first %d rows; set InferRows to -1 to inspect them all, or give a Schema)", line, b.field.Name, err, r.opts.inferRows())
		}
	}
	return nil
}

func (r *csvReader) Close() error { return nil }

// mangleNames names columns as pandas does: duplicates get ".1", ".2"…
// suffixes and empty names become "Unnamed: <position>".
func mangleNames(header []string) []string {
	names := make([]string, len(header))
	seen := make(map[string]bool, len(header))
	for i, h := range header {
		if h == "" {
			h = "Unnamed: " + strconv.Itoa(i)
		}
		n := h
		for k := 1; seen[n]; k++ {
			n = h + "." + strconv.Itoa(k)
		}
		seen[n] = true
		names[i] = n
	}
	return names
}

func clone(rec []string) []string { return append([]string(nil), rec...) }

// quoteSwapper exchanges '"' and q in a byte stream, so that encoding/csv
// (which only knows '"') parses a dialect quoted with q; fields are swapped
// back by swapQuotes.
type quoteSwapper struct {
	r io.Reader
	q byte
}

func (s *quoteSwapper) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	for i, c := range p[:n] {
		switch c {
		case '"':
			p[i] = s.q
		case s.q:
			p[i] = '"'
		}
	}
	return n, err
}

func swapQuotes(f string, q byte) string {
	b := []byte(f)
	for i, c := range b {
		switch c {
		case '"':
			b[i] = q
		case q:
			b[i] = '"'
		}
	}
	return string(b)
}

// CSVWriterOptions configure NewCSVWriter.
type CSVWriterOptions struct {
	Delimiter rune // ',' when 0
	NoHeader  bool
	// UseCRLF ends lines with \r\n.
	UseCRLF bool
}

type csvWriter struct {
	schema Schema
	w      *csv.Writer
	rec    []string
	buf    []byte
}

// NewCSVWriter returns a Writer of CSV in pandas' to_csv style: a header
// line, nulls as empty cells, booleans as True/False, timestamps as
// "2006-01-02 15:04:05.999999999" (with "+00:00" for aware columns).
func NewCSVWriter(w io.Writer, s Schema, opts CSVWriterOptions) (Writer, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	cw := csv.NewWriter(w)
	if opts.Delimiter != 0 {
		cw.Comma = opts.Delimiter
	}
	cw.UseCRLF = opts.UseCRLF
	if !opts.NoHeader {
		if err := cw.Write(s.Names()); err != nil {
			return nil, err
		}
	}
	return &csvWriter{schema: s.Clone(), w: cw, rec: make([]string, len(s.Fields))}, nil
}

func (w *csvWriter) Write(b *Batch) error {
	if err := b.Check(w.schema); err != nil {
		return err
	}
	ends := make([]int, 0, len(w.rec))
	for i := 0; i < b.Len; i++ {
		w.buf = w.buf[:0]
		ends = ends[:0]
		for ci := range b.Columns {
			c := &b.Columns[ci]
			if !c.Null(i) {
				w.buf = c.appendValue(w.buf, i, &w.schema.Fields[ci], true)
			}
			ends = append(ends, len(w.buf))
		}
		text := string(w.buf)
		start := 0
		for ci, end := range ends {
			w.rec[ci] = text[start:end]
			start = end
		}
		if err := w.w.Write(w.rec); err != nil {
			return err
		}
	}
	return w.w.Error()
}

func (w *csvWriter) Close() error {
	w.w.Flush()
	return w.w.Error()
}
