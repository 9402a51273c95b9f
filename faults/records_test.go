package faults

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/provisioner"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// refuser answers POSTs to collection paths ending in suffix with 500
// while on is set, and counts them.
type refuser struct {
	suffix string
	on     atomic.Bool
	n      atomic.Int32
}

func (r *refuser) wrap(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTrip(func(req *http.Request) (*http.Response, error) {
			if !r.on.Load() || req.Method != http.MethodPost || !strings.HasSuffix(req.URL.Path, r.suffix) {
				return rt.RoundTrip(req)
			}
			r.n.Add(1)
			body := `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"injected by the fault suite","reason":"InternalError","code":500}`
			return &http.Response{StatusCode: 500, Header: http.Header{"Content-Type": {"application/json"}},
				Body: io.NopCloser(strings.NewReader(body)), Request: req}, nil
		})
	})
	return cfg
}

// namespaceGoes deletes the case's namespace and fails the case if it is
// still there (Terminating) after a minute.
func (e *env) namespaceGoes() {
	e.t.Helper()
	if err := e.kube.CoreV1().Namespaces().Delete(e.ctx, e.ns, metav1.DeleteOptions{}); err != nil {
		e.t.Fatal(err)
	}
	if !poll(time.Minute, func() (bool, string) {
		_, err := e.kube.CoreV1().Namespaces().Get(e.ctx, e.ns, metav1.GetOptions{})
		return err != nil, ""
	}) {
		tallies.add(e.category, func(c *tally) { c.Stuck++ })
		e.t.Errorf("namespace %s still Terminating after 1m", e.ns)
	}
}

// TestPVWriteRefusedAfterFastCreate: the driver answers at once, the API
// server refuses every PV; half the claims are deleted meanwhile. Their
// volumes are deleted from the recorded IDs, the others bind once PVs can
// be written; nothing leaks, nothing is stuck.
func TestPVWriteRefusedAfterFastCreate(t *testing.T) {
	e := newEnv(t, "records", fakedriver.Options{Capabilities: resizerCaps()})
	sc := e.class("sc", nil)
	pvPosts := &refuser{suffix: "/persistentvolumes"}
	pvPosts.on.Store(true)
	p := e.newProvisionerWith(provisioner.Options{}, e.connect(csiconn.Options{}), pvPosts.wrap(cp.Config()))
	e.run("provisioner", e.ctx, p.Run)
	names := e.claims("a", sc.Name, "1Gi", 6)
	e.eventually("a volume per claim, PVs refused", 30*time.Second, func() (bool, string) {
		return len(e.drv.Volumes()) == len(names) && pvPosts.n.Load() >= int32(len(names)),
			fmt.Sprintf("%d volumes, %d refused PV writes", len(e.drv.Volumes()), pvPosts.n.Load())
	})
	e.fault(int(pvPosts.n.Load()))
	for _, n := range names[:3] {
		if err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Delete(e.ctx, n, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	e.eventually("the deleted claims' volumes deleted", 30*time.Second, func() (bool, string) {
		return len(e.drv.Volumes()) == 3, fmt.Sprintf("%d volumes", len(e.drv.Volumes()))
	})
	pvPosts.on.Store(false)
	e.waitBound(60*time.Second, names[3:]...)
	e.check()
	e.drain()
	e.namespaceGoes()
}

// TestRecordWritesRefusedNegativeDelay: with a negative IntentDelay every
// record must exist before its CreateVolume; while the API server refuses
// them no volume is created and no process crashes, and the claims say
// why. Once writes pass, every claim binds and every record goes.
func TestRecordWritesRefusedNegativeDelay(t *testing.T) {
	e := newEnv(t, "records", fakedriver.Options{Capabilities: resizerCaps()})
	sc := e.class("sc", nil)
	secretPosts := &refuser{suffix: "/secrets"}
	secretPosts.on.Store(true)
	p := e.newProvisionerWith(provisioner.Options{IntentDelay: -1}, e.connect(csiconn.Options{}), secretPosts.wrap(cp.Config()))
	r := e.run("provisioner", e.ctx, p.Run)
	names := e.claims("a", sc.Name, "1Gi", 4)
	e.eventually("each claim warned", 30*time.Second, func() (bool, string) {
		warn, err := e.warnings()
		if err != nil {
			return false, err.Error()
		}
		for _, n := range names {
			if len(warn[n]) == 0 {
				return false, n + " not warned"
			}
		}
		return true, ""
	})
	e.fault(int(secretPosts.n.Load()))
	if n := e.drv.Calls("CreateVolume"); n != 0 {
		t.Errorf("%d CreateVolume calls without a record", n)
	}
	select {
	case err := <-r.done:
		t.Fatalf("provisioner stopped while record writes were refused: %v", err)
	default:
	}
	secretPosts.on.Store(false)
	e.waitBound(60*time.Second, names...)
	e.check()
	e.drain()
	e.namespaceGoes()
}

// TestCloneNamespaceDeletedDuringCreate: clone claims whose creates hang
// are deleted with their whole namespace (source claim and provisioner
// secret included). The namespace goes at once; when the driver answers,
// every clone is deleted from its record; nothing is left.
func TestCloneNamespaceDeletedDuringCreate(t *testing.T) {
	caps := resizerCaps()
	caps.Clone = true
	e := newEnv(t, "records", fakedriver.Options{Capabilities: caps})
	if _, err := e.kube.CoreV1().Secrets(e.ns).Create(e.ctx, &v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds"},
		StringData: map[string]string{"token": "t"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sc := e.class("sc", func(sc *storagev1.StorageClass) {
		sc.Parameters = map[string]string{
			"csi.storage.k8s.io/provisioner-secret-name":      "creds",
			"csi.storage.k8s.io/provisioner-secret-namespace": "${pvc.namespace}",
		}
	})
	e.startProvisioner(e.ctx, provisioner.Options{Timeout: 2 * time.Second, IntentDelay: 200 * time.Millisecond}, e.connect(csiconn.Options{}))
	e.claims("src", sc.Name, "1Gi", 1)
	e.waitBound(60*time.Second, "src-0")
	e.drv.Hang("CreateVolume")
	for i := range 3 {
		pvc := e.newClaim(fmt.Sprintf("clone-%d", i), sc.Name, "1Gi")
		pvc.Spec.DataSource = &v1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: "src-0"}
		if _, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Create(e.ctx, pvc, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	e.waitHungCreates(3)
	e.fault(3)
	time.Sleep(500 * time.Millisecond) // past IntentDelay: the records are written
	e.namespaceGoes()
	e.drv.Unhang("CreateVolume")
	e.eventually("backend empty", 60*time.Second, func() (bool, string) {
		return len(e.drv.Volumes()) == 0, fmt.Sprintf("%d volumes", len(e.drv.Volumes()))
	})
	e.check()
}
