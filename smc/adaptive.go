package smc

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Adaptive tempering (Lambda{Kind: "adaptive", ESS: κ_λ}).
//
// The run starts at λ_0 = LambdaFloor, like the fixed ramps. After each
// proposal x_s ~ q(·|x_t) the engine evaluates the networks and the twist
// once, then chooses the exponent λ_s of the new intermediate target
// (ψ_s tempered by λ_s) as the largest λ ∈ [λ_t, 1] whose tempering keeps
// the conditional ESS at least κ_λ·N. The step's incremental log-weight at
// exponent λ splits into the move at unchanged λ and the tempering:
//
//	inc_j(λ) = m_j + τ_j(λ),
//	m_j    = log k − log q − log ψ_t(x_t) + log ψ_s(x_s; λ_t),
//	τ_j(λ) = log ψ_s(x_s; λ) − log ψ_s(x_s; λ_t),
//
// and the criterion is the conditional ESS (Zhou, Johansen & Aston 2016) of
// the tempering increments under the weights after the move, W'_j ∝
// W_j·exp(m_j):
//
//	CESS(λ) = (Σ_j W'_j·e^{τ_j})² / Σ_j W'_j·e^{2τ_j} ≥ κ_λ.
//
// With ψ = exp(λ·r̂/α) and no move this is the classical rule of particles'
// AdaptiveTempering and BlackJAX's adaptive_tempered, ESS of exp((λ−λ_t)·r̂/α).
// CESS(λ_t) = 1, so λ always advances unless the target is met at λ_t
// exactly, whatever the move's own weight variance (which the resampling
// trigger handles). The weight update then adds inc_j(λ_s), exactly the
// quantity searched (so the realised tempering CESS equals κ_λ whenever
// λ_s < 1; BlackJAX #914 had the search and the update disagree in sign,
// and λ stalled). If CESS(1) ≥ κ_λ the step goes straight to λ = 1; else
// bisection finds a crossing in (λ_t, 1) (the largest when CESS(λ) is
// monotone, as for the usual tempering increments; otherwise some
// crossing). The final target always has λ = 1 and the exact reward.
//
// ψ_s(·; λ) is re-tempered without new network calls, reward calls or
// random numbers: the Monte Carlo and gradient look-aheads keep their φ
// sample rewards and recompute the log-mean-exp at each λ; deterministic
// twists (exact, none) are evaluated again at each λ (the exact look-ahead
// of a non-additive reward then re-enumerates, and those reward calls are
// counted). The proposal of each step sees λ_t (Move.LambdaS), since λ_s is
// chosen after proposing; the gradient kept for the next proposal is the
// one computed at λ_t (identical when φ = 1). The weights are exact for any
// such choice, so the weighted particles converge to π as N grows; but λ_s
// depends on the particles, so log Ẑ is consistent, not exactly unbiased.

// bisectTol is the width of the λ bracket at which bisection stops.
const bisectTol = 1e-10

// adaptive reports whether the schedule is chosen from the particles.
func (s *Sampler) adaptive() bool { return s.cfg.Lambda.Kind == "adaptive" }

// checkAdaptive refuses an adaptive schedule with a twist that cannot be
// re-tempered.
func checkAdaptive(cfg Config) error {
	if cfg.Lambda.Kind != "adaptive" {
		return nil
	}
	switch cfg.Twist.(type) {
	case LookAhead, GradLookAhead, NoTwist:
		return nil
	}
	if cfg.Twist.Deterministic() {
		return nil
	}
	return fmt.Errorf("smc: adaptive lambda needs a twist it can re-temper (none, mc, exact, grad or a deterministic twist), got %s", cfg.Twist.Name())
}

// family sets log ψ and r̂ of the particles at exponent λ.
type family func(lambda float64, logPsi, rhat []float64) error

// evalFamily evaluates the networks and the twist at the particles once
// and returns log ψ as a function of λ, leaving st.LogPsi and st.Rhat at
// exponent lambda. It draws the same random numbers as evaluate.
func (s *Sampler) evalFamily(rng *rand.Rand, st *State, t, lambda float64) (family, error) {
	env := &s.env
	switch tw := s.cfg.Twist.(type) {
	case LookAhead:
		if err := env.Target.Base.Eval(st.X, t, st.Ev, s.cfg.Workers); err != nil {
			return nil, err
		}
		if s.pev != nil {
			if err := s.pev.Eval(st.X, t, st.Pv, s.cfg.Workers); err != nil {
				return nil, err
			}
		}
		x0, err := tw.sample(rng, env, st.X, st.Ev)
		if err != nil {
			return nil, err
		}
		r := make([]float64, s.cfg.N*tw.Phi)
		if err := env.rewards(x0, r, "look-ahead sample"); err != nil {
			return nil, err
		}
		f := lmeFamily(r, tw.Phi, env.Target.Alpha)
		return f, f(lambda, st.LogPsi, st.Rhat)
	case GradLookAhead:
		if err := s.evaluate(rng, st, t, lambda); err != nil {
			return nil, err
		}
		phi := tw.Pool[0].Phi()
		sc := env.scratchBufs()
		if len(sc.r) != s.cfg.N*phi {
			return nil, fmt.Errorf("smc: internal: gradient look-ahead kept %d rewards, want %d", len(sc.r), s.cfg.N*phi)
		}
		f := lmeFamily(append([]float64(nil), sc.r...), phi, env.Target.Alpha)
		// The kept rewards must reproduce the twist's own log ψ at lambda.
		lp, rh := make([]float64, s.cfg.N), make([]float64, s.cfg.N)
		if err := f(lambda, lp, rh); err != nil {
			return nil, err
		}
		for j := range lp {
			if lp[j] != st.LogPsi[j] {
				return nil, fmt.Errorf("smc: internal: re-tempered log psi %v of particle %d differs from the look-ahead's %v", lp[j], j, st.LogPsi[j])
			}
		}
		return f, nil
	default:
		if err := s.evaluate(rng, st, t, lambda); err != nil {
			return nil, err
		}
		return func(l float64, logPsi, rhat []float64) error {
			return s.cfg.Twist.Eval(rng, env, st.X, st.Ev, t, l, logPsi, rhat, nil)
		}, nil
	}
}

// lmeFamily is log ψ(λ) = log (1/φ) Σ_k exp(λ·r_k/α) for kept rewards r.
func lmeFamily(r []float64, phi int, alpha float64) family {
	return func(l float64, logPsi, rhat []float64) error {
		tiltedLME(r, phi, l/alpha, logPsi, rhat)
		return nil
	}
}

// CESS returns the conditional ESS fraction (Σ_j W_j·u_j)²/Σ_j W_j·u_j² ∈
// [0, 1] of incremental log-weights inc (u_j = exp(inc_j)) under the
// normalised log-weights normLogW (W_j = exp(normLogW_j)), the quantity
// the adaptive schedule holds at its target. It is 0 if every product
// W_j·u_j is zero and NaN if any is NaN or +Inf.
func CESS(normLogW, inc []float64) float64 {
	a, b := make([]float64, len(inc)), make([]float64, len(inc))
	for j := range inc {
		a[j], b[j] = normLogW[j]+inc[j], normLogW[j]+2*inc[j]
	}
	la, lb := LogSumExp(a), LogSumExp(b)
	if math.IsInf(la, -1) {
		return 0
	}
	return math.Min(math.Exp(2*la-lb), 1)
}

// chooseLambda returns λ_s ∈ [lo, 1] by the rule above, given the
// normalised log-weights before the step, base_j = log k − log q −
// log ψ_t(x_t), and logPsi and rhat at lo; it leaves them at λ_s.
func (s *Sampler) chooseLambda(f family, logW, base []float64, lo float64, logPsi, rhat []float64) (float64, error) {
	N := s.cfg.N
	psi0 := append([]float64(nil), logPsi...)
	moved := make([]float64, N)
	for j := range N {
		moved[j] = logW[j] + base[j] + psi0[j]
	}
	if _, err := Normalize(moved, moved); err != nil {
		return lo, nil // every particle is dead; the weight update reports why
	}
	tau := make([]float64, N)
	ok := func(l float64) (bool, error) {
		if err := f(l, logPsi, rhat); err != nil {
			return false, err
		}
		for j := range N {
			tau[j] = logPsi[j] - psi0[j]
			if logPsi[j] == psi0[j] { // also −Inf at both: no tempering change
				tau[j] = 0
			}
		}
		return CESS(moved, tau) >= s.cfg.Lambda.ESS, nil
	}
	if good, err := ok(1); err != nil || good {
		return 1, err
	}
	hi := 1.0
	for hi-lo > bisectTol {
		mid := lo + (hi-lo)/2
		g, err := ok(mid)
		if err != nil {
			return 0, err
		}
		if g {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, f(lo, logPsi, rhat)
}

// adaptStep is evaluate for a proposed, non-final step of an adaptive run:
// it chooses λ_s ∈ [λ_t, 1] and records it in p and st.
func (s *Sampler) adaptStep(rng *rand.Rand, st *State, p *pending) error {
	if p.lambdaS >= 1 {
		st.lambda = 1
		return s.evaluate(rng, st, p.s, 1)
	}
	f, err := s.evalFamily(rng, st, p.s, p.lambdaS)
	if err != nil {
		return err
	}
	base := make([]float64, s.cfg.N)
	for j := range base {
		base[j] = p.logk[j] - p.logq[j] - p.prevPsi[j]
	}
	l, err := s.chooseLambda(f, st.LogW, base, p.lambdaS, st.LogPsi, st.Rhat)
	if err != nil {
		return err
	}
	p.lambdaS, st.lambda = l, l
	return nil
}

// runEach is RunMany for adaptive schedules: the runs, one after the other.
func (s *Sampler) runEach(rngs []*rand.Rand) ([]*Result, error) {
	out := make([]*Result, len(rngs))
	for r, rng := range rngs {
		res, err := s.Run(rng)
		if err != nil {
			return nil, fmt.Errorf("smc: run %d: %w", r, err)
		}
		out[r] = res
	}
	return out, nil
}
