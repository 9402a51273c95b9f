package snapshotter

import (
	"sync"

	snapscheme "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/scheme"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes/scheme"
)

var registerOnce sync.Once

// registerScheme adds the snapshot types to client-go's scheme, which event
// recorders use to build references to the objects they report on.
func registerScheme() {
	registerOnce.Do(func() { utilruntime.Must(snapscheme.AddToScheme(scheme.Scheme)) })
}
