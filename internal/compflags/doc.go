// Package compflags registers each controller's own flags, so that the
// separate binaries and the all-in-one csi-sidecars accept them with the
// same names, defaults and help. A binary that words a flag differently
// (the all-in-one names the controller a flag applies to) sets the flag's
// Usage after registering.
package compflags
