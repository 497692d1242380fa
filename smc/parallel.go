package smc

import (
	"fmt"
	"runtime"
	"sync/atomic"

	"github.com/ddsmc/ddsmc/internal/par"
)

// forChunks splits rows 0..n−1 into consecutive chunks of size chunk (the
// last may be shorter) and calls f(worker, start, count) for each, on up to
// workers goroutines (the caller's and internal/par's helpers). Chunk boundaries depend only on n and chunk, never
// on the number of workers, so a row-wise deterministic f gives the same
// results for any worker count. Worker w only ever runs on one goroutine
// at a time, so f may use per-worker scratch (or a per-worker network
// copy) indexed by w. f must not wait for another chunk: the chunks may
// all run on the calling goroutine. The first error (lowest chunk) is
// returned.
func forChunks(n, chunk, workers int, f func(w, start, count int) error) error {
	if n <= 0 {
		return nil
	}
	if chunk < 1 {
		return fmt.Errorf("smc: chunk size %d must be positive", chunk)
	}
	chunks := (n + chunk - 1) / chunk
	workers = max(1, min(workers, chunks))
	run := func(w, c int) (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("smc: worker %d panicked on rows %d..: %v", w, c*chunk, r)
			}
		}()
		start := c * chunk
		return f(w, start, min(chunk, n-start))
	}
	if workers == 1 {
		for c := range chunks {
			if err := run(0, c); err != nil {
				return err
			}
		}
		return nil
	}
	errs := make([]error, chunks)
	var next atomic.Int64
	par.Do(workers, func(w int) {
		for c := int(next.Add(1) - 1); c < chunks; c = int(next.Add(1) - 1) {
			errs[c] = run(w, c)
		}
	})
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// rowBudget bounds the float64s of per-particle rows that prepThenDraw
// keeps at once (8 MB): large vocabularies get small blocks.
const rowBudget = 1 << 20

// minParallelRows is the fewest row entries in a block worth spreading over
// goroutines.
const minParallelRows = 1 << 14

// prepThenDraw runs the two phases of a proposal step over items 0..n−1
// (the particles or distinct states of a block): prep(i) runs on up to
// runtime.GOMAXPROCS goroutines, then draw(i) runs for each item in order.
// prep must not touch the random stream and must only write item i's
// rows; draw is the only consumer of the stream. So the results are those
// of a serial loop, whatever the number of cores. perItem is the number of
// row entries an item's prep computes (to decide whether the items are
// worth parallelising). The first error, in item order, is returned.
func prepThenDraw(n, perItem int, prep, draw func(i int) error) error {
	workers := 1
	if n*perItem >= minParallelRows {
		workers = min(runtime.GOMAXPROCS(0), n)
	}
	chunk := max(1, (n+workers-1)/workers)
	err := forChunks(n, chunk, workers, func(_, start, count int) error {
		for i := start; i < start+count; i++ {
			if err := prep(i); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i := range n {
		if err := draw(i); err != nil {
			return err
		}
	}
	return nil
}

// blockFor returns how many items of perItem float64s each fit in the row
// budget (at least 1, at most n).
func blockFor(n, perItem int) int {
	return max(1, min(n, rowBudget/max(1, perItem)))
}

// Stream marks the calling goroutine as one of the process's independent
// streams of work until the returned function is called. Code that runs
// several samplers in parallel goroutines, as the sweep runner does,
// should call it in each: one sampler splits its products and element-wise
// passes over every core with helper goroutines, and while the streams
// fill the cores the helpers stay out of their way.
func Stream() (done func()) { return par.Stream() }
