package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kiln-ml/kiln/stattest"
)

//go:embed report.html.tmpl
var pageSource string

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"inc": func(i int) int { return i + 1 },
}).Parse(pageSource))

// featurePoints bounds the points of each feature's score chart.
const featurePoints = 120

// Render writes d as one self-contained HTML document to w.
func Render(w io.Writer, d *Data) error {
	if d == nil {
		d = &Data{}
	}
	if err := page.Execute(w, build(d)); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

type view struct {
	Title       string
	Monitor     string
	Endpoint    string
	Status      string
	StatusClass string
	Generated   string
	Window      string
	Reference   string
	Errors      []string

	Dataset  *datasetView
	Outliers *outlierView
	Features []featureView
	Drifted  int
	Failed   int
	Trends   []template.HTML
	Perf     *perfView
	Alerts   []alertView
	Firing   int
	History  []eventView
}

type datasetView struct {
	Drifted, Total   int
	Share, Threshold string
	Drift            bool
}

type outlierView struct {
	Rows, Total int64
	Share       string
	Threshold   string
	Over        bool
}

type featureView struct {
	ID                       string
	Name, Kind, Method       string
	Score, Statistic, Thresh string
	Rule                     string
	Drift                    bool
	Error                    string
	RefCount, CurCount       int64
	Outliers                 int64
	Hist, Trend              template.HTML
}

type perfView struct {
	Task                  string
	Labelled, Predictions int64
	Coverage              string
	Metrics               []metricView
	Slices                []sliceView
	Charts                []template.HTML
}

type metricView struct{ Name, Value, Threshold string }

type sliceView struct {
	Column  string
	Metrics []string
	Rows    []sliceRow
}

type sliceRow struct {
	Value  string
	Values []string
}

type alertView struct {
	Name, State, Severity, Labels, Value, Since, Summary string
}

type eventView struct {
	Time, Name, From, To, Severity, Labels, Value, Summary string
}

func build(d *Data) *view {
	v := &view{
		Monitor:   d.Monitor,
		Endpoint:  d.Endpoint,
		Status:    d.Status,
		Reference: d.Reference,
		Errors:    d.Errors,
		Generated: timeLabel(d.GeneratedAt),
	}
	v.Title = "Monitor report"
	if d.Monitor != "" {
		v.Title = "Monitor " + d.Monitor
	}
	if v.Status == "" {
		v.Status = "unknown"
	}
	v.StatusClass = statusClass(v.Status)
	if !d.Window.Start.IsZero() || !d.Window.End.IsZero() {
		v.Window = timeLabel(d.Window.Start) + " – " + timeLabel(d.Window.End)
		if !d.Window.Start.IsZero() && d.Window.End.After(d.Window.Start) {
			v.Window += " (" + spanLabel(d.Window.End.Sub(d.Window.Start)) + ")"
		}
	}
	if ds := d.Dataset; ds != nil {
		v.Dataset = &datasetView{Drifted: ds.Drifted, Total: ds.Total, Share: pct(ds.Share), Threshold: pct(ds.Threshold), Drift: ds.Drift}
	}
	if o := d.Outliers; o != nil {
		v.Outliers = &outlierView{Rows: o.Rows, Total: o.Total, Share: pct(o.Share), Over: o.Threshold > 0 && o.Share >= o.Threshold}
		if o.Threshold > 0 {
			v.Outliers.Threshold = pct(o.Threshold)
		}
	}

	feats := slices.Clone(d.Features)
	slices.SortStableFunc(feats, compareFeatures)
	for i, f := range feats {
		fv := featureView{
			ID:   "f" + strconv.Itoa(i+1),
			Name: f.Name, Kind: f.Kind, Method: f.Method,
			Score: number(f.Score), Statistic: number(f.Statistic), Thresh: number(f.Threshold),
			Drift: f.Drift, Error: f.Error,
			RefCount: f.RefCount, CurCount: f.CurCount, Outliers: f.Outliers,
		}
		if f.Method != "" {
			switch m := stattest.Method(f.Method); {
			case m == stattest.MethodKS:
				fv.Rule = "drift when p-value ≤ " + fv.Thresh
			case m.PValue():
				fv.Rule = "drift when p-value < " + fv.Thresh
			default:
				fv.Rule = "drift when score ≥ " + fv.Thresh
			}
		}
		if f.Drift {
			v.Drifted++
		}
		if f.Error != "" {
			v.Failed++
		}
		fv.Hist = histogramSVG(f.Name+" — reference vs current", f.Histogram, f.Drift)
		fv.Trend = lineChart{
			title:      f.Name + " — " + methodLabel(f.Method) + " over time",
			series:     []series{{points: f.Scores}},
			thresholds: []threshold{{"threshold", f.Threshold}},
			maxPoints:  featurePoints,
		}.svg()
		v.Features = append(v.Features, fv)
	}

	var dsThr []threshold
	if d.Dataset != nil {
		dsThr = []threshold{{"drift share threshold", d.Dataset.Threshold}}
	}
	add := func(c lineChart) {
		if s := c.svg(); s != "" {
			v.Trends = append(v.Trends, s)
		}
	}
	add(lineChart{title: "Dataset drift share", unit: unitShare, series: []series{{points: d.DriftShare}}, thresholds: dsThr})
	if t := d.Traffic; t != nil {
		add(lineChart{title: "Requests per second", unit: unitRate, series: []series{{points: t.Requests}}})
		add(lineChart{title: "Error rate", unit: unitShare, series: []series{{points: t.ErrorRate}}})
		add(lineChart{title: "Latency", unit: unitSeconds, series: []series{
			{"p50", t.LatencyP50}, {"p95", t.LatencyP95}, {"p99", t.LatencyP99},
		}})
	}
	if o := d.Outliers; o != nil {
		var thr []threshold
		if o.Threshold > 0 {
			thr = []threshold{{"threshold", o.Threshold}}
		}
		add(lineChart{title: "Outlier share", unit: unitShare, series: []series{{points: o.History}}, thresholds: thr})
	}

	if p := d.Performance; p != nil {
		pv := &perfView{Task: p.Task, Labelled: p.Labelled, Predictions: p.Predictions}
		if p.Predictions > 0 {
			pv.Coverage = pct(float64(p.Labelled) / float64(p.Predictions))
		}
		names := slices.Sorted(maps.Keys(p.Metrics))
		for _, n := range slices.Sorted(maps.Keys(p.History)) {
			if _, ok := p.Metrics[n]; !ok {
				names = append(names, n)
			}
		}
		for _, n := range names {
			mv := metricView{Name: n, Value: "—"}
			if val, ok := p.Metrics[n]; ok {
				mv.Value = number(val)
			}
			var thr []threshold
			if t, ok := p.Thresholds[n]; ok {
				mv.Threshold = number(t)
				thr = []threshold{{"threshold", t}}
			}
			pv.Metrics = append(pv.Metrics, mv)
			if s := (lineChart{title: n + " over time", series: []series{{points: p.History[n]}}, thresholds: thr}).svg(); s != "" {
				pv.Charts = append(pv.Charts, s)
			}
		}
		for _, col := range slices.Sorted(maps.Keys(p.Slices)) {
			vals := p.Slices[col]
			metricSet := map[string]bool{}
			for _, m := range vals {
				for k := range m {
					metricSet[k] = true
				}
			}
			sv := sliceView{Column: col, Metrics: slices.Sorted(maps.Keys(metricSet))}
			for _, val := range slices.Sorted(maps.Keys(vals)) {
				row := sliceRow{Value: val}
				for _, m := range sv.Metrics {
					x, ok := vals[val][m]
					if !ok {
						x = math.NaN()
					}
					row.Values = append(row.Values, number(x))
				}
				sv.Rows = append(sv.Rows, row)
			}
			pv.Slices = append(pv.Slices, sv)
		}
		v.Perf = pv
	}

	for _, a := range d.Alerts {
		if a.State == "firing" {
			v.Firing++
		}
		v.Alerts = append(v.Alerts, alertView{
			Name: a.Name, State: a.State, Severity: a.Severity, Labels: labelsLabel(a.Labels),
			Value: number(a.Value), Since: timeLabel(a.Since), Summary: a.Summary,
		})
	}
	slices.SortStableFunc(v.Alerts, func(a, b alertView) int {
		if (a.State == "firing") != (b.State == "firing") {
			if a.State == "firing" {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Name, b.Name)
	})
	for _, e := range d.AlertHistory {
		v.History = append(v.History, eventView{
			Time: timeLabel(e.Time), Name: e.Name, From: e.From, To: e.To, Severity: e.Severity,
			Labels: labelsLabel(e.Labels), Value: number(e.Value), Summary: e.Summary,
		})
	}
	return v
}

// compareFeatures orders drifted features first, then those that could not
// be tested, then the rest; within each, the furthest past (or closest
// to) its threshold first, then by name.
func compareFeatures(a, b Feature) int {
	rank := func(f Feature) int {
		switch {
		case f.Drift:
			return 0
		case f.Error != "":
			return 1
		}
		return 2
	}
	if ra, rb := rank(a), rank(b); ra != rb {
		return ra - rb
	}
	sa, sb := severity(a), severity(b)
	switch {
	case sa > sb:
		return -1
	case sa < sb:
		return 1
	}
	return strings.Compare(a.Name, b.Name)
}

// severity is how far a score is past its threshold, as a ratio (> 1:
// drifted): threshold/score for p-values, score/threshold for distances.
func severity(f Feature) float64 {
	if !finite(f.Score) || !finite(f.Threshold) || f.Threshold <= 0 {
		return math.Inf(-1)
	}
	if stattest.Method(f.Method).PValue() {
		if f.Score <= 0 {
			return math.Inf(1)
		}
		return f.Threshold / f.Score
	}
	return f.Score / f.Threshold
}

func methodLabel(m string) string {
	if m == "" {
		return "score"
	}
	if stattest.Method(m).PValue() {
		return m + " p-value"
	}
	return m + " score"
}

func statusClass(s string) string {
	switch strings.ToLower(s) {
	case "ok", "healthy", "passing", "passed", "resolved":
		return "ok"
	case "drift", "drifted", "degraded", "warning", "pending":
		return "warn"
	case "alerting", "firing", "error", "failed", "critical":
		return "bad"
	}
	return "neutral"
}

func timeLabel(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func spanLabel(d time.Duration) string {
	switch {
	case d >= 48*time.Hour && d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + " days"
	case d >= time.Hour && d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	}
	return d.Round(time.Second).String()
}

func labelsLabel(l map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(l)) {
		parts = append(parts, k+"="+l[k])
	}
	return strings.Join(parts, ", ")
}
