package trigger

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/kiln-ml/kiln/pipeline"
)

// Bounds of the schedules' evaluation.
const (
	// DefaultStartingDeadline is how late a tick may still start.
	DefaultStartingDeadline = time.Minute
	// MaxCatchUp is how many missed ticks a catch_up schedule runs at
	// most after downtime (the newest ones).
	MaxCatchUp = 100
	// maxIterations bounds the ticks walked through in one evaluation.
	maxIterations = 1_000_000
)

// scheduleConfig is what a schedule's ticks depend on.
func scheduleConfig(sc *pipeline.Schedule) string {
	return timezone(sc) + "\n" + sc.Cron
}

func timezone(sc *pipeline.Schedule) string {
	if sc.Timezone == "" {
		return "UTC"
	}
	return sc.Timezone
}

// parseSchedule parses a schedule's cron expression (five fields or a
// descriptor, as robfig/cron's standard parser) and time zone.
func parseSchedule(sc *pipeline.Schedule) (cron.Schedule, *time.Location, error) {
	loc, err := time.LoadLocation(timezone(sc))
	if err != nil {
		return nil, nil, fmt.Errorf("schedule %s: time zone %q: %w", sc.Name, sc.Timezone, err)
	}
	sched, err := cron.ParseStandard(sc.Cron)
	if err != nil {
		return nil, nil, fmt.Errorf("schedule %s: cron %q: %w", sc.Name, sc.Cron, err)
	}
	return sched, loc, nil
}

// nextTick is a schedule's first tick after now (unix ms).
func nextTick(sc *pipeline.Schedule, now time.Time) (int64, error) {
	sched, loc, err := parseSchedule(sc)
	if err != nil {
		return 0, err
	}
	next := sched.Next(now.In(loc))
	if next.IsZero() {
		return 0, fmt.Errorf("schedule %s: cron %q never matches", sc.Name, sc.Cron)
	}
	return next.UnixMilli(), nil
}

// dueTicks walks a schedule's ticks from from (a tick, unix ms) up to now:
// it returns the newest max of them that are not before lo (oldest
// first), how many others it passed over, and the first tick after now
// (0 if the expression never matches again).
func dueTicks(sched cron.Schedule, loc *time.Location, from int64, now, lo time.Time, max int) (ticks []int64, passed int, next int64) {
	nowMs := now.UnixMilli()
	if cd, ok := sched.(cron.ConstantDelaySchedule); ok && cd.Delay > 0 {
		d := cd.Delay.Milliseconds()
		if from > nowMs {
			return nil, 0, from
		}
		k := (nowMs - from) / d // ticks from + 0..k·d are due
		first := int64(0)
		if !lo.IsZero() && lo.UnixMilli() > from {
			first = (lo.UnixMilli() - from + d - 1) / d
		}
		if k-first+1 > int64(max) {
			first = k - int64(max) + 1
		}
		for i := first; i <= k; i++ {
			ticks = append(ticks, from+i*d)
		}
		return ticks, int(k + 1 - int64(len(ticks))), from + (k+1)*d
	}
	cur := time.UnixMilli(from).In(loc)
	for n := 0; !cur.IsZero() && !cur.After(now); n++ {
		if n == maxIterations {
			// Pathological downtime: jump to the last day's ticks (or
			// lo's, if later); what is jumped over counts as one.
			passed++
			base := now.Add(-24 * time.Hour)
			if lo.After(base) {
				base = lo
			}
			if next := sched.Next(base.Add(-time.Nanosecond).In(loc)); next.After(cur) {
				cur = next
			}
			continue
		}
		if !lo.IsZero() && cur.Before(lo) {
			passed++
		} else {
			ticks = append(ticks, cur.UnixMilli())
			if len(ticks) > max {
				ticks = ticks[1:]
				passed++
			}
		}
		cur = sched.Next(cur)
	}
	if cur.IsZero() {
		return ticks, passed, 0
	}
	return ticks, passed, cur.UnixMilli()
}

// schedulePayload is a tick's {{trigger.*}}: schedule, time (RFC 3339 in
// the schedule's time zone) and date (YYYY-MM-DD there).
func schedulePayload(sc *pipeline.Schedule, loc *time.Location, tick int64) map[string]string {
	t := time.UnixMilli(tick).In(loc)
	return map[string]string{"schedule": sc.Name, "time": t.Format(time.RFC3339), "date": t.Format(time.DateOnly)}
}

// evalSchedule fires a claimed schedule's due ticks. It reports false if
// it lost the row's lease on the way.
func (s *Service) evalSchedule(ctx context.Context, r *row, sc *pipeline.Schedule) (update, bool) {
	u := r.update()
	if sc.Suspend {
		u.NextFire = 0
		return u, true
	}
	sched, loc, err := parseSchedule(sc)
	if err != nil {
		u.NextFire, u.Error = 0, err.Error()
		return u, true
	}
	now := s.now()
	deadline := sc.StartingDeadline.D()
	explicit := deadline > 0
	if !explicit {
		deadline = DefaultStartingDeadline
	}
	lo, max := now.Add(-deadline), 1
	if sc.CatchUp {
		max = MaxCatchUp
		if !explicit {
			lo = time.Time{}
		}
	}
	ticks, passed, next := dueTicks(sched, loc, r.NextFire, now, lo, max)
	if passed > 0 {
		s.fires.WithLabelValues(TypeSchedule, outcomeMissed).Add(float64(passed))
		if len(ticks) == 0 {
			u.Error = fmt.Sprintf("missed %d tick(s) up to %s: more than the starting deadline (%s) late",
				passed, time.UnixMilli(r.NextFire).In(loc).Format(time.RFC3339), deadline)
		}
	}
	u.NextFire = next
	for i, tick := range ticks {
		ev := event{typ: TypeSchedule, pipeline: r.Pipeline, name: sc.Name, concurrency: sc.Concurrency,
			params: sc.Parameters, payload: schedulePayload(sc, loc, tick), dedup: "schedule/" + sc.Name + "/" + strconv.FormatInt(tick, 10)}
		res := s.fire(ctx, ev, sc.CatchUp)
		if res.waiting || (res.outcome == outcomeFailed && !permanent(res.err)) {
			// Catch-up under forbid waits for the active run; a run
			// that could not be started for a passing reason is tried
			// again next poll (until its deadline).
			u.NextFire = tick
			break
		}
		u.LastFire, u.Error = tick, res.msg
		if res.run != nil {
			u.LastRunID = res.run.ID
		}
		if i < len(ticks)-1 {
			next := ticks[i+1]
			saved := u
			saved.NextFire = next
			if ok, err := s.progress(ctx, r, saved); err != nil || !ok {
				if err != nil {
					s.log.Warn("saving a schedule's progress failed", "pipeline", r.Pipeline, "schedule", sc.Name, "err", err)
				}
				return u, false
			}
		}
	}
	return u, true
}
