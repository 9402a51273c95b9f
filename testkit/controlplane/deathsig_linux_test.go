package controlplane_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/csi-kit/sidecars/testkit/controlplane"
)

// TestProcessesDieWithTestProcess starts a control plane in a child test
// process, SIGKILLs that process and expects etcd and kube-apiserver to die
// with it.
func TestProcessesDieWithTestProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperControlPlane$")
	cmd.Env = append(os.Environ(), helperEnv+"=1", "TMPDIR="+t.TempDir())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "READY") {
				ready <- true
				return
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			cmd.Wait()
			t.Fatalf("helper exited before its control plane was ready:\n%s", stderr.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("helper's control plane not ready after 2m")
	}

	children := childrenOf(t, cmd.Process.Pid)
	if len(children) < 2 {
		t.Fatalf("helper has children %v, want etcd and kube-apiserver", children)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for pid, name := range children {
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("%s (pid %d) still alive after the test process was killed", name, pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestHelperControlPlane is the child of TestProcessesDieWithTestProcess.
func TestHelperControlPlane(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("run by TestProcessesDieWithTestProcess")
	}
	cp, err := controlplane.Start(t.Context(), controlplane.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("READY", cp.Dir())
	time.Sleep(time.Hour) // until killed
}

// childrenOf returns the pids and names of pid's child processes.
func childrenOf(t *testing.T, pid int) map[int]string {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	kids := map[int]string{}
	for _, f := range stats {
		data, err := os.ReadFile(f)
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid ...
		s := string(data)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open {
			continue
		}
		fields := strings.Fields(s[close+1:])
		if len(fields) < 2 || fields[1] != strconv.Itoa(pid) {
			continue
		}
		child, _ := strconv.Atoi(strings.TrimSpace(s[:open]))
		kids[child] = s[open+1 : close]
	}
	return kids
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(data)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) > 0 && fields[0] != "Z"
}
