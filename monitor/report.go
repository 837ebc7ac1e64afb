package monitor

import (
	"context"
	"io"
	"time"

	"github.com/kiln-ml/kiln/monitor/alert"
	"github.com/kiln-ml/kiln/monitor/drift"
	"github.com/kiln-ml/kiln/monitor/report"
)

// ReportResults bounds the results a report draws.
const ReportResults = 2000

// Report renders a monitor's HTML report (package monitor/report): the
// latest result in detail and the series of up to ReportResults results.
func (s *Service) Report(ctx context.Context, name string, w io.Writer) error {
	sm, err := s.store.Get(ctx, name)
	if err != nil {
		return err
	}
	rs, err := s.store.Results(ctx, name, time.Time{}, time.Time{}, ReportResults)
	if err != nil {
		return err
	}
	var active []alert.State
	var history []alert.Event
	if s.o.Alerts != nil {
		if active, err = s.o.Alerts.Active(ctx, name); err != nil {
			return err
		}
		if history, err = s.o.Alerts.History(ctx, alert.HistoryQuery{Monitor: name, Limit: 200}); err != nil {
			return err
		}
	}
	return report.Render(w, ReportData(sm, rs, active, history, s.now()))
}

// ReportData maps a monitor's results (oldest first) and alerts into a
// report.
func ReportData(sm *StoredMonitor, rs []*Result, active []alert.State, history []alert.Event, now time.Time) *report.Data {
	m := sm.Monitor
	spec := m.Spec.Effective()
	d := &report.Data{Monitor: m.Metadata.Name, Endpoint: spec.Endpoint, GeneratedAt: now, Reference: spec.Reference.String(), Status: "pending"}
	if len(rs) == 0 {
		return d
	}
	last := rs[len(rs)-1]
	d.Window = report.Window{Start: last.WindowStart, End: last.WindowEnd}
	d.Status = last.Status
	if FiringAlerts(active) > 0 {
		d.Status = "alerting"
	}
	if last.Message != "" {
		d.Errors = []string{last.Message}
	}
	if ri := last.Reference; ri != nil {
		switch {
		case ri.Dataset != "" && ri.Model != "":
			d.Reference = "dataset " + ri.Dataset + " (lineage of model version " + ri.Model + ")"
		case ri.Dataset != "":
			d.Reference = "dataset " + ri.Dataset
		case !ri.Start.IsZero():
			d.Reference = "window " + ri.Start.Format(time.RFC3339) + " – " + ri.End.Format(time.RFC3339)
		}
	}
	// The latest result that compared anything gives the detail.
	var detail *Result
	for i := len(rs) - 1; i >= 0 && detail == nil; i-- {
		if rs[i].Drift != nil {
			detail = rs[i]
		}
	}
	scores := map[string][]report.Point{}
	traffic := &report.Traffic{}
	perfHist := map[string][]report.Point{}
	var outlierHist []report.Point
	for _, r := range rs {
		t := r.Time
		if r.Drift != nil {
			d.DriftShare = append(d.DriftShare, report.Point{Time: t, Value: r.Drift.Share})
			for _, f := range r.Drift.Features {
				scores[f.Name] = append(scores[f.Name], report.Point{Time: t, Value: f.Score})
			}
		}
		if r.PredictionDrift != nil {
			for _, f := range r.PredictionDrift.Features {
				scores["prediction:"+f.Name] = append(scores["prediction:"+f.Name], report.Point{Time: t, Value: f.Score})
			}
		}
		if r.Status != StatusError {
			traffic.Requests = append(traffic.Requests, report.Point{Time: t, Value: r.Traffic.RPS})
			if r.Traffic.Requests > 0 {
				traffic.ErrorRate = append(traffic.ErrorRate, report.Point{Time: t, Value: r.Traffic.ErrorRate})
				traffic.LatencyP50 = append(traffic.LatencyP50, report.Point{Time: t, Value: r.Traffic.LatencyP50})
				traffic.LatencyP95 = append(traffic.LatencyP95, report.Point{Time: t, Value: r.Traffic.LatencyP95})
				traffic.LatencyP99 = append(traffic.LatencyP99, report.Point{Time: t, Value: r.Traffic.LatencyP99})
			}
		}
		if r.Outliers != nil {
			outlierHist = append(outlierHist, report.Point{Time: t, Value: r.Outliers.Share})
		}
		if r.Performance != nil {
			for k, v := range r.Performance.Metrics {
				perfHist[k] = append(perfHist[k], report.Point{Time: t, Value: v})
			}
		}
	}
	d.Traffic = traffic
	if detail != nil {
		rep := detail.Drift
		d.Dataset = &report.DatasetDrift{Drifted: rep.Drifted, Total: rep.Total, Share: rep.Share, Threshold: rep.DriftShare, Drift: rep.DatasetDrift}
		for _, f := range rep.Features {
			rf := reportFeature(f, f.Name)
			rf.Scores = scores[f.Name]
			if detail.Outliers != nil {
				rf.Outliers = detail.Outliers.Features[f.Name].Count
			}
			d.Features = append(d.Features, rf)
		}
		if pd := detail.PredictionDrift; pd != nil {
			for _, f := range pd.Features {
				rf := reportFeature(f, "prediction:"+f.Name)
				rf.Scores = scores["prediction:"+f.Name]
				d.Features = append(d.Features, rf)
			}
		}
		if o := detail.Outliers; o != nil {
			d.Outliers = &report.Outliers{Rows: o.Rows, Total: detail.Traffic.Rows, Share: o.Share, History: outlierHist}
		}
	}
	for i := len(rs) - 1; i >= 0; i-- {
		if p := rs[i].Performance; p != nil {
			d.Performance = &report.Performance{Task: p.Task, Labelled: p.Labelled, Predictions: p.Predictions, Metrics: p.Metrics, Slices: p.Slices, History: perfHist}
			break
		}
	}
	for _, a := range active {
		d.Alerts = append(d.Alerts, report.Alert{Name: a.Rule, State: a.State, Severity: a.Severity, Labels: a.Labels, Value: a.Value,
			Since: a.ActiveSince, Summary: summary(a.Annotations)})
	}
	for _, e := range history {
		var ann map[string]string
		if m, ok := e.Detail["annotations"].(map[string]any); ok {
			ann = map[string]string{}
			for k, v := range m {
				if s, ok := v.(string); ok {
					ann[k] = s
				}
			}
		}
		d.AlertHistory = append(d.AlertHistory, report.AlertEvent{Time: e.Time, Name: e.Rule, From: e.From, To: e.State, Labels: e.Labels, Value: e.Value, Summary: summary(ann)})
	}
	return d
}

func reportFeature(f drift.FeatureResult, name string) report.Feature {
	kind := f.Kind
	if kind == "numerical" {
		kind = "numeric"
	}
	rf := report.Feature{Name: name, Kind: kind, Method: string(f.Method), Score: f.Score, Statistic: f.Statistic, Threshold: f.Threshold,
		Drift: f.Drift, RefCount: f.RefCount, CurCount: f.CurCount, Error: f.Error}
	if h := f.Histogram; h != nil {
		rf.Histogram = &report.Histogram{Edges: h.Edges, Categories: h.Categories, Ref: h.Ref, Cur: h.Cur}
	}
	return rf
}

func summary(ann map[string]string) string {
	if s := ann["summary"]; s != "" {
		return s
	}
	return ann["description"]
}
