//go:build !linux

package controlplane

import "os/exec"

// setChildProcAttr does nothing here: without Pdeathsig the children outlive
// a test process that dies without calling Stop.
func setChildProcAttr(cmd *exec.Cmd) {}

func setBuildProcAttr(cmd *exec.Cmd) {}
