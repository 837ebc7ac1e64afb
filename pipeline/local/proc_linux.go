package local

import (
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// parentDeathSignal kills a step's leader if the server dies, so that a
// server taking over the step does not race a leftover. The signal comes
// when the thread that started the process exits, so processes are
// started from one goroutine locked to its thread for good (startCmd).
func parentDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }

type startReq struct {
	cmd *exec.Cmd
	err chan error
}

var (
	starterOnce sync.Once
	starts      chan startReq
)

func startCmd(cmd *exec.Cmd) error {
	starterOnce.Do(func() {
		starts = make(chan startReq)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the process
			for r := range starts {
				r.err <- r.cmd.Start()
			}
		}()
	})
	errc := make(chan error, 1)
	starts <- startReq{cmd, errc}
	return <-errc
}

// waitExited blocks until p has exited without reaping it, so that its
// process group's id stays reserved while the group is cleaned up.
func waitExited(p *os.Process) bool {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, p.Pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return err == nil
		}
	}
}
