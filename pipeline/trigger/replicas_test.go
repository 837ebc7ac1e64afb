package trigger

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kiln-ml/kiln/pipeline"
	"github.com/kiln-ml/kiln/store"
)

// TestReplicasExactlyOnce runs three trigger services, as three servers
// sharing one database would, polling at the same moments: every tick of
// every schedule starts exactly one run, and no tick is even attempted
// twice (the row lease, FOR UPDATE SKIP LOCKED on PostgreSQL, keeps the
// others off it).
func TestReplicasExactlyOnce(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		const pipes = 6
		var ps []*pipeline.StoredPipeline
		for i := 0; i < pipes; i++ {
			ps = append(ps, stored(fmt.Sprint("p", i), []pipeline.Schedule{{Name: "m", Cron: "* * * * *", Concurrency: pipeline.ConcurrencyAllow}}, nil))
		}
		r := newFakeRunner(ps...)
		clk := newClock(time.Date(2026, 5, 1, 10, 0, 30, 0, time.UTC))
		var svcs []*Service
		for i := 0; i < 3; i++ {
			svcs = append(svcs, newTestService(t, db, r, clk, func(o *Options) { o.Owner = fmt.Sprint("server-", i) }))
		}
		pollAll := func() {
			var wg sync.WaitGroup
			for _, s := range svcs {
				wg.Add(1)
				go func() { defer wg.Done(); s.pollOnce(ctx) }()
			}
			wg.Wait()
		}
		pollAll()
		const minutes = 8
		for m := 0; m < minutes; m++ {
			clk.Add(30 * time.Second)
			pollAll()
			clk.Add(30 * time.Second)
			pollAll()
			pollAll()
		}
		var want []string
		for m := 1; m <= minutes; m++ {
			want = append(want, fmt.Sprintf("10:%02d", m))
		}
		for i := 0; i < pipes; i++ {
			name := fmt.Sprint("p", i)
			runs := r.started(name)
			if got := clockTicks(t, runs); !slices.Equal(got, want) {
				t.Errorf("%s: ticks run %v, want %v", name, got, want)
			}
			for _, run := range runs {
				tm, _ := time.Parse(time.RFC3339, run.Cause.Event["time"])
				if n := r.callsFor(name, "schedule/m/"+fmt.Sprint(tm.UnixMilli())); n != 1 {
					t.Errorf("%s: tick %s attempted %d times", name, run.Cause.Event["time"], n)
				}
			}
		}
	})
}

// stallRunner stands for a server that dies in the middle of firing: it
// starts the run, then never returns until released.
type stallRunner struct {
	*fakeRunner
	started chan struct{}
	release chan struct{}
}

func (s *stallRunner) StartRun(ctx context.Context, req pipeline.RunRequest) (*pipeline.Run, bool, error) {
	run, created, err := s.fakeRunner.StartRun(ctx, req)
	close(s.started)
	<-s.release
	return run, created, err
}

// TestReplicaTakeover: a server that claimed a schedule's tick and
// started its run dies before it records the fire. The other servers keep
// off the row while its lease lasts; once it lapses one takes the tick
// over, and the run's dedup key makes the second start the first run
// again, so the tick still has exactly one run. The dead server's late
// write cannot undo the new owner's.
func TestReplicaTakeover(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		r := newFakeRunner(stored("p", []pipeline.Schedule{{Name: "m", Cron: "* * * * *", Concurrency: pipeline.ConcurrencyAllow}}, nil))
		clk := newClock(time.Date(2026, 5, 1, 10, 0, 30, 0, time.UTC))
		stall := &stallRunner{fakeRunner: r, started: make(chan struct{}), release: make(chan struct{})}
		dead := newTestService(t, db, stall, clk, func(o *Options) { o.Owner = "dead" })
		b := newTestService(t, db, r, clk, func(o *Options) { o.Owner = "b" })
		c := newTestService(t, db, r, clk, func(o *Options) { o.Owner = "c" })
		dead.pollOnce(ctx) // reconciled: next tick 10:01
		clk.Add(40 * time.Second)
		done := make(chan struct{})
		go func() { defer close(done); dead.pollOnce(ctx) }()
		<-stall.started // 10:01's run exists; the dead server holds the lease
		for i := 0; i < 3; i++ {
			clk.Add(5 * time.Second) // within the 30 s lease
			b.pollOnce(ctx)
			c.pollOnce(ctx)
		}
		if n := r.callsFor("p", "schedule/m/"+fmt.Sprint(time.Date(2026, 5, 1, 10, 1, 0, 0, time.UTC).UnixMilli())); n != 1 {
			t.Fatalf("10:01 attempted %d times while the lease lasted", n)
		}
		if st := state(t, b, "p", "m"); st.LastFire != 0 {
			t.Fatalf("the fire was recorded before anyone finished it: %+v", st)
		}
		clk.Add(20 * time.Second) // 10:01:30: the lease has lapsed
		b.pollOnce(ctx)
		c.pollOnce(ctx)
		tick := time.Date(2026, 5, 1, 10, 1, 0, 0, time.UTC).UnixMilli()
		if n := r.callsFor("p", "schedule/m/"+fmt.Sprint(tick)); n != 2 {
			t.Fatalf("10:01 attempted %d times, want 2 (the dead server's, the takeover's)", n)
		}
		if got := clockTicks(t, r.started("p")); !slices.Equal(got, []string{"10:01"}) {
			t.Fatalf("runs %v, want one for 10:01", got)
		}
		st := state(t, b, "p", "m")
		if st.LastFire != tick || st.LastRunID != r.started("p")[0].ID {
			t.Fatalf("state after takeover %+v", st)
		}
		// The dead server comes back to life and finishes its write: it
		// no longer holds the lease, so nothing changes.
		close(stall.release)
		<-done
		if st2 := state(t, b, "p", "m"); st2 != st {
			t.Fatalf("the late write changed the state: %+v, was %+v", st2, st)
		}
		// The schedule goes on: 10:02 runs once.
		clk.Add(40 * time.Second)
		b.pollOnce(ctx)
		c.pollOnce(ctx)
		if got := clockTicks(t, r.started("p")); !slices.Equal(got, []string{"10:01", "10:02"}) {
			t.Fatalf("runs %v after 10:02", got)
		}
	})
}

// clockTicks returns the schedule ticks of runs as hh:mm (UTC).
func clockTicks(t *testing.T, runs []pipeline.Run) []string {
	t.Helper()
	var out []string
	for _, run := range runs {
		tm, err := time.Parse(time.RFC3339, run.Cause.Event["time"])
		if err != nil {
			t.Fatalf("run %s: tick %q: %v", run.ID, run.Cause.Event["time"], err)
		}
		out = append(out, tm.UTC().Format("15:04"))
	}
	return out
}
