package monitor

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/kiln-ml/kiln/monitor/feedback"
	"github.com/kiln-ml/kiln/monitor/predlog"
)

// SummariesOf adapts the prediction log's index to the Summarizer the
// Service reads windows through.
func SummariesOf(ix *predlog.Index) Summarizer { return summaries{ix} }

type summaries struct{ ix *predlog.Index }

func (s summaries) Summarize(ctx context.Context, endpoint string, from, to time.Time) (*Window, error) {
	sum, err := s.ix.Summary(ctx, endpoint, from, to)
	if err != nil {
		return nil, err
	}
	if sum == nil {
		return &Window{}, nil
	}
	return &Window{
		Requests: sum.Requests, Rows: sum.Rows, Errors: sum.Errors, ClientErrors: sum.ClientErrors,
		Profile: sum.Profile, Outliers: sum.Outliers, OutlierRows: sum.OutlierRows,
		Latency: sum.LatencyQuantile,
	}, nil
}

// PerformanceOf adapts the feedback service (labels joined to the
// prediction log) to the PerformanceSource of monitors: one window over
// the whole query.
func PerformanceOf(fb *feedback.Service) PerformanceSource { return performanceOf{fb} }

type performanceOf struct{ fb *feedback.Service }

func (p performanceOf) WindowPerformance(ctx context.Context, q PerformanceQuery) (*Performance, error) {
	perf, err := p.fb.Performance(ctx, feedback.Query{
		Endpoint: q.Endpoint, From: q.From, To: q.To, Task: q.Task, Metrics: q.Metrics,
		Prediction: q.Prediction, PositiveClass: q.PositiveClass, SliceBy: q.SliceBy,
	})
	if err != nil {
		return nil, err
	}
	out := &Performance{Task: string(perf.Task), Labelled: perf.Labelled, Predictions: perf.Predictions}
	if len(perf.Windows) > 0 {
		w := perf.Windows[0]
		out.Metrics, out.Slices = w.Metrics, w.Slices
	}
	return out, nil
}

// LateBounds is a predlog.BoundsSource whose Service is set after the
// prediction log opens (the Service flushes the log, the log asks the
// Service for bounds). Until Set it flags nothing.
type LateBounds struct{ s atomic.Pointer[Service] }

// Set makes s the source of bounds.
func (l *LateBounds) Set(s *Service) { l.s.Store(s) }

// Bounds implements predlog.BoundsSource.
func (l *LateBounds) Bounds(endpoint string) map[string]predlog.Range {
	s := l.s.Load()
	if s == nil {
		return nil
	}
	b := s.Bounds(endpoint)
	if len(b) == 0 {
		return nil
	}
	out := make(map[string]predlog.Range, len(b))
	for k, v := range b {
		out[k] = predlog.Range{Lo: v.Lo, Hi: v.Hi}
	}
	return out
}

var _ predlog.BoundsSource = (*LateBounds)(nil)
