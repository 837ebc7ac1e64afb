//go:build !unix

package tune

import "os/exec"

func ownGroup(*exec.Cmd) {}

// signalGroup kills the command itself (no process groups here).
func signalGroup(cmd *exec.Cmd, _ bool) {
	if cmd.Process != nil {
		_ = cmd.Process.Kill()
	}
}
