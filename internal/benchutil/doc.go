// Package benchutil holds what the controllers' real-apiserver benchmarks
// share: counting API writes through a rest.Config, reading the process's
// memory from /proc/self/status, the CSIKIT_BENCH_* knobs, a parallel
// loop and progress lines on stderr for long runs.
package benchutil
