package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/csi-kit/sidecars/testkit/controlplane"
)

// The demo cluster: two zones with one node each.
var nodes = []struct{ name, zone string }{
	{"node-a", "cn-hangzhou-a"},
	{"node-b", "cn-hangzhou-b"},
}

const namespace = "default"

type env struct {
	started time.Time
	dir     string
	bin     string
	cp      *controlplane.ControlPlane
	kube    kubernetes.Interface
	snap    snapclient.Interface
	procs   []*proc
}

type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func setup(ctx context.Context) (*env, error) {
	e := &env{started: time.Now()}
	var err error
	if e.dir, err = os.MkdirTemp("", "csi-kit-demo-"); err != nil {
		return nil, err
	}
	e.bin = filepath.Join(e.dir, "bin")

	e.banner("Setup")
	e.step("1/4 control-plane binaries (built once from the Go module proxy, then cached)")
	if _, err := controlplane.EnsureBinaries(ctx, controlplane.Options{Progress: indent{}}); err != nil {
		return nil, err
	}
	e.step("2/4 building the example driver and sidecars")
	build := exec.CommandContext(ctx, "go", "build", "-o", e.bin+"/",
		"./examples/driver", "./examples/csi-provisioner", "./examples/csi-resizer",
		"./examples/csi-snapshotter", "./examples/snapshot-controller")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := os.MkdirAll(e.bin, 0o755); err != nil {
		return nil, err
	}
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("building the binaries: %w (run the demo from the repository root)", err)
	}
	e.step("3/4 starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler on loopback")
	t0 := time.Now()
	e.cp, err = controlplane.Start(ctx, controlplane.Options{
		ControllerManager: true, Scheduler: true, SnapshotCRDs: true, Progress: indent{},
	})
	if err != nil {
		return nil, err
	}
	e.say("control plane ready in %.1fs, kubeconfig: %s", time.Since(t0).Seconds(), e.cp.KubeconfigPath())
	e.kube = kubernetes.NewForConfigOrDie(e.cp.Config())
	e.snap = snapclient.NewForConfigOrDie(e.cp.Config())

	e.step("4/4 nodes in two zones (no kubelet runs: the demo registers them)")
	for _, n := range nodes {
		labels := map[string]string{"topology.kubernetes.io/zone": n.zone, "kubernetes.io/hostname": n.name}
		if err := controlplane.CreateNode(ctx, e.kube, n.name, labels); err != nil {
			return nil, err
		}
		e.say("node %-7s zone %s", n.name, n.zone)
	}
	return e, nil
}

// registerDriver creates the CSIDriver object and, in place of each node's
// kubelet and node-driver-registrar, the driver's entry in the CSINodes.
func (e *env) registerDriver(ctx context.Context, driver string, topologyKey func(node, zone string) (string, string), storageCapacity bool) error {
	f := false
	_, err := e.kube.StorageV1().CSIDrivers().Create(ctx, &storagev1.CSIDriver{
		ObjectMeta: metav1.ObjectMeta{Name: driver},
		Spec:       storagev1.CSIDriverSpec{AttachRequired: &f, StorageCapacity: &storageCapacity},
	}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	for _, n := range nodes {
		d := storagev1.CSINodeDriver{Name: driver, NodeID: n.name}
		if topologyKey != nil {
			k, _ := topologyKey(n.name, n.zone)
			d.TopologyKeys = []string{k}
			// The node label carrying the segment, as the kubelet would add it.
			node, err := e.kube.CoreV1().Nodes().Get(ctx, n.name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			k, v := topologyKey(n.name, n.zone)
			node.Labels[k] = v
			if _, err := e.kube.CoreV1().Nodes().Update(ctx, node, metav1.UpdateOptions{}); err != nil {
				return err
			}
		}
		csiNode, err := e.kube.StorageV1().CSINodes().Get(ctx, n.name, metav1.GetOptions{})
		if err != nil {
			csiNode = &storagev1.CSINode{ObjectMeta: metav1.ObjectMeta{Name: n.name}}
			csiNode.Spec.Drivers = []storagev1.CSINodeDriver{d}
			_, err = e.kube.StorageV1().CSINodes().Create(ctx, csiNode, metav1.CreateOptions{})
		} else {
			csiNode.Spec.Drivers = append(csiNode.Spec.Drivers, d)
			_, err = e.kube.StorageV1().CSINodes().Update(ctx, csiNode, metav1.UpdateOptions{})
		}
		if err != nil {
			return err
		}
	}
	e.say("[kubelet stand-in] registered %s on %d nodes (CSIDriver + CSINode)", driver, len(nodes))
	return nil
}

// start runs one of the built binaries with the given flags. Sidecars get
// --kubeconfig added (they run outside a pod) and POD_NAMESPACE; output goes
// to a log file.
func (e *env) start(name, binary string, args []string, sidecar bool) (*proc, error) {
	if sidecar {
		args = append(args, "--kubeconfig="+e.cp.KubeconfigPath())
	}
	logPath := filepath.Join(e.dir, "logs", name+".log")
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, err
	}
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(e.bin, binary), args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), "POD_NAMESPACE=kube-system", "NAMESPACE=kube-system", "POD_NAME="+name, "NODE_NAME=node-a")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); f.Close(); close(p.done) }()
	e.procs = append(e.procs, p)
	e.say("started %-28s %s %s", name, binary, strings.Join(redactKubeconfig(args), " "))
	return p, nil
}

func redactKubeconfig(args []string) []string {
	var out []string
	for _, a := range args {
		if !strings.HasPrefix(a, "--kubeconfig=") {
			out = append(out, a)
		}
	}
	return out
}

// stop sends SIGTERM and waits up to 10s.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (e *env) teardown(keep bool) {
	for _, p := range e.procs {
		p.stop()
	}
	if e.cp != nil {
		_ = e.cp.Stop()
	}
	if !keep {
		_ = os.RemoveAll(e.dir)
	}
}

func (e *env) banner(s string) {
	fmt.Printf("\n=== %s\n", s)
}

func (e *env) step(format string, a ...any) {
	fmt.Printf("--> "+format+"\n", a...)
}

func (e *env) say(format string, a ...any) {
	fmt.Printf("    "+format+"\n", a...)
}

// indent prefixes progress lines of the control plane.
type indent struct{}

func (indent) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		fmt.Printf("    %s\n", l)
	}
	return len(p), nil
}

// eventually polls cond every 200ms until it returns true, an error, or ctx ends.
func eventually(ctx context.Context, what string, timeout time.Duration, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%s: not reached within %v (last error: %v)", what, timeout, last)
			}
			return fmt.Errorf("%s: not reached within %v", what, timeout)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// podUsing creates a pod that mounts claim, optionally pinned by a node
// selector; the scheduler places it (no kubelet runs it).
func (e *env) podUsing(ctx context.Context, name, claim string, nodeSelector map[string]string) (*v1.Pod, error) {
	pod := &v1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: v1.PodSpec{
			NodeSelector: nodeSelector,
			Containers:   []v1.Container{{Name: "app", Image: "app", VolumeMounts: []v1.VolumeMount{{Name: "data", MountPath: "/data"}}}},
			Volumes: []v1.Volume{{Name: "data", VolumeSource: v1.VolumeSource{
				PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}},
		},
	}
	return e.kube.CoreV1().Pods(namespace).Create(ctx, pod, metav1.CreateOptions{})
}

// deletePod force-deletes: without a kubelet a graceful delete never ends.
func (e *env) deletePod(ctx context.Context, name string) error {
	zero := int64(0)
	return e.kube.CoreV1().Pods(namespace).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero})
}
