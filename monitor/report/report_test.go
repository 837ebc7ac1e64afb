package report

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

var update = flag.Bool("update", false, "rewrite testdata/report.golden.html")

var t0 = time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)

func hourly(n int, f func(i int) float64) []Point {
	p := make([]Point, n)
	for i := range p {
		p[i] = Point{t0.Add(time.Duration(i) * time.Hour), f(i)}
	}
	return p
}

// sample is a report with every section filled.
func sample() *Data {
	return &Data{
		Monitor:     "fraud-drift",
		Endpoint:    "fraud",
		GeneratedAt: t0.Add(7 * 24 * time.Hour),
		Window:      Window{Start: t0.Add(6 * 24 * time.Hour), End: t0.Add(7 * 24 * time.Hour)},
		Reference:   "dataset fraud-train v3",
		Status:      "drift",
		Errors:      []string{"performance: no labels in the window"},
		Dataset:     &DatasetDrift{Drifted: 2, Total: 4, Share: 0.5, Threshold: 0.5, Drift: true},
		Features: []Feature{
			{Name: "age", Kind: "numeric", Method: "ks", Score: 0.4, Statistic: 0.03, Threshold: 0.05, RefCount: 1000, CurCount: 900,
				Histogram: &Histogram{Edges: []float64{18, 30, 42, 54, 66, 78}, Ref: []float64{.2, .3, .25, .15, .1}, Cur: []float64{.22, .28, .25, .15, .1}},
				Scores:    hourly(48, func(i int) float64 { return 0.3 + 0.1*math.Sin(float64(i)/5) })},
			{Name: "amount", Kind: "numeric", Method: "wasserstein", Score: 0.31, Statistic: 12.5, Threshold: 0.1, Drift: true, RefCount: 1000, CurCount: 900, Outliers: 17,
				Histogram: &Histogram{Edges: []float64{0, 10, 100, 1000, 1e4}, Ref: []float64{.4, .4, .15, .05}, Cur: []float64{.1, .3, .4, .2}},
				Scores:    hourly(48, func(i int) float64 { return 0.02 * float64(i) / 3 })},
			{Name: "country", Kind: "categorical", Method: "chi2", Score: 1e-9, Statistic: 88, Threshold: 0.05, Drift: true, RefCount: 1000, CurCount: 900,
				Histogram: &Histogram{Categories: []string{"DE", "FR", "US", "other"}, Ref: []float64{.5, .3, .15, .05}, Cur: []float64{.2, .3, .4, .1}}},
			{Name: "device", Kind: "categorical", Method: "jensenshannon", Threshold: 0.1, Score: math.NaN(), Statistic: math.NaN(), Error: "no current values"},
		},
		Outliers:   &Outliers{Rows: 17, Total: 900, Share: 17.0 / 900, Threshold: 0.05, History: hourly(24, func(i int) float64 { return 0.01 + 0.0005*float64(i) })},
		DriftShare: hourly(7*24, func(i int) float64 { return math.Min(1, 0.0035*float64(i)) }),
		Traffic: &Traffic{
			Requests:   hourly(7*24, func(i int) float64 { return 50 + 20*math.Sin(float64(i)/4) }),
			ErrorRate:  hourly(7*24, func(i int) float64 { return 0.002 * float64(i%5) }),
			LatencyP50: hourly(7*24, func(i int) float64 { return 0.004 }),
			LatencyP95: hourly(7*24, func(i int) float64 { return 0.009 + 0.001*float64(i%3) }),
			LatencyP99: hourly(7*24, func(i int) float64 { return 0.02 + 0.002*float64(i%7) }),
		},
		Performance: &Performance{
			Task: "classification", Labelled: 640, Predictions: 900,
			Metrics:    map[string]float64{"accuracy": 0.91, "f1": 0.78, "roc_auc": 0.94},
			Thresholds: map[string]float64{"f1": 0.8},
			Slices: map[string]map[string]map[string]float64{
				"country": {"DE": {"accuracy": 0.93, "f1": 0.8}, "US": {"accuracy": 0.88, "f1": 0.71}},
			},
			History: map[string][]Point{
				"accuracy": hourly(7, func(i int) float64 { return 0.95 - 0.006*float64(i) }),
				"f1":       hourly(7, func(i int) float64 { return 0.85 - 0.01*float64(i) }),
			},
		},
		Alerts: []Alert{
			{Name: "pending-latency", State: "pending", Severity: "warning", Labels: map[string]string{"endpoint": "fraud"}, Value: 0.031, Since: t0.Add(167 * time.Hour)},
			{Name: "dataset-drift", State: "firing", Severity: "critical", Labels: map[string]string{"monitor": "fraud-drift"}, Value: 0.5, Since: t0.Add(150 * time.Hour), Summary: "2 of 4 columns drifted"},
		},
		AlertHistory: []AlertEvent{
			{Time: t0.Add(150 * time.Hour), Name: "dataset-drift", From: "pending", To: "firing", Severity: "critical", Value: 0.5},
			{Time: t0.Add(140 * time.Hour), Name: "dataset-drift", From: "inactive", To: "pending", Severity: "critical", Value: 0.5},
		},
	}
}

func render(t testing.TB, d *Data) string {
	t.Helper()
	var b bytes.Buffer
	if err := Render(&b, d); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestGolden(t *testing.T) {
	got := render(t, sample())
	path := filepath.Join("testdata", "report.golden.html")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if got != string(want) {
		t.Errorf("report differs from %s (run go test -update and review the diff)", path)
	}
}

// checkDocument parses s as HTML and each inline SVG as XML, and fails on
// scripts, external references and event-handler attributes.
func checkDocument(t testing.TB, s string) { checkDocumentText(t, s, true) }

// checkDocumentText is checkDocument; strict also refuses URL-like text
// anywhere (the fixtures have none, fuzzed names may).
func checkDocumentText(t testing.TB, s string, strict bool) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(s))
	if err != nil {
		t.Fatalf("html: %v", err)
	}
	var walk func(n *html.Node)
	svgs := 0
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "script", "iframe", "object", "embed", "img", "link", "image", "foreignobject":
				t.Errorf("element <%s> in the report", n.Data)
			case "svg":
				svgs++
			}
			for _, a := range n.Attr {
				k := strings.ToLower(a.Key)
				if strings.HasPrefix(k, "on") {
					t.Errorf("event attribute %s=%q on <%s>", a.Key, a.Val, n.Data)
				}
				if (k == "href" || k == "src" || k == "xlink:href" || a.Key == "action") && !strings.HasPrefix(a.Val, "#") {
					t.Errorf("external reference %s=%q on <%s>", a.Key, a.Val, n.Data)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	for _, bad := range []string{"http://", "https://", "//cdn", "url(", "@import"} {
		if strict && strings.Contains(s, bad) {
			t.Errorf("report contains %q", bad)
		}
	}
	// Each inline SVG is well-formed XML on its own.
	n := 0
	for rest := s; ; {
		i := strings.Index(rest, "<svg")
		if i < 0 {
			break
		}
		j := strings.Index(rest[i:], "</svg>")
		if j < 0 {
			t.Fatal("unterminated <svg>")
		}
		frag := rest[i : i+j+len("</svg>")]
		dec := xml.NewDecoder(strings.NewReader(frag))
		dec.Strict = true
		for {
			_, err := dec.Token()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("svg %d: %v\n%.300s", n, err, frag)
			}
		}
		n++
		rest = rest[i+j:]
	}
	if n != svgs {
		t.Errorf("%d <svg> fragments, %d svg elements parsed", n, svgs)
	}
}

func TestSelfContained(t *testing.T) {
	s := render(t, sample())
	checkDocument(t, s)
	for _, want := range []string{
		"Monitor fraud-drift", "fraud", "dataset fraud-train v3",
		"2 of 4 columns (50%)", "Dataset drift share", "Requests per second", "Error rate", "Latency", "Outlier share",
		"accuracy", "By country", "dataset-drift", "pending → firing", "no current values",
		"drift when p-value &lt; 0.05", "drift when score ≥ 0.1",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// 5 trends, 2 performance metrics with history, 3 histograms and 2
	// feature score histories.
	if got := strings.Count(s, "<svg"); got != 12 {
		t.Errorf("%d charts, want 12", got)
	}
}

// featureOrder returns the feature names in the table's order.
func featureOrder(s string) []string {
	re := regexp.MustCompile(`<td><a href="#f\d+">([^<]*)</a></td>`)
	var out []string
	for _, m := range re.FindAllStringSubmatch(s, -1) {
		out = append(out, html.UnescapeString(m[1]))
	}
	return out
}

func TestFeatureOrder(t *testing.T) {
	d := &Data{Features: []Feature{
		{Name: "ok-far", Method: "ks", Score: 0.9, Threshold: 0.05},
		{Name: "ok-close", Method: "ks", Score: 0.06, Threshold: 0.05},
		{Name: "broken", Error: "no values", Score: math.NaN()},
		{Name: "drift-psi-small", Method: "psi", Score: 0.12, Threshold: 0.1, Drift: true},
		{Name: "drift-ks-strong", Method: "ks", Score: 1e-12, Threshold: 0.05, Drift: true},
		{Name: "drift-ks-zero", Method: "ks", Score: 0, Threshold: 0.05, Drift: true},
		{Name: "ok-dist", Method: "wasserstein", Score: 0.09, Threshold: 0.1},
	}}
	got := featureOrder(render(t, d))
	want := []string{"drift-ks-zero", "drift-ks-strong", "drift-psi-small", "broken", "ok-dist", "ok-close", "ok-far"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("order %v, want %v", got, want)
	}
}

func TestHostileText(t *testing.T) {
	const evil = `<script>alert("x")</script>`
	const attr = `"><img src=x onerror=alert(1)>`
	d := sample()
	d.Monitor = evil
	d.Endpoint = attr
	d.Reference = evil
	d.Status = evil
	d.Errors = []string{evil}
	d.Features[0].Name = evil
	d.Features[1].Name = attr
	d.Features[1].Error = evil
	d.Features[2].Histogram.Categories[0] = evil
	d.Features[2].Histogram.Categories[1] = attr + "&amp;\x00\u2028"
	d.Features[3].Kind = evil
	d.Features[3].Method = attr
	d.Performance.Metrics[evil] = 1
	d.Performance.Slices[evil] = map[string]map[string]float64{attr: {evil: 1}}
	d.Performance.History[attr] = hourly(3, func(int) float64 { return 1 })
	d.Alerts[0].Labels = map[string]string{evil: attr}
	d.Alerts[0].Summary = evil
	d.AlertHistory[0].Name = attr
	d.AlertHistory[0].To = evil
	s := render(t, d)
	checkDocument(t, s)
	low := strings.ToLower(s)
	if strings.Contains(low, "<script") || strings.Contains(low, "<img") {
		t.Error("hostile text reached the document unescaped")
	}
	if !strings.Contains(s, "&lt;script&gt;") {
		t.Error("escaped feature name missing")
	}
}

func TestEmpty(t *testing.T) {
	for name, d := range map[string]*Data{"nil": nil, "zero": {}, "no-history": {
		Monitor: "m", Features: []Feature{{Name: "x", Method: "ks", Score: 0.5, Threshold: 0.05}},
		Traffic: &Traffic{}, Performance: &Performance{}, Outliers: &Outliers{}, Dataset: &DatasetDrift{},
	}} {
		t.Run(name, func(t *testing.T) {
			s := render(t, d)
			checkDocument(t, s)
			if !strings.Contains(s, "No history yet.") {
				t.Error("missing the empty-history note")
			}
			if d == nil || len(d.Features) == 0 {
				if !strings.Contains(s, "No features were compared.") {
					t.Error("missing the no-features note")
				}
			}
		})
	}
}

func TestNonFinite(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	d := &Data{
		Dataset: &DatasetDrift{Share: nan, Threshold: 0.5},
		Features: []Feature{
			{Name: "a", Method: "psi", Score: inf, Statistic: math.Inf(-1), Threshold: 0.1, Drift: true,
				Histogram: &Histogram{Edges: []float64{math.Inf(-1), 0, 1, inf}, Ref: []float64{nan, .5, .5}, Cur: []float64{inf, -1, .2}},
				Scores:    []Point{{t0, nan}, {t0.Add(time.Hour), inf}, {t0.Add(2 * time.Hour), 0.2}, {t0.Add(3 * time.Hour), nan}, {t0.Add(4 * time.Hour), 0.3}, {t0.Add(5 * time.Hour), 0.4}}},
			{Name: "b", Method: "ks", Score: nan, Threshold: nan},
		},
		DriftShare:  []Point{{t0, nan}, {t0.Add(time.Hour), inf}},
		Performance: &Performance{Metrics: map[string]float64{"log_loss": inf, "r2": nan}},
		Traffic:     &Traffic{LatencyP99: []Point{{t0, 0.01}}},
		Alerts:      []Alert{{Name: "x", State: "firing", Value: nan}},
	}
	s := render(t, d)
	checkDocument(t, s)
	for _, bad := range []string{"NaN", "Inf", "e+308"} {
		if strings.Contains(s, bad) {
			t.Errorf("report contains %q", bad)
		}
	}
	for _, want := range []string{"—", "∞", "−∞"} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// The all-gap drift share draws no chart; the single p99 point does.
	if strings.Contains(s, "Dataset drift share") {
		t.Error("a chart of only non-finite points was drawn")
	}
	if !strings.Contains(s, `aria-label="Latency"`) {
		t.Error("single-point chart missing")
	}
}

var polylineRE = regexp.MustCompile(`<polyline class="s\d" points="([^"]*)"`)

func TestLarge(t *testing.T) {
	const features, points = 500, 10_000
	d := &Data{Monitor: "big", Dataset: &DatasetDrift{Total: features, Threshold: 0.5}}
	long := func(f func(i int) float64) []Point {
		p := make([]Point, points)
		for i := range p {
			p[i] = Point{t0.Add(time.Duration(i) * time.Minute), f(i)}
		}
		return p
	}
	for i := range features {
		edges := make([]float64, 21)
		ref, cur := make([]float64, 20), make([]float64, 20)
		for j := range edges {
			edges[j] = float64(j) * 1.5
		}
		for j := range ref {
			ref[j], cur[j] = 0.05, 0.05
		}
		cats := make([]string, 200)
		cref, ccur := make([]float64, 200), make([]float64, 200)
		for j := range cats {
			cats[j] = fmt.Sprintf("category-%03d", j)
			cref[j], ccur[j] = 1.0/200, 1.0/200
		}
		h := &Histogram{Edges: edges, Ref: ref, Cur: cur}
		if i%5 == 0 {
			h = &Histogram{Categories: cats, Ref: cref, Cur: ccur}
		}
		d.Features = append(d.Features, Feature{
			Name: fmt.Sprintf("feature_%03d", i), Kind: "numeric", Method: "ks", Score: float64(i) / features, Threshold: 0.05,
			Drift: i%7 == 0, RefCount: 1e6, CurCount: 1e6, Histogram: h,
			Scores: long(func(j int) float64 { return math.Abs(math.Sin(float64(i+j) / 100)) }),
		})
	}
	d.DriftShare = long(func(i int) float64 { return float64(i%100) / 100 })
	d.Traffic = &Traffic{
		Requests:   long(func(i int) float64 { return float64(i % 37) }),
		ErrorRate:  long(func(i int) float64 { return float64(i%11) / 1000 }),
		LatencyP99: long(func(i int) float64 { return float64(i%13) / 100 }),
	}
	s := render(t, d)
	checkDocument(t, s)
	// Every series is bounded: at most MaxPoints points (plus a point per
	// gap), whatever its length.
	lines := polylineRE.FindAllStringSubmatch(s, -1)
	if len(lines) < features {
		t.Fatalf("%d polylines", len(lines))
	}
	for _, m := range lines {
		if n := len(strings.Fields(m[1])); n > MaxPoints+1 {
			t.Fatalf("polyline of %d points", n)
		}
	}
	// 500 features of 20 bins or 30 categories, each with a score chart:
	// about 9 KB a feature, whatever the history's length (see
	// TestSizeIndependentOfHistory).
	const limit = 5 << 20
	if len(s) > limit {
		t.Errorf("report of %d bytes, want ≤ %d", len(s), limit)
	}
	t.Logf("report: %d bytes, %d polylines", len(s), len(lines))
	// Categories beyond maxBins are summed into one bin.
	if !strings.Contains(s, "other (171)") {
		t.Error("categories were not capped")
	}
}

func TestSizeIndependentOfHistory(t *testing.T) {
	size := func(points int) int {
		d := &Data{Traffic: &Traffic{}}
		series := func(phase int) []Point {
			p := make([]Point, points)
			for i := range p {
				// The same curve over the same week, sampled more or less often.
				x := float64(i) / float64(points)
				p[i] = Point{t0.Add(time.Duration(x * float64(7*24*time.Hour))), math.Abs(math.Sin(x*40 + float64(phase)))}
			}
			return p
		}
		d.DriftShare = series(0)
		d.Traffic.Requests = series(1)
		for i := range 10 {
			d.Features = append(d.Features, Feature{Name: fmt.Sprint("f", i), Method: "ks", Threshold: 0.05, Scores: series(i)})
		}
		return len(render(t, d))
	}
	small, big := size(2_000), size(200_000)
	if float64(big) > 1.05*float64(small) {
		t.Errorf("200k points: %d bytes, 2k points: %d bytes", big, small)
	}
}

func TestLTTB(t *testing.T) {
	s := make([]xy, 1000)
	for i := range s {
		s[i] = xy{float64(i), 0}
	}
	s[500].y = 10 // a spike
	s[700].y = -5 // a dip
	got := lttb(s, 50)
	if len(got) != 50 {
		t.Fatalf("%d points", len(got))
	}
	if got[0] != s[0] || got[len(got)-1] != s[len(s)-1] {
		t.Error("ends not kept")
	}
	var spike, dip bool
	for i, p := range got {
		spike = spike || p.y == 10
		dip = dip || p.y == -5
		if i > 0 && p.x <= got[i-1].x {
			t.Fatal("not increasing in x")
		}
	}
	if !spike || !dip {
		t.Errorf("spike kept %v, dip kept %v", spike, dip)
	}
	if got := lttb(s[:10], 50); len(got) != 10 {
		t.Errorf("short series changed: %d", len(got))
	}
	if got := lttb(s, 2); len(got) != 2 {
		t.Errorf("n=2: %d", len(got))
	}
}

func TestSegmentsGaps(t *testing.T) {
	pts := []Point{
		{t0.Add(3 * time.Hour), 3}, {t0, 0}, {t0.Add(time.Hour), 1},
		{t0.Add(2 * time.Hour), math.NaN()}, {time.Time{}, 9},
	}
	segs := segments(pts, 100)
	if len(segs) != 2 || len(segs[0]) != 2 || len(segs[1]) != 1 || segs[1][0].y != 3 {
		t.Errorf("segments %v", segs)
	}
}

func TestFormatting(t *testing.T) {
	for _, c := range []struct {
		got, want string
	}{
		{number(0.05), "0.05"},
		{number(1e-9), "1e-09"},
		{number(123456), "123456"},
		{number(12.3456), "12.35"},
		{number(math.NaN()), "—"},
		{number(math.Inf(1)), "∞"},
		{pct(0.5), "50%"},
		{pct(17.0 / 900), "1.89%"},
		{durationLabel(0.0042), "4.2ms"},
		{durationLabel(2e-5), "20µs"},
		{durationLabel(1.5), "1.5s"},
		{tickLabel(0.25, 0.05, unitShare), "25%"},
		{tickLabel(0.2, 0.1, unitNone), "0.2"},
		{tickLabel(40, 20, unitRate), "40/s"},
		{truncate("abcdefgh", 4), "ab…h"},
		{truncate("abcdefgh", 5), "ab…gh"},
		{truncate("abc", 5), "abc"},
		{spanLabel(24 * time.Hour), "24h"},
		{spanLabel(7 * 24 * time.Hour), "7 days"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	ticks := niceTicks(0, 0.37, 5)
	if ticks[0] != 0 || ticks[len(ticks)-1] < 0.37 || len(ticks) > 8 {
		t.Errorf("ticks %v", ticks)
	}
	tt := timeTicks(float64(t0.Unix()), float64(t0.Add(7*24*time.Hour).Unix()))
	if len(tt) < 3 || len(tt) > 8 || tt[0].label != "May 1" {
		t.Errorf("time ticks %v", tt)
	}
}

// FuzzRender renders outside text (feature, category, label names) and
// checks the document stays well-formed and inert.
func FuzzRender(f *testing.F) {
	f.Add("amount", "DE", "<script>alert(1)</script>", 0.01)
	f.Add(`"><svg onload=x>`, "]]>&#0;", "\x00\xff", math.NaN())
	f.Add("", "", "", math.Inf(-1))
	f.Fuzz(func(t *testing.T, name, category, label string, score float64) {
		d := &Data{
			Monitor: label, Status: label,
			Features: []Feature{{
				Name: name, Kind: label, Method: label, Score: score, Threshold: 0.05, Drift: score < 0.05,
				Histogram: &Histogram{Categories: []string{category, label}, Ref: []float64{score, 1}, Cur: []float64{1, score}},
				Scores:    []Point{{t0, score}, {t0.Add(time.Hour), 0.5}},
			}},
			Alerts: []Alert{{Name: name, Labels: map[string]string{label: category}, Summary: category}},
		}
		s := render(t, d)
		if strings.Contains(strings.ToLower(s), "<script") {
			t.Fatal("script element")
		}
		doc, err := html.Parse(strings.NewReader(s))
		if err != nil || doc == nil {
			t.Fatal(err)
		}
		checkDocumentText(t, s, false)
	})
}

type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.n += len(p); w.n > 1000 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestRenderWriteError(t *testing.T) {
	err := Render(&failingWriter{}, sample())
	if err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("err = %v", err)
	}
}
