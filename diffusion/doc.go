// Package diffusion owns the masked (absorbing-state) discrete diffusion
// process in plain Go with float64: noise schedules α(t), time grids, the
// forward masking q(x_t | x_0), the SUBS reverse kernel p_θ(x_s | x_t) built
// from denoiser x0-logits (with optional ReMDM remasking), exact per-position
// transition log-probabilities, ancestral sampling, and exact enumeration
// utilities (chain marginals, posterior denoisers, discrete ELBOs) for tiny
// state spaces.
//
// Token convention: a vocabulary of V tokens 0..V-1 plus the absorbing MASK
// token, whose index is V. Denoisers return V logits per position (the mask
// never has x0 mass).
//
// This package has no Gorgonia dependency; denoisers sit behind the small
// Denoiser interface.
package diffusion
