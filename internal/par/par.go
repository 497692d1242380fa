// Package par spreads element-wise work over the cores: the ops of the
// layers and objectives packages and the engine's noise split large
// batches into one range per core, small ones run inline.
package par

import "runtime"

// MinWork is the fewest entries worth spreading over goroutines.
const MinWork = 1 << 15

// Ranges calls f on consecutive ranges [lo, hi) covering 0..n−1: one range
// (on the caller's goroutine) when work, the number of entries the call
// touches, is below MinWork, there is one core or n < 2; otherwise one
// range per core, in parallel. Each range must write its own outputs only;
// element-wise results then do not depend on the split.
func Ranges(n, work int, f func(lo, hi int)) {
	procs := runtime.GOMAXPROCS(0)
	if work < MinWork || procs < 2 || n < 2 || !Idle() {
		f(0, n)
		return
	}
	step := (n + procs - 1) / procs
	Do((n+step-1)/step, func(i int) { f(i*step, min(n, (i+1)*step)) })
}
