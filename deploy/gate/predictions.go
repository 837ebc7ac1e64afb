package gate

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/evaluate"
	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// How model outputs become predictions (documented in docs/gates.md):
//
// Classification. The label output is the one named by spec.prediction
// when it has an integer, string or bool type, else the output named
// "label", "output_label" or "predicted_label", else the first output of
// such a type. The score output is spec.prediction when it is a float
// output, else the output named "probabilities", "output_probability" or
// "probability", else the first float output with two dimensions, else
// (with no label output) the first float output. The score output's
// columns are the classes its signature names (ZipMap's labels, XGBoost's
// class indices), else "0", "1", … in column order. Without a label
// output the predicted label is the class of the highest score. A
// one-column score is the probability of the positive class (predicted
// when ≥ 0.5); it must lie in [0, 1], and needs the positive class "1"
// (its negative is "0").
//
// Regression. The output named by spec.prediction, else the one named
// "predictions", "variable", "prediction" or "output", else the first
// numeric output, of shape [N] or [N, 1].
//
// Labels compare as text: integers in decimal, integral floats as
// integers ("1.0" is "1"), bools as "1" and "0".

var (
	labelNames = []string{"label", "output_label", "predicted_label"}
	scoreNames = []string{"probabilities", "output_probability", "probability"}
	valueNames = []string{"predictions", "variable", "prediction", "output"}
)

func isLabelType(d tensor.DType) bool { return d.IsInteger() || d == tensor.String || d == tensor.Bool }

func findOutput(outs []runtime.TensorSpec, names []string, ok func(runtime.TensorSpec) bool) int {
	for _, n := range names {
		for i, o := range outs {
			if strings.EqualFold(o.Name, n) && ok(o) {
				return i
			}
		}
	}
	for i, o := range outs {
		if ok(o) {
			return i
		}
	}
	return -1
}

// mapper reads one model's outputs as predictions.
type mapper struct {
	task     evaluate.Task
	labelOut int // classification: the label output, -1 for none
	scoreOut int // classification: the score output, -1 for none
	classes  []string
	valueOut int // regression
	// positive and negative are the classes of a one-column score.
	positive, negative string
	names              []string
}

func newMapper(sig runtime.Signature, task evaluate.Task, prediction, positive string) (*mapper, error) {
	m := &mapper{task: task, labelOut: -1, scoreOut: -1, valueOut: -1}
	outs := sig.Outputs
	for _, o := range outs {
		m.names = append(m.names, o.Name)
	}
	if len(outs) == 0 {
		return nil, errdefs.Invalid("the model declares no outputs")
	}
	named := -1
	if prediction != "" {
		named = slices.IndexFunc(outs, func(o runtime.TensorSpec) bool { return o.Name == prediction })
		if named < 0 {
			return nil, errdefs.Invalid("spec.prediction: the model has no output %q (outputs: %s)", clip(prediction), strings.Join(m.names, ", "))
		}
	}
	float := func(o runtime.TensorSpec) bool { return o.DType.IsFloat() }
	if task == evaluate.Regression {
		m.valueOut = named
		if m.valueOut < 0 {
			m.valueOut = findOutput(outs, valueNames, func(o runtime.TensorSpec) bool { return o.DType.IsFloat() || o.DType.IsInteger() })
		}
		if m.valueOut < 0 {
			return nil, errdefs.Invalid("the model has no numeric output to read predictions from (outputs: %s)", strings.Join(m.names, ", "))
		}
		return m, nil
	}
	switch {
	case named >= 0 && isLabelType(outs[named].DType):
		m.labelOut = named
	case named >= 0:
		m.scoreOut = named
	}
	if named < 0 {
		m.labelOut = findOutput(outs, labelNames, func(o runtime.TensorSpec) bool { return isLabelType(o.DType) })
		m.scoreOut = findOutput(outs, scoreNames, func(o runtime.TensorSpec) bool { return float(o) && len(o.Shape) == 2 })
		if m.scoreOut < 0 && m.labelOut < 0 {
			m.scoreOut = findOutput(outs, scoreNames, float)
		}
	}
	if m.labelOut < 0 && m.scoreOut < 0 {
		return nil, errdefs.Invalid("the model has no label or probability output (outputs: %s)", strings.Join(m.names, ", "))
	}
	if m.scoreOut >= 0 {
		spec := outs[m.scoreOut]
		k := int64(1)
		if len(spec.Shape) == 2 {
			k = spec.Shape[1]
		}
		switch {
		case len(spec.Labels) > 0:
			m.classes = append([]string(nil), spec.Labels...)
			for i, c := range m.classes {
				m.classes[i] = canonicalLabel(c)
			}
		case k == 1:
			m.positive = positive
			if m.positive == "" {
				m.positive = "1"
			}
			switch m.positive {
			case "1":
				m.negative = "0"
			default:
				if m.labelOut < 0 {
					return nil, errdefs.Invalid("output %q is one score column, read as the probability of class 1 against 0; the positive class %q needs a model with a label or a per-class probability output", spec.Name, clip(positive))
				}
			}
			m.classes = []string{m.positive}
		case k > 1:
			for i := range k {
				m.classes = append(m.classes, strconv.FormatInt(i, 10))
			}
		}
		// k < 0 (a variable width): the classes are set from the first batch.
	}
	return m, nil
}

// scoreClasses returns the classes of the score columns, fixing a
// variable width from the first batch's output.
func (m *mapper) scoreClasses(outs []*tensor.Tensor) []string {
	if m.scoreOut < 0 || m.classes != nil {
		return m.classes
	}
	t := outs[m.scoreOut]
	k := 1
	if len(t.Shape) == 2 {
		k = int(t.Shape[1])
	}
	if k == 1 {
		m.positive, m.negative = "1", "0"
		m.classes = []string{"1"}
		return m.classes
	}
	for i := range k {
		m.classes = append(m.classes, strconv.Itoa(i))
	}
	return m.classes
}

// batchPredictions is one batch's predictions.
type batchPredictions struct {
	labels []string  // predicted labels
	scores []float64 // rows × k
	k      int
	values []float64 // regression
}

func (m *mapper) read(outs []*tensor.Tensor, rows int, firstRow int64) (*batchPredictions, error) {
	if len(outs) != len(m.names) {
		return nil, fmt.Errorf("the model returned %d outputs, its signature has %d", len(outs), len(m.names))
	}
	bp := &batchPredictions{}
	if m.task == evaluate.Regression {
		t := outs[m.valueOut]
		if t.Len() != rows {
			return nil, errdefs.Invalid("output %q has shape %v for %d rows: a regression prediction needs one value per row", t.Name, t.Shape, rows)
		}
		v, err := t.Float64s()
		if err != nil {
			return nil, err
		}
		for i, x := range v {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, errdefs.Invalid("row %d: the model predicted %v", firstRow+int64(i), x)
			}
		}
		bp.values = v
		return bp, nil
	}
	classes := m.scoreClasses(outs)
	if m.scoreOut >= 0 {
		t := outs[m.scoreOut]
		k := len(classes)
		if t.Len() != rows*k {
			return nil, errdefs.Invalid("output %q has shape %v for %d rows of %d classes", t.Name, t.Shape, rows, k)
		}
		v, err := t.Float64s()
		if err != nil {
			return nil, err
		}
		for i, x := range v {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, errdefs.Invalid("row %d: output %q holds %v", firstRow+int64(i/k), t.Name, x)
			}
			if k == 1 && (x < 0 || x > 1) {
				return nil, errdefs.Invalid("row %d: output %q holds %v, outside [0, 1]: a single score column is read as the positive class's probability (margins are not supported; export probabilities)",
					firstRow+int64(i), t.Name, x)
			}
		}
		bp.scores, bp.k = v, k
	}
	if m.labelOut >= 0 {
		t := outs[m.labelOut]
		if t.Len() != rows {
			return nil, errdefs.Invalid("output %q has shape %v for %d rows: a label output needs one label per row", t.Name, t.Shape, rows)
		}
		bp.labels = tensorLabels(t)
		return bp, nil
	}
	bp.labels = make([]string, rows)
	for r := range rows {
		s := bp.scores[r*bp.k : (r+1)*bp.k]
		if bp.k == 1 {
			bp.labels[r] = m.negative
			if s[0] >= 0.5 {
				bp.labels[r] = m.positive
			}
			continue
		}
		best := 0
		for j := range s {
			if s[j] > s[best] {
				best = j
			}
		}
		bp.labels[r] = classes[best]
	}
	return bp, nil
}

func tensorLabels(t *tensor.Tensor) []string {
	n := t.Len()
	out := make([]string, n)
	switch d := t.Data.(type) {
	case []string:
		copy(out, d)
	case []bool:
		for i, b := range d {
			out[i] = "0"
			if b {
				out[i] = "1"
			}
		}
	default:
		v, _ := t.Float64s()
		for i, x := range v {
			out[i] = formatNumber(x)
		}
	}
	return out
}

// canonicalLabel is the text form of a class name as a bool column gives
// it: "true" becomes "1", "false" "0".
func canonicalLabel(s string) string {
	switch strings.ToLower(s) {
	case "true":
		return "1"
	case "false":
		return "0"
	}
	return s
}

func formatNumber(x float64) string {
	if x == math.Trunc(x) && math.Abs(x) < 1e15 {
		return strconv.FormatInt(int64(x), 10)
	}
	return strconv.FormatFloat(x, 'g', -1, 64)
}

// columnLabel returns row i of a label or slice column as text, and false
// for a null.
func columnLabel(c *table.Column, i int) (string, bool) {
	if c.Null(i) {
		return "", false
	}
	switch c.Type {
	case table.String:
		return c.Str(i), true
	case table.Bool:
		if c.Bools[i] {
			return "1", true
		}
		return "0", true
	case table.Int64:
		return strconv.FormatInt(c.Ints[i], 10), true
	case table.Float64:
		return formatNumber(c.Floats[i]), true
	}
	return c.Format(i, nil), true
}
