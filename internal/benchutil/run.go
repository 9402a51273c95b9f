package benchutil

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// N is the positive integer in CSIKIT_BENCH_N, else def. ok is false when
// the variable is set but not a positive integer (N then returns def).
func N(def int) (n int, ok bool) {
	s := os.Getenv("CSIKIT_BENCH_N")
	if s == "" {
		return def, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return def, false
	}
	return n, true
}

// Workers is the positive integer in CSIKIT_BENCH_WORKERS, else 0 (the
// controller's default).
func Workers() int {
	n, err := strconv.Atoi(os.Getenv("CSIKIT_BENCH_WORKERS"))
	if err != nil || n <= 0 {
		return 0
	}
	return n
}

// Parallel calls fn(i) for every i in [0, n) from width goroutines and
// returns when all calls have.
func Parallel(n, width int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range width {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				fn(i)
			}
		}()
	}
	wg.Wait()
}

// Progress prints how far a long run is to stderr, at most once per
// interval.
type Progress struct {
	every time.Duration
	last  time.Time
}

// NewProgress returns a Progress whose first line comes after every.
func NewProgress(every time.Duration) *Progress {
	return &Progress{every: every, last: time.Now()}
}

// Printf prints one line when the interval has passed since the last.
func (p *Progress) Printf(format string, args ...any) {
	if time.Since(p.last) < p.every {
		return
	}
	p.last = time.Now()
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}
