package fakedriver

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const gi = int64(1) << 30

func TestNewVolumeSize(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		r                     *csi.CapacityRange
		source, minSize, step int64
		want                  int64
		wantCode              codes.Code
	}{
		{name: "no range: default", want: DefaultVolumeSize},
		{name: "no range: source size", source: 3 * gi, want: 3 * gi},
		{name: "no range: default lowered to limit", r: &csi.CapacityRange{LimitBytes: 100}, want: 100},
		{name: "required exact", r: &csi.CapacityRange{RequiredBytes: 5 * gi}, want: 5 * gi},
		{name: "raised to min size", r: &csi.CapacityRange{RequiredBytes: 1}, minSize: gi, want: gi},
		{name: "rounded to step", r: &csi.CapacityRange{RequiredBytes: gi + 1}, step: gi, want: 2 * gi},
		{name: "limit below min size", r: &csi.CapacityRange{RequiredBytes: 1, LimitBytes: 10}, minSize: gi, wantCode: codes.OutOfRange},
		{name: "limit below rounded size", r: &csi.CapacityRange{RequiredBytes: gi + 1, LimitBytes: gi + 2}, step: gi, wantCode: codes.OutOfRange},
		{name: "required above limit", r: &csi.CapacityRange{RequiredBytes: 2, LimitBytes: 1}, wantCode: codes.InvalidArgument},
		{name: "negative", r: &csi.CapacityRange{RequiredBytes: -1}, wantCode: codes.InvalidArgument},
		{name: "smaller than source", r: &csi.CapacityRange{RequiredBytes: gi}, source: 2 * gi, wantCode: codes.OutOfRange},
		{name: "rounding overflows", r: &csi.CapacityRange{RequiredBytes: math.MaxInt64 - 1}, step: 1 << 20, wantCode: codes.OutOfRange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := newVolumeSize(tc.r, tc.source, tc.minSize, tc.step)
			if code := status.Code(err); code != tc.wantCode || got != tc.want {
				t.Errorf("newVolumeSize = %d, %v; want %d, %v", got, err, tc.want, tc.wantCode)
			}
		})
	}
}

func TestExpandedSize(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		r                      *csi.CapacityRange
		current, minSize, step int64
		want                   int64
		wantCode               codes.Code
	}{
		{name: "grow", r: &csi.CapacityRange{RequiredBytes: 2 * gi}, current: gi, want: 2 * gi},
		{name: "grow rounded", r: &csi.CapacityRange{RequiredBytes: gi + 1}, current: gi, step: gi, want: 2 * gi},
		{name: "shrink is a no-op", r: &csi.CapacityRange{RequiredBytes: gi}, current: 2 * gi, want: 2 * gi},
		{name: "same size", r: &csi.CapacityRange{RequiredBytes: gi}, current: gi, want: gi},
		{name: "no range", current: gi, wantCode: codes.InvalidArgument},
		{name: "limit below rounded", r: &csi.CapacityRange{RequiredBytes: gi + 1, LimitBytes: gi + 2}, current: gi, step: gi, wantCode: codes.OutOfRange},
		{name: "required above limit", r: &csi.CapacityRange{RequiredBytes: 3, LimitBytes: 2}, current: 1, wantCode: codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := expandedSize(tc.r, tc.current, tc.minSize, tc.step)
			if code := status.Code(err); code != tc.wantCode || got != tc.want {
				t.Errorf("expandedSize = %d, %v; want %d, %v", got, err, tc.want, tc.wantCode)
			}
		})
	}
}

func TestCandidateSegments(t *testing.T) {
	a, b, c := map[string]string{"z": "a"}, map[string]string{"z": "b"}, map[string]string{"z": "c"}
	top := func(segs ...map[string]string) []*csi.Topology {
		var out []*csi.Topology
		for _, s := range segs {
			out = append(out, &csi.Topology{Segments: s})
		}
		return out
	}
	for _, tc := range []struct {
		name string
		req  *csi.TopologyRequirement
		want []string
	}{
		{name: "none: fallback", want: []string{"z=c"}},
		{name: "preferred first, no duplicates", req: &csi.TopologyRequirement{Requisite: top(a, b), Preferred: top(b)}, want: []string{"z=b", "z=a"}},
		{name: "requisite only", req: &csi.TopologyRequirement{Requisite: top(a)}, want: []string{"z=a"}},
		{name: "empty segments ignored", req: &csi.TopologyRequirement{Requisite: top(map[string]string{})}, want: []string{"z=c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, s := range candidateSegments(tc.req, c) {
				got = append(got, segmentKey(s))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("candidateSegments = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPaging(t *testing.T) {
	for _, tc := range []struct {
		token     string
		n         int
		max       int32
		wantStart int
		wantEnd   int
		wantNext  string
		wantCode  codes.Code
	}{
		{token: "", n: 5, max: 2, wantStart: 0, wantEnd: 2, wantNext: "2"},
		{token: "2", n: 5, max: 0, wantStart: 2, wantEnd: 5},
		{token: "4", n: 5, max: 2, wantStart: 4, wantEnd: 5},
		{token: "5", n: 5, wantStart: 5, wantEnd: 5},
		{token: "6", n: 5, wantCode: codes.Aborted},
		{token: "invalid-token", n: 5, wantCode: codes.Aborted},
		{token: "", n: 5, max: -1, wantCode: codes.InvalidArgument},
	} {
		start, err := pageStart(tc.token, tc.n)
		var end int
		var next string
		if err == nil {
			end, next, err = pageEnd(start, tc.n, tc.max)
		}
		if code := status.Code(err); code != tc.wantCode {
			t.Errorf("token %q max %d: code %v, want %v", tc.token, tc.max, code, tc.wantCode)
			continue
		}
		if err == nil && (start != tc.wantStart || end != tc.wantEnd || next != tc.wantNext) {
			t.Errorf("token %q max %d: page [%d:%d] next %q, want [%d:%d] next %q",
				tc.token, tc.max, start, end, next, tc.wantStart, tc.wantEnd, tc.wantNext)
		}
	}
}

func TestCheckSecretsAndMutable(t *testing.T) {
	want := map[string]string{"user": "u", "pass": "p"}
	for _, tc := range []struct {
		got  map[string]string
		code codes.Code
	}{
		{got: map[string]string{"user": "u", "pass": "p", "extra": "x"}, code: codes.OK},
		{got: map[string]string{"user": "u"}, code: codes.InvalidArgument},
		{got: nil, code: codes.InvalidArgument},
		{got: map[string]string{"user": "u", "pass": "wrong"}, code: codes.Unauthenticated},
	} {
		if code := status.Code(checkSecrets("M", want, tc.got)); code != tc.code {
			t.Errorf("checkSecrets(%v) = %v, want %v", tc.got, code, tc.code)
		}
	}
	for _, tc := range []struct {
		allowed []string
		params  map[string]string
		code    codes.Code
	}{
		{params: map[string]string{"iops": "1"}, code: codes.OK},
		{params: map[string]string{"fail": "1"}, code: codes.InvalidArgument},
		{allowed: []string{"iops"}, params: map[string]string{"iops": "1"}, code: codes.OK},
		{allowed: []string{"iops"}, params: map[string]string{"tier": "1"}, code: codes.InvalidArgument},
		{allowed: []string{}, params: nil, code: codes.OK},
	} {
		if code := status.Code(checkMutable(tc.allowed, tc.params)); code != tc.code {
			t.Errorf("checkMutable(%v, %v) = %v, want %v", tc.allowed, tc.params, code, tc.code)
		}
	}
}

func TestValidate(t *testing.T) {
	o := Options{
		Name:           "-bad-",
		Endpoint:       "/" + string(make([]byte, 200)),
		Capacity:       -1,
		NodeID:         "n",
		Nodes:          []Node{{ID: "n"}, {ID: ""}},
		RequireSecrets: map[string]map[string]string{"CreateVolumes": {"a": "b"}},
	}
	err := o.Validate()
	if err == nil {
		t.Fatal("Validate accepted bad options")
	}
	for _, field := range []string{"Name", "Endpoint", "Capacity", "duplicate ID", "empty ID", "CreateVolumes"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("Validate error %q does not mention %s", err, field)
		}
	}
}
