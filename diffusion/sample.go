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
		if j := slices.Index(real, V); j >= 0 {
			return nil, fmt.Errorf("diffusion: sequence %d still has a MASK at t=0 (schedule %s has alpha(0) = %v)",
				start+j/L, k.Schedule.Name(), k.Schedule.Alpha(0))
		}
		copy(out[start*L:], real)
	}
	return out, nil
}
