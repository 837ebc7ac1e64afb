package profile

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/kiln-ml/kiln/dataset/table"
)

// pandasStats is what dataset/table/testdata/gen.py records per column.
type pandasStats struct {
	Count   int64      `json:"count"`
	Missing int64      `json:"missing"`
	NUnique int64      `json:"nunique"`
	Top     [][2]any   `json:"top"`
	Mean    *float64   `json:"mean"`
	Std     *float64   `json:"std"`
	Min     *float64   `json:"min"`
	Max     *float64   `json:"max"`
	Q       [3]float64 `json:"-"`
	Q25     *float64   `json:"q25"`
	Q50     *float64   `json:"q50"`
	Q75     *float64   `json:"q75"`
	Q25Lo   *float64   `json:"q25_lo"`
	Q25Hi   *float64   `json:"q25_hi"`
	Q50Lo   *float64   `json:"q50_lo"`
	Q50Hi   *float64   `json:"q50_hi"`
	Q75Lo   *float64   `json:"q75_lo"`
	Q75Hi   *float64   `json:"q75_hi"`
}

type pandasFile struct {
	Rows    int64 `json:"rows"`
	Columns []struct {
		Name  string      `json:"name"`
		Type  string      `json:"type"`
		Stats pandasStats `json:"stats"`
	} `json:"columns"`
}

const fixtures = "../table/testdata"

func loadPandas(t testing.TB, fixture string) pandasFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, fixture+".expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var e pandasFile
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	return e
}

func readBatches(t testing.TB, fixture string, opts table.Options) (table.Schema, []*table.Batch) {
	t.Helper()
	ctx := context.Background()
	r, err := table.Open(ctx, filepath.Join(fixtures, fixture), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	bs, err := table.ReadAll(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	return r.Schema(), bs
}

func profileOf(t testing.TB, s table.Schema, bs []*table.Batch) *Profile {
	t.Helper()
	p := New(s, Options{})
	for _, b := range bs {
		if err := p.Add(b); err != nil {
			t.Fatal(err)
		}
	}
	p.Refresh()
	return p
}

func relClose(got, want, tol float64) bool {
	return math.Abs(got-want) <= tol*math.Max(math.Abs(want), 1e-300) || got == want
}

// checkColumn compares one column's profile with pandas' statistics.
func checkColumn(t *testing.T, c *Column, want pandasStats, exactCounts bool) {
	t.Helper()
	name := c.Field.Name
	if c.Count != want.Count || c.Missing != want.Missing {
		t.Errorf("%s: count %d missing %d, pandas %d %d", name, c.Count, c.Missing, want.Count, want.Missing)
	}
	// Distinct: HLL++ is exact-ish at these sizes; allow 2%.
	if d := float64(c.Distinct); math.Abs(d-float64(want.NUnique)) > 0.02*float64(want.NUnique)+0.5 {
		t.Errorf("%s: distinct %d, pandas nunique %d", name, c.Distinct, want.NUnique)
	}
	if exactCounts && !c.DistinctExact {
		t.Errorf("%s: distinct count should be exact for %d values", name, want.NUnique)
	}
	if want.Mean != nil {
		if c.Mean == nil {
			t.Fatalf("%s: no mean", name)
		}
		tol := 1e-9
		if c.Field.Type == table.Timestamp {
			tol = 1e-6 // float64 sums of nanosecond timestamps
		}
		if !relClose(*c.Mean, *want.Mean, tol) {
			t.Errorf("%s: mean %v, pandas %v", name, *c.Mean, *want.Mean)
		}
		if want.Std != nil && (c.Std == nil || !relClose(*c.Std, *want.Std, 1e-6)) {
			t.Errorf("%s: std %v, pandas %v", name, c.Std, *want.Std)
		}
		if *c.Min != *want.Min || *c.Max != *want.Max {
			if !(relClose(*c.Min, *want.Min, 1e-12) && relClose(*c.Max, *want.Max, 1e-12)) {
				t.Errorf("%s: min/max %v %v, pandas %v %v", name, *c.Min, *c.Max, *want.Min, *want.Max)
			}
		}
		if c.Field.Type != table.Bool {
			qs := c.QuantileValues([]float64{0.25, 0.5, 0.75})
			lo := []*float64{want.Q25Lo, want.Q50Lo, want.Q75Lo}
			hi := []*float64{want.Q25Hi, want.Q50Hi, want.Q75Hi}
			for i, q := range qs {
				if q < *lo[i] || q > *hi[i] {
					t.Errorf("%s: quantile %v = %v, outside pandas' rank bracket [%v, %v]", name, []float64{0.25, 0.5, 0.75}[i], q, *lo[i], *hi[i])
				}
			}
		}
	}
	// Top values: pandas' value_counts, where counts are not tied with the
	// first one cut off.
	if c.TopError != 0 && exactCounts {
		t.Errorf("%s: top counts should be exact", name)
	}
	for i, kv := range want.Top {
		wantCount := int64(kv[1].(float64))
		if wantCount == 0 {
			continue // an unused pandas category
		}
		if i+1 < len(want.Top) && int64(want.Top[i+1][1].(float64)) == wantCount {
			continue // a tie: order is arbitrary
		}
		if i > 0 && int64(want.Top[i-1][1].(float64)) == wantCount {
			continue
		}
		found := false
		for _, it := range c.Frequencies() {
			if itemMatches(c, it, kv[0]) {
				found = true
				if it.Count > wantCount || it.Count < wantCount-c.TopError {
					t.Errorf("%s: value %v counted %d, pandas %d (error bound %d)", name, kv[0], it.Count, wantCount, c.TopError)
				}
			}
		}
		if !found && wantCount > c.TopError {
			t.Errorf("%s: pandas' frequent value %v (%d) not tracked", name, kv[0], wantCount)
		}
	}
}

func itemMatches(c *Column, it Item, want any) bool {
	switch c.Field.Type {
	case table.String:
		return it.Value == want
	case table.Bool:
		return it.Value == strconv.FormatBool(want == true)
	case table.Float64:
		w, ok := want.(float64)
		return ok && math.Float64frombits(it.key) == w
	}
	w, ok := want.(float64)
	return ok && float64(int64(it.key)) == w
}

func TestProfileMatchesPandas(t *testing.T) {
	for _, fixture := range []string{"basic.csv", "basic.jsonl", "mixed.parquet"} {
		t.Run(fixture, func(t *testing.T) {
			want := loadPandas(t, fixture)
			s, bs := readBatches(t, fixture, table.Options{})
			p := profileOf(t, s, bs)
			if p.Rows != want.Rows {
				t.Fatalf("rows %d, pandas %d", p.Rows, want.Rows)
			}
			for i, wc := range want.Columns {
				c := p.Columns[i]
				if c.Field.Name != wc.Name {
					t.Fatalf("column %d is %s, want %s", i, c.Field.Name, wc.Name)
				}
				checkColumn(t, c, wc.Stats, wc.Stats.NUnique < DefaultFreqCapacity)
			}
			// The same through Compute, in parallel, with small batches.
			r, err := table.Open(context.Background(), filepath.Join(fixtures, fixture), table.Options{BatchRows: 97})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			p2, err := Compute(context.Background(), r, Options{Parallelism: 3})
			if err != nil {
				t.Fatal(err)
			}
			for i, wc := range want.Columns {
				checkColumn(t, p2.Columns[i], wc.Stats, wc.Stats.NUnique < DefaultFreqCapacity)
			}
		})
	}
}

func TestCategoricalDomains(t *testing.T) {
	s, bs := readBatches(t, "mixed.parquet", table.Options{})
	p := profileOf(t, s, bs)
	for _, tt := range []struct {
		col  string
		cats []string
	}{
		{"cat", []string{"blue", "green", "red"}},
		{"low", []string{"x", "y"}},
	} {
		c := p.Column(tt.col)
		if !c.Field.Categorical || !slices.Equal(c.Field.Categories, tt.cats) {
			t.Errorf("%s: categorical %v %v, want %v", tt.col, c.Field.Categorical, c.Field.Categories, tt.cats)
		}
	}
	for _, col := range []string{"s", "f64", "i64"} {
		if c := p.Column(col); c.Field.Categorical {
			t.Errorf("%s marked categorical: %v", col, c.Field.Categories)
		}
	}
	ps := p.Schema()
	if f := ps.Fields[ps.Index("cat")]; !f.Categorical || !f.Nullable {
		t.Errorf("profile schema cat: %+v", f)
	}
	// A changed domain shows in the schema diff.
	other := ps.Clone()
	other.Fields[other.Index("cat")].Categories = []string{"blue", "red", "violet"}
	d := table.Diff(ps, other)
	if len(d) != 1 || d[0].Kind != table.DomainChanged {
		t.Errorf("diff = %v", d)
	}
}

// TestMergeEqualsWhole checks Merge(profile(A), profile(B)) against
// profile(A ∪ B), with a JSON round trip in between.
func TestMergeEqualsWhole(t *testing.T) {
	for _, fixture := range []string{"mixed.parquet", "basic.csv"} {
		t.Run(fixture, func(t *testing.T) {
			s, bs := readBatches(t, fixture, table.Options{BatchRows: 500})
			whole := profileOf(t, s, bs)
			half := len(bs) / 2
			a, b := profileOf(t, s, bs[:half]), profileOf(t, s, bs[half:])
			ja, err := json.Marshal(a)
			if err != nil {
				t.Fatal(err)
			}
			var a2 Profile
			if err := json.Unmarshal(ja, &a2); err != nil {
				t.Fatal(err)
			}
			m, err := Merge(&a2, b)
			if err != nil {
				t.Fatal(err)
			}
			if m.Rows != whole.Rows || a2.Rows != a.Rows {
				t.Fatalf("rows %d, want %d (inputs modified? %d)", m.Rows, whole.Rows, a2.Rows)
			}
			want := loadPandas(t, fixture)
			for i, c := range m.Columns {
				w := whole.Columns[i]
				if c.Count != w.Count || c.Missing != w.Missing || c.Distinct != w.Distinct {
					t.Errorf("%s: merged count/missing/distinct %d/%d/%d, whole %d/%d/%d", c.Field.Name, c.Count, c.Missing, c.Distinct, w.Count, w.Missing, w.Distinct)
				}
				if (c.Mean == nil) != (w.Mean == nil) || (c.Mean != nil && !relClose(*c.Mean, *w.Mean, 1e-9)) {
					t.Errorf("%s: merged mean %v, whole %v", c.Field.Name, c.Mean, w.Mean)
				}
				if c.Std != nil && !relClose(*c.Std, *w.Std, 1e-9) {
					t.Errorf("%s: merged std %v, whole %v", c.Field.Name, *c.Std, *w.Std)
				}
				// And still within pandas' reference.
				checkColumn(t, c, want.Columns[i].Stats, want.Columns[i].Stats.NUnique < DefaultFreqCapacity)
			}
		})
	}
	if _, err := Merge(New(table.Schema{Fields: []table.Field{{Name: "a", Type: table.Int64}}}, Options{}),
		New(table.Schema{Fields: []table.Field{{Name: "a", Type: table.String}}}, Options{})); !errors.Is(err, ErrIncompatible) {
		t.Errorf("merging int with string: %v", err)
	}
}

func TestKLLAccuracy(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n = 1_000_000
	data := make([]float64, n)
	for i := range data {
		data[i] = rng.NormFloat64()*10 + float64(i%7)
	}
	// Two sketches over halves, merged, against the exact ranks.
	a, b := NewKLL(0), NewKLL(0)
	for lo := 0; lo < n; lo += 65536 {
		hi := min(lo+65536, n)
		if lo < n/2 {
			a.AddBatch(data[lo:hi])
		} else {
			b.AddBatch(data[lo:hi])
		}
	}
	if err := a.Merge(b); err != nil {
		t.Fatal(err)
	}
	sorted := slices.Clone(data)
	slices.Sort(sorted)
	qs := []float64{0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999}
	got := a.Quantiles(qs)
	for i, q := range qs {
		rank, _ := slices.BinarySearch(sorted, got[i])
		if err := math.Abs(float64(rank)/n - q); err > 0.015 {
			t.Errorf("q=%v: value %v has rank %v (error %.4f)", q, got[i], float64(rank)/n, err)
		}
	}
	if a.N() != n || a.size() > 4*DefaultK {
		t.Errorf("n = %d, retained %d", a.N(), a.size())
	}
	// Serialisation keeps the answers.
	bin, _ := a.MarshalBinary()
	var back KLL
	if err := back.UnmarshalBinary(bin); err != nil {
		t.Fatal(err)
	}
	if g := back.Quantiles(qs); !slices.Equal(g, got) {
		t.Errorf("round trip: %v vs %v", g, got)
	}
	// Small inputs are exact.
	s := NewKLL(0)
	for i := range 100 {
		s.Add(float64(i))
	}
	if q := s.Quantiles([]float64{0, 0.5, 1}); !slices.Equal(q, []float64{0, 49, 99}) {
		t.Errorf("small quantiles %v", q)
	}
}

func TestHLLAccuracy(t *testing.T) {
	for _, n := range []int{1, 100, 3000, 5000, 20000, 60000, 1_000_000} {
		h := NewHLL()
		for i := range n {
			h.Add(mix64(uint64(i)))
			h.Add(mix64(uint64(i))) // duplicates do not count
		}
		est := h.Estimate()
		tol := 3 * 1.04 / math.Sqrt(hllM) // 3 standard errors
		if math.Abs(est-float64(n)) > tol*float64(n)+0.5 {
			t.Errorf("n=%d: estimate %.1f", n, est)
		}
		bin, _ := h.MarshalBinary()
		var back HLL
		if err := back.UnmarshalBinary(bin); err != nil || back.Estimate() != est {
			t.Errorf("n=%d: round trip %v %v", n, err, back.Estimate())
		}
	}
	// Union of overlapping halves.
	a, b := NewHLL(), NewHLL()
	for i := range 200000 {
		if i < 120000 {
			a.Add(mix64(uint64(i)))
		}
		if i >= 80000 {
			b.Add(mix64(uint64(i)))
		}
	}
	a.Merge(b)
	if est := a.Estimate(); math.Abs(est-200000) > 0.025*200000 {
		t.Errorf("union estimate %.0f", est)
	}
}

func TestFreqHeavyHitters(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	f := NewFreq(64)
	exact := map[uint64]int64{}
	const n = 200000
	for range n {
		var k uint64
		if rng.Float64() < 0.5 {
			k = uint64(rng.IntN(5)) // heavy hitters: ~10% each
		} else {
			k = 1000 + uint64(rng.IntN(100000))
		}
		exact[k]++
		f.Add(k, 1, nil)
	}
	if f.Offset() == 0 || f.Offset() > 2*n/64 {
		t.Errorf("offset %d, want in (0, %d]", f.Offset(), 2*n/64)
	}
	top := f.Top(5)
	for _, it := range top {
		if it.key >= 5 {
			t.Errorf("top item %d is not a heavy hitter", it.key)
		}
		if c := exact[it.key]; it.Count > c || it.Count < c-f.Offset() {
			t.Errorf("item %d: count %d, exact %d, offset %d", it.key, it.Count, c, f.Offset())
		}
	}
}

func TestEmptyAndAllMissing(t *testing.T) {
	text := "a,b,c\n,,x\nNA,,y\n"
	ctx := context.Background()
	r, err := table.OpenReaderAt(ctx, stringsReader(text), int64(len(text)), "x.csv", table.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compute(ctx, r, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := p.Column("a")
	if a.Count != 0 || a.Missing != 2 || a.Mean != nil || a.Distinct != 0 {
		t.Errorf("all-missing column: %+v", a)
	}
	js, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back Profile
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatalf("%v: %s", err, js)
	}
	if _, err := Merge(&back, p); err != nil {
		t.Fatal(err)
	}
}

func stringsReader(s string) io.ReaderAt { return &strReaderAt{s} }

type strReaderAt struct{ s string }

func (r *strReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off >= int64(len(r.s)) {
		return 0, io.EOF
	}
	n := copy(p, r.s[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func TestSelectNth(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 200 {
		n := 1 + rng.IntN(50)
		xs := make([]int64, n)
		for i := range xs {
			xs[i] = int64(rng.IntN(10))
		}
		sorted := slices.Clone(xs)
		slices.Sort(sorted)
		k := rng.IntN(n)
		if got := selectNth(xs, k); got != sorted[k] {
			t.Fatalf("selectNth(%v, %d) = %d, want %d", sorted, k, got, sorted[k])
		}
	}
}
