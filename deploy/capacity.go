package deploy

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kiln-ml/kiln/serving"
)

// Worker pool scaling (step scaling, one step per controller tick at
// most): a tick during which requests queued or were shed counts as busy,
// a tick during which at least one worker stayed unused counts as idle.
// scaleUpTicks busy ticks in a row add a worker, scaleDownTicks idle
// ticks in a row remove one, within [min_workers, max_workers].
const (
	scaleUpTicks   = 1
	scaleDownTicks = 10
)

// Defaults of a Capacity section.
const (
	defaultQueueTimeout = time.Second
	defaultRetryAfter   = time.Second
)

// overloadedError is a shed request: 429 with Retry-After.
type overloadedError struct {
	endpoint string
	why      string
	retry    time.Duration
}

func (e *overloadedError) Error() string {
	return fmt.Sprintf("endpoint %q is overloaded: %s; retry after %v", e.endpoint, e.why, e.retry)
}
func (e *overloadedError) Unwrap() error             { return serving.ErrOverloaded }
func (e *overloadedError) RetryAfter() time.Duration { return e.retry }

type waiter struct {
	ch      chan struct{}
	granted bool
}

// limiter admits an endpoint's requests: at most limit at once (the
// worker pool, capped by max_concurrency), up to queueSize waiting at
// most timeout each, the rest shed.
type limiter struct {
	endpoint string
	shedC    prometheus.Counter
	workersG prometheus.Gauge
	queuedG  prometheus.Gauge
	activeG  prometheus.Gauge

	mu                   sync.Mutex
	workers, minW, maxW  int
	maxConc              int
	limit                int
	active               int
	queue                []*waiter
	queueSize            int
	timeout              time.Duration
	shed                 int64
	scaleUps, scaleDowns int64
	// since the last scale tick:
	peakQueued, peakActive int
	shedTick               int64
	busyTicks, idleTicks   int
}

func newLimiter(endpoint string, m *metrics, c *Capacity) *limiter {
	l := &limiter{
		endpoint: endpoint,
		shedC:    m.shed.WithLabelValues(endpoint),
		workersG: m.workers.WithLabelValues(endpoint),
		queuedG:  m.queued.WithLabelValues(endpoint),
		activeG:  m.inFlight.WithLabelValues(endpoint),
	}
	l.configure(c)
	return l
}

// configure applies a Capacity section (defaults in docs/deployments.md).
func (l *limiter) configure(c *Capacity) {
	maxW := c.MaxWorkers
	if maxW == 0 {
		maxW = c.MaxConcurrency
	}
	if maxW == 0 {
		maxW = 4 * runtime.GOMAXPROCS(0)
	}
	maxW = max(maxW, c.MinWorkers)
	minW := c.MinWorkers
	if minW == 0 {
		minW = maxW // a fixed pool unless min_workers says otherwise
	}
	queue := c.QueueSize
	if queue == 0 {
		queue = 2 * maxW
	}
	timeout := c.QueueTimeout.D()
	if timeout == 0 {
		timeout = defaultQueueTimeout
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	first := l.maxW == 0
	l.minW, l.maxW, l.maxConc, l.queueSize, l.timeout = minW, maxW, c.MaxConcurrency, queue, timeout
	if first {
		l.workers = minW
	}
	l.workers = min(max(l.workers, minW), maxW)
	l.setLimit()
	l.grant()
}

func (l *limiter) setLimit() {
	l.limit = l.workers
	if l.maxConc > 0 && l.maxConc < l.limit {
		l.limit = l.maxConc
	}
	l.workersG.Set(float64(l.workers))
}

// admit lets a request in, waits in the queue, or sheds it.
func (l *limiter) admit(ctx context.Context) error {
	l.mu.Lock()
	if l.active < l.limit && len(l.queue) == 0 {
		l.active++
		l.peakActive = max(l.peakActive, l.active)
		l.mu.Unlock()
		l.activeG.Inc()
		return nil
	}
	if len(l.queue) >= l.queueSize {
		l.shed++
		l.shedTick++
		l.mu.Unlock()
		l.shedC.Inc()
		return &overloadedError{endpoint: l.endpoint, why: "all workers are busy and the queue is full", retry: defaultRetryAfter}
	}
	w := &waiter{ch: make(chan struct{})}
	l.queue = append(l.queue, w)
	l.peakQueued = max(l.peakQueued, len(l.queue))
	timeout := l.timeout
	l.mu.Unlock()
	l.queuedG.Inc()
	t := time.NewTimer(timeout)
	defer t.Stop()
	var err error
	select {
	case <-w.ch:
		l.queuedG.Dec()
		l.activeG.Inc()
		return nil
	case <-t.C:
		err = &overloadedError{endpoint: l.endpoint, why: fmt.Sprintf("no worker became free within the queue timeout of %v", timeout), retry: defaultRetryAfter}
	case <-ctx.Done():
		err = ctx.Err()
	}
	l.mu.Lock()
	if w.granted { // a worker freed up as the wait ended
		l.mu.Unlock()
		l.queuedG.Dec()
		l.activeG.Inc()
		return nil
	}
	for i, q := range l.queue {
		if q == w {
			l.queue = append(l.queue[:i], l.queue[i+1:]...)
			break
		}
	}
	if ctx.Err() == nil {
		l.shed++
		l.shedTick++
	}
	l.mu.Unlock()
	l.queuedG.Dec()
	if _, ok := err.(*overloadedError); ok {
		l.shedC.Inc()
	}
	return err
}

// release ends an admitted request.
func (l *limiter) release() {
	l.mu.Lock()
	l.active--
	l.grant()
	l.mu.Unlock()
	l.activeG.Dec()
}

// grant hands free workers to queued requests, in order.
func (l *limiter) grant() {
	for l.active < l.limit && len(l.queue) > 0 {
		w := l.queue[0]
		l.queue[0] = nil
		l.queue = l.queue[1:]
		w.granted = true
		l.active++
		l.peakActive = max(l.peakActive, l.active)
		close(w.ch)
	}
}

// tick scales the worker pool by the load since the last tick.
func (l *limiter) tick() {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.peakQueued > 0 || l.shedTick > 0:
		l.busyTicks++
		l.idleTicks = 0
		if l.busyTicks >= scaleUpTicks && l.workers < l.maxW {
			l.workers++
			l.scaleUps++
			l.busyTicks = 0
		}
	case l.peakActive < l.workers:
		l.idleTicks++
		l.busyTicks = 0
		if l.idleTicks >= scaleDownTicks && l.workers > l.minW {
			l.workers--
			l.scaleDowns++
			l.idleTicks = 0
		}
	default:
		l.busyTicks, l.idleTicks = 0, 0
	}
	l.peakQueued, l.peakActive, l.shedTick = len(l.queue), l.active, 0
	l.setLimit()
	l.grant()
}

func (l *limiter) stats() *CapacityStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return &CapacityStats{
		Workers: l.workers, MinWorkers: l.minW, MaxWorkers: l.maxW, InFlight: l.active,
		Queued: len(l.queue), QueueSize: l.queueSize, Shed: l.shed, ScaleUps: l.scaleUps, ScaleDowns: l.scaleDowns,
	}
}
