package serving

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// Feature serving: a Model whose Features are set (an endpoint with
// spec.features, package deploy) takes requests that carry entity join
// keys as columns; the server reads the keys, has the FeatureSet look the
// features up for every row at once, adds them as columns named by the
// feature, and maps the completed frame to the model's inputs as
// /invocations maps a dataframe (by input name, or stacked in the MLflow
// signature's column order). A column the request sends itself wins over
// the looked-up value, cell by cell (a null cell is filled in). The
// entity keys reach the model only when its signature takes them; the
// Observer sees them in Call.Keys either way.

// A FeatureFiller says what a Model's requests are completed with.
type FeatureFiller interface {
	// FeatureSet returns the features requests are completed with now,
	// or nil for none.
	FeatureSet() FeatureSet
}

// A FeatureSet fills in features by entity key.
type FeatureSet interface {
	// Plan returns the entity join keys that the lookup reads from a
	// request and the names of the feature columns it fills in.
	Plan(ctx context.Context) (keys, names []string, err error)
	// Fill completes rows.Values: every nil value is set, or Fill fails.
	// An error wrapping errdefs.ErrInvalidArgument (a missing entity,
	// a key of the wrong type) is the client's: 400, with its message.
	// Any other error answers 503.
	Fill(ctx context.Context, rows *FeatureRows) error
}

// FeatureRows are the rows of one request as a FeatureSet sees them.
// Values are int64, float64, string, bool or nil.
type FeatureRows struct {
	// N is the number of rows.
	N int
	// KeyNames are the Plan's keys; Keys[i] holds the N values of
	// KeyNames[i] (never nil).
	KeyNames []string
	Keys     [][]any
	// Names are the Plan's features; Values[j] holds the N values of
	// Names[j]: the request's own where it sent one, nil elsewhere, until
	// Fill sets them (after Fill, nil is a null value).
	Names  []string
	Values [][]any
}

// featureSet returns the model's feature set now, or nil.
func (st *modelState) featureSet() FeatureSet {
	if st.m.Features == nil {
		return nil
	}
	return st.m.Features.FeatureSet()
}

// featureError is a failed fill-in: a client's error (400) in MLflow's
// INVALID_PARAMETER_VALUE form, or the feature store's (503).
func featureError(name string, err error) error {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, errdefs.ErrInvalidArgument):
		return &mlflowError{code: "INVALID_PARAMETER_VALUE", msg: errdefs.Message(err)}
	}
	return fmt.Errorf("%w: endpoint %q: looking up its features: %v", ErrModelNotReady, name, err)
}

// fillTensors completes decoded V2 inputs, each read as a column (shape
// [N] or [N, 1]), and returns the model's inputs and the entity keys.
func (st *modelState) fillTensors(ctx context.Context, fs FeatureSet, ts []*tensor.Tensor) (inputs, keys []*tensor.Tensor, err error) {
	f, err := tensorsToFrame(st.m.Name, ts)
	if err != nil {
		return nil, nil, err
	}
	return st.fillFrame(ctx, fs, f)
}

// fillInvocation completes an /invocations request.
func (st *modelState) fillInvocation(ctx context.Context, fs FeatureSet, inv *invocation) (inputs, keys []*tensor.Tensor, err error) {
	f := inv.frame
	if f == nil {
		for _, l := range inv.tensors {
			if l.name == "" {
				return nil, nil, badRequest("endpoint %q fills in features by entity key: send named columns (dataframe_split, dataframe_records or {\"inputs\": {\"column\": [...]}}), not an unnamed tensor", st.m.Name)
			}
		}
		if f, err = litsToFrame(inv.tensors); err != nil {
			return nil, nil, err
		}
	}
	return st.fillFrame(ctx, fs, f)
}

// fillFrame looks up the features of f's rows, completes f and maps it to
// the model's inputs. It returns the entity key columns (those the model
// does not take) for the Observer.
func (st *modelState) fillFrame(ctx context.Context, fs FeatureSet, f *frame) (inputs, keys []*tensor.Tensor, err error) {
	keyNames, names, err := fs.Plan(ctx)
	if err != nil {
		return nil, nil, featureError(st.m.Name, err)
	}
	w := len(f.columns)
	rows := &FeatureRows{N: f.rows, KeyNames: keyNames, Keys: make([][]any, len(keyNames)), Names: names, Values: make([][]any, len(names))}
	keyCol := make([]int, len(keyNames))
	for i, k := range keyNames {
		j := f.col(k)
		if j < 0 {
			return nil, nil, &mlflowError{code: "INVALID_PARAMETER_VALUE", msg: fmt.Sprintf(
				"missing entity key %q: endpoint %q looks its features up by %s; send it as a column (request columns: %s)",
				k, st.m.Name, pyList(keyNames), pyList(f.columns))}
		}
		keyCol[i] = j
		vals := make([]any, f.rows)
		for r := range f.rows {
			c := f.cells[r*w+j]
			if c.kind == cellNull {
				return nil, nil, &mlflowError{code: "INVALID_PARAMETER_VALUE", msg: fmt.Sprintf("row %d: entity key %q is null", r, k)}
			}
			vals[r] = c.value()
		}
		rows.Keys[i] = vals
	}
	given := make([]int, len(names)) // the request's column of each feature, or -1
	for i, n := range names {
		vals := make([]any, f.rows)
		given[i] = f.col(n)
		if j := given[i]; j >= 0 {
			for r := range f.rows {
				vals[r] = f.cells[r*w+j].value()
			}
		}
		rows.Values[i] = vals
	}
	// The keys the model does not take leave the frame; the Observer
	// sees them, even when the lookup fails.
	isKey := make(map[int]bool, len(keyCol))
	for i, j := range keyCol {
		if st.takes(keyNames[i]) {
			continue
		}
		isKey[j] = true
		t, err := columnTensor(f, j, runtime.TensorSpec{Name: keyNames[i], Shape: []int64{-1}}, false)
		if err != nil {
			return nil, nil, err
		}
		keys = append(keys, t)
	}
	if err := fs.Fill(ctx, rows); err != nil {
		return nil, keys, featureError(st.m.Name, err)
	}
	// The completed frame: the request's columns (less those keys), then
	// the features it did not send.
	out := &frame{rows: f.rows}
	var src []int // the request column of each output column, or -1-feature
	for j, c := range f.columns {
		if !isKey[j] {
			out.columns = append(out.columns, c)
			src = append(src, j)
		}
	}
	featAt := make(map[int]int, len(names)) // request column → feature
	for i, n := range names {
		if given[i] >= 0 {
			featAt[given[i]] = i
			continue
		}
		out.columns = append(out.columns, n)
		src = append(src, -1-i)
	}
	ow := len(out.columns)
	out.cells = make([]cell, f.rows*ow)
	for k, s := range src {
		for r := range f.rows {
			var c cell
			switch fi, ok := featAt[s]; {
			case s < 0:
				c, err = valueCell(rows.Values[-1-s][r])
			case ok:
				c, err = valueCell(rows.Values[fi][r])
			default:
				c = f.cells[r*w+s]
			}
			if err != nil {
				return nil, keys, fmt.Errorf("feature %q, row %d: %w", out.columns[k], r, err)
			}
			out.cells[r*ow+k] = c
		}
	}
	if inputs, err = st.plan.frameInputs(out); err != nil {
		return nil, keys, err
	}
	return inputs, keys, nil
}

// takes reports whether the model takes a column of that name: a runtime
// input or a column of its MLflow signature.
func (st *modelState) takes(name string) bool {
	if _, ok := st.inputIdx[name]; ok {
		return true
	}
	for _, c := range st.plan.cols {
		if c.Name == name {
			return true
		}
	}
	return false
}

// value returns the cell as a FeatureRows value.
func (c cell) value() any {
	switch c.kind {
	case cellBool:
		return c.b
	case cellInt:
		return c.i
	case cellFloat:
		return c.f
	case cellString:
		return c.s
	}
	return nil
}

// valueCell converts a filled-in feature value to a cell.
func valueCell(v any) (cell, error) {
	switch x := v.(type) {
	case nil:
		return cell{kind: cellNull}, nil
	case bool:
		return cell{kind: cellBool, b: x}, nil
	case int64:
		return cell{kind: cellInt, i: x}, nil
	case int:
		return cell{kind: cellInt, i: int64(x)}, nil
	case int32:
		return cell{kind: cellInt, i: int64(x)}, nil
	case float64:
		return cell{kind: cellFloat, f: x}, nil
	case float32:
		return cell{kind: cellFloat, f: float64(x)}, nil
	case string:
		return cell{kind: cellString, s: x}, nil
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return cell{kind: cellInt, i: i}, nil
		}
		f, err := x.Float64()
		if err != nil {
			return cell{}, fmt.Errorf("invalid number %q", string(x))
		}
		return cell{kind: cellFloat, f: f}, nil
	}
	return cell{}, fmt.Errorf("unsupported feature value of type %T", v)
}

// tensorsToFrame reads V2 inputs as the columns of a frame: each must be
// [N] or [N, 1], all with the same N.
func tensorsToFrame(model string, ts []*tensor.Tensor) (*frame, error) {
	f := &frame{columns: make([]string, len(ts))}
	rows := -1
	for i, t := range ts {
		if t.Name == "" {
			return nil, badRequest("endpoint %q fills in features by entity key: every input needs a name (its column)", model)
		}
		f.columns[i] = t.Name
		n := int64(-1)
		switch {
		case len(t.Shape) == 1:
			n = t.Shape[0]
		case len(t.Shape) == 2 && t.Shape[1] == 1:
			n = t.Shape[0]
		}
		if n < 0 {
			return nil, badRequest("endpoint %q fills in features by entity key: send each input as a column of shape [N] or [N, 1]; input %q has shape %v", model, t.Name, t.Shape)
		}
		if rows >= 0 && int(n) != rows {
			return nil, badRequest("input %q has %d rows, input %q has %d", t.Name, n, ts[0].Name, rows)
		}
		rows = int(n)
	}
	if rows < 0 {
		rows = 0
	}
	if err := f.checkUnique(); err != nil {
		return nil, err
	}
	f.rows = rows
	w := len(ts)
	f.cells = make([]cell, rows*w)
	for j, t := range ts {
		if err := tensorCells(t, f.cells[j:], w, rows); err != nil {
			return nil, badRequest("input %q: %v", t.Name, err)
		}
	}
	return f, nil
}

// tensorCells writes t's n elements to dst[0], dst[stride], ….
func tensorCells(t *tensor.Tensor, dst []cell, stride, n int) error {
	put := func(r int, c cell) { dst[r*stride] = c }
	switch d := t.Data.(type) {
	case []bool:
		for r := range n {
			put(r, cell{kind: cellBool, b: d[r]})
		}
	case []string:
		for r := range n {
			put(r, cell{kind: cellString, s: d[r]})
		}
	case []float64:
		for r := range n {
			put(r, cell{kind: cellFloat, f: d[r]})
		}
	case []float32:
		for r := range n {
			put(r, cell{kind: cellFloat, f: float64(d[r])})
		}
	case []int64:
		for r := range n {
			put(r, cell{kind: cellInt, i: d[r]})
		}
	case []int32:
		for r := range n {
			put(r, cell{kind: cellInt, i: int64(d[r])})
		}
	case []int16:
		for r := range n {
			put(r, cell{kind: cellInt, i: int64(d[r])})
		}
	case []int8:
		for r := range n {
			put(r, cell{kind: cellInt, i: int64(d[r])})
		}
	case []uint8:
		for r := range n {
			put(r, cell{kind: cellInt, i: int64(d[r])})
		}
	case []uint16:
		for r := range n {
			if t.DType == tensor.Float16 {
				put(r, cell{kind: cellFloat, f: float64(tensor.HalfToFloat32(d[r]))})
			} else {
				put(r, cell{kind: cellInt, i: int64(d[r])})
			}
		}
	case []uint32:
		for r := range n {
			put(r, cell{kind: cellInt, i: int64(d[r])})
		}
	case []uint64:
		for r := range n {
			if d[r] > math.MaxInt64 {
				put(r, cell{kind: cellFloat, f: float64(d[r])})
			} else {
				put(r, cell{kind: cellInt, i: int64(d[r])})
			}
		}
	default:
		return fmt.Errorf("datatype %v cannot be a column", t.DType)
	}
	return nil
}
