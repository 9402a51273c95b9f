package faults

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/grpc/codes"
	v1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	"k8s.io/klog/v2/ktesting"

	"github.com/csi-kit/sidecars/csiconn"
	"github.com/csi-kit/sidecars/provisioner"
	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// TestSecretsNeverLeak: a class names a provisioner secret and an expand
// secret whose values the driver requires. A provisioning (with failed
// attempts first), a resize and a deletion run with a logger at verbosity 5
// that buffers everything. The secret values (plain and base64) appear in
// no log line, no event of the namespace, no PV and no metric.
func TestSecretsNeverLeak(t *testing.T) {
	value := "S3cr3t-" + randomHex(t)
	other := "T0ken-" + randomHex(t)
	e := newEnv(t, "secrets", fakedriver.Options{Capabilities: resizerCaps(),
		RequireSecrets: map[string]map[string]string{
			"CreateVolume":           {"password": value},
			"ControllerExpandVolume": {"token": other},
		}})
	logger := ktesting.NewLogger(t, ktesting.NewConfig(ktesting.BufferLogs(true), ktesting.Verbosity(5)))
	ctx := klog.NewContext(e.ctx, logger)
	if _, err := e.kube.CoreV1().Secrets(e.ns).Create(e.ctx, &v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "creds"},
		StringData: map[string]string{"password": value}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.kube.CoreV1().Secrets(e.ns).Create(e.ctx, &v1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "expand"},
		StringData: map[string]string{"token": other}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	sc := e.class("sc", func(sc *storagev1.StorageClass) {
		sc.Parameters = map[string]string{
			"csi.storage.k8s.io/provisioner-secret-name":            "creds",
			"csi.storage.k8s.io/provisioner-secret-namespace":       "${pvc.namespace}",
			"csi.storage.k8s.io/controller-expand-secret-name":      "expand",
			"csi.storage.k8s.io/controller-expand-secret-namespace": "${pvc.namespace}",
		}
	})
	reg := prometheus.NewRegistry()
	conn, err := csiconn.Connect(ctx, csiconn.Options{Address: e.drv.Endpoint(), CallTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	e.drv.FailNext("CreateVolume", codes.Internal, 2)
	e.drv.FailNext("ControllerExpandVolume", codes.Unavailable, 1)
	e.fault(3)
	e.startProvisioner(ctx, provisioner.Options{Registerer: reg}, conn)
	e.startResizer(ctx, conn)
	names := e.claims("a", sc.Name, "1Gi", 2)
	e.waitBound(60*time.Second, names...)
	e.request(names[0], "2Gi")
	e.waitResized(60*time.Second, map[string]string{names[0]: "2Gi"})
	if n := e.drv.Calls("CreateVolume"); n < 4 {
		t.Errorf("CreateVolume called %d times, want at least 4 (2 failures, 2 successes)", n)
	}
	pvs, err := e.kube.CoreV1().PersistentVolumes().List(e.ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.check()
	e.drain()

	secrets := []string{value, other,
		base64.StdEncoding.EncodeToString([]byte(value)), base64.StdEncoding.EncodeToString([]byte(other))}
	look := func(where, text string) {
		t.Helper()
		for _, s := range secrets {
			if n := strings.Count(text, s); n > 0 {
				t.Errorf("secret value found %d times in %s", n, where)
			}
		}
	}
	logs := logger.GetSink().(ktesting.Underlier).GetBuffer().String()
	if !strings.Contains(logs, "/csi.v1.Controller/CreateVolume") || !strings.Contains(logs, "/csi.v1.Controller/ControllerExpandVolume") {
		t.Errorf("the buffered log has no CreateVolume or ControllerExpandVolume call; is verbosity 5 in effect? (%d bytes)", len(logs))
	}
	look("the log", logs)

	events, err := e.kube.CoreV1().Events(e.ns).List(e.ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(events.Items) == 0 {
		t.Errorf("no events in the namespace; the Normal events (on by default) should have written some")
	}
	data, _ := json.Marshal(events)
	look("the events", string(data))
	data, _ = json.Marshal(pvs)
	look("the PVs", string(data))

	srv, err := csiconn.NewHTTPServer(csiconn.HTTPOptions{Address: "127.0.0.1:0"}, conn.Metrics())
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "csi_sidecar_operations_seconds") {
		t.Errorf("metrics endpoint: code %d, %d bytes, no csi_sidecar_operations_seconds", rec.Code, rec.Body.Len())
	}
	look("the metrics endpoint", rec.Body.String())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, f := range families {
		if _, err := expfmt.MetricFamilyToText(&buf, f); err != nil {
			t.Fatal(err)
		}
	}
	look("the provisioner's metrics", buf.String())
	t.Logf("searched %d bytes of log, %d events, %d PVs, %d+%d bytes of metrics", len(logs), len(events.Items), len(pvs.Items), rec.Body.Len(), buf.Len())
}

func randomHex(t *testing.T) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
