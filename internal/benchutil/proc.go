package benchutil

import (
	"os"
	"strconv"
	"strings"
)

// PeakRSS is VmHWM of this process in bytes: the test binary, the fake
// driver and the controller together. 0 where /proc is not readable.
func PeakRSS() int64 { return ProcStatus("VmHWM") }

// RSS is VmRSS of this process in bytes.
func RSS() int64 { return ProcStatus("VmRSS") }

// ProcStatus reads a "<field>: <n> kB" line of /proc/self/status, in
// bytes; 0 when it is missing.
func ProcStatus(field string) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
