package smc

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// RunMany performs R = len(rngs) independent runs of the sampler's target
// and configuration, run r drawing its random numbers from rngs[r] only. It
// returns exactly what R calls s.Run(rngs[r]) would return (the same
// particles, weights, evidence, traces and selected samples, bit for bit),
// but every network call (the base denoiser, a ProposalEvaluator, the
// gradient look-ahead graph) and every reward call sees the particles of
// all R runs at once, as one batch of R·N, so that many small-N repeats
// cost about as much as one run with R·N particles. Each run keeps its own
// weights, evidence, resampling and random stream.
//
// The base and proposal batch sizes (NewReverse's batch, the look-ahead's
// Batch) are those of the sampler's components: build them with a batch of
// up to R·N to get one call per step. Results are identical because every
// component evaluates rows independently of the rest of its batch
// (deterministic row-wise rewards and denoisers, as required by Reward
// and Base). WallSeconds of each result is the batch's wall time divided
// by R.
//
// Proposals, the exact look-ahead and custom twists run per run (they
// make no network call of their own, except LOP's candidate evaluations).
func (s *Sampler) RunMany(rngs []*rand.Rand) ([]*Result, error) {
	if len(rngs) == 0 {
		return nil, fmt.Errorf("smc: RunMany needs at least one rng")
	}
	for r, rng := range rngs {
		if rng == nil {
			return nil, fmt.Errorf("smc: RunMany: rng %d is nil", r)
		}
	}
	if s.adaptive() { // adaptive.go: each run chooses its own λ
		return s.runEach(rngs)
	}
	defer s.holdHelpers()()
	start := time.Now()
	R := len(rngs)
	sts := make([]*State, R)
	res := make([]*Result, R)
	for r := range sts {
		sts[r] = s.newState()
	}
	s.beginMany(sts) // cost.go: shared calls are split, per-run ones charged
	t, lambda := s.initTime()
	mark := s.usage()
	if err := s.evaluateMany(rngs, sts, t, lambda); err != nil {
		return nil, fmt.Errorf("smc: initialisation (t=%v): %w", t, err)
	}
	s.shareCost(sts, mark)
	for r := range sts {
		st, info, err := s.initWeights(rngs[r], sts[r])
		if err != nil {
			return nil, fmt.Errorf("smc: run %d: %w", r, err)
		}
		sts[r] = st
		res[r] = &Result{Trace: []Info{info}}
	}
	ps := make([]*pending, R)
	for step := 0; step < s.T; step++ {
		for r := range sts {
			mark := s.usage()
			s.callsFor(r)
			p, err := s.propose(rngs[r], sts[r])
			if err != nil {
				return nil, fmt.Errorf("smc: run %d: %w", r, err)
			}
			s.chargeRun(sts[r], mark, false)
			ps[r] = p
		}
		mark := s.usage()
		s.callsFor(-1)
		var err error
		if ps[0].final {
			err = s.finalRewardsMany(sts)
		} else {
			err = s.evaluateMany(rngs, sts, ps[0].s, ps[0].lambdaS)
		}
		if err != nil {
			return nil, ps[0].wrap(err)
		}
		s.shareCost(sts, mark)
		for r := range sts {
			info, err := s.stepWeights(rngs[r], sts[r], ps[r])
			if err != nil {
				return nil, fmt.Errorf("smc: run %d: %w", r, err)
			}
			res[r].Trace = append(res[r].Trace, info)
		}
	}
	for r := range sts {
		if err := s.finish(rngs[r], sts[r], res[r]); err != nil {
			return nil, fmt.Errorf("smc: run %d: %w", r, err)
		}
	}
	wall := time.Since(start).Seconds() / float64(R)
	for r, x := range res {
		x.WallSeconds = wall
		x.Cost = s.costSince(sts[r])
	}
	return res, nil
}

// evaluateMany is evaluate for several runs at the same time and exponent:
// the states' particles are evaluated as one batch, each run's random
// numbers (Monte Carlo look-ahead samples, Gumbel noise) drawn from its own
// rng in the order evaluate draws them.
func (s *Sampler) evaluateMany(rngs []*rand.Rand, sts []*State, t, lambda float64) error {
	if len(sts) == 1 {
		return s.evaluate(rngs[0], sts[0], t, lambda)
	}
	R, N, L := len(sts), s.cfg.N, s.env.L
	x := make([]int, 0, R*N*L)
	for _, st := range sts {
		x = append(x, st.X...)
	}
	ev := make([]float64, R*N*s.width)
	var pv []float64
	if s.pev != nil {
		pv = make([]float64, R*N*s.pw)
	}
	logPsi, rhat := make([]float64, R*N), make([]float64, R*N)
	var grad []float64
	G := L * (s.env.V + 1)
	if s.cfg.Twist.Differentiable() {
		grad = make([]float64, R*N*G)
	}
	twist := func() error {
		switch tw := s.cfg.Twist.(type) {
		case GradLookAhead:
			if err := tw.check(s.env.L, s.env.V); err != nil {
				return err
			}
			per := N * tw.Pool[0].Phi() * L * s.env.V
			noise := make([]float64, R*per)
			for r := range sts {
				tw.drawNoise(rngs[r], x[r*N*L:(r+1)*N*L], L, s.env.V, tw.Pool[0].Phi(), noise[r*per:(r+1)*per])
			}
			return tw.evalNoise(&s.env, x, noise, t, lambda, logPsi, rhat, grad)
		case LookAhead:
			var x0 []int
			for r := range sts {
				xr, err := tw.sample(rngs[r], &s.env, x[r*N*L:(r+1)*N*L], ev[r*N*s.width:(r+1)*N*s.width])
				if err != nil {
					return err
				}
				x0 = append(x0, xr...)
			}
			return tw.score(&s.env, x0, lambda, logPsi, rhat)
		default:
			for r := range sts {
				var gr []float64
				if grad != nil {
					gr = grad[r*N*G : (r+1)*N*G]
				}
				mark := s.usage()
				if err := tw.Eval(rngs[r], &s.env, x[r*N*L:(r+1)*N*L], ev[r*N*s.width:(r+1)*N*s.width], t, lambda,
					logPsi[r*N:(r+1)*N], rhat[r*N:(r+1)*N], gr); err != nil {
					return err
				}
				s.chargeRun(sts[r], mark, true) // cost.go
			}
			return nil
		}
	}
	first := false
	if p, ok := s.cfg.Twist.(interface{ primesBase() bool }); ok && p.primesBase() {
		first = true
		if err := twist(); err != nil {
			return err
		}
	}
	if err := s.env.Target.Base.Eval(x, t, ev, s.cfg.Workers); err != nil {
		return err
	}
	if s.pev != nil {
		if err := s.pev.Eval(x, t, pv, s.cfg.Workers); err != nil {
			return err
		}
	}
	if !first {
		if err := twist(); err != nil {
			return err
		}
	}
	for r, st := range sts {
		copy(st.Ev, ev[r*N*s.width:(r+1)*N*s.width])
		if pv != nil {
			copy(st.Pv, pv[r*N*s.pw:(r+1)*N*s.pw])
		}
		copy(st.LogPsi, logPsi[r*N:(r+1)*N])
		copy(st.Rhat, rhat[r*N:(r+1)*N])
		if grad != nil {
			copy(st.Grad, grad[r*N*G:(r+1)*N*G])
		}
	}
	return nil
}

// finalRewardsMany is finalRewards for several runs in one reward batch.
func (s *Sampler) finalRewardsMany(sts []*State) error {
	if len(sts) == 1 {
		return s.finalRewards(sts[0])
	}
	N := s.cfg.N
	x := make([]int, 0, len(sts)*N*s.env.L)
	for _, st := range sts {
		x = append(x, st.X...)
	}
	r := make([]float64, len(sts)*N)
	if err := s.env.rewards(x, r, "final particle"); err != nil {
		return err
	}
	for i, st := range sts {
		copy(st.Rhat, r[i*N:(i+1)*N])
		for j, v := range st.Rhat {
			st.LogPsi[j] = v / s.env.Target.Alpha
		}
	}
	return nil
}
