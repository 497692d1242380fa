package smc

import "fmt"

// Reward scores clean sequences x0 ∈ V^L. It is the r of the tilted target
// π(x0) ∝ p_θ(x0)·exp(r(x0)/α).
type Reward interface {
	// Reward writes r(x0) for B = len(out) sequences: x0 has length B·L
	// with tokens in 0..V−1. It must be deterministic and row-wise (a
	// sequence's reward does not depend on the other rows).
	Reward(x0 []int, out []float64) error
}

// AdditiveReward is a Reward that is a sum of per-position terms,
// r(x0) = Σ_l Terms()[l][x0_l]. The exact look-ahead then factorises over
// positions and costs O(L·V) per state instead of O(V^{#masked}).
type AdditiveReward interface {
	Reward
	// Terms returns the L×V table of per-position terms. The caller must
	// not modify it.
	Terms() [][]float64
}

// SequenceReward adapts a function of one sequence of length L to Reward.
type SequenceReward struct {
	L int
	F func(x0 []int) float64
}

// Reward implements Reward.
func (r SequenceReward) Reward(x0 []int, out []float64) error {
	if r.L < 1 || len(x0) != len(out)*r.L {
		return fmt.Errorf("smc: reward got %d tokens for %d sequences of length %d", len(x0), len(out), r.L)
	}
	for b := range out {
		out[b] = r.F(x0[b*r.L : (b+1)*r.L])
	}
	return nil
}

// TableReward is an additive reward given by its per-position terms
// (e.g. the GMM rewards of paper.md §6(a1)).
type TableReward [][]float64

// Terms implements AdditiveReward.
func (r TableReward) Terms() [][]float64 { return r }

// Reward implements Reward.
func (r TableReward) Reward(x0 []int, out []float64) error {
	L := len(r)
	if L < 1 || len(x0) != len(out)*L {
		return fmt.Errorf("smc: reward got %d tokens for %d sequences of length %d", len(x0), len(out), L)
	}
	for b := range out {
		s := 0.0
		for l, v := range x0[b*L : (b+1)*L] {
			if v < 0 || v >= len(r[l]) {
				return fmt.Errorf("smc: reward: token %d at position %d outside 0..%d", v, l, len(r[l])-1)
			}
			s += r[l][v]
		}
		out[b] = s
	}
	return nil
}

// LookAheadGrad is the differentiable look-ahead of paper.md §1.3 and §3.2
// for a fixed batch of B sequences, with φ straight-through Gumbel samples
// per sequence. Implementations live outside this package (the Gorgonia one
// is objectives.LookAhead); the SMC engine only sees float64 slices.
type LookAheadGrad interface {
	// Shape returns the sequence length L and vocabulary size V (no MASK).
	Shape() (L, V int)
	// Batch returns B, the number of sequences per call.
	Batch() int
	// Phi returns φ, the number of look-ahead samples per sequence.
	Phi() int
	// ValueGrad evaluates B sequences xt (length B·L, tokens 0..V with
	// V = MASK) at time t. With ℓ the denoiser's x0-logits and g the
	// given Gumbel noise (length B·φ·L·V, row-major [b][k][l][v]), sample
	// k of sequence b is x0_k = argmax_v(ℓ + g_k) at masked positions and
	// the current token at unmasked ones (carry-over). It writes
	//   logits  (B·L·V):     ℓ;
	//   rewards (B·φ):       r(x0_k) at index b·φ + k;
	//   grad    (B·L·(V+1)): ∂r̂/∂onehot(xt), where
	//                        r̂ = (1/scale)·log((1/φ)·Σ_k exp(scale·r_k)),
	// differentiating through the denoiser, the straight-through
	// Gumbel-softmax with temperature τ and the continuous carry-over
	// γ·S + (1 − e_MASK)⊙x_t, γ = 1 − Σ_{v<V} x_t[v]. scale > 0.
	ValueGrad(xt []int, t, scale float64, noise, logits, rewards, grad []float64) error
}
