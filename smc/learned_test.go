package smc

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ddsmc/ddsmc/diffusion"
	"github.com/ddsmc/ddsmc/internal/testutil"
)

// tiltedDenoiser returns the base hash denoiser's logits plus c_l(v)/α:
// with T = 1 (one step from all-MASK to x0) and an additive reward, its SUBS
// kernel is exactly the locally optimal proposal
// q*(x0) ∝ p_θ(x0 | MASK)·exp(r(x0)/α), which factorises over positions.
type tiltedDenoiser struct {
	testutil.HashDenoiser
	terms TableReward
	alpha float64
}

func (d tiltedDenoiser) X0Logits(xt []int, t []float64, out []float64) error {
	if err := d.HashDenoiser.X0Logits(xt, t, out); err != nil {
		return err
	}
	L, V := d.L, d.V
	for b := range t {
		for l := range L {
			for v := range V {
				out[(b*L+l)*V+v] += d.terms[l][v] / d.alpha
			}
		}
	}
	return nil
}

// TestLearnedOptimalProposalHasZeroWeightVariance: on an enumerable toy
// where the look-ahead is exact (T = 1, so the only twist is the exact
// final reward), a learned proposal equal to the locally optimal one gives
// identical incremental log-weights for every particle (zero log-variance
// loss at F = their common value), ESS = N, and log Ẑ = log Z exactly;
// while the base model's own kernel as proposal does not.
func TestLearnedOptimalProposalHasZeroWeightVariance(t *testing.T) {
	alpha := 0.7
	grid := toyGrid(t, 1)
	run := func(q diffusion.Denoiser) (*Result, *Exact) {
		base, err := NewReverse(toyKernel(), toyPool(1, 0), 8)
		if err != nil {
			t.Fatal(err)
		}
		tg := Target{Base: base, Reward: toyTable(), Alpha: alpha}
		learned, err := NewLearned(toyKernel(), []diffusion.Denoiser{q}, 8)
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(tg, Config{N: 500, Grid: grid, Lambda: Lambda{Kind: "constant"}, Proposal: learned, Trigger: Trigger{Kind: "never"}, Final: FinalWeighted})
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Run(rand.New(rand.NewPCG(2, 2)))
		if err != nil {
			t.Fatal(err)
		}
		ex, err := ExactTarget(tg, grid, 1)
		if err != nil {
			t.Fatal(err)
		}
		return res, ex
	}
	opt, ex := run(tiltedDenoiser{testutil.HashDenoiser{L: toyL, V: toyV, Scale: 2}, toyTable(), alpha})
	inc := opt.Trace[1].Increments
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range inc {
		lo, hi = math.Min(lo, v), math.Max(hi, v)
	}
	if hi-lo > 1e-12 || math.Abs(opt.Trace[1].ESS-1) > 1e-12 || math.Abs(opt.LogZ-ex.LogZ) > 1e-12 {
		t.Fatalf("optimal q: increments spread %v, ESS/N %v, log Ẑ − log Z %v; want 0, 1, 0", hi-lo, opt.Trace[1].ESS, opt.LogZ-ex.LogZ)
	}
	base, _ := run(testutil.HashDenoiser{L: toyL, V: toyV, Scale: 2})
	if base.Trace[1].ESS > 0.99 {
		t.Fatalf("the base kernel as proposal has ESS/N %v; the test cannot tell proposals apart", base.Trace[1].ESS)
	}
	t.Logf("ESS/N: optimal q %.6f, base kernel %.3f", opt.Trace[1].ESS, base.Trace[1].ESS)
}
