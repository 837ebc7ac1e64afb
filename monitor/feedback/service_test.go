package feedback

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/deploy"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/evaluate"
	"github.com/kiln-ml/kiln/monitor/predlog"
	"github.com/kiln-ml/kiln/store/storetest"
)

// The Service is the deploy Manager's source of labelled quality.
var _ deploy.QualitySource = (*Service)(nil)

// fakeLog is a prediction log in memory: batches of one schema.
type fakeLog struct {
	schema  table.Schema
	batches []*table.Batch
	scans   int
}

func (f *fakeLog) Scan(ctx context.Context, endpoint string, from, to time.Time, fn func(table.Schema, *table.Batch) error) error {
	f.scans++
	ts := f.schema.Index(predlog.ColTimestamp)
	for _, b := range f.batches {
		var keep []int
		for i := 0; i < b.Len; i++ {
			if ms := b.Columns[ts].Ints[i]; ms >= from.UnixMilli() && ms < to.UnixMilli() {
				keep = append(keep, i)
			}
		}
		if len(keep) == 0 {
			continue
		}
		if err := fn(f.schema, b.Take(keep)); err != nil {
			return err
		}
	}
	return nil
}

// logOf builds a fake log from columns of JSON values (the fixture's
// form): all-integer columns are int64 (timestamp a Timestamp), numbers
// float64, else strings.
func logOf(t testing.TB, cols map[string][]any, batchRows int) *fakeLog {
	t.Helper()
	names := make([]string, 0, len(cols))
	for n := range cols {
		names = append(names, n)
	}
	sort.Strings(names)
	f := &fakeLog{}
	n := 0
	for _, name := range names {
		vals := cols[name]
		n = len(vals)
		typ := table.Int64
		for _, v := range vals {
			switch x := v.(type) {
			case float64:
				if x != math.Trunc(x) && typ == table.Int64 {
					typ = table.Float64
				}
			case string:
				typ = table.String
			}
		}
		if name == predlog.ColTimestamp {
			typ = table.Timestamp
		}
		f.schema.Fields = append(f.schema.Fields, table.Field{Name: name, Type: typ, Unit: table.Millisecond})
	}
	for lo := 0; lo < n; lo += batchRows {
		hi := min(lo+batchRows, n)
		b := &table.Batch{Len: hi - lo, Columns: make([]table.Column, len(names))}
		for ci, name := range names {
			c := &b.Columns[ci]
			c.Type = f.schema.Fields[ci].Type
			for _, v := range cols[name][lo:hi] {
				switch c.Type {
				case table.Int64, table.Timestamp:
					c.Ints = append(c.Ints, int64(v.(float64)))
				case table.Float64:
					c.Floats = append(c.Floats, v.(float64))
				case table.String:
					s, ok := v.(string)
					if !ok {
						b, _ := json.Marshal(v)
						s = string(b)
					}
					c.Strs.AppendString(s)
				}
			}
		}
		f.batches = append(f.batches, b)
	}
	return f
}

type fixtureCase struct {
	Name    string           `json:"name"`
	Task    evaluate.Task    `json:"task"`
	Classes []string         `json:"classes"`
	Metrics []string         `json:"metrics"`
	Log     map[string][]any `json:"log"`
	Labels  []struct {
		RequestID string `json:"request_id"`
		Row       int64  `json:"row"`
		Label     any    `json:"label"`
	} `json:"labels"`
	Query struct {
		FromMS   int64    `json:"from_ms"`
		ToMS     int64    `json:"to_ms"`
		WindowMS int64    `json:"window_ms"`
		SliceBy  []string `json:"slice_by"`
		Route    string   `json:"route"`
	} `json:"query"`
	Windows []struct {
		StartMS     int64                                    `json:"start_ms"`
		EndMS       int64                                    `json:"end_ms"`
		Predictions int64                                    `json:"predictions"`
		Labelled    int64                                    `json:"labelled"`
		Metrics     map[string]float64                       `json:"metrics"`
		Slices      map[string]map[string]map[string]float64 `json:"slices"`
	} `json:"windows"`
}

func loadFixture(t *testing.T) []fixtureCase {
	t.Helper()
	data, err := os.ReadFile("testdata/performance.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Cases []fixtureCase `json:"cases"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Cases
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func compareMetrics(t *testing.T, where string, got, want map[string]float64) {
	t.Helper()
	for m, w := range want {
		g, ok := got[m]
		if !ok {
			t.Errorf("%s: no %s (want %v); got %v", where, m, w, got)
			continue
		}
		if !near(g, w) {
			t.Errorf("%s: %s = %v, sklearn %v", where, m, g, w)
		}
	}
	for m := range got {
		if _, ok := want[m]; !ok {
			t.Errorf("%s: %s = %v, which sklearn does not define here", where, m, got[m])
		}
	}
}

// TestPerformanceSklearn joins the fixture's labels to its predictions and
// compares every window and slice with scikit-learn (testdata/gen.py).
func TestPerformanceSklearn(t *testing.T) {
	for name, open := range storetest.TestDatabases(t) {
		t.Run(name, func(t *testing.T) {
			db := open(t)
			for _, c := range loadFixture(t) {
				t.Run(c.Name, func(t *testing.T) {
					ctx := context.Background()
					st := NewStore(db)
					endpoint := "ep-" + c.Name
					var labels []Label
					for _, l := range c.Labels {
						labels = append(labels, Label{RequestID: l.RequestID, Row: l.Row, Value: l.Label, Source: "test"})
					}
					// In several uploads: a later upload's label replaces an earlier one.
					for lo := 0; lo < len(labels); lo += 97 {
						hi := min(lo+97, len(labels))
						if n, err := st.Put(ctx, endpoint, labels[lo:hi]); err != nil || n != hi-lo {
							t.Fatalf("put: %d, %v", n, err)
						}
					}
					log := logOf(t, c.Log, 128)
					svc := NewService(st, log)
					q := Query{Endpoint: endpoint, From: time.UnixMilli(c.Query.FromMS), To: time.UnixMilli(c.Query.ToMS),
						Window: time.Duration(c.Query.WindowMS) * time.Millisecond, SliceBy: c.Query.SliceBy, Route: c.Query.Route}
					p, err := svc.Performance(ctx, q)
					if err != nil {
						t.Fatal(err)
					}
					if p.Task != c.Task {
						t.Fatalf("task %s, want %s", p.Task, c.Task)
					}
					if c.Classes != nil && !equal(p.Classes, c.Classes) {
						t.Errorf("classes %v, want %v", p.Classes, c.Classes)
					}
					if !equal(p.Metrics, c.Metrics) {
						t.Errorf("metrics %v, want %v", p.Metrics, c.Metrics)
					}
					if len(p.Windows) != len(c.Windows) {
						t.Fatalf("%d windows, want %d", len(p.Windows), len(c.Windows))
					}
					for i, w := range c.Windows {
						g := p.Windows[i]
						if g.Start.UnixMilli() != w.StartMS || g.End.UnixMilli() != w.EndMS {
							t.Errorf("window %d: [%v, %v), want [%d, %d)", i, g.Start, g.End, w.StartMS, w.EndMS)
						}
						if g.Labelled != w.Labelled || g.Predictions != w.Predictions {
							t.Errorf("window %d: %d labelled of %d, want %d of %d", i, g.Labelled, g.Predictions, w.Labelled, w.Predictions)
						}
						compareMetrics(t, "window "+g.Start.Format(time.TimeOnly), g.Metrics, w.Metrics)
						for col, vals := range w.Slices {
							if len(g.Slices[col]) != len(vals) && g.Labelled > 0 {
								t.Errorf("window %d slice %s: values %v, want %d", i, col, g.Slices[col], len(vals))
							}
							for v, want := range vals {
								compareMetrics(t, "window "+g.Start.Format(time.TimeOnly)+" "+col+"="+v, g.Slices[col][v], want)
							}
						}
					}
				})
			}
		})
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestQuality(t *testing.T) {
	db := storetest.TestDatabases(t)["sqlite"](t)
	ctx := context.Background()
	st := NewStore(db)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	cols := map[string][]any{predlog.ColTimestamp: {}, predlog.ColRequestID: {}, predlog.ColRow: {}, predlog.ColRoute: {}, "outputs.label": {}}
	var labels []Label
	for i := 0; i < 40; i++ {
		route := "stable"
		if i%2 == 1 {
			route = "canary"
		}
		id := "r" + string(rune('A'+i))
		cols[predlog.ColTimestamp] = append(cols[predlog.ColTimestamp], float64(t0.Add(time.Duration(i)*time.Second).UnixMilli()))
		cols[predlog.ColRequestID] = append(cols[predlog.ColRequestID], id)
		cols[predlog.ColRow] = append(cols[predlog.ColRow], 0.0)
		cols[predlog.ColRoute] = append(cols[predlog.ColRoute], route)
		cols["outputs.label"] = append(cols["outputs.label"], "yes")
		truth := "yes"
		if route == "canary" && i%4 == 1 {
			truth = "no" // half the canary's answers are wrong
		}
		labels = append(labels, Label{RequestID: id, Value: truth})
	}
	if _, err := st.Put(ctx, "ep", labels); err != nil {
		t.Fatal(err)
	}
	svc := NewService(st, logOf(t, cols, 16), WithMinQualityLabels(15))
	v, ok, err := svc.Quality(ctx, "ep", "canary", "accuracy", t0)
	if err != nil || !ok || v != 0.5 {
		t.Fatalf("canary accuracy %v %v %v, want 0.5", v, ok, err)
	}
	v, ok, err = svc.Quality(ctx, "ep", "stable", "accuracy", t0)
	if err != nil || !ok || v != 1 {
		t.Fatalf("stable accuracy %v %v %v, want 1", v, ok, err)
	}
	// Under the minimum of labelled predictions: not ok.
	if _, ok, err := svc.Quality(ctx, "ep", "canary", "accuracy", t0.Add(20*time.Second)); err != nil || ok {
		t.Fatalf("10 labels: ok %v, %v", ok, err)
	}
	// A metric without a value (no scores): not ok, no error.
	if _, ok, err := svc.Quality(ctx, "ep", "canary", "roc_auc", t0); err != nil || ok {
		t.Fatalf("roc_auc without scores: ok %v, %v", ok, err)
	}
	if _, _, err := svc.Quality(ctx, "ep", "canary", "nope", t0); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("unknown metric: %v", err)
	}
	// Regression metrics of a classifier's labels: an error.
	if _, _, err := svc.Quality(ctx, "ep", "canary", "mae", t0); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("mae of string labels: %v", err)
	}
}

func TestPerformanceQueryErrors(t *testing.T) {
	db := storetest.TestDatabases(t)["sqlite"](t)
	svc := NewService(NewStore(db), &fakeLog{})
	now := time.Now()
	for name, q := range map[string]Query{
		"no endpoint":  {From: now.Add(-time.Hour)},
		"no from":      {Endpoint: "e"},
		"empty range":  {Endpoint: "e", From: now, To: now},
		"neg window":   {Endpoint: "e", From: now.Add(-time.Hour), Window: -time.Second},
		"many windows": {Endpoint: "e", From: now.Add(-time.Hour), Window: time.Millisecond},
		"task":         {Endpoint: "e", From: now.Add(-time.Hour), Task: "ranking"},
		"metric":       {Endpoint: "e", From: now.Add(-time.Hour), Metrics: []string{"acc"}},
		"task metric":  {Endpoint: "e", From: now.Add(-time.Hour), Task: evaluate.Regression, Metrics: []string{"accuracy"}},
	} {
		if _, err := svc.Performance(context.Background(), q); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// No predictions and no labels: empty windows, defaults of the task.
	p, err := svc.Performance(context.Background(), Query{Endpoint: "e", From: now.Add(-time.Hour), To: now, Window: 30 * time.Minute})
	if err != nil || len(p.Windows) != 2 || p.Labelled != 0 || p.Task != evaluate.Regression {
		t.Fatalf("empty: %+v %v", p, err)
	}
}

// TestClassMapping checks how probability columns and numeric predictions
// are named when the labels are strings or bools.
func TestClassMapping(t *testing.T) {
	db := storetest.TestDatabases(t)["sqlite"](t)
	ctx := context.Background()
	st := NewStore(db)
	t0 := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	// Bool labels, int predictions 0/1 (False, True as sklearn orders them).
	cols := map[string][]any{predlog.ColTimestamp: {}, predlog.ColRequestID: {}, "outputs.label": {},
		"outputs.probabilities_0": {}, "outputs.probabilities_1": {}}
	truth := []bool{true, false, true, true, false, false}
	pred := []float64{1, 0, 0, 1, 0, 1}
	p1 := []float64{0.9, 0.2, 0.4, 0.8, 0.1, 0.6}
	var labels []Label
	for i := range truth {
		id := "b" + string(rune('0'+i))
		cols[predlog.ColTimestamp] = append(cols[predlog.ColTimestamp], float64(t0.UnixMilli()+int64(i)))
		cols[predlog.ColRequestID] = append(cols[predlog.ColRequestID], id)
		cols["outputs.label"] = append(cols["outputs.label"], pred[i])
		cols["outputs.probabilities_0"] = append(cols["outputs.probabilities_0"], 1-p1[i]+0.5) // float: not integral
		cols["outputs.probabilities_1"] = append(cols["outputs.probabilities_1"], p1[i])
		labels = append(labels, Label{RequestID: id, Value: truth[i]})
	}
	for i := range cols["outputs.probabilities_0"] {
		cols["outputs.probabilities_0"][i] = cols["outputs.probabilities_0"][i].(float64) - 0.5
	}
	if _, err := st.Put(ctx, "bools", labels); err != nil {
		t.Fatal(err)
	}
	p, err := NewService(st, logOf(t, cols, 4)).Performance(ctx, Query{Endpoint: "bools", From: t0})
	if err != nil {
		t.Fatal(err)
	}
	if p.Task != evaluate.Classification || !equal(p.Classes, []string{"false", "true"}) || p.PositiveClass != "true" {
		t.Fatalf("task %s classes %v positive %q", p.Task, p.Classes, p.PositiveClass)
	}
	// sklearn: accuracy_score([T,F,T,T,F,F],[T,F,F,T,F,T]) = 4/6;
	// roc_auc_score(y, p1) = 8/9 (positives .9 .4 .8 over negatives .2 .1 .6).
	w := p.Windows[0]
	if !near(w.Metrics["accuracy"], 4.0/6) || !near(w.Metrics["roc_auc"], 8.0/9) {
		t.Fatalf("metrics %v", w.Metrics)
	}
	// More classes than probability columns that are not indices: scores unusable, noted.
	if _, err := st.Put(ctx, "bools", []Label{{RequestID: "b0", Value: "maybe"}}); err != nil {
		t.Fatal(err)
	}
	p, err = NewService(st, logOf(t, cols, 4)).Performance(ctx, Query{Endpoint: "bools", From: t0})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Notes) == 0 || len(p.Classes) != 0 {
		t.Fatalf("unmappable scores: classes %v notes %v", p.Classes, p.Notes)
	}
	if _, ok := p.Windows[0].Metrics["roc_auc"]; ok {
		t.Fatalf("roc_auc without a class mapping: %v", p.Windows[0].Metrics)
	}
}
