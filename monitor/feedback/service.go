package feedback

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/evaluate"
	"github.com/kiln-ml/kiln/monitor/predlog"
)

// Predictions is where logged predictions come from (a *predlog.Reader):
// Scan calls fn with the rows logged for the endpoint in [from, to), in
// batches whose columns are named by the schema given with each batch
// (predlog's column names: predlog.ColTimestamp, predlog.ColRequestID,
// predlog.ColRow, predlog.ColRoute, "inputs.<feature>", "outputs.<name>").
type Predictions interface {
	Scan(ctx context.Context, endpoint string, from, to time.Time, fn func(table.Schema, *table.Batch) error) error
}

// Bounds and defaults of a Service.
const (
	// DefaultMinQualityLabels is the fewest labelled predictions that
	// Quality reports a metric over (ok is false below).
	DefaultMinQualityLabels = 30
	// DefaultMaxLabels bounds the labels one query loads.
	DefaultMaxLabels = 10_000_000
	// MaxWindows bounds the windows of one query.
	MaxWindows = 10_000
	// MaxSliceColumns bounds Query.SliceBy.
	MaxSliceColumns = 8
	// LabelClockSkew is how much earlier than a window's start labels
	// are looked for: a label cannot arrive before its prediction, but
	// the clocks of two replicas may differ by this much.
	LabelClockSkew = time.Minute
	// ProbabilityPrefix starts the output columns of class probabilities:
	// "outputs.probabilities_0", "outputs.probabilities_1", ….
	ProbabilityPrefix = predlog.OutputPrefix + "probabilities"
	// SliceRoute slices by the endpoint route (the route column).
	SliceRoute = "route"
)

// Service joins labels to logged predictions and computes performance.
type Service struct {
	store      *Store
	preds      Predictions
	minQuality int
	maxLabels  int
	now        func() time.Time
}

// Option configures a Service.
type Option func(*Service)

// WithMinQualityLabels sets the fewest labelled predictions Quality
// reports a metric over (DefaultMinQualityLabels by default).
func WithMinQualityLabels(n int) Option { return func(s *Service) { s.minQuality = n } }

// WithMaxLabels bounds the labels one query loads (DefaultMaxLabels by
// default).
func WithMaxLabels(n int) Option { return func(s *Service) { s.maxLabels = n } }

// WithClock sets the clock (for tests).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// NewService returns a Service over the labels of st and the predictions
// of p.
func NewService(st *Store, p Predictions, opts ...Option) *Service {
	s := &Service{store: st, preds: p, minQuality: DefaultMinQualityLabels, maxLabels: DefaultMaxLabels, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Store returns the Service's label store.
func (s *Service) Store() *Store { return s.store }

// Put stores labels (Store.Put).
func (s *Service) Put(ctx context.Context, endpoint string, labels []Label) (int, error) {
	return s.store.Put(ctx, endpoint, labels)
}

// Get returns one request's labels (Store.Get).
func (s *Service) Get(ctx context.Context, endpoint, requestID string) ([]Label, error) {
	return s.store.Get(ctx, endpoint, requestID)
}

// Query selects the predictions and metrics of Performance.
type Query struct {
	Endpoint string
	// From and To bound the prediction timestamps: [From, To). To is now
	// when zero.
	From, To time.Time
	// Window splits [From, To) into windows of this length from From
	// (the last may be shorter); 0 is one window.
	Window time.Duration
	// Task is evaluate.Classification or evaluate.Regression; empty
	// detects it: classification when a label is a string or a bool, or
	// when every label is an integer and the model gives class
	// probabilities; regression otherwise.
	Task evaluate.Task
	// Metrics are package evaluate's metric names; empty picks the
	// task's defaults (DefaultMetrics).
	Metrics []string
	// Prediction is the output column of the predicted label or value,
	// with or without "outputs."; empty picks outputs.label, else
	// outputs.predictions, else the one output that is not a probability.
	Prediction string
	// PositiveClass is the class that binary precision, recall, F1 and
	// ROC AUC measure (evaluate's default when empty: "1" when it is a
	// class, else the greatest).
	PositiveClass string
	// SliceBy lists columns to compute the metrics per value of: "route",
	// an input feature ("inputs.country", or just "country"), or another
	// column of the log ("model_version").
	SliceBy []string
	// Route keeps only the predictions of one route or variant. Mirrored
	// (shadow) copies count only when Route is "shadow".
	Route string
}

// Performance is the result of a Query.
type Performance struct {
	Endpoint string        `json:"endpoint"`
	Task     evaluate.Task `json:"task"`
	From     time.Time     `json:"from"`
	To       time.Time     `json:"to"`
	// Window is the window length ("0s": one window).
	Window string `json:"window"`
	// Prediction is the output column the metrics compare with the labels.
	Prediction string `json:"prediction,omitempty"`
	// Classes names the model's classes in order: class k is the label
	// that output column outputs.probabilities_k gives the probability of,
	// and the label a numeric prediction k stands for when the labels are
	// not numbers. Empty when unknown.
	Classes       []string `json:"classes,omitempty"`
	PositiveClass string   `json:"positive_class,omitempty"`
	Metrics       []string `json:"metrics"`
	// Labelled and Predictions total the windows.
	Labelled    int64 `json:"labelled"`
	Predictions int64 `json:"predictions"`
	// Notes explain what could not be used (probability columns that
	// cannot be mapped to classes, rows skipped).
	Notes   []string `json:"notes,omitempty"`
	Windows []Window `json:"windows"`
}

// Window is the performance over the predictions made in [Start, End).
type Window struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Labelled is the number of predictions that have a label: the rows
	// the metrics are computed over.
	Labelled int64 `json:"labelled"`
	// Predictions is the number of successful predictions logged.
	Predictions int64              `json:"predictions"`
	Metrics     map[string]float64 `json:"metrics"`
	// Undefined gives the reason of each requested metric that has no
	// value in this window (one class present for ROC AUC, …).
	Undefined map[string]string `json:"undefined,omitempty"`
	// Slices holds, per slicing column, per value, the metrics of the
	// labelled predictions with that value.
	Slices map[string]map[string]map[string]float64 `json:"slices,omitempty"`
	// SliceLabelled counts the labelled predictions of each slice.
	SliceLabelled map[string]map[string]int64 `json:"slice_labelled,omitempty"`
}

// DefaultMetrics returns the metrics a query computes when it names none:
// for classification accuracy, precision, recall, F1 (the _macro variants
// when there are more than two classes) and, when the model gives
// probabilities, ROC AUC (roc_auc_ovr for more than two classes) and log
// loss; for regression MAE, RMSE, MAPE and R².
func DefaultMetrics(task evaluate.Task, classes int, scores bool) []string {
	if task == evaluate.Regression {
		return []string{"mae", "rmse", "mape", "r2"}
	}
	out := []string{"accuracy", "precision", "recall", "f1"}
	auc := "roc_auc"
	if classes > 2 {
		out = []string{"accuracy", "precision_macro", "recall_macro", "f1_macro"}
		auc = "roc_auc_ovr"
	}
	if scores {
		out = append(out, auc, "log_loss")
	}
	return out
}

type labelKeyT struct {
	id  string
	row int64
}

// labelSet is the labels of a query, by key, and what their values say
// about the task.
type labelSet struct {
	byKey       map[labelKeyT]any
	nonNumeric  bool // a string or bool label
	nonIntegral bool // a number with a fraction
	classes     map[string]bool
	tooMany     bool // more than evaluate.DefaultMaxLabels classes
}

func (s *Service) loadLabels(ctx context.Context, endpoint string, since time.Time) (*labelSet, error) {
	ls := &labelSet{byKey: map[labelKeyT]any{}, classes: map[string]bool{}}
	errTooMany := errors.New("too many labels")
	err := s.store.Since(ctx, endpoint, since, func(l Label) error {
		if len(ls.byKey) >= s.maxLabels {
			return errTooMany
		}
		ls.byKey[labelKeyT{l.RequestID, l.Row}] = l.Value
		switch v := l.Value.(type) {
		case float64:
			if v != math.Trunc(v) {
				ls.nonIntegral = true
			}
		default:
			ls.nonNumeric = true
		}
		if !ls.tooMany {
			ls.classes[ClassName(l.Value)] = true
			if len(ls.classes) > evaluate.DefaultMaxLabels {
				ls.tooMany, ls.classes = true, nil
			}
		}
		return nil
	})
	if errors.Is(err, errTooMany) {
		return nil, errdefs.TooLarge("More than %d labels were received since %s: query a later or shorter range", s.maxLabels, since.UTC().Format(time.RFC3339))
	}
	return ls, err
}

// sortClasses orders class names as sklearn's unique_labels does:
// numerically when every name is a number, else as strings.
func sortClasses(names []string) []string {
	out := append([]string(nil), names...)
	nums := make(map[string]float64, len(out))
	for _, n := range out {
		v, err := strconv.ParseFloat(n, 64)
		if err != nil || math.IsNaN(v) {
			sort.Strings(out)
			return out
		}
		nums[n] = v
	}
	sort.SliceStable(out, func(i, j int) bool {
		if nums[out[i]] != nums[out[j]] {
			return nums[out[i]] < nums[out[j]]
		}
		return out[i] < out[j]
	})
	return out
}

func (q *Query) check(now time.Time) error {
	if err := checkEndpoint(q.Endpoint); err != nil {
		return err
	}
	if q.To.IsZero() {
		q.To = now
	}
	if q.From.IsZero() {
		return errdefs.Invalid("The start of the range (from) is required")
	}
	if !q.From.Before(q.To) {
		return errdefs.Invalid("The range is empty: from %s is not before to %s", q.From.UTC().Format(time.RFC3339), q.To.UTC().Format(time.RFC3339))
	}
	if q.Window < 0 {
		return errdefs.Invalid("The window %v is negative", q.Window)
	}
	if q.Window > 0 && (q.To.Sub(q.From)+q.Window-1)/q.Window > MaxWindows {
		return errdefs.Invalid("The range holds more than %d windows of %v: choose a longer window", MaxWindows, q.Window)
	}
	switch q.Task {
	case "", evaluate.Classification, evaluate.Regression:
	default:
		return errdefs.Invalid("Unknown task %q: want classification or regression", q.Task)
	}
	for _, m := range q.Metrics {
		info, ok := evaluate.Lookup(m)
		if !ok {
			return errdefs.Invalid("Unknown metric %q (known: %s)", clip(m), strings.Join(evaluate.MetricNames(""), ", "))
		}
		if q.Task != "" && info.Task != q.Task {
			return errdefs.Invalid("Metric %q is a %s metric, and the task is %s", m, info.Task, q.Task)
		}
	}
	if len(q.SliceBy) > MaxSliceColumns {
		return errdefs.Invalid("At most %d slice columns", MaxSliceColumns)
	}
	for _, c := range q.SliceBy {
		if c == "" {
			return errdefs.Invalid("An empty slice column")
		}
	}
	return nil
}

// Performance joins the labels of q.Endpoint to its predictions in
// [q.From, q.To) by (request id, row) and computes the metrics per window
// of the prediction timestamps and per slice, over the predictions that
// have a label. Labels received before From (less LabelClockSkew) are not
// looked at: a label cannot arrive before its prediction.
func (s *Service) Performance(ctx context.Context, q Query) (*Performance, error) {
	if err := q.check(s.now()); err != nil {
		return nil, err
	}
	labels, err := s.loadLabels(ctx, q.Endpoint, q.From.Add(-LabelClockSkew))
	if err != nil {
		return nil, err
	}
	j := newJoin(q, labels)
	if s.preds != nil {
		if err := s.preds.Scan(ctx, q.Endpoint, q.From, q.To, j.batch); err != nil {
			return nil, err
		}
	}
	return j.result()
}

// Quality implements deploy.QualitySource: the metric over the labelled
// predictions of the endpoint's route (every route when empty) made since
// since. ok is false when fewer than the minimum (DefaultMinQualityLabels,
// WithMinQualityLabels) have a label, or when the metric is not defined
// on them (one class present for ROC AUC).
func (s *Service) Quality(ctx context.Context, endpoint, route, metric string, since time.Time) (float64, bool, error) {
	p, err := s.Performance(ctx, Query{Endpoint: endpoint, From: since, Route: route, Metrics: []string{metric}})
	if err != nil {
		return 0, false, err
	}
	if len(p.Windows) == 0 || p.Labelled < int64(s.minQuality) {
		return 0, false, nil
	}
	v, ok := p.Windows[0].Metrics[metric]
	return v, ok, nil
}

// group accumulates one set of rows: a window, or a slice of one.
type group struct {
	cls *evaluate.Classifier
	reg *evaluate.Regressor
}

func (g *group) Count() int64 {
	if g.cls != nil {
		return g.cls.Count()
	}
	return g.reg.Count()
}

func (g *group) Value(name string) (float64, error) {
	if g.cls != nil {
		return g.cls.Value(name)
	}
	return g.reg.Value(name)
}

// row is one labelled prediction, as the accumulators take it.
type row struct {
	truth, pred string
	y, yhat     float64
	scores      []float64
}

func (g *group) add(r *row) error {
	if g.reg != nil {
		return g.reg.Add(r.y, r.yhat)
	}
	t, err := g.cls.Label(r.truth)
	if err != nil {
		return err
	}
	p, err := g.cls.Label(r.pred)
	if err != nil {
		return err
	}
	return g.cls.Add(t, p, r.scores)
}

type windowAcc struct {
	predictions int64
	all         *group
	slices      []*evaluate.Slices[*group]
}

// join is the state of one Performance query.
type join struct {
	q      Query
	labels *labelSet
	// fixed at the first batch with a prediction column:
	started       bool
	task          evaluate.Task
	prediction    string
	classes       []string // the model's classes, when known
	k             int      // probability columns of the first batch
	scoreClasses  []string // nil: no usable scores
	positive      string
	metrics       []string
	notes         []string
	windows       []*windowAcc
	skipped       int64
	skipReason    string
	labelNumeric  bool
	predNumeric   bool
	missingSlices map[string]bool
}

func newJoin(q Query, labels *labelSet) *join {
	j := &join{q: q, labels: labels, missingSlices: map[string]bool{}}
	n := 1
	if q.Window > 0 {
		n = int((q.To.Sub(q.From) + q.Window - 1) / q.Window)
	}
	j.windows = make([]*windowAcc, n)
	for i := range j.windows {
		j.windows[i] = &windowAcc{}
	}
	return j
}

func (j *join) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	for _, n := range j.notes {
		if n == msg {
			return
		}
	}
	if len(j.notes) < 20 {
		j.notes = append(j.notes, msg)
	}
}

func (j *join) newGroup() *group {
	if j.task == evaluate.Regression {
		return &group{reg: evaluate.NewRegressor()}
	}
	return &group{cls: evaluate.NewClassifier(evaluate.ClassifierOptions{ScoreClasses: j.scoreClasses, PositiveClass: j.positive})}
}

// probColumns returns the probability columns of a schema in class order
// (outputs.probabilities_0 …, or one outputs.probabilities column), or
// nil when they do not number 0..k-1.
func probColumns(s table.Schema) (idx []int, single bool) {
	byK := map[int]int{}
	maxK := -1
	for i, f := range s.Fields {
		if f.Name == ProbabilityPrefix && f.Type.Numeric() {
			return []int{i}, true
		}
		rest, ok := strings.CutPrefix(f.Name, ProbabilityPrefix+"_")
		if !ok || !f.Type.Numeric() {
			continue
		}
		k, err := strconv.Atoi(rest)
		if err != nil || k < 0 || k > evaluate.DefaultMaxLabels {
			continue
		}
		byK[k] = i
		maxK = max(maxK, k)
	}
	if maxK < 0 || len(byK) != maxK+1 {
		return nil, false
	}
	idx = make([]int, maxK+1)
	for k := range idx {
		idx[k] = byK[k]
	}
	return idx, false
}

func isProbability(name string) bool { return strings.HasPrefix(name, ProbabilityPrefix) }

// predictionColumn picks the output column of the predictions.
func (j *join) predictionColumn(s table.Schema) (string, error) {
	if p := j.q.Prediction; p != "" {
		if !strings.HasPrefix(p, predlog.OutputPrefix) {
			p = predlog.OutputPrefix + p
		}
		return p, nil
	}
	for _, c := range []string{predlog.OutputPrefix + "label", predlog.OutputPrefix + "predictions"} {
		if s.Index(c) >= 0 {
			return c, nil
		}
	}
	var outs []string
	for _, f := range s.Fields {
		if strings.HasPrefix(f.Name, predlog.OutputPrefix) && !isProbability(f.Name) {
			outs = append(outs, f.Name)
		}
	}
	if len(outs) == 1 {
		return outs[0], nil
	}
	if len(outs) == 0 {
		return "", nil // a batch of failed requests, or of probabilities only
	}
	return "", errdefs.Invalid("Cannot tell which output is the prediction (outputs: %s): set prediction", strings.Join(outs, ", "))
}

// start fixes the task, the classes and the metrics from the first batch
// that has the prediction column.
func (j *join) start(s table.Schema, predCol int) error {
	j.started = true
	f := s.Fields[predCol]
	j.predNumeric = f.Type.Numeric() || f.Type == table.Bool
	probs, single := probColumns(s)
	if single {
		j.k = 1
	} else {
		j.k = len(probs)
	}
	ls := j.labels
	j.task = j.q.Task
	if j.task == "" {
		switch {
		case ls.nonNumeric:
			j.task = evaluate.Classification
		case !ls.nonIntegral && j.k > 0:
			j.task = evaluate.Classification
		case f.Type == table.String || f.Type == table.Bool:
			j.task = evaluate.Classification
		default:
			j.task = evaluate.Regression
		}
	}
	for _, m := range j.q.Metrics {
		if info, _ := evaluate.Lookup(m); info.Task != j.task {
			return errdefs.Invalid("Metric %q is a %s metric, and the task is %s (set task to override the detection)", m, info.Task, j.task)
		}
	}
	if j.task == evaluate.Classification {
		if ls.tooMany {
			return errdefs.Invalid("The labels have more than %d distinct values: is the target continuous? Use task=regression", evaluate.DefaultMaxLabels)
		}
		names := make([]string, 0, len(ls.classes))
		for c := range ls.classes {
			names = append(names, c)
		}
		names = sortClasses(names)
		switch {
		case j.k == 0 || len(names) == j.k:
			j.classes = names
		case len(names) < j.k && allIndices(names, j.k):
			// Labels 0..k-1 encode the classes; some did not occur.
			j.classes = make([]string, j.k)
			for i := range j.classes {
				j.classes[i] = strconv.Itoa(i)
			}
		case single:
			j.classes = names
		default:
			j.note("the model gives %d class probabilities and the labels have %d classes (%s): the probability columns cannot be mapped to classes, so ROC AUC and log loss are not computed",
				j.k, len(names), strings.Join(firstN(names, 10), ", "))
		}
		j.positive = j.q.PositiveClass
		if j.positive == "" {
			j.positive = defaultPositive(j.classes)
		}
		switch {
		case single && j.positive != "":
			j.scoreClasses = []string{j.positive}
			j.note("the single probability column %s is taken as the probability of the positive class %q", ProbabilityPrefix, j.positive)
		case j.k > 0 && len(j.classes) == j.k:
			j.scoreClasses = j.classes
		}
		if j.k > 0 && j.scoreClasses == nil {
			j.k = -1 // scores present but unusable
		}
	}
	if len(j.q.Metrics) > 0 {
		j.metrics = j.q.Metrics
	} else {
		j.metrics = DefaultMetrics(j.task, len(j.classes), j.scoreClasses != nil)
	}
	return nil
}

func defaultPositive(classes []string) string {
	for _, c := range classes {
		if c == "1" {
			return "1"
		}
	}
	if len(classes) > 0 {
		return classes[len(classes)-1]
	}
	return ""
}

// allIndices says whether every name is an integer in [0, k).
func allIndices(names []string, k int) bool {
	for _, n := range names {
		i, err := strconv.Atoi(n)
		if err != nil || i < 0 || i >= k {
			return false
		}
	}
	return true
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], "…")
	}
	return s
}

// sliceColumn resolves a slicing column name in a schema.
func sliceColumn(s table.Schema, name string) int {
	if name == SliceRoute {
		return s.Index(predlog.ColRoute)
	}
	if i := s.Index(name); i >= 0 {
		return i
	}
	return s.Index(predlog.InputPrefix + name)
}

// millis returns row i of a timestamp column in milliseconds.
func millis(c *table.Column, f table.Field, i int) int64 {
	v := c.Ints[i]
	if c.Type != table.Timestamp {
		return v
	}
	switch f.Unit {
	case table.Microsecond:
		return floorDiv(v, 1000)
	case table.Nanosecond:
		return floorDiv(v, 1_000_000)
	}
	return v
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// cellText is row i of a column as a slice key or request id.
func cellText(c *table.Column, f table.Field, i int) string {
	if c.Null(i) {
		return "null"
	}
	switch c.Type {
	case table.String:
		return c.Str(i)
	case table.Int64:
		return strconv.FormatInt(c.Ints[i], 10)
	case table.Float64:
		return strconv.FormatFloat(c.Floats[i], 'g', -1, 64)
	case table.Bool:
		return strconv.FormatBool(c.Bools[i])
	}
	return c.Format(i, &f)
}

func (j *join) batch(s table.Schema, b *table.Batch) error {
	tsCol, idCol := s.Index(predlog.ColTimestamp), s.Index(predlog.ColRequestID)
	if tsCol < 0 || idCol < 0 || (b.Columns[tsCol].Type != table.Timestamp && b.Columns[tsCol].Type != table.Int64) {
		return fmt.Errorf("prediction log batch without %s and %s columns", predlog.ColTimestamp, predlog.ColRequestID)
	}
	rowCol, routeCol := s.Index(predlog.ColRow), s.Index(predlog.ColRoute)
	statusCol, errCol := s.Index(predlog.ColStatus), s.Index(predlog.ColError)
	predName, err := j.predictionColumn(s)
	if err != nil {
		return err
	}
	predCol := -1
	if predName != "" {
		predCol = s.Index(predName)
	}
	if predCol >= 0 && !j.started {
		j.prediction = predName
		if err := j.start(s, predCol); err != nil {
			return err
		}
	}
	if predCol >= 0 && predName != j.prediction {
		j.note("some segments have the prediction in %s, not %s: they are left out", predName, j.prediction)
		predCol = -1
	}
	var probs []int
	if j.started && j.k != 0 {
		p, single := probColumns(s)
		if single || len(p) == len(j.scoreClasses) || j.k < 0 {
			probs = p
		}
		if j.scoreClasses != nil && len(p) != len(j.scoreClasses) && !single {
			j.note("some segments have %d probability columns, not %d: their rows are left out", len(p), len(j.scoreClasses))
			predCol = -1
		}
	}
	var slices []int
	for _, name := range j.q.SliceBy {
		c := sliceColumn(s, name)
		if c < 0 && !j.missingSlices[name] {
			j.missingSlices[name] = true
			j.note("no column %q to slice by in some segments: their rows are in slice \"null\"", name)
		}
		slices = append(slices, c)
	}
	from, to := j.q.From.UnixMilli(), j.q.To.UnixMilli()
	wms := j.q.Window.Milliseconds()
	tsField := s.Fields[tsCol]
	scores := make([]float64, max(len(probs), 0))
	var r row
	for i := 0; i < b.Len; i++ {
		ts := millis(&b.Columns[tsCol], tsField, i)
		if ts < from || ts >= to {
			continue
		}
		if routeCol >= 0 {
			route := cellText(&b.Columns[routeCol], s.Fields[routeCol], i)
			if j.q.Route != "" && route != j.q.Route {
				continue
			}
			if j.q.Route == "" && route == "shadow" {
				continue
			}
		}
		if statusCol >= 0 && !b.Columns[statusCol].Null(i) && b.Columns[statusCol].Float(i) >= 400 {
			continue
		}
		if errCol >= 0 && !b.Columns[errCol].Null(i) && b.Columns[errCol].Type == table.String && len(b.Columns[errCol].Bytes(i)) > 0 {
			continue
		}
		if predCol < 0 || b.Columns[predCol].Null(i) {
			continue
		}
		w := 0
		if wms > 0 {
			w = int((ts - from) / wms)
		}
		wa := j.windows[w]
		wa.predictions++
		if b.Columns[idCol].Null(i) {
			continue
		}
		var rowIdx int64
		if rowCol >= 0 && !b.Columns[rowCol].Null(i) {
			rowIdx = int64(b.Columns[rowCol].Float(i))
		}
		label, ok := j.labels.byKey[labelKeyT{cellText(&b.Columns[idCol], s.Fields[idCol], i), rowIdx}]
		if !ok {
			continue
		}
		if reason := j.fill(&r, label, &b.Columns[predCol], i, b, probs, scores); reason != "" {
			j.skipped++
			if j.skipReason == "" {
				j.skipReason = reason
			}
			continue
		}
		if wa.all == nil {
			wa.all = j.newGroup()
			wa.slices = make([]*evaluate.Slices[*group], len(j.q.SliceBy))
			for k := range wa.slices {
				wa.slices[k] = evaluate.NewSlices(0, j.newGroup)
			}
		}
		if err := wa.all.add(&r); err != nil {
			return err
		}
		for k, c := range slices {
			key := "null"
			if c >= 0 {
				key = cellText(&b.Columns[c], s.Fields[c], i)
			}
			g, err := wa.slices[k].Get(key)
			if err != nil {
				return fmt.Errorf("slice by %q: %w", j.q.SliceBy[k], err)
			}
			if err := g.add(&r); err != nil {
				return err
			}
		}
	}
	return nil
}

// fill sets r from a label and row i of the prediction column; a non-empty
// result says why the row cannot be used.
func (j *join) fill(r *row, label any, pc *table.Column, i int, b *table.Batch, probs []int, scores []float64) string {
	if j.task == evaluate.Regression {
		switch v := label.(type) {
		case float64:
			r.y = v
		case bool:
			r.y = 0
			if v {
				r.y = 1
			}
		default:
			return fmt.Sprintf("label %q is not a number", clip(ClassName(label)))
		}
		if !pc.Type.Numeric() && pc.Type != table.Bool {
			return "the prediction is not a number"
		}
		r.yhat = pc.Float(i)
		if math.IsNaN(r.yhat) || math.IsInf(r.yhat, 0) {
			return fmt.Sprintf("the prediction is %v", r.yhat)
		}
		return ""
	}
	r.truth = ClassName(label)
	switch pc.Type {
	case table.String:
		r.pred = pc.Str(i)
	case table.Bool:
		r.pred = strconv.FormatBool(pc.Bools[i])
	default:
		v := pc.Float(i)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Sprintf("the prediction is %v", v)
		}
		r.pred = strconv.FormatFloat(v, 'g', -1, 64)
		// A numeric prediction of string labels is a class index.
		if j.labels.nonNumeric && v == math.Trunc(v) && v >= 0 && int(v) < len(j.classes) {
			r.pred = j.classes[int(v)]
		}
	}
	r.scores = nil
	if j.scoreClasses != nil {
		for k, c := range probs {
			col := &b.Columns[c]
			if col.Null(i) {
				return "a class probability is null"
			}
			scores[k] = col.Float(i)
			if math.IsNaN(scores[k]) || math.IsInf(scores[k], 0) {
				return fmt.Sprintf("a class probability is %v", scores[k])
			}
		}
		r.scores = scores
	}
	return ""
}

func (j *join) result() (*Performance, error) {
	p := &Performance{Endpoint: j.q.Endpoint, Task: j.task, From: j.q.From.UTC(), To: j.q.To.UTC(), Window: j.q.Window.String(),
		Prediction: j.prediction, Classes: j.classes, PositiveClass: j.positive, Metrics: j.metrics, Windows: make([]Window, len(j.windows))}
	if !j.started {
		// No prediction to compare with: the task comes from the labels.
		p.Task = j.q.Task
		if p.Task == "" {
			p.Task = evaluate.Regression
			if j.labels.nonNumeric {
				p.Task = evaluate.Classification
			}
		}
		p.Metrics = j.q.Metrics
		if len(p.Metrics) == 0 {
			p.Metrics = DefaultMetrics(p.Task, len(j.labels.classes), false)
		}
	}
	if j.task == evaluate.Regression {
		p.Classes, p.PositiveClass = nil, ""
	}
	if j.skipped > 0 {
		j.note("%d labelled predictions were left out: %s", j.skipped, j.skipReason)
	}
	p.Notes = j.notes
	for i, wa := range j.windows {
		start := j.q.From.Add(time.Duration(i) * j.q.Window)
		end := j.q.To
		if j.q.Window > 0 {
			end = start.Add(j.q.Window)
			if end.After(j.q.To) {
				end = j.q.To
			}
		}
		w := Window{Start: start.UTC(), End: end.UTC(), Predictions: wa.predictions, Metrics: map[string]float64{}}
		p.Predictions += wa.predictions
		if wa.all != nil {
			w.Labelled = wa.all.Count()
			p.Labelled += w.Labelled
			w.Metrics, w.Undefined = metricValues(wa.all, p.Metrics)
			for k, sl := range wa.slices {
				name := j.q.SliceBy[k]
				if w.Slices == nil {
					w.Slices = map[string]map[string]map[string]float64{}
					w.SliceLabelled = map[string]map[string]int64{}
				}
				w.Slices[name] = map[string]map[string]float64{}
				w.SliceLabelled[name] = map[string]int64{}
				for _, key := range sl.Keys() {
					g, _ := sl.Get(key)
					w.Slices[name][key], _ = metricValues(g, p.Metrics)
					w.SliceLabelled[name][key] = g.Count()
				}
			}
		}
		p.Windows[i] = w
	}
	return p, nil
}

// metricValues reads the metrics of a group; undefined ones are left out
// of values and explained in undefined.
func metricValues(g *group, metrics []string) (map[string]float64, map[string]string) {
	values := make(map[string]float64, len(metrics))
	var undefined map[string]string
	for _, m := range metrics {
		v, err := g.Value(m)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			if undefined == nil {
				undefined = map[string]string{}
			}
			msg := fmt.Sprintf("%v", v)
			if err != nil {
				msg = errdefs.Message(err)
			}
			undefined[m] = msg
			continue
		}
		values[m] = v
	}
	return values, undefined
}
