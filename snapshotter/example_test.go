package snapshotter_test

import (
	"fmt"

	"github.com/csi-kit/sidecars/snapshotter"
)

// Backend snapshot names follow --snapshot-name-prefix and
// --snapshot-name-uuid-length.
func ExampleSnapshotName() {
	uid := "2338699d-d08d-42f8-8173-dfa6cb660522"
	fmt.Println(snapshotter.SnapshotName("snapshot", "2338699d-d08d-42f8-8173-dfa6cb660522", -1) == "snapshot-"+uid)
	fmt.Println(snapshotter.SnapshotName("snap", "2338699d-d08d-42f8-8173-dfa6cb660522", 8))
	// Output:
	// true
	// snap-2338699d
}
