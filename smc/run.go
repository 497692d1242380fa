package smc

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/ddsmc/ddsmc/internal/par"
)

// Trigger decides when to resample (paper.md §5.2).
type Trigger struct {
	// Kind is "ess" (when ESS < Kappa·N; the default when empty), "every"
	// (unconditionally), "always" or "never".
	Kind string
	// Kappa is the ESS threshold as a fraction of N for "ess" (0 means
	// 0.5; must lie in (0, 1]).
	Kappa float64
	// Every makes "ess" and "every" consider resampling only after steps
	// that are multiples of Every (0 means 1).
	Every int
}

// Validate checks the trigger.
func (tr Trigger) Validate() error {
	switch tr.Kind {
	case "", "ess", "every", "always", "never":
	default:
		return fmt.Errorf("smc: unknown resampling trigger %q (want ess, every, always or never)", tr.Kind)
	}
	if tr.Kappa != 0 && !(tr.Kappa > 0 && tr.Kappa <= 1) {
		return fmt.Errorf("smc: ESS threshold kappa = %v must lie in (0, 1]", tr.Kappa)
	}
	if tr.Every < 0 {
		return fmt.Errorf("smc: resampling frequency every = %d must be >= 1", tr.Every)
	}
	return nil
}

// Fire reports whether to resample after step (steps taken, 0 = after
// initialisation) given ESS/N.
func (tr Trigger) Fire(step int, essFrac float64) bool {
	every := max(tr.Every, 1)
	switch tr.Kind {
	case "never":
		return false
	case "always":
		return true
	case "every":
		return step > 0 && step%every == 0
	default:
		kappa := tr.Kappa
		if kappa == 0 {
			kappa = 0.5
		}
		return step%every == 0 && essFrac < kappa
	}
}

// Final is the output selection after the last step (paper.md §5.3).
type Final string

// Output selections.
const (
	// FinalResample resamples the weighted particles once more with the
	// run's resampler, giving N equally weighted samples (the toy code's
	// final weighted resampling). The default.
	FinalResample Final = "resample"
	// FinalWeighted returns all N particles with their weights.
	FinalWeighted Final = "weighted"
	// FinalArgmaxReward returns the particle with the highest reward (the
	// language, image and DNA evaluation, and best-of-N).
	FinalArgmaxReward Final = "argmax-reward"
	// FinalArgmaxWeight returns the particle with the highest weight.
	FinalArgmaxWeight Final = "argmax-weight"
	// FinalMultinomial returns one particle drawn with probability ∝ w.
	FinalMultinomial Final = "multinomial"
)

// Validate checks the selection name.
func (f Final) Validate() error {
	switch f {
	case "", FinalResample, FinalWeighted, FinalArgmaxReward, FinalArgmaxWeight, FinalMultinomial:
		return nil
	}
	return fmt.Errorf("smc: unknown final selection %q (want resample, weighted, argmax-reward, argmax-weight or multinomial)", string(f))
}

// Result is a finished run.
type Result struct {
	// X are the N final particles (N·L tokens), with normalised
	// log-weights LogW and exact rewards Reward.
	X      []int
	LogW   []float64
	Reward []float64
	// Samples are the selected outputs (rows of L tokens) and their
	// rewards; SampleLogW are their normalised log-weights (uniform
	// unless Final is FinalWeighted).
	Samples       []int
	SampleReward  []float64
	SampleLogW    []float64
	LogZ          float64 // log Ẑ, the evidence estimate of Z = Σ m(x0)·exp(r(x0)/α)
	Cost          Cost    // the run's work: network rows and reward evaluations
	Trace         []Info  // one row per step, starting with the initialisation
	Resamples     int     // resampling events (excluding the final selection)
	ESSMin        float64 // minimum of ESS/N over the steps
	ESSMean       float64 // mean of ESS/N over the steps
	WallSeconds   float64
	ProposalName  string
	TwistName     string
	ResamplerName string
}

// holdHelpers keeps internal/par's helpers spinning through a one-worker
// run (par.Hold), whose serial passes between split products would
// otherwise outlast their spin; with more workers the workers are the
// parallelism. It returns the release.
func (s *Sampler) holdHelpers() func() {
	if s.cfg.Workers > 1 {
		return func() {}
	}
	return par.Hold()
}

// Run performs a whole run: Init, T steps and the final selection.
func (s *Sampler) Run(rng *rand.Rand) (*Result, error) {
	defer s.holdHelpers()()
	start := time.Now()
	st, info, err := s.Init(rng)
	if err != nil {
		return nil, err
	}
	res := &Result{Trace: []Info{info}}
	for st.Step < s.T {
		info, err := s.Step(rng, st)
		if err != nil {
			return nil, err
		}
		res.Trace = append(res.Trace, info)
	}
	if err := s.finish(rng, st, res); err != nil {
		return nil, err
	}
	res.WallSeconds = time.Since(start).Seconds()
	res.Cost = s.costSince(st)
	return res, nil
}

// finish fills the result from the final state.
func (s *Sampler) finish(rng *rand.Rand, st *State, res *Result) error {
	N, L := s.cfg.N, s.env.L
	res.X = slices.Clone(st.X)
	res.LogW = slices.Clone(st.LogW)
	res.Reward = slices.Clone(st.Rhat)
	res.LogZ = st.LogZ
	res.ProposalName, res.TwistName, res.ResamplerName = s.cfg.Proposal.Name(), s.cfg.Twist.Name(), s.cfg.Resampler.Name()
	res.ESSMin = math.Inf(1)
	for _, in := range res.Trace {
		if in.Resampled {
			res.Resamples++
		}
		res.ESSMin = math.Min(res.ESSMin, in.ESS)
		res.ESSMean += in.ESS / float64(len(res.Trace))
	}
	pick := func(j int) {
		res.Samples = append(res.Samples, st.X[j*L:(j+1)*L]...)
		res.SampleReward = append(res.SampleReward, st.Rhat[j])
		res.SampleLogW = append(res.SampleLogW, 0)
	}
	switch s.cfg.Final {
	case FinalWeighted:
		res.Samples, res.SampleReward, res.SampleLogW = slices.Clone(st.X), slices.Clone(st.Rhat), slices.Clone(st.LogW)
	case FinalArgmaxReward:
		pick(argmax(st.Rhat))
	case FinalArgmaxWeight:
		pick(argmax(st.LogW))
	case FinalMultinomial:
		j, _, err := sampleRow(rng, st.LogW, make([]float64, N))
		if err != nil {
			return wrapf(err, "final multinomial draw")
		}
		pick(j)
	default:
		cp := *st // the states, rewards and weights are gathered anew; the evaluations are left alone
		if err := s.resampleState(rng, &cp, s.cfg.Resampler, false); err != nil {
			return wrapf(err, "final resampling")
		}
		res.Samples, res.SampleReward, res.SampleLogW = cp.X, cp.Rhat, cp.LogW
	}
	return nil
}

// argmax returns the index of the largest value (the first on ties).
func argmax(a []float64) int {
	j := 0
	for i, v := range a {
		if v > a[j] {
			j = i
		}
	}
	return j
}
