package trigger

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/kiln-ml/kiln/errdefs"
	"github.com/kiln-ml/kiln/pipeline"
)

// event is one schedule tick or trigger event to start a run for.
type event struct {
	typ         string // TypeSchedule …
	pipeline    string
	name        string // the schedule's or trigger's
	concurrency string
	params      map[string]string // templates over {{trigger.*}}
	payload     map[string]string // {{trigger.*}}, and the run's Cause.Event
	dedup       string
}

func (ev *event) causeType() string {
	if ev.typ == TypeSchedule {
		return "schedule"
	}
	return "trigger"
}

func (ev *event) actor() string { return ev.causeType() + "/" + ev.name }

// result is how fire went.
type result struct {
	run     *pipeline.Run
	created bool
	outcome string
	// waiting: concurrency forbid with wait, and a run is active.
	waiting bool
	// msg says why no run started ("" when one did, or existed).
	msg string
	err error
}

// permanent reports whether err is a domain error (retrying the same
// request gives the same answer), as opposed to, say, the database being
// unreachable.
func permanent(err error) bool {
	var e *errdefs.Error
	return err == nil || errors.As(err, &e)
}

// expandParams expands a trigger's parameters over its payload.
func expandParams(params, payload map[string]string) (map[string]string, error) {
	if len(params) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(params))
	sc := &pipeline.Scope{Trigger: payload}
	for k, v := range params {
		if !strings.Contains(v, "{{") {
			out[k] = v
			continue
		}
		x, err := pipeline.Expand(v, sc)
		if err != nil {
			return nil, errdefs.Invalid("Parameter '%s': %s", k, errdefs.Message(err))
		}
		out[k] = x
	}
	return out, nil
}

// fire starts the run of an event, applying its concurrency policy:
// forbid skips it while the pipeline has an active run (or, with wait,
// reports waiting), replace cancels the active runs first, allow just
// starts. The run is started with the event's DedupKey, so that firing
// the same event twice (on two servers, or after a takeover) starts one
// run.
func (s *Service) fire(ctx context.Context, ev event, wait bool) (res result) {
	defer func() {
		if !res.waiting {
			s.fires.WithLabelValues(ev.typ, res.outcome).Inc()
		}
		if res.outcome == outcomeFailed || res.outcome == outcomeSkipped {
			s.log.Info("pipeline trigger started no run", "pipeline", ev.pipeline, "type", ev.typ, "name", ev.name, "reason", res.msg)
		}
	}()
	fail := func(outcome string, err error) result {
		return result{outcome: outcome, msg: errdefs.Message(err), err: err}
	}
	params, err := expandParams(ev.params, ev.payload)
	if err != nil {
		return fail(outcomeFailed, err)
	}
	policy := ev.concurrency
	if policy == "" {
		policy = pipeline.ConcurrencyAllow
		if ev.typ == TypeSchedule {
			policy = pipeline.ConcurrencyForbid
		}
	}
	if policy == pipeline.ConcurrencyForbid || policy == pipeline.ConcurrencyReplace {
		active, err := s.activeRuns(ctx, ev)
		if err != nil {
			return fail(outcomeFailed, err)
		}
		if len(active) > 0 && policy == pipeline.ConcurrencyForbid {
			if wait {
				return result{waiting: true}
			}
			return fail(outcomeSkipped, errdefs.InvalidState("Pipeline '%s' has an active run (%s) and %s %s has concurrency forbid",
				ev.pipeline, active[0].ID, ev.causeType(), ev.name))
		}
		for _, r := range active {
			_, err := s.runner.CancelRun(ctx, r.ID, ev.actor(), "replaced by a new run ("+ev.causeType()+" "+ev.name+", concurrency replace)")
			if err != nil && !errors.Is(err, errdefs.ErrInvalidState) && !errors.Is(err, errdefs.ErrNotFound) {
				return fail(outcomeFailed, fmt.Errorf("cancel run %s: %w", r.ID, err))
			}
		}
	}
	run, created, err := s.runner.StartRun(ctx, pipeline.RunRequest{
		Pipeline:   ev.pipeline,
		Parameters: params,
		Actor:      ev.actor(),
		Cause:      &pipeline.Cause{Type: ev.causeType(), Name: ev.name, Event: maps.Clone(ev.payload)},
		DedupKey:   ev.dedup,
	})
	if err != nil {
		return fail(outcomeFailed, err)
	}
	if created {
		s.log.Info("pipeline run started", "pipeline", ev.pipeline, "type", ev.typ, "name", ev.name, "run", run.ID, "dedup_key", ev.dedup)
		return result{run: run, created: true, outcome: outcomeStarted}
	}
	return result{run: run, outcome: outcomeDeduplicated}
}

// activeRuns lists the pipeline's non-terminal runs other than the
// event's own (a run that a server that took over finds already started).
func (s *Service) activeRuns(ctx context.Context, ev event) ([]*pipeline.Run, error) {
	var out []*pipeline.Run
	token := ""
	for page := 0; page < 100; page++ {
		runs, next, err := s.runner.ListRuns(ctx, pipeline.RunQuery{Pipeline: ev.pipeline, State: "active", PageToken: token, Limit: 1000})
		if err != nil {
			return nil, fmt.Errorf("list active runs: %w", err)
		}
		for _, r := range runs {
			if pipeline.Terminal(r.State) {
				continue
			}
			if c := r.Cause; ev.dedup != "" && c != nil && c.Type == ev.causeType() && c.Name == ev.name && maps.Equal(c.Event, ev.payload) {
				continue
			}
			out = append(out, r)
		}
		if next == "" {
			break
		}
		token = next
	}
	return out, nil
}
