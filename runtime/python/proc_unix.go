//go:build unix

package python

import (
	"os/exec"
	"syscall"
)

// setProcessGroup starts the worker in its own process group, so that
// killGroup also ends the processes the model started.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

func killGroup(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Process.Kill()
}
