package kube

import "encoding/json"

// FinalizersPatch is the one way the controllers write an object's
// finalizers: a JSON merge patch (types.MergePatchType) that sets the whole
// list, guarded by the resourceVersion rv the list was computed from, so
// that a finalizer written meanwhile by anyone else is never lost: the
// patch then fails with a conflict and the caller recomputes from a fresh
// read. An empty list removes the field.
// Pass the ResourceVersion of the object the list was computed from; an
// empty rv sets no precondition (only objects of fake clients lack one).
func FinalizersPatch(rv string, finalizers []string) []byte {
	var list []string
	if len(finalizers) > 0 {
		list = finalizers
	}
	// Marshalling strings cannot fail.
	data, _ := json.Marshal(finalizersMeta{Metadata: finalizersObj{ResourceVersion: rv, Finalizers: list}})
	return data
}

type finalizersMeta struct {
	Metadata finalizersObj `json:"metadata"`
}

type finalizersObj struct {
	Finalizers      []string `json:"finalizers"`
	ResourceVersion string   `json:"resourceVersion,omitempty"`
}
