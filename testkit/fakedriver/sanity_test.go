package fakedriver_test

import (
	"path/filepath"
	"testing"

	"github.com/kubernetes-csi/csi-test/v5/pkg/sanity"

	"github.com/csi-kit/sidecars/testkit/fakedriver"
)

// TestSanity runs csi-test's sanity suite against the driver with every
// capability on. Ginkgo allows one suite per process, so this is the only
// one in the package.
func TestSanity(t *testing.T) {
	d := fakedriver.Start(t, fakedriver.Options{
		Capabilities:      fakedriver.All,
		CreateTargetPaths: true, // "NodeUnpublishVolume should remove target path"
		// The suite expects unknown mutable parameters to be rejected.
		MutableParameters: []string{"iops"},
		MaxVolumesPerNode: 4,
	})
	dir := t.TempDir()
	cfg := sanity.NewTestConfig()
	cfg.Address = d.Endpoint()
	cfg.TargetPath = filepath.Join(dir, "target")
	cfg.StagingPath = filepath.Join(dir, "staging")
	cfg.TestVolumeMutableParameters = map[string]string{"iops": "3000"}
	cfg.TestNodeVolumeAttachLimit = true
	sanity.Test(t, cfg)
}
