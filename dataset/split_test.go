package dataset

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/blob"
	"github.com/kiln-ml/kiln/dataset/table"
	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/store"
)

// writeCSV writes a header and rows to a new file and returns its path.
func writeCSV(t *testing.T, header []string, rows [][]string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "data.csv")
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write(header)
	w.WriteAll(rows)
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// splitCSV splits the CSV file at p and returns each part's rows (without
// the header) and the stats.
func splitCSV(t *testing.T, p string, spec SplitSpec) ([][][]string, [][]byte, *SplitStats) {
	t.Helper()
	n := len(spec.Parts)
	if n == 0 {
		n = len(DefaultSplitParts)
	}
	bufs := make([]*bytes.Buffer, n)
	outs := make([]io.Writer, n)
	for i := range bufs {
		bufs[i] = &bytes.Buffer{}
		outs[i] = bufs[i]
	}
	st, err := SplitTable(context.Background(), p, spec, outs)
	if err != nil {
		t.Fatal(err)
	}
	parts := make([][][]string, n)
	raw := make([][]byte, n)
	for i, b := range bufs {
		raw[i] = bytes.Clone(b.Bytes())
		recs, err := csv.NewReader(b).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		parts[i] = recs[1:]
		if int64(len(parts[i])) != st.Rows[i] {
			t.Fatalf("part %d: %d rows written, stats say %d", i, len(parts[i]), st.Rows[i])
		}
	}
	return parts, raw, st
}

func idRows(n int, extra func(i int) []string) [][]string {
	rows := make([][]string, n)
	for i := range rows {
		rows[i] = append([]string{fmt.Sprintf("id%05d", i)}, extra(i)...)
	}
	return rows
}

// partOf maps each row's first cell to the index of its part.
func partOf(parts [][][]string) map[string]int {
	out := map[string]int{}
	for k, rows := range parts {
		for _, r := range rows {
			out[r[0]] = k
		}
	}
	return out
}

func TestSplitRandom(t *testing.T) {
	const n = 10000
	rows := idRows(n, func(i int) []string { return []string{fmt.Sprint(i % 7)} })
	p := writeCSV(t, []string{"id", "x"}, rows)
	spec := SplitSpec{Method: SplitRandom, Seed: 42}
	parts, raw, st := splitCSV(t, p, spec)
	// Every row lands in exactly one part.
	got := partOf(parts)
	if len(got) != n || st.Rows[0]+st.Rows[1]+st.Rows[2] != n {
		t.Fatalf("%d distinct rows, stats %v", len(got), st.Rows)
	}
	// Proportions: binomial, within 4 standard deviations.
	for k, f := range []float64{0.8, 0.1, 0.1} {
		sd := math.Sqrt(n * f * (1 - f))
		if d := math.Abs(float64(st.Rows[k]) - n*f); d > 4*sd {
			t.Errorf("part %d: %d rows, want %v ± %v", k, st.Rows[k], n*f, 4*sd)
		}
	}
	// Deterministic: the same spec gives the same bytes.
	_, raw2, _ := splitCSV(t, p, spec)
	if !reflect.DeepEqual(raw, raw2) {
		t.Fatal("the same split gave different bytes")
	}
	// Another seed, another assignment.
	other, _, _ := splitCSV(t, p, SplitSpec{Method: SplitRandom, Seed: 43})
	if moved := countMoved(got, partOf(other)); moved < n/10 {
		t.Fatalf("seed changed only %d assignments", moved)
	}
	// Appended rows do not move earlier ones.
	more := append(slices.Clone(rows), idRows(n+500, func(i int) []string { return []string{"new"} })[n:]...)
	grown, _, _ := splitCSV(t, writeCSV(t, []string{"id", "x"}, more), spec)
	g := partOf(grown)
	for id, k := range got {
		if g[id] != k {
			t.Fatalf("appending rows moved %s from part %d to %d", id, k, g[id])
		}
	}
}

func countMoved(a, b map[string]int) int {
	n := 0
	for id, k := range a {
		if b[id] != k {
			n++
		}
	}
	return n
}

func TestSplitRandomByKey(t *testing.T) {
	const n = 3000
	rows := idRows(n, func(i int) []string { return []string{fmt.Sprint(i)} })
	spec := SplitSpec{Method: SplitRandom, Seed: 1, Key: "id", Parts: []SplitPart{{"train", 0.7}, {"test", 0.3}}}
	parts, _, _ := splitCSV(t, writeCSV(t, []string{"id", "x"}, rows), spec)
	// Shuffled rows: each key keeps its part.
	shuffled := slices.Clone(rows)
	rand.New(rand.NewPCG(3, 4)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	parts2, _, _ := splitCSV(t, writeCSV(t, []string{"id", "x"}, shuffled), spec)
	if moved := countMoved(partOf(parts), partOf(parts2)); moved != 0 {
		t.Fatalf("reordering moved %d keyed rows", moved)
	}
	if _, err := SplitTable(context.Background(), writeCSV(t, []string{"id"}, nil), SplitSpec{Method: SplitRandom, Key: "nope"}, make([]io.Writer, 3)); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("unknown key column: %v", err)
	}
}

func TestSplitStratified(t *testing.T) {
	classes := map[string]int{"a": 9000, "b": 900, "c": 100, "d": 7}
	var rows [][]string
	i := 0
	r := rand.New(rand.NewPCG(5, 6))
	for c, n := range classes {
		for range n {
			rows = append(rows, []string{fmt.Sprintf("id%05d", i), c})
			i++
		}
	}
	r.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	spec := SplitSpec{Method: SplitStratified, Seed: 9, Column: "label"}
	parts, _, st := splitCSV(t, writeCSV(t, []string{"id", "label"}, rows), spec)
	fr := []float64{0.8, 0.1, 0.1}
	for c, n := range classes {
		counts := st.Strata[c]
		var sum int64
		for k, f := range fr {
			sum += counts[k]
			// Within two rows of the exact proportion, for every class size.
			if d := math.Abs(float64(counts[k]) - float64(n)*f); d > 2 {
				t.Errorf("class %s (%d rows): part %d has %d, want %.1f", c, n, k, counts[k], float64(n)*f)
			}
		}
		if sum != int64(n) {
			t.Errorf("class %s: %d rows assigned of %d", c, sum, n)
		}
	}
	// Rows written agree with the counts.
	for k, rs := range parts {
		per := map[string]int64{}
		for _, r := range rs {
			per[r[1]]++
		}
		for c := range classes {
			if per[c] != st.Strata[c][k] {
				t.Fatalf("part %d class %s: %d rows written, %d counted", k, c, per[c], st.Strata[c][k])
			}
		}
	}
	// Appended rows leave earlier ones where they were.
	more := append(slices.Clone(rows), []string{"id99998", "a"}, []string{"id99999", "d"})
	parts2, _, _ := splitCSV(t, writeCSV(t, []string{"id", "label"}, more), spec)
	if moved := countMoved(partOf(parts), partOf(parts2)); moved != 0 {
		t.Fatalf("appending moved %d rows", moved)
	}
}

func TestSplitGroup(t *testing.T) {
	var rows [][]string
	for i := range 5000 {
		rows = append(rows, []string{fmt.Sprintf("id%05d", i), fmt.Sprintf("user%d", i%400)})
	}
	parts, _, st := splitCSV(t, writeCSV(t, []string{"id", "user"}, rows), SplitSpec{Method: SplitGroup, Seed: 3, Column: "user"})
	where := map[string]int{}
	for k, rs := range parts {
		for _, r := range rs {
			if prev, ok := where[r[1]]; ok && prev != k {
				t.Fatalf("group %s in parts %d and %d", r[1], prev, k)
			}
			where[r[1]] = k
		}
	}
	// By groups: 400 groups of 12-13 rows, test about 10% of them.
	if len(where) != 400 || st.Rows[2] == 0 || st.Rows[0] < 3000 {
		t.Fatalf("groups %d, rows %v", len(where), st.Rows)
	}
}

func TestSplitTime(t *testing.T) {
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var rows [][]string
	for i := range 1000 {
		ts := base.Add(time.Duration(i%500) * time.Hour) // ties: every time twice
		rows = append(rows, []string{fmt.Sprintf("id%05d", i), ts.Format("2006-01-02 15:04:05")})
	}
	rand.New(rand.NewPCG(1, 1)).Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
	p := writeCSV(t, []string{"id", "ts"}, rows)
	parts, _, st := splitCSV(t, p, SplitSpec{Method: SplitTime, Column: "ts"})
	if !reflect.DeepEqual(st.Rows, []int64{800, 100, 100}) {
		t.Fatalf("rows %v (cuts %v)", st.Rows, st.Cuts)
	}
	bounds := func(rs [][]string) (string, string) {
		lo, hi := "9999", ""
		for _, r := range rs {
			lo, hi = min(lo, r[1]), max(hi, r[1])
		}
		return lo, hi
	}
	_, trainHi := bounds(parts[0])
	valLo, valHi := bounds(parts[1])
	testLo, _ := bounds(parts[2])
	if !(trainHi < valLo && valHi < testLo) {
		t.Fatalf("parts overlap in time: train..%s, validation %s..%s, test %s..", trainHi, valLo, valHi, testLo)
	}
	if want := base.Add(400 * time.Hour).Format(time.RFC3339Nano); st.Cuts[0] != want {
		t.Fatalf("cut %s, want %s", st.Cuts[0], want)
	}
	// Given cuts.
	_, _, st = splitCSV(t, p, SplitSpec{Method: SplitTime, Column: "ts", Parts: []SplitPart{{"old", 0}, {"new", 0}}, Cuts: []string{"2024-01-11"}})
	if !reflect.DeepEqual(st.Rows, []int64{480, 520}) {
		t.Fatalf("rows with a cut: %v", st.Rows)
	}
	// A numeric column, split by a numeric cut.
	var nums [][]string
	for i := range 100 {
		nums = append(nums, []string{fmt.Sprint(i), fmt.Sprint(i * 10)})
	}
	_, _, st = splitCSV(t, writeCSV(t, []string{"id", "epoch"}, nums), SplitSpec{Method: SplitTime, Column: "epoch", Parts: []SplitPart{{"a", 0}, {"b", 0}}, Cuts: []string{"250"}})
	if !reflect.DeepEqual(st.Rows, []int64{25, 75}) {
		t.Fatalf("numeric cut: %v", st.Rows)
	}
	// A row without a time is an error naming it.
	rows = append(rows, []string{"idnull", ""})
	_, err := SplitTable(context.Background(), writeCSV(t, []string{"id", "ts"}, rows), SplitSpec{Method: SplitTime, Column: "ts"}, make([]io.Writer, 3))
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "row 1001") {
		t.Fatalf("missing time: %v", err)
	}
}

func TestSplitKeepsCSVText(t *testing.T) {
	rows := [][]string{{"007", "NA", "1.50", "a,b"}, {"008", "", "2", `say "hi"`}, {"009", "nan", "3e2", "ünï"}}
	parts, _, _ := splitCSV(t, writeCSV(t, []string{"id", "na", "num", "text"}, rows),
		SplitSpec{Method: SplitRandom, Parts: []SplitPart{{"all", 1}}})
	if !reflect.DeepEqual(parts[0], rows) {
		t.Fatalf("values changed: %q", parts[0])
	}
}

func TestSplitParquet(t *testing.T) {
	ctx := context.Background()
	var rows [][]string
	for i := range 2000 {
		rows = append(rows, []string{fmt.Sprint(i), fmt.Sprint(i % 3), fmt.Sprint(float64(i) / 7)})
	}
	csvPath := writeCSV(t, []string{"id", "label", "x"}, rows)
	r, err := table.Open(ctx, csvPath, table.Options{})
	if err != nil {
		t.Fatal(err)
	}
	batches, err := table.ReadAll(ctx, r)
	r.Close()
	if err != nil {
		t.Fatal(err)
	}
	pq := filepath.Join(t.TempDir(), "data.parquet")
	f, _ := os.Create(pq)
	w, err := table.NewWriter(f, r.Schema(), table.Parquet)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range batches {
		if err := w.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	f.Close()
	bufs := []*bytes.Buffer{{}, {}, {}}
	st, err := SplitTable(ctx, pq, SplitSpec{Method: SplitStratified, Column: "label"}, []io.Writer{bufs[0], bufs[1], bufs[2]})
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for k, b := range bufs {
		out := filepath.Join(t.TempDir(), "part.parquet")
		os.WriteFile(out, b.Bytes(), 0o644)
		pr, err := table.Open(ctx, out, table.Options{})
		if err != nil {
			t.Fatalf("part %d is not Parquet: %v", k, err)
		}
		bs, err := table.ReadAll(ctx, pr)
		pr.Close()
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, b := range bs {
			n += int64(b.Len)
		}
		if n != st.Rows[k] || !reflect.DeepEqual(pr.Schema().Names(), []string{"id", "label", "x"}) {
			t.Fatalf("part %d: %d rows, stats %d, columns %v", k, n, st.Rows[k], pr.Schema().Names())
		}
		total += n
	}
	if total != 2000 {
		t.Fatalf("%d rows in all", total)
	}
}

func TestSplitSpecErrors(t *testing.T) {
	p := writeCSV(t, []string{"id", "label"}, [][]string{{"1", "a"}})
	for name, spec := range map[string]SplitSpec{
		"method":          {Method: "alphabetical"},
		"sum":             {Method: SplitRandom, Parts: []SplitPart{{"a", 0.5}, {"b", 0.4}}},
		"zero":            {Method: SplitRandom, Parts: []SplitPart{{"a", 1}, {"b", 0}}},
		"NaN":             {Method: SplitRandom, Parts: []SplitPart{{"a", math.NaN()}}},
		"duplicate part":  {Method: SplitRandom, Parts: []SplitPart{{"a", 0.5}, {"a", 0.5}}},
		"bad part name":   {Method: SplitRandom, Parts: []SplitPart{{"a/b", 1}}},
		"no column":       {Method: SplitStratified},
		"unknown column":  {Method: SplitGroup, Column: "nope"},
		"cuts count":      {Method: SplitTime, Column: "label", Cuts: []string{"1", "2", "3"}},
		"cuts not random": {Method: SplitRandom, Cuts: []string{"1"}},
		"decreasing cuts": {Method: SplitTime, Column: "id", Parts: []SplitPart{{"a", 0}, {"b", 0}, {"c", 0}}, Cuts: []string{"5", "2"}},
		"not a time":      {Method: SplitTime, Column: "label"},
	} {
		_, err := SplitTable(context.Background(), p, spec, make([]io.Writer, max(len(spec.Parts), 3)))
		if !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestSplitVersions cuts a stored version into parts recorded as versions
// of their own datasets, and checks that repeating the split, or splitting
// a grown version, leaves the test set's rows untouched.
func TestSplitVersions(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB, s *Store) {
		ctx := context.Background()
		b, err := blob.Open(ctx, "file://"+t.TempDir(), blob.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		remote := NewBucketRemote(b)
		add := func(rows [][]string) *Version {
			dir := t.TempDir()
			var buf bytes.Buffer
			w := csv.NewWriter(&buf)
			w.Write([]string{"id", "label"})
			w.WriteAll(rows)
			writeTree(t, dir, map[string]string{"events.csv": buf.String(), "README.md": "about"})
			src, _ := NewLocalSource(dir)
			m, _, err := Hash(ctx, src, HashOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Push(ctx, src, m, remote, TransferOptions{}); err != nil {
				t.Fatal(err)
			}
			v, _, err := s.CreateVersion(ctx, NewVersion{Dataset: "events", Manifest: m, Source: dir})
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		rows := idRows(2000, func(i int) []string { return []string{fmt.Sprint(i % 2)} })
		v1 := add(rows)
		req := SplitRequest{Source: v1.Ref(), Spec: SplitSpec{Method: SplitRandom, Seed: 5, Key: "id"}, CreatedBy: "ana", TempDir: t.TempDir()}
		outs, stats, err := Split(ctx, s, remote, req)
		if err != nil {
			t.Fatal(err)
		}
		if len(outs) != 3 || outs[2].Part != "test" || outs[2].Version.Dataset != "events-test" || !outs[2].Created || stats.Rows[0]+stats.Rows[1]+stats.Rows[2] != 2000 {
			t.Fatalf("outputs %+v", outs)
		}
		test := outs[2].Version
		if test.Parent == nil || *test.Parent != v1.Ref() || test.Kind != KindFile || test.CreatedBy != "ana" {
			t.Fatalf("test version %+v", test)
		}
		var spec SplitSpec
		if err := jsonUnmarshal(test.SplitSpec, &spec); err != nil || spec.Method != SplitRandom || spec.Key != "id" || len(spec.Parts) != 3 {
			t.Fatalf("recorded spec %s", test.SplitSpec)
		}
		// The part is stored: check it out and count its rows.
		dir := t.TempDir()
		if _, err := Pull(ctx, remote, nil, test.Digest, dir, TransferOptions{}, CheckoutOptions{}); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(filepath.Join(dir, "events.csv"))
		recs, _ := csv.NewReader(bytes.NewReader(data)).ReadAll()
		if int64(len(recs)-1) != outs[2].Rows {
			t.Fatalf("checked-out test part has %d rows, want %d", len(recs)-1, outs[2].Rows)
		}
		// Again: nothing new.
		again, _, err := Split(ctx, s, remote, req)
		if err != nil {
			t.Fatal(err)
		}
		for i, o := range again {
			if o.Created || o.Version.Version != outs[i].Version.Version || o.Version.Digest != outs[i].Version.Digest {
				t.Fatalf("repeated split created %+v", o)
			}
		}
		// A grown version: the old test rows are all still in the test part.
		v2 := add(append(slices.Clone(rows), idRows(2300, func(i int) []string { return []string{"1"} })[2000:]...))
		req.Source = v2.Ref()
		outs2, _, err := Split(ctx, s, remote, req)
		if err != nil {
			t.Fatal(err)
		}
		if !outs2[2].Created || outs2[2].Version.Version != 2 || outs2[2].Version.Parent.Version != 2 {
			t.Fatalf("split of v2 %+v", outs2[2].Version)
		}
		dir2 := t.TempDir()
		if _, err := Pull(ctx, remote, nil, outs2[2].Version.Digest, dir2, TransferOptions{}, CheckoutOptions{}); err != nil {
			t.Fatal(err)
		}
		data2, _ := os.ReadFile(filepath.Join(dir2, "events.csv"))
		newTest := map[string]bool{}
		recs2, _ := csv.NewReader(bytes.NewReader(data2)).ReadAll()
		for _, r := range recs2[1:] {
			newTest[r[0]] = true
		}
		for _, r := range recs[1:] {
			if !newTest[r[0]] {
				t.Fatalf("row %s left the test set when rows were added", r[0])
			}
		}
		// Names and errors.
		if _, _, err := Split(ctx, s, remote, SplitRequest{Source: v1.Ref(), Spec: SplitSpec{Method: SplitRandom}, Names: map[string]string{"train": "events"}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("split into the source dataset: %v", err)
		}
		named, _, err := Split(ctx, s, remote, SplitRequest{Source: v1.Ref(), Spec: SplitSpec{Method: SplitRandom, Parts: []SplitPart{{"train", 0.5}, {"holdout", 0.5}}},
			Names: map[string]string{"holdout": "events-holdout-2024"}, TempDir: t.TempDir()})
		if err != nil || named[1].Version.Dataset != "events-holdout-2024" || named[0].Version.Dataset != "events-train" {
			t.Fatalf("named split %+v %v", named, err)
		}
	})
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
