package explain_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	coordinationv1 "k8s.io/api/coordination/v1"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2/ktesting"
	"k8s.io/utils/ptr"

	"github.com/csi-kit/sidecars/explain"
	"github.com/csi-kit/sidecars/internal/kube"
	"github.com/csi-kit/sidecars/leaderelection"
)

var seq atomic.Int32

type world struct {
	t    testing.TB
	ctx  context.Context
	kube kubernetes.Interface
	snap snapclient.Interface
	ns   string
	id   string // unique suffix for cluster-scoped names
}

func newWorld(t testing.TB) *world {
	t.Helper()
	needCluster(t)
	_, ctx := ktesting.NewTestContext(t)
	cfg := kube.WithBudget(cp.Config(), -1, 0)
	w := &world{t: t, ctx: ctx, kube: kubernetes.NewForConfigOrDie(cfg), snap: snapclient.NewForConfigOrDie(cfg),
		id: fmt.Sprintf("%d-%d", seq.Add(1), time.Now().UnixNano()%100000)}
	w.ns = "explain-" + w.id
	w.must(w.kube.CoreV1().Namespaces().Create(ctx, &v1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: w.ns}}, metav1.CreateOptions{}))
	return w
}

func (w *world) must(_ any, err error) {
	w.t.Helper()
	if err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) class(driver string, mode storagev1.VolumeBindingMode) string {
	name := "sc-" + w.id
	w.must(w.kube.StorageV1().StorageClasses().Create(w.ctx, &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: name},
		Provisioner: driver, VolumeBindingMode: &mode}, metav1.CreateOptions{}))
	w.t.Cleanup(func() {
		_ = w.kube.StorageV1().StorageClasses().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}

func (w *world) claim(name, class, size string) {
	w.must(w.kube.CoreV1().PersistentVolumeClaims(w.ns).Create(w.ctx, &v1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.PersistentVolumeClaimSpec{StorageClassName: &class, AccessModes: []v1.PersistentVolumeAccessMode{v1.ReadWriteOnce},
			Resources: v1.VolumeResourceRequirements{Requests: v1.ResourceList{v1.ResourceStorage: resource.MustParse(size)}}},
	}, metav1.CreateOptions{}))
}

func (w *world) capacity(class, zone, free string) {
	w.must(w.kube.StorageV1().CSIStorageCapacities(w.ns).Create(w.ctx, &storagev1.CSIStorageCapacity{
		ObjectMeta:       metav1.ObjectMeta{GenerateName: "csisc-"},
		StorageClassName: class, Capacity: ptr.To(resource.MustParse(free)),
		NodeTopology: &metav1.LabelSelector{MatchLabels: map[string]string{"topology.kubernetes.io/zone": zone}},
	}, metav1.CreateOptions{}))
}

func (w *world) pod(name, claim string) {
	w.must(w.kube.CoreV1().Pods(w.ns).Create(w.ctx, &v1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1.PodSpec{Containers: []v1.Container{{Name: "c", Image: "busybox"}},
			Volumes: []v1.Volume{{Name: "v", VolumeSource: v1.VolumeSource{PersistentVolumeClaim: &v1.PersistentVolumeClaimVolumeSource{ClaimName: claim}}}}},
	}, metav1.CreateOptions{}))
}

// eventually explains kind/name until check accepts the report or 30s pass.
func (w *world) eventually(kind, name string, check func(explain.Report) error) explain.Report {
	w.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		rep, err := explain.Explain(w.ctx, w.kube, w.snap, kind, w.ns, name)
		if err != nil {
			w.t.Fatalf("Explain: %v", err)
		}
		cerr := check(rep)
		if cerr == nil {
			return rep
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("%v; last report:\n%s", cerr, rep)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func first(reason string, sev explain.Severity, text ...string) func(explain.Report) error {
	return func(r explain.Report) error {
		if len(r.Findings) == 0 || r.Findings[0].Reason != reason || r.Findings[0].Severity != sev {
			return fmt.Errorf("want first finding %s %s", sev, reason)
		}
		s := r.String()
		for _, t := range text {
			if !strings.Contains(s, t) {
				return fmt.Errorf("report lacks %q", t)
			}
		}
		if len(r.Unread) > 0 {
			return fmt.Errorf("unread objects: %v", r.Unread)
		}
		return nil
	}
}

func TestExplainWaitForFirstConsumer(t *testing.T) {
	w := newWorld(t)
	class := w.class("wffc.csi.example.com", storagev1.VolumeBindingWaitForFirstConsumer)
	w.claim("data", class, "1Gi")
	rep := w.eventually("pvc", "data", first(explain.ReasonWaitForFirstConsumer, explain.Info,
		"PersistentVolumeClaim "+w.ns+"/data: Pending, class "+class+", request 1Gi", "waiting for first consumer", "create a pod"))
	t.Logf("\n%s", rep)
}

func TestExplainNoProvisionerLeader(t *testing.T) {
	w := newWorld(t)
	driver := "lonely-" + w.id + ".csi.example.com"
	class := w.class(driver, storagev1.VolumeBindingImmediate)
	w.claim("data", class, "1Gi")
	lockName := leaderelection.LockName(leaderelection.ComponentProvisioner, driver)

	// No Lease anywhere: the provisioner may run without election.
	w.eventually("pvc", "data", first(explain.ReasonNoProvisionerLeader, explain.Warning, "no Lease \""+lockName+"\" exists in any namespace"))

	// A Lease without holder in another namespace: nobody leads.
	other := newWorld(t)
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: lockName},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(""), LeaseDurationSeconds: ptr.To[int32](15)}}
	l, err := w.kube.CoordinationV1().Leases(other.ns).Create(w.ctx, l, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rep := w.eventually("pvc", "data", first(explain.ReasonNoProvisionerLeader, explain.Error,
		"no live lease holder for \""+lockName+"\"", "Lease "+other.ns+"/"+lockName+" has no holder"))
	t.Logf("\n%s", rep)

	// A live holder: the claim just waits for the provisioner, and the
	// PV controller's ExternalProvisioning event is quoted.
	l.Spec.HolderIdentity = ptr.To("provisioner-0")
	l.Spec.RenewTime = &metav1.MicroTime{Time: time.Now()}
	l.Spec.LeaseDurationSeconds = ptr.To[int32](3600)
	if _, err := w.kube.CoordinationV1().Leases(other.ns).Update(w.ctx, l, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	w.eventually("pvc", "data", first(explain.ReasonWaitingForProvisioner, explain.Info, "waiting for "+driver, "last event: "))
}

func TestExplainNoCapacity(t *testing.T) {
	w := newWorld(t)
	driver := "cap.csi.example.com"
	class := w.class(driver, storagev1.VolumeBindingWaitForFirstConsumer)
	w.capacity(class, "a", "10Gi")
	w.capacity(class, "b", "20Gi")
	w.claim("data", class, "40Gi")
	w.pod("web", "data")
	rep := w.eventually("pvc", "data", first(explain.ReasonNoCapacity, explain.Error,
		"has 40Gi free for class "+class+" (largest: 20Gi in topology.kubernetes.io/zone=b)"))
	t.Logf("\n%s", rep)
}

func TestExplainSnapshotClassMissing(t *testing.T) {
	w := newWorld(t)
	class := w.class("snapdrv.csi.example.com", storagev1.VolumeBindingWaitForFirstConsumer)
	w.claim("data", class, "1Gi")
	w.must(w.snap.SnapshotV1().VolumeSnapshots(w.ns).Create(w.ctx, &snapv1.VolumeSnapshot{ObjectMeta: metav1.ObjectMeta{Name: "snap"},
		Spec: snapv1.VolumeSnapshotSpec{Source: snapv1.VolumeSnapshotSource{PersistentVolumeClaimName: ptr.To("data")},
			VolumeSnapshotClassName: ptr.To("missing-" + w.id)}}, metav1.CreateOptions{}))
	rep := w.eventually("vs", "snap", func(r explain.Report) error {
		if !r.Has(explain.ReasonSnapshotClassMissing) || !r.Has(explain.ReasonSourcePVCNotBound) {
			return fmt.Errorf("want SnapshotClassMissing and SourcePVCNotBound")
		}
		return nil
	})
	t.Logf("\n%s", rep)
	w.eventually("vsc", "absent-"+w.id, first(explain.ReasonNotFound, explain.Error))
}

func TestExplainUnknownKind(t *testing.T) {
	if _, err := explain.Explain(context.Background(), nil, nil, "pod", "ns", "x"); err == nil {
		t.Error("Explain(pod) succeeded, want an error")
	}
	if _, err := explain.Explain(context.Background(), nil, nil, "vs", "ns", "x"); err == nil {
		t.Error("Explain(vs) without a snapshot client succeeded, want an error")
	}
}
