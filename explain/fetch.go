package explain

import (
	"context"
	"fmt"

	"github.com/csi-kit/sidecars/internal/names"
	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

// Explain fetches kind namespace/name and what Diagnose needs about it,
// and returns the diagnosis. kind accepts kubectl's names and short names
// (pvc, pv, vs, vsc, ...); namespace is ignored for cluster-scoped kinds.
// snap may be nil: snapshots then cannot be explained and claims restoring
// from snapshots are judged without their source.
//
// A target that does not exist gives a report with a NotFound finding, not
// an error. Related objects that cannot be read are listed in
// Report.Unread. The error is for an unknown kind and for failing to read
// the target itself.
func Explain(ctx context.Context, kube kubernetes.Interface, snap snapclient.Interface, kind, namespace, name string) (Report, error) {
	k, ok := ParseKind(kind)
	if !ok {
		return Report{}, fmt.Errorf("explain: unknown kind %q (want pvc, pv, volumesnapshot or volumesnapshotcontent)", kind)
	}
	if k == KindPV || k == KindSnapshotContent {
		namespace = ""
	}
	if (k == KindSnapshot || k == KindSnapshotContent) && snap == nil {
		return Report{}, fmt.Errorf("explain: a snapshot client is needed to explain a %s", k)
	}
	f := &fetcher{kube: kube, snap: snap, in: Input{Kind: k, Namespace: namespace, Name: name}}
	var err error
	switch k {
	case KindPVC:
		err = f.claimTarget(ctx)
	case KindPV:
		err = f.volumeTarget(ctx)
	case KindSnapshot:
		err = f.snapshotTarget(ctx)
	case KindSnapshotContent:
		err = f.contentTarget(ctx)
	}
	if err != nil {
		return Report{}, fmt.Errorf("explain %s %s: %w", k, name, err)
	}
	klog.FromContext(ctx).V(4).Info("Explaining", "kind", k, "namespace", namespace, "name", name, "events", len(f.in.Events), "leases", len(f.in.Leases))
	return Report{Kind: k, Namespace: namespace, Name: name, State: stateOf(&f.in),
		Findings: Diagnose(f.in), Unread: f.unread}, nil
}

// fetcher fills an Input; a failed read of a related object is recorded
// in unread and otherwise ignored.
type fetcher struct {
	kube   kubernetes.Interface
	snap   snapclient.Interface
	in     Input
	unread []string
	leases map[string]bool
}

// note records err unless it is nil or NotFound; it reports whether the
// object was found.
func (f *fetcher) note(what string, err error) bool {
	if err == nil {
		return true
	}
	if !apierrors.IsNotFound(err) {
		f.unread = append(f.unread, fmt.Sprintf("%s: %v", what, err))
	}
	return false
}

func (f *fetcher) claimTarget(ctx context.Context) error {
	pvc, err := f.kube.CoreV1().PersistentVolumeClaims(f.in.Namespace).Get(ctx, f.in.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	f.in.PVC = pvc
	f.events(ctx, pvc.Namespace, pvc.UID)
	if pvc.Spec.VolumeName != "" {
		f.volume(ctx, pvc.Spec.VolumeName)
	}
	f.claimClass(ctx, pvc)
	f.pods(ctx, pvc)
	if node := pvc.Annotations[names.AnnSelectedNode]; node != "" {
		f.node(ctx, node)
	}
	driver := provisionerOf(pvc, f.in.StorageClass)
	if d := pvc.Annotations[names.AnnStorageResizer]; d != "" {
		driver = d
	}
	if f.in.PV != nil && f.in.PV.Spec.CSI != nil {
		driver = f.in.PV.Spec.CSI.Driver
	}
	if needsLeases(pvc, f.in.StorageClass) {
		f.leasesFor(ctx, provisionerLease(driver), resizerLease(driver))
	}
	if f.in.StorageClass != nil && pvc.Status.Phase != v1.ClaimLost {
		f.capacities(ctx)
	}
	f.dataSource(ctx, pvc)
	return nil
}

func (f *fetcher) volumeTarget(ctx context.Context) error {
	pv, err := f.kube.CoreV1().PersistentVolumes().Get(ctx, f.in.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	f.in.PV = pv
	f.events(ctx, "", pv.UID)
	if ref := pv.Spec.ClaimRef; ref != nil {
		pvc, err := f.kube.CoreV1().PersistentVolumeClaims(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if f.note("claim "+ref.Namespace+"/"+ref.Name, err) && (ref.UID == "" || ref.UID == pvc.UID) {
			f.in.PVC = pvc
		}
	}
	if pv.Spec.StorageClassName != "" {
		f.class(ctx, pv.Spec.StorageClassName)
	}
	if pv.Spec.CSI != nil {
		f.leasesFor(ctx, provisionerLease(pv.Spec.CSI.Driver))
	}
	return nil
}

func (f *fetcher) snapshotTarget(ctx context.Context) error {
	vs, err := f.snap.SnapshotV1().VolumeSnapshots(f.in.Namespace).Get(ctx, f.in.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	f.in.Snapshot = vs
	f.events(ctx, vs.Namespace, vs.UID)
	content := boundContent(vs)
	if content == "" && vs.Spec.Source.VolumeSnapshotContentName != nil {
		content = *vs.Spec.Source.VolumeSnapshotContentName
	}
	if content != "" {
		f.content(ctx, content)
	}
	if src := vs.Spec.Source.PersistentVolumeClaimName; src != nil {
		pvc, err := f.kube.CoreV1().PersistentVolumeClaims(vs.Namespace).Get(ctx, *src, metav1.GetOptions{})
		if f.note("claim "+vs.Namespace+"/"+*src, err) {
			f.in.PVC = pvc
			if pvc.Spec.VolumeName != "" {
				f.volume(ctx, pvc.Spec.VolumeName)
			}
		}
	}
	f.snapshotClasses(ctx, vs.Spec.VolumeSnapshotClassName)
	names := []string{snapshotControllerLease()}
	if d := f.snapshotDriver(); d != "" {
		names = append(names, snapshotterLease(d))
	}
	f.leasesFor(ctx, names...)
	return nil
}

func (f *fetcher) contentTarget(ctx context.Context) error {
	vsc, err := f.snap.SnapshotV1().VolumeSnapshotContents().Get(ctx, f.in.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	f.in.Content = vsc
	f.events(ctx, "", vsc.UID)
	if ref := vsc.Spec.VolumeSnapshotRef; ref.Name != "" {
		vs, err := f.snap.SnapshotV1().VolumeSnapshots(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if f.note("snapshot "+ref.Namespace+"/"+ref.Name, err) && (ref.UID == "" || ref.UID == vs.UID) {
			f.in.Snapshot = vs
		}
	}
	f.snapshotClasses(ctx, vsc.Spec.VolumeSnapshotClassName)
	f.leasesFor(ctx, snapshotControllerLease(), snapshotterLease(vsc.Spec.Driver))
	return nil
}

func (f *fetcher) snapshotDriver() string {
	switch {
	case f.in.Content != nil:
		return f.in.Content.Spec.Driver
	case f.in.SnapshotClass != nil:
		return f.in.SnapshotClass.Driver
	case f.in.PV != nil && f.in.PV.Spec.CSI != nil:
		return f.in.PV.Spec.CSI.Driver
	}
	return ""
}

func (f *fetcher) volume(ctx context.Context, name string) {
	pv, err := f.kube.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
	if f.note("volume "+name, err) {
		f.in.PV = pv
	}
}

func (f *fetcher) content(ctx context.Context, name string) {
	vsc, err := f.snap.SnapshotV1().VolumeSnapshotContents().Get(ctx, name, metav1.GetOptions{})
	if f.note("content "+name, err) {
		f.in.Content = vsc
		f.events(ctx, "", vsc.UID)
	}
}

func (f *fetcher) class(ctx context.Context, name string) {
	sc, err := f.kube.StorageV1().StorageClasses().Get(ctx, name, metav1.GetOptions{})
	if f.note("storage class "+name, err) {
		f.in.StorageClass = sc
	} else if apierrors.IsNotFound(err) {
		f.in.StorageClassMissing = true
	}
}

func (f *fetcher) claimClass(ctx context.Context, pvc *v1.PersistentVolumeClaim) {
	name := claimClass(pvc)
	if name != nil {
		if *name != "" {
			f.class(ctx, *name)
		}
		return
	}
	classes, err := f.kube.StorageV1().StorageClasses().List(ctx, metav1.ListOptions{})
	if !f.note("storage classes", err) {
		return
	}
	for i := range classes.Items {
		if classes.Items[i].Annotations[annDefaultClass] == "true" {
			f.in.DefaultStorageClass = &classes.Items[i]
		}
	}
}

func (f *fetcher) snapshotClasses(ctx context.Context, name *string) {
	if name != nil {
		c, err := f.snap.SnapshotV1().VolumeSnapshotClasses().Get(ctx, *name, metav1.GetOptions{})
		if f.note("snapshot class "+*name, err) {
			f.in.SnapshotClass = c
		}
		return
	}
	classes, err := f.snap.SnapshotV1().VolumeSnapshotClasses().List(ctx, metav1.ListOptions{})
	if f.note("snapshot classes", err) {
		f.in.SnapshotClasses = classes.Items
		f.in.SnapshotClass = defaultSnapshotClass(classes.Items, f.snapshotDriver())
	}
}

// defaultSnapshotClass is the one default class of the driver, or nil.
func defaultSnapshotClass(classes []snapv1.VolumeSnapshotClass, driver string) *snapv1.VolumeSnapshotClass {
	var found *snapv1.VolumeSnapshotClass
	for i := range classes {
		c := &classes[i]
		if c.Annotations[names.AnnDefaultSnapshotClass] != "true" || (driver != "" && c.Driver != driver) {
			continue
		}
		if found != nil {
			return nil
		}
		found = c
	}
	return found
}

// pods lists the pods of the claim's namespace that use it.
func (f *fetcher) pods(ctx context.Context, pvc *v1.PersistentVolumeClaim) {
	pods, err := f.kube.CoreV1().Pods(pvc.Namespace).List(ctx, metav1.ListOptions{})
	if !f.note("pods", err) {
		return
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		for _, vol := range p.Spec.Volumes {
			if uses(p, vol, pvc.Name) {
				f.in.Pods = append(f.in.Pods, *p)
				if p.Spec.NodeName == "" {
					f.events(ctx, p.Namespace, p.UID)
				}
				break
			}
		}
	}
}

// uses reports whether the pod volume is the claim, directly or as a
// generic ephemeral volume.
func uses(p *v1.Pod, vol v1.Volume, claim string) bool {
	if vol.PersistentVolumeClaim != nil {
		return vol.PersistentVolumeClaim.ClaimName == claim
	}
	return vol.Ephemeral != nil && p.Name+"-"+vol.Name == claim
}

func (f *fetcher) node(ctx context.Context, name string) {
	n, err := f.kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if !f.note("node "+name, err) {
		return
	}
	f.in.Nodes = append(f.in.Nodes, *n)
	cn, err := f.kube.StorageV1().CSINodes().Get(ctx, name, metav1.GetOptions{})
	if f.note("csinode "+name, err) {
		f.in.CSINodes = append(f.in.CSINodes, *cn)
	}
}

// capacities lists CSIStorageCapacity objects of the claim's class in
// every namespace.
func (f *fetcher) capacities(ctx context.Context) {
	list, err := f.kube.StorageV1().CSIStorageCapacities("").List(ctx, metav1.ListOptions{})
	if !f.note("csistoragecapacities", err) {
		return
	}
	for _, c := range list.Items {
		if c.StorageClassName == f.in.StorageClass.Name {
			f.in.Capacities = append(f.in.Capacities, c)
		}
	}
}

func (f *fetcher) dataSource(ctx context.Context, pvc *v1.PersistentVolumeClaim) {
	if pvc.Status.Phase == v1.ClaimBound {
		return
	}
	kind, name := "", ""
	if r := pvc.Spec.DataSourceRef; r != nil {
		kind, name = r.Kind, r.Name
	} else if d := pvc.Spec.DataSource; d != nil {
		kind, name = d.Kind, d.Name
	}
	if kind == "PersistentVolumeClaim" {
		src, err := f.kube.CoreV1().PersistentVolumeClaims(pvc.Namespace).Get(ctx, name, metav1.GetOptions{})
		if f.note("claim "+pvc.Namespace+"/"+name, err) {
			f.in.DataSourceClaim = src
		}
		return
	}
	if kind != "VolumeSnapshot" || f.snap == nil {
		return
	}
	vs, err := f.snap.SnapshotV1().VolumeSnapshots(pvc.Namespace).Get(ctx, name, metav1.GetOptions{})
	if f.note("snapshot "+pvc.Namespace+"/"+name, err) {
		f.in.DataSourceSnapshot = vs
	}
}

// events lists the events of one object; cluster-scoped objects' events
// may be in any namespace.
func (f *fetcher) events(ctx context.Context, namespace string, uid types.UID) {
	sel := fields.OneTermEqualSelector("involvedObject.uid", string(uid)).String()
	list, err := f.kube.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{FieldSelector: sel})
	if f.note("events", err) {
		f.in.Events = append(f.in.Events, list.Items...)
	}
}

// leasesFor reads the Leases of these names in every namespace.
func (f *fetcher) leasesFor(ctx context.Context, names ...string) {
	if f.leases == nil {
		f.leases = map[string]bool{}
	}
	for _, name := range names {
		if name == "" || f.leases[name] {
			continue
		}
		f.leases[name] = true
		sel := fields.OneTermEqualSelector("metadata.name", name).String()
		list, err := f.kube.CoordinationV1().Leases("").List(ctx, metav1.ListOptions{FieldSelector: sel})
		if f.note("leases "+name, err) {
			f.in.Leases = append(f.in.Leases, list.Items...)
		}
	}
}

// needsLeases reports whether Diagnose may look at controller Leases for
// the claim: not while it waits for a first consumer.
func needsLeases(pvc *v1.PersistentVolumeClaim, class *storagev1.StorageClass) bool {
	if pvc.Status.Phase == v1.ClaimBound || pvc.Annotations[names.AnnSelectedNode] != "" || class == nil {
		return true
	}
	return class.VolumeBindingMode == nil || *class.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer
}
