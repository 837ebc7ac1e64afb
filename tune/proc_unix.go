//go:build unix

package tune

import (
	"os/exec"
	"syscall"
)

// ownGroup starts the command in its own process group, so that the
// whole tree of a trial can be signalled.
func ownGroup(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

// signalGroup sends sig (terminate: SIGTERM, else SIGKILL) to the
// command's process group.
func signalGroup(cmd *exec.Cmd, terminate bool) {
	if cmd.Process == nil {
		return
	}
	sig := syscall.SIGKILL
	if terminate {
		sig = syscall.SIGTERM
	}
	if err := syscall.Kill(-cmd.Process.Pid, sig); err != nil {
		_ = cmd.Process.Signal(sig)
	}
}
