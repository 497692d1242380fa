package experiments

import (
	"math/rand/v2"
	"testing"

	"github.com/ddsmc/ddsmc/diffusion"
	"github.com/ddsmc/ddsmc/graph"
	"github.com/ddsmc/ddsmc/objectives"
	"github.com/ddsmc/ddsmc/smc"
)

// TestLogVarianceTrainingApproachesTheTarget trains an amortised proposal
// on an enumerable toy (L = 2, V = 3, T = 4, random additive reward,
// α = 0.5, exact look-ahead twist) with on-policy rollouts from the SMC
// engine and the log-variance loss. The loss must fall by half and the TV
// distance between q_φ's own (exactly enumerated) sample distribution and
// the exact tilted target π ∝ p_θ·exp(r/α) must fall by half. A second
// check: SMC with the trained q_φ is consistent (weighted particles within
// the TV bound of π).
func TestLogVarianceTrainingApproachesTheTarget(t *testing.T) {
	for _, rank := range []int{0, 4} {
		t.Run(map[bool]string{true: "full", false: "lora"}[rank == 0], func(t *testing.T) { trainToy(t, rank) })
	}
}

// trainToy is TestLogVarianceTrainingApproachesTheTarget for a full
// fine-tune (rank 0) or rank-r LoRA adapters.
func trainToy(t *testing.T, rank int) {
	base, err := graph.New(graph.Config{Arch: "mlp", L: 2, V: 3, Embed: 8, Hidden: 16, Layers: 2, TimeDim: 4, Act: "silu", DType: "float64", InitSeed: 3})
	if err != nil {
		t.Fatal(err)
	}
	q, err := newProposalModel(base, ProposalConfig{LoRARank: rank})
	if err != nil {
		t.Fatal(err)
	}
	k := diffusion.Kernel{Schedule: diffusion.Linear()}
	grid, _ := diffusion.NewGrid(4, "linear")
	rng := rand.New(rand.NewPCG(1, 1))
	terms := make(smc.TableReward, 2)
	for l := range terms {
		terms[l] = []float64{2 * rng.NormFloat64(), 2 * rng.NormFloat64(), 2 * rng.NormFloat64()}
	}
	pb, _ := smc.NewReverse(k, []diffusion.Denoiser{base}, 64)
	target := smc.Target{Base: pb, Reward: terms, Alpha: 0.5}
	ex, err := smc.ExactTarget(target, grid, 1)
	if err != nil {
		t.Fatal(err)
	}
	qMarginalTV := func() float64 {
		qb, _ := smc.NewReverse(k, []diffusion.Denoiser{q}, 64)
		qe, err := smc.ExactTarget(smc.Target{Base: qb, Alpha: 1}, grid, 1)
		if err != nil {
			t.Fatal(err)
		}
		tv, _ := diffusion.TotalVariation(qe.Base, ex.Target)
		return tv
	}
	loss, err := objectives.NewLogVarLoss(q, nil, k, objectives.LogVarConfig{Batch: 64, Steps: 4, LR: 0.01, Trainable: q.Trainable()})
	if err != nil {
		t.Fatal(err)
	}
	defer loss.Close()
	learned, _ := smc.NewLearned(k, []diffusion.Denoiser{q}, 64)
	s, err := smc.New(target, smc.Config{N: 64, Grid: grid, Lambda: smc.Lambda{Kind: "constant"}, Twist: smc.ExactLookAhead{},
		Proposal: learned, Trigger: smc.Trigger{Kind: "never"}, Final: smc.FinalWeighted})
	if err != nil {
		t.Fatal(err)
	}
	tv0 := qMarginalTV()
	var first, last float64
	const steps, window = 150, 15
	for it := range steps {
		roll, err := rollout(rng, s, grid)
		if err != nil {
			t.Fatal(err)
		}
		if it == 0 {
			if err := initF(loss, roll, nil, 4, 64); err != nil {
				t.Fatal(err)
			}
		}
		total := 0.0
		for i, st := range roll {
			l, _, err := loss.Accumulate(st.xt, st.xs, st.t, st.s, i, st.c)
			if err != nil {
				t.Fatal(err)
			}
			total += l
		}
		if err := loss.Apply(); err != nil {
			t.Fatal(err)
		}
		if it < window {
			first += total / window
		}
		if it >= steps-window {
			last += total / window
		}
	}
	tv1 := qMarginalTV()
	t.Logf("log-variance loss %.4f → %.4f; TV(q_φ, π) %.4f → %.4f", first, last, tv0, tv1)
	if !(last < first/2) || !(tv1 < tv0/2) {
		t.Fatalf("training did not halve the loss (%.4f → %.4f) and the TV (%.4f → %.4f)", first, last, tv0, tv1)
	}
	// SMC-amot with the trained q_φ stays exact.
	big, _ := smc.New(target, smc.Config{N: 10000, Grid: grid, Lambda: smc.Lambda{Kind: "constant"}, Twist: smc.ExactLookAhead{},
		Proposal: learned, Final: smc.FinalWeighted})
	res, err := big.Run(rand.New(rand.NewPCG(5, 5)))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := smc.WeightedPMF(res.X, res.LogW, 2, 3)
	tv, _ := diffusion.TotalVariation(p, ex.Target)
	if b := diffusion.TVBound(9, 1000, 1e-3); tv > b {
		t.Fatalf("SMC-amot TV %.4f exceeds %.4f", tv, b)
	}
}
