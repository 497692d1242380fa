package diffusion

import (
	"fmt"
	"math"
)

// maxELBOLength bounds L in DiscreteELBO, which enumerates 2^L mask patterns.
const maxELBOLength = 20

// DiscreteELBO returns the exact T-step discrete negative ELBO (an upper
// bound on −log p_chain(x0), in nats) of one clean sequence x0 (length L,
// tokens 0..V-1) for the η = 0 SUBS chain with denoiser d over grid:
//
//	Σ_{i=1..T} E_{q(x_{t_i}|x0)} [ (α(t_{i-1})−α(t_i))/(1−α(t_i)) · Σ_{l masked} −log x̂_θ(x_{t_i})^l[x0^l] ],
//
// the expectation being computed exactly by enumerating all 2^L mask
// patterns at each grid time (L ≤ 20); the denoiser is called once per grid
// time with B = the number of patterns that have at least one mask and
// positive probability, each with t = t_i.
//
// Derivation: −log p(x0) ≤ KL(q(x_1|x0) ‖ p(x_1)) + Σ_i E_q KL(q(x_{t_{i-1}}|x_{t_i},x0) ‖ p_θ(x_{t_{i-1}}|x_{t_i}))
// − E_q log p(x0|x_{t_0}). With α(0) = 1 the last term is 0; with α(1) = 0
// the prior KL is 0 (both are the all-mask point mass). Both q and p_θ
// factorise over positions; at an unmasked position both carry the token
// over (KL 0), and at a masked position both keep the mask with probability
// (1−α_s)/(1−α_t), while q unmasks to x0^l and p_θ to v ~ x̂ with total
// probability w = (α_s−α_t)/(1−α_t), giving KL = −w·log x̂[x0^l]. The bound
// holds for any denoiser, but only for η = 0 (no remasking). If α(1) > 0
// (e.g. LogLinear with eps > 0) the prior term — infinite against an
// all-mask start — is dropped, as MDLM does, and the result is then not a
// bound for the all-mask-started chain. The result is +Inf if the denoiser
// gives zero mass to x0^l at a reachable masked position.
func DiscreteELBO(s Schedule, d Denoiser, grid Grid, x0 []int) (float64, error) {
	if s == nil || d == nil {
		return 0, fmt.Errorf("diffusion: DiscreteELBO needs a schedule and a denoiser")
	}
	if err := grid.Validate(); err != nil {
		return 0, err
	}
	L, V := d.Shape()
	if L < 1 || V < 1 {
		return 0, fmt.Errorf("diffusion: denoiser shape L=%d V=%d invalid", L, V)
	}
	if L > maxELBOLength {
		return 0, fmt.Errorf("diffusion: DiscreteELBO enumerates 2^L mask patterns; L=%d > %d", L, maxELBOLength)
	}
	if len(x0) != L {
		return 0, fmt.Errorf("diffusion: x0 has length %d, want L = %d", len(x0), L)
	}
	for l, v := range x0 {
		if v < 0 || v >= V {
			return 0, fmt.Errorf("diffusion: x0[%d] = %d outside 0..%d", l, v, V-1)
		}
	}
	nPat := 1 << L
	xt := make([]int, 0, nPat*L)
	tv := make([]float64, 0, nPat)
	qm := make([]float64, 0, nPat)
	pats := make([]int, 0, nPat)
	var logits []float64
	total := 0.0
	for i := 1; i <= grid.Steps(); i++ {
		t := grid[i]
		at, as := s.Alpha(t), s.Alpha(grid[i-1])
		if !(at >= 0 && at <= 1) || !(as >= 0 && as <= 1) || as < at {
			return 0, fmt.Errorf("diffusion: schedule %s invalid between t=%v (alpha %v) and s=%v (alpha %v)",
				s.Name(), t, at, grid[i-1], as)
		}
		if at == 1 || as == at {
			continue // no masks possible, or zero weight
		}
		w := (as - at) / (1 - at)
		xt, tv, qm, pats = xt[:0], tv[:0], qm[:0], pats[:0]
		for m := 1; m < nPat; m++ { // bit l set: position l masked
			q := 1.0
			for l := range L {
				if m>>l&1 == 1 {
					q *= 1 - at
					xt = append(xt, V)
				} else {
					q *= at
					xt = append(xt, x0[l])
				}
			}
			if q == 0 {
				xt = xt[:len(xt)-L]
				continue
			}
			tv = append(tv, t)
			qm = append(qm, q)
			pats = append(pats, m)
		}
		B := len(tv)
		if cap(logits) < B*L*V {
			logits = make([]float64, B*L*V)
		}
		logits = logits[:B*L*V]
		if err := d.X0Logits(xt, tv, logits); err != nil {
			return 0, fmt.Errorf("diffusion: denoiser at t=%v: %w", t, err)
		}
		for b, m := range pats {
			nll := 0.0
			for l := range L {
				if m>>l&1 == 0 {
					continue
				}
				lg := logits[(b*L+l)*V : (b*L+l+1)*V]
				lse, err := logNormalizer(lg)
				if err != nil {
					return 0, fmt.Errorf("%w (t=%v, pattern %b, position %d)", err, t, m, l)
				}
				nll -= lg[x0[l]] - lse
			}
			total += w * qm[b] * nll
		}
	}
	if math.IsNaN(total) {
		return 0, fmt.Errorf("diffusion: DiscreteELBO is NaN")
	}
	return total, nil
}
