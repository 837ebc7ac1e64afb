// Package python is the runtime backend "python": it serves an MLflow
// pyfunc model (a pickled scikit-learn model, a custom PythonModel, any
// flavor with a python_function loader) through supervised worker
// processes running `python -m kiln.worker --model-dir DIR` from Kiln's
// Python package (sdk/python; `pip install ./sdk/python` into the Python
// that has the model's dependencies).
//
// Load starts the workers and waits for each to report its model loaded;
// the model's signature is the one MLflow reads from the MLmodel file:
// a column-based signature gives one 1-D input per column (shape [-1], in
// signature order, every column required), a tensor-based one its
// tensors (a single unnamed tensor is called "input", several
// "input_<i>"); a single unnamed output is called "predictions". A model
// without a signature takes any inputs.
//
// Each worker serves one request at a time; Options "workers" sets how
// many run (default 1). A request that takes longer than "timeout"
// (default 60 s) kills its worker and fails with ErrTimeout; a worker
// that dies fails its request with ErrWorkerCrashed and is started again
// by the next request; idle workers are pinged every "health_interval"
// (default 30 s). Close stops the workers and their children.
//
// Source.Path is the model directory. Source.Options:
//
//	python           string         the interpreter (default $KILN_PYTHON, else "python3")
//	workers          int            worker processes (default 1)
//	timeout          duration       per request (default 60s); a time.Duration, "90s" or seconds
//	start_timeout    duration       for a worker to load the model (default 120s)
//	health_interval  duration       idle ping period (default 30s; 0 or negative: no pings)
//	env              []string       extra environment ("PYTHONPATH=...")
//	logger           *slog.Logger   for the workers' stderr (default slog.Default())
//
// # Protocol
//
// Every message, in both directions, is one frame: a little-endian u32
// header length H, a u32 payload length P, H bytes of JSON header with an
// "op", and P bytes of payload holding the data of the tensors the header
// lists as {"name", "datatype", "shape"} (OIP datatypes), one after the
// other: fixed-size types row-major little-endian (BOOL one byte), BYTES
// as a u32 length and the bytes per element.
//
//	worker: {"op":"ready","pid","python","mlflow","input_kind","inputs":[spec],"outputs":[spec]}
//	        or {"op":"error","kind":"load","message"} and exit 1
//	parent: {"op":"predict","id":n,"inputs":[tensor]} + payload
//	worker: {"op":"result","id":n,"outputs":[tensor]} + payload
//	        or {"op":"error","id":n,"kind":"input"|"model","message"}
//	parent: {"op":"ping","id":n}   worker: {"op":"pong","id":n}
//
// The worker exits when its stdin closes. The Python side is
// sdk/python/src/kiln/worker.py; keep the two descriptions equal.
package python

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// Errors of the python backend, wrapped with details.
var (
	ErrWorkerStart   = errors.New("python worker did not start")
	ErrWorkerCrashed = errors.New("python worker crashed")
	ErrTimeout       = errors.New("python worker timed out")
	ErrPredict       = errors.New("python model failed")
	ErrClosed        = errors.New("python model is closed")
)

func init() { runtime.Register(backend{}) }

type backend struct{}

func (backend) Name() string { return "python" }

func (backend) Load(ctx context.Context, src runtime.Source) (runtime.Model, error) {
	if src.FS != nil {
		return nil, fmt.Errorf("%w: the python backend needs a model directory on the local file system", runtime.ErrUnsupported)
	}
	dir, err := filepath.Abs(src.Path)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("%w: %s is not a model directory", runtime.ErrInvalidModel, src.Path)
	}
	opts, err := parseOptions(src.Options)
	if err != nil {
		return nil, err
	}
	return newModel(ctx, dir, opts)
}

type options struct {
	python         string
	workers        int
	timeout        time.Duration
	startTimeout   time.Duration
	healthInterval time.Duration
	env            []string
	log            *slog.Logger
}

func parseOptions(m map[string]any) (options, error) {
	o := options{
		python:         os.Getenv("KILN_PYTHON"),
		workers:        1,
		timeout:        60 * time.Second,
		startTimeout:   120 * time.Second,
		healthInterval: 30 * time.Second,
		log:            slog.Default(),
	}
	if o.python == "" {
		o.python = "python3"
	}
	var err error
	if v, ok := m["python"]; ok {
		s, ok := v.(string)
		if !ok || s == "" {
			return o, fmt.Errorf("python backend: option python: want a path, got %v", v)
		}
		o.python = s
	}
	if v, ok := m["workers"]; ok {
		n, err := toInt(v)
		if err != nil || n < 1 || n > 256 {
			return o, fmt.Errorf("python backend: option workers: want 1 to 256, got %v", v)
		}
		o.workers = n
	}
	for key, dst := range map[string]*time.Duration{"timeout": &o.timeout, "start_timeout": &o.startTimeout, "health_interval": &o.healthInterval} {
		if v, ok := m[key]; ok {
			if *dst, err = toDuration(v); err != nil {
				return o, fmt.Errorf("python backend: option %s: %w", key, err)
			}
			if key != "health_interval" && *dst <= 0 {
				return o, fmt.Errorf("python backend: option %s: must be positive, got %v", key, v)
			}
		}
	}
	if v, ok := m["env"]; ok {
		env, ok := v.([]string)
		if !ok {
			return o, fmt.Errorf("python backend: option env: want []string, got %T", v)
		}
		o.env = env
	}
	if v, ok := m["logger"]; ok {
		l, ok := v.(*slog.Logger)
		if !ok || l == nil {
			return o, fmt.Errorf("python backend: option logger: want *slog.Logger, got %T", v)
		}
		o.log = l
	}
	return o, nil
}

func toInt(v any) (int, error) {
	switch n := v.(type) {
	case int:
		return n, nil
	case int64:
		return int(n), nil
	case float64:
		if n == float64(int(n)) {
			return int(n), nil
		}
	case string:
		return strconv.Atoi(n)
	}
	return 0, fmt.Errorf("not an integer: %v", v)
}

func toDuration(v any) (time.Duration, error) {
	switch d := v.(type) {
	case time.Duration:
		return d, nil
	case int:
		return time.Duration(d) * time.Second, nil
	case float64:
		return time.Duration(d * float64(time.Second)), nil
	case string:
		if secs, err := strconv.ParseFloat(d, 64); err == nil {
			return time.Duration(secs * float64(time.Second)), nil
		}
		return time.ParseDuration(d)
	}
	return 0, fmt.Errorf("want a duration, got %T", v)
}

// slot is one worker position of the pool; whoever took it from the
// pool's channel owns it.
type slot struct {
	mu sync.Mutex // guards p against Close
	p  *proc      // nil until started, or after a crash
}

func (s *slot) get() *proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.p
}

func (s *slot) set(p *proc) {
	s.mu.Lock()
	s.p = p
	s.mu.Unlock()
}

// Model is a pyfunc model served by a pool of workers.
type Model struct {
	dir       string
	opts      options
	sig       runtime.Signature
	inputKind string
	slots     chan *slot
	all       []*slot
	ids       atomic.Uint64
	closed    atomic.Bool
	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

var _ runtime.Model = (*Model)(nil)

func newModel(ctx context.Context, dir string, opts options) (*Model, error) {
	m := &Model{dir: dir, opts: opts, slots: make(chan *slot, opts.workers), stop: make(chan struct{})}
	procs := make([]*proc, opts.workers)
	errs := make([]error, opts.workers)
	var wg sync.WaitGroup
	for i := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			procs[i], errs[i] = m.start(ctx)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, p := range procs {
			if p != nil {
				p.kill()
			}
		}
		return nil, err
	}
	m.sig, m.inputKind = procs[0].ready.signature()
	for _, p := range procs {
		s := &slot{p: p}
		m.all = append(m.all, s)
		m.slots <- s
	}
	if opts.healthInterval > 0 {
		m.wg.Add(1)
		go m.healthLoop()
	}
	return m, nil
}

func (m *Model) start(ctx context.Context) (*proc, error) {
	return startProc(ctx, m.opts, m.dir)
}

// Signature returns the signature the worker read from the MLmodel file.
func (m *Model) Signature() runtime.Signature { return m.sig }

// Predict sends the inputs to a free worker and returns its outputs, in
// signature order when the outputs are the signature's.
func (m *Model) Predict(ctx context.Context, inputs []*tensor.Tensor) ([]*tensor.Tensor, error) {
	if m.closed.Load() {
		return nil, ErrClosed
	}
	if len(m.sig.Inputs) > 0 {
		var err error
		if inputs, err = runtime.MatchInputs(m.sig, inputs); err != nil {
			return nil, err
		}
	} else {
		for _, in := range inputs {
			if err := in.Validate(); err != nil {
				return nil, fmt.Errorf("%w: %w", runtime.ErrInvalidInput, err)
			}
		}
	}
	var s *slot
	select {
	case s = <-m.slots:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-m.stop:
		return nil, ErrClosed
	}
	out, keep, err := m.predictOn(ctx, s, inputs)
	if keep {
		m.slots <- s
	}
	if err != nil {
		return nil, err
	}
	return m.order(out), nil
}

// predictOn runs one request on the slot s it owns; keep is false when
// the slot was handed to a goroutine that gives it back later.
func (m *Model) predictOn(ctx context.Context, s *slot, inputs []*tensor.Tensor) ([]*tensor.Tensor, bool, error) {
	p := s.get()
	if p == nil || p.exited() {
		if m.closed.Load() {
			return nil, true, ErrClosed
		}
		var err error
		if p, err = m.start(ctx); err != nil {
			return nil, true, err
		}
		if m.closed.Load() {
			p.kill()
			return nil, true, ErrClosed
		}
		s.set(p)
	}
	id := m.ids.Add(1)
	deadline := time.Now().Add(m.opts.timeout)
	if err := p.sendPredict(id, inputs, deadline); err != nil {
		p.kill()
		s.set(nil)
		return nil, true, p.crashErr(fmt.Errorf("send request: %w", err))
	}
	timer := time.NewTimer(m.opts.timeout)
	defer timer.Stop()
	select {
	case f, ok := <-p.frames:
		if !ok {
			s.set(nil)
			return nil, true, p.crashErr(nil)
		}
		out, err := p.result(f, id)
		if errors.Is(err, errProtocol) {
			p.kill()
			s.set(nil)
		}
		return out, true, err
	case <-timer.C:
		p.kill()
		s.set(nil)
		return nil, true, fmt.Errorf("%w: no answer within %v (pid %d killed; it restarts on the next request)", ErrTimeout, m.opts.timeout, p.pid)
	case <-ctx.Done():
		// The worker cannot be interrupted: let it finish in the
		// background, then give the slot back.
		go m.drain(s, p, id, deadline)
		return nil, false, ctx.Err()
	}
}

// drain waits for the answer to an abandoned request, then returns the
// slot to the pool (killing the worker if the answer does not come).
func (m *Model) drain(s *slot, p *proc, id uint64, deadline time.Time) {
	defer func() { m.slots <- s }()
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case f, ok := <-p.frames:
		if ok {
			if _, err := p.result(f, id); !errors.Is(err, errProtocol) {
				return
			}
		}
	case <-timer.C:
	}
	p.kill()
	s.set(nil)
}

// order puts outputs in signature order when they are the signature's.
func (m *Model) order(out []*tensor.Tensor) []*tensor.Tensor {
	if len(m.sig.Outputs) == 0 || len(out) < len(m.sig.Outputs) {
		return out
	}
	byName := make(map[string]*tensor.Tensor, len(out))
	for _, t := range out {
		byName[t.Name] = t
	}
	if len(byName) != len(out) {
		return out
	}
	sorted := make([]*tensor.Tensor, 0, len(out))
	for _, spec := range m.sig.Outputs {
		t, ok := byName[spec.Name]
		if !ok {
			return out
		}
		sorted = append(sorted, t)
		delete(byName, spec.Name)
	}
	for _, t := range out {
		if _, extra := byName[t.Name]; extra {
			sorted = append(sorted, t)
		}
	}
	return sorted
}

// healthLoop pings idle workers; one that does not answer is killed and
// restarts on the next request.
func (m *Model) healthLoop() {
	defer m.wg.Done()
	t := time.NewTicker(m.opts.healthInterval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		for range m.all {
			var s *slot
			select {
			case s = <-m.slots:
			default:
				continue // busy
			}
			if p := s.get(); p != nil {
				if err := p.ping(m.ids.Add(1), min(m.opts.timeout, 10*time.Second)); err != nil {
					m.opts.log.Warn("python worker failed its health check; it restarts on the next request", "pid", p.pid, "err", err)
					p.kill()
					s.set(nil)
				}
			}
			m.slots <- s
		}
	}
}

// Close stops the workers: each gets EOF on stdin and a few seconds to
// exit, then its process group is killed. Requests in flight fail.
func (m *Model) Close() error {
	m.closeOnce.Do(func() {
		m.closed.Store(true)
		close(m.stop)
		m.wg.Wait()
		var wg sync.WaitGroup
		for _, s := range m.all {
			if p := s.get(); p != nil {
				wg.Add(1)
				go func() {
					defer wg.Done()
					p.stop(5 * time.Second)
				}()
			}
		}
		wg.Wait()
	})
	return nil
}

// PIDs returns the process ids of the running workers (for operators and
// tests).
func (m *Model) PIDs() []int {
	var out []int
	for _, s := range m.all {
		if p := s.get(); p != nil && !p.exited() {
			out = append(out, p.pid)
		}
	}
	return out
}
