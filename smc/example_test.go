package smc_test

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/ddsmc/ddsmc/diffusion"
	"github.com/ddsmc/ddsmc/smc"
)

// biased is a toy denoiser over L = 3 positions and V = 4 tokens: its
// x0-logits favour token 0 at every position, whatever the noisy input.
type biased struct{}

func (biased) Shape() (L, V int) { return 3, 4 }

func (biased) X0Logits(xt []int, t []float64, out []float64) error {
	for i := range out {
		if i%4 == 0 {
			out[i] = 1 // token 0
		} else {
			out[i] = 0
		}
	}
	return nil
}

// Steer a small custom denoiser toward sequences whose tokens sum high:
// π(x0) ∝ p_θ(x0)·exp(r(x0)/α), with the reverse proposal, an exact
// look-ahead twist and systematic resampling when ESS < N/2 (the zero
// values of Lambda, Trigger, Resampler and Final). The weighted particles
// match the exactly enumerated target.
func Example() {
	reverse, _ := smc.NewReverse(diffusion.Kernel{Schedule: diffusion.Linear()}, []diffusion.Denoiser{biased{}}, 64)
	reward := smc.SequenceReward{L: 3, F: func(x []int) float64 { return float64(x[0] + x[1] + x[2]) }}
	target := smc.Target{Base: reverse, Reward: reward, Alpha: 1}
	grid, _ := diffusion.NewGrid(10, "linear")
	s, _ := smc.New(target, smc.Config{N: 20000, Grid: grid, Twist: smc.ExactLookAhead{}})
	res, _ := s.Run(rand.New(rand.NewPCG(1, 2)))

	exact, _ := smc.ExactTarget(target, grid, 1)
	pmf, _ := smc.WeightedPMF(res.X, res.LogW, 3, 4)
	tv, _ := diffusion.TotalVariation(pmf, exact.Target)
	fmt.Printf("|log Ẑ − log Z| < 0.05: %v, TV(particles, π) < 0.05: %v\n", math.Abs(res.LogZ-exact.LogZ) < 0.05, tv < 0.05)
	// Output:
	// |log Ẑ − log Z| < 0.05: true, TV(particles, π) < 0.05: true
}
