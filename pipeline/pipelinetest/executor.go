// Package pipelinetest has fakes for tests of code that runs pipelines:
// a recording Executor with scripted outcomes.
package pipelinetest

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/kiln-ml/kiln/pipeline"
)

// Result is a scripted outcome of one attempt.
type Result struct {
	// ExitCode and Error make the attempt fail (ExitCode 1 when only
	// Error is set).
	ExitCode int
	Error    string
	// Err is returned as the executor's error (a failure to run at all).
	Err error
	// Outputs are the scalar outputs reported.
	Outputs map[string]string
	// Log is written to the attempt's log.
	Log string
	// Block makes the attempt wait until Release(step) (or its context
	// ends: then it returns ctx's error, like a killed attempt).
	Block bool
}

// Start is one recorded attempt.
type Start struct {
	Task  pipeline.Task
	Owner string // the Executor's Name
}

// Executor is a recording fake pipeline.Executor. Script a step's
// attempts with Script (attempt n takes the n-th result; the last one
// repeats); an unscripted step succeeds, with every scalar output set to
// "1". It is safe for concurrent use; several Services can share one
// (give each its own with Named to tell them apart).
type Executor struct {
	// Name is recorded in Start.Owner.
	Name string
	// OnStart, if set, is called at the start of every attempt.
	OnStart func(t *pipeline.Task)
	shared  *state
}

type state struct {
	mu       sync.Mutex
	cond     *sync.Cond
	scripts  map[string][]Result
	starts   []Start
	running  map[string]int
	released map[string]int
	calls    map[string]int
	base     map[string]int
}

// New returns an Executor.
func New() *Executor {
	st := &state{scripts: map[string][]Result{}, running: map[string]int{}, released: map[string]int{}, calls: map[string]int{}, base: map[string]int{}}
	st.cond = sync.NewCond(&st.mu)
	return &Executor{Name: "fake", shared: st}
}

// Named returns an Executor sharing e's scripts and records under
// another name.
func (e *Executor) Named(name string) *Executor {
	return &Executor{Name: name, OnStart: e.OnStart, shared: e.shared}
}

// Script sets the results of a step's next attempts, in order (the
// count starts again at each call).
func (e *Executor) Script(step string, results ...Result) {
	e.shared.mu.Lock()
	defer e.shared.mu.Unlock()
	e.shared.scripts[step] = results
	e.shared.base[step] = e.shared.calls[step]
}

// Release lets one blocked attempt of step (now or later) go on.
func (e *Executor) Release(step string) {
	e.shared.mu.Lock()
	defer e.shared.mu.Unlock()
	e.shared.released[step]++
	e.shared.cond.Broadcast()
}

// Starts returns every attempt started, in order.
func (e *Executor) Starts() []Start {
	e.shared.mu.Lock()
	defer e.shared.mu.Unlock()
	return append([]Start(nil), e.shared.starts...)
}

// StartCount returns how many attempts of step started (over every run).
func (e *Executor) StartCount(step string) int {
	e.shared.mu.Lock()
	defer e.shared.mu.Unlock()
	return e.shared.calls[step]
}

// StartCounts returns the attempts started per step.
func (e *Executor) StartCounts() map[string]int {
	e.shared.mu.Lock()
	defer e.shared.mu.Unlock()
	out := map[string]int{}
	for k, v := range e.shared.calls {
		out[k] = v
	}
	return out
}

// Running returns the steps with an attempt running now, sorted (a step
// running twice appears twice).
func (e *Executor) Running() []string {
	e.shared.mu.Lock()
	defer e.shared.mu.Unlock()
	var out []string
	for k, n := range e.shared.running {
		for i := 0; i < n; i++ {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// Run implements pipeline.Executor.
func (e *Executor) Run(ctx context.Context, t *pipeline.Task, log io.Writer) (pipeline.Outcome, error) {
	st := e.shared
	st.mu.Lock()
	st.starts = append(st.starts, Start{Task: *t, Owner: e.Name})
	n := st.calls[t.Step]
	st.calls[t.Step]++
	var r Result
	if sc := st.scripts[t.Step]; len(sc) > 0 {
		r = sc[min(n-st.base[t.Step], len(sc)-1)]
	} else {
		r.Outputs = map[string]string{}
		for _, o := range t.Outputs {
			if o.Type != pipeline.OutputArtifact && o.Type != "" {
				r.Outputs[o.Name] = "1"
			}
		}
	}
	st.running[t.Step]++
	st.mu.Unlock()
	defer func() {
		st.mu.Lock()
		st.running[t.Step]--
		if st.running[t.Step] == 0 {
			delete(st.running, t.Step)
		}
		st.mu.Unlock()
	}()
	if e.OnStart != nil {
		e.OnStart(t)
	}
	if r.Log != "" {
		io.WriteString(log, r.Log)
	}
	if r.Block {
		stop := context.AfterFunc(ctx, func() {
			st.mu.Lock()
			st.cond.Broadcast()
			st.mu.Unlock()
		})
		defer stop()
		st.mu.Lock()
		for st.released[t.Step] == 0 && ctx.Err() == nil {
			st.cond.Wait()
		}
		if ctx.Err() == nil {
			st.released[t.Step]--
		}
		st.mu.Unlock()
	}
	if err := ctx.Err(); err != nil {
		return pipeline.Outcome{ExitCode: -1, Error: "killed"}, err
	}
	if r.Err != nil {
		return pipeline.Outcome{}, r.Err
	}
	out := pipeline.Outcome{ExitCode: r.ExitCode, Error: r.Error, Outputs: r.Outputs, Handle: fmt.Sprintf("fake:%s/%s/%d", t.RunID, t.Step, t.Attempt)}
	if out.Error != "" && out.ExitCode == 0 {
		out.ExitCode = 1
	}
	if out.ExitCode != 0 && out.Error == "" {
		out.Error = fmt.Sprintf("exit status %d", out.ExitCode)
	}
	return out, nil
}
