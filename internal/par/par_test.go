package par

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestRangesCoverOnce checks that the ranges cover 0..n−1 exactly once,
// inline below MinWork and split over the cores above it (with an idle
// helper: one woken late from an earlier call may still be on its way
// back, and Ranges then runs inline).
func TestRangesCoverOnce(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	for _, c := range []struct{ n, work, wantRanges int }{{0, MinWork, 1}, {1, MinWork, 1}, {7, 10, 1}, {7, MinWork, 2}, {1000, 1 << 20, 2}} {
		for deadline := time.Now().Add(time.Second); !Idle() && time.Now().Before(deadline); {
			time.Sleep(100 * time.Microsecond)
		}
		seen := make([]int, c.n)
		var mu sync.Mutex
		ranges := 0
		Ranges(c.n, c.work, func(lo, hi int) {
			mu.Lock()
			defer mu.Unlock()
			ranges++
			for i := lo; i < hi; i++ {
				seen[i]++
			}
		})
		for i, s := range seen {
			if s != 1 {
				t.Fatalf("n %d work %d: index %d covered %d times", c.n, c.work, i, s)
			}
		}
		if ranges != c.wantRanges {
			t.Fatalf("n %d work %d: %d ranges, want %d", c.n, c.work, ranges, c.wantRanges)
		}
	}
}
