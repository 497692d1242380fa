package smc

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/ddsmc/ddsmc/internal/par"
)

// Env is what the pluggable parts of a run (twists, proposals) see of it:
// the target and the engine's execution settings.
type Env struct {
	L, V int
	// Target is the model being sampled.
	Target Target
	// Workers is the number of goroutines for network and reward calls.
	Workers int
	// RewardBatch is the number of sequences per Reward call.
	RewardBatch int

	scratch *engineScratch
	meter   meter // work counts (cost.go)
}

// engineScratch holds buffers reused from step to step by the engine's
// parts (the gradient look-ahead's noise, rewards, logits and padded
// chunks), so that the steady state of a run does not allocate them.
type engineScratch struct {
	noise, r, logits []float64
	pad              []laScratch
	// the proposals' per-particle rows (prepThenDraw): kernel, proposal,
	// cumulative sums, normalisers; particle → state slot, slot → particle
	pk, pq, pcdf, plse []float64
	slot, owner        []int
	// the Monte Carlo look-ahead's x0 CDFs per distinct state, and its
	// particle → state slot, slot → particle
	lcdf          []float64
	lslot, lowner []int
}

// laScratch is one worker's padded chunk of the gradient look-ahead.
type laScratch struct {
	x                   []int
	noise, lg, rw, grad []float64
}

// scratchBufs returns the environment's scratch buffers.
func (e *Env) scratchBufs() *engineScratch {
	if e.scratch == nil {
		e.scratch = &engineScratch{}
	}
	return e.scratch
}

// grow returns (*buf)[:n], reallocating when the capacity is short.
func grow(buf *[]float64, n int) []float64 {
	if cap(*buf) < n {
		*buf = make([]float64, n)
	}
	*buf = (*buf)[:n]
	return *buf
}

func growInts(buf *[]int, n int) []int {
	if cap(*buf) < n {
		*buf = make([]int, n)
	}
	*buf = (*buf)[:n]
	return *buf
}

// rewards evaluates the target's reward on n = len(out) sequences in
// chunks of RewardBatch on the workers, and rejects NaN and +Inf (−Inf is
// allowed: it kills a particle). what names the sequences in errors.
func (e *Env) rewards(x0 []int, out []float64, what string) error {
	L := e.L
	err := forChunks(len(out), e.RewardBatch, e.Workers, func(_, start, count int) error {
		return e.Target.Reward.Reward(x0[start*L:(start+count)*L], out[start:start+count])
	})
	if err != nil {
		return fmt.Errorf("smc: reward: %w", err)
	}
	e.countRewards(len(out)) // cost hook (cost.go)
	return checkRewards(out, what)
}

// checkRewards rejects NaN and +Inf rewards, naming the first offender.
func checkRewards(r []float64, what string) error {
	for i, v := range r {
		if math.IsNaN(v) {
			return fmt.Errorf("smc: reward of %s %d is NaN", what, i)
		}
		if math.IsInf(v, 1) {
			return fmt.Errorf("smc: reward of %s %d is +Inf", what, i)
		}
	}
	return nil
}

// Twist estimates the look-ahead potential ψ_t(x_t) of the tempered
// intermediate target π_t(x_t) ∝ p_θ(x_t)·ψ_t(x_t), where
// log ψ_t(x_t) ≈ log E_{p_θ(x0|x_t)} exp(λ_t·r(x0)/α) (paper.md §1.3), and
// the look-ahead reward r̂ = (α/λ)·log ψ. The twists telescope in the
// weights: only the final one, the exact reward, changes the target, so
// every twist gives a consistent sampler; better twists give better ESS.
type Twist interface {
	// Name identifies the twist in traces and summaries.
	Name() string
	// Eval writes log ψ and r̂ for the n = len(logPsi) particles x (n·L
	// tokens, V = MASK) at time t with exponent λ, given their base
	// evaluations ev (n·Base.Width()). grad is nil unless Differentiable;
	// then it receives ∂r̂/∂onehot(x_t), n·L·(V+1).
	Eval(rng *rand.Rand, env *Env, x []int, ev []float64, t, lambda float64, logPsi, rhat, grad []float64) error
	// Deterministic reports whether log ψ is a fixed function of x (no
	// Monte Carlo), as the locally optimal proposal requires.
	Deterministic() bool
	// Differentiable reports whether Eval fills grad.
	Differentiable() bool
}

// NoTwist is ψ ≡ 1 (r̂ = 0): plain importance sampling of the path with
// only the final reward weight, as in best-of-N or unweighted sampling.
type NoTwist struct{}

// Name implements Twist.
func (NoTwist) Name() string { return "none" }

// Eval implements Twist.
func (NoTwist) Eval(_ *rand.Rand, _ *Env, _ []int, _ []float64, _, _ float64, logPsi, rhat, _ []float64) error {
	clear(logPsi)
	clear(rhat)
	return nil
}

// Deterministic implements Twist.
func (NoTwist) Deterministic() bool { return true }

// Differentiable implements Twist.
func (NoTwist) Differentiable() bool { return false }

// LookAhead is the Monte Carlo look-ahead of paper.md §1.3: φ samples
// x0^(k) ~ p_θ(x0 | x_t), drawn independently per position from the base's
// x0-logits at masked positions with unmasked tokens carried over, and
// log ψ = log (1/φ) Σ_k exp(λ·r(x0^(k))/α) (log-mean-exp).
type LookAhead struct {
	// Phi is the number of samples φ ≥ 1.
	Phi int
}

// Name implements Twist.
func (la LookAhead) Name() string { return fmt.Sprintf("mc(phi=%d)", la.Phi) }

// Deterministic implements Twist.
func (LookAhead) Deterministic() bool { return false }

// Differentiable implements Twist.
func (LookAhead) Differentiable() bool { return false }

// Eval implements Twist.
func (la LookAhead) Eval(rng *rand.Rand, env *Env, x []int, ev []float64, t, lambda float64, logPsi, rhat, _ []float64) error {
	x0, err := la.sample(rng, env, x, ev)
	if err != nil {
		return err
	}
	return la.score(env, x0, lambda, logPsi, rhat)
}

// sample draws the φ look-ahead samples of each of the n = len(x)/L
// particles (row-major [i][k], n·φ·L tokens).
func (la LookAhead) sample(rng *rand.Rand, env *Env, x []int, ev []float64) ([]int, error) {
	if la.Phi < 1 {
		return nil, fmt.Errorf("smc: look-ahead needs phi >= 1, got %d", la.Phi)
	}
	L, V, phi := env.L, env.V, la.Phi
	n := len(x) / L
	W := env.Target.Base.Width()
	x0 := make([]int, n*phi*L)
	// Particles that share a state share its evaluation, hence its CDFs:
	// those of a block's distinct states are computed on all cores, then
	// the samples are drawn in particle order from the one random stream.
	sc := env.scratchBufs()
	blk := blockFor(n, L*V)
	cdfs := grow(&sc.lcdf, blk*L*V)
	slot, owner := growInts(&sc.lslot, blk), growInts(&sc.lowner, blk)
	for lo := 0; lo < n; lo += blk {
		cnt := min(blk, n-lo)
		nu := distinctStates(x, L, lo, cnt, slot, owner)
		err := prepThenDraw(nu, L*V, func(u int) error {
			i := owner[u]
			cdf := cdfs[u*L*V : (u+1)*L*V]
			logits := env.Target.Base.X0Logits(ev[i*W : (i+1)*W])
			for l, v := range x[i*L : (i+1)*L] {
				if v == V {
					if err := softmaxCDF(logits[l*V:(l+1)*V], cdf[l*V:(l+1)*V]); err != nil {
						return fmt.Errorf("%w (particle %d, position %d)", err, i, l)
					}
				}
			}
			return nil
		}, noDraw)
		if err != nil {
			return nil, err
		}
		for j := range cnt {
			i := lo + j
			xi, cdf := x[i*L:(i+1)*L], cdfs[slot[j]*L*V:(slot[j]+1)*L*V]
			for k := range phi {
				row := x0[(i*phi+k)*L : (i*phi+k+1)*L]
				for l, v := range xi {
					if v != V {
						row[l] = v
						continue
					}
					row[l] = searchCDF(cdf[l*V:(l+1)*V], rng.Float64())
				}
			}
		}
	}
	return x0, nil
}

// score evaluates the rewards of the samples x0 of len(logPsi) particles
// and sets log ψ and r̂.
func (la LookAhead) score(env *Env, x0 []int, lambda float64, logPsi, rhat []float64) error {
	r := make([]float64, len(logPsi)*la.Phi)
	if err := env.rewards(x0, r, "look-ahead sample"); err != nil {
		return err
	}
	tiltedLME(r, la.Phi, lambda/env.Target.Alpha, logPsi, rhat)
	return nil
}

// maxLogit returns the largest of one position's x0-logits, rejecting
// NaN, +Inf and all −Inf.
func maxLogit(logits []float64) (float64, error) { return maxOf(logits, "x0-logit") }

// maxOf returns the largest entry of a row of logits or log-probabilities
// (what names them in errors), rejecting NaN, +Inf and an all −Inf row.
func maxOf(row []float64, what string) (float64, error) {
	m := math.Inf(-1)
	for v, x := range row {
		if x <= m { // the common case: one comparison (false for NaN)
			continue
		}
		if math.IsNaN(x) || math.IsInf(x, 1) {
			return 0, fmt.Errorf("smc: invalid %s %v at token %d", what, x, v)
		}
		m = x
	}
	if math.IsInf(m, -1) {
		return 0, fmt.Errorf("smc: every %s is -Inf (no token has positive probability)", what)
	}
	return m, nil
}

// softmaxCDF writes the cumulative unnormalised softmax of one position's
// logits (cumulativeOf's sums, without its logarithm).
func softmaxCDF(logits, cdf []float64) error {
	_, err := cumulativeSums(logits, cdf, "x0-logit")
	return err
}

// tiltedLME sets log ψ_i = log (1/φ) Σ_k exp(scale·r_ik) and r̂_i =
// log ψ_i / scale from the φ rewards per particle r (row-major [i][k]).
func tiltedLME(r []float64, phi int, scale float64, logPsi, rhat []float64) {
	z := make([]float64, phi)
	for i := range logPsi {
		for k := range phi {
			z[k] = scale * r[i*phi+k]
		}
		logPsi[i] = LogMeanExp(z)
		rhat[i] = logPsi[i] / scale
	}
}

// searchCDF returns the first token whose cumulative mass exceeds
// u·total, which always has positive mass; if rounding leaves none (u·total
// rounds up to the total) it returns the last token with positive mass.
func searchCDF(cdf []float64, u float64) int {
	target := u * cdf[len(cdf)-1]
	j := sort.Search(len(cdf), func(i int) bool { return cdf[i] > target })
	if j == len(cdf) {
		j--
		for j > 0 && cdf[j] == cdf[j-1] {
			j--
		}
	}
	return j
}

// ExactLookAhead is the look-ahead computed by enumeration:
// log ψ(x_t) = log Σ_{x0} p_θ(x0 | x_t)·exp(λ·r(x0)/α), summing over every
// completion of the masked positions under the factorised one-step
// denoiser (the paper's "exact" option for L = 2). For an AdditiveReward the
// sum factorises over positions; otherwise at most MaxEnum completions per
// state are enumerated (0 means 1<<16) and larger states are an error.
type ExactLookAhead struct {
	MaxEnum int
}

// Name implements Twist.
func (ExactLookAhead) Name() string { return "exact" }

// Deterministic implements Twist.
func (ExactLookAhead) Deterministic() bool { return true }

// Differentiable implements Twist.
func (ExactLookAhead) Differentiable() bool { return false }

// Eval implements Twist.
func (e ExactLookAhead) Eval(_ *rand.Rand, env *Env, x []int, ev []float64, t, lambda float64, logPsi, rhat, _ []float64) error {
	L, V := env.L, env.V
	W := env.Target.Base.Width()
	scale := lambda / env.Target.Alpha
	lp := make([]float64, L*V)
	add, isAdd := env.Target.Reward.(AdditiveReward)
	var terms [][]float64
	if isAdd {
		terms = add.Terms()
		if len(terms) != L {
			return fmt.Errorf("smc: additive reward has %d position terms, want L = %d", len(terms), L)
		}
	}
	maxEnum := e.MaxEnum
	if maxEnum <= 0 {
		maxEnum = 1 << 16
	}
	// Particles that share a state share its (deterministic) look-ahead.
	type done struct{ psi, rhat float64 }
	seen := map[string]done{}
	for i := range logPsi {
		key := stateKey(x[i*L : (i+1)*L])
		if d, ok := seen[key]; ok {
			logPsi[i], rhat[i] = d.psi, d.rhat
			continue
		}
		if err := e.one(env, x[i*L:(i+1)*L], env.Target.Base.X0Logits(ev[i*W:(i+1)*W]), i, scale, maxEnum, isAdd, terms, lp, &logPsi[i], &rhat[i]); err != nil {
			return err
		}
		seen[key] = done{logPsi[i], rhat[i]}
	}
	return nil
}

// one computes the exact look-ahead of particle i.
func (e ExactLookAhead) one(env *Env, xi []int, logits []float64, i int, scale float64, maxEnum int, isAdd bool, terms [][]float64, lp []float64, logPsi, rhat *float64) error {
	L, V := env.L, env.V
	var masked []int
	for l, v := range xi {
		if v == V {
			masked = append(masked, l)
			if err := logSoftmax(logits[l*V:(l+1)*V], lp[l*V:(l+1)*V]); err != nil {
				return fmt.Errorf("%w (particle %d, position %d)", err, i, l)
			}
		}
	}
	if isAdd {
		s := 0.0
		z := make([]float64, V)
		for l, v := range xi {
			if len(terms[l]) != V {
				return fmt.Errorf("smc: additive reward position %d has %d terms, want V = %d", l, len(terms[l]), V)
			}
			if v != V {
				s += scale * terms[l][v]
				continue
			}
			for u := range V {
				z[u] = lp[l*V+u] + scale*terms[l][u]
			}
			s += LogSumExp(z)
		}
		if math.IsNaN(s) || math.IsInf(s, 1) {
			return fmt.Errorf("smc: exact look-ahead of particle %d is %v (reward terms must be finite or -Inf)", i, s)
		}
		*logPsi, *rhat = s, s/scale
		return nil
	}
	count := 1
	for range masked {
		if count > maxEnum/V {
			return fmt.Errorf("smc: exact look-ahead of particle %d needs %d^%d completions, more than max_enum = %d",
				i, V, len(masked), maxEnum)
		}
		count *= V
	}
	x0 := make([]int, count*L)
	logp := make([]float64, count)
	for c := range count {
		row := x0[c*L : (c+1)*L]
		copy(row, xi)
		rest, lpc := c, 0.0
		for _, l := range masked {
			u := rest % V
			rest /= V
			row[l] = u
			lpc += lp[l*V+u]
		}
		logp[c] = lpc
	}
	r := make([]float64, count)
	if err := env.rewards(x0, r, "exact look-ahead completion"); err != nil {
		return err
	}
	for c := range count {
		logp[c] += scale * r[c]
	}
	*logPsi = LogSumExp(logp)
	*rhat = *logPsi / scale
	return nil
}

// logSoftmax writes log softmax(logits), rejecting NaN, +Inf and all −Inf.
func logSoftmax(logits, out []float64) error {
	m, err := maxLogit(logits)
	if err != nil {
		return err
	}
	s := 0.0
	for _, x := range logits {
		s += math.Exp(x - m)
	}
	lse := m + math.Log(s)
	for v, x := range logits {
		out[v] = x - lse
	}
	return nil
}

// GradLookAhead is the differentiable look-ahead used by the gradient
// proposal (paper.md §3.2): φ straight-through Gumbel samples from a
// Gorgonia graph (LookAheadGrad, one instance per worker), giving log ψ
// and ∇_{onehot(x_t)} r̂. The engine draws the Gumbel noise from its own
// RNG, so results do not depend on the number of workers.
type GradLookAhead struct {
	Pool []LookAheadGrad
	// Share, when set, receives the x0-logits the look-ahead graph computes
	// at the particles (its forward pass runs the denoiser anyway), and the
	// engine evaluates this twist before the base, so a caching base (a
	// Reverse over time-independent denoisers) need not run the same
	// denoiser a second time. Set it only when every LookAheadGrad wraps
	// the base's own denoiser (same parameters).
	Share LogitPrimer
}

// LogitPrimer accepts x0-logits of states computed outside the base (see
// Reverse.Prime).
type LogitPrimer interface {
	Prime(x []int, logits []float64) error
}

// TimedPrimer is a LogitPrimer that also accepts the logits of
// time-dependent denoisers, for one time t (see Reverse.PrimeAt).
// GradLookAhead.Eval uses PrimeAt when its Share implements it.
type TimedPrimer interface {
	LogitPrimer
	PrimeAt(x []int, t float64, logits []float64) error
}

// primesBase reports whether the engine must evaluate the twist before the
// base: the twist then fills the base's logit cache.
func (g GradLookAhead) primesBase() bool { return g.Share != nil }

// Name implements Twist.
func (g GradLookAhead) Name() string {
	if len(g.Pool) == 0 {
		return "grad"
	}
	return fmt.Sprintf("grad(phi=%d)", g.Pool[0].Phi())
}

// Deterministic implements Twist.
func (GradLookAhead) Deterministic() bool { return false }

// Differentiable implements Twist.
func (GradLookAhead) Differentiable() bool { return true }

// check validates the pool against the run's shape.
func (g GradLookAhead) check(L, V int) error {
	if len(g.Pool) == 0 || g.Pool[0] == nil {
		return fmt.Errorf("smc: gradient look-ahead has no LookAheadGrad")
	}
	B, phi := g.Pool[0].Batch(), g.Pool[0].Phi()
	for i, p := range g.Pool {
		if p == nil {
			return fmt.Errorf("smc: gradient look-ahead %d is nil", i)
		}
		if l, v := p.Shape(); l != L || v != V {
			return fmt.Errorf("smc: gradient look-ahead %d has shape L=%d V=%d, want L=%d V=%d", i, l, v, L, V)
		}
		if p.Batch() != B || p.Phi() != phi || B < 1 || phi < 1 {
			return fmt.Errorf("smc: gradient look-ahead %d has batch %d phi %d, want %d and %d (positive)", i, p.Batch(), p.Phi(), B, phi)
		}
	}
	return nil
}

// Eval implements Twist.
func (g GradLookAhead) Eval(rng *rand.Rand, env *Env, x []int, _ []float64, t, lambda float64, logPsi, rhat, grad []float64) error {
	L, V := env.L, env.V
	if err := g.check(L, V); err != nil {
		return err
	}
	n := len(logPsi)
	if len(grad) != n*L*(V+1) {
		return fmt.Errorf("smc: gradient buffer has length %d, want %d", len(grad), n*L*(V+1))
	}
	noise := grow(&env.scratchBufs().noise, n*g.Pool[0].Phi()*L*V)
	g.drawNoise(rng, x, L, V, g.Pool[0].Phi(), noise)
	return g.evalNoise(env, x, noise, t, lambda, logPsi, rhat, grad)
}

// drawNoise fills noise (length n·φ·L·V for the n = len(x)/L particles
// x, order [b][k][l][v]) with standard Gumbel variates at the positions
// that x leaves masked, in order; the rows of unmasked positions are
// zero. The look-ahead carries an unmasked token over whatever its noise
// (its sample there has no influence on the rewards, and the proposal
// never moves an unmasked token, so the noise's only effect, on the
// gradient at that position, is never used): drawing only the masked rows
// saves the work of the positions already decoded (and of a prompt).
// The exponential draws are sequential (one random stream); the
// logarithms of a large batch are taken on all cores (the values are the
// same as gumbel's, whatever the split).
func (GradLookAhead) drawNoise(rng *rand.Rand, x []int, L, V, phi int, noise []float64) {
	n := len(x) / L
	for b := range n {
		for k := range phi {
			for l := range L {
				row := noise[((b*phi+k)*L+l)*V : ((b*phi+k)*L+l+1)*V]
				if x[b*L+l] != V {
					clear(row)
					continue
				}
				for i := range row {
					e := rng.ExpFloat64()
					for e == 0 { // see gumbel
						e = rng.ExpFloat64()
					}
					row[i] = e
				}
			}
		}
	}
	negLog := func(a []float64) {
		for i, e := range a {
			if e != 0 {
				a[i] = -math.Log(e)
			}
		}
	}
	par.Ranges(len(noise), len(noise), func(lo, hi int) { negLog(noise[lo:hi]) })
}

// evalNoise is Eval with the Gumbel noise (n·φ·L·V) already drawn.
func (g GradLookAhead) evalNoise(env *Env, x []int, noise []float64, t, lambda float64, logPsi, rhat, grad []float64) error {
	L, V := env.L, env.V
	n := len(logPsi)
	B, phi := g.Pool[0].Batch(), g.Pool[0].Phi()
	scale := lambda / env.Target.Alpha
	sc := env.scratchBufs()
	r := grow(&sc.r, n*phi)
	var logits []float64
	if g.Share != nil {
		logits = grow(&sc.logits, n*L*V)
	}
	workers := max(1, min(env.Workers, len(g.Pool)))
	if len(sc.pad) < workers {
		sc.pad = make([]laScratch, workers)
	}
	err := forChunks(n, B, workers, func(w, start, count int) error {
		s := &sc.pad[w]
		if count == B { // a full chunk reads and writes the caller's slices
			lg := logits
			if lg == nil {
				lg = grow(&s.lg, B*L*V)
			} else {
				lg = lg[start*L*V : (start+count)*L*V]
			}
			if err := g.Pool[w].ValueGrad(x[start*L:(start+count)*L], t, scale, noise[start*phi*L*V:(start+count)*phi*L*V],
				lg, r[start*phi:(start+count)*phi], grad[start*L*(V+1):(start+count)*L*(V+1)]); err != nil {
				return fmt.Errorf("smc: gradient look-ahead: %w", err)
			}
			return nil
		}
		xs := growInts(&s.x, B*L)
		copy(xs, x[start*L:(start+count)*L])
		for i := count * L; i < len(xs); i++ {
			xs[i] = V
		}
		nz := grow(&s.noise, B*phi*L*V)
		clear(nz)
		copy(nz, noise[start*phi*L*V:(start+count)*phi*L*V])
		lg, rw, gr := grow(&s.lg, B*L*V), grow(&s.rw, B*phi), grow(&s.grad, B*L*(V+1))
		if err := g.Pool[w].ValueGrad(xs, t, scale, nz, lg, rw, gr); err != nil {
			return fmt.Errorf("smc: gradient look-ahead: %w", err)
		}
		copy(r[start*phi:(start+count)*phi], rw[:count*phi])
		copy(grad[start*L*(V+1):(start+count)*L*(V+1)], gr[:count*L*(V+1)])
		if logits != nil {
			copy(logits[start*L*V:(start+count)*L*V], lg[:count*L*V])
		}
		return nil
	})
	if err != nil {
		return err
	}
	if logits != nil {
		if tp, ok := g.Share.(TimedPrimer); ok {
			if err := tp.PrimeAt(x, t, logits); err != nil {
				return err
			}
		} else if err := g.Share.Prime(x, logits); err != nil {
			return err
		}
	}
	env.countGrad(n, phi) // cost hook (cost.go)
	if err := checkRewards(r, "look-ahead sample"); err != nil {
		return err
	}
	for i, v := range grad {
		if v-v != 0 { // NaN or ±Inf (one pass over a large buffer)
			return fmt.Errorf("smc: look-ahead gradient of particle %d is %v", i/(L*(V+1)), v)
		}
	}
	tiltedLME(r, phi, scale, logPsi, rhat)
	return nil
}

// gumbel draws a standard Gumbel variate as −log E with E ~ Exp(1).
// rand.ExpFloat64 returns exactly 0 with probability 2^-32 (a run of the
// gradient proposal draws ~10^8 variates), which would give +Inf, so such
// draws are repeated.
func gumbel(rng *rand.Rand) float64 {
	for {
		if e := rng.ExpFloat64(); e > 0 {
			return -math.Log(e)
		}
	}
}
