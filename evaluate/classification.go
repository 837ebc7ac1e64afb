package evaluate

import (
	"math"
	"slices"
	"sort"
	"strings"
)

// Bounds of a Classifier.
const (
	// DefaultMaxScores bounds the score values a Classifier keeps for ROC
	// AUC (rows × score columns): 2^25 values, 256 MiB.
	DefaultMaxScores = 1 << 25
	// DefaultMaxLabels bounds the distinct labels of a Classifier.
	DefaultMaxLabels = 1000
)

// ClassifierOptions configure a Classifier.
type ClassifierOptions struct {
	// ScoreClasses names the columns of the scores given to Add (a
	// probability output's class labels), in order. Nil when the model
	// gives no scores: then ROC AUC and log loss are undefined. One column
	// is the probability (or score) of that class in a binary task; every
	// other label gets one minus it.
	ScoreClasses []string
	// PositiveClass is the label that precision, recall, F1 and ROC AUC
	// of a binary target measure. Empty picks "1" when it is a label (as
	// sklearn's pos_label=1), else the greatest label.
	PositiveClass string
	// MaxScores bounds the score values kept for ROC AUC
	// (DefaultMaxScores when 0; negative keeps none). Past it, ROC AUC is
	// an error; the other metrics stay exact.
	MaxScores int
	// MaxLabels bounds the distinct labels (DefaultMaxLabels when 0).
	MaxLabels int
}

// Classifier accumulates the outcomes of a classifier: a confusion matrix,
// the log loss, and the scores that ROC AUC needs. It is not safe for
// concurrent use; accumulate in several and Merge them.
type Classifier struct {
	opts      ClassifierOptions
	k         int
	scoreCol  map[string]int
	labels    []string
	index     map[string]int
	conf      [][]int64 // conf[true][predicted]
	n         int64
	scores    []float64 // k per row kept
	truth     []int32
	maxScores int
	dropped   bool // scores past MaxScores were not kept
	logLoss   float64
	logErr    error
}

// NewClassifier returns an empty Classifier.
func NewClassifier(opts ClassifierOptions) *Classifier {
	c := &Classifier{opts: opts, k: len(opts.ScoreClasses), index: map[string]int{}, scoreCol: map[string]int{}}
	for i, l := range opts.ScoreClasses {
		if _, dup := c.scoreCol[l]; !dup {
			c.scoreCol[l] = i
		}
	}
	switch {
	case opts.MaxScores == 0:
		c.maxScores = DefaultMaxScores
	case opts.MaxScores > 0:
		c.maxScores = opts.MaxScores
	}
	if c.opts.MaxLabels <= 0 {
		c.opts.MaxLabels = DefaultMaxLabels
	}
	return c
}

// Count returns the number of rows added.
func (c *Classifier) Count() int64 { return c.n }

// Label returns the index of label s, adding it when new. Indices are
// what Add takes.
func (c *Classifier) Label(s string) (int, error) {
	if i, ok := c.index[s]; ok {
		return i, nil
	}
	if len(c.labels) >= c.opts.MaxLabels {
		return 0, invalidf(ErrInvalidInput, "more than %d distinct labels (%q is one too many): is the target continuous? Use a regression task", c.opts.MaxLabels, clip(s))
	}
	i := len(c.labels)
	c.labels = append(c.labels, s)
	c.index[s] = i
	for j := range c.conf {
		c.conf[j] = append(c.conf[j], 0)
	}
	c.conf = append(c.conf, make([]int64, i+1))
	return i, nil
}

// Add records one row: its true and predicted label (indices from Label)
// and, when the Classifier has ScoreClasses, its scores in that order.
func (c *Classifier) Add(trueLabel, predicted int, scores []float64) error {
	if trueLabel < 0 || trueLabel >= len(c.labels) || predicted < 0 || predicted >= len(c.labels) {
		return invalidf(ErrInvalidInput, "row %d: label index out of range", c.n)
	}
	if len(scores) != c.k {
		return invalidf(ErrInvalidInput, "row %d: %d scores for %d score classes", c.n, len(scores), c.k)
	}
	for j, s := range scores {
		if !finite(s) {
			return invalidf(ErrInvalidInput, "row %d: score of class %q is %v", c.n, c.opts.ScoreClasses[j], s)
		}
	}
	if c.k > 0 {
		c.addLogLoss(c.labels[trueLabel], scores)
		if !c.dropped && c.maxScores > 0 {
			if len(c.scores)+c.k > c.maxScores {
				c.dropped, c.scores, c.truth = true, nil, nil
			} else {
				c.scores = append(c.scores, scores...)
				c.truth = append(c.truth, int32(trueLabel))
			}
		}
		if c.maxScores == 0 {
			c.dropped = true
		}
	}
	c.conf[trueLabel][predicted]++
	c.n++
	return nil
}

// eps is float64's machine epsilon, sklearn's clipping bound for log loss.
const eps = 2.220446049250313e-16

func (c *Classifier) addLogLoss(truth string, scores []float64) {
	if c.logErr != nil {
		return
	}
	for j, s := range scores {
		if s < 0 || s > 1 {
			c.logErr = invalidf(ErrUndefined, "log_loss needs probabilities; row %d has score %v for class %q", c.n, s, c.opts.ScoreClasses[j])
			return
		}
	}
	var p float64
	if c.k == 1 {
		p = scores[0]
		if truth != c.opts.ScoreClasses[0] {
			p = 1 - p
		}
	} else {
		j, ok := c.scoreCol[truth]
		if !ok {
			c.logErr = invalidf(ErrUndefined, "log_loss: true label %q (row %d) is not one of the score classes %v", clip(truth), c.n, c.opts.ScoreClasses)
			return
		}
		p = scores[j]
	}
	p = min(max(p, eps), 1-eps)
	c.logLoss -= math.Log(p)
}

// Merge adds the rows of o, which must have the same score classes.
func (c *Classifier) Merge(o *Classifier) error {
	if !slices.Equal(c.opts.ScoreClasses, o.opts.ScoreClasses) {
		return invalidf(ErrInvalidInput, "merge: score classes differ (%v, %v)", c.opts.ScoreClasses, o.opts.ScoreClasses)
	}
	remap := make([]int, len(o.labels))
	for i, l := range o.labels {
		j, err := c.Label(l)
		if err != nil {
			return err
		}
		remap[i] = j
	}
	for i := range o.conf {
		for j, n := range o.conf[i] {
			c.conf[remap[i]][remap[j]] += n
		}
	}
	c.n += o.n
	switch {
	case o.logErr != nil && c.logErr == nil:
		c.logErr = o.logErr
	case c.logErr == nil:
		c.logLoss += o.logLoss
	}
	switch {
	case c.dropped:
	case o.dropped || len(c.scores)+len(o.scores) > c.maxScores:
		c.dropped, c.scores, c.truth = true, nil, nil
	default:
		c.scores = append(c.scores, o.scores...)
		for _, t := range o.truth {
			c.truth = append(c.truth, int32(remap[t]))
		}
	}
	return nil
}

// Labels returns the labels seen (true or predicted), in sklearn's order.
func (c *Classifier) Labels() []string { return sortLabels(c.labels) }

// ConfusionMatrix returns the labels in order and the counts: row i is
// the true label labels[i], column j the predicted label labels[j].
func (c *Classifier) ConfusionMatrix() ([]string, [][]int64) {
	labels := c.Labels()
	m := make([][]int64, len(labels))
	for i, t := range labels {
		m[i] = make([]int64, len(labels))
		for j, p := range labels {
			m[i][j] = c.conf[c.index[t]][c.index[p]]
		}
	}
	return labels, m
}

// PositiveClass returns the positive label of binary metrics: the
// option, else "1" when it is a label, else the greatest label.
func (c *Classifier) PositiveClass() string {
	if c.opts.PositiveClass != "" {
		return c.opts.PositiveClass
	}
	if _, ok := c.index["1"]; ok {
		return "1"
	}
	if labels := c.Labels(); len(labels) > 0 {
		return labels[len(labels)-1]
	}
	if c.k > 0 {
		return c.opts.ScoreClasses[c.k-1]
	}
	return ""
}

// counts returns, per label index, true positives, false positives,
// false negatives (support = tp + fn).
func (c *Classifier) counts(i int) (tp, fp, fn int64) {
	tp = c.conf[i][i]
	for j := range c.labels {
		if j != i {
			fp += c.conf[j][i]
			fn += c.conf[i][j]
		}
	}
	return tp, fp, fn
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0 // sklearn's zero_division default
	}
	return float64(a) / float64(b)
}

func prf(kind string, tp, fp, fn int64) float64 {
	switch kind {
	case "precision":
		return ratio(tp, tp+fp)
	case "recall":
		return ratio(tp, tp+fn)
	}
	return ratio(2*tp, 2*tp+fp+fn)
}

// Value returns the metric named name (see the package documentation).
func (c *Classifier) Value(name string) (float64, error) {
	info, ok := Lookup(name)
	if !ok || info.Task != Classification {
		return 0, unknownMetric(name, Classification)
	}
	if c.n == 0 {
		return 0, invalidf(ErrUndefined, "%s: no rows", name)
	}
	switch name {
	case "accuracy":
		var ok int64
		for i := range c.labels {
			ok += c.conf[i][i]
		}
		return float64(ok) / float64(c.n), nil
	case "precision", "recall", "f1":
		pos, err := c.binaryPositive(name)
		if err != nil {
			return 0, err
		}
		if pos < 0 {
			return 0, nil
		}
		tp, fp, fn := c.counts(pos)
		return prf(name, tp, fp, fn), nil
	case "roc_auc":
		return c.rocAUC(name, false)
	case "roc_auc_ovr":
		return c.rocAUC(name, true)
	case "log_loss":
		if c.k == 0 {
			return 0, invalidf(ErrUndefined, "log_loss needs the model's class probabilities, and it gives none")
		}
		if c.logErr != nil {
			return 0, c.logErr
		}
		return c.logLoss / float64(c.n), nil
	}
	kind, avg, _ := strings.Cut(name, "_")
	var tpSum, fpSum, fnSum, support int64
	var sum, weighted float64
	for i := range c.labels {
		tp, fp, fn := c.counts(i)
		tpSum, fpSum, fnSum, support = tpSum+tp, fpSum+fp, fnSum+fn, support+tp+fn
		v := prf(kind, tp, fp, fn)
		sum += v
		weighted += v * float64(tp+fn)
	}
	switch avg {
	case "micro":
		return prf(kind, tpSum, fpSum, fnSum), nil
	case "macro":
		return sum / float64(len(c.labels)), nil
	}
	if support == 0 {
		return 0, nil
	}
	return weighted / float64(support), nil
}

// binaryPositive returns the positive label's index (-1 when it never
// occurs) for a binary metric, or an error for a multiclass target.
func (c *Classifier) binaryPositive(name string) (int, error) {
	labels := c.Labels()
	if len(labels) > 2 {
		return 0, invalidf(ErrUndefined, "%s is for binary targets; these rows have %d labels %s: use %s_macro, %s_micro or %s_weighted",
			name, len(labels), listLabels(labels), name, name, name)
	}
	pos := c.PositiveClass()
	i, ok := c.index[pos]
	if !ok {
		if len(labels) == 2 {
			return 0, invalidf(ErrUndefined, "%s: positive class %q is not a label; the labels are %s", name, clip(pos), listLabels(labels))
		}
		return -1, nil
	}
	return i, nil
}

// trueLabels returns the indices of the labels that occur as true labels,
// in sklearn's order.
func (c *Classifier) trueLabels() []int {
	var present []string
	for i, l := range c.labels {
		var n int64
		for _, v := range c.conf[i] {
			n += v
		}
		if n > 0 {
			present = append(present, l)
		}
	}
	present = sortLabels(present)
	out := make([]int, len(present))
	for i, l := range present {
		out[i] = c.index[l]
	}
	return out
}

// rocAUC is binary ROC AUC of the positive class or, with ovr and more
// than two true labels, the one-vs-rest macro average.
func (c *Classifier) rocAUC(name string, ovr bool) (float64, error) {
	if c.k == 0 {
		return 0, invalidf(ErrUndefined, "%s needs the model's scores, and it gives none", name)
	}
	if c.dropped {
		return 0, invalidf(ErrUndefined, "%s needs every score; more than %d score values were given (raise the bound)", name, c.maxScores)
	}
	present := c.trueLabels()
	switch {
	case len(present) < 2:
		return 0, invalidf(ErrUndefined, "%s: only one class present in the true labels; ROC AUC is not defined in that case", name)
	case len(present) > 2 && !ovr:
		return 0, invalidf(ErrUndefined, "%s is for binary targets; these rows have %d true labels: use roc_auc_ovr", name, len(present))
	case len(present) == 2:
		pos := c.PositiveClass()
		pi, ok := c.index[pos]
		if !ok || (pi != present[0] && pi != present[1]) {
			return 0, invalidf(ErrUndefined, "%s: positive class %q is not a true label", name, clip(pos))
		}
		return c.binaryAUC(name, pi)
	}
	var sum float64
	for _, l := range present {
		v, err := c.binaryAUC(name, l)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum / float64(len(present)), nil
}

// binaryAUC is the ROC AUC of label index pos against every other true
// label, from the scores of pos: the Mann–Whitney U statistic with tied
// scores counted as half, which equals the trapezoidal area under sklearn's
// ROC curve.
func (c *Classifier) binaryAUC(name string, pos int) (float64, error) {
	label := c.labels[pos]
	col, flip := -1, false
	if c.k == 1 {
		col, flip = 0, c.opts.ScoreClasses[0] != label
	} else if j, ok := c.scoreCol[label]; ok {
		col = j
	}
	if col < 0 {
		return 0, invalidf(ErrUndefined, "%s: class %q has no score column (score classes %v)", name, clip(label), c.opts.ScoreClasses)
	}
	n := len(c.truth)
	type pt struct {
		s   float64
		pos bool
	}
	pts := make([]pt, n)
	var np int64
	for i := range n {
		s := c.scores[i*c.k+col]
		if flip {
			s = 1 - s
		}
		p := int(c.truth[i]) == pos
		if p {
			np++
		}
		pts[i] = pt{s, p}
	}
	nn := int64(n) - np
	if np == 0 || nn == 0 {
		return 0, invalidf(ErrUndefined, "%s: only one class present in the true labels; ROC AUC is not defined in that case", name)
	}
	sort.Slice(pts, func(i, j int) bool { return pts[i].s < pts[j].s })
	// U = Σ over positives of (negatives below + half the tied negatives).
	var u float64
	var below int64
	for i := 0; i < n; {
		j := i
		var p, q int64
		for ; j < n && pts[j].s == pts[i].s; j++ {
			if pts[j].pos {
				p++
			} else {
				q++
			}
		}
		u += float64(p) * (float64(below) + float64(q)/2)
		below += q
		i = j
	}
	return u / (float64(np) * float64(nn)), nil
}

func listLabels(labels []string) string {
	if len(labels) > 10 {
		return "[" + strings.Join(labels[:10], " ") + " …]"
	}
	return "[" + strings.Join(labels, " ") + "]"
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
