//go:build unix && !linux

package local

import (
	"os"
	"os/exec"
	"syscall"
)

func parentDeathSignal(*syscall.SysProcAttr) {}

func startCmd(cmd *exec.Cmd) error { return cmd.Start() }

// waitExited cannot wait without reaping here: the caller reaps first.
func waitExited(*os.Process) bool { return false }
