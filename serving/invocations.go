package serving

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// mlflowError is an error in MLflow's format, {"error_code", "message"}.
type mlflowError struct {
	code string
	msg  string
}

func (e *mlflowError) Error() string { return e.msg }

// Unwrap makes every mlflowError a request error (400).
func (e *mlflowError) Unwrap() error { return &requestError{msg: e.msg} }

// invocation is a decoded /invocations request: a dataframe, or tensors.
type invocation struct {
	frame   *frame
	tensors []tensorLit
}

// cellPool recycles the cells of decoded frames: a 64 × 24 dataframe is
// 60 KB of cells, which would otherwise be allocated (and grown) for
// every request.
var cellPool = sync.Pool{New: func() any { return new([]cell) }}

// maxPooledCells bounds what a pooled slice keeps, so one huge request
// does not pin its memory.
const maxPooledCells = 1 << 16

// pooledCells returns an empty slice of cells with room for at least n.
func pooledCells(n int) []cell {
	p := cellPool.Get().(*[]cell)
	c := (*p)[:0]
	*p = nil
	cellPool.Put(p)
	if cap(c) < n {
		return make([]cell, 0, n)
	}
	return c
}

// release returns the invocation's cells to the pool; the invocation
// must not be used afterwards.
func (inv *invocation) release() {
	if inv == nil || inv.frame == nil {
		return
	}
	c := inv.frame.cells
	inv.frame.cells = nil
	if cap(c) == 0 || cap(c) > maxPooledCells {
		return
	}
	clear(c[:cap(c)]) // drop the strings they point to
	p := cellPool.Get().(*[]cell)
	if cap(*p) < cap(c) {
		*p = c[:0]
	}
	cellPool.Put(p)
}

// The request keys of MLflow's scoring protocol.
const requiredInputFormat = "The input must be a JSON dictionary with exactly one of the input fields " +
	"{'dataframe_split', 'dataframe_records', 'instances', 'inputs'}"

func invalidInput(format string, args ...any) error {
	return badRequest("Invalid input. "+format, args...)
}

// decodeInvocationJSON decodes an application/json /invocations body.
// intern returns a known string equal to b (a column or input name), or "".
func decodeInvocationJSON(body []byte, intern func([]byte) string) (*invocation, error) {
	r := &jsonReader{b: body}
	switch r.peek() {
	case '{':
	case '[':
		return nil, invalidInput("%s. Received a list.", requiredInputFormat)
	default:
		if err := r.skip(); err != nil {
			return nil, invalidInput("Ensure that input is a valid JSON formatted string. Error: %v", err)
		}
		return nil, invalidInput("%s. Received unexpected input type.", requiredInputFormat)
	}
	if err := r.beginObject(); err != nil {
		return nil, err
	}
	var inv *invocation
	var keyBuf [4][]byte
	keys := keyBuf[:0] // for the error message
	formats := 0
	for first := true; ; first = false {
		key, done, err := r.nextKey(first)
		if err != nil {
			return nil, invalidInput("Ensure that input is a valid JSON formatted string. Error: %v", err)
		}
		if done {
			break
		}
		keys = append(keys, key)
		switch string(key) {
		case "dataframe_split", "dataframe_records", "instances", "inputs":
			formats++
			if formats > 1 {
				err = r.skip()
				break
			}
			inv, err = decodeFormat(r, string(key), intern)
		default: // "params" and anything else: MLflow passes params on, ignores the rest
			err = r.skip()
		}
		if err != nil {
			var re *requestError
			if errors.As(err, &re) && strings.HasPrefix(re.msg, "invalid JSON") {
				return nil, invalidInput("Ensure that input is a valid JSON formatted string. Error: %v", err)
			}
			return nil, err
		}
	}
	if err := r.end(); err != nil {
		return nil, invalidInput("Ensure that input is a valid JSON formatted string. Error: %v", err)
	}
	if formats != 1 {
		names := make([]string, len(keys))
		for i, k := range keys {
			names[i] = string(k)
		}
		return nil, badRequest("%s. Received dictionary with input fields: %s.", requiredInputFormat, pyList(names))
	}
	return inv, nil
}

func decodeFormat(r *jsonReader, format string, intern func([]byte) string) (*invocation, error) {
	switch format {
	case "dataframe_split":
		f, err := decodeSplit(r, intern)
		return &invocation{frame: f}, err
	case "dataframe_records":
		if c := r.peek(); c != '[' {
			what := "type " + jsonTypeName(c)
			if c == '{' {
				what = "dictionary"
			}
			return nil, invalidInput("Dataframe records format must be a list of records. Got %s.", what)
		}
		f, err := decodeRecords(r, intern)
		return &invocation{frame: f}, err
	case "instances", "inputs":
		switch r.peek() {
		case '{':
			return decodeNamedTensors(r, intern)
		case '[':
			// A list of records, or one unnamed tensor.
			save := *r
			if err := r.beginArray(); err != nil {
				return nil, err
			}
			isRecords := r.peek() == '{'
			*r = save
			if isRecords {
				f, err := decodeRecords(r, intern)
				return &invocation{frame: f}, err
			}
		}
		lit, err := decodeTensorLit(r)
		if err != nil {
			return nil, invalidInput("%v", err)
		}
		return &invocation{tensors: []tensorLit{lit}}, nil
	}
	return nil, badRequest("unknown format %q", format)
}

func jsonTypeName(c byte) string {
	switch c {
	case '{':
		return "dict"
	case '[':
		return "list"
	case '"':
		return "str"
	case 't', 'f':
		return "bool"
	case 'n':
		return "NoneType"
	}
	return "number"
}

// decodeCell reads one scalar.
func decodeCell(r *jsonReader) (cell, error) {
	switch c := r.peek(); c {
	case '"':
		s, err := r.str()
		return cell{kind: cellString, s: s}, err
	case 't', 'f':
		b, err := r.boolean()
		return cell{kind: cellBool, b: b}, err
	case 'n':
		if r.literal("null") {
			return cell{kind: cellNull}, nil
		}
		return cell{}, r.errorf("invalid literal")
	case '[', '{':
		return cell{}, badRequest("nested values (lists or objects inside a cell) are not supported")
	case 0:
		return cell{}, r.errorf("unexpected end of input")
	}
	return numberCell(r)
}

// numberCell reads a number as an int cell where it is an integer that
// fits in an int64, else as a float64 cell.
func numberCell(r *jsonReader) (cell, error) {
	var c cell
	err := numberCellAt(r, &c)
	return c, err
}

// numberCellAt is numberCell writing into a zero cell in place (cells are
// 40 bytes: returning them costs a 64-row request more than parsing).
func numberCellAt(r *jsonReader, c *cell) error {
	start, w, q, kind, neg, fits, err := r.scanNumber()
	if err != nil {
		return err
	}
	tok := r.b[start:r.pos]
	if kind == numInt {
		if i, ok := intOf(w, neg); ok && fits {
			c.kind, c.i = cellInt, i
			return nil
		}
		if i, ok := parseIntTok(tok, kind, -1<<63, 1<<63-1); ok {
			c.kind, c.i = cellInt, i
			return nil
		}
	}
	f, ok := floatOf(tok, kind, w, q, neg, fits, 64)
	if !ok {
		return r.errorf("invalid number")
	}
	c.kind, c.f = cellFloat, f
	return nil
}

// decodeSplit decodes pandas' "split" orientation:
// {"columns": [...], "data": [[...], ...], "index": [...]}.
func decodeSplit(r *jsonReader, intern func([]byte) string) (*frame, error) {
	if c := r.peek(); c != '{' {
		what := "type " + jsonTypeName(c)
		if c == '[' {
			what = "list"
		}
		return nil, invalidInput("Dataframe split format must be a dictionary. Got %s.", what)
	}
	if err := r.beginObject(); err != nil {
		return nil, err
	}
	f := &frame{}
	var keys []string
	hasData, hasCols, extra := false, false, false
	width := -1
	for first := true; ; first = false {
		key, done, err := r.nextKey(first)
		if err != nil {
			return nil, err
		}
		if done {
			break
		}
		keys = append(keys, string(key))
		switch string(key) {
		case "columns":
			hasCols = true
			if f.columns, err = decodeNames(r, intern); err != nil {
				return nil, err
			}
		case "data":
			hasData = true
			f.cells, f.rows, width, err = decodeRows(r)
		case "index":
			err = r.skip()
		default:
			extra = true
			err = r.skip()
		}
		if err != nil {
			return nil, err
		}
	}
	if !hasData || extra {
		return nil, invalidInput("Dataframe split format must have 'data' field and optionally 'columns' and 'index' fields. Got %s.", pySet(keys))
	}
	if !hasCols {
		if width < 0 {
			width = 0
		}
		f.columns = make([]string, width)
		for i := range f.columns {
			f.columns[i] = strconv.Itoa(i)
		}
	} else if width >= 0 && width != len(f.columns) {
		return nil, invalidInput("Provided dataframe_split field is not a valid dataframe representation in 'split' format. Error: '%d columns passed, passed data had %d columns'", len(f.columns), width)
	}
	if width < 0 && f.rows == 0 {
		f.cells = nil
	}
	if err := f.checkUnique(); err != nil {
		return nil, err
	}
	return f, nil
}

func pySet(keys []string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Quote(k))
	}
	b.WriteByte('}')
	return strings.ReplaceAll(b.String(), `"`, "'")
}

func (f *frame) checkUnique() error {
	for i, c := range f.columns {
		for _, d := range f.columns[:i] {
			if c == d {
				return invalidInput("column %q appears twice", c)
			}
		}
	}
	return nil
}

func decodeNames(r *jsonReader, intern func([]byte) string) ([]string, error) {
	if err := r.beginArray(); err != nil {
		return nil, err
	}
	names := make([]string, 0, 8)
	for first := true; ; first = false {
		done, err := r.nextElem(first)
		if err != nil {
			return nil, err
		}
		if done {
			return names, nil
		}
		switch r.peek() {
		case '"':
			b, err := r.stringBytes()
			if err != nil {
				return nil, err
			}
			names = append(names, internOr(intern, b))
		default: // pandas allows numeric column labels
			c, err := decodeCell(r)
			if err != nil {
				return nil, err
			}
			if c.kind == cellString || c.kind == cellNull {
				return nil, invalidInput("column names must be strings or numbers")
			}
			names = append(names, strings.Trim(c.describe(), `"`))
		}
	}
}

// decodeRows decodes a list of rows (each a list of scalars, or a scalar
// for a one-column frame) into row-major cells.
func decodeRows(r *jsonReader) (cells []cell, rows, width int, err error) {
	if err := r.beginArray(); err != nil {
		return nil, 0, 0, err
	}
	width = -1
	for first := true; ; first = false {
		done, err := r.nextElem(first)
		if err != nil {
			return nil, 0, 0, err
		}
		if done {
			return cells, rows, width, nil
		}
		n := 0
		if r.peek() != '[' {
			c, err := decodeCell(r)
			if err != nil {
				return nil, 0, 0, err
			}
			cells = append(cells, c)
			n = 1
		} else {
			if err := r.beginArray(); err != nil {
				return nil, 0, 0, err
			}
			for first := true; ; first = false {
				var c cell
				if p := r.pos; !first && p+1 < len(r.b) && r.b[p] == ',' && (r.b[p+1]-'0' <= 9 || r.b[p+1] == '-') {
					// The common case, a number after a ',', read into
					// its cell in place. Cells past len are zero: new,
					// or cleared when their pool took them back.
					r.pos++
					if len(cells) == cap(cells) {
						cells = slices.Grow(cells, 1)
					}
					cells = cells[:len(cells)+1]
					if err := numberCellAt(r, &cells[len(cells)-1]); err != nil {
						return nil, 0, 0, invalidInput("row %d, column %d: %v", rows, n, err)
					}
					n++
					continue
				}
				done, err := r.nextElem(first)
				if err != nil {
					return nil, 0, 0, err
				}
				if done {
					break
				}
				c, err = decodeCell(r)
				if err != nil {
					return nil, 0, 0, invalidInput("row %d, column %d: %v", rows, n, err)
				}
				if cells == nil {
					cells = pooledCells(8)
				}
				cells = append(cells, c)
				n++
			}
		}
		if width >= 0 && n != width {
			return nil, 0, 0, invalidInput("row %d has %d values, row 0 has %d", rows, n, width)
		}
		width = n
		rows++
	}
}

// decodeRecords decodes a list of records ({"column": value, ...}); a
// column missing from a record is null there.
func decodeRecords(r *jsonReader, intern func([]byte) string) (*frame, error) {
	if err := r.beginArray(); err != nil {
		return nil, err
	}
	type kv struct {
		col int
		v   cell
	}
	f := &frame{}
	var pending []kv
	var rowStart []int
	for first := true; ; first = false {
		done, err := r.nextElem(first)
		if err != nil {
			return nil, err
		}
		if done {
			break
		}
		if r.peek() != '{' {
			return nil, invalidInput("Dataframe records format must be a list of records: element %d is not an object.", f.rows)
		}
		rowStart = append(rowStart, len(pending))
		if err := r.beginObject(); err != nil {
			return nil, err
		}
		for first := true; ; first = false {
			key, done, err := r.nextKey(first)
			if err != nil {
				return nil, err
			}
			if done {
				break
			}
			j := -1
			for i, c := range f.columns {
				if c == string(key) {
					j = i
					break
				}
			}
			if j < 0 {
				j = len(f.columns)
				f.columns = append(f.columns, internOr(intern, key))
			}
			v, err := decodeCell(r)
			if err != nil {
				return nil, invalidInput("record %d, column %q: %v", f.rows, f.columns[j], err)
			}
			pending = append(pending, kv{j, v})
		}
		f.rows++
	}
	w := len(f.columns)
	f.cells = pooledCells(f.rows * w)[:f.rows*w] // zero cells are null
	rowStart = append(rowStart, len(pending))
	for row := range f.rows {
		for _, e := range pending[rowStart[row]:rowStart[row+1]] {
			f.cells[row*w+e.col] = e.v
		}
	}
	return f, nil
}

// decodeNamedTensors decodes {"name": nested list, ...}: tensors when the
// names are the model's inputs, else (decided later) columns.
func decodeNamedTensors(r *jsonReader, intern func([]byte) string) (*invocation, error) {
	if err := r.beginObject(); err != nil {
		return nil, err
	}
	inv := &invocation{}
	for first := true; ; first = false {
		key, done, err := r.nextKey(first)
		if err != nil {
			return nil, err
		}
		if done {
			return inv, nil
		}
		name := internOr(intern, key)
		lit, err := decodeTensorLit(r)
		if err != nil {
			return nil, invalidInput("input %q: %v", name, err)
		}
		lit.name = name
		inv.tensors = append(inv.tensors, lit)
	}
}

// decodeTensorLit decodes a nested list (or a scalar) into its shape and
// flat cells; the list must be rectangular.
func decodeTensorLit(r *jsonReader) (tensorLit, error) {
	var lit tensorLit
	if r.peek() != '[' {
		c, err := decodeCell(r)
		lit.cells = []cell{c}
		return lit, err
	}
	leaf := -1 // the depth that holds scalars, once seen
	var walk func(depth int) error
	walk = func(depth int) error {
		if err := r.beginArray(); err != nil {
			return err
		}
		if depth == len(lit.shape) {
			lit.shape = append(lit.shape, -1)
		}
		n := int64(0)
		for first := true; ; first = false {
			done, err := r.nextElem(first)
			if err != nil {
				return err
			}
			if done {
				break
			}
			if r.peek() == '[' {
				if leaf >= 0 && depth >= leaf {
					return errRagged
				}
				if err := walk(depth + 1); err != nil {
					return err
				}
			} else {
				if leaf < 0 {
					leaf = depth
				} else if leaf != depth {
					return errRagged
				}
				c, err := decodeCell(r)
				if err != nil {
					return err
				}
				lit.cells = append(lit.cells, c)
			}
			n++
		}
		if lit.shape[depth] < 0 {
			lit.shape[depth] = n
		} else if lit.shape[depth] != n {
			return errRagged
		}
		return nil
	}
	if err := walk(0); err != nil {
		return lit, err
	}
	if tensor.NumElements(lit.shape) != len(lit.cells) {
		return lit, errRagged
	}
	return lit, nil
}

var errRagged = badRequest("the nested lists are ragged (not all rows have the same length)")

// pandasNA are the strings pandas.read_csv reads as missing by default.
var pandasNA = map[string]bool{
	"": true, "#N/A": true, "#N/A N/A": true, "#NA": true, "-1.#IND": true, "-1.#QNAN": true, "-NaN": true,
	"-nan": true, "1.#IND": true, "1.#QNAN": true, "<NA>": true, "N/A": true, "NA": true, "NULL": true,
	"NaN": true, "None": true, "n/a": true, "nan": true, "null": true,
}

// decodeCSV decodes a text/csv body with a header row. Each column's type
// is inferred as pandas.read_csv does: integers, else floats, else
// booleans, else strings; pandas' missing-value strings are null.
func decodeCSV(body []byte, intern func([]byte) string) (*frame, error) {
	cr := csv.NewReader(bytes.NewReader(body))
	cr.ReuseRecord = false
	header, err := cr.Read()
	if err == io.EOF {
		return nil, badRequest("Failed to parse input as a Pandas DataFrame. Ensure that the input is a valid CSV-formatted Pandas DataFrame produced using the `pandas.DataFrame.to_csv()` method. Error: 'No columns to parse from file'")
	}
	if err != nil {
		return nil, csvError(err)
	}
	f := &frame{columns: make([]string, len(header))}
	for i, h := range header {
		f.columns[i] = internOr(intern, []byte(h))
	}
	if err := f.checkUnique(); err != nil {
		return nil, err
	}
	var raw []string
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, csvError(err)
		}
		raw = append(raw, rec...)
		f.rows++
	}
	w := len(f.columns)
	f.cells = make([]cell, len(raw))
	for j := range w {
		kind := csvColumnKind(raw, j, w)
		for r := range f.rows {
			s := raw[r*w+j]
			c := &f.cells[r*w+j]
			if pandasNA[s] {
				continue // null
			}
			switch kind {
			case cellInt:
				c.kind = cellInt
				c.i, _ = strconv.ParseInt(strings.TrimSpace(s), 10, 64)
			case cellFloat:
				c.kind = cellFloat
				c.f, _ = strconv.ParseFloat(strings.TrimSpace(s), 64)
			case cellBool:
				c.kind, c.b = cellBool, strings.EqualFold(s, "true")
			default:
				c.kind, c.s = cellString, s
			}
		}
	}
	return f, nil
}

func csvError(err error) error {
	return badRequest("Failed to parse input as a Pandas DataFrame. Ensure that the input is a valid CSV-formatted Pandas DataFrame produced using the `pandas.DataFrame.to_csv()` method. Error: '%v'", err)
}

func csvColumnKind(raw []string, j, w int) cellKind {
	isInt, isFloat, isBool, any := true, true, true, false
	for k := j; k < len(raw); k += w {
		s := raw[k]
		if pandasNA[s] {
			isInt = false // pandas reads an integer column with gaps as floats
			continue
		}
		any = true
		t := strings.TrimSpace(s)
		if isInt {
			if _, err := strconv.ParseInt(t, 10, 64); err != nil {
				isInt = false
			}
		}
		if isFloat && !isInt {
			if _, err := strconv.ParseFloat(t, 64); err != nil {
				isFloat = false
			}
		}
		if isBool && !strings.EqualFold(t, "true") && !strings.EqualFold(t, "false") {
			isBool = false
		}
	}
	switch {
	case !any:
		return cellFloat // all missing: NaN
	case isInt:
		return cellInt
	case isFloat:
		return cellFloat
	case isBool:
		return cellBool
	}
	return cellString
}

// invocationInputs maps a decoded request to the model's inputs.
func (st *modelState) invocationInputs(inv *invocation) ([]*tensor.Tensor, error) {
	p := st.plan
	sig := st.sig
	if inv.frame != nil {
		return p.frameInputs(inv.frame)
	}
	lits := inv.tensors
	if len(lits) == 1 && lits[0].name == "" {
		if len(sig.Inputs) != 1 {
			return nil, badRequest("model %q takes %d inputs %s: send them by name, {\"inputs\": {\"name\": [...], ...}}, or as a dataframe", st.m.Name, len(sig.Inputs), specList(sig.Inputs))
		}
		t, err := litInput(lits[0], sig.Inputs[0])
		if err != nil {
			return nil, err
		}
		return []*tensor.Tensor{t}, nil
	}
	// Named: tensors when every name is a model input, else columns.
	allInputs := len(sig.Inputs) > 0
	for _, l := range lits {
		if _, ok := st.inputIdx[l.name]; !ok {
			allInputs = false
			break
		}
	}
	if allInputs && !(len(sig.Inputs) == 1 && len(lits) == 1 && p.cols != nil && len(p.cols) > 1) {
		out := make([]*tensor.Tensor, len(lits))
		for i, l := range lits {
			t, err := litInput(l, sig.Inputs[st.inputIdx[l.name]])
			if err != nil {
				return nil, err
			}
			out[i] = t
		}
		return out, nil
	}
	f, err := litsToFrame(lits)
	if err != nil {
		return nil, err
	}
	return p.frameInputs(f)
}

// litsToFrame reads {"column": [values], ...} as a dataframe.
func litsToFrame(lits []tensorLit) (*frame, error) {
	f := &frame{columns: make([]string, len(lits))}
	rows := -1
	for i, l := range lits {
		f.columns[i] = l.name
		n := 1
		switch len(l.shape) {
		case 0:
		case 1:
			n = int(l.shape[0])
		default:
			return nil, invalidInput("column %q: nested lists are not supported as column values", l.name)
		}
		if rows >= 0 && n != rows {
			return nil, invalidInput("The length of values for each input/column name are not the same")
		}
		rows = n
	}
	if rows < 0 {
		rows = 0
	}
	f.rows = rows
	w := len(lits)
	f.cells = make([]cell, rows*w)
	for j, l := range lits {
		for r, c := range l.cells {
			f.cells[r*w+j] = c
		}
	}
	return f, nil
}

func (s *Server) registerMLflow(mux *http.ServeMux) {
	ping := func(w http.ResponseWriter, r *http.Request) {
		status := http.StatusOK
		if _, err := s.invocationsModel(r.Context(), s.opts.InvocationsModel); err != nil {
			status = http.StatusServiceUnavailable
		}
		w.Header()["Content-Type"] = hdrJSON
		w.WriteHeader(status)
		w.Write([]byte("\n"))
	}
	mux.HandleFunc("GET /ping", ping)
	mux.HandleFunc("GET /health", ping)
	mux.HandleFunc("GET /version", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = hdrJSON
		w.Write([]byte(s.opts.MLflowVersion))
	})
	mux.Handle("POST /invocations", s.InvocationsHandler(s.opts.InvocationsModel))
}

// InvocationsHandler returns a handler of MLflow's /invocations for the
// named model (empty: the repository's only model).
func (s *Server) InvocationsHandler(name string) http.Handler {
	return s.InvocationsHandlerFunc(func(*http.Request) string { return name })
}

// InvocationsHandlerFunc returns a handler of MLflow's /invocations for
// the model that nameOf names for each request (for example a path value:
// /endpoints/{endpoint}/invocations). An empty name means the
// repository's only model.
func (s *Server) InvocationsHandlerFunc(nameOf func(*http.Request) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		defer s.recoverPanic(w, r, func(w http.ResponseWriter, status int, msg string) {
			writeMLflowError(w, status, "INTERNAL_ERROR", msg)
		})
		ctx := s.withHeader(r.Context(), w, r)
		st, err := s.invocationsModel(ctx, nameOf(r))
		if err != nil {
			status := classify(err).httpStatus()
			code := "INTERNAL_ERROR"
			switch status {
			case http.StatusNotFound:
				code = "ENDPOINT_NOT_FOUND"
			case http.StatusServiceUnavailable:
				code = "TEMPORARILY_UNAVAILABLE"
			case http.StatusTooManyRequests:
				code = "RESOURCE_EXHAUSTED"
				w.Header().Set("Retry-After", retryAfter(err))
			}
			writeMLflowError(w, status, code, err.Error())
			s.unknown.countHTTP(protoMLflow, status)
			return
		}
		status := s.invocations(ctx, w, r, st, start)
		st.mm.countHTTP(protoMLflow, status)
		st.mm.duration.Observe(time.Since(start).Seconds())
	})
}

// defaultModeler is a Repository that knows its default model without
// listing its models (Static does).
type defaultModeler interface {
	DefaultModel() (*Model, bool)
}

func (s *Server) invocationsModel(ctx context.Context, name string) (*modelState, error) {
	if name == "" {
		if d, ok := s.repo.(defaultModeler); ok {
			if m, ok := d.DefaultModel(); ok {
				return s.state(m), nil
			}
		}
		models := s.repo.Models(ctx)
		if len(models) != 1 {
			return nil, fmt.Errorf("%w: /invocations scores the server's only model, and it has %d", ErrModelNotFound, len(models))
		}
		return s.lookup(ctx, models[0].Name, models[0].Version)
	}
	return s.lookup(ctx, name, "")
}

func writeMLflowError(w http.ResponseWriter, status int, code, msg string) {
	b := make([]byte, 0, len(msg)+48)
	b = append(b, `{"error_code":`...)
	b = appendJSONString(b, code)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, msg)
	b = append(b, '}')
	h := w.Header()
	h["Content-Type"] = hdrJSON
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

func writeText(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	io.WriteString(w, msg)
}

// invocations answers one /invocations request and returns its status.
func (s *Server) invocations(ctx context.Context, w http.ResponseWriter, r *http.Request, st *modelState, start time.Time) int {
	var inputs, keys []*tensor.Tensor
	fail := func(err error) int {
		k := classify(err)
		status := k.httpStatus()
		code := "BAD_REQUEST"
		var me *mlflowError
		switch {
		case errors.As(err, &me):
			code = me.code
		case k == kindInternal:
			code = "INTERNAL_ERROR"
			s.log.Error("inference failed", "model", st.m.Name, "protocol", "mlflow", "err", err)
		case k == kindUnavailable:
			code = "TEMPORARILY_UNAVAILABLE"
		case k == kindNotFound:
			code = "ENDPOINT_NOT_FOUND"
		case k == kindOverloaded:
			code = "RESOURCE_EXHAUSTED"
			w.Header().Set("Retry-After", retryAfter(err))
		}
		s.observe(ctx, st, protoMLflow, "", start, inputs, keys, nil, err, status)
		writeMLflowError(w, status, code, err.Error())
		return status
	}
	isCSV, ok := checkContentType(w, r)
	if !ok {
		return http.StatusUnsupportedMediaType
	}
	release, err := s.admit(ctx, st)
	if err != nil {
		return fail(err)
	}
	defer release()
	bp, err := s.readBody(r)
	if err != nil {
		return fail(err)
	}
	defer putBody(bp)
	var inv *invocation
	if isCSV {
		var f *frame
		f, err = decodeCSV(*bp, st.internColumn)
		inv = &invocation{frame: f}
	} else {
		inv, err = decodeInvocationJSON(*bp, st.internColumn)
	}
	if err != nil {
		return fail(err)
	}
	defer inv.release()
	var decoded []*tensor.Tensor
	filled := false // read as a dataframe completed with features
	if fs := st.featureSet(); fs != nil {
		filled = true
		decoded, keys, err = st.fillInvocation(ctx, fs, inv)
	} else {
		decoded, err = st.invocationInputs(inv)
	}
	if err != nil {
		return fail(err)
	}
	if inputs, err = st.matchInputs(decoded); err != nil {
		return fail(err)
	}
	outs, err := s.predict(ctx, st, inputs)
	if err != nil {
		return fail(err)
	}
	s.observe(ctx, st, protoMLflow, "", start, inputs, keys, outs, nil, http.StatusOK)
	sig := st.sig
	if sel := st.plan.outputs; sel != nil && len(outs) == len(st.sig.Outputs) {
		picked := make([]*tensor.Tensor, len(sel))
		specs := make([]runtime.TensorSpec, len(sel))
		for i, j := range sel {
			picked[i], specs[i] = outs[j], st.sig.Outputs[j]
		}
		outs, sig = picked, runtime.Signature{Inputs: sig.Inputs, Outputs: specs}
	}
	rp := respPool.Get().(*[]byte)
	defer putResp(rp)
	b := appendPredictions((*rp)[:0], sig, outs, inv.frame != nil || filled || isFrameShaped(inv, st))
	*rp = b
	h := w.Header()
	h["Content-Type"] = hdrJSON
	setContentLength(h, len(b))
	w.Write(b)
	return http.StatusOK
}

// isFrameShaped reports whether named "inputs" were read as columns.
func isFrameShaped(inv *invocation, st *modelState) bool {
	for _, l := range inv.tensors {
		if l.name == "" {
			return false
		}
		if _, ok := st.inputIdx[l.name]; !ok {
			return true
		}
	}
	return false
}

// checkContentType accepts application/json and text/csv (charset
// utf-8 only), answering anything else with 415 as MLflow does.
func checkContentType(w http.ResponseWriter, r *http.Request) (isCSV, ok bool) {
	ct := ""
	if v := r.Header["Content-Type"]; len(v) > 0 {
		ct = v[0]
	}
	mime, params, _ := strings.Cut(ct, ";")
	mime = strings.TrimSpace(mime)
	if params != "" {
		for p := range strings.SplitSeq(params, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
			switch {
			case k == "":
			case strings.EqualFold(k, "charset"):
				if !strings.EqualFold(strings.Trim(v, `"`), "utf-8") {
					writeText(w, http.StatusUnsupportedMediaType, "The scoring server only supports UTF-8")
					return false, false
				}
			default:
				writeText(w, http.StatusUnsupportedMediaType, "Unrecognized content type parameters: "+k+".")
				return false, false
			}
		}
	}
	switch {
	case strings.EqualFold(mime, "application/json"):
		return false, true
	case strings.EqualFold(mime, "text/csv"):
		return true, true
	}
	writeText(w, http.StatusUnsupportedMediaType,
		"This predictor only supports the following content types: Types: ['text/csv', 'application/json']. Got '"+ct+"'.")
	return false, false
}

// internColumn returns a known string equal to b: an input name or an
// MLflow signature column name.
func (st *modelState) internColumn(b []byte) string {
	if s := st.intern(b); s != "" {
		return s
	}
	for i := range st.plan.cols {
		if n := st.plan.cols[i].Name; n == string(b) {
			return n
		}
	}
	return ""
}
