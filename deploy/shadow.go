package deploy

import (
	"context"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	kruntime "github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/serving"
	"github.com/kiln-ml/kiln/tensor"
)

// Shadow mirroring: Observe copies a share of the requests (their inputs,
// and the primary's first output to compare with) onto a bounded queue
// that the endpoint's shadow goroutines drain. A full queue drops the
// copy (counted), so the primary never waits for its shadow.
const (
	shadowQueueSize = 256
	shadowTimeout   = 30 * time.Second
)

// agreeTol is the relative tolerance under which numeric outputs agree.
const agreeTol = 1e-6

type shadowJob struct {
	slot    *slot
	inputs  []*tensor.Tensor
	primary *tensor.Tensor
}

type shadower struct {
	ep      *endpoint
	queue   chan shadowJob
	stop    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
	workers int

	dropped  atomic.Int64
	mirrored atomic.Int64
	failed   atomic.Int64

	mu          sync.Mutex
	compared    int64
	agreed      int64
	sumAbsDiff  float64
	numericSeen int64

	droppedC, okC, errC       prometheus.Counter
	comparedC, agreedC, diffC prometheus.Counter
	durationH                 prometheus.Observer
}

func newShadower(ep *endpoint, m *metrics) *shadower {
	return &shadower{
		ep:        ep,
		queue:     make(chan shadowJob, shadowQueueSize),
		stop:      make(chan struct{}),
		workers:   max(1, runtime.GOMAXPROCS(0)/2),
		droppedC:  m.shadowRequests.WithLabelValues(ep.name, "dropped"),
		okC:       m.shadowRequests.WithLabelValues(ep.name, "ok"),
		errC:      m.shadowRequests.WithLabelValues(ep.name, "error"),
		comparedC: m.shadowCompared.WithLabelValues(ep.name),
		agreedC:   m.shadowAgreed.WithLabelValues(ep.name),
		diffC:     m.shadowAbsDiff.WithLabelValues(ep.name),
		durationH: m.shadowDuration.WithLabelValues(ep.name),
	}
}

// offer queues a copy of c for the shadow target s, or drops it.
func (sh *shadower) offer(s *slot, c *serving.Call) {
	sh.once.Do(sh.start)
	if len(sh.queue) >= cap(sh.queue) {
		sh.drop()
		return
	}
	// The call's tensors may alias pooled request buffers: copy them.
	job := shadowJob{slot: s, inputs: make([]*tensor.Tensor, len(c.Inputs))}
	for i, t := range c.Inputs {
		job.inputs[i] = t.Clone()
	}
	if len(c.Outputs) > 0 && c.Outputs[0] != nil {
		job.primary = c.Outputs[0].Clone()
	}
	select {
	case sh.queue <- job:
	default:
		sh.drop()
	}
}

func (sh *shadower) drop() {
	sh.dropped.Add(1)
	sh.droppedC.Inc()
}

func (sh *shadower) start() {
	for i := 0; i < sh.workers; i++ {
		sh.wg.Add(1)
		go sh.work()
	}
}

// close stops the shadow goroutines (the endpoint was deleted).
func (sh *shadower) close() {
	sh.once.Do(func() {}) // no start after close
	select {
	case <-sh.stop:
	default:
		close(sh.stop)
	}
	sh.wg.Wait()
}

func (sh *shadower) work() {
	defer sh.wg.Done()
	for {
		select {
		case <-sh.stop:
			return
		case job := <-sh.queue:
			sh.run(job)
		}
	}
}

func (sh *shadower) run(job shadowJob) {
	s := job.slot
	ctx, cancel := context.WithTimeout(context.Background(), shadowTimeout)
	defer cancel()
	rm, err := s.get(ctx)
	if err != nil || !rm.acquire() {
		sh.failed.Add(1)
		sh.errC.Inc()
		return
	}
	start := time.Now()
	var outs []*tensor.Tensor
	inputs, err := kruntime.MatchInputs(rm.sm.Runtime.Signature(), job.inputs)
	if err == nil {
		outs, err = rm.sm.Runtime.Predict(ctx, inputs)
	}
	d := time.Since(start)
	rm.done()
	end := start.Add(d)
	rm.lastUsed.Store(end.UnixNano())
	if err != nil {
		s.stats.record(end, d, outcomeError)
		sh.failed.Add(1)
		sh.errC.Inc()
		return
	}
	s.stats.record(end, d, outcomeOK)
	sh.mirrored.Add(1)
	sh.okC.Inc()
	sh.durationH.Observe(d.Seconds())
	if job.primary == nil || len(outs) == 0 {
		return
	}
	agree, diff, numeric := compareOutputs(job.primary, outs[0])
	sh.mu.Lock()
	sh.compared++
	if agree {
		sh.agreed++
	}
	if numeric {
		sh.numericSeen++
		sh.sumAbsDiff += diff
	}
	sh.mu.Unlock()
	sh.comparedC.Inc()
	if agree {
		sh.agreedC.Inc()
	}
	if numeric {
		sh.diffC.Add(diff)
	}
}

// compareOutputs compares the primary's and the shadow's first outputs:
// agree when every element is equal (strings, labels) or within agreeTol
// relative (numbers); diff is the mean absolute difference of numeric
// outputs.
func compareOutputs(a, b *tensor.Tensor) (agree bool, diff float64, numeric bool) {
	if a == nil || b == nil || a.Len() != b.Len() {
		return false, 0, false
	}
	if a.DType == tensor.String || b.DType == tensor.String {
		as, aok := a.Data.([]string)
		bs, bok := b.Data.([]string)
		if !aok || !bok {
			return false, 0, false
		}
		for i := range as {
			if as[i] != bs[i] {
				return false, 0, false
			}
		}
		return true, 0, false
	}
	af, err1 := a.Float64s()
	bf, err2 := b.Float64s()
	if err1 != nil || err2 != nil {
		return false, 0, false
	}
	agree = true
	sum := 0.0
	for i := range af {
		d := math.Abs(af[i] - bf[i])
		sum += d
		if d > agreeTol*math.Max(1, math.Abs(af[i])) {
			agree = false
		}
	}
	if len(af) > 0 {
		sum /= float64(len(af))
	}
	return agree, sum, true
}

func (sh *shadower) export() *ShadowStats {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	st := &ShadowStats{
		Mirrored: sh.mirrored.Load(), Dropped: sh.dropped.Load(), Compared: sh.compared,
	}
	if sh.compared > 0 {
		st.Agreement = float64(sh.agreed) / float64(sh.compared)
	}
	if sh.numericSeen > 0 {
		st.MeanAbsDiff = sh.sumAbsDiff / float64(sh.numericSeen)
	}
	return st
}
