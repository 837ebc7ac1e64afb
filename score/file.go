package score

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/model"
	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// DefaultChunkRows is the rows per chunk file of a resumable run when
// FileOptions.ChunkRows is 0.
const DefaultChunkRows = 1 << 18

// ErrResume reports a --resume that cannot continue: no partial output,
// or one written for another model, input or options.
var ErrResume = errors.New("cannot resume")

// Columns choose the input columns of a scoring run.
type Columns struct {
	// Keep lists input columns copied to the output before the
	// predictions; KeepAll copies every input column.
	Keep    []string `json:"keep,omitempty"`
	KeepAll bool     `json:"keep_all,omitempty"`
	// Features, when set, are the only columns the model sees (in this
	// order); by default it sees every column of the input (or those its
	// signature names).
	Features []string `json:"features,omitempty"`
}

// FileOptions configure File.
type FileOptions struct {
	Options
	Columns
	// Format is the output format (from the output's extension when empty).
	Format table.Format
	// Read configures the input reader (its BatchRows defaults to
	// Options.BatchRows).
	Read table.Options
	// Resume continues a run that OUTPUT.partial holds. Without it, any
	// partial output is discarded and scoring starts over.
	Resume bool
	// ChunkRows is the rows per chunk file (DefaultChunkRows when 0): the
	// work lost to an interruption.
	ChunkRows int
	// OnStart, when set, is called once before scoring with the input's
	// row count (-1 when unknown until read: CSV, JSON Lines) and the rows
	// an earlier run has already scored.
	OnStart func(total, resumed int64)
	// ModelID identifies the model in the resume fingerprint (e.g. its URI,
	// resolved version and file size and time). A run only resumes with the
	// same ModelID.
	ModelID string
}

// Result sums up a File run.
type Result struct {
	Rows    int64  `json:"rows"`    // rows in the output
	Resumed int64  `json:"resumed"` // of which were scored by an earlier, interrupted run
	Output  string `json:"output"`
	// Columns are the output's columns.
	Columns []string `json:"columns"`
}

// journal is OUTPUT.partial/journal.json: the chunks complete so far.
type journal struct {
	Fingerprint string   `json:"fingerprint"`
	Rows        int64    `json:"rows"` // input rows scored: the sum of the chunks' rows
	Chunks      []chunk  `json:"chunks"`
	Columns     []string `json:"columns,omitempty"`
}

type chunk struct {
	File string `json:"file"`
	Rows int64  `json:"rows"`
}

const journalFile = "journal.json"

// PartialDir is the directory where File keeps the chunks of output.
func PartialDir(output string) string { return output + ".partial" }

// File scores the table file input with m and writes the chosen input
// columns and the predictions to output (CSV, Parquet or JSON Lines).
//
// It writes into PartialDir(output) as numbered chunk files of
// ChunkRows rows and a journal of the rows done and a fingerprint of the
// model (ModelID), the input file (path, size, modification time) and
// the options that shape the output. An interrupted run (ctx cancelled,
// a crash) leaves the chunks complete so far; with Resume, a new run
// checks the fingerprint, skips the rows already scored and continues.
// At the end the chunks are merged into output, which appears at once (a
// rename), and the partial directory is removed.
func File(ctx context.Context, m runtime.Model, msig *model.Signature, input, output string, opts FileOptions) (Result, error) {
	res := Result{Output: output}
	format := opts.Format
	if format == "" {
		f, err := table.DetectFormat(output, nil)
		if err != nil || !strings.Contains(filepath.Base(output), ".") {
			return res, errdefs.Invalid("cannot tell the output format of %q: name it .parquet, .csv or .jsonl", output)
		}
		format = f
	}
	st, err := os.Stat(input)
	if err != nil {
		return res, err
	}
	fp, err := fingerprint(input, st, format, opts)
	if err != nil {
		return res, err
	}
	dir := PartialDir(output)
	j, err := startJournal(dir, fp, opts.Resume)
	if err != nil {
		return res, err
	}
	res.Resumed = j.Rows

	ropts := opts.Read
	if ropts.BatchRows == 0 {
		ropts.BatchRows = opts.batchRows()
	}
	inf, err := os.Open(input)
	if err != nil {
		return res, err
	}
	defer inf.Close()
	r, err := table.OpenReaderAt(ctx, inf, st.Size(), input, ropts)
	if err != nil {
		return res, fmt.Errorf("%s: %w", input, err)
	}
	defer r.Close()
	if opts.OnStart != nil {
		total := int64(-1)
		if rc, ok := r.(table.RowCounter); ok {
			total = rc.NumRows()
		}
		opts.OnStart(total, j.Rows)
	}
	s, err := newSink(r.Schema(), opts.Columns, m.Signature())
	if err != nil {
		return res, err
	}
	src := table.Reader(r)
	msig = s.signature(msig)
	if j.Rows > 0 {
		src = &skipping{Reader: src, skip: j.Rows}
	}
	cw := &chunkWriter{dir: dir, format: format, journal: j, chunkRows: int64(opts.ChunkRows)}
	if cw.chunkRows <= 0 {
		cw.chunkRows = DefaultChunkRows
	}
	defer cw.abort()
	err = Each(ctx, m, msig, src, opts.Options, func(in *table.Batch, outs []*tensor.Tensor) error {
		b, err := s.batch(in, outs)
		if err != nil {
			return err
		}
		return cw.write(s.schema, b, int64(in.Len))
	})
	if err != nil {
		return res, err
	}
	if err := cw.finish(s.schema); err != nil {
		return res, err
	}
	if s.out == nil && len(cw.journal.Chunks) == 0 {
		// No rows at all: the columns come from the signature.
		if _, err := s.batch(s.emptyInput(), emptyOutputs(m.Signature())); err != nil {
			s.schema = table.Schema{Fields: s.keepFields}
		}
	}
	if err := merge(ctx, dir, cw.journal, s.schema, format, output); err != nil {
		return res, err
	}
	res.Rows = cw.journal.Rows
	res.Columns = cw.journal.Columns
	if res.Columns == nil {
		res.Columns = s.schema.Names()
	}
	return res, os.RemoveAll(dir)
}

func fingerprint(input string, st os.FileInfo, format table.Format, opts FileOptions) (string, error) {
	abs, err := filepath.Abs(input)
	if err != nil {
		return "", err
	}
	v := struct {
		Model    string
		Input    string
		Size     int64
		MTime    int64
		Format   table.Format
		Columns  Columns
		CSV      table.CSVOptions
		InferRow int
		ReadCols []string
	}{opts.ModelID, abs, st.Size(), st.ModTime().UnixNano(), format, opts.Columns,
		opts.Read.CSV, opts.Read.InferRows, opts.Read.Columns}
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// startJournal reads the journal of a run to resume, or starts afresh.
func startJournal(dir, fp string, resume bool) (*journal, error) {
	if !resume {
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		j := &journal{Fingerprint: fp}
		return j, writeJournal(dir, j)
	}
	b, err := os.ReadFile(filepath.Join(dir, journalFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, &errdefs.Error{Kind: errdefs.ErrInvalidArgument, Err: ErrResume,
			Msg: fmt.Sprintf("nothing to resume: %s has no journal (run without --resume to start)", dir)}
	}
	if err != nil {
		return nil, err
	}
	var j journal
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, journalFile), err)
	}
	if j.Fingerprint != fp {
		return nil, &errdefs.Error{Kind: errdefs.ErrInvalidArgument, Err: ErrResume,
			Msg: fmt.Sprintf("cannot resume %s: it was written for another model, input file or options (run without --resume to start over)", dir)}
	}
	// Remove what an interrupted chunk left behind.
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range ents {
		if e.Name() == journalFile || slices.ContainsFunc(j.Chunks, func(c chunk) bool { return c.File == e.Name() }) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return nil, err
		}
	}
	for _, c := range j.Chunks {
		if _, err := os.Stat(filepath.Join(dir, c.File)); err != nil {
			return nil, fmt.Errorf("%w: chunk %s of %s: %w", ErrResume, c.File, dir, err)
		}
	}
	return &j, nil
}

// writeJournal replaces the journal atomically.
func writeJournal(dir string, j *journal) error {
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, journalFile), b)
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// sink assembles output batches: kept input columns, then predictions.
type sink struct {
	in         table.Schema
	sig        runtime.Signature
	keep       []int // input columns copied to the output
	keepFields []table.Field
	features   []int // input columns the model sees; nil for all
	out        *Output
	schema     table.Schema // set at the first batch
	cols       []table.Column
}

func newSink(in table.Schema, opts Columns, sig runtime.Signature) (*sink, error) {
	s := &sink{in: in, sig: sig}
	keep := opts.Keep
	if opts.KeepAll {
		keep = in.Names()
	}
	for _, n := range keep {
		i := in.Index(n)
		if i < 0 {
			return nil, errdefs.Invalid("--keep: the input has no column %q (columns: %s)", n, strings.Join(in.Names(), ", "))
		}
		if slices.Contains(s.keep, i) {
			return nil, errdefs.Invalid("--keep: column %q named twice", n)
		}
		s.keep = append(s.keep, i)
		s.keepFields = append(s.keepFields, in.Fields[i])
	}
	if opts.Features != nil {
		for _, n := range opts.Features {
			i := in.Index(n)
			if i < 0 {
				return nil, errdefs.Invalid("--features: the input has no column %q (columns: %s)", n, strings.Join(in.Names(), ", "))
			}
			if slices.Contains(s.features, i) {
				return nil, errdefs.Invalid("--features: column %q named twice", n)
			}
			s.features = append(s.features, i)
		}
	}
	return s, nil
}

// signature is the MLflow signature the model is fed by: msig, or, with
// Features, a column signature of exactly those columns.
func (s *sink) signature(msig *model.Signature) *model.Signature {
	if s.features == nil {
		return msig
	}
	cols := make([]model.ColSpec, len(s.features))
	for i, j := range s.features {
		cols[i] = model.ColSpec{Name: s.in.Fields[j].Name, Required: true}
	}
	return &model.Signature{Inputs: &model.Schema{Columns: cols}}
}

// emptyInput is a batch of no rows of the input.
func (s *sink) emptyInput() *table.Batch {
	b := &table.Batch{Columns: make([]table.Column, len(s.in.Fields))}
	for i, f := range s.in.Fields {
		b.Columns[i].Type = f.Type
	}
	return b
}

func (s *sink) batch(in *table.Batch, outs []*tensor.Tensor) (*table.Batch, error) {
	if s.out == nil {
		o, err := NewOutput(s.sig, outs)
		if err != nil {
			return nil, err
		}
		fields := slices.Clone(s.keepFields)
		for _, f := range o.Fields() {
			if slices.ContainsFunc(fields, func(k table.Field) bool { return k.Name == f.Name }) {
				return nil, errdefs.Invalid("the kept column %q has the name of a prediction column; keep fewer columns or rename it", f.Name)
			}
			fields = append(fields, f)
		}
		for i := range fields {
			fields[i].Nullable = true
		}
		s.out, s.schema = o, table.Schema{Fields: fields}
	}
	cols := make([]table.Column, 0, len(s.schema.Fields))
	for _, i := range s.keep {
		cols = append(cols, in.Columns[i])
	}
	cols, err := s.out.Columns(cols, outs, in.Len)
	if err != nil {
		return nil, err
	}
	return &table.Batch{Len: in.Len, Columns: cols}, nil
}

// chunkWriter writes output batches into numbered chunk files and records
// each complete chunk in the journal.
type chunkWriter struct {
	dir       string
	format    table.Format
	journal   *journal
	chunkRows int64

	f       *os.File
	bw      *bufio.Writer
	w       table.Writer
	name    string
	rows    int64 // output rows in the open chunk
	inRows  int64 // input rows they came from
	columns []string
}

func (c *chunkWriter) write(s table.Schema, b *table.Batch, inRows int64) error {
	if c.w == nil {
		if err := c.open(s); err != nil {
			return err
		}
	}
	if err := c.w.Write(b); err != nil {
		return err
	}
	c.rows += int64(b.Len)
	c.inRows += inRows
	if c.rows >= c.chunkRows {
		return c.close()
	}
	return nil
}

func (c *chunkWriter) open(s table.Schema) error {
	c.name = fmt.Sprintf("chunk-%06d.%s", len(c.journal.Chunks)+1, c.format)
	f, err := os.Create(filepath.Join(c.dir, c.name+".tmp"))
	if err != nil {
		return err
	}
	c.f, c.bw = f, bufio.NewWriterSize(f, 1<<20)
	// CSV chunks after the first carry no header, so chunks concatenate.
	first := len(c.journal.Chunks) == 0
	switch c.format {
	case table.CSV:
		c.w, err = table.NewCSVWriter(c.bw, s, table.CSVWriterOptions{NoHeader: !first})
	default:
		c.w, err = table.NewWriter(c.bw, s, c.format)
	}
	if err != nil {
		f.Close()
		return err
	}
	c.columns = s.Names()
	return nil
}

// close completes the open chunk: flushes it, syncs it, renames it into
// place and records it in the journal.
func (c *chunkWriter) close() error {
	err := c.w.Close()
	if err == nil {
		err = c.bw.Flush()
	}
	if err == nil {
		err = c.f.Sync()
	}
	if cerr := c.f.Close(); err == nil {
		err = cerr
	}
	c.w = nil
	if err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(c.dir, c.name+".tmp"), filepath.Join(c.dir, c.name)); err != nil {
		return err
	}
	c.journal.Chunks = append(c.journal.Chunks, chunk{File: c.name, Rows: c.rows})
	c.journal.Rows += c.inRows
	c.journal.Columns = c.columns
	c.rows, c.inRows = 0, 0
	return writeJournal(c.dir, c.journal)
}

func (c *chunkWriter) finish(s table.Schema) error {
	if c.w == nil {
		return nil
	}
	return c.close()
}

// abort drops an open chunk (an interrupted run resumes before it).
func (c *chunkWriter) abort() {
	if c.w != nil {
		c.f.Close()
		os.Remove(filepath.Join(c.dir, c.name+".tmp"))
		c.w = nil
	}
}

// merge joins the chunks into output: CSV and JSON Lines chunks are
// concatenated, Parquet chunks rewritten into one file.
func merge(ctx context.Context, dir string, j *journal, s table.Schema, format table.Format, output string) error {
	tmp := output + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	bw := bufio.NewWriterSize(f, 1<<20)
	err = mergeInto(ctx, bw, dir, j, s, format)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, output)
}

func mergeInto(ctx context.Context, w io.Writer, dir string, j *journal, s table.Schema, format table.Format) error {
	if format != table.Parquet {
		if len(j.Chunks) == 0 {
			// An empty input: a header (CSV) or nothing (JSON Lines).
			if format == table.CSV && len(s.Fields) > 0 {
				tw, err := table.NewCSVWriter(w, s, table.CSVWriterOptions{})
				if err != nil {
					return err
				}
				return tw.Close()
			}
			return nil
		}
		for _, c := range j.Chunks {
			f, err := os.Open(filepath.Join(dir, c.File))
			if err != nil {
				return err
			}
			_, err = io.Copy(w, f)
			f.Close()
			if err != nil {
				return err
			}
		}
		return nil
	}
	if len(j.Chunks) > 0 {
		// The chunks' own schema (the first run's) wins.
		r, err := table.Open(ctx, filepath.Join(dir, j.Chunks[0].File), table.Options{Format: table.Parquet})
		if err != nil {
			return err
		}
		s = r.Schema()
		r.Close()
	}
	if len(s.Fields) == 0 {
		return errdefs.Invalid("the input has no rows and no columns are kept: nothing to write")
	}
	tw, err := table.NewParquetWriter(w, s, table.ParquetWriterOptions{})
	if err != nil {
		return err
	}
	for _, c := range j.Chunks {
		r, err := table.Open(ctx, filepath.Join(dir, c.File), table.Options{Format: table.Parquet})
		if err != nil {
			return err
		}
		for {
			b, err := r.Next(ctx)
			if errors.Is(err, io.EOF) {
				break
			}
			if err == nil {
				err = tw.Write(b)
			}
			if err != nil {
				r.Close()
				return fmt.Errorf("merging %s: %w", c.File, err)
			}
		}
		r.Close()
	}
	return tw.Close()
}

// skipping drops the first skip rows of a reader: the rows an
// interrupted run has already scored.
type skipping struct {
	table.Reader
	skip int64
}

func (s *skipping) Next(ctx context.Context) (*table.Batch, error) {
	for {
		b, err := s.Reader.Next(ctx)
		if err != nil {
			if errors.Is(err, io.EOF) && s.skip > 0 {
				return nil, fmt.Errorf("%w: the input has fewer rows than the partial output", ErrResume)
			}
			return nil, err
		}
		if s.skip == 0 {
			return b, nil
		}
		if int64(b.Len) <= s.skip {
			s.skip -= int64(b.Len)
			continue
		}
		k := int(s.skip)
		s.skip = 0
		return b.Slice(k, b.Len), nil
	}
}

// emptyOutputs are zero-row outputs shaped by the signature (a variable
// non-batch dimension counts as 1).
func emptyOutputs(sig runtime.Signature) []*tensor.Tensor {
	outs := make([]*tensor.Tensor, len(sig.Outputs))
	for i, o := range sig.Outputs {
		shape := []int64{0}
		if len(o.Shape) > 1 {
			for _, d := range o.Shape[1:] {
				shape = append(shape, max(d, 1))
			}
		}
		data, err := tensor.MakeSlice(o.DType, 0)
		if err != nil {
			data = []float64{}
		}
		outs[i] = &tensor.Tensor{Name: o.Name, DType: o.DType, Shape: shape, Data: data}
	}
	return outs
}

// Write scores r with m and writes the kept columns and the predictions
// to w in format, in one pass (not resumable: File is). It does not close
// r. The Result's Output is empty.
func Write(ctx context.Context, m runtime.Model, msig *model.Signature, r table.Reader, w io.Writer, format table.Format, cols Columns, opts Options) (Result, error) {
	var res Result
	s, err := newSink(r.Schema(), cols, m.Signature())
	if err != nil {
		return res, err
	}
	var tw table.Writer
	err = Each(ctx, m, s.signature(msig), r, opts, func(in *table.Batch, outs []*tensor.Tensor) error {
		b, err := s.batch(in, outs)
		if err != nil {
			return err
		}
		if tw == nil {
			if tw, err = table.NewWriter(w, s.schema, format); err != nil {
				return err
			}
		}
		res.Rows += int64(b.Len)
		return tw.Write(b)
	})
	if err != nil {
		return res, err
	}
	if tw == nil {
		if _, err := s.batch(s.emptyInput(), emptyOutputs(m.Signature())); err != nil {
			s.schema = table.Schema{Fields: s.keepFields}
		}
		if len(s.schema.Fields) == 0 {
			return res, errdefs.Invalid("the input has no rows and no columns are kept: nothing to write")
		}
		if tw, err = table.NewWriter(w, s.schema, format); err != nil {
			return res, err
		}
	}
	res.Columns = s.schema.Names()
	return res, tw.Close()
}
