package report

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// dashboardPath is the Grafana dashboard shipped in the repository.
const dashboardPath = "../../docs/grafana/kiln.json"

// dashboardMetrics are the metric names the dashboard may use, with the
// package that registers each (TestDashboardMetricsExist checks that the
// name is a string literal there).
var dashboardMetrics = map[string]string{
	"kiln_endpoint_requests_total":                   "deploy",
	"kiln_endpoint_request_duration_seconds":         "deploy",
	"kiln_endpoint_shed_total":                       "deploy",
	"kiln_endpoint_in_flight_requests":               "deploy",
	"kiln_endpoint_queued_requests":                  "deploy",
	"kiln_inference_requests_total":                  "serving",
	"kiln_prediction_log_records_total":              "monitor/predlog",
	"kiln_prediction_log_dropped_total":              "monitor/predlog",
	"kiln_prediction_log_unshipped_bytes":            "monitor/predlog",
	"kiln_prediction_log_bytes_total":                "monitor/predlog",
	"kiln_prediction_log_segments_shipped_total":     "monitor/predlog",
	"kiln_prediction_log_ship_errors_total":          "monitor/predlog",
	"kiln_prediction_log_fsync_duration_seconds":     "monitor/predlog",
	"kiln_monitor_dataset_drift_share":               "monitor",
	"kiln_monitor_dataset_drift_detected":            "monitor",
	"kiln_monitor_feature_drift_score":               "monitor",
	"kiln_monitor_feature_drift_detected":            "monitor",
	"kiln_monitor_prediction_drift_score":            "monitor",
	"kiln_monitor_quality":                           "monitor",
	"kiln_monitor_outlier_share":                     "monitor",
	"kiln_monitor_evaluation_duration_seconds":       "monitor",
	"kiln_monitor_evaluations_total":                 "monitor",
	"kiln_monitor_last_evaluation_timestamp_seconds": "monitor",
	"kiln_alerts":                              "monitor/alert",
	"kiln_alert_transitions_total":             "monitor/alert",
	"kiln_alert_notifications_total":           "monitor/alert",
	"kiln_alert_notification_duration_seconds": "monitor/alert",
}

type grafanaDashboard struct {
	UID           string         `json:"uid"`
	Title         string         `json:"title"`
	SchemaVersion int            `json:"schemaVersion"`
	Panels        []grafanaPanel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string             `json:"name"`
			Type       string             `json:"type"`
			Query      json.RawMessage    `json:"query"`
			Definition string             `json:"definition"`
			Datasource *grafanaDatasource `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type grafanaDatasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type grafanaPanel struct {
	ID         int                      `json:"id"`
	Type       string                   `json:"type"`
	Title      string                   `json:"title"`
	Datasource *grafanaDatasource       `json:"datasource"`
	GridPos    struct{ H, W, X, Y int } `json:"gridPos"`
	Targets    []struct {
		Expr       string             `json:"expr"`
		RefID      string             `json:"refId"`
		Datasource *grafanaDatasource `json:"datasource"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"` // of a collapsed row
}

func loadDashboard(t *testing.T) *grafanaDashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	return &d
}

func allPanels(ps []grafanaPanel) []grafanaPanel {
	var out []grafanaPanel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

var (
	metricRE = regexp.MustCompile(`\bkiln_[a-z_]+`)
	// Series of a histogram or summary name their family with a suffix.
	histogramSuffix = regexp.MustCompile(`_(bucket|sum|count)$`)
)

func TestDashboard(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Error("dashboard needs a uid and a title")
	}
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d: the datasource-variable form needs 36 or later", d.SchemaVersion)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		if v.Type == "query" {
			if v.Datasource == nil || v.Datasource.UID != "${DS_PROMETHEUS}" {
				t.Errorf("variable %s: datasource %+v", v.Name, v.Datasource)
			}
			if !strings.HasPrefix(v.Definition, "label_values(") || !strings.Contains(string(v.Query), v.Definition[:20]) {
				t.Errorf("variable %s: query %s / definition %q", v.Name, v.Query, v.Definition)
			}
		}
	}
	for name, typ := range map[string]string{"DS_PROMETHEUS": "datasource", "endpoint": "query", "monitor": "query"} {
		if vars[name] != typ {
			t.Errorf("variable %s: type %q, want %q", name, vars[name], typ)
		}
	}

	ids := map[int]bool{}
	type cell struct{ x, y int }
	taken := map[cell]string{}
	titles := map[string]bool{}
	for _, p := range allPanels(d.Panels) {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Title == "" {
			t.Errorf("panel %d has no title", p.ID)
		}
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: gridPos %+v", p.Title, p.GridPos)
		}
		for x := p.GridPos.X; x < p.GridPos.X+p.GridPos.W; x++ {
			for y := p.GridPos.Y; y < p.GridPos.Y+p.GridPos.H; y++ {
				if other, ok := taken[cell{x, y}]; ok {
					t.Fatalf("panels %q and %q overlap at %d,%d", other, p.Title, x, y)
				}
				taken[cell{x, y}] = p.Title
			}
		}
		if p.Type == "row" {
			continue
		}
		titles[p.Title] = true
		if p.Datasource == nil || p.Datasource.Type != "prometheus" || p.Datasource.UID != "${DS_PROMETHEUS}" {
			t.Errorf("panel %q: datasource %+v", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no targets", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.Expr == "" || tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("panel %q: target %q refId %q", p.Title, tg.Expr, tg.RefID)
			}
			refs[tg.RefID] = true
			if tg.Datasource == nil || tg.Datasource.UID != "${DS_PROMETHEUS}" {
				t.Errorf("panel %q: target datasource %+v", p.Title, tg.Datasource)
			}
			if err := balanced(tg.Expr); err != "" {
				t.Errorf("panel %q: %s in %q", p.Title, err, tg.Expr)
			}
			if strings.Contains(tg.Expr, "rate(") && !strings.Contains(tg.Expr, "[") {
				t.Errorf("panel %q: rate without a range in %q", p.Title, tg.Expr)
			}
		}
	}
	// The panels the issue asks for.
	for _, want := range []string{
		"Requests/s by endpoint and route", "Error rate by endpoint", "Latency p50 / p95 / p99 by endpoint",
		"Dataset drift share", "Feature drift distance (top 10)", "Feature drift p-value (lowest 10)", "Drifted features",
		"Quality metrics", "Outlier share", "Alerts firing", "Prediction-log records/s", "Unshipped bytes",
		"Monitor evaluation duration",
	} {
		if !titles[want] {
			t.Errorf("no panel %q", want)
		}
	}
}

// balanced reports unbalanced brackets or quotes in a PromQL expression.
func balanced(expr string) string {
	var stack []rune
	pairs := map[rune]rune{')': '(', ']': '[', '}': '{'}
	inQuote := false
	for _, r := range expr {
		switch {
		case r == '"':
			inQuote = !inQuote
		case inQuote:
		case r == '(' || r == '[' || r == '{':
			stack = append(stack, r)
		case pairs[r] != 0:
			if len(stack) == 0 || stack[len(stack)-1] != pairs[r] {
				return "unbalanced " + string(r)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if inQuote {
		return "unterminated string"
	}
	if len(stack) > 0 {
		return "unclosed " + string(stack)
	}
	return ""
}

// dashboardExprs returns every PromQL expression of the dashboard: panel
// targets and variable queries.
func dashboardExprs(t *testing.T) []string {
	d := loadDashboard(t)
	var out []string
	for _, p := range allPanels(d.Panels) {
		for _, tg := range p.Targets {
			out = append(out, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		out = append(out, v.Definition)
	}
	return out
}

func TestDashboardMetricNames(t *testing.T) {
	used := map[string]bool{}
	for _, e := range dashboardExprs(t) {
		for _, m := range metricRE.FindAllString(e, -1) {
			name := m
			if _, ok := dashboardMetrics[name]; !ok {
				name = histogramSuffix.ReplaceAllString(m, "")
			}
			if _, ok := dashboardMetrics[name]; !ok {
				t.Errorf("dashboard uses %s, which is not a known Kiln metric", m)
			}
			used[name] = true
		}
	}
	for m := range dashboardMetrics {
		if !used[m] {
			t.Errorf("%s is listed but no panel uses it", m)
		}
	}
}

// TestDashboardMetricsExist checks each listed name against the code that
// registers it: the name is a string literal in a non-test Go file of
// that package.
func TestDashboardMetricsExist(t *testing.T) {
	found := map[string][]string{} // metric → packages with its literal
	lit := regexp.MustCompile(`"(kiln_[a-z_]+)"`)
	root := filepath.Join("..", "..")
	pkgs := map[string]bool{}
	for _, p := range dashboardMetrics {
		pkgs[p] = true
	}
	for pkg := range pkgs {
		dir := filepath.Join(root, filepath.FromSlash(pkg))
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
				continue
			}
			b, err := fs.ReadFile(os.DirFS(dir), e.Name())
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range lit.FindAllStringSubmatch(string(b), -1) {
				if !slices.Contains(found[m[1]], pkg) {
					found[m[1]] = append(found[m[1]], pkg)
				}
			}
		}
	}
	for m, pkg := range dashboardMetrics {
		if !slices.Contains(found[m], pkg) {
			t.Errorf("%s: no string literal %q in package %s", m, m, pkg)
		}
	}
}

// TestMonitoringDocMetrics checks that every kiln_ metric named in
// docs/monitoring.md is a string literal of the non-test Go code.
func TestMonitoringDocMetrics(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "monitoring.md"))
	if err != nil {
		t.Fatal(err)
	}
	literals := map[string]bool{}
	lit := regexp.MustCompile(`"(kiln_[a-z_]+)"`)
	root := filepath.Join("..", "..")
	err = filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			switch e.Name() {
			case ".git", ".venv", "node_modules", "testdata", "tests", "bench", "sdk":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range lit.FindAllStringSubmatch(string(b), -1) {
			literals[m[1]] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, m := range metricRE.FindAllString(string(doc), -1) {
		if !strings.HasSuffix(m, "_") { // kiln_monitor_* names a family
			names[m] = true
		}
	}
	if len(names) < 20 {
		t.Fatalf("only %d metric names in docs/monitoring.md", len(names))
	}
	for m := range names {
		if !literals[m] && !literals[histogramSuffix.ReplaceAllString(m, "")] {
			t.Errorf("docs/monitoring.md names %s, which no Go code registers", m)
		}
	}
}
