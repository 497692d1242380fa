package objectives

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/ddsmc/ddsmc/diffusion"
	"github.com/ddsmc/ddsmc/graph"
	"github.com/ddsmc/ddsmc/smc"
)

// TestRunManyGraphMatchesSeparateRuns checks batched independent SMC runs
// with the real Gorgonia networks: a float32 time-conditioned MLP denoiser
// and the straight-through gradient look-ahead, the gradient proposal and
// the MC look-ahead with the reverse proposal. R = 3 runs of N = 6
// particles through one sampler whose base and look-ahead batch is R·N
// give bit for bit the results of separate runs through a sampler with
// batch N (so a row's network outputs do not depend on its batch).
func TestRunManyGraphMatchesSeparateRuns(t *testing.T) {
	const R, N, L, V = 3, 6, 4, 5
	cfg := graph.Config{Arch: "mlp", L: L, V: V, Embed: 8, Hidden: 32, Layers: 2, TimeDim: 4, Act: "gelu", DType: "float32", InitSeed: 3}
	terms := laTerms(rand.New(rand.NewPCG(8, 8)), L, V)
	grid, err := diffusion.NewGrid(8, "linear")
	if err != nil {
		t.Fatal(err)
	}
	sampler := func(batch int, grad bool) *smc.Sampler {
		m, err := graph.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		base, err := smc.NewReverse(diffusion.Kernel{Schedule: diffusion.Linear()}, []diffusion.Denoiser{m}, batch)
		if err != nil {
			t.Fatal(err)
		}
		sc := smc.Config{N: N, Grid: grid, Lambda: smc.Lambda{Kind: "linear", K: 3}, Final: smc.FinalResample,
			Twist: smc.LookAhead{Phi: 2}, Proposal: smc.ReverseProposal{}}
		if grad {
			la, err := NewLookAhead(m, LinearReward{Terms: terms}, LookAheadConfig{Batch: batch, Phi: 2})
			if err != nil {
				t.Fatal(err)
			}
			sc.Twist, sc.Proposal = smc.GradLookAhead{Pool: []smc.LookAheadGrad{la}, Share: base}, smc.GradProposal{}
		}
		s, err := smc.New(smc.Target{Base: base, Reward: smc.TableReward(terms), Alpha: 0.5}, sc)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	rngs := func() []*rand.Rand {
		out := make([]*rand.Rand, R)
		for r := range out {
			out[r] = rand.New(rand.NewPCG(uint64(r), 44))
		}
		return out
	}
	str := func(r *smc.Result) string { c := *r; c.WallSeconds = 0; return fmt.Sprintf("%+v", c) }
	for _, grad := range []bool{false, true} {
		many, err := sampler(R*N, grad).RunMany(rngs())
		if err != nil {
			t.Fatal(err)
		}
		one := sampler(N, grad)
		for r, rng := range rngs() {
			res, err := one.Run(rng)
			if err != nil {
				t.Fatal(err)
			}
			if a, b := str(res), str(many[r]); a != b {
				for i := range a {
					if a[i] != b[i] {
						t.Logf("first difference at %d: %q vs %q", i, a[max(0, i-200):min(len(a), i+80)], b[max(0, i-200):min(len(b), i+80)])
						break
					}
				}
				t.Fatalf("grad=%v: run %d differs between Run and RunMany (log Ẑ %v vs %v)", grad, r, res.LogZ, many[r].LogZ)
			}
		}
	}
}
