package diffusion

import (
	"fmt"
	"math/rand/v2"
	"slices"
)

// Sample draws n sequences from the reverse chain of kernel k with denoiser
// d by ancestral sampling over grid (paper.md §1.1): every sequence starts
// all-mask at t = Grid[T] = 1 and takes the steps Grid[i] -> Grid[i-1],
// i = T..1, with d called at t = Grid[i]. Sequences are processed in groups
// of exactly batch sequences per denoiser call (the last group is padded
// with all-mask rows that are never sampled), so a compiled denoiser sees a
// single batch shape. With Eta = 0, a group with no mask left skips its
// remaining steps (they are the identity). It returns the flat samples,
// length n·L, and an error if any MASK is left at t = 0 (α(0) < 1).
//
// If d is time-independent (see TimeIndependent), a row's logits are reused
// until its x_t changes: only changed rows are re-evaluated, in padded
// sub-batches of max(1, batch/8) rows (a second batch shape). The samples
// are the same as without the cache, given row-wise deterministic logits.
func Sample(rng *rand.Rand, k Kernel, d Denoiser, grid Grid, n, batch int) ([]int, error) {
	if rng == nil || d == nil {
		return nil, fmt.Errorf("diffusion: Sample needs a non-nil rng and denoiser")
	}
	if err := k.Validate(); err != nil {
		return nil, err
	}
	if err := grid.Validate(); err != nil {
		return nil, err
	}
	if n < 1 || batch < 1 {
		return nil, fmt.Errorf("diffusion: Sample needs n >= 1 and batch >= 1, got n=%d batch=%d", n, batch)
	}
	L, V := d.Shape()
	if L < 1 || V < 1 {
		return nil, fmt.Errorf("diffusion: denoiser shape L=%d V=%d invalid", L, V)
	}
	if ti, ok := d.(TimeIndependent); ok && ti.TimeIndependent() {
		return sampleCached(rng, k, d, grid, n, batch, L, V)
	}
	out := make([]int, n*L)
	xt := make([]int, batch*L)
	tv := make([]float64, batch)
	logits := make([]float64, batch*L*V)
	for start := 0; start < n; start += batch {
		m := min(batch, n-start) // real rows in this group
		for i := range xt {
			xt[i] = V
		}
		real := xt[:m*L]
		for i := grid.Steps(); i >= 1; i-- {
			if k.Eta == 0 && !slices.Contains(real, V) {
				break
			}
			t, s := grid[i], grid[i-1]
			for b := range tv {
				tv[b] = t
			}
			if err := d.X0Logits(xt, tv, logits); err != nil {
				return nil, fmt.Errorf("diffusion: denoiser at t=%v: %w", t, err)
			}
			if err := k.Step(rng, real, logits[:m*L*V], L, V, t, s, real); err != nil {
				return nil, err
			}
		}
		if err := checkUnmasked(k, real, start, L, V); err != nil {
			return nil, err
		}
		copy(out[start*L:], real)
	}
	return out, nil
}

// TimeIndependent is implemented by denoisers whose logits do not depend on
// t (for masked diffusion the exact posterior p(x0 | x_t) does not, so a
// denoiser without a time input loses nothing). Samplers may then reuse a
// row's logits while its x_t is unchanged.
type TimeIndependent interface {
	TimeIndependent() bool
}

// sampleCached is Sample for time-independent denoisers.
func sampleCached(rng *rand.Rand, k Kernel, d Denoiser, grid Grid, n, batch, L, V int) ([]int, error) {
	sub := max(1, batch/8)
	out := make([]int, n*L)
	xt := make([]int, batch*L)           // the group's current states
	prev := make([]int, batch*L)         // states before the step
	logits := make([]float64, batch*L*V) // cached per-row logits
	stale := make([]bool, batch)
	idx := make([]int, 0, batch)
	inX := make([]int, batch*L)
	inT := make([]float64, batch)
	inLogits := make([]float64, batch*L*V)
	for start := 0; start < n; start += batch {
		m := min(batch, n-start)
		for i := range xt {
			xt[i] = V
		}
		for b := range stale {
			stale[b] = true
		}
		real := xt[:m*L]
		for i := grid.Steps(); i >= 1; i-- {
			if k.Eta == 0 && !slices.Contains(real, V) {
				break
			}
			t, s := grid[i], grid[i-1]
			idx = idx[:0]
			for b := 0; b < m; b++ {
				if stale[b] {
					idx = append(idx, b)
				}
			}
			for len(idx) > 0 {
				size := batch
				if len(idx) <= sub {
					size = sub
				}
				c := min(size, len(idx))
				for j := 0; j < size; j++ {
					row := inX[j*L : (j+1)*L]
					if j < c {
						copy(row, xt[idx[j]*L:(idx[j]+1)*L])
					} else {
						for l := range row {
							row[l] = V
						}
					}
					inT[j] = t
				}
				if err := d.X0Logits(inX[:size*L], inT[:size], inLogits[:size*L*V]); err != nil {
					return nil, fmt.Errorf("diffusion: denoiser at t=%v: %w", t, err)
				}
				for j := 0; j < c; j++ {
					copy(logits[idx[j]*L*V:(idx[j]+1)*L*V], inLogits[j*L*V:(j+1)*L*V])
					stale[idx[j]] = false
				}
				idx = idx[c:]
			}
			copy(prev, real)
			if err := k.Step(rng, real, logits[:m*L*V], L, V, t, s, real); err != nil {
				return nil, err
			}
			for b := 0; b < m; b++ {
				stale[b] = !slices.Equal(prev[b*L:(b+1)*L], real[b*L:(b+1)*L])
			}
		}
		if err := checkUnmasked(k, real, start, L, V); err != nil {
			return nil, err
		}
		copy(out[start*L:], real)
	}
	return out, nil
}

// checkUnmasked reports an error if a group of finished samples (the first
// of which is sequence start) still holds a MASK at t = 0.
func checkUnmasked(k Kernel, xs []int, start, L, V int) error {
	if j := slices.Index(xs, V); j >= 0 {
		return fmt.Errorf("diffusion: sequence %d still has a MASK at t=0 (schedule %s has alpha(0) = %v)",
			start+j/L, k.Schedule.Name(), k.Schedule.Alpha(0))
	}
	return nil
}
