package controlplane

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// process is one child binary whose output goes to a log file. A process
// may be started again after it stopped; the log is appended to.
type process struct {
	name    string // e.g. "kube-apiserver"
	path    string // executable
	args    []string
	logPath string

	mu        sync.Mutex
	logOffset int64 // size of the log when the current run started
	cmd       *exec.Cmd
	done      chan struct{} // closed when cmd has been waited for
	err       error         // cmd.Wait's result, valid after done
}

// start launches the process. It does not wait for readiness.
func (p *process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done != nil {
		select {
		case <-p.done:
		default:
			return fmt.Errorf("%s is already running", p.name)
		}
	}
	logFile, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("opening log for %s: %w", p.name, err)
	}
	if fi, err := logFile.Stat(); err == nil {
		p.logOffset = fi.Size()
	}
	fmt.Fprintf(logFile, "=== %s: %s %s\n", time.Now().Format(time.RFC3339), p.path, strings.Join(p.args, " "))
	cmd := exec.Command(p.path, p.args...)
	cmd.Stdout = logFile // an *os.File: no copying goroutine
	cmd.Stderr = logFile
	setChildProcAttr(cmd)

	// Fork from a new goroutine: it is never locked to its thread, so the
	// thread Pdeathsig watches lives as long as the test process.
	startErr := make(chan error, 1)
	go func() { startErr <- cmd.Start() }()
	err = <-startErr
	logFile.Close() // the child holds its own descriptor
	if err != nil {
		return fmt.Errorf("starting %s: %w", p.name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done, p.err = cmd, done, nil
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// exited reports whether the process has ended, and how.
func (p *process) exited() (bool, error) {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if done == nil {
		return true, nil
	}
	select {
	case <-done:
		p.mu.Lock()
		defer p.mu.Unlock()
		return true, p.err
	default:
		return false, nil
	}
}

// kill kills the process with SIGKILL and waits until it has been reaped.
// Killing a stopped process does nothing.
func (p *process) kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if done == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Kill()
	<-done
}

// tail returns the last n lines of the log.
func (p *process) tail(n int) string {
	data, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", p.logPath, err)
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// logContains reports whether the log of the current run holds s.
func (p *process) logContains(s string) bool {
	p.mu.Lock()
	off := p.logOffset
	p.mu.Unlock()
	data, err := os.ReadFile(p.logPath)
	return err == nil && int64(len(data)) >= off && bytes.Contains(data[off:], []byte(s))
}

// failure builds the error for a process that did not become ready.
func (p *process) failure(what error, next string) error {
	return fmt.Errorf("controlplane: %s: %w\n--- last 20 lines of %s ---\n%s\n--- end of log ---\nnext: %s",
		p.name, what, p.logPath, p.tail(20), next)
}
