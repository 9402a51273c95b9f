package csiconn

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrConnectionLost is wrapped by the errors that controllers return from Run
// when the driver's socket went away after a successful connection.
var ErrConnectionLost = errors.New("lost connection to CSI driver")

// Operation names a CSI call whose errors are classified.
type Operation string

// The operations whose error rules differ.
const (
	OpCreateVolume   Operation = "CreateVolume"
	OpDeleteVolume   Operation = "DeleteVolume"
	OpExpandVolume   Operation = "ControllerExpandVolume"
	OpModifyVolume   Operation = "ControllerModifyVolume"
	OpCreateSnapshot Operation = "CreateSnapshot"
	OpDeleteSnapshot Operation = "DeleteSnapshot"
	OpGetSnapshot    Operation = "ListSnapshots"
	OpGetCapacity    Operation = "GetCapacity"
	OpCreateGroup    Operation = "CreateVolumeGroupSnapshot"
	OpDeleteGroup    Operation = "DeleteVolumeGroupSnapshot"
	OpGetGroup       Operation = "GetVolumeGroupSnapshot"
)

// Class says what a caller should do after a failed CSI call.
type Class int

const (
	// Transient: the operation may still be running in the driver, or may
	// succeed if retried with the same arguments. Retry with backoff and keep
	// any "in progress" marker, because a backend object may exist.
	Transient Class = iota
	// Final: the driver definitely did not (and will not) perform the
	// operation. Retrying the same request may still succeed later (for
	// example after a secret is fixed), but no backend object was created.
	Final
	// Infeasible: the request can never succeed as it stands; the user must
	// change it. Retry slowly, if at all, and tell the user.
	Infeasible
)

func (c Class) String() string {
	switch c {
	case Transient:
		return "transient"
	case Final:
		return "final"
	case Infeasible:
		return "infeasible"
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// Classify sorts the error of one CSI call. The table, per operation:
//
//	code                                       CreateVolume  Expand   Modify   snapshots, delete, others
//	Canceled DeadlineExceeded Unavailable Aborted transient    transient transient transient
//	not a gRPC status (e.g. ctx expired locally)  transient    transient transient transient
//	ResourceExhausted                             final (*)    transient transient transient
//	InvalidArgument                               final        infeasible infeasible final
//	OutOfRange, NotFound                          final        infeasible final    final
//	FailedPrecondition                            final        final (**) final    final
//	everything else                               final        final     final    final
//
// (*) the provisioner reschedules a WaitForFirstConsumer claim on it.
// (**) the resizer reads it as "volume in use" (see IsInUse).
// Classify(op, nil) is Final, which callers never need.
func Classify(op Operation, err error) Class {
	if err == nil {
		return Final
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return Transient
	}
	st, ok := status.FromError(err)
	if !ok {
		return Transient
	}
	switch st.Code() {
	case codes.Canceled, codes.DeadlineExceeded, codes.Unavailable, codes.Aborted:
		return Transient
	case codes.ResourceExhausted:
		if op == OpCreateVolume {
			return Final
		}
		return Transient
	case codes.InvalidArgument:
		if op == OpExpandVolume || op == OpModifyVolume {
			return Infeasible
		}
	case codes.OutOfRange, codes.NotFound:
		if op == OpExpandVolume {
			return Infeasible
		}
	}
	return Final
}

// Code returns the gRPC code of err, codes.OK for nil and codes.Unknown for
// errors that carry no status.
func Code(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	if st, ok := status.FromError(err); ok {
		return st.Code()
	}
	return codes.Unknown
}

// IsInUse reports whether an expansion error means "the volume is published
// and the driver cannot expand it online" (FailedPrecondition).
func IsInUse(err error) bool { return Code(err) == codes.FailedPrecondition }

// IsTransient, IsFinal and IsInfeasible are shorthands for Classify.
func IsTransient(op Operation, err error) bool  { return err != nil && Classify(op, err) == Transient }
func IsFinal(op Operation, err error) bool      { return err != nil && Classify(op, err) == Final }
func IsInfeasible(op Operation, err error) bool { return err != nil && Classify(op, err) == Infeasible }

// CallError is a failed CSI call with its classification, so that "do not
// retry" travels inside the error.
type CallError struct {
	Op    Operation
	Class Class
	Err   error
}

// NewCallError wraps err with its class for op; nil stays nil.
func NewCallError(op Operation, err error) error {
	if err == nil {
		return nil
	}
	return &CallError{Op: op, Class: Classify(op, err), Err: err}
}

func (e *CallError) Error() string {
	msg := e.Err.Error()
	if st, ok := status.FromError(e.Err); ok {
		msg = st.Code().String() + ": " + st.Message()
	}
	return fmt.Sprintf("%s failed (%s): %s", e.Op, e.Class, msg)
}

func (e *CallError) Unwrap() error { return e.Err }

// ClassOf returns the class stored in a CallError inside err, or Transient
// when err carries none.
func ClassOf(err error) Class {
	var ce *CallError
	if errors.As(err, &ce) {
		return ce.Class
	}
	return Transient
}
