// Package conversion is the CustomResourceDefinition conversion webhook for
// VolumeGroupSnapshotContent (groupsnapshot.storage.k8s.io v1, v1beta1 and
// v1beta2), the counterpart of upstream's snapshot-conversion-webhook. The
// binary examples/snapshot-conversion-webhook runs it; the package is public
// so that a driver or distribution that already runs an HTTPS webhook server
// can mount Handler there instead of deploying one more process, and so
// that tools can call Convert directly.
//
// # Basics
//
// Convert is a pure function on one object. Handler answers the API
// server's ConversionReviews (apiextensions.k8s.io/v1, JSON) with it.
// Server (Options → New → Run) serves Handler at /convert over TLS, with
// /readyz and /healthz. The CRD then needs, in spec.conversion:
//
//	strategy: Webhook
//	webhook:
//	  conversionReviewVersions: ["v1"]
//	  clientConfig:
//	    service: {namespace: ..., name: ..., path: /convert}
//	    caBundle: <base64 PEM of the CA that signed the serving certificate>
//
// # Guarantees
//
//   - v1 and v1beta2 differ only in apiVersion. v1beta1 lists members in
//     status.volumeSnapshotHandlePairList (two handles each) where the
//     newer versions have status.volumeSnapshotInfoList (handles plus
//     creationTime, readyToUse, restoreSize).
//   - Lossless: newer → v1beta1 → newer gives back the same object. The
//     v1beta1 view carries the full list in the annotation
//     AnnotationVolumeSnapshotInfoList, as upstream's webhook writes it;
//     the newer views never show it.
//   - The handle pairs are authoritative in the v1beta1 view: a v1beta1
//     client that edits them changes the members, keeping the extra fields
//     of members whose handles are unchanged.
//   - Every object of a review converts, or the review fails with a message
//     naming the object and what to do; the API server passes it to the
//     client. A body that is no ConversionReview gets HTTP 400.
//   - The serving certificate is reloaded when its files change, without a
//     restart; a broken pair keeps the previous one in service. TLS 1.2 is
//     the minimum.
//
// # Caveats
//
//   - Only VolumeGroupSnapshotContent needs a webhook; the other snapshot
//     CRDs have one schema in every version and keep strategy None.
//   - Unlike upstream's webhook, v1 is converted too (the API server asks a
//     Webhook-strategy CRD's webhook for every pair of versions it serves).
//   - A v1beta1 client that drops the annotation on a write loses the extra
//     member fields (creationTime, readyToUse, restoreSize) of the object.
//   - The webhook is in the path of every read and write of the CRD in a
//     version other than the stored one: run two replicas.
package conversion
