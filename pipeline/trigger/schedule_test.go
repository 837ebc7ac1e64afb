package trigger

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/robfig/cron/v3"

	"github.com/kiln-ml/kiln/pipeline"
	"github.com/kiln-ml/kiln/store"
)

var ctx = context.Background()

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestDueTicks(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	ms := func(s string) int64 { return utc(s).UnixMilli() }
	tests := []struct {
		name       string
		cron       string
		from, now  string
		lo         string
		max        int
		want       []string
		wantPassed int
		wantNext   string
	}{
		{name: "hourly over the spring DST change skips 02:00 Berlin", cron: "0 * * * *", from: "2026-03-29T00:00:00Z", now: "2026-03-29T02:30:00Z", max: 10,
			want: []string{"2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"}, wantNext: "2026-03-29T03:00:00Z"},
		{name: "02:30 daily: doubled at the autumn change", cron: "30 2 * * *", from: "2026-10-25T00:30:00Z", now: "2026-10-26T12:00:00Z", max: 10,
			want: []string{"2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z", "2026-10-26T01:30:00Z"}, wantNext: "2026-10-27T01:30:00Z"},
		{name: "only the newest max", cron: "*/10 * * * *", from: "2026-01-01T00:00:00Z", now: "2026-01-01T01:05:00Z", max: 2,
			want: []string{"2026-01-01T00:50:00Z", "2026-01-01T01:00:00Z"}, wantPassed: 5, wantNext: "2026-01-01T01:10:00Z"},
		{name: "ticks before lo are passed over", cron: "*/10 * * * *", from: "2026-01-01T00:00:00Z", now: "2026-01-01T01:05:00Z", lo: "2026-01-01T00:45:00Z", max: 100,
			want: []string{"2026-01-01T00:50:00Z", "2026-01-01T01:00:00Z"}, wantPassed: 5, wantNext: "2026-01-01T01:10:00Z"},
		{name: "all ticks before lo", cron: "*/10 * * * *", from: "2026-01-01T00:00:00Z", now: "2026-01-01T01:05:00Z", lo: "2026-01-01T01:04:00Z", max: 1,
			wantPassed: 7, wantNext: "2026-01-01T01:10:00Z"},
		{name: "not due yet", cron: "*/10 * * * *", from: "2026-01-01T00:10:00Z", now: "2026-01-01T00:05:00Z", max: 1, wantNext: "2026-01-01T00:10:00Z"},
		{name: "@every keeps its phase", cron: "@every 2s", from: "2026-01-01T00:00:01Z", now: "2026-01-01T00:00:08Z", max: 10,
			want: []string{"2026-01-01T00:00:01Z", "2026-01-01T00:00:03Z", "2026-01-01T00:00:05Z", "2026-01-01T00:00:07Z"}, wantNext: "2026-01-01T00:00:09Z"},
		{name: "@every, newest only, after a year", cron: "@every 2s", from: "2026-01-01T00:00:01Z", now: "2027-01-01T00:00:00Z", lo: "2026-12-31T23:59:00Z", max: 1,
			want: []string{"2026-12-31T23:59:59Z"}, wantPassed: 15767999, wantNext: "2027-01-01T00:00:01Z"},
		{name: "@every, ticks before lo", cron: "@every 10s", from: "2026-01-01T00:00:00Z", now: "2026-01-01T00:01:00Z", lo: "2026-01-01T00:00:35Z", max: 10,
			want: []string{"2026-01-01T00:00:40Z", "2026-01-01T00:00:50Z", "2026-01-01T00:01:00Z"}, wantPassed: 4, wantNext: "2026-01-01T00:01:10Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sched, err := cron.ParseStandard(tt.cron)
			if err != nil {
				t.Fatal(err)
			}
			var lo time.Time
			if tt.lo != "" {
				lo = utc(tt.lo)
			}
			ticks, passed, next := dueTicks(sched, berlin, ms(tt.from), utc(tt.now), lo, tt.max)
			var got []string
			for _, tk := range ticks {
				got = append(got, time.UnixMilli(tk).UTC().Format(time.RFC3339))
			}
			if !slices.Equal(got, tt.want) || passed != tt.wantPassed || next != ms(tt.wantNext) {
				t.Errorf("got %v passed %d next %s; want %v passed %d next %s", got, passed,
					time.UnixMilli(next).UTC().Format(time.RFC3339), tt.want, tt.wantPassed, tt.wantNext)
			}
		})
	}
}

// step advances the clock in steps, polling after each.
func step(s *Service, clk *clock, total, by time.Duration) {
	for d := time.Duration(0); d < total; d += by {
		clk.Add(by)
		s.pollOnce(ctx)
	}
}

func TestScheduleInTimeZone(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		sc := pipeline.Schedule{Name: "nightly", Cron: "30 2 * * *", Timezone: "Europe/Berlin", Concurrency: pipeline.ConcurrencyAllow,
			Parameters: map[string]string{"day": "{{trigger.date}}", "fixed": "x"}}
		r := newFakeRunner(stored("p", []pipeline.Schedule{sc}, nil))
		tests := []struct {
			start time.Time
			want  []string
		}{
			// 29 March 2026: 02:30 does not exist in Berlin (robfig/cron
			// skips the day's tick).
			{time.Date(2026, 3, 27, 12, 0, 0, 0, time.UTC), []string{"2026-03-28T02:30:00+01:00", "2026-03-30T02:30:00+02:00", "2026-03-31T02:30:00+02:00"}},
			// 25 October 2026: 02:30 happens twice (CEST, then CET).
			{time.Date(2026, 10, 23, 12, 0, 0, 0, time.UTC), []string{"2026-10-24T02:30:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-25T02:30:00+01:00", "2026-10-26T02:30:00+01:00"}},
		}
		for _, tt := range tests {
			r.mu.Lock()
			r.runs = nil
			r.byKey = map[string]*pipeline.Run{}
			r.mu.Unlock()
			db.W.ExecContext(ctx, `DELETE FROM pipeline_trigger_state`)
			clk := newClock(tt.start)
			s := newTestService(t, db, r, clk)
			s.pollOnce(ctx)
			step(s, clk, 85*time.Hour, 30*time.Minute)
			runs := r.started("p")
			if got := ticksOf(runs); !slices.Equal(got, tt.want) {
				t.Fatalf("ticks %v, want %v", got, tt.want)
			}
			for i, run := range runs {
				if run.Cause.Type != "schedule" || run.Cause.Name != "nightly" || run.CreatedBy != "schedule/nightly" ||
					run.Parameters["day"] != tt.want[i][:10] || run.Parameters["fixed"] != "x" {
					t.Errorf("run %d: cause %+v, actor %s, parameters %v", i, run.Cause, run.CreatedBy, run.Parameters)
				}
			}
		}
	})
}

func TestConcurrency(t *testing.T) {
	tests := []struct {
		policy        string
		wantRuns      int
		wantCancelled int
		wantError     string
	}{
		{pipeline.ConcurrencyForbid, 1, 0, "concurrency forbid"},
		{"", 1, 0, "concurrency forbid"}, // the default of schedules
		{pipeline.ConcurrencyAllow, 2, 0, ""},
		{pipeline.ConcurrencyReplace, 2, 1, ""},
	}
	forEachDB(t, func(t *testing.T, db *store.DB) {
		for _, tt := range tests {
			t.Run("policy="+tt.policy, func(t *testing.T) {
				name := "p-" + tt.policy
				r := newFakeRunner(stored(name, []pipeline.Schedule{{Name: "m", Cron: "* * * * *", Concurrency: tt.policy}}, nil))
				clk := newClock(time.Date(2026, 5, 1, 10, 0, 30, 0, time.UTC))
				s := newTestService(t, db, r, clk)
				s.pollOnce(ctx)
				step(s, clk, time.Minute, 30*time.Second) // 10:01 fires
				if n := len(r.started(name)); n != 1 {
					t.Fatalf("%d runs after the first tick", n)
				}
				step(s, clk, time.Minute, 30*time.Second) // 10:02, with 10:01's run active
				runs := r.started(name)
				if len(runs) != tt.wantRuns || len(r.cancelled) != tt.wantCancelled {
					t.Fatalf("%d runs, %d cancelled; want %d, %d", len(runs), len(r.cancelled), tt.wantRuns, tt.wantCancelled)
				}
				if tt.wantCancelled > 0 && (r.cancelled[0] != runs[0].ID || runs[0].State != pipeline.StateCancelled) {
					t.Errorf("cancelled %v, first run %+v", r.cancelled, runs[0])
				}
				st := state(t, s, name, "m")
				if tt.wantError == "" && st.Error != "" || !strings.Contains(st.Error, tt.wantError) {
					t.Errorf("state error %q, want %q", st.Error, tt.wantError)
				}
				if want := time.Date(2026, 5, 1, 10, 2, 0, 0, time.UTC).UnixMilli(); st.LastFire != want {
					t.Errorf("last fire %d, want %d (the tick handled, even if skipped)", st.LastFire, want)
				}
				// Once the run has ended, forbid lets the next tick run.
				r.finishAll()
				step(s, clk, time.Minute, 30*time.Second)
				if n := len(r.started(name)); n != tt.wantRuns+1 {
					t.Errorf("%d runs after the active one ended, want %d", n, tt.wantRuns+1)
				}
			})
		}
	})
}

func TestDowntime(t *testing.T) {
	base := time.Date(2026, 5, 1, 10, 0, 30, 0, time.UTC)
	tests := []struct {
		name     string
		sc       pipeline.Schedule
		downFor  time.Duration // from 10:00:30, the server down; the tick is every minute
		finish   bool          // runs end between polls
		polls    int
		want     []string
		wantErr  string
		wantMiss float64
	}{
		{name: "no catch-up: only the latest tick", sc: pipeline.Schedule{Cron: "* * * * *", Concurrency: "allow"}, downFor: 10 * time.Minute,
			polls: 1, want: []string{"10:10"}, wantMiss: 9},
		{name: "no catch-up: latest tick past the deadline", sc: pipeline.Schedule{Cron: "*/5 * * * *", Concurrency: "allow"}, downFor: 12 * time.Minute,
			polls: 1, want: nil, wantErr: "starting deadline", wantMiss: 2},
		{name: "no catch-up: a longer deadline", sc: pipeline.Schedule{Cron: "*/5 * * * *", Concurrency: "allow", StartingDeadline: pipeline.Duration(5 * time.Minute)},
			downFor: 12 * time.Minute, polls: 1, want: []string{"10:10"}, wantMiss: 1},
		{name: "catch-up: every missed tick", sc: pipeline.Schedule{Cron: "*/2 * * * *", Concurrency: "allow", CatchUp: true}, downFor: 10 * time.Minute,
			polls: 1, want: []string{"10:02", "10:04", "10:06", "10:08", "10:10"}},
		{name: "catch-up with a deadline", sc: pipeline.Schedule{Cron: "*/2 * * * *", Concurrency: "allow", CatchUp: true, StartingDeadline: pipeline.Duration(5 * time.Minute)},
			downFor: 10 * time.Minute, polls: 1, want: []string{"10:06", "10:08", "10:10"}, wantMiss: 2},
		{name: "catch-up under forbid: one at a time", sc: pipeline.Schedule{Cron: "*/2 * * * *", Concurrency: "forbid", CatchUp: true}, downFor: 6 * time.Minute,
			polls: 3, finish: true, want: []string{"10:02", "10:04", "10:06"}},
		{name: "catch-up under forbid: waiting while a run is active", sc: pipeline.Schedule{Cron: "*/2 * * * *", Concurrency: "forbid", CatchUp: true}, downFor: 6 * time.Minute,
			polls: 3, want: []string{"10:02"}},
	}
	forEachDB(t, func(t *testing.T, db *store.DB) {
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				name := "p" + string(rune('a'+i))
				tt.sc.Name = "s"
				r := newFakeRunner(stored(name, []pipeline.Schedule{tt.sc}, nil))
				clk := newClock(base)
				s := newTestService(t, db, r, clk)
				s.pollOnce(ctx) // first seen at 10:00:30
				clk.Add(tt.downFor)
				for p := 0; p < tt.polls; p++ {
					s.pollOnce(ctx)
					if tt.finish {
						r.finishAll()
					}
					clk.Add(time.Second)
				}
				var got []string
				for _, run := range r.started(name) {
					tm, _ := time.Parse(time.RFC3339, run.Cause.Event["time"])
					got = append(got, tm.Format("15:04"))
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("ticks run %v, want %v", got, tt.want)
				}
				if st := state(t, s, name, "s"); !strings.Contains(st.Error, tt.wantErr) || (tt.wantErr == "" && st.Error != "") {
					t.Errorf("state error %q, want %q", st.Error, tt.wantErr)
				}
				if got := testutil.ToFloat64(s.fires.WithLabelValues(TypeSchedule, outcomeMissed)); got != tt.wantMiss {
					t.Errorf("%v missed ticks counted, want %v", got, tt.wantMiss)
				}
				if got := testutil.ToFloat64(s.fires.WithLabelValues(TypeSchedule, outcomeStarted)); got != float64(len(tt.want)) {
					t.Errorf("%v started counted, want %d", got, len(tt.want))
				}
			})
		}
	})
}

func TestSuspend(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		sc := pipeline.Schedule{Name: "s", Cron: "*/5 * * * *", Suspend: true, CatchUp: true, Concurrency: "allow"}
		r := newFakeRunner(stored("p", []pipeline.Schedule{sc}, nil))
		clk := newClock(time.Date(2026, 5, 1, 10, 0, 30, 0, time.UTC))
		s := newTestService(t, db, r, clk)
		s.pollOnce(ctx)
		step(s, clk, 30*time.Minute, 30*time.Second)
		if n := len(r.started("p")); n != 0 {
			t.Fatalf("a suspended schedule started %d runs", n)
		}
		if st := state(t, s, "p", "s"); !st.Suspended || st.NextFire != 0 {
			t.Errorf("state %+v, want suspended without a next tick", st)
		}
		sc.Suspend = false
		r.put(stored("p", []pipeline.Schedule{sc}, nil))
		s.pollOnce(ctx) // 10:30:30: resumed; the ticks while suspended are not run, even with catch_up
		if st := state(t, s, "p", "s"); st.Suspended || st.NextFire != time.Date(2026, 5, 1, 10, 35, 0, 0, time.UTC).UnixMilli() {
			t.Errorf("state %+v after resuming, want the next tick 10:35", st)
		}
		step(s, clk, 5*time.Minute, 30*time.Second)
		if got := ticksOf(r.started("p")); !slices.Equal(got, []string{"2026-05-01T10:35:00Z"}) {
			t.Errorf("ticks %v after resuming", got)
		}
		// Suspended again while a tick was due: it does not run.
		sc.Suspend = true
		r.put(stored("p", []pipeline.Schedule{sc}, nil))
		clk.Add(5 * time.Minute)
		s.pollOnce(ctx)
		if n := len(r.started("p")); n != 1 {
			t.Errorf("%d runs after suspending again", n)
		}
	})
}

func TestReconcile(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		sc := pipeline.Schedule{Name: "s", Cron: "0 * * * *"}
		r := newFakeRunner(stored("p", []pipeline.Schedule{sc}, []pipeline.Trigger{{Name: "hook", Webhook: &pipeline.WebhookTrigger{}}}),
			stored("q", []pipeline.Schedule{{Name: "s", Cron: "0 0 * * *"}}, nil))
		clk := newClock(time.Date(2026, 5, 1, 10, 20, 0, 0, time.UTC))
		s := newTestService(t, db, r, clk)
		s.pollOnce(ctx)
		rows, err := s.rows(ctx, "")
		if err != nil || len(rows) != 3 {
			t.Fatalf("rows %v, %v; want 3", rows, err)
		}
		if st := state(t, s, "p", "s"); st.NextFire != time.Date(2026, 5, 1, 11, 0, 0, 0, time.UTC).UnixMilli() || st.Type != TypeSchedule {
			t.Errorf("state %+v", st)
		}
		// A changed expression resets the next tick; a changed time zone too.
		sc.Cron, sc.Timezone = "30 * * * *", "Asia/Kolkata" // +05:30: minute 30 there is minute 0 in UTC
		r.put(stored("p", []pipeline.Schedule{sc}, nil))
		clk.Add(time.Second)
		s.pollOnce(ctx)
		if st := state(t, s, "p", "s"); st.NextFire != time.Date(2026, 5, 1, 11, 0, 0, 0, time.UTC).UnixMilli() {
			t.Errorf("next tick after the change: %v", time.UnixMilli(st.NextFire).UTC())
		}
		sc.Timezone = "America/St_Johns" // -02:30 in May: minute 30 there is minute 0 in UTC too; 10:30 is 11:00 UTC
		sc.Cron = "15 * * * *"           // minute 15 there is minute 45 in UTC
		r.put(stored("p", []pipeline.Schedule{sc}, nil))
		clk.Add(time.Second)
		s.pollOnce(ctx)
		if st := state(t, s, "p", "s"); st.NextFire != time.Date(2026, 5, 1, 10, 45, 0, 0, time.UTC).UnixMilli() {
			t.Errorf("next tick after the second change: %v", time.UnixMilli(st.NextFire).UTC())
		}
		// Removed trigger and pipeline: their rows go.
		r.remove("q")
		clk.Add(time.Second)
		s.pollOnce(ctx)
		rows, _ = s.rows(ctx, "")
		if len(rows) != 1 || rows[0].Pipeline != "p" || rows[0].Name != "s" {
			t.Errorf("rows after removals: %+v", rows)
		}
		if _, err := s.States(ctx, "q"); err == nil {
			t.Error("States of a deleted pipeline: no error")
		}
	})
}
