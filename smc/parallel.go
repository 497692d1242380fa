package smc

import (
	"fmt"
	"sync"
)

// forChunks splits rows 0..n−1 into consecutive chunks of size chunk (the
// last may be shorter) and calls f(worker, start, count) for each, on up to
// workers goroutines. Chunk boundaries depend only on n and chunk, never
// on the number of workers, so a row-wise deterministic f gives the same
// results for any worker count. Worker w only ever runs on one goroutine
// at a time, so f may use per-worker scratch (or a per-worker network
// copy) indexed by w. The first error (lowest chunk) is returned.
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
	var wg sync.WaitGroup
	next := make(chan int, chunks)
	for c := range chunks {
		next <- c
	}
	close(next)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range next {
				errs[c] = run(w, c)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
