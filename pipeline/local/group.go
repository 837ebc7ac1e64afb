package local

import (
	"os"
	"sync"
	"time"
)

// group is the process group of one attempt: terminate sends SIGTERM and
// arms SIGKILL after the grace period, finish sends SIGKILL at once and
// disarms everything (called before the leader is reaped, so the group's
// id cannot have been reused).
type group struct {
	p      *os.Process
	grace  time.Duration
	killed chan struct{} // closed when SIGKILL has been sent

	mu     sync.Mutex
	termed bool
	done   bool
	timer  *time.Timer
}

func newGroup(p *os.Process, grace time.Duration) *group {
	return &group{p: p, grace: grace, killed: make(chan struct{})}
}

func (g *group) terminate() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.done || g.termed {
		return
	}
	g.termed = true
	termGroup(g.p)
	g.timer = time.AfterFunc(g.grace, g.kill)
}

func (g *group) kill() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.killLocked()
}

func (g *group) killLocked() {
	if g.done {
		return
	}
	killGroup(g.p)
	select {
	case <-g.killed:
	default:
		close(g.killed)
	}
}

func (g *group) finish() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.killLocked()
	g.done = true
	if g.timer != nil {
		g.timer.Stop()
	}
}
