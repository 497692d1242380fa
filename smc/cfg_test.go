package smc

import (
	"math/rand/v2"
	"testing"

	"github.com/ddsmc/ddsmc/diffusion"
)

// Classifier-free guidance as a target (paper.md §2.3): with two small
// "conditional" and "unconditional" models and weight w = 2, the weighted
// SMC output on the product target p₁^w·p₂^{1−w} (no reward) matches the
// exactly enumerated path-space product, and the usual CFG sampler —
// drawing from the normalised per-step product kernel with no weights —
// visibly does not: its TV to the same target stays large at any N. The
// weights are the point.
func TestCFGTargetNeedsTheWeights(t *testing.T) {
	const w = 2.0
	base, err := NewProduct(toyKernel(), toyPool(1, 0), toyPool(1, 5), w, 1-w, 64)
	if err != nil {
		t.Fatal(err)
	}
	target := Target{Base: base, Alpha: 1}
	grid := toyGrid(t, toyT)
	ex, err := ExactTarget(target, grid, 1)
	if err != nil {
		t.Fatal(err)
	}
	run := func(N int, tr Trigger) float64 {
		s, err := New(target, Config{N: N, Grid: grid, Trigger: tr, Final: FinalWeighted})
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Run(rand.New(rand.NewPCG(11, uint64(N))))
		if err != nil {
			t.Fatal(err)
		}
		logw := res.LogW
		if tr.Kind == "never" {
			logw = nil // weights dropped: the usual CFG sampler
		}
		pmf, err := WeightedPMF(res.X, logw, toyL, toyV)
		if err != nil {
			t.Fatal(err)
		}
		tv, _ := diffusion.TotalVariation(pmf, ex.Target)
		return tv
	}
	smcSmall, smcBig := run(2000, Trigger{Kind: "ess"}), run(32000, Trigger{Kind: "ess"})
	plainSmall, plainBig := run(2000, Trigger{Kind: "never"}), run(32000, Trigger{Kind: "never"})
	t.Logf("TV to the exact CFG target, N = 2000 / 32000: SMC %.4f / %.4f, plain CFG sampling %.4f / %.4f", smcSmall, smcBig, plainSmall, plainBig)
	// SMC is consistent: a 16× larger N should cut its TV by about 4×
	// (allow 2×); the unweighted sampler converges to another distribution,
	// so its TV does not shrink and stays several times SMC's.
	if smcBig > smcSmall/2 {
		t.Errorf("SMC: TV %.4f at N = 32000 is not well below %.4f at N = 2000", smcBig, smcSmall)
	}
	if plainBig < 0.8*plainSmall || plainBig < 4*smcBig {
		t.Errorf("plain CFG sampling: TV %.4f at N = 32000 (%.4f at 2000), not clearly off the target (SMC %.4f)", plainBig, plainSmall, smcBig)
	}
}
