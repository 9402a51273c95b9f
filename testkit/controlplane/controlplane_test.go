package controlplane_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	"go.uber.org/goleak"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/csi-kit/sidecars/testkit/controlplane"
)

// sharedOpts configure the package's control plane, started by the first
// test that needs it. Tests using it run one after another, each in its own
// namespace.
var sharedOpts = controlplane.Options{
	ControllerManager: true,
	Scheduler:         true,
	RBAC:              true,
	SnapshotCRDs:      true,
	Progress:          os.Stderr,
}

var (
	sharedOnce sync.Once
	sharedCP   *controlplane.ControlPlane
	sharedErr  error
)

const helperEnv = "CSIKIT_CONTROLPLANE_TEST_HELPER"

func TestMain(m *testing.M) {
	flag.Parse()
	if os.Getenv(helperEnv) != "" { // see TestProcessesDieWithTestProcess
		os.Exit(m.Run())
	}
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if !testing.Short() {
		// Before m.Run, so a first-time build of the binaries does not count
		// against the test timeout.
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		if _, err := controlplane.EnsureBinaries(ctx, sharedOpts); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	code := m.Run()
	if sharedCP != nil {
		if err := sharedCP.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	return code
}

// sharedControlPlane returns the package's control plane, starting it on
// first use.
func sharedControlPlane(t *testing.T) *controlplane.ControlPlane {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the real control plane; not run with -short")
	}
	sharedOnce.Do(func() {
		sharedCP, sharedErr = controlplane.Start(context.Background(), sharedOpts)
	})
	if sharedErr != nil {
		t.Fatalf("starting the shared control plane: %v", sharedErr)
	}
	return sharedCP
}

func newClient(t *testing.T, cfg *rest.Config) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	return c
}

// newNamespace creates a namespace named after the test.
func newNamespace(t *testing.T, kube kubernetes.Interface) string {
	t.Helper()
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if _, err := kube.CoreV1().Namespaces().Create(t.Context(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	return name
}

// eventually polls cond every 100ms for up to 30s.
func eventually(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(t.Context(), 100*time.Millisecond, 30*time.Second, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func TestNodeSchedulingAndBinding(t *testing.T) {
	cp := sharedControlPlane(t)
	ctx := t.Context()
	kube := newClient(t, cp.Config())
	ns := newNamespace(t, kube)

	if err := controlplane.CreateNode(ctx, kube, "node-1", map[string]string{"topology.csi-kit.io/zone": "a"}); err != nil {
		t.Fatal(err)
	}
	node, err := kube.CoreV1().Nodes().Get(ctx, "node-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if node.Labels["topology.csi-kit.io/zone"] != "a" || len(node.Spec.Taints) != 0 {
		t.Errorf("node labels %v taints %v, want zone=a and no taints", node.Labels, node.Spec.Taints)
	}

	// kube-scheduler places a pod on the node.
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: ns},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "pause"}}},
	}
	if _, err := kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pod scheduled", func(ctx context.Context) (bool, error) {
		p, err := kube.CoreV1().Pods(ns).Get(ctx, "p", metav1.GetOptions{})
		return err == nil && p.Spec.NodeName == "node-1", err
	})

	// kube-controller-manager's binder binds a claim to a volume. The volume
	// names the claim, as a provisioner's would: an unnamed volume created
	// just before the claim may miss the binder's cache and wait for its 15s
	// resync.
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-pv"},
		Spec: corev1.PersistentVolumeSpec{
			ClaimRef:         &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: ns, Name: "claim"},
			Capacity:         corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: "manual",
			PersistentVolumeSource: corev1.PersistentVolumeSource{
				CSI: &corev1.CSIPersistentVolumeSource{Driver: "test.csi-kit.io", VolumeHandle: "vol-1"},
			},
		},
	}
	if _, err := kube.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	class := "manual"
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "claim", Namespace: ns},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: &class,
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			},
		},
	}
	if _, err := kube.CoreV1().PersistentVolumeClaims(ns).Create(ctx, pvc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "claim bound", func(ctx context.Context) (bool, error) {
		c, err := kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "claim", metav1.GetOptions{})
		return err == nil && c.Status.Phase == corev1.ClaimBound && c.Spec.VolumeName == pv.Name, err
	})
}

func TestSnapshotCRDsServed(t *testing.T) {
	cp := sharedControlPlane(t)
	ctx := t.Context()
	kube := newClient(t, cp.Config())
	ns := newNamespace(t, kube)

	list, err := kube.Discovery().ServerResourcesForGroupVersion("snapshot.storage.k8s.io/v1")
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	var names []string
	for _, r := range list.APIResources {
		names = append(names, r.Name)
	}
	for _, want := range []string{"volumesnapshots", "volumesnapshotcontents", "volumesnapshotclasses"} {
		if !strings.Contains(" "+strings.Join(names, " ")+" ", " "+want+" ") {
			t.Errorf("discovery lists %v, missing %s", names, want)
		}
	}

	snaps, err := snapclient.NewForConfig(cp.Config())
	if err != nil {
		t.Fatal(err)
	}
	claim := "claim"
	vs := &snapv1.VolumeSnapshot{
		ObjectMeta: metav1.ObjectMeta{Name: "snap", Namespace: ns},
		Spec:       snapv1.VolumeSnapshotSpec{Source: snapv1.VolumeSnapshotSource{PersistentVolumeClaimName: &claim}},
	}
	if _, err := snaps.SnapshotV1().VolumeSnapshots(ns).Create(ctx, vs, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating VolumeSnapshot: %v", err)
	}
}

func TestRBAC(t *testing.T) {
	cp := sharedControlPlane(t)
	ctx := t.Context()
	admin := newClient(t, cp.Config())
	ns := newNamespace(t, admin)

	alice := newClient(t, cp.ConfigFor("alice", "developers"))
	if _, err := alice.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("alice listing secrets: err = %v, want Forbidden", err)
	}

	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "secret-reader", Namespace: ns},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"list"}}},
	}
	if _, err := admin.RbacV1().Roles(ns).Create(ctx, role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "secret-reader", Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "secret-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "reader"}},
	}
	if _, err := admin.RbacV1().RoleBindings(ns).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	reader := newClient(t, cp.ConfigForServiceAccount(ns, "reader"))
	eventually(t, "ServiceAccount reader allowed to list secrets", func(ctx context.Context) (bool, error) {
		_, err := reader.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
		return err == nil, nil
	})
	if _, err := alice.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("alice listing secrets after binding the ServiceAccount: err = %v, want Forbidden", err)
	}
}

func TestRestartAPIServer(t *testing.T) {
	cp := sharedControlPlane(t)
	ctx := t.Context()
	kube := newClient(t, cp.Config())
	ns := newNamespace(t, kube)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kept"}, Data: map[string]string{"k": "v"}}
	if _, err := kube.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	if err := cp.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	if _, err := kube.CoreV1().ConfigMaps(ns).Get(ctx, "kept", metav1.GetOptions{}); err == nil {
		t.Error("get with the apiserver stopped succeeded")
	}
	start := time.Now()
	if err := cp.StartAPIServer(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("apiserver restarted in %s", time.Since(start).Round(100*time.Millisecond))

	got, err := kube.CoreV1().ConfigMaps(ns).Get(ctx, "kept", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get after restart: %v", err)
	}
	if got.Data["k"] != "v" {
		t.Errorf("data after restart = %v, want k=v", got.Data)
	}
	// The controllers reconnect: a node created now is still usable.
	if err := controlplane.CreateNode(ctx, kube, "node-after-restart", nil); err != nil {
		t.Fatal(err)
	}
}

func TestStartTAndStop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane")
	}
	cp := controlplane.StartT(t, controlplane.Options{})
	kube := newClient(t, cp.Config())
	v, err := kube.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != controlplane.KubernetesVersion {
		t.Logf("server version %s, want %s (binaries from elsewhere?)", v.GitVersion, controlplane.KubernetesVersion)
	}
	// AlwaysAllow: any authenticated user may list secrets.
	anyone := newClient(t, cp.ConfigFor("bob"))
	if _, err := anyone.CoreV1().Secrets("default").List(t.Context(), metav1.ListOptions{}); err != nil {
		t.Errorf("bob without RBAC: %v", err)
	}
	if _, err := os.Stat(cp.KubeconfigPath()); err != nil {
		t.Errorf("kubeconfig: %v", err)
	}
	for i := range 2 {
		if err := cp.Stop(); err != nil {
			t.Errorf("Stop #%d: %v", i+1, err)
		}
	}
	if _, err := os.Stat(cp.Dir()); !os.IsNotExist(err) {
		t.Errorf("directory %s after Stop: %v, want removed", cp.Dir(), err)
	}
	if err := cp.StartAPIServer(t.Context()); err != controlplane.ErrStopped {
		t.Errorf("StartAPIServer after Stop = %v, want ErrStopped", err)
	}
}

func TestStartFailureExplains(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd")
	}
	t.Setenv("TMPDIR", t.TempDir()) // the kept directory goes away with the test
	_, err := controlplane.Start(t.Context(), controlplane.Options{
		ExtraAPIServerArgs: []string{"--no-such-flag-for-the-test"},
	})
	if err == nil {
		t.Fatal("Start with a bad apiserver flag succeeded")
	}
	msg := err.Error()
	for _, want := range []string{"kube-apiserver", "exited", "no-such-flag-for-the-test", "kube-apiserver.log", "next:", "files kept in"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
}
