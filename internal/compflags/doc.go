// Package compflags is the one place of the upstream-compatible flag wiring
// of the binaries: it registers each controller's own flags (provisioner,
// resizer, snapshot sidecar and snapshot controller), so that the separate
// binaries and the all-in-one csi-sidecars accept them with the same names,
// defaults and help, and it holds the one --feature-gates parser (Gates,
// built on component-base's feature gates) with each binary's set of gates.
// A binary that words a flag differently (the all-in-one names the
// controller a flag applies to) sets the flag's Usage after registering.
//
// The flags common to every binary (connection, client, metrics, logging,
// leader election) are in internal/cmdutil.
package compflags
