package python

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/kiln-ml/kiln/runtime"
	"github.com/kiln-ml/kiln/tensor"
)

// Frame limits, as the worker's.
const (
	maxHeader  = 64 << 20
	maxPayload = math.MaxUint32
)

// errProtocol marks an answer that breaks the protocol: the worker is
// killed, as nothing it says can be trusted any more.
var errProtocol = errors.New("python worker protocol error")

type frame struct {
	header  []byte
	payload []byte
}

// spec is a tensor descriptor of the protocol.
type spec struct {
	Name     string  `json:"name"`
	DataType string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

// message is any header the worker sends.
type message struct {
	Op        string `json:"op"`
	ID        uint64 `json:"id"`
	Kind      string `json:"kind"`
	Message   string `json:"message"`
	Outputs   []spec `json:"outputs"`
	PID       int    `json:"pid"`
	Python    string `json:"python"`
	MLflow    string `json:"mlflow"`
	InputKind string `json:"input_kind"`
	Inputs    []spec `json:"inputs"`
}

func specsOf(ss []spec) []runtime.TensorSpec {
	out := make([]runtime.TensorSpec, len(ss))
	for i, s := range ss {
		dt, err := tensor.ParseDType(s.DataType)
		if err != nil {
			dt = tensor.Invalid // any type
		}
		out[i] = runtime.TensorSpec{Name: s.Name, DType: dt, Shape: s.Shape}
	}
	return out
}

// signature is the runtime signature a ready message describes.
func (r *message) signature() (runtime.Signature, string) {
	return runtime.Signature{Inputs: specsOf(r.Inputs), Outputs: specsOf(r.Outputs)}, r.InputKind
}

// proc is one worker process.
type proc struct {
	cmd    *exec.Cmd
	pid    int
	stdin  *os.File
	w      *bufio.Writer
	frames chan frame    // answers; closed when stdout ends
	done   chan struct{} // closed when the process has been waited for
	err    error         // how it exited, once done is closed
	ready  message
	stderr *tail
	buf    []byte // scratch for encoding a request
	hdr    []byte
	once   sync.Once
}

// startProc starts a worker on dir and waits for it to load the model.
func startProc(ctx context.Context, o options, dir string) (*proc, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(o.python, "-m", "kiln.worker", "--model-dir", dir)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1", "PYTHONSAFEPATH=1")
	cmd.Env = append(cmd.Env, o.env...)
	cmd.Stdin = pr
	cmd.WaitDelay = 2 * time.Second
	setProcessGroup(cmd)
	p := &proc{cmd: cmd, stdin: pw, w: bufio.NewWriterSize(pw, 64<<10), frames: make(chan frame, 1), done: make(chan struct{}),
		stderr: &tail{log: o.log}}
	cmd.Stderr = p.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		pr.Close()
		pw.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return nil, fmt.Errorf("%w: %s: %w", ErrWorkerStart, o.python, err)
	}
	pr.Close()
	p.pid = cmd.Process.Pid
	p.stderr.mu.Lock()
	p.stderr.pid = p.pid
	p.stderr.mu.Unlock()
	go p.readLoop(stdout)

	timer := time.NewTimer(o.startTimeout)
	defer timer.Stop()
	select {
	case f, ok := <-p.frames:
		if !ok {
			<-p.done
			return nil, fmt.Errorf("%w: %s -m kiln.worker exited (%v) before loading the model%s", ErrWorkerStart, o.python, p.err, p.stderr.hint())
		}
		if err := json.Unmarshal(f.header, &p.ready); err != nil {
			p.kill()
			return nil, fmt.Errorf("%w: bad ready message: %v", ErrWorkerStart, err)
		}
		if p.ready.Op == "error" {
			p.kill()
			return nil, fmt.Errorf("%w: loading %s: %s", ErrWorkerStart, dir, p.ready.Message)
		}
		if p.ready.Op != "ready" {
			p.kill()
			return nil, fmt.Errorf("%w: expected a ready message, got %q", ErrWorkerStart, p.ready.Op)
		}
	case <-timer.C:
		p.kill()
		return nil, fmt.Errorf("%w: the model did not load within %v%s", ErrWorkerStart, o.startTimeout, p.stderr.hint())
	case <-ctx.Done():
		p.kill()
		return nil, fmt.Errorf("%w: %w", ErrWorkerStart, ctx.Err())
	}
	o.log.Info("python worker ready", "pid", p.pid, "model", dir, "python", p.ready.Python, "mlflow", p.ready.MLflow)
	return p, nil
}

// readLoop reads the worker's frames until its stdout ends, then reaps it.
func (p *proc) readLoop(stdout io.Reader) {
	r := bufio.NewReaderSize(stdout, 64<<10)
	for {
		f, err := readFrame(r)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				p.stderr.note("kiln: " + err.Error())
				p.kill()
			}
			break
		}
		p.frames <- f
	}
	close(p.frames)
	io.Copy(io.Discard, r)
	p.err = p.cmd.Wait()
	close(p.done)
}

func readFrame(r io.Reader) (frame, error) {
	var prefix [8]byte
	if _, err := io.ReadFull(r, prefix[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return frame{}, fmt.Errorf("%w: stream ended inside a frame", errProtocol)
		}
		return frame{}, err
	}
	h, n := binary.LittleEndian.Uint32(prefix[:4]), binary.LittleEndian.Uint32(prefix[4:])
	if h == 0 || h > maxHeader {
		return frame{}, fmt.Errorf("%w: header length %d", errProtocol, h)
	}
	buf := make([]byte, int(h)+int(n))
	if _, err := io.ReadFull(r, buf); err != nil {
		return frame{}, fmt.Errorf("%w: stream ended inside a frame: %v", errProtocol, err)
	}
	return frame{header: buf[:h:h], payload: buf[h:]}, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill ends the worker and its children at once.
func (p *proc) kill() {
	p.once.Do(func() { p.stdin.Close() })
	killGroup(p.cmd)
}

// stop closes the worker's stdin and gives it grace to exit before
// killing it.
func (p *proc) stop(grace time.Duration) {
	p.once.Do(func() { p.stdin.Close() })
	select {
	case <-p.done:
	case <-time.After(grace):
	}
	killGroup(p.cmd)
	<-p.done
}

// crashErr describes a worker that died during a request.
func (p *proc) crashErr(cause error) error {
	select {
	case <-p.done:
	case <-time.After(3 * time.Second):
	}
	how := "it closed its output"
	if p.exited() && p.err != nil {
		how = p.err.Error()
	} else if p.exited() {
		how = "exit status 0"
	}
	if cause != nil {
		how += "; " + cause.Error()
	}
	return fmt.Errorf("%w: pid %d (%s); it restarts on the next request%s", ErrWorkerCrashed, p.pid, how, p.stderr.hint())
}

// sendPredict writes a predict request.
func (p *proc) sendPredict(id uint64, inputs []*tensor.Tensor, deadline time.Time) error {
	h := append(p.hdr[:0], `{"op":"predict","id":`...)
	h = appendUint(h, id)
	h = append(h, `,"inputs":[`...)
	size := 0
	for i, t := range inputs {
		if i > 0 {
			h = append(h, ',')
		}
		h = append(h, `{"name":`...)
		h = appendJSONString(h, t.Name)
		h = append(h, `,"datatype":"`...)
		h = append(h, t.DType.String()...)
		h = append(h, `","shape":[`...)
		for j, d := range t.Shape {
			if j > 0 {
				h = append(h, ',')
			}
			h = appendUint(h, uint64(d))
		}
		h = append(h, "]}"...)
		n, err := dataSize(t)
		if err != nil {
			return err
		}
		size += n
	}
	h = append(h, "]}"...)
	p.hdr = h
	if size > maxPayload {
		return fmt.Errorf("%w: inputs of %d bytes exceed the worker protocol's 4 GiB", runtime.ErrInvalidInput, size)
	}
	p.stdin.SetWriteDeadline(deadline) // pipes support deadlines where the OS polls them
	var prefix [8]byte
	binary.LittleEndian.PutUint32(prefix[:4], uint32(len(h)))
	binary.LittleEndian.PutUint32(prefix[4:], uint32(size))
	p.w.Write(prefix[:])
	p.w.Write(h)
	for _, t := range inputs {
		if err := p.writeData(t); err != nil {
			return err
		}
	}
	return p.w.Flush()
}

// dataSize is the size of t's data in the payload.
func dataSize(t *tensor.Tensor) (int, error) {
	if t.DType == tensor.String {
		ss := t.Data.([]string)
		n := 4 * len(ss)
		for _, s := range ss {
			n += len(s)
		}
		return n, nil
	}
	if t.DType.Size() == 0 {
		return 0, fmt.Errorf("%w: input %q has datatype %v", runtime.ErrInvalidInput, t.Name, t.DType)
	}
	return t.Len() * t.DType.Size(), nil
}

func (p *proc) writeData(t *tensor.Tensor) error {
	if ss, ok := t.Data.([]string); ok {
		var n [4]byte
		for _, s := range ss {
			binary.LittleEndian.PutUint32(n[:], uint32(len(s)))
			p.w.Write(n[:])
			p.w.WriteString(s)
		}
		return nil
	}
	var err error
	p.buf, err = binary.Append(p.buf[:0], binary.LittleEndian, t.Data)
	if err != nil {
		return fmt.Errorf("%w: input %q: %v", runtime.ErrInvalidInput, t.Name, err)
	}
	_, err = p.w.Write(p.buf)
	if cap(p.buf) > 16<<20 {
		p.buf = nil // do not keep a huge buffer for the worker's life
	}
	return err
}

// result decodes the answer f to request id.
func (p *proc) result(f frame, id uint64) ([]*tensor.Tensor, error) {
	var msg message
	if err := json.Unmarshal(f.header, &msg); err != nil {
		return nil, fmt.Errorf("%w: bad header: %v", errProtocol, err)
	}
	if msg.ID != id {
		return nil, fmt.Errorf("%w: answer to request %d, want %d", errProtocol, msg.ID, id)
	}
	switch msg.Op {
	case "result":
		return decodeTensors(msg.Outputs, f.payload)
	case "error":
		if msg.Kind == "input" {
			return nil, fmt.Errorf("%w: %s", runtime.ErrInvalidInput, msg.Message)
		}
		return nil, fmt.Errorf("%w: %s", ErrPredict, msg.Message)
	}
	return nil, fmt.Errorf("%w: unexpected %q", errProtocol, msg.Op)
}

// ping checks that the worker answers within timeout.
func (p *proc) ping(id uint64, timeout time.Duration) error {
	if p.exited() {
		return errors.New("exited")
	}
	h := append(appendUint([]byte(`{"op":"ping","id":`), id), '}')
	var prefix [8]byte
	binary.LittleEndian.PutUint32(prefix[:4], uint32(len(h)))
	p.stdin.SetWriteDeadline(time.Now().Add(timeout))
	p.w.Write(prefix[:])
	p.w.Write(h)
	if err := p.w.Flush(); err != nil {
		return err
	}
	select {
	case f, ok := <-p.frames:
		if !ok {
			return errors.New("exited")
		}
		var msg message
		if err := json.Unmarshal(f.header, &msg); err != nil || msg.Op != "pong" || msg.ID != id {
			return fmt.Errorf("%w: bad answer to ping", errProtocol)
		}
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("no answer to ping within %v", timeout)
	}
}

// decodeTensors decodes the tensors specs lists from payload.
func decodeTensors(specs []spec, payload []byte) ([]*tensor.Tensor, error) {
	out := make([]*tensor.Tensor, len(specs))
	off := 0
	for i, s := range specs {
		dt, err := tensor.ParseDType(s.DataType)
		if err != nil {
			return nil, fmt.Errorf("%w: output %q: %v", errProtocol, s.Name, err)
		}
		n := tensor.NumElements(s.Shape)
		if n < 0 {
			return nil, fmt.Errorf("%w: output %q: bad shape %v", errProtocol, s.Name, s.Shape)
		}
		// Bound the allocation by what the payload can hold.
		if unit := max(dt.Size(), 4*boolToInt(dt == tensor.String)); n > 0 && (len(payload)-off)/unit < n {
			return nil, fmt.Errorf("%w: output %q: payload too short for shape %v", errProtocol, s.Name, s.Shape)
		}
		data, err := tensor.MakeSlice(dt, n)
		if err != nil {
			return nil, fmt.Errorf("%w: output %q: %v", errProtocol, s.Name, err)
		}
		if ss, ok := data.([]string); ok {
			for j := range ss {
				if len(payload)-off < 4 {
					return nil, fmt.Errorf("%w: output %q: payload too short", errProtocol, s.Name)
				}
				k := int(binary.LittleEndian.Uint32(payload[off:]))
				off += 4
				if len(payload)-off < k {
					return nil, fmt.Errorf("%w: output %q: payload too short", errProtocol, s.Name)
				}
				ss[j] = string(payload[off : off+k])
				off += k
			}
		} else {
			size := n * dt.Size()
			if len(payload)-off < size {
				return nil, fmt.Errorf("%w: output %q: payload too short", errProtocol, s.Name)
			}
			if _, err := binary.Decode(payload[off:off+size], binary.LittleEndian, data); err != nil {
				return nil, fmt.Errorf("%w: output %q: %v", errProtocol, s.Name, err)
			}
			off += size
		}
		out[i] = &tensor.Tensor{Name: s.Name, DType: dt, Shape: s.Shape, Data: data}
	}
	if off != len(payload) {
		return nil, fmt.Errorf("%w: %d bytes after the outputs", errProtocol, len(payload)-off)
	}
	return out, nil
}

func boolToInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func appendUint(b []byte, v uint64) []byte {
	var d [20]byte
	i := len(d)
	for {
		i--
		d[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(b, d[i:]...)
}

// appendJSONString appends s as a JSON string (invalid UTF-8 replaced).
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[r>>4], hex[r&0xf])
		case r == utf8.RuneError:
			b = utf8.AppendRune(b, utf8.RuneError)
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	return append(b, '"')
}

// tail logs a worker's stderr line by line and keeps its last lines for
// error messages.
type tail struct {
	mu    sync.Mutex
	log   *slog.Logger
	pid   int
	part  []byte
	lines []string
}

const tailLines = 20

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.part = append(t.part, b...)
	for {
		i := bytes.IndexByte(t.part, '\n')
		if i < 0 {
			break
		}
		t.addLocked(string(t.part[:i]))
		t.part = t.part[i+1:]
	}
	if len(t.part) > 64<<10 { // a very long line: log it in pieces
		t.addLocked(string(t.part))
		t.part = t.part[:0]
	}
	return len(b), nil
}

func (t *tail) addLocked(line string) {
	line = strings.TrimRight(line, "\r")
	t.log.Info("python worker", "pid", t.pid, "stderr", line)
	t.lines = append(t.lines, line)
	if len(t.lines) > tailLines {
		t.lines = t.lines[len(t.lines)-tailLines:]
	}
}

func (t *tail) note(line string) {
	t.mu.Lock()
	t.addLocked(line)
	t.mu.Unlock()
}

// hint is the end of the worker's stderr, for an error message, with
// advice when the kiln package is missing.
func (t *tail) hint() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := t.lines
	if len(t.part) > 0 {
		lines = append(lines[:len(lines):len(lines)], string(t.part))
	}
	if len(lines) == 0 {
		return ""
	}
	msg := "; stderr: " + strings.Join(lines, " | ")
	for _, l := range lines {
		if strings.Contains(l, "No module named kiln") || strings.Contains(l, "No module named 'kiln'") {
			msg += " (install Kiln's Python package into this interpreter: pip install ./sdk/python, or set PYTHONPATH to sdk/python/src)"
			break
		}
	}
	return msg
}
