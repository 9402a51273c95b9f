package controlplane

import (
	"os/exec"
	"syscall"
)

// setChildProcAttr makes the kernel SIGKILL the child when the thread that
// forked it exits. startProcess forks from a fresh goroutine, which never
// runs on a locked thread, and the Go runtime does not retire unlocked
// threads, so in practice that is when the test process exits.
func setChildProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// setBuildProcAttr puts the build in its own process group and kills the
// whole group (go build spawns compilers) when the context ends.
func setBuildProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
