// Package table reads and writes tabular files — CSV, Parquet and JSON
// Lines — as a stream of columnar batches, and infers and compares their
// schemas.
//
// A Reader yields *Batch values of at most Options.BatchRows rows, so
// memory stays bounded by the batch size whatever the file's length. Each
// Batch holds one typed vector per column (int64, float64, bool, strings in
// one buffer, or dictionary codes) and a validity bitmap for nulls; nothing
// is boxed per value. Writers take the same batches.
//
// Missing values follow pandas: CSV cells equal to one of pandas' default
// NA tokens (NATokens) are nulls, as are JSON nulls and Parquet nulls
// (definition levels). Nested values — Parquet lists, structs and maps,
// JSON objects and arrays — are rejected with an error naming the column
// (ErrNested).
//
// Errors about the input wrap errdefs.ErrInvalidArgument together with one
// of this package's sentinels (ErrFormat, ErrNested, ErrTypeMismatch,
// ErrSchema), so both errors.Is checks work.
package table

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/kiln-ml/kiln/errdefs"
)

// Sentinel errors, matched with errors.Is. Each comes wrapped in an
// errdefs.Error of kind errdefs.ErrInvalidArgument.
var (
	// ErrFormat: the file is not valid CSV/Parquet/JSON Lines, or its
	// format cannot be told.
	ErrFormat = errors.New("malformed table file")
	// ErrNested: a column holds nested values (lists, structs, maps,
	// objects), which tables do not support.
	ErrNested = errors.New("nested column")
	// ErrTypeMismatch: a value does not fit the column's type, e.g. text in
	// a column that the sample showed to be numeric.
	ErrTypeMismatch = errors.New("value does not match column type")
	// ErrSchema: a schema, a projection or a batch is not usable.
	ErrSchema = errors.New("invalid schema")
)

func invalidf(sentinel error, format string, args ...any) error {
	return &errdefs.Error{Kind: errdefs.ErrInvalidArgument, Msg: fmt.Sprintf(format, args...), Err: sentinel}
}

// Format is a table file format.
type Format string

// Formats.
const (
	CSV     Format = "csv"
	Parquet Format = "parquet"
	JSONL   Format = "jsonl"
)

// DefaultBatchRows is the batch size when Options.BatchRows is zero.
const DefaultBatchRows = 65536

// DefaultInferRows is how many rows CSV and JSON Lines readers inspect to
// infer column types when Options.InferRows is zero.
const DefaultInferRows = 10000

// Options configure a Reader. The zero value reads the whole file with
// detected format and inferred types.
type Options struct {
	// Format forces a format; empty detects it from the name and content.
	Format Format
	// BatchRows caps the rows per batch (DefaultBatchRows when 0).
	BatchRows int
	// Columns, when set, reads only these columns, in this order.
	Columns []string
	// InferRows is the number of rows a CSV or JSON Lines reader inspects
	// before it fixes the column types (DefaultInferRows when 0). A
	// negative value inspects every row: the file is read twice. A value
	// that does not fit the type inferred from the sample fails the read
	// with ErrTypeMismatch naming the row.
	InferRows int
	// Schema, when set, skips inference for CSV and JSON Lines: columns are
	// matched by name and parsed as the given types.
	Schema *Schema
	// CSV holds the CSV dialect.
	CSV CSVOptions
	// Parallelism caps the goroutines that decode Parquet columns (0 means
	// runtime.GOMAXPROCS).
	Parallelism int
}

// CSVOptions describe a CSV dialect. The zero value is pandas' default:
// comma-separated, '"' quotes, a header line, pandas' NA tokens.
type CSVOptions struct {
	// Delimiter separates fields (',' when 0).
	Delimiter rune
	// Quote is the quoting character ('"' when 0). It must be ASCII.
	Quote rune
	// NoHeader says the first line is data; columns are named "0", "1", …
	// as pandas does with header=None.
	NoHeader bool
	// LazyQuotes accepts a quote in an unquoted field and a lone quote in a
	// quoted field (encoding/csv's LazyQuotes).
	LazyQuotes bool
	// Comment, when set, starts a line that is skipped.
	Comment rune
	// NAValues are extra cell values read as null.
	NAValues []string
	// NoDefaultNA drops pandas' default NA tokens (keep_default_na=False):
	// only NAValues mark nulls (and, for non-string columns, empty cells).
	NoDefaultNA bool
}

func (o Options) batchRows() int {
	if o.BatchRows <= 0 {
		return DefaultBatchRows
	}
	return o.BatchRows
}

func (o Options) inferRows() int {
	if o.InferRows == 0 {
		return DefaultInferRows
	}
	return o.InferRows
}

// Reader streams a table as batches.
type Reader interface {
	// Schema describes the batches' columns.
	Schema() Schema
	// Next returns the next batch, or io.EOF after the last. A returned
	// batch belongs to the caller: later calls do not modify it.
	Next(ctx context.Context) (*Batch, error)
	// Close releases the reader's resources (and the file Open opened).
	Close() error
}

// Open opens the table file at path. The format comes from opts.Format, or
// from the file's extension and first bytes.
func Open(ctx context.Context, path string, opts Options) (Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	r, err := OpenReaderAt(ctx, f, st.Size(), path, opts)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &closeBoth{Reader: r, c: f}, nil
}

type closeBoth struct {
	Reader
	c io.Closer
}

func (c *closeBoth) Close() error {
	return errors.Join(c.Reader.Close(), c.c.Close())
}

// OpenReaderAt opens a table held by r (size bytes). name (a file name or
// object key, possibly empty) helps detect the format. The caller keeps
// ownership of r and must keep it open until the Reader is closed.
func OpenReaderAt(ctx context.Context, r io.ReaderAt, size int64, name string, opts Options) (Reader, error) {
	format := opts.Format
	if format == "" {
		head := make([]byte, min(size, 512))
		n, err := r.ReadAt(head, 0)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		format, err = DetectFormat(name, head[:n])
		if err != nil {
			return nil, err
		}
	}
	if opts.Schema != nil {
		if err := opts.Schema.Validate(); err != nil {
			return nil, err
		}
	}
	var (
		rd  Reader
		err error
	)
	switch format {
	case CSV:
		rd, err = asReader(openCSV(ctx, r, size, opts))
	case JSONL:
		rd, err = asReader(openJSONL(ctx, r, size, opts))
	case Parquet:
		rd, err = asReader(openParquet(ctx, r, size, opts))
	default:
		err = invalidf(ErrFormat, "unknown table format %q", format)
	}
	return rd, err
}

// asReader keeps a nil concrete reader from becoming a non-nil interface.
func asReader[R Reader](r R, err error) (Reader, error) {
	if err != nil {
		return nil, err
	}
	return r, nil
}

var parquetMagic = []byte("PAR1")

// DetectFormat tells the format of a file from its name (extension, with
// compression suffixes not supported) and its first bytes: Parquet files
// start with "PAR1", JSON Lines files with '{' after blanks, and a name
// ending in .csv, .tsv or .txt, or any other text, is CSV.
func DetectFormat(name string, head []byte) (Format, error) {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".parquet", ".pq", ".parq":
		return Parquet, nil
	case ".jsonl", ".ndjson":
		return JSONL, nil
	case ".csv", ".tsv", ".txt":
		return CSV, nil
	case ".gz", ".bz2", ".zst", ".xz", ".zip":
		return "", invalidf(ErrFormat, "%s: compressed table files are not supported; decompress first", name)
	}
	if bytes.HasPrefix(head, parquetMagic) {
		return Parquet, nil
	}
	trimmed := bytes.TrimLeft(head, " \t\r\n\ufeff")
	if bytes.HasPrefix(trimmed, []byte("{")) {
		return JSONL, nil
	}
	if len(head) > 0 && bytes.IndexByte(head, 0) < 0 {
		return CSV, nil
	}
	return "", invalidf(ErrFormat, "cannot tell the table format of %q", name)
}

// projection maps the requested column names to positions in all, or
// returns every position when names is empty.
func projection(all []string, names []string) ([]int, error) {
	if len(names) == 0 {
		idx := make([]int, len(all))
		for i := range idx {
			idx[i] = i
		}
		return idx, nil
	}
	pos := make(map[string]int, len(all))
	for i, n := range all {
		if _, dup := pos[n]; !dup {
			pos[n] = i
		}
	}
	idx := make([]int, len(names))
	seen := make(map[string]bool, len(names))
	for i, n := range names {
		p, ok := pos[n]
		if !ok {
			return nil, invalidf(ErrSchema, "no column %q (columns: %s)", n, strings.Join(all, ", "))
		}
		if seen[n] {
			return nil, invalidf(ErrSchema, "column %q selected twice", n)
		}
		seen[n] = true
		idx[i] = p
	}
	return idx, nil
}

// ReadAll reads every remaining batch of r: for tests and small tables.
func ReadAll(ctx context.Context, r Reader) ([]*Batch, error) {
	var out []*Batch
	for {
		b, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, b)
	}
}
