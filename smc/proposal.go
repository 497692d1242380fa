package smc

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/ddsmc/ddsmc/diffusion"
	"github.com/ddsmc/ddsmc/internal/vmath"
)

// Move is what a proposal sees of the particles when moving them from time
// T to time S (S < T) at reverse step Step (steps taken so far).
type Move struct {
	Step    int
	T, S    float64
	LambdaS float64   // tempering exponent at the destination time S
	X       []int     // current particles, N·L tokens
	Ev      []float64 // their base evaluations, N·Base.Width()
	Pv      []float64 // the proposal's own evaluations (ProposalEvaluator), N·Width()
	Grad    []float64 // ∂r̂/∂onehot(x_t), N·L·(V+1), when the twist is differentiable
	Twist   Twist     // the run's twist (the locally optimal proposal evaluates it)
	Final   bool      // S is the last time (0): the twist is the exact reward
}

// Proposal moves particles one reverse step: it samples x_s ~ q(· | x_t)
// and reports the exact log q(x_s | x_t) together with the target's path
// log-kernel log k(x_s | x_t), so that the engine's incremental weight
//
//	log w_s − log w_t = log k(x_s|x_t) − log q(x_s|x_t) + log ψ_s(x_s) − log ψ_t(x_t)
//
// is exact for every proposal (paper.md §2.2).
type Proposal interface {
	// Name identifies the proposal in traces and summaries.
	Name() string
	// Propose writes x_s (N·L tokens), log q and log k (length N).
	Propose(rng *rand.Rand, env *Env, m *Move, xs []int, logq, logk []float64) error
}

// ProposalEvaluator is implemented by proposals with their own network
// (e.g. the amortised q_φ). The engine calls Eval on the particles at each
// time and keeps the evaluations next to them (Move.Pv), permuted on
// resampling like the base's.
type ProposalEvaluator interface {
	Width() int
	Eval(x []int, t float64, out []float64, workers int) error
}

// sampleRow draws v ∝ exp(row[v]) using cdf as scratch (len(row)) and
// returns v and log Σ exp(row). −Inf entries have zero mass; NaN or +Inf,
// or an all −Inf row, is an error.
func sampleRow(rng *rand.Rand, row, cdf []float64) (int, float64, error) {
	lse, err := cumulative(row, cdf)
	if err != nil {
		return 0, 0, err
	}
	return searchCDF(cdf, rng.Float64()), lse, nil
}

// cumulative writes the cumulative sums of exp(row − max) into cdf and
// returns log Σ exp(row), rejecting NaN, +Inf and an all −Inf row of
// proposal log-probabilities.
func cumulative(row, cdf []float64) (float64, error) {
	return cumulativeOf(row, cdf, "proposal log-probability")
}

// cumulativeOf is cumulative for a row of any kind of logits (what names
// them in errors).
func cumulativeOf(row, cdf []float64, what string) (float64, error) {
	m, err := cumulativeSums(row, cdf, what)
	if err != nil {
		return 0, err
	}
	return m + math.Log(cdf[len(cdf)-1]), nil
}

// cumulativeSums writes the cumulative sums of exp(row − max) into cdf and
// returns the maximum, with cumulativeOf's checks.
func cumulativeSums(row, cdf []float64, what string) (float64, error) {
	m, err := maxOf(row, what)
	if err != nil {
		return 0, err
	}
	cdf = cdf[:len(row)]
	finite := 0
	for v, x := range row {
		cdf[v] = x - m
		if x != math.Inf(-1) {
			finite++
		}
	}
	if finite <= len(row)/4 { // mostly −Inf (an unmasked position's row)
		for v, a := range cdf {
			if a == math.Inf(-1) {
				cdf[v] = 0
			} else {
				cdf[v] = math.Exp(a)
			}
		}
	} else {
		vmath.Exp(cdf, cdf) // math.Exp's bits
	}
	s := 0.0 // exp(−Inf) = 0 adds nothing
	for v, e := range cdf {
		s += e
		cdf[v] = s
	}
	return m, nil
}

// sampleRows draws particle i's next state, position by position, from the
// proposal log-probability rows q (L·(V+1), normalised or not) into xs,
// and returns log q(x_s|x_t) and the base log k(x_s|x_t) from rows k.
func sampleRows(rng *rand.Rand, i, L, V int, q, k []float64, xs []int, cdf []float64) (lq, lk float64, err error) {
	for l := range L {
		row := q[l*(V+1) : (l+1)*(V+1)]
		v, lse, err := sampleRow(rng, row, cdf)
		if err != nil {
			return 0, 0, fmt.Errorf("%w (particle %d, position %d)", err, i, l)
		}
		xs[i*L+l] = v
		lq += row[v] - lse
		lk += k[l*(V+1)+v]
	}
	return lq, lk, nil
}

// kernelRows fills k with the base log-kernel of particle i.
func kernelRows(env *Env, m *Move, i int, k []float64) error {
	L := env.L
	W := env.Target.Base.Width()
	if err := env.Target.Base.LogKernel(m.X[i*L:(i+1)*L], m.Ev[i*W:(i+1)*W], m.T, m.S, k); err != nil {
		return fmt.Errorf("%w (particle %d)", err, i)
	}
	return nil
}

// ReverseProposal is the bootstrap proposal ("SMC-base", "SMC-RP"): it
// samples the base kernel itself, normalised per position. For the
// reward-tilted target the kernel is p_θ, so log q = log k and the weights
// are twist ratios only.
type ReverseProposal struct{}

// Name implements Proposal.
func (ReverseProposal) Name() string { return "reverse" }

// Propose implements Proposal. Particles that share a state (within a
// block of particles sized to a memory budget) share its kernel rows,
// cumulative sums and normalisers, computed once; the rows of a block's
// distinct states are computed on all cores, then the block's particles
// are sampled in order from the one random stream (the same draws as a
// serial loop).
func (ReverseProposal) Propose(rng *rand.Rand, env *Env, m *Move, xs []int, logq, logk []float64) error {
	L, V := env.L, env.V
	M := V + 1
	W := L * M
	n := len(logq)
	norm := env.Target.Base.Normalized()
	sc := env.scratchBufs()
	blk := blockFor(n, 2*W+L)
	k, cdf, lse := grow(&sc.pk, blk*W), grow(&sc.pcdf, blk*W), grow(&sc.plse, blk*L)
	slot := growInts(&sc.slot, blk)   // particle j of the block → its state's slot
	owner := growInts(&sc.owner, blk) // state slot u → the block's first particle with it
	for lo := 0; lo < n; lo += blk {
		cnt := min(blk, n-lo)
		nu := distinctStates(m.X, L, lo, cnt, slot, owner)
		err := prepThenDraw(nu, W, func(u int) error {
			i := owner[u]
			rk := k[u*W : (u+1)*W]
			if err := kernelRows(env, m, i, rk); err != nil {
				return err
			}
			for l := range L {
				row, c := rk[l*M:(l+1)*M], cdf[u*W+l*M:u*W+(l+1)*M]
				if norm { // log q = log k: the normaliser is not needed
					if _, err := cumulativeSums(row, c, "proposal log-probability"); err != nil {
						return fmt.Errorf("%w (particle %d, position %d)", err, i, l)
					}
					continue
				}
				v, err := cumulative(row, c)
				if err != nil {
					return fmt.Errorf("%w (particle %d, position %d)", err, i, l)
				}
				lse[u*L+l] = v
			}
			return nil
		}, noDraw)
		if err != nil {
			return err
		}
		for j := range cnt {
			i, u := lo+j, slot[j]
			rk, rc := k[u*W:(u+1)*W], cdf[u*W:(u+1)*W]
			lk, lq := 0.0, 0.0
			for l := range L {
				v := searchCDF(rc[l*M:(l+1)*M], rng.Float64())
				xs[i*L+l] = v
				lk += rk[l*M+v]
				lq += rk[l*M+v] - lse[u*L+l]
			}
			logk[i] = lk
			if norm {
				logq[i] = lk // exact: the kernel is the proposal
			} else {
				logq[i] = lq
			}
		}
	}
	return nil
}

// distinctStates numbers the distinct states of particles lo..lo+cnt−1 of
// x (L tokens each) in order of first appearance: slot[j] is particle
// lo+j's number, owner[u] the first particle with state u. It returns the
// count.
func distinctStates(x []int, L, lo, cnt int, slot, owner []int) int {
	byState := make(map[string]int, cnt)
	nu := 0
	for j := range cnt {
		key := stateKey(x[(lo+j)*L : (lo+j+1)*L])
		u, ok := byState[key]
		if !ok {
			u, byState[key] = nu, nu
			owner[nu] = lo + j
			nu++
		}
		slot[j] = u
	}
	return nu
}

// noDraw is the draw phase of a prepThenDraw that only computes.
func noDraw(int) error { return nil }

// Tilt spaces of the gradient proposal (paper.md §3.3).
const (
	// TiltTransition adds the tilt to the transition log-probabilities
	// over all V+1 outcomes, MASK included, so it also changes the
	// unmasking rate (the paper's language and toy code).
	TiltTransition = "transition"
	// TiltX0 adds the tilt to the x0-logits before the SUBS formula,
	// keeping the unmasking schedule (the paper's DNA code).
	TiltX0 = "x0"
)

// GradProposal is the first-order approximation of the locally optimal
// proposal ("SMC-grad", "SMC-FALOP"; paper.md §3, Eq. (8)):
//
//	q(x_s^l = v | x_t) ∝ k_l(v | x_t)·exp((λ_s/α)·g_l[v]),  g = ∇_{onehot(x_t)} r̂_t(x_t),
//
// per position, so sampling is exact and log q is known. The gradient comes
// from a differentiable twist (GradLookAhead).
type GradProposal struct {
	// Space is TiltTransition (default when empty) or TiltX0.
	Space string
	// Centre subtracts each position's mean gradient before clipping
	// (it does not change an unclipped proposal).
	Centre bool
	// Clip, when > 0, clamps each gradient entry to [−Clip, Clip].
	Clip float64
}

// Name implements Proposal.
func (g GradProposal) Name() string { return "grad" }

// Validate checks the options.
func (g GradProposal) Validate() error {
	if g.Space != "" && g.Space != TiltTransition && g.Space != TiltX0 {
		return fmt.Errorf("smc: gradient proposal tilt space %q: want %q or %q", g.Space, TiltTransition, TiltX0)
	}
	if !(g.Clip >= 0) || math.IsInf(g.Clip, 1) {
		return fmt.Errorf("smc: gradient clip %v must be finite and >= 0", g.Clip)
	}
	return nil
}

// Propose implements Proposal.
func (g GradProposal) Propose(rng *rand.Rand, env *Env, m *Move, xs []int, logq, logk []float64) error {
	if err := g.Validate(); err != nil {
		return err
	}
	L, V := env.L, env.V
	if m.Grad == nil {
		return fmt.Errorf("smc: the gradient proposal needs a differentiable look-ahead twist (twist = grad)")
	}
	scale := m.LambdaS / env.Target.Alpha
	x0 := g.Space == TiltX0
	var kb KernelBase
	if x0 {
		var ok bool
		if kb, ok = env.Target.Base.(KernelBase); !ok {
			return fmt.Errorf("smc: x0-space tilting needs a base with a diffusion kernel")
		}
	}
	M := V + 1
	W := L * M
	Wb := env.Target.Base.Width()
	width := M
	if x0 {
		width = V
	}
	// On all cores: the kernel rows k once per distinct state (of a block
	// of particles sized to a memory budget), then per particle the
	// proposal rows q with their cumulative sums and normalisers; then, in
	// particle order, the draws (the same random stream as a serial loop).
	sc := env.scratchBufs()
	n := len(logq)
	blk := blockFor(n, 4*W+L)
	K, Q, C, LSE := grow(&sc.pk, blk*W), grow(&sc.pq, blk*W), grow(&sc.pcdf, blk*W), grow(&sc.plse, blk*L)
	slot, owner := growInts(&sc.slot, blk), growInts(&sc.owner, blk)
	var lo int // the block's first particle
	prep := func(j int) error {
		i := lo + j
		k, q, cdf := K[slot[j]*W:(slot[j]+1)*W], Q[j*W:(j+1)*W], C[j*W:(j+1)*W]
		gi := q // the tilt is formed in q's row, then replaced by q
		copy(gi, m.Grad[i*W:(i+1)*W])
		for l := range L {
			row := gi[l*M : l*M+width]
			if g.Centre {
				mean := 0.0
				for _, v := range row {
					mean += v
				}
				mean /= float64(width)
				for c := range row {
					row[c] -= mean
				}
			}
			if g.Clip > 0 {
				for c, v := range row {
					row[c] = math.Max(-g.Clip, math.Min(g.Clip, v))
				}
			}
		}
		if x0 {
			logits := cdf[:L*V] // scratch until the cumulative sums
			base := env.Target.Base.X0Logits(m.Ev[i*Wb : (i+1)*Wb])
			for l := range L {
				for v := range V {
					logits[l*V+v] = base[l*V+v] + scale*gi[l*M+v]
				}
			}
			if err := kb.Kernel().PositionLogProbsInto(m.X[i*L:(i+1)*L], logits, m.T, m.S, q); err != nil {
				return fmt.Errorf("%w (particle %d)", err, i)
			}
		} else {
			for c, kv := range k {
				q[c] = kv + scale*gi[c] // −Inf stays −Inf
			}
		}
		for l := range L {
			lse, err := cumulative(q[l*M:(l+1)*M], cdf[l*M:(l+1)*M])
			if err != nil {
				return fmt.Errorf("%w (particle %d, position %d)", err, i, l)
			}
			LSE[j*L+l] = lse
		}
		return nil
	}
	draw := func(j int) error {
		i := lo + j
		k, q, cdf := K[slot[j]*W:(slot[j]+1)*W], Q[j*W:(j+1)*W], C[j*W:(j+1)*W]
		lq, lk := 0.0, 0.0
		for l := range L {
			v := searchCDF(cdf[l*M:(l+1)*M], rng.Float64())
			xs[i*L+l] = v
			lq += q[l*M+v] - LSE[j*L+l]
			lk += k[l*M+v]
		}
		logq[i], logk[i] = lq, lk
		return nil
	}
	for lo = 0; lo < n; lo += blk {
		cnt := min(blk, n-lo)
		nu := distinctStates(m.X, L, lo, cnt, slot, owner)
		if err := prepThenDraw(nu, W, func(u int) error {
			return kernelRows(env, m, owner[u], K[u*W:(u+1)*W])
		}, noDraw); err != nil {
			return err
		}
		if err := prepThenDraw(cnt, 2*W, prep, draw); err != nil {
			return err
		}
	}
	return nil
}

// LOP is the exact locally optimal proposal ("SMC-LOP"; paper.md §2.4,
// Proposition 2): q*(x_s | x_t) ∝ k(x_s | x_t)·ψ_s(x_s), normalised by
// enumerating every joint next state. It needs a deterministic twist (e.g.
// ExactLookAhead); at the last step ψ_0 is the exact reward. With it the
// incremental weight Σ_{x_s} k(x_s|x_t)ψ_s(x_s)/ψ_t(x_t) does not depend on
// the sampled x_s. MaxEnum bounds the joint states per particle (0 means
// 1<<16). Distinct states are evaluated once per step.
type LOP struct {
	MaxEnum int
}

// Name implements Proposal.
func (LOP) Name() string { return "lop" }

// stateKey encodes a token sequence as a map key.
func stateKey(x []int) string {
	b := make([]byte, 4*len(x))
	for i, v := range x {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(v))
	}
	return string(b)
}

// Propose implements Proposal.
func (p LOP) Propose(rng *rand.Rand, env *Env, m *Move, xs []int, logq, logk []float64) error {
	if !m.Final && !m.Twist.Deterministic() {
		return fmt.Errorf("smc: the locally optimal proposal needs a deterministic twist (twist = exact), got %s", m.Twist.Name())
	}
	L, V := env.L, env.V
	maxEnum := p.MaxEnum
	if maxEnum <= 0 {
		maxEnum = 1 << 16
	}
	N := len(logq)
	// Per distinct current state: its candidate next states and their
	// kernel log-probabilities.
	type dist struct {
		cands []int     // indices into states
		lk    []float64 // log k(candidate | x_t)
	}
	byState := map[string]*dist{}
	of := make([]*dist, N)
	index := map[string]int{}
	var states []int
	k := make([]float64, L*(V+1))
	for i := range N {
		key := stateKey(m.X[i*L : (i+1)*L])
		if d, ok := byState[key]; ok {
			of[i] = d
			continue
		}
		if err := kernelRows(env, m, i, k); err != nil {
			return err
		}
		supp := make([][]int, L)
		count := 1
		for l := range L {
			for v := 0; v <= V; v++ {
				if !math.IsInf(k[l*(V+1)+v], -1) {
					supp[l] = append(supp[l], v)
				}
			}
			if len(supp[l]) == 0 {
				return fmt.Errorf("smc: base kernel of particle %d has no support at position %d", i, l)
			}
			if count > maxEnum/len(supp[l]) {
				return fmt.Errorf("smc: locally optimal proposal: particle %d has more than max_enum = %d joint next states", i, maxEnum)
			}
			count *= len(supp[l])
		}
		d := &dist{cands: make([]int, count), lk: make([]float64, count)}
		cand := make([]int, L)
		for c := range count {
			rest, lkc := c, 0.0
			for l := L - 1; l >= 0; l-- {
				v := supp[l][rest%len(supp[l])]
				rest /= len(supp[l])
				cand[l] = v
				lkc += k[l*(V+1)+v]
			}
			ck := stateKey(cand)
			j, ok := index[ck]
			if !ok {
				j = len(index)
				index[ck] = j
				states = append(states, cand...)
			}
			d.cands[c], d.lk[c] = j, lkc
		}
		byState[key], of[i] = d, d
	}
	// Twist of every distinct candidate.
	nS := len(index)
	psi := make([]float64, nS)
	rhat := make([]float64, nS)
	if m.Final {
		if err := env.rewards(states, psi, "candidate final state"); err != nil {
			return err
		}
		for j := range psi {
			psi[j] /= env.Target.Alpha
		}
	} else {
		ev := make([]float64, nS*env.Target.Base.Width())
		if err := env.Target.Base.Eval(states, m.S, ev, env.Workers); err != nil {
			return err
		}
		if err := m.Twist.Eval(rng, env, states, ev, m.S, m.LambdaS, psi, rhat, nil); err != nil {
			return err
		}
	}
	// Sample each particle from its normalised candidate weights.
	var a, cdf []float64
	for i := range N {
		d := of[i]
		if cap(a) < len(d.cands) {
			a, cdf = make([]float64, len(d.cands)), make([]float64, len(d.cands))
		}
		a, cdf = a[:len(d.cands)], cdf[:len(d.cands)]
		for c, j := range d.cands {
			a[c] = d.lk[c] + psi[j]
		}
		c, lse, err := sampleRow(rng, a, cdf)
		if err != nil {
			return fmt.Errorf("smc: locally optimal proposal of particle %d: every next state has zero target mass: %w", i, err)
		}
		j := d.cands[c]
		copy(xs[i*L:(i+1)*L], states[j*L:(j+1)*L])
		logq[i] = a[c] - lse
		logk[i] = d.lk[c]
	}
	return nil
}

// Learned is an amortised proposal q_φ (paper.md §4, "SMC-amot"): the
// SUBS/ReMDM kernel of its own denoiser, one per worker. The weights keep
// the exact ratio k/q_φ, so any q_φ, however badly trained, gives a
// consistent sampler (unlike the reference code's swap of q_φ for the base).
type Learned struct {
	kernel diffusion.Kernel
	pool   *denoiserPool
}

// NewLearned returns the amortised proposal with kernel k and denoisers
// dens (one per worker) called in batches of batch sequences.
func NewLearned(k diffusion.Kernel, dens []diffusion.Denoiser, batch int) (*Learned, error) {
	if err := k.Validate(); err != nil {
		return nil, err
	}
	p, err := newDenoiserPool(dens, batch)
	if err != nil {
		return nil, err
	}
	return &Learned{kernel: k, pool: p}, nil
}

// Name implements Proposal.
func (*Learned) Name() string { return "learned" }

// Width implements ProposalEvaluator: q_φ's x0-logits, L·V.
func (q *Learned) Width() int { return q.pool.l * q.pool.v }

// Eval implements ProposalEvaluator.
func (q *Learned) Eval(x []int, t float64, out []float64, workers int) error {
	return q.pool.logits(x, t, out, workers)
}

// Propose implements Proposal.
func (q *Learned) Propose(rng *rand.Rand, env *Env, m *Move, xs []int, logq, logk []float64) error {
	L, V := env.L, env.V
	if q.pool.l != L || q.pool.v != V {
		return fmt.Errorf("smc: learned proposal has shape L=%d V=%d, the target L=%d V=%d", q.pool.l, q.pool.v, L, V)
	}
	W := L * V
	k := make([]float64, L*(V+1))
	r := make([]float64, L*(V+1))
	cdf := make([]float64, V+1)
	for i := range logq {
		if err := kernelRows(env, m, i, k); err != nil {
			return err
		}
		if err := q.kernel.PositionLogProbsInto(m.X[i*L:(i+1)*L], m.Pv[i*W:(i+1)*W], m.T, m.S, r); err != nil {
			return fmt.Errorf("%w (learned proposal, particle %d)", err, i)
		}
		lq, lk, err := sampleRows(rng, i, L, V, r, k, xs, cdf)
		if err != nil {
			return err
		}
		logq[i], logk[i] = lq, lk
	}
	return nil
}

// Shape returns the sequence length and vocabulary size of q_φ.
func (q *Learned) Shape() (L, V int) { return q.pool.l, q.pool.v }
