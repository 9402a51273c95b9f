package snapshotter

import (
	snapscheme "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned/scheme"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes/scheme"
)

// The snapshot types are added to client-go's scheme, which event recorders
// use to build references to the objects they report on. It happens at
// package initialisation: adding them later races with any client already
// using the scheme (a leader elector, for instance).
func init() {
	utilruntime.Must(snapscheme.AddToScheme(scheme.Scheme))
}
