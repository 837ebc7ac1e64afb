package tune

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/kiln-ml/kiln/errdefs"
)

// Direction says whether the objective is minimized or maximized.
type Direction string

// The directions.
const (
	Minimize Direction = "minimize"
	Maximize Direction = "maximize"
)

// better says whether a is better than b in direction d.
func (d Direction) better(a, b float64) bool {
	if d == Maximize {
		return a > b
	}
	return a < b
}

// State is a trial's state.
type State string

// The trial states.
const (
	Running   State = "running"
	Completed State = "completed"
	Pruned    State = "pruned"
	Failed    State = "failed"
)

// ErrPruned is what an objective returns when it stops a trial because
// Trial.ShouldPrune said so (or wraps, with errors.Is).
var ErrPruned = errors.New("trial pruned")

// Point is one intermediate value of a trial.
type Point struct {
	Step  int64   `json:"step"`
	Value float64 `json:"value"`
}

// FrozenTrial is the record of a trial.
type FrozenTrial struct {
	Number int    `json:"number"`
	State  State  `json:"state"`
	Params Params `json:"params"`
	// Value is the objective's value of a completed trial.
	Value *float64 `json:"value,omitempty"`
	// Intermediate are the values reported on the way, by step.
	Intermediate []Point `json:"intermediate,omitempty"`
	// RunID is the trial's tracking run (command objectives).
	RunID string    `json:"run_id,omitempty"`
	Error string    `json:"error,omitempty"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end,omitzero"`

	x map[string]float64 // internal values: numbers, categorical indexes
}

// LastStep returns the trial's last reported step, and false if none.
func (t *FrozenTrial) LastStep() (int64, bool) {
	if len(t.Intermediate) == 0 {
		return 0, false
	}
	return t.Intermediate[len(t.Intermediate)-1].Step, true
}

// at returns the intermediate value at step.
func (t *FrozenTrial) at(step int64) (float64, bool) {
	i := sort.Search(len(t.Intermediate), func(i int) bool { return t.Intermediate[i].Step >= step })
	if i < len(t.Intermediate) && t.Intermediate[i].Step == step {
		return t.Intermediate[i].Value, true
	}
	return 0, false
}

// Sampler picks the parameters of new trials.
type Sampler interface {
	// Sample returns the parameters of trial number (0-based) given the
	// study's trials so far (running ones included, with their params).
	// ErrExhausted ends the study (a grid was covered).
	Sample(space *Space, trials []FrozenTrial, number int, d Direction) (Params, error)
}

// ErrExhausted is what a Sampler returns when it has nothing more to try.
var ErrExhausted = errors.New("search space exhausted")

// Pruner decides whether a running trial stops early.
type Pruner interface {
	// Prune is asked after each reported value of trial t; trials are
	// all the study's trials (t among them, as reported so far).
	Prune(d Direction, trials []FrozenTrial, t *FrozenTrial) bool
}

// Objective runs one trial and returns its value. It returns ErrPruned
// when it stopped because t.ShouldPrune() was true; any other error fails
// the trial.
type Objective interface {
	Run(ctx context.Context, t *Trial) (float64, error)
}

// ObjectiveFunc is a function that is an Objective.
type ObjectiveFunc func(ctx context.Context, t *Trial) (float64, error)

// Run calls f.
func (f ObjectiveFunc) Run(ctx context.Context, t *Trial) (float64, error) { return f(ctx, t) }

// Optimizer runs a study: it samples trials, runs them Parallelism at a
// time, prunes them, and keeps the best.
type Optimizer struct {
	Space     *Space
	Direction Direction // default Minimize
	Sampler   Sampler   // default a TPE sampler seeded with Seed
	Pruner    Pruner    // nil: none
	// Trials is the number of trials (0: until Timeout, or until the
	// sampler is exhausted).
	Trials      int
	Parallelism int           // default 1
	Timeout     time.Duration // no new trials after it; 0: none
	MaxFailed   int           // end after this many failed trials; 0: never
	Seed        int64
	Logger      *slog.Logger
	// OnTrial is called (from one goroutine at a time) when a trial starts
	// and when it ends.
	OnTrial func(FrozenTrial)
}

// Result is the outcome of a study.
type Result struct {
	Direction Direction     `json:"direction"`
	Seed      int64         `json:"seed"`
	Trials    []FrozenTrial `json:"trials"`
	// Best is the best completed trial; nil when none completed.
	Best     *FrozenTrial  `json:"best,omitempty"`
	Counts   map[State]int `json:"counts"`
	Duration time.Duration `json:"duration_ns"`
	Stopped  string        `json:"stopped,omitempty"` // why it ended early: timeout, exhausted, failures, interrupted
}

// study is one Optimize call's shared state.
type study struct {
	o      *Optimizer
	mu     sync.Mutex
	trials []FrozenTrial
	cbMu   sync.Mutex
}

// Trial is a running trial as its objective sees it.
type Trial struct {
	s      *study
	number int
	params Params
	pruned bool
}

// Number is the trial's number, from 0.
func (t *Trial) Number() int { return t.number }

// Params are the trial's parameters (do not modify).
func (t *Trial) Params() Params { return t.params }

// Float returns a float parameter (0 when inactive).
func (t *Trial) Float(name string) float64 {
	f, _ := number(t.params[name])
	return f
}

// Int returns an int parameter (0 when inactive).
func (t *Trial) Int(name string) int64 {
	f, _ := number(t.params[name])
	return int64(f)
}

// String returns a parameter formatted ("" when inactive).
func (t *Trial) String(name string) string { return t.params.String(name) }

// Has says whether the (conditional) parameter is active.
func (t *Trial) Has(name string) bool { _, ok := t.params[name]; return ok }

// Report records the intermediate value at step. A step reported again
// replaces the earlier value; steps before the last one are ignored, as
// are NaNs for the median.
func (t *Trial) Report(step int64, value float64) {
	s := t.s
	s.mu.Lock()
	defer s.mu.Unlock()
	ft := &s.trials[t.number]
	if n := len(ft.Intermediate); n > 0 {
		last := ft.Intermediate[n-1].Step
		if step < last {
			return
		}
		if step == last {
			ft.Intermediate[n-1].Value = value
			return
		}
	}
	ft.Intermediate = append(ft.Intermediate, Point{Step: step, Value: value})
}

// ShouldPrune asks the pruner whether the trial should stop now, after
// its last report. Once true it stays true.
func (t *Trial) ShouldPrune() bool {
	s := t.s
	if t.pruned {
		return true
	}
	if s.o.Pruner == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ft := &s.trials[t.number]
	if len(ft.Intermediate) == 0 {
		return false
	}
	t.pruned = s.o.Pruner.Prune(s.o.Direction, s.trials, ft)
	return t.pruned
}

// SetRunID records the trial's tracking run.
func (t *Trial) SetRunID(id string) {
	t.s.mu.Lock()
	t.s.trials[t.number].RunID = id
	t.s.mu.Unlock()
}

// Optimize runs the study to its end: Trials trials, the Timeout, an
// exhausted sampler, MaxFailed failures, or ctx's end (running trials are
// then cancelled and recorded as failed). The error is for a broken
// setup or a sampler failure; failed trials are in the result.
func (o *Optimizer) Optimize(ctx context.Context, obj Objective) (*Result, error) {
	if o.Space == nil {
		return nil, errdefs.Invalid("the optimizer has no search space")
	}
	if o.Direction == "" {
		o.Direction = Minimize
	}
	if o.Direction != Minimize && o.Direction != Maximize {
		return nil, errdefs.Invalid("direction must be minimize or maximize, not %q", o.Direction)
	}
	if o.Sampler == nil {
		o.Sampler = NewTPESampler(o.Seed)
	}
	if o.Trials == 0 && o.Timeout == 0 {
		if _, grid := o.Sampler.(*GridSampler); !grid {
			return nil, errdefs.Invalid("set the number of trials or a timeout")
		}
	}
	par := max(o.Parallelism, 1)
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &study{o: o}
	start := time.Now()
	var deadline <-chan time.Time
	if o.Timeout > 0 {
		tm := time.NewTimer(o.Timeout)
		defer tm.Stop()
		deadline = tm.C
	}
	slots := make(chan struct{}, par)
	done := make(chan struct{}, MaxTrials)
	var wg sync.WaitGroup
	stopped := ""
	var sampleErr error
	failed := 0
	countFailed := func() {
		for {
			select {
			case <-done:
				failed++
			default:
				return
			}
		}
	}
loop:
	for n := 0; o.Trials == 0 || n < o.Trials; n++ {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			stopped = "interrupted"
			break loop
		case <-deadline:
			stopped = "timeout"
			break loop
		}
		countFailed()
		if o.MaxFailed > 0 && failed >= o.MaxFailed {
			<-slots
			stopped = "failures"
			break
		}
		// A deadline or cancellation that came while waiting for a slot
		// wins over starting another trial.
		select {
		case <-ctx.Done():
			stopped = "interrupted"
			<-slots
			break loop
		case <-deadline:
			stopped = "timeout"
			<-slots
			break loop
		default:
		}
		s.mu.Lock()
		params, err := o.Sampler.Sample(o.Space, s.trials, n, o.Direction)
		if err != nil {
			s.mu.Unlock()
			<-slots
			if errors.Is(err, ErrExhausted) {
				stopped = "exhausted"
			} else {
				sampleErr = fmt.Errorf("sampling trial %d: %w", n, err)
			}
			break
		}
		ft := FrozenTrial{Number: n, State: Running, Params: params, Start: time.Now(), x: o.Space.internalAll(params)}
		s.trials = append(s.trials, ft)
		s.mu.Unlock()
		s.notify(ft)
		wg.Add(1)
		go func(t *Trial) {
			defer wg.Done()
			defer func() { <-slots }()
			if s.run(ctx, obj, t, log) == Failed {
				done <- struct{}{}
			}
		}(&Trial{s: s, number: n, params: params})
	}
	wg.Wait()
	countFailed()
	if stopped == "" && o.MaxFailed > 0 && failed >= o.MaxFailed && len(s.trials) < o.Trials {
		stopped = "failures"
	}
	res := &Result{Direction: o.Direction, Seed: o.Seed, Trials: s.trials, Counts: map[State]int{}, Duration: time.Since(start), Stopped: stopped}
	for i := range res.Trials {
		t := &res.Trials[i]
		res.Counts[t.State]++
		if t.State == Completed && (res.Best == nil || o.Direction.better(*t.Value, *res.Best.Value)) {
			res.Best = t
		}
	}
	if sampleErr != nil {
		return res, sampleErr
	}
	return res, nil
}

// run runs one trial and records its outcome.
func (s *study) run(ctx context.Context, obj Objective, t *Trial, log *slog.Logger) (state State) {
	var value float64
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("the objective panicked: %v", r)
			}
		}()
		value, err = obj.Run(ctx, t)
	}()
	s.mu.Lock()
	ft := &s.trials[t.number]
	ft.End = time.Now()
	switch {
	case errors.Is(err, ErrPruned):
		ft.State = Pruned
	case err != nil:
		ft.State, ft.Error = Failed, err.Error()
	case math.IsNaN(value) || math.IsInf(value, 0):
		ft.State, ft.Error = Failed, fmt.Sprintf("the objective's value is %v", value)
	default:
		ft.State, ft.Value = Completed, &value
	}
	snap := *ft
	s.mu.Unlock()
	log.Info("trial ended", "trial", snap.Number, "state", snap.State, "value", value, "error", snap.Error)
	s.notify(snap)
	return snap.State
}

func (s *study) notify(t FrozenTrial) {
	if s.o.OnTrial == nil {
		return
	}
	s.cbMu.Lock()
	defer s.cbMu.Unlock()
	s.o.OnTrial(t)
}

// internalAll converts a trial's params to internal values.
func (s *Space) internalAll(p Params) map[string]float64 {
	x := make(map[string]float64, len(p))
	for i := range s.params {
		q := &s.params[i]
		if v, ok := p[q.Name]; ok {
			if f, ok := q.internal(v); ok {
				x[q.Name] = f
			}
		}
	}
	return x
}
