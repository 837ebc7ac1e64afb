//go:build !unix

package local

import (
	"os"
	"os/exec"
)

// Without process groups only the step's own process is stopped, and the
// step's PATH is not searched (the executor's is).
const searchOwnPath = false

func setProcessGroup(*exec.Cmd) {}

func startCmd(cmd *exec.Cmd) error { return cmd.Start() }

func waitExited(*os.Process) bool { return false }

func termGroup(p *os.Process) { _ = p.Kill() }
func killGroup(p *os.Process) { _ = p.Kill() }

func exitCode(ps *os.ProcessState) int { return ps.ExitCode() }

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}
