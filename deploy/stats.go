package deploy

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Latency histograms have log-linear buckets over microseconds: four
// buckets per power of two (a quantile is within ~12% of the truth),
// from 0 µs to beyond an hour, in a fixed array of atomic counters, so
// recording a request is a few atomic adds and never allocates.
const histBuckets = 128

// bucketOf returns the histogram bucket of a duration.
func bucketOf(d time.Duration) int {
	v := uint64(d / time.Microsecond)
	if d < 0 {
		v = 0
	}
	if v < 4 {
		return int(v)
	}
	e := bits.Len64(v) - 3 // v>>e is in [4, 7]
	i := 4 + 4*e + int(v>>uint(e)) - 4
	if i >= histBuckets {
		return histBuckets - 1
	}
	return i
}

// bucketMidMs is the middle of bucket i, in milliseconds.
func bucketMidMs(i int) float64 {
	if i < 4 {
		return float64(i) / 1000
	}
	e := (i - 4) / 4
	sub := (i - 4) % 4
	lo := uint64(4+sub) << uint(e)
	hi := uint64(4+sub+1) << uint(e)
	return float64(lo+hi-1) / 2 / 1000
}

// counts is a snapshot of request figures.
type counts struct {
	requests, errors, clientErrors uint64
	hist                           [histBuckets]uint64
}

func (c *counts) sub(o *counts) counts {
	r := counts{requests: c.requests - o.requests, errors: c.errors - o.errors, clientErrors: c.clientErrors - o.clientErrors}
	for i := range c.hist {
		r.hist[i] = c.hist[i] - o.hist[i]
	}
	return r
}

func (c *counts) add(o *counts) {
	c.requests += o.requests
	c.errors += o.errors
	c.clientErrors += o.clientErrors
	for i := range c.hist {
		c.hist[i] += o.hist[i]
	}
}

// quantileMs returns the q-quantile of the latency histogram in ms.
func (c *counts) quantileMs(q float64) float64 {
	var n uint64
	for _, v := range c.hist {
		n += v
	}
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.999999)
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i, v := range c.hist {
		seen += v
		if seen >= rank {
			return bucketMidMs(i)
		}
	}
	return bucketMidMs(histBuckets - 1)
}

func (c *counts) export() Counts {
	out := Counts{Requests: int64(c.requests), Errors: int64(c.errors)}
	if c.requests > 0 {
		out.ErrorRate = float64(c.errors) / float64(c.requests)
		out.P50Ms = c.quantileMs(0.50)
		out.P90Ms = c.quantileMs(0.90)
		out.P99Ms = c.quantileMs(0.99)
	}
	return out
}

// atomicCounts are counts updated concurrently.
type atomicCounts struct {
	requests, errors, clientErrors atomic.Uint64
	hist                           [histBuckets]atomic.Uint64
}

func (a *atomicCounts) record(b int, outcome outcome) {
	a.requests.Add(1)
	switch outcome {
	case outcomeError:
		a.errors.Add(1)
	case outcomeClientError:
		a.clientErrors.Add(1)
	}
	a.hist[b].Add(1)
}

func (a *atomicCounts) load(into *counts) {
	into.requests = a.requests.Load()
	into.errors = a.errors.Load()
	into.clientErrors = a.clientErrors.Load()
	for i := range a.hist {
		into.hist[i] = a.hist[i].Load()
	}
}

func (a *atomicCounts) reset() {
	a.requests.Store(0)
	a.errors.Store(0)
	a.clientErrors.Store(0)
	for i := range a.hist {
		a.hist[i].Store(0)
	}
}

// The sliding window is a ring of windowSlots periods of windowPeriod.
const (
	windowPeriod = 5 * time.Second
	windowSlots  = 12 // one minute
)

type windowSlot struct {
	period atomic.Int64 // the period number (unix time / windowPeriod) the counts are of
	atomicCounts
}

// outcome classifies a request for the statistics.
type outcome uint8

const (
	outcomeOK outcome = iota
	outcomeError
	outcomeClientError
)

// routeStats are the figures of one live route (or shadow target): totals
// since it went live, and a one-minute sliding window.
type routeStats struct {
	since time.Time
	total atomicCounts
	ring  [windowSlots]windowSlot
}

func newRouteStats(now time.Time) *routeStats { return &routeStats{since: now} }

// record counts one request that ended at end and took d.
func (s *routeStats) record(end time.Time, d time.Duration, o outcome) {
	b := bucketOf(d)
	s.total.record(b, o)
	p := end.UnixNano() / int64(windowPeriod)
	sl := &s.ring[p%windowSlots]
	if old := sl.period.Load(); old != p {
		// The slot holds an older period: the first recorder of the new
		// period clears it (a concurrent recorder may lose a count at
		// the turn; the window is approximate by that much).
		if sl.period.CompareAndSwap(old, p) {
			sl.reset()
		}
	}
	sl.record(b, o)
}

// window returns the counts of the last minute as of now, and the span
// they cover.
func (s *routeStats) window(now time.Time) (counts, time.Duration) {
	var c, tmp counts
	p := now.UnixNano() / int64(windowPeriod)
	for i := range s.ring {
		sl := &s.ring[i]
		if q := sl.period.Load(); q > p-windowSlots && q <= p {
			sl.load(&tmp)
			c.add(&tmp)
		}
	}
	span := time.Duration(windowSlots-1)*windowPeriod + time.Duration(now.UnixNano()%int64(windowPeriod))
	if live := now.Sub(s.since); live < span {
		span = live
	}
	if span < time.Second {
		span = time.Second
	}
	return c, span
}

func (s *routeStats) totals() counts {
	var c counts
	s.total.load(&c)
	return c
}

// export fills the figures of a RouteStats.
func (s *routeStats) export(rs *RouteStats, now time.Time) {
	t := s.totals()
	rs.Total = t.export()
	w, span := s.window(now)
	rs.Window = w.export()
	rs.WindowSeconds = span.Seconds()
	rs.RPS = float64(w.requests) / span.Seconds()
}
