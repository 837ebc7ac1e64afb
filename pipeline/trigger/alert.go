package trigger

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/kiln-ml/kiln/monitor/alert"
	"github.com/kiln-ml/kiln/pipeline"
)

// alertPayload is an alert's {{trigger.*}}: monitor, rule, endpoint (the
// alert's endpoint label), value, fingerprint, severity, event_id, and
// each label as label_<name>.
func alertPayload(a alert.Alert) map[string]string {
	p := map[string]string{
		"monitor":     a.Monitor,
		"rule":        a.Rule,
		"endpoint":    a.Labels["endpoint"],
		"value":       strconv.FormatFloat(a.Value, 'g', -1, 64),
		"fingerprint": a.Fingerprint,
		"severity":    a.Severity,
		"event_id":    a.EventID,
	}
	for k, v := range a.Labels {
		p["label_"+k] = v
	}
	return p
}

// AlertFiring implements alert.Hook: a firing alert starts a run of every
// pipeline with an alert trigger that matches its monitor and rule (an
// empty rule matches every rule of the monitor), and of the pipeline the
// alert's rule names (a.Trigger). Each pipeline runs once per alert event
// (DedupKey "alert/<event id>/<pipeline>"): where several triggers match,
// the first in spec order gives the parameters, and a pipeline named by
// the rule that also has a matching trigger runs with the trigger's.
func (s *Service) AlertFiring(ctx context.Context, a alert.Alert) error {
	if a.Status != "" && a.Status != alert.StateFiring {
		return nil
	}
	pipes, err := s.runner.List(ctx)
	if err != nil {
		return fmt.Errorf("trigger: list pipelines: %w", err)
	}
	payload := alertPayload(a)
	now := s.now().UnixMilli()
	done := map[string]bool{}
	var errs []error
	for _, p := range pipes {
		name := p.Metadata.Name
		for i := range p.Spec.Triggers {
			t := &p.Spec.Triggers[i]
			if t.Alert == nil || t.Alert.Monitor != a.Monitor || (t.Alert.Rule != "" && t.Alert.Rule != a.Rule) || done[name] {
				continue
			}
			done[name] = true
			ev := event{typ: TypeAlert, pipeline: name, name: t.Name, concurrency: t.Concurrency, params: t.Parameters,
				payload: payload, dedup: "alert/" + a.EventID + "/" + name}
			res := s.fire(ctx, ev, false)
			runID := ""
			if res.run != nil {
				runID = res.run.ID
			}
			s.recordFire(context.WithoutCancel(ctx), name, TypeAlert, t.Name, now, runID, res.msg)
			if res.outcome == outcomeFailed {
				errs = append(errs, fmt.Errorf("pipeline %s, trigger %s: %w", name, t.Name, res.err))
			}
		}
	}
	if tr := a.Trigger; tr != nil && tr.Pipeline != "" && !done[tr.Pipeline] {
		if _, err := s.runner.Get(ctx, tr.Pipeline); err != nil {
			errs = append(errs, fmt.Errorf("pipeline %s named by rule %s of monitor %s: %w", tr.Pipeline, a.Rule, a.Monitor, err))
		} else {
			ev := event{typ: TypeAlert, pipeline: tr.Pipeline, name: a.Monitor + "/" + a.Rule, concurrency: pipeline.ConcurrencyAllow,
				params: tr.Parameters, payload: payload, dedup: "alert/" + a.EventID + "/" + tr.Pipeline}
			if res := s.fire(ctx, ev, false); res.outcome == outcomeFailed {
				errs = append(errs, fmt.Errorf("pipeline %s named by rule %s of monitor %s: %w", tr.Pipeline, a.Rule, a.Monitor, res.err))
			}
		}
	}
	return errors.Join(errs...)
}
