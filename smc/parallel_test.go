package smc

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ddsmc/ddsmc/internal/par"
)

// The panic tests below are regression tests for two fixed forChunks bugs:
// a panic on the single-worker path crashed the caller, and with several
// workers a panic was stored in chunk 0's slot, where a successful chunk 0
// could erase it.

// chunkCall is one call of f.
type chunkCall struct{ w, start, count int }

// recordChunks runs forChunks with an f that records its calls and checks
// that no worker index runs on two goroutines at once.
func recordChunks(t *testing.T, n, chunk, workers int) []chunkCall {
	t.Helper()
	var mu sync.Mutex
	var calls []chunkCall
	busy := make([]atomic.Int32, max(workers, 1))
	var overlap atomic.Bool
	err := forChunks(n, chunk, workers, func(w, start, count int) error {
		if w < 0 || w >= len(busy) {
			return fmt.Errorf("worker index %d outside [0, %d)", w, len(busy))
		}
		if busy[w].Add(1) != 1 {
			overlap.Store(true)
		}
		runtime.Gosched() // give an overlap a chance to show
		busy[w].Add(-1)
		mu.Lock()
		calls = append(calls, chunkCall{w, start, count})
		mu.Unlock()
		return nil
	})
	if err != nil {
		t.Fatalf("n=%d chunk=%d workers=%d: %v", n, chunk, workers, err)
	}
	if overlap.Load() {
		t.Errorf("n=%d chunk=%d workers=%d: a worker index ran on two goroutines at once", n, chunk, workers)
	}
	return calls
}

// TestForChunksCoversEveryRowOnce: for many (n, chunk, workers), every
// row is in exactly one call, chunks are the consecutive blocks
// [c·chunk, min((c+1)·chunk, n)), worker indices stay below
// min(workers, #chunks), and the set of chunks does not depend on workers.
func TestForChunksCoversEveryRowOnce(t *testing.T) {
	for _, n := range []int{0, 1, 2, 7, 16, 17, 100} {
		for _, chunk := range []int{1, 3, 4, 16, 1000} {
			var ref []chunkCall
			for _, workers := range []int{-1, 0, 1, 2, 3, 8, 200} {
				calls := recordChunks(t, n, chunk, workers)
				seen := make([]int, n)
				chunks := (n + chunk - 1) / chunk
				maxW := max(1, min(workers, chunks))
				for _, c := range calls {
					if c.start%chunk != 0 || c.count != min(chunk, n-c.start) || c.count < 1 {
						t.Errorf("n=%d chunk=%d workers=%d: bad chunk start %d count %d", n, chunk, workers, c.start, c.count)
					}
					if c.w >= maxW {
						t.Errorf("n=%d chunk=%d workers=%d: worker index %d, want < %d", n, chunk, workers, c.w, maxW)
					}
					for r := c.start; r < c.start+c.count && r < n; r++ {
						seen[r]++
					}
				}
				for r, k := range seen {
					if k != 1 {
						t.Errorf("n=%d chunk=%d workers=%d: row %d covered %d times", n, chunk, workers, r, k)
					}
				}
				if len(calls) != chunks {
					t.Errorf("n=%d chunk=%d workers=%d: %d calls, want %d chunks", n, chunk, workers, len(calls), chunks)
				}
				// Chunk boundaries are independent of the worker count.
				b := make([]chunkCall, len(calls))
				for i, c := range calls {
					b[i] = chunkCall{0, c.start, c.count}
				}
				slices.SortFunc(b, func(x, y chunkCall) int { return x.start - y.start })
				if ref == nil {
					ref = b
				} else if !slices.Equal(ref, b) {
					t.Errorf("n=%d chunk=%d: chunks with %d workers %v differ from %v", n, chunk, workers, b, ref)
				}
			}
		}
	}
}

// TestForChunksFirstError: when several chunks fail, the error of the
// lowest failing chunk is returned, whatever the worker count and the
// order in which chunks finish.
func TestForChunksFirstError(t *testing.T) {
	const n, chunk = 40, 3 // 14 chunks
	for _, failing := range [][]int{{0}, {5}, {2, 9, 13}, {13}, {4, 5, 6, 7, 8, 9, 10, 11, 12, 13}} {
		for _, workers := range []int{1, 2, 4, 14} {
			var calls atomic.Int32
			err := forChunks(n, chunk, workers, func(_, start, _ int) error {
				calls.Add(1)
				c := start / chunk
				// Later chunks fail faster, so that with several workers
				// the lowest chunk is not the first error to occur.
				time.Sleep(time.Duration(14-c) * 20 * time.Microsecond)
				if slices.Contains(failing, c) {
					return fmt.Errorf("chunk %d failed", c)
				}
				return nil
			})
			want := fmt.Sprintf("chunk %d failed", failing[0])
			if err == nil || err.Error() != want {
				t.Errorf("failing %v, %d workers: error %v, want %q", failing, workers, err, want)
			}
			if workers == 1 && int(calls.Load()) != failing[0]+1 {
				t.Errorf("failing %v, 1 worker: %d calls, want a stop after chunk %d", failing, calls.Load(), failing[0])
			}
		}
	}
}

// TestForChunksBadChunk: a chunk size below 1 is an error (when there is
// work to do) and f is never called.
func TestForChunksBadChunk(t *testing.T) {
	for _, chunk := range []int{0, -3} {
		called := false
		err := forChunks(5, chunk, 2, func(int, int, int) error { called = true; return nil })
		if err == nil || !strings.Contains(err.Error(), "chunk size") {
			t.Errorf("chunk %d: error %v, want one about the chunk size", chunk, err)
		}
		if called {
			t.Errorf("chunk %d: f was called", chunk)
		}
	}
	// Nothing to do: no error, no call, whatever the chunk.
	if err := forChunks(0, 0, 2, func(int, int, int) error { t.Error("f called for n = 0"); return nil }); err != nil {
		t.Errorf("n = 0: %v", err)
	}
}

// callForChunks runs forChunks, turning a panic that escapes it into a
// returned value (so that the test can report it instead of crashing).
func callForChunks(n, chunk, workers int, f func(w, start, count int) error) (err error, escaped any) {
	defer func() { escaped = recover() }()
	return forChunks(n, chunk, workers, f), nil
}

// TestForChunksPanicBecomesError: a panicking f yields an error mentioning
// the panic, never a crash, with one or several workers.
func TestForChunksPanicBecomesError(t *testing.T) {
	boom := func(bad int) func(_, start, _ int) error {
		return func(_, start, _ int) error {
			if start == bad {
				panic("boom")
			}
			return nil
		}
	}
	t.Run("parallel", func(t *testing.T) {
		// A panic in chunk 0 (a panic in a later chunk is the
		// bugForChunksPanicSlot case below).
		for _, c := range []struct{ n, chunk, workers int }{{10, 1, 3}, {10, 3, 2}, {10, 1, 8}} {
			err, esc := callForChunks(c.n, c.chunk, c.workers, boom(0))
			if esc != nil {
				t.Fatalf("%+v: panic escaped forChunks: %v", c, esc)
			}
			if err == nil || !strings.Contains(err.Error(), "panic") || !strings.Contains(err.Error(), "boom") {
				t.Errorf("%+v: error %v, want one reporting the panic", c, err)
			}
		}
	})
	t.Run("parallel, later chunk", func(t *testing.T) {
		for _, bad := range []int{4, 9} {
			err, esc := callForChunks(10, 1, 3, boom(bad))
			if esc != nil {
				t.Fatalf("chunk %d: panic escaped forChunks: %v", bad, esc)
			}
			if err == nil || !strings.Contains(err.Error(), "boom") {
				t.Errorf("chunk %d: error %v, want one reporting the panic", bad, err)
			}
		}
	})
	t.Run("serial", func(t *testing.T) {
		for _, c := range []struct{ n, chunk, workers int }{{10, 1, 1}, {10, 100, 4}} {
			err, esc := callForChunks(c.n, c.chunk, c.workers, boom(0))
			if esc != nil {
				t.Fatalf("%+v: panic escaped forChunks: %v", c, esc)
			}
			if err == nil || !strings.Contains(err.Error(), "boom") {
				t.Errorf("%+v: error %v, want one reporting the panic", c, err)
			}
		}
	})
	t.Run("panic not overwritten by chunk 0", func(t *testing.T) {
		panicked := make(chan struct{})
		err, esc := callForChunks(8, 1, 4, func(_, start, _ int) error {
			switch start {
			case 0:
				// wait for chunk 5 when it runs in parallel (bounded: the
				// chunks may also run one after the other)
				select {
				case <-panicked:
				case <-time.After(200 * time.Millisecond):
				}
				time.Sleep(20 * time.Millisecond) // let the recover handler run first
				return nil
			case 5:
				close(panicked)
				panic("boom")
			}
			return nil
		})
		if esc != nil {
			t.Fatalf("panic escaped forChunks: %v", esc)
		}
		if err == nil || !strings.Contains(err.Error(), "boom") {
			t.Errorf("error %v, want the panic of chunk 5", err)
		}
	})
	t.Run("ordinary error still wins when lower", func(t *testing.T) {
		lower := errors.New("chunk 1 failed")
		err, esc := callForChunks(8, 1, 4, func(_, start, _ int) error {
			switch start {
			case 1:
				return lower
			case 6:
				panic("boom")
			}
			return nil
		})
		if esc != nil {
			t.Fatalf("panic escaped forChunks: %v", esc)
		}
		if !errors.Is(err, lower) {
			t.Errorf("error %v, want the lowest chunk's error %v", err, lower)
		}
	})
}

// TestStreamKeepsHelpersAway checks that two registered streams on two
// cores leave no idle helper, and that releasing them brings one back.
func TestStreamKeepsHelpersAway(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	a, b := Stream(), Stream()
	if par.Idle() {
		t.Error("two streams on two cores: a helper is idle")
	}
	a()
	b()
	for deadline := time.Now().Add(time.Second); !par.Idle() && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if !par.Idle() {
		t.Error("no stream: no idle helper")
	}
}
