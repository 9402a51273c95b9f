package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/csi-kit/sidecars/explain"
	"github.com/csi-kit/sidecars/internal/explaincmd"
)

// scenarioExplain creates a claim stuck on purpose, of a class whose
// provisioner nobody runs, and shows what "kubectl csi explain" says about
// it. The plugin's command runs in this process.
func scenarioExplain(ctx context.Context, e *env) error {
	const driver, class, claim = "nobody.csi.example.com", "nobody-runs-this", "stuck-on-purpose"
	if err := e.createClass(ctx, class, driver, false, nil); err != nil {
		return err
	}
	if err := e.createPVC(ctx, claim, class, "1Gi", nil); err != nil {
		return err
	}
	e.step("kubectl csi explain pvc %s", claim)
	args := []string{"--kubeconfig", e.cp.KubeconfigPath(), "-n", namespace, "pvc", claim}
	var out, errOut bytes.Buffer
	err := eventually(ctx, "a report naming the missing provisioner", 30*time.Second, func() (bool, error) {
		out.Reset()
		errOut.Reset()
		if code := explaincmd.Run(ctx, "kubectl csi explain", args, &out, &errOut); code != explaincmd.ExitOK {
			return false, fmt.Errorf("exit code %d: %s", code, strings.TrimSpace(errOut.String()))
		}
		return strings.Contains(out.String(), explain.ReasonNoProvisionerLeader), nil
	})
	_, _ = indent{}.Write(out.Bytes())
	return err
}
