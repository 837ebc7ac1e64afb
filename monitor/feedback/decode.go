package feedback

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/errdefs"
)

// Label file formats.
const (
	FormatCSV     = "csv"
	FormatJSONL   = "jsonl"
	FormatJSON    = "json"
	FormatParquet = "parquet"
)

// Default column names of label files.
const (
	DefaultIDColumn    = "request_id"
	DefaultRowColumn   = "row"
	DefaultLabelColumn = "label"
)

// MaxLineBytes bounds a line of a JSON Lines file.
const MaxLineBytes = 1 << 20

// DecodeOptions name the columns (CSV, Parquet) or fields (JSON, JSON
// Lines) of a label file.
type DecodeOptions struct {
	// IDColumn holds the request id (DefaultIDColumn when empty). A
	// number is taken as its decimal text.
	IDColumn string
	// RowColumn holds the row within the request (DefaultRowColumn when
	// empty). It is optional: a file without it, or a record without the
	// field, labels row 0.
	RowColumn string
	// LabelColumn holds the label (DefaultLabelColumn when empty).
	LabelColumn string
	// Source is recorded with each label (the format when empty).
	Source string
}

func (o DecodeOptions) withDefaults(format string) DecodeOptions {
	if o.IDColumn == "" {
		o.IDColumn = DefaultIDColumn
	}
	if o.RowColumn == "" {
		o.RowColumn = DefaultRowColumn
	}
	if o.LabelColumn == "" {
		o.LabelColumn = DefaultLabelColumn
	}
	if o.Source == "" {
		o.Source = format
	}
	return o
}

// FormatOfContentType returns the label format of a media type:
// application/json, application/x-ndjson (or application/jsonl,
// application/json-lines), text/csv, application/vnd.apache.parquet (or
// application/x-parquet, application/parquet).
func FormatOfContentType(contentType string) (string, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		if contentType == "" {
			return FormatJSON, nil
		}
		return "", errdefs.Invalid("Invalid Content-Type %q", clip(contentType))
	}
	switch mt {
	case "application/json":
		return FormatJSON, nil
	case "application/x-ndjson", "application/jsonl", "application/json-lines", "application/jsonlines", "application/x-jsonlines":
		return FormatJSONL, nil
	case "text/csv", "application/csv":
		return FormatCSV, nil
	case "application/vnd.apache.parquet", "application/x-parquet", "application/parquet":
		return FormatParquet, nil
	}
	return "", errdefs.Invalid("Unsupported Content-Type %q for labels: want application/json, application/x-ndjson, text/csv or application/vnd.apache.parquet", clip(mt))
}

// ContentType returns the media type of a label format.
func ContentType(format string) string {
	switch format {
	case FormatCSV:
		return "text/csv"
	case FormatJSONL:
		return "application/x-ndjson"
	case FormatParquet:
		return "application/vnd.apache.parquet"
	}
	return "application/json"
}

// FormatOfFile returns the label format of a file name by its extension:
// .csv, .jsonl/.ndjson, .json, .parquet/.pq.
func FormatOfFile(name string) (string, error) {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv":
		return FormatCSV, nil
	case ".jsonl", ".ndjson":
		return FormatJSONL, nil
	case ".json":
		return FormatJSON, nil
	case ".parquet", ".pq", ".parq":
		return FormatParquet, nil
	}
	return "", errdefs.Invalid("cannot tell the label format of %q: name it .csv, .jsonl, .json or .parquet", name)
}

// Decode reads labels in format (FormatCSV, FormatJSONL, FormatJSON,
// FormatParquet) from r and calls fn with each, in order. Values are
// checked as Put checks them (Label.Validate); an invalid one stops the
// decoding with an error that names its line (CSV, JSON Lines), its
// position (JSON) or its row (Parquet). An error from fn is returned as
// is.
//
// CSV needs a header line. A CSV cell is a number when it parses as one,
// a bool when it is true or false (any case), else text. Parquet input is
// read into memory unless r is an *os.File or an io.ReaderAt that is also
// an io.Seeker.
func Decode(r io.Reader, format string, opts DecodeOptions, fn func(Label) error) error {
	opts = opts.withDefaults(format)
	switch format {
	case FormatCSV:
		return decodeCSV(r, opts, fn)
	case FormatJSONL:
		return decodeJSONL(r, opts, fn)
	case FormatJSON:
		return decodeJSON(r, opts, fn)
	case FormatParquet:
		return decodeParquet(r, opts, fn)
	}
	return errdefs.Invalid("unknown label format %q: want csv, jsonl, json or parquet", format)
}

// emit validates l and passes it on; at says where it came from.
func emit(l Label, at string, fn func(Label) error) error {
	if err := l.Validate(); err != nil {
		return &errdefs.Error{Kind: errdefs.ErrInvalidArgument, Msg: at + ": " + errdefs.Message(err), Err: err}
	}
	return fn(l)
}

func atErr(at, format string, args ...any) error {
	return invalidf("%s: %s", at, fmt.Sprintf(format, args...))
}

func decodeCSV(r io.Reader, opts DecodeOptions, fn func(Label) error) error {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return csvErr(err)
	}
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff")
	}
	idx := func(name string) int {
		for i, h := range header {
			if strings.TrimSpace(h) == name {
				return i
			}
		}
		return -1
	}
	idCol, rowCol, labelCol := idx(opts.IDColumn), idx(opts.RowColumn), idx(opts.LabelColumn)
	names := strings.Join(header, ", ")
	if idCol < 0 {
		return invalidf("line 1: no request id column %q in the header (columns: %s)", opts.IDColumn, clip(names))
	}
	if labelCol < 0 {
		return invalidf("line 1: no label column %q in the header (columns: %s)", opts.LabelColumn, clip(names))
	}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return csvErr(err)
		}
		line, _ := cr.FieldPos(0)
		at := "line " + strconv.Itoa(line)
		l := Label{RequestID: rec[idCol], Source: opts.Source}
		if rowCol >= 0 {
			if l.Row, err = parseRow(rec[rowCol]); err != nil {
				return atErr(at, "%s", errdefs.Message(err))
			}
		}
		cell := rec[labelCol]
		if strings.TrimSpace(cell) == "" {
			return atErr(at, "empty label in column %q", opts.LabelColumn)
		}
		l.Value = parseCell(cell)
		if err := emit(l, at, fn); err != nil {
			return err
		}
	}
}

func csvErr(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return invalidf("line %d: %v", pe.Line, pe.Err)
	}
	return err
}

// parseRow reads a row index: an integer (or an integral float such as
// 3.0, as pandas writes an int column with missing values); empty is 0.
func parseRow(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, invalidf("row %q is not an integer", clip(s))
	}
	return int64(f), nil
}

// parseCell types a CSV cell: a finite number, a bool, else the text.
func parseCell(s string) any {
	t := strings.TrimSpace(s)
	if f, err := strconv.ParseFloat(t, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
		return f
	}
	switch strings.ToLower(t) {
	case "true":
		return true
	case "false":
		return false
	}
	return s
}

func decodeJSONL(r io.Reader, opts DecodeOptions, fn func(Label) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	for line := 1; ; line++ {
		data, err := readLine(br)
		if len(data) > 0 {
			at := "line " + strconv.Itoa(line)
			if len(data) > MaxLineBytes {
				return atErr(at, "longer than %d bytes", MaxLineBytes)
			}
			if t := bytes.TrimSpace(data); len(t) > 0 {
				l, err := labelOfJSON(t, opts)
				if err != nil {
					return atErr(at, "%s", errdefs.Message(err))
				}
				if err := emit(l, at, fn); err != nil {
					return err
				}
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// readLine reads up to and without the next '\n', stopping (with the
// bytes so far) past MaxLineBytes.
func readLine(br *bufio.Reader) ([]byte, error) {
	var out []byte
	for {
		frag, err := br.ReadSlice('\n')
		out = append(out, frag...)
		if errors.Is(err, bufio.ErrBufferFull) {
			if len(out) > MaxLineBytes {
				return out, nil
			}
			continue
		}
		return bytes.TrimSuffix(out, []byte("\n")), err
	}
}

// labelOfJSON reads one label object.
func labelOfJSON(data []byte, opts DecodeOptions) (Label, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return Label{}, invalidf("not a JSON object: %s", jsonMsg(err))
	}
	return labelOfObject(obj, opts)
}

func labelOfObject(obj map[string]json.RawMessage, opts DecodeOptions) (Label, error) {
	l := Label{Source: opts.Source}
	rawID, ok := obj[opts.IDColumn]
	if !ok {
		return l, invalidf("no %q field", opts.IDColumn)
	}
	id, err := jsonID(rawID)
	if err != nil {
		return l, invalidf("%q: %s", opts.IDColumn, errdefs.Message(err))
	}
	l.RequestID = id
	if raw, ok := obj[opts.RowColumn]; ok && !isNull(raw) {
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return l, invalidf("%q is not a number", opts.RowColumn)
		}
		if l.Row, err = parseRow(n.String()); err != nil {
			return l, err
		}
	}
	raw, ok := obj[opts.LabelColumn]
	if !ok {
		return l, invalidf("no %q field", opts.LabelColumn)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&l.Value); err != nil {
		return l, invalidf("%q: %s", opts.LabelColumn, jsonMsg(err))
	}
	return l, nil
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// jsonID reads a request id: a string, or an integer taken as its text.
func jsonID(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		if _, err := strconv.ParseInt(n.String(), 10, 64); err == nil {
			return n.String(), nil
		}
	}
	return "", invalidf("want a string or an integer, got %s", clip(string(raw)))
}

func jsonMsg(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%v (byte %d)", se, se.Offset)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("a %s where %s was expected", te.Value, te.Type)
	}
	return err.Error()
}

// decodeJSON reads a JSON document: one label object, an array of them,
// or {"labels": [...]}.
func decodeJSON(r io.Reader, opts DecodeOptions, fn func(Label) error) error {
	dec := json.NewDecoder(r)
	var doc json.RawMessage
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return invalidf("empty JSON body: want a label object, an array of them, or {\"labels\": [...]}")
		}
		return invalidf("invalid JSON: %s", jsonMsg(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalidf("invalid JSON: data after the document")
	}
	doc = bytes.TrimSpace(doc)
	var items []json.RawMessage
	switch {
	case len(doc) > 0 && doc[0] == '[':
		if err := json.Unmarshal(doc, &items); err != nil {
			return invalidf("invalid JSON array: %s", jsonMsg(err))
		}
	case len(doc) > 0 && doc[0] == '{':
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(doc, &obj); err != nil {
			return invalidf("invalid JSON object: %s", jsonMsg(err))
		}
		raw, wrapped := obj["labels"]
		if _, hasID := obj[opts.IDColumn]; wrapped && !hasID {
			if err := json.Unmarshal(raw, &items); err != nil || items == nil {
				return invalidf(`"labels" is not an array of label objects`)
			}
			break
		}
		l, err := labelOfObject(obj, opts)
		if err != nil {
			return err
		}
		return emit(l, "label", fn)
	default:
		return invalidf("want a label object, an array of them, or {\"labels\": [...]}")
	}
	for i, raw := range items {
		at := "label " + strconv.Itoa(i+1)
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
			return atErr(at, "not a JSON object")
		}
		l, err := labelOfObject(obj, opts)
		if err != nil {
			return atErr(at, "%s", errdefs.Message(err))
		}
		if err := emit(l, at, fn); err != nil {
			return err
		}
	}
	return nil
}

func decodeParquet(r io.Reader, opts DecodeOptions, fn func(Label) error) error {
	var ra io.ReaderAt
	var size int64
	switch x := r.(type) {
	case *os.File:
		st, err := x.Stat()
		if err != nil {
			return err
		}
		ra, size = x, st.Size()
	case interface {
		io.ReaderAt
		io.Seeker
	}:
		n, err := x.Seek(0, io.SeekEnd)
		if err != nil {
			return err
		}
		ra, size = x, n
	default:
		data, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		ra, size = bytes.NewReader(data), int64(len(data))
	}
	ctx := context.Background()
	probe, err := table.OpenReaderAt(ctx, ra, size, "labels.parquet", table.Options{Format: table.Parquet})
	if err != nil {
		return invalidf("not a Parquet file: %s", errdefs.Message(err))
	}
	schema := probe.Schema()
	probe.Close()
	cols := []string{opts.IDColumn, opts.LabelColumn}
	for _, c := range cols {
		if schema.Index(c) < 0 {
			return invalidf("no column %q in the Parquet file (columns: %s)", c, clip(strings.Join(schema.Names(), ", ")))
		}
	}
	hasRow := schema.Index(opts.RowColumn) >= 0
	if hasRow {
		cols = append(cols, opts.RowColumn)
	}
	rd, err := table.OpenReaderAt(ctx, ra, size, "labels.parquet", table.Options{Format: table.Parquet, Columns: cols})
	if err != nil {
		return invalidf("not a Parquet file: %s", errdefs.Message(err))
	}
	defer rd.Close()
	fields := rd.Schema().Fields
	for _, f := range fields {
		if f.Type == table.Timestamp || f.Type == table.Date {
			return invalidf("column %q is a %s: want text, numbers or bools", f.Name, f.Type)
		}
	}
	n := 0
	for {
		b, err := rd.Next(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return invalidf("reading the Parquet file: %s", errdefs.Message(err))
		}
		for i := 0; i < b.Len; i++ {
			n++
			at := "row " + strconv.Itoa(n)
			idc, lc := &b.Columns[0], &b.Columns[1]
			if idc.Null(i) {
				return atErr(at, "no request id (null)")
			}
			l := Label{Source: opts.Source}
			switch idc.Type {
			case table.String:
				l.RequestID = idc.Str(i)
			case table.Int64:
				l.RequestID = strconv.FormatInt(idc.Ints[i], 10)
			default:
				return atErr(at, "request id column %q is a %s: want text or integers", opts.IDColumn, idc.Type)
			}
			if hasRow && !b.Columns[2].Null(i) {
				rc := &b.Columns[2]
				switch rc.Type {
				case table.Int64:
					l.Row = rc.Ints[i]
				case table.Float64:
					if l.Row, err = parseRow(strconv.FormatFloat(rc.Floats[i], 'f', -1, 64)); err != nil {
						return atErr(at, "%s", errdefs.Message(err))
					}
				default:
					return atErr(at, "row column %q is a %s: want integers", opts.RowColumn, rc.Type)
				}
			}
			if lc.Null(i) {
				return atErr(at, "no label (null)")
			}
			switch lc.Type {
			case table.String:
				l.Value = lc.Str(i)
			case table.Bool:
				l.Value = lc.Bools[i]
			case table.Int64, table.Float64:
				l.Value = lc.Float(i)
			}
			if err := emit(l, at, fn); err != nil {
				return err
			}
		}
	}
}
