package pipeline

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Log bounds: an attempt's log is stored in chunks of at most
// logChunkBytes, written at least every logFlushEvery while output comes,
// and at most MaxLogBytes per attempt (then a note says it was cut).
const (
	MaxLogBytes   = 8 << 20
	logChunkBytes = 64 << 10
	logFlushEvery = 250 * time.Millisecond
)

// logWriter is the io.Writer an executor writes an attempt's output to;
// it also takes the attempt's handle (HandleSetter).
type logWriter struct {
	s       *Service
	st      *stepRow
	mu      sync.Mutex
	buf     []byte
	seq     int64
	total   int64
	cut     bool
	timer   *time.Timer
	started bool
	// until is when the last chunk stored before this writer was made
	// was written (LogCursor).
	until time.Time
}

// HandleSetter is implemented by the log writer a Service gives an
// Executor: an executor that can re-attach to an attempt (Attacher) calls
// SetHandle as soon as the attempt has one (its Job exists), so that a
// server taking over the step's lease can attach to it.
type HandleSetter interface {
	SetHandle(handle string)
}

func newLogWriter(s *Service, st *stepRow) *logWriter {
	w := &logWriter{s: s, st: st}
	if seq, at, err := s.lastLog(context.Background(), st.runID, st.Step, st.Attempt); err == nil {
		w.seq = seq
		if at > 0 {
			w.until = time.UnixMilli(at)
		}
	}
	return w
}

// StoredUntil implements LogCursor.
func (w *logWriter) StoredUntil() time.Time { return w.until }

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	if w.cut {
		return n, nil
	}
	if w.total+int64(len(p)) > MaxLogBytes {
		p = p[:MaxLogBytes-w.total]
		w.cut = true
	}
	w.total += int64(len(p))
	w.buf = append(w.buf, p...)
	if w.cut {
		w.buf = append(w.buf, fmt.Sprintf("\n[kiln: the log was cut at %d MiB; the rest of this attempt's output is not stored]\n", MaxLogBytes>>20)...)
	}
	if len(w.buf) >= logChunkBytes || w.cut {
		w.flushLocked(context.Background())
	} else if w.timer == nil {
		w.timer = time.AfterFunc(logFlushEvery, func() {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.timer = nil
			w.flushLocked(context.Background())
		})
	}
	return n, nil
}

func (w *logWriter) flushLocked(ctx context.Context) {
	for len(w.buf) > 0 {
		chunk := w.buf[:min(len(w.buf), logChunkBytes)]
		if w.s.isCrashed() {
			w.buf = nil
			return
		}
		w.seq++
		if err := w.s.appendLog(ctx, w.st.runID, w.st.Step, w.st.Attempt, w.seq, w.s.nowMS(), chunk); err != nil {
			w.s.log.Warn("storing a step's log failed", "run", w.st.runID, "step", w.st.Step, "err", err)
		}
		w.buf = w.buf[len(chunk):]
	}
	w.buf = nil
}

// SetHandle records the attempt's handle under its lease.
func (w *logWriter) SetHandle(handle string) {
	if w.s.isCrashed() {
		return
	}
	w.st.Handle = handle
	if _, err := w.s.leased(context.Background(), w.s.db.W, w.st, `handle = ?`, handle); err != nil {
		w.s.log.Warn("recording a step's handle failed", "run", w.st.runID, "step", w.st.Step, "err", err)
	}
}

// Close stores what is buffered.
func (w *logWriter) Close(ctx context.Context) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	w.flushLocked(ctx)
	w.cut = true // late writes of a stopped executor are dropped
}
