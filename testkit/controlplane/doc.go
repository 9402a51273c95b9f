// Package controlplane runs a real, local Kubernetes control plane for tests,
// benchmarks and demos: etcd and kube-apiserver, and optionally
// kube-controller-manager and kube-scheduler, all on 127.0.0.1.
//
// # Basics
//
// Start one control plane per test package in TestMain, or per test with
// [StartT], and give each test its own namespace:
//
//	cp := controlplane.StartT(t, controlplane.Options{SnapshotCRDs: true})
//	kube := kubernetes.NewForConfigOrDie(cp.Config())
//
// The binaries are built from source once by the embedded build.sh (see
// [EnsureBinaries]) and cached; later starts take a few seconds.
//
// # Guarantees
//
//   - Every process listens on 127.0.0.1 only, on ports picked at random, so
//     several control planes can run side by side. A start that loses a port
//     race is retried with new ports.
//   - Each control plane owns a temporary directory holding etcd's data,
//     freshly generated certificates, kubeconfigs and one log file per
//     process. [ControlPlane.Stop] kills the processes and removes it.
//   - On Linux the processes are killed when the process that started them
//     dies, even on SIGKILL, so a crashed test leaves nothing running.
//   - A start failure returns an error holding the last lines of the failing
//     process's log, the log's path (the directory is then kept) and a hint.
//   - [ControlPlane.StopAPIServer] and [ControlPlane.StartAPIServer] restart
//     kube-apiserver on the same address while etcd keeps the data.
//
// # Limits
//
//   - There is no kubelet, kube-proxy, CoreDNS or container runtime: pods are
//     scheduled (with Options.Scheduler) but never run. Use [CreateNode] to
//     add Ready nodes.
//   - kube-controller-manager runs only the persistent-volume binder, expander
//     and protection controllers, with upstream defaults: a claim that misses
//     an unbound volume created just before it waits for the binder's 15s
//     resync. Nothing creates default ServiceAccounts, so
//     the ServiceAccount admission plugin is disabled; garbage collection and
//     namespace deletion are not performed.
//   - etcd runs with --unsafe-no-fsync: data survives an apiserver restart,
//     not a machine crash.
//   - Only Linux is tested. Elsewhere the processes are not tied to the
//     lifetime of the test process.
package controlplane
