package local

import (
	"bytes"
	"errors"
	"io"
	"os"
	"sync"
	"time"
)

// streamChunk is the longest piece of a line held back waiting for its
// newline; flushPartial is how long a partial line waits at most.
const streamChunk = 32 << 10

var flushPartial = 200 * time.Millisecond

var bufPool = sync.Pool{New: func() any { b := make([]byte, streamChunk); return &b }}

// copyLines copies r to w as whole lines as they arrive; a partial line is
// written when it fills the buffer, when it has waited flushPartial (if r
// supports read deadlines) or at the end. Write errors stop the writing,
// not the reading, so the step never blocks on a broken log.
func copyLines(r io.Reader, w io.Writer) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	dl, _ := r.(interface{ SetReadDeadline(time.Time) error })
	deadline := false
	var werr error
	write := func(p []byte) {
		if werr == nil && len(p) > 0 {
			_, werr = w.Write(p)
		}
	}
	n := 0
	for {
		m, err := r.Read(buf[n:])
		n += m
		if m > 0 {
			if i := bytes.LastIndexByte(buf[n-m:n], '\n'); i >= 0 {
				end := n - m + i + 1
				write(buf[:end])
				n = copy(buf, buf[end:n])
			}
			if n == len(buf) {
				write(buf[:n])
				n = 0
			}
		}
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				write(buf[:n])
				n = 0
			} else {
				break
			}
		}
		if dl != nil {
			switch {
			case n > 0 && !deadline:
				deadline = dl.SetReadDeadline(time.Now().Add(flushPartial)) == nil
			case n == 0 && deadline:
				dl.SetReadDeadline(time.Time{})
				deadline = false
			}
		}
	}
	write(buf[:n])
}
