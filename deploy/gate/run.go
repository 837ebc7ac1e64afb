package gate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/evaluate"
	"github.com/kiln-ml/kiln/model"
	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/score"
	"github.com/kiln-ml/kiln/tensor"
)

// DefaultMaxRows bounds the rows of an evaluation when neither the policy
// nor the evaluator sets a bound.
const DefaultMaxRows = 10_000_000

// Scorer is a loaded model to evaluate.
type Scorer struct {
	Ref       ModelRef
	Model     runtime.Model
	Signature *model.Signature // the MLflow signature, nil when none
}

// Table is evaluation data: what it is, and how to read it (once per
// model evaluated).
type Table struct {
	Ref    string
	Digest string
	Open   func(ctx context.Context) (table.Reader, error)
}

// Evaluation is what Run evaluates.
type Evaluation struct {
	Policy           *Policy
	PolicyGeneration int64
	Candidate        Scorer
	// Baseline is nil when there is none (a rubber stamp).
	Baseline      *Scorer
	BaselineAlias string
	Data          Table
	Actor         string
	// MaxRows bounds the rows read when the policy does not
	// (DefaultMaxRows when 0).
	MaxRows int64
	// Workers predict in parallel (GOMAXPROCS when 0).
	Workers int
	// Progress, when set, is told of the rows scored per model ("candidate"
	// or "baseline").
	Progress func(model string, rows int64)
}

// Run evaluates e.Candidate (and e.Baseline) on e.Data under e.Policy and
// returns the result, which it does not store. Errors are about the
// evaluation itself (unreadable data, a model that cannot predict on it);
// metrics that are undefined on the data fail their checks instead.
func Run(ctx context.Context, e Evaluation) (*Result, error) {
	start := time.Now()
	if err := e.Policy.Validate(); err != nil {
		return nil, err
	}
	p := e.Policy.Normalized()
	spec := &p.Spec
	maxRows := spec.MaxRows
	if maxRows == 0 {
		maxRows = e.MaxRows
	}
	if maxRows <= 0 {
		maxRows = DefaultMaxRows
	}
	cand, err := scoreModel(ctx, spec, e.Candidate, e.Data, maxRows, e.Workers, true, progressOf(e.Progress, "candidate"))
	if err != nil {
		return nil, fmt.Errorf("candidate %s: %w", e.Candidate.Ref.URI, err)
	}
	var base *scored
	if e.Baseline != nil {
		if base, err = scoreModel(ctx, spec, *e.Baseline, e.Data, maxRows, e.Workers, false, progressOf(e.Progress, "baseline")); err != nil {
			return nil, fmt.Errorf("baseline %s: %w", e.Baseline.Ref.URI, err)
		}
	}
	r := &Result{
		Policy: p.Metadata.Name, PolicyDigest: e.Policy.Digest(), PolicyGeneration: e.PolicyGeneration,
		RubberStamp: base == nil, Task: spec.Task, Candidate: e.Candidate.Ref,
		Data:  DataInfo{Ref: e.Data.Ref, Digest: e.Data.Digest, Rows: cand.rows},
		Actor: e.Actor, Time: start.UnixMilli(),
	}
	if base != nil {
		ref := e.Baseline.Ref
		r.Baseline, r.BaselineAlias = &ref, e.BaselineAlias
	}
	if c, ok := cand.overall.(*evaluate.Classifier); ok {
		r.PositiveClass = c.PositiveClass()
		labels, counts := c.ConfusionMatrix()
		r.Classes = labels
		if len(labels) <= 50 {
			r.Confuse = &ConfusionTable{Labels: labels, Counts: counts}
		}
	}
	for _, m := range spec.Metrics {
		mv := MetricValue{Name: m.Name, Direction: direction(m)}
		mv.Candidate, mv.Error = finiteOrNil(cand.overall.Value(m.Name))
		if base != nil {
			mv.Baseline, mv.BaselineError = finiteOrNil(base.overall.Value(m.Name))
			if mv.Candidate != nil && mv.Baseline != nil {
				d := *mv.Candidate - *mv.Baseline
				mv.Delta = &d
				switch {
				case *mv.Baseline != 0:
					mv.RelativeDelta = fptr(d / math.Abs(*mv.Baseline))
				case d == 0:
					mv.RelativeDelta = fptr(0)
				}
			}
		}
		r.Metrics = append(r.Metrics, mv)
		vcs := valueChecks(m.Name, "", m.Threshold, mv.Candidate, mv.Error)
		for i := range vcs {
			vcs[i].Baseline = mv.Baseline
		}
		r.Checks = append(r.Checks, vcs...)
		r.Checks = append(r.Checks, changeChecks(m, mv, base != nil)...)
	}
	for i, sc := range spec.Slices {
		rep := sliceReport(sc, cand.slices[i])
		r.Slices = append(r.Slices, rep)
		r.Checks = append(r.Checks, sliceChecks(sc, rep)...)
	}
	r.finish()
	r.Took = time.Since(start).Milliseconds()
	return r, nil
}

func progressOf(fn func(string, int64), name string) func(int64) {
	if fn == nil {
		return nil
	}
	return func(n int64) { fn(name, n) }
}

func sliceReport(sc SliceCheck, s *evaluate.Slices[evaluate.Accumulator]) SliceReport {
	rep := SliceReport{Column: sc.Column}
	keys := s.Keys()
	vals := make(map[string][]float64, len(sc.Metrics))
	var compared []string
	for _, k := range keys {
		a, _ := s.Get(k)
		sv := SliceValues{Key: k, Rows: a.Count(), Values: map[string]*float64{}}
		sv.Excluded = sc.MinRows > 0 && a.Count() < sc.MinRows
		if !sv.Excluded {
			compared = append(compared, k)
		}
		for _, m := range sc.Metrics {
			v, why := finiteOrNil(a.Value(m))
			sv.Values[m] = v
			if why != "" {
				if sv.Errors == nil {
					sv.Errors = map[string]string{}
				}
				sv.Errors[m] = why
			}
			if !sv.Excluded {
				x := math.NaN()
				if v != nil {
					x = *v
				}
				vals[m] = append(vals[m], x)
			}
		}
		rep.Slices = append(rep.Slices, sv)
	}
	for _, m := range sc.Metrics {
		rep.Disparities = append(rep.Disparities, evaluate.ComputeDisparity(m, compared, vals[m]))
	}
	return rep
}

// scored is one model's accumulators over the data.
type scored struct {
	overall evaluate.Accumulator
	slices  []*evaluate.Slices[evaluate.Accumulator]
	rows    int64
}

func needsScores(names ...[]string) bool {
	for _, ns := range names {
		for _, n := range ns {
			if info, ok := evaluate.Lookup(n); ok && info.NeedsScores {
				return true
			}
		}
	}
	return false
}

// scoreModel streams the data through one model into accumulators;
// withSlices also fills the slice accumulators.
func scoreModel(ctx context.Context, spec *Spec, s Scorer, data Table, maxRows int64, workers int, withSlices bool, progress func(int64)) (*scored, error) {
	mp, err := newMapper(s.Model.Signature(), spec.Task, spec.Prediction, canonicalLabel(spec.PositiveClass))
	if err != nil {
		return nil, err
	}
	r, err := data.Open(ctx)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	side := []string{spec.Label}
	if withSlices {
		for _, sc := range spec.Slices {
			side = append(side, sc.Column)
		}
	}
	sr, err := newSideReader(r, spec.Features, spec.Label, side, maxRows)
	if err != nil {
		return nil, err
	}
	lt := r.Schema().Fields[sr.side[0]].Type
	switch {
	case lt == table.Timestamp || lt == table.Date:
		return nil, errdefs.Invalid("the label column %q holds %v values, not labels or targets", spec.Label, lt)
	case spec.Task == evaluate.Regression && !lt.Numeric() && lt != table.Bool:
		return nil, errdefs.Invalid("the label column %q holds %v values; a regression target must be numeric", spec.Label, lt)
	}
	var metricNames []string
	for _, m := range spec.Metrics {
		metricNames = append(metricNames, m.Name)
	}
	var sliceNames []string
	for _, sc := range spec.Slices {
		sliceNames = append(sliceNames, sc.Metrics...)
	}
	out := &scored{}
	positive := canonicalLabel(spec.PositiveClass)
	var classes []string
	newClassifier := func(keepScores bool) evaluate.Accumulator {
		o := evaluate.ClassifierOptions{ScoreClasses: classes, PositiveClass: positive}
		if !keepScores {
			o.MaxScores = -1
		}
		return evaluate.NewClassifier(o)
	}
	started := false
	start := func(outs []*tensor.Tensor) {
		started = true
		if spec.Task == evaluate.Classification {
			classes = mp.scoreClasses(outs)
			out.overall = newClassifier(needsScores(metricNames))
		} else {
			out.overall = evaluate.NewRegressor()
		}
		if withSlices {
			for _, sc := range spec.Slices {
				keep := needsScores(sc.Metrics)
				out.slices = append(out.slices, evaluate.NewSlices(0, func() evaluate.Accumulator {
					if spec.Task == evaluate.Classification {
						return newClassifier(keep)
					}
					return evaluate.NewRegressor()
				}))
			}
		}
	}
	var row int64
	err = score.Each(ctx, s.Model, s.Signature, sr, score.Options{Workers: workers, Progress: progress}, func(in *table.Batch, outs []*tensor.Tensor) error {
		if !started {
			start(outs)
		}
		sb, err := sr.take(in.Len)
		if err != nil {
			return err
		}
		bp, err := mp.read(outs, in.Len, row)
		if err != nil {
			return err
		}
		accs := make([]evaluate.Accumulator, 1+len(out.slices))
		for i := range in.Len {
			accs = accs[:1]
			accs[0] = out.overall
			for j, sl := range out.slices {
				key, ok := columnLabel(&sb.Columns[1+j], i)
				if !ok {
					key = "(null)"
				}
				a, err := sl.Get(key)
				if err != nil {
					return fmt.Errorf("spec.slices[%d] (column %q): %w", j, spec.Slices[j].Column, err)
				}
				accs = append(accs, a)
			}
			if err := addRow(accs, &sb.Columns[0], i, bp, row+int64(i), spec.Label); err != nil {
				return err
			}
		}
		row += int64(in.Len)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !started {
		return nil, errdefs.Invalid("the evaluation data has no rows")
	}
	out.rows = row
	return out, nil
}

// addRow adds row i (absolute row n) to every accumulator.
func addRow(accs []evaluate.Accumulator, label *table.Column, i int, bp *batchPredictions, n int64, labelName string) error {
	if label.Null(i) {
		return errdefs.Invalid("row %d: the label column %q is null", n, labelName)
	}
	for _, a := range accs {
		switch a := a.(type) {
		case *evaluate.Regressor:
			if err := a.Add(label.Float(i), bp.values[i]); err != nil {
				return fmt.Errorf("row %d: %w", n, err)
			}
		case *evaluate.Classifier:
			t, _ := columnLabel(label, i)
			ti, err := a.Label(t)
			if err != nil {
				return err
			}
			pi, err := a.Label(bp.labels[i])
			if err != nil {
				return err
			}
			var s []float64
			if bp.k > 0 {
				s = bp.scores[i*bp.k : (i+1)*bp.k]
			}
			if err := a.Add(ti, pi, s); err != nil {
				return fmt.Errorf("row %d: %w", n, err)
			}
		}
	}
	return nil
}

// sideReader gives score.Each the feature columns of a table and keeps
// the label and slice columns of the same rows, in order, for the
// consumer of Each's results (which sees batches in input order).
type sideReader struct {
	r       table.Reader
	schema  table.Schema
	feat    []int
	side    []int
	maxRows int64
	rows    int64

	mu    sync.Mutex
	queue []*table.Batch
	off   int
}

func newSideReader(r table.Reader, features []string, label string, side []string, maxRows int64) (*sideReader, error) {
	full := r.Schema()
	sr := &sideReader{r: r, maxRows: maxRows}
	for _, name := range side {
		j := full.Index(name)
		if j < 0 {
			return nil, errdefs.Invalid("the evaluation data has no column %q (columns: %v)", clip(name), full.Names())
		}
		sr.side = append(sr.side, j)
	}
	if len(features) > 0 {
		for _, name := range features {
			j := full.Index(name)
			if j < 0 {
				return nil, errdefs.Invalid("spec.features: the evaluation data has no column %q (columns: %v)", clip(name), full.Names())
			}
			sr.feat = append(sr.feat, j)
		}
	} else {
		for j, f := range full.Fields {
			if f.Name != label {
				sr.feat = append(sr.feat, j)
			}
		}
	}
	if len(sr.feat) == 0 {
		return nil, errdefs.Invalid("the evaluation data has no feature columns besides the label %q", clip(label))
	}
	for _, j := range sr.feat {
		sr.schema.Fields = append(sr.schema.Fields, full.Fields[j])
	}
	return sr, nil
}

func (s *sideReader) Schema() table.Schema { return s.schema }
func (s *sideReader) Close() error         { return nil }

func pick(b *table.Batch, idx []int) *table.Batch {
	out := &table.Batch{Len: b.Len, Columns: make([]table.Column, len(idx))}
	for i, j := range idx {
		out.Columns[i] = b.Columns[j]
	}
	return out
}

func (s *sideReader) Next(ctx context.Context) (*table.Batch, error) {
	b, err := s.r.Next(ctx)
	if err != nil {
		return nil, err
	}
	s.rows += int64(b.Len)
	if s.rows > s.maxRows {
		return nil, errdefs.Invalid("the evaluation data has more than %d rows (raise spec.max_rows)", s.maxRows)
	}
	s.mu.Lock()
	s.queue = append(s.queue, pick(b, s.side))
	s.mu.Unlock()
	return pick(b, s.feat), nil
}

// take returns the side columns of the next n rows that Each hands out.
func (s *sideReader) take(n int) (*table.Batch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.queue) > 0 && s.off >= s.queue[0].Len {
		s.queue, s.off = s.queue[1:], 0
	}
	if len(s.queue) == 0 || s.off+n > s.queue[0].Len {
		return nil, errors.New("gate: predictions out of step with the table rows")
	}
	b := s.queue[0].Slice(s.off, s.off+n)
	s.off += n
	return b, nil
}

// concatReader reads several tables with the same schema one after the
// other.
type concatReader struct {
	opens  []func(ctx context.Context) (table.Reader, error)
	names  []string
	cur    table.Reader
	i      int
	schema table.Schema
}

// ConcatTables reads the tables opens returns, in order, as one: their
// columns must have the same names and types. names name them in errors.
func ConcatTables(ctx context.Context, names []string, opens []func(ctx context.Context) (table.Reader, error)) (table.Reader, error) {
	if len(opens) == 0 {
		return nil, errdefs.Invalid("no table files")
	}
	first, err := opens[0](ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", names[0], err)
	}
	return &concatReader{opens: opens, names: names, cur: first, schema: first.Schema()}, nil
}

func (c *concatReader) Schema() table.Schema { return c.schema }

func (c *concatReader) Next(ctx context.Context) (*table.Batch, error) {
	for {
		if c.cur == nil {
			if c.i+1 >= len(c.opens) {
				return nil, io.EOF
			}
			c.i++
			r, err := c.opens[c.i](ctx)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", c.names[c.i], err)
			}
			if err := sameColumns(c.schema, r.Schema()); err != nil {
				r.Close()
				return nil, fmt.Errorf("%s: %w", c.names[c.i], err)
			}
			c.cur = r
		}
		b, err := c.cur.Next(ctx)
		if errors.Is(err, io.EOF) {
			c.cur.Close()
			c.cur = nil
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.names[c.i], err)
		}
		return b, nil
	}
}

func sameColumns(a, b table.Schema) error {
	if len(a.Fields) != len(b.Fields) {
		return errdefs.Invalid("has %d columns, the first table file %d", len(b.Fields), len(a.Fields))
	}
	for i := range a.Fields {
		if a.Fields[i].Name != b.Fields[i].Name || a.Fields[i].Type != b.Fields[i].Type {
			return errdefs.Invalid("column %d is %s %v, in the first table file %s %v", i, b.Fields[i].Name, b.Fields[i].Type, a.Fields[i].Name, a.Fields[i].Type)
		}
	}
	return nil
}

func (c *concatReader) Close() error {
	if c.cur != nil {
		return c.cur.Close()
	}
	return nil
}
