package kube

import (
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/discovery"
)

// VolumeAttributesClassGroupVersion and VolumeAttributesClassResource name
// the GA VolumeAttributesClass API, the one the provisioner and the resizer
// read.
const (
	VolumeAttributesClassGroupVersion = "storage.k8s.io/v1"
	VolumeAttributesClassResource     = "volumeattributesclasses"
)

// Serves asks discovery whether the API server serves resource (plural,
// lower case, such as "volumeattributesclasses") in groupVersion (such as
// "storage.k8s.io/v1"). A group version the server does not know at all is
// a plain false; any other discovery failure is returned with false, for
// the caller to decide what an unknown answer means.
func Serves(disc discovery.DiscoveryInterface, groupVersion, resource string) (bool, error) {
	list, err := disc.ServerResourcesForGroupVersion(groupVersion)
	if apierrors.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, r := range list.APIResources {
		if r.Name == resource {
			return true, nil
		}
	}
	return false, nil
}

// VolumeAttributesClassServed reports whether storage.k8s.io/v1 serves
// VolumeAttributesClasses. As upstream's sidecars, it answers yes when
// discovery fails (the error is returned for logging): only a server that
// answers and lacks the resource turns the VolumeAttributesClass features
// off.
func VolumeAttributesClassServed(disc discovery.DiscoveryInterface) (bool, error) {
	ok, err := Serves(disc, VolumeAttributesClassGroupVersion, VolumeAttributesClassResource)
	if err != nil {
		return true, err
	}
	return ok, nil
}
