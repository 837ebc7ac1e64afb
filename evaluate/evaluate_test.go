package evaluate

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"slices"
	"testing"

	"github.com/kiln-ml/kiln/errdefs"
)

// fixture is testdata/metrics.json, written by testdata/gen.py with
// scikit-learn.
type fixture struct {
	Sklearn        string `json:"sklearn"`
	Classification []struct {
		Name          string              `json:"name"`
		YTrue         []string            `json:"y_true"`
		YPred         []string            `json:"y_pred"`
		ScoreClasses  []string            `json:"score_classes"`
		Scores        json.RawMessage     `json:"scores"`
		PositiveClass *string             `json:"positive_class"`
		Metrics       map[string]*float64 `json:"metrics"`
		Errors        map[string]string   `json:"errors"`
		Confusion     struct {
			Labels []string  `json:"labels"`
			Matrix [][]int64 `json:"matrix"`
		} `json:"confusion"`
	} `json:"classification"`
	Regression []struct {
		Name    string              `json:"name"`
		YTrue   []float64           `json:"y_true"`
		YPred   []float64           `json:"y_pred"`
		Metrics map[string]*float64 `json:"metrics"`
	} `json:"regression"`
	Slices struct {
		Group      []string           `json:"group"`
		YTrue      []string           `json:"y_true"`
		YPred      []string           `json:"y_pred"`
		Accuracy   map[string]float64 `json:"accuracy"`
		Difference float64            `json:"difference"`
		Ratio      float64            `json:"ratio"`
	} `json:"slices"`
}

func readFixture(t *testing.T) *fixture {
	t.Helper()
	data, err := os.ReadFile("testdata/metrics.json")
	if err != nil {
		t.Fatal(err)
	}
	var f fixture
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	return &f
}

const tol = 1e-9

func close(a, b float64) bool { return math.Abs(a-b) <= tol*max(1, math.Abs(b)) }

// scoreRows decodes scores: a list of rows, or one score per row.
func scoreRows(t *testing.T, raw json.RawMessage, n int) [][]float64 {
	t.Helper()
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var rows [][]float64
	if err := json.Unmarshal(raw, &rows); err == nil {
		return rows
	}
	var flat []float64
	if err := json.Unmarshal(raw, &flat); err != nil {
		t.Fatal(err)
	}
	rows = make([][]float64, len(flat))
	for i, v := range flat {
		rows[i] = []float64{v}
	}
	return rows
}

func TestClassificationMatchesSklearn(t *testing.T) {
	f := readFixture(t)
	for _, tc := range f.Classification {
		t.Run(tc.Name, func(t *testing.T) {
			opts := ClassifierOptions{ScoreClasses: tc.ScoreClasses}
			if tc.PositiveClass != nil {
				opts.PositiveClass = *tc.PositiveClass
			}
			scores := scoreRows(t, tc.Scores, len(tc.YTrue))
			// Accumulate in two halves and merge, which must not change
			// anything.
			half := len(tc.YTrue) / 2
			parts := []*Classifier{NewClassifier(opts), NewClassifier(opts)}
			for i := range tc.YTrue {
				c := parts[0]
				if i >= half {
					c = parts[1]
				}
				ti, err := c.Label(tc.YTrue[i])
				if err != nil {
					t.Fatal(err)
				}
				pi, err := c.Label(tc.YPred[i])
				if err != nil {
					t.Fatal(err)
				}
				var s []float64
				if scores != nil {
					s = scores[i]
				}
				if err := c.Add(ti, pi, s); err != nil {
					t.Fatal(err)
				}
			}
			c := parts[0]
			if err := c.Merge(parts[1]); err != nil {
				t.Fatal(err)
			}
			if c.Count() != int64(len(tc.YTrue)) {
				t.Fatalf("Count = %d, want %d", c.Count(), len(tc.YTrue))
			}
			for _, name := range MetricNames(Classification) {
				want := tc.Metrics[name]
				got, err := c.Value(name)
				if want == nil {
					if err == nil {
						t.Errorf("%s = %v, sklearn refuses it (%s)", name, got, tc.Errors[name])
					} else if !errors.Is(err, ErrUndefined) || !errors.Is(err, errdefs.ErrInvalidArgument) {
						t.Errorf("%s: error %v is not ErrUndefined/invalid argument", name, err)
					}
					continue
				}
				if err != nil {
					t.Errorf("%s: %v (sklearn %v)", name, err, *want)
					continue
				}
				if !close(got, *want) {
					t.Errorf("%s = %.17g, sklearn %.17g", name, got, *want)
				}
			}
			labels, m := c.ConfusionMatrix()
			if !slices.Equal(labels, tc.Confusion.Labels) {
				t.Errorf("confusion labels %v, sklearn %v", labels, tc.Confusion.Labels)
			}
			for i := range m {
				if !slices.Equal(m[i], tc.Confusion.Matrix[i]) {
					t.Errorf("confusion row %d %v, sklearn %v", i, m[i], tc.Confusion.Matrix[i])
				}
			}
		})
	}
}

func TestRegressionMatchesSklearn(t *testing.T) {
	f := readFixture(t)
	for _, tc := range f.Regression {
		t.Run(tc.Name, func(t *testing.T) {
			a, b := NewRegressor(), NewRegressor()
			for i := range tc.YTrue {
				r := a
				if i%3 == 0 {
					r = b
				}
				if err := r.Add(tc.YTrue[i], tc.YPred[i]); err != nil {
					t.Fatal(err)
				}
			}
			a.Merge(b)
			for _, name := range MetricNames(Regression) {
				want := tc.Metrics[name]
				got, err := a.Value(name)
				if want == nil {
					if err == nil {
						t.Errorf("%s = %v, sklearn has no value", name, got)
					}
					continue
				}
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if !close(got, *want) {
					t.Errorf("%s = %.17g, sklearn %.17g", name, got, *want)
				}
			}
		})
	}
}

func TestSlicesDisparity(t *testing.T) {
	f := readFixture(t).Slices
	s := NewSlices(0, func() *Classifier { return NewClassifier(ClassifierOptions{}) })
	for i := range f.Group {
		c, err := s.Get(f.Group[i])
		if err != nil {
			t.Fatal(err)
		}
		ti, _ := c.Label(f.YTrue[i])
		pi, _ := c.Label(f.YPred[i])
		if err := c.Add(ti, pi, nil); err != nil {
			t.Fatal(err)
		}
	}
	keys := s.Keys()
	if !slices.Equal(keys, []string{"a", "b", "c"}) {
		t.Fatalf("keys %v", keys)
	}
	vals := make([]float64, len(keys))
	for i, k := range keys {
		c, _ := s.Get(k)
		v, err := c.Value("accuracy")
		if err != nil {
			t.Fatal(err)
		}
		if !close(v, f.Accuracy[k]) {
			t.Errorf("accuracy of %s = %v, sklearn %v", k, v, f.Accuracy[k])
		}
		vals[i] = v
	}
	d := ComputeDisparity("accuracy", keys, vals)
	if !close(d.Difference, f.Difference) || d.Ratio == nil || !close(*d.Ratio, f.Ratio) {
		t.Errorf("disparity %+v, want difference %v ratio %v", d, f.Difference, f.Ratio)
	}
	if d.MaxSlice != "a" || d.MinSlice != "c" || d.Slices != 3 {
		t.Errorf("disparity %+v", d)
	}
}

func TestDisparityEdges(t *testing.T) {
	tests := []struct {
		name      string
		vals      []float64
		diff      float64
		ratio     float64 // -1: nil
		compared  int
		minSlice  string
		maxSlicer string
	}{
		{"equal", []float64{0.5, 0.5}, 0, 1, 2, "k0", "k0"},
		{"zeros", []float64{0, 0}, 0, 1, 2, "k0", "k0"},
		{"negative", []float64{-1, 0.5}, 1.5, -1, 2, "k0", "k1"},
		{"nan skipped", []float64{math.NaN(), 0.2, 0.8}, 0.6000000000000001, 0.25, 2, "k1", "k2"},
		{"none", nil, 0, -1, 0, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys := make([]string, len(tt.vals))
			for i := range keys {
				keys[i] = "k" + string(rune('0'+i))
			}
			d := ComputeDisparity("m", keys, tt.vals)
			if d.Difference != tt.diff || d.Slices != tt.compared || d.MinSlice != tt.minSlice || d.MaxSlice != tt.maxSlicer {
				t.Errorf("%+v", d)
			}
			if (tt.ratio < 0) != (d.Ratio == nil) || d.Ratio != nil && *d.Ratio != tt.ratio {
				t.Errorf("ratio %v, want %v", d.Ratio, tt.ratio)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name     string
		run      func() error
		sentinel error
	}{
		{"nan score", func() error {
			c := NewClassifier(ClassifierOptions{ScoreClasses: []string{"0", "1"}})
			a, _ := c.Label("0")
			return c.Add(a, a, []float64{math.NaN(), 1})
		}, ErrInvalidInput},
		{"wrong score count", func() error {
			c := NewClassifier(ClassifierOptions{ScoreClasses: []string{"0", "1"}})
			a, _ := c.Label("0")
			return c.Add(a, a, []float64{1})
		}, ErrInvalidInput},
		{"nan target", func() error { return NewRegressor().Add(math.NaN(), 1) }, ErrInvalidInput},
		{"inf prediction", func() error { return NewRegressor().Add(1, math.Inf(1)) }, ErrInvalidInput},
		{"no rows", func() error { _, err := NewRegressor().Value("mae"); return err }, ErrUndefined},
		{"r2 of one row", func() error {
			r := NewRegressor()
			r.Add(1, 2)
			_, err := r.Value("r2")
			return err
		}, ErrUndefined},
		{"unknown metric", func() error { _, err := NewRegressor().Value("accuracy"); return err }, ErrUnknownMetric},
		{"too many labels", func() error {
			c := NewClassifier(ClassifierOptions{MaxLabels: 3})
			for _, l := range []string{"a", "b", "c", "d"} {
				if _, err := c.Label(l); err != nil {
					return err
				}
			}
			return nil
		}, ErrInvalidInput},
		{"log loss of margins", func() error {
			c := NewClassifier(ClassifierOptions{ScoreClasses: []string{"1"}})
			a, _ := c.Label("1")
			c.Add(a, a, []float64{3.5})
			_, err := c.Value("log_loss")
			return err
		}, ErrUndefined},
		{"auc past the score bound", func() error {
			c := NewClassifier(ClassifierOptions{ScoreClasses: []string{"0", "1"}, MaxScores: 4})
			a, _ := c.Label("0")
			b, _ := c.Label("1")
			for i := range 3 {
				c.Add(a, b, []float64{0.1 * float64(i), 1 - 0.1*float64(i)})
				c.Add(b, b, []float64{0.2, 0.8})
			}
			if _, err := c.Value("accuracy"); err != nil {
				return errors.New("accuracy must stay defined")
			}
			_, err := c.Value("roc_auc")
			return err
		}, ErrUndefined},
		{"too many slices", func() error {
			s := NewSlices(2, NewRegressor)
			for _, k := range []string{"a", "b", "c"} {
				if _, err := s.Get(k); err != nil {
					return err
				}
			}
			return nil
		}, ErrInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.run()
			if !errors.Is(err, tt.sentinel) || !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("error %v, want %v", err, tt.sentinel)
			}
		})
	}
}

func TestMetricDirections(t *testing.T) {
	for _, name := range []string{"log_loss", "mae", "mse", "rmse", "mape"} {
		if m, _ := Lookup(name); m.HigherIsBetter {
			t.Errorf("%s: higher is better?", name)
		}
	}
	for _, name := range []string{"accuracy", "f1_macro", "roc_auc", "r2"} {
		if m, ok := Lookup(name); !ok || !m.HigherIsBetter {
			t.Errorf("%s: lower is better?", name)
		}
	}
}

func BenchmarkClassifierAdd(b *testing.B) {
	c := NewClassifier(ClassifierOptions{ScoreClasses: []string{"0", "1"}, MaxScores: -1})
	l0, _ := c.Label("0")
	l1, _ := c.Label("1")
	s := []float64{0.3, 0.7}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.Add(l0, l1+(i&1)-1, s)
	}
}
