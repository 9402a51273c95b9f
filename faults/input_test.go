package faults

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/provisioner"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// inputSeed makes the generated input reproducible; the case logs it.
const inputSeed = 20261125

// inputCases is how many claims the generator makes.
const inputCases = 1000

// badClasses are the classes the generated claims pick from: good ones,
// unknown reserved parameters, broken secret templates, missing secrets.
func badClasses(ns string, rng *rand.Rand) map[string]map[string]string {
	return map[string]map[string]string{
		"plain":       nil,
		"unknown-key": {"csi.storage.k8s.io/bogus-" + fmt.Sprint(rng.Intn(1000)): "x", "vendor/param": "y"},
		"tmpl-bad-var": {"csi.storage.k8s.io/provisioner-secret-name": "${pvc.bogus}",
			"csi.storage.k8s.io/provisioner-secret-namespace": "${pvc.namespace}"},
		"tmpl-open": {"csi.storage.k8s.io/provisioner-secret-name": "${pvc.name",
			"csi.storage.k8s.io/provisioner-secret-namespace": ns},
		"tmpl-ann": {"csi.storage.k8s.io/provisioner-secret-name": "${pvc.annotations['example.com/secret']}",
			"csi.storage.k8s.io/provisioner-secret-namespace": "${pvc.namespace}"},
		"missing-secret": {"csi.storage.k8s.io/provisioner-secret-name": "does-not-exist",
			"csi.storage.k8s.io/provisioner-secret-namespace": ns},
		"half-pair":   {"csi.storage.k8s.io/provisioner-secret-name": "creds"},
		"good-secret": {"csi.storage.k8s.io/provisioner-secret-name": "creds", "csi.storage.k8s.io/provisioner-secret-namespace": "${pvc.namespace}"},
		"bad-ns":      {"csi.storage.k8s.io/provisioner-secret-name": "creds", "csi.storage.k8s.io/provisioner-secret-namespace": "Not_A_Namespace!"},
		"odd-fstype":  {"csi.storage.k8s.io/fstype": strings.Repeat("z", 300)},
	}
}

var (
	oddSizes = []string{"1", "1m", "0.5Gi", "1Mi", "3Gi", "1Ei", "999999Pi", "1e15", "7", "100Ti",
		// Beyond int64 bytes: accepted by the API server, refused by us.
		"10E", "9300000000000000000", "100Ei"}
	oddAnnotations = []func(rng *rand.Rand) (string, string){
		func(rng *rand.Rand) (string, string) { return fmt.Sprintf("example.com/k%d", rng.Intn(100)), "junk" },
		func(rng *rand.Rand) (string, string) { return "example.com/secret", "creds" },
		func(rng *rand.Rand) (string, string) { return "example.com/secret", "../../etc" },
		func(rng *rand.Rand) (string, string) { return "volume.kubernetes.io/selected-node", "no-such-node" },
		func(rng *rand.Rand) (string, string) {
			return "csi.storage.k8s.io/whatever", strings.Repeat("x", 1+rng.Intn(2000))
		},
	}
)

// TestGeneratedBadInput: claims with odd sizes, unknown and malformed
// annotations (the forged intent annotation has its own case,
// TestForgedIntentAnnotation), data sources that do not exist, and classes with unknown
// reserved parameters, broken secret templates and missing secrets. The API
// server may refuse a claim; every claim it accepts must be Bound or have a
// Warning event within the bound, with a bounded number of CreateVolume
// calls, and nothing may be left behind.
func TestGeneratedBadInput(t *testing.T) {
	const capacity = 1 << 40 // 1Ti: larger claims fail with ResourceExhausted
	e := newEnv(t, "input", fakedriver.Options{Capabilities: resizerCaps(), Capacity: capacity})
	t.Logf("seed %d", inputSeed)
	rng := rand.New(rand.NewSource(inputSeed))
	if _, err := e.kube.CoreV1().Secrets(e.ns).Create(e.ctx, &v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds"},
		StringData: map[string]string{"key": "value"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	classes := badClasses(e.ns, rng)
	var classNames []string
	for name, params := range classes {
		sc := e.class(name, func(sc *storagev1.StorageClass) { sc.Parameters = params })
		classNames = append(classNames, sc.Name)
	}
	start := time.Now()
	opts := provisioner.Options{RetryIntervalStart: 500 * time.Millisecond, RetryIntervalMax: 5 * time.Second, Workers: 8}
	e.startProvisioner(e.ctx, opts, e.connect(csiconn.Options{}))

	accepted, refused := map[string]string{}, 0
	for i := range inputCases {
		name := fmt.Sprintf("c-%03d", i)
		class := classNames[rng.Intn(len(classNames))]
		size := oddSizes[rng.Intn(len(oddSizes))]
		pvc := e.newClaim(name, class, "1Gi")
		pvc.Spec.Resources.Requests[v1.ResourceStorage] = resource.MustParse(size)
		for range rng.Intn(3) {
			k, v := oddAnnotations[rng.Intn(len(oddAnnotations))](rng)
			if pvc.Annotations == nil {
				pvc.Annotations = map[string]string{}
			}
			pvc.Annotations[k] = v
		}
		switch rng.Intn(10) {
		case 0:
			pvc.Spec.DataSource = &v1.TypedLocalObjectReference{APIGroup: ptr("snapshot.storage.k8s.io"), Kind: "VolumeSnapshot", Name: "missing"}
		case 1:
			pvc.Spec.DataSource = &v1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: "missing"}
		}
		desc := fmt.Sprintf("class %s size %s annotations %d source %v", strings.TrimPrefix(class, e.ns+"-"), size, len(pvc.Annotations), pvc.Spec.DataSource != nil)
		if _, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).Create(e.ctx, pvc, metav1.CreateOptions{}); err != nil {
			refused++
			t.Logf("%s (%s): refused by the API server: %v", name, desc, truncate(err.Error(), 200))
			continue
		}
		accepted[name] = desc
	}
	e.fault(inputCases)
	t.Logf("%d claims accepted, %d refused by the API server", len(accepted), refused)
	if len(accepted) < inputCases/2 {
		t.Fatalf("only %d of %d generated claims accepted: the generator is too far off", len(accepted), inputCases)
	}

	var pending []string
	outcome := map[string]int{}
	ok := poll(90*time.Second, func() (bool, string) {
		claims, err := e.kube.CoreV1().PersistentVolumeClaims(e.ns).List(e.ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		warn, err := e.warnings()
		if err != nil {
			return false, err.Error()
		}
		pending = pending[:0]
		clear(outcome)
		for _, c := range claims.Items {
			switch {
			case c.Status.Phase == v1.ClaimBound:
				outcome["bound"]++
			case len(warn[c.Name]) > 0:
				outcome["warning"]++
			default:
				pending = append(pending, c.Name+" ("+accepted[c.Name]+")")
			}
		}
		return len(pending) == 0, ""
	})
	elapsed := time.Since(start)
	t.Logf("after %v: %v", elapsed.Round(time.Second), outcome)
	if !ok {
		t.Errorf("%d claims neither Bound nor warned about after 90s: %s", len(pending), truncate(strings.Join(pending, ", "), 3000))
	}

	// No hot loop: per volume name, no more CreateVolume calls than the
	// backoff allows (doublings up to the maximum, then one per maximum),
	// with slack for requeues caused by the provisioner's own writes.
	calls := map[string]int{}
	for _, r := range e.drv.Requests("CreateVolume") {
		req := r.(*csi.CreateVolumeRequest)
		calls[req.GetName()]++
		if b := req.GetCapacityRange().GetRequiredBytes(); b <= 0 {
			t.Errorf("CreateVolume %s asked for %d bytes: a size beyond int64 was wrapped or dropped", req.GetName(), b)
		}
	}
	bound := 4 + int(time.Since(start)/opts.RetryIntervalMax) + 4
	most, mostName := 0, ""
	for n, c := range calls {
		if c > most {
			most, mostName = c, n
		}
	}
	t.Logf("CreateVolume: %d calls for %d names, at most %d for %s (bound %d)", e.drv.Calls("CreateVolume"), len(calls), most, mostName, bound)
	if most > bound {
		t.Errorf("CreateVolume called %d times for %s within %v: more than the backoff allows (%d)", most, mostName, elapsed.Round(time.Second), bound)
	}
	e.check()
	e.drain()
}

func ptr[T any](v T) *T { return &v }
