// Package smc owns the Sequential Monte Carlo engine that runs over the reverse
// process of a masked diffusion model: tempered intermediate targets, exact
// incremental importance weights, pluggable proposals, twists and resamplers,
// the evidence estimate log Ẑ, and diagnostics. It works on plain float64
// slices and never imports Gorgonia; denoisers and rewards sit behind small
// interfaces.
package smc
