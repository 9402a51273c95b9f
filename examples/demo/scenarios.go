package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const (
	diskDriver  = "diskplugin.csi.alibabacloud.com"  // field scenarios 000, 003
	localDriver = "localplugin.csi.alibabacloud.com" // field scenario 001
	rbdDriver   = "rbd.csi.ceph.com"                 // field scenario 002, offline-only
	nasDriver   = "nasplugin.csi.alibabacloud.com"   // field scenario 002, no fs step
	lhDriver    = "driver.longhorn.io"               // field scenario 004
)

// driverStack is one example driver with the sidecars serving it.
type driverStack struct {
	name   string
	socket string
}

var stacks = map[string]*driverStack{}

// startDriver starts the example driver for name in mode, once.
func (e *env) startDriver(ctx context.Context, name, mode string, extra ...string) (*driverStack, error) {
	if s, ok := stacks[name]; ok {
		return s, nil
	}
	short := strings.Split(name, ".")[0]
	socket := filepath.Join(e.dir, short+".sock")
	var zones []string
	for _, n := range nodes {
		zones = append(zones, n.name+"="+n.zone)
	}
	args := append([]string{
		"--endpoint=unix://" + socket, "--driver=" + name, "--nodeid=node-a", "--mode=" + mode,
		"--state-dir=" + filepath.Join(e.dir, "state", short), "--zones=" + strings.Join(zones, ","), "--v=5",
	}, extra...)
	if _, err := e.start(short+"-driver", "driver", args, false); err != nil {
		return nil, err
	}
	if err := eventually(ctx, "driver socket "+socket, 30*time.Second, func() (bool, error) {
		_, err := os.Stat(socket)
		return err == nil, nil
	}); err != nil {
		return nil, err
	}
	s := &driverStack{name: name, socket: socket}
	stacks[name] = s
	return s, nil
}

func (e *env) diskStack(ctx context.Context) (*driverStack, error) {
	if s, ok := stacks[diskDriver]; ok {
		return s, nil
	}
	s, err := e.startDriver(ctx, diskDriver, "cloud-disk", "--node-expansion-required")
	if err != nil {
		return nil, err
	}
	if err := e.registerDriver(ctx, diskDriver, zoneKey(diskDriver), false); err != nil {
		return nil, err
	}
	if _, err := e.start("disk-provisioner", "csi-provisioner", []string{
		"--csi-address=" + s.socket, "--feature-gates=Topology=True", "--leader-election", "--v=5"}, true); err != nil {
		return nil, err
	}
	// Field scenario 000's resizer container, twice: one leads, one stands by.
	for i := 1; i <= 2; i++ {
		if _, err := e.start(fmt.Sprintf("disk-resizer-%d", i), "csi-resizer", []string{
			"--v=5", "--csi-address=" + s.socket, "--leader-election"}, true); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func zoneKey(driver string) func(node, zone string) (string, string) {
	return func(node, zone string) (string, string) { return "topology." + driver + "/zone", zone }
}

func nodeKey(driver string) func(node, zone string) (string, string) {
	return func(node, zone string) (string, string) { return "topology." + driver + "/node", node }
}

// waitResized waits until the PV has size and the claim either shows it or
// waits for the node step, which the demo then performs as the kubelet would.
func (e *env) waitResized(ctx context.Context, s *driverStack, claim, size string, wantNodeStep bool) error {
	start := time.Now()
	sawPending := false
	err := eventually(ctx, "PVC "+claim+" resized to "+size, 90*time.Second, func() (bool, error) {
		pvc, err := e.pvc(ctx, claim)
		if err != nil {
			return false, err
		}
		pv, err := e.kube.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if sizeOf(pv.Spec.Capacity) != size {
			return false, nil
		}
		if hasCondition(pvc, v1.PersistentVolumeClaimFileSystemResizePending) {
			sawPending = true
			return true, nil
		}
		return sizeOf(pvc.Status.Capacity) == size, nil
	})
	if err != nil {
		e.showPVC(ctx, claim)
		e.printEvents(ctx, "PersistentVolumeClaim", claim)
		return err
	}
	e.say("PV of %s is %s after %.1fs", claim, size, time.Since(start).Seconds())
	e.showPVC(ctx, claim)
	e.printEvents(ctx, "PersistentVolumeClaim", claim)
	if sawPending != wantNodeStep {
		return fmt.Errorf("FileSystemResizePending = %v, want %v", sawPending, wantNodeStep)
	}
	if sawPending {
		e.say("the claim waits for the node: FileSystemResizePending + NodeResizePending, as the kubelet expects")
		if err := e.nodeExpand(ctx, s.socket, claim); err != nil {
			return err
		}
		e.showPVC(ctx, claim)
	}
	return nil
}

func scenarioCloudDiskExpand(ctx context.Context, e *env) error {
	s, err := e.diskStack(ctx)
	if err != nil {
		return err
	}
	if err := e.createClass(ctx, "alicloud-disk-ssd", diskDriver, false, map[string]string{"type": "cloud_efficiency"}); err != nil {
		return err
	}
	if err := e.createPVC(ctx, "disk-pvc", "alicloud-disk-ssd", "20Gi", nil); err != nil {
		return err
	}
	if _, err := e.waitBound(ctx, "disk-pvc"); err != nil {
		return err
	}
	lease := "external-resizer-diskplugin-csi-alibabacloud-com"
	if err := eventually(ctx, "a resizer leader", 30*time.Second, func() (bool, error) {
		h, err := e.leaseHolder(ctx, lease)
		return h != "", err
	}); err != nil {
		return err
	}
	h, _ := e.leaseHolder(ctx, lease)
	e.say("Lease kube-system/%s held by %s (2 resizer replicas running)", lease, h)
	if err := e.expand(ctx, "disk-pvc", "30Gi"); err != nil {
		return err
	}
	return e.waitResized(ctx, s, "disk-pvc", "30Gi", true)
}

func scenarioLocalVolume(ctx context.Context, e *env) error {
	s, err := e.startDriver(ctx, localDriver, "local", "--node-capacity=node-a=1Gi,node-b=10Gi")
	if err != nil {
		return err
	}
	if err := e.registerDriver(ctx, localDriver, nodeKey(localDriver), true); err != nil {
		return err
	}
	// Field scenario 001's provisioner flags, verbatim, plus capacity tracking.
	if _, err := e.start("local-provisioner", "csi-provisioner", []string{
		"--csi-address=" + s.socket, "--feature-gates=Topology=True", "--volume-name-prefix=local",
		"--strict-topology=true", "--timeout=150s", "--extra-create-metadata=true",
		"--enable-leader-election=true", "--leader-election-type=leases", "--retry-interval-start=500ms", "--v=5",
		"--enable-capacity", "--capacity-ownerref-level=-1", "--capacity-poll-interval=5s"}, true); err != nil {
		return err
	}
	if _, err := e.start("local-resizer", "csi-resizer", []string{"--v=5", "--csi-address=" + s.socket, "--leader-election"}, true); err != nil {
		return err
	}
	if err := e.createClass(ctx, "csi-local", localDriver, true, map[string]string{"volumeType": "LVM", "vgName": "volumegroup1"}); err != nil {
		return err
	}
	if err := eventually(ctx, "CSIStorageCapacity for both nodes", 60*time.Second, func() (bool, error) {
		list, err := e.kube.StorageV1().CSIStorageCapacities("kube-system").List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		n := 0
		for _, c := range list.Items {
			if c.StorageClassName == "csi-local" {
				n++
			}
		}
		return n >= 2, nil
	}); err != nil {
		return err
	}
	list, _ := e.kube.StorageV1().CSIStorageCapacities("kube-system").List(ctx, metav1.ListOptions{})
	for _, c := range list.Items {
		if c.StorageClassName == "csi-local" && c.Capacity != nil && c.NodeTopology != nil {
			e.say("CSIStorageCapacity %s: %v has %s", c.Name, c.NodeTopology.MatchLabels, c.Capacity.String())
		}
	}
	if err := e.createPVC(ctx, "lvm-pvc", "csi-local", "2Gi", nil); err != nil {
		return err
	}
	pvc, _ := e.pvc(ctx, "lvm-pvc")
	e.say("PVC lvm-pvc is %s: waiting for first consumer", pvc.Status.Phase)
	if _, err := e.podUsing(ctx, "lvm-app", "lvm-pvc", nil); err != nil {
		return err
	}
	pv, err := e.waitBound(ctx, "lvm-pvc")
	if err != nil {
		return err
	}
	if !strings.Contains(affinity(pv), "node-b") {
		return fmt.Errorf("volume placed with %q, want node-b (the only node with 2Gi free)", affinity(pv))
	}
	if err := eventually(ctx, "pod lvm-app scheduled", 30*time.Second, func() (bool, error) {
		p, err := e.kube.CoreV1().Pods(namespace).Get(ctx, "lvm-app", metav1.GetOptions{})
		return err == nil && p.Spec.NodeName != "", err
	}); err != nil {
		return err
	}
	p, _ := e.kube.CoreV1().Pods(namespace).Get(ctx, "lvm-app", metav1.GetOptions{})
	e.say("pod lvm-app scheduled to %s: node-a has only 1Gi, so the scheduler used CSIStorageCapacity", p.Spec.NodeName)
	if err := e.expand(ctx, "lvm-pvc", "4Gi"); err != nil {
		return err
	}
	return e.waitResized(ctx, s, "lvm-pvc", "4Gi", false)
}

func scenarioOfflineExpand(ctx context.Context, e *env) error {
	s, err := e.startDriver(ctx, rbdDriver, "offline")
	if err != nil {
		return err
	}
	if err := e.registerDriver(ctx, rbdDriver, nil, false); err != nil {
		return err
	}
	if _, err := e.start("rbd-provisioner", "csi-provisioner", []string{"--csi-address=" + s.socket, "--v=5"}, true); err != nil {
		return err
	}
	if _, err := e.start("rbd-resizer", "csi-resizer", []string{"--v=5", "--csi-address=" + s.socket}, true); err != nil {
		return err
	}
	if err := e.createClass(ctx, "rbd", rbdDriver, false, map[string]string{"pool": "kube"}); err != nil {
		return err
	}
	if err := e.createPVC(ctx, "rbd-pvc", "rbd", "5Gi", nil); err != nil {
		return err
	}
	if _, err := e.waitBound(ctx, "rbd-pvc"); err != nil {
		return err
	}
	if _, err := e.podUsing(ctx, "rbd-app", "rbd-pvc", map[string]string{"kubernetes.io/hostname": "node-a"}); err != nil {
		return err
	}
	e.say("pod rbd-app uses rbd-pvc on node-a")
	if err := e.expand(ctx, "rbd-pvc", "6Gi"); err != nil {
		return err
	}
	// The driver expands only unpublished volumes: nothing may happen yet.
	time.Sleep(4 * time.Second)
	pvc, err := e.pvc(ctx, "rbd-pvc")
	if err != nil {
		return err
	}
	pv, _ := e.kube.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
	if got := sizeOf(pv.Spec.Capacity); got != "5Gi" {
		return fmt.Errorf("volume in use expanded to %s by an offline-only driver", got)
	}
	e.say("while the pod runs the volume stays 5Gi:")
	e.printEvents(ctx, "PersistentVolumeClaim", "rbd-pvc")
	if err := e.deletePod(ctx, "rbd-app"); err != nil {
		return err
	}
	e.say("kubectl delete pod rbd-app (the app is restarted)")
	if err := e.waitResized(ctx, s, "rbd-pvc", "6Gi", true); err != nil {
		return err
	}

	// The other half of field scenario 002: a file share needs no node step.
	n, err := e.startDriver(ctx, nasDriver, "cloud-disk")
	if err != nil {
		return err
	}
	if err := e.registerDriver(ctx, nasDriver, zoneKey(nasDriver), false); err != nil {
		return err
	}
	if _, err := e.start("nas-provisioner", "csi-provisioner", []string{"--csi-address=" + n.socket, "--v=5"}, true); err != nil {
		return err
	}
	if _, err := e.start("nas-resizer", "csi-resizer", []string{"--v=5", "--csi-address=" + n.socket}, true); err != nil {
		return err
	}
	if err := e.createClass(ctx, "nas", nasDriver, false, nil); err != nil {
		return err
	}
	if err := e.createPVC(ctx, "nas-pvc", "nas", "20Gi", nil); err != nil {
		return err
	}
	if _, err := e.waitBound(ctx, "nas-pvc"); err != nil {
		return err
	}
	if err := e.expand(ctx, "nas-pvc", "30Gi"); err != nil {
		return err
	}
	return e.waitResized(ctx, n, "nas-pvc", "30Gi", false)
}

func scenarioTopology(ctx context.Context, e *env) error {
	if _, err := e.diskStack(ctx); err != nil {
		return err
	}
	if err := e.createClass(ctx, "alicloud-disk-topology", diskDriver, true, map[string]string{"type": "cloud_ssd"}); err != nil {
		return err
	}
	if err := e.createPVC(ctx, "zonal-pvc", "alicloud-disk-topology", "25Gi", nil); err != nil {
		return err
	}
	zone := nodes[1].zone
	if _, err := e.podUsing(ctx, "zonal-app", "zonal-pvc", map[string]string{"topology.kubernetes.io/zone": zone}); err != nil {
		return err
	}
	e.say("pod zonal-app must run in %s (node selector)", zone)
	pv, err := e.waitBound(ctx, "zonal-pvc")
	if err != nil {
		return err
	}
	if !strings.Contains(affinity(pv), zone) {
		return fmt.Errorf("disk created with %q, want zone %s", affinity(pv), zone)
	}
	e.say("the disk was created in %s, the zone of the node the pod was scheduled to", zone)
	return nil
}

func scenarioSnapshots(ctx context.Context, e *env) error {
	s, err := e.startDriver(ctx, lhDriver, "offline", "--node-expansion-required=false")
	if err != nil {
		return err
	}
	if err := e.registerDriver(ctx, lhDriver, nil, false); err != nil {
		return err
	}
	if _, err := e.start("longhorn-provisioner", "csi-provisioner", []string{"--csi-address=" + s.socket, "--v=5", "--leader-election"}, true); err != nil {
		return err
	}
	var ctl, side []*proc
	for i := 1; i <= 2; i++ {
		p, err := e.start(fmt.Sprintf("snapshot-controller-%d", i), "snapshot-controller", []string{"--v=5", "--leader-election=true"}, true)
		if err != nil {
			return err
		}
		ctl = append(ctl, p)
	}
	for i := 1; i <= 3; i++ {
		p, err := e.start(fmt.Sprintf("csi-snapshotter-%d", i), "csi-snapshotter", []string{"--v=5", "--csi-address=" + s.socket, "--leader-election=true"}, true)
		if err != nil {
			return err
		}
		side = append(side, p)
	}
	if err := e.createClass(ctx, "longhorn", lhDriver, false, nil); err != nil {
		return err
	}
	for _, vc := range []struct {
		name   string
		policy snapv1.DeletionPolicy
	}{{"longhorn", snapv1.VolumeSnapshotContentDelete}, {"longhorn-retain", snapv1.VolumeSnapshotContentRetain}} {
		if _, err := e.snap.SnapshotV1().VolumeSnapshotClasses().Create(ctx, &snapv1.VolumeSnapshotClass{
			ObjectMeta: metav1.ObjectMeta{Name: vc.name}, Driver: lhDriver, DeletionPolicy: vc.policy,
		}, metav1.CreateOptions{}); err != nil {
			return err
		}
		e.say("VolumeSnapshotClass %s: deletionPolicy %s", vc.name, vc.policy)
	}
	if err := e.createPVC(ctx, "mysql-pvc", "longhorn", "1Gi", nil); err != nil {
		return err
	}
	if _, err := e.waitBound(ctx, "mysql-pvc"); err != nil {
		return err
	}
	snapshot := func(name, class string) (*snapv1.VolumeSnapshot, error) {
		src := "mysql-pvc"
		_, err := e.snap.SnapshotV1().VolumeSnapshots(namespace).Create(ctx, &snapv1.VolumeSnapshot{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
			Spec:       snapv1.VolumeSnapshotSpec{VolumeSnapshotClassName: &class, Source: snapv1.VolumeSnapshotSource{PersistentVolumeClaimName: &src}},
		}, metav1.CreateOptions{})
		if err != nil {
			return nil, err
		}
		start := time.Now()
		var vs *snapv1.VolumeSnapshot
		err = eventually(ctx, "VolumeSnapshot "+name+" readyToUse", 60*time.Second, func() (bool, error) {
			vs, err = e.snap.SnapshotV1().VolumeSnapshots(namespace).Get(ctx, name, metav1.GetOptions{})
			return err == nil && vs.Status != nil && vs.Status.ReadyToUse != nil && *vs.Status.ReadyToUse, err
		})
		if err != nil {
			e.printEvents(ctx, "VolumeSnapshot", name)
			return nil, err
		}
		e.say("VolumeSnapshot %s readyToUse after %.1fs: content %s, restoreSize %s",
			name, time.Since(start).Seconds(), *vs.Status.BoundVolumeSnapshotContentName, vs.Status.RestoreSize.String())
		return vs, nil
	}
	del, err := snapshot("mysql-snapshot-demo", "longhorn")
	if err != nil {
		return err
	}
	apiGroup := "snapshot.storage.k8s.io"
	if err := e.createPVC(ctx, "mysql-restore-pvc", "longhorn", "1Gi", &v1.TypedLocalObjectReference{APIGroup: &apiGroup, Kind: "VolumeSnapshot", Name: "mysql-snapshot-demo"}); err != nil {
		return err
	}
	if _, err := e.waitBound(ctx, "mysql-restore-pvc"); err != nil {
		return err
	}
	if err := e.createPVC(ctx, "mysql-clone-pvc", "longhorn", "1Gi", &v1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: "mysql-pvc"}); err != nil {
		return err
	}
	if _, err := e.waitBound(ctx, "mysql-clone-pvc"); err != nil {
		return err
	}
	ret, err := snapshot("mysql-snapshot-retain", "longhorn-retain")
	if err != nil {
		return err
	}
	contentHandle := func(name string) string {
		c, err := e.snap.SnapshotV1().VolumeSnapshotContents().Get(ctx, name, metav1.GetOptions{})
		if err != nil || c.Status == nil || c.Status.SnapshotHandle == nil {
			return ""
		}
		return *c.Status.SnapshotHandle
	}
	delContent, retContent := *del.Status.BoundVolumeSnapshotContentName, *ret.Status.BoundVolumeSnapshotContentName
	delHandle, retHandle := contentHandle(delContent), contentHandle(retContent)
	for _, n := range []string{"mysql-snapshot-demo", "mysql-snapshot-retain"} {
		if err := e.snap.SnapshotV1().VolumeSnapshots(namespace).Delete(ctx, n, metav1.DeleteOptions{}); err != nil {
			return err
		}
	}
	e.say("kubectl delete volumesnapshot mysql-snapshot-demo mysql-snapshot-retain")
	if err := eventually(ctx, "Delete-policy content and backend snapshot gone", 60*time.Second, func() (bool, error) {
		_, err := e.snap.SnapshotV1().VolumeSnapshotContents().Get(ctx, delContent, metav1.GetOptions{})
		if err == nil {
			return false, nil
		}
		backend, err := backendSnapshots(ctx, s.socket)
		return err == nil && !backend[delHandle], err
	}); err != nil {
		return err
	}
	e.say("Delete: content %s and backend snapshot %s are gone", delContent, delHandle)
	if err := eventually(ctx, "Retain snapshot deleted", 60*time.Second, func() (bool, error) {
		_, err := e.snap.SnapshotV1().VolumeSnapshots(namespace).Get(ctx, "mysql-snapshot-retain", metav1.GetOptions{})
		return err != nil, nil
	}); err != nil {
		return err
	}
	backend, err := backendSnapshots(ctx, s.socket)
	if err != nil {
		return err
	}
	if _, err := e.snap.SnapshotV1().VolumeSnapshotContents().Get(ctx, retContent, metav1.GetOptions{}); err != nil || !backend[retHandle] {
		return fmt.Errorf("Retain: content kept = %v, backend snapshot kept = %v; want both", err == nil, backend[retHandle])
	}
	e.say("Retain: content %s and backend snapshot %s are kept", retContent, retHandle)

	for _, group := range []struct {
		lease string
		procs []*proc
	}{{"snapshot-controller-leader", ctl}, {"external-snapshotter-leader-driver-longhorn-io", side}} {
		leaders := 0
		for _, p := range group.procs {
			if p.exited() {
				return fmt.Errorf("%s exited; see %s", p.name, p.log)
			}
			b, _ := os.ReadFile(p.log)
			if strings.Contains(string(b), "Became leader") {
				leaders++
			}
		}
		h, _ := e.leaseHolder(ctx, group.lease)
		e.say("Lease %s: %d replicas running, %d became leader (holder %s)", group.lease, len(group.procs), leaders, h)
		if leaders != 1 {
			return fmt.Errorf("%d of %d replicas became leader for %s, want exactly 1", leaders, len(group.procs), group.lease)
		}
	}
	return nil
}
