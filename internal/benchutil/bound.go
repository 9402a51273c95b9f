package benchutil

import (
	"context"
	"testing"
	"time"

	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// WaitBound waits (up to 5 minutes) until the PV binder has marked the n
// PVs of claims in ns Bound and the claims bind-completed, so that binding
// work does not run during the next measurement.
func WaitBound(ctx context.Context, b testing.TB, client kubernetes.Interface, ns string, n int) {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		list, err := client.CoreV1().PersistentVolumes().List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			b.Fatal(err)
		}
		bound := 0
		for _, pv := range list.Items {
			if pv.Spec.ClaimRef != nil && pv.Spec.ClaimRef.Namespace == ns && pv.Status.Phase == v1.VolumeBound {
				bound++
			}
		}
		if bound >= n {
			claims, err := client.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{ResourceVersion: "0"})
			if err != nil {
				b.Fatal(err)
			}
			done := 0
			for _, pvc := range claims.Items {
				if pvc.Status.Phase == v1.ClaimBound && pvc.Annotations["pv.kubernetes.io/bind-completed"] != "" {
					done++
				}
			}
			if done >= n {
				return
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d PVs bound after 5m", bound, n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
