package csiconn

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// want is the expected class of each code for each operation; codes not
// listed are Final for every operation.
var want = map[codes.Code]map[Operation]Class{
	codes.Canceled:          allOps(Transient),
	codes.DeadlineExceeded:  allOps(Transient),
	codes.Unavailable:       allOps(Transient),
	codes.Aborted:           allOps(Transient),
	codes.ResourceExhausted: withOp(allOps(Transient), OpCreateVolume, Final),
	codes.InvalidArgument:   withOp(withOp(allOps(Final), OpExpandVolume, Infeasible), OpModifyVolume, Infeasible),
	codes.OutOfRange:        withOp(allOps(Final), OpExpandVolume, Infeasible),
	codes.NotFound:          withOp(allOps(Final), OpExpandVolume, Infeasible),
}

var operations = []Operation{OpCreateVolume, OpDeleteVolume, OpExpandVolume, OpModifyVolume,
	OpCreateSnapshot, OpDeleteSnapshot, OpGetSnapshot, OpGetCapacity, OpCreateGroup, OpDeleteGroup, OpGetGroup}

func allOps(c Class) map[Operation]Class {
	m := map[Operation]Class{}
	for _, op := range operations {
		m[op] = c
	}
	return m
}

func withOp(m map[Operation]Class, op Operation, c Class) map[Operation]Class {
	m[op] = c
	return m
}

func TestClassifyEveryCodeAndOperation(t *testing.T) {
	for code := codes.Canceled; code <= codes.Unauthenticated; code++ {
		for _, op := range operations {
			expected := Final
			if m, ok := want[code]; ok {
				expected = m[op]
			}
			err := status.Error(code, "boom")
			if got := Classify(op, err); got != expected {
				t.Errorf("Classify(%s, %s) = %s, want %s", op, code, got, expected)
			}
			// Wrapping must not change the class.
			if got := Classify(op, fmt.Errorf("wrapped: %w", err)); got != expected {
				t.Errorf("Classify(%s, wrapped %s) = %s, want %s", op, code, got, expected)
			}
		}
	}
}

func TestClassifyNonGRPC(t *testing.T) {
	for _, err := range []error{errors.New("socket closed"), context.DeadlineExceeded, context.Canceled} {
		for _, op := range operations {
			if got := Classify(op, err); got != Transient {
				t.Errorf("Classify(%s, %v) = %s, want transient", op, err, got)
			}
		}
	}
}

func TestCallError(t *testing.T) {
	err := NewCallError(OpExpandVolume, status.Error(codes.OutOfRange, "too big"))
	if ClassOf(err) != Infeasible || !IsInfeasible(OpExpandVolume, err) {
		t.Fatalf("class = %s, want infeasible", ClassOf(err))
	}
	if Code(err) != codes.OutOfRange {
		t.Errorf("Code = %s, want OutOfRange", Code(err))
	}
	if got, want := err.Error(), "ControllerExpandVolume failed (infeasible): OutOfRange: too big"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if NewCallError(OpCreateVolume, nil) != nil {
		t.Error("NewCallError(nil) must be nil")
	}
	if !IsInUse(status.Error(codes.FailedPrecondition, "published")) || IsInUse(nil) {
		t.Error("IsInUse wrong")
	}
	if ClassOf(errors.New("plain")) != Transient {
		t.Error("ClassOf(plain) must be transient")
	}
}

func FuzzClassify(f *testing.F) {
	f.Add(uint32(4), "CreateVolume")
	f.Add(uint32(11), "ControllerExpandVolume")
	f.Fuzz(func(t *testing.T, code uint32, op string) {
		c := Classify(Operation(op), status.Error(codes.Code(code), "x"))
		if c != Transient && c != Final && c != Infeasible {
			t.Fatalf("unknown class %d", c)
		}
	})
}
