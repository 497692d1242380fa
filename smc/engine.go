package smc

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/ddsmc/ddsmc/diffusion"
)

// Target is the model side of a run (what to sample): the base path
// kernel and the reward tilt, π(x0) ∝ m(x0)·exp(r(x0)/α), where m is the
// base's path marginal (p_θ for Reverse). A nil Reward means r ≡ 0.
type Target struct {
	Base   Base
	Reward Reward
	Alpha  float64 // the KL weight α > 0
}

// Validate checks the target.
func (tg Target) Validate() error {
	if tg.Base == nil {
		return fmt.Errorf("smc: target has no base kernel")
	}
	if !(tg.Alpha > 0) || math.IsInf(tg.Alpha, 1) {
		return fmt.Errorf("smc: alpha = %v must be positive and finite", tg.Alpha)
	}
	return nil
}

// zeroReward is r ≡ 0.
type zeroReward struct{}

func (zeroReward) Reward(_ []int, out []float64) error { clear(out); return nil }

// Config is the algorithm side of a run (how to sample).
type Config struct {
	// N is the number of particles.
	N int
	// Grid is the reverse time grid, Grid[0] = 0 < … < Grid[T] = 1.
	Grid diffusion.Grid
	// Lambda is the tempering schedule of the intermediate targets.
	Lambda Lambda
	// Twist estimates the look-ahead potentials (nil: NoTwist).
	Twist Twist
	// Proposal moves the particles (nil: ReverseProposal).
	Proposal Proposal
	// Resampler and Trigger decide how and when to resample
	// (nil Resampler: Systematic).
	Resampler Resampler
	Trigger   Trigger
	// Final selects the output particles (zero value: FinalResample).
	Final Final
	// Workers is the number of goroutines for network and reward calls
	// (results do not depend on it). 0 means 1.
	Workers int
	// RewardBatch is the number of sequences per Reward call (0 = 256).
	RewardBatch int
	// Clamp, if set (length L), fixes positions to tokens: Clamp[l] ≥ 0 is
	// the token of position l, −1 leaves it free. A prompt prefix or any
	// infilling pattern. Clamped positions start unmasked and, since every
	// kernel carries unmasked tokens over (SUBS), are never proposed, and
	// weights and resampling treat them like the rest: the target is the
	// conditional π(x0 | clamp) ∝ p(x0 | x_T = clamp)·exp(r(x0)/α), which
	// ExactTargetFrom enumerates. It needs η = 0 (ReMDM would remask them).
	Clamp []int
}

// Sampler runs SMC for one target and configuration. It is not safe for
// concurrent use; build one per goroutine.
type Sampler struct {
	env   Env
	cfg   Config
	T     int
	width int // base evaluation width
	pw    int // proposal evaluation width
	pev   ProposalEvaluator
}

// New validates the target and configuration and returns a sampler.
func New(target Target, cfg Config) (*Sampler, error) {
	if err := target.Validate(); err != nil {
		return nil, err
	}
	if target.Reward == nil {
		target.Reward = zeroReward{}
	}
	if cfg.N < 1 {
		return nil, fmt.Errorf("smc: N = %d particles, need at least 1", cfg.N)
	}
	if err := cfg.Grid.Validate(); err != nil {
		return nil, err
	}
	T := cfg.Grid.Steps()
	if err := cfg.Lambda.Validate(T); err != nil {
		return nil, err
	}
	if cfg.Twist == nil {
		cfg.Twist = NoTwist{}
	}
	if err := checkAdaptive(cfg); err != nil { // adaptive.go
		return nil, err
	}
	if cfg.Proposal == nil {
		cfg.Proposal = ReverseProposal{}
	}
	if cfg.Resampler == nil {
		cfg.Resampler = Systematic
	}
	if err := cfg.Trigger.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.Final.Validate(); err != nil {
		return nil, err
	}
	cfg.Workers = max(cfg.Workers, 1)
	if cfg.RewardBatch <= 0 {
		cfg.RewardBatch = 256
	}
	L, V := target.Base.Shape()
	if L < 1 || V < 1 {
		return nil, fmt.Errorf("smc: base shape L=%d V=%d invalid", L, V)
	}
	if err := checkClamp(cfg.Clamp, target.Base, L, V); err != nil {
		return nil, err
	}
	if g, ok := cfg.Twist.(GradLookAhead); ok {
		if err := g.check(L, V); err != nil {
			return nil, err
		}
	}
	if _, ok := cfg.Proposal.(GradProposal); ok && !cfg.Twist.Differentiable() {
		return nil, fmt.Errorf("smc: the gradient proposal needs a differentiable look-ahead twist (twist = grad), got %s", cfg.Twist.Name())
	}
	if g, ok := cfg.Proposal.(GradProposal); ok {
		if err := g.Validate(); err != nil {
			return nil, err
		}
	}
	if q, ok := cfg.Proposal.(*Learned); ok {
		if ql, qv := q.Shape(); ql != L || qv != V {
			return nil, fmt.Errorf("smc: learned proposal is for L=%d, V=%d but the target's base has L=%d, V=%d", ql, qv, L, V)
		}
	}
	if _, ok := cfg.Proposal.(LOP); ok && !cfg.Twist.Deterministic() {
		return nil, fmt.Errorf("smc: the locally optimal proposal needs a deterministic twist (twist = exact), got %s", cfg.Twist.Name())
	}
	s := &Sampler{
		env:   Env{L: L, V: V, Target: target, Workers: cfg.Workers, RewardBatch: cfg.RewardBatch},
		cfg:   cfg,
		T:     T,
		width: target.Base.Width(),
	}
	if pe, ok := cfg.Proposal.(ProposalEvaluator); ok {
		s.pev, s.pw = pe, pe.Width()
	}
	return s, nil
}

// Env returns the sampler's environment (shape, target, execution).
func (s *Sampler) Env() *Env { return &s.env }

// Steps returns T, the number of reverse steps.
func (s *Sampler) Steps() int { return s.T }

// State is the particle system after Step reverse steps, at time
// Grid[T−Step]. Slices are indexed by particle; per-particle rows are
// contiguous. LogW is normalised (log Σ exp = 0). Step replaces the slices
// or rewrites them in place (resampling reuses the storage of Ev, Pv and
// Grad): copy what must outlive a step.
type State struct {
	Step   int
	X      []int     // N·L tokens (V = MASK)
	LogW   []float64 // normalised log-weights
	LogPsi []float64 // log ψ at X (the exact r(x0)/α once Step = T)
	Rhat   []float64 // look-ahead reward r̂ at X (the exact reward once Step = T)
	Ev     []float64 // base evaluations at X (N·Base.Width())
	Pv     []float64 // proposal evaluations at X (ProposalEvaluator only)
	Grad   []float64 // ∂r̂/∂onehot(X) (differentiable twists only)
	Origin []int     // index of the initial particle each descends from
	LogZ   float64   // log Ẑ so far

	lambda float64                          // current λ of an adaptive schedule (adaptive.go)
	cost   costMark                         // where the run's work counts start (cost.go)
	spare  struct{ ev, pv, grad []float64 } // resampling's scratch rows (gatherInPlace)
}

// Info describes one step: the trace row of paper-style diagnostics.
type Info struct {
	Step       int       `json:"step"`        // steps taken after this one (0 = initialisation)
	T          float64   `json:"t"`           // time after the step
	Lambda     float64   `json:"lambda"`      // tempering exponent at T (1 at the end; the adaptive schedule's choice)
	ESS        float64   `json:"ess"`         // ESS/N after reweighting, before resampling
	Resampled  bool      `json:"resampled"`   // whether the particles were resampled
	RhatMean   float64   `json:"rhat_mean"`   // weighted mean look-ahead reward (before resampling)
	RhatMax    float64   `json:"rhat_max"`    // maximum look-ahead reward
	LogWSpread float64   `json:"logw_spread"` // max − min finite log-weight before resampling
	Unique     int       `json:"unique"`      // distinct initial ancestors after the step
	LogZ       float64   `json:"log_z"`       // log Ẑ so far
	Dead       int       `json:"dead"`        // particles with zero weight before resampling
	Cost       Cost      `json:"cost"`        // work so far (cost.go; no wall time)
	Increments []float64 `json:"-"`           // incremental log-weights of this step
	LogQ       []float64 `json:"-"`           // log q(x_s|x_t) of this step's proposal, per particle
	LogK       []float64 `json:"-"`           // log k(x_s|x_t) of the target's path kernel, per particle
}

// Init returns the initial state: N all-mask particles at t = 1, weighted
// by their initial twist log ψ_T(x_T) (identical states, but Monte Carlo
// twists differ between particles), so that the weights telescope to
// exp(r(x0)/α)·k/q along each path.
func (s *Sampler) Init(rng *rand.Rand) (*State, Info, error) {
	if rng == nil {
		return nil, Info{}, fmt.Errorf("smc: Init needs a non-nil rng")
	}
	st := s.newState()
	t, lambda := s.initTime()
	if err := s.evaluate(rng, st, t, lambda); err != nil {
		return nil, Info{}, fmt.Errorf("smc: initialisation (t=%v): %w", t, err)
	}
	return s.initWeights(rng, st)
}

// newState allocates the all-mask initial state (before evaluation).
func (s *Sampler) newState() *State {
	N, L, V := s.cfg.N, s.env.L, s.env.V
	st := &State{
		X:      make([]int, N*L),
		LogW:   make([]float64, N),
		LogPsi: make([]float64, N),
		Rhat:   make([]float64, N),
		Ev:     make([]float64, N*s.width),
		Origin: make([]int, N),
	}
	for i := range st.X {
		st.X[i] = V
		if c := s.cfg.Clamp; c != nil && c[i%L] >= 0 {
			st.X[i] = c[i%L]
		}
	}
	for i := range st.Origin {
		st.Origin[i] = i
	}
	st.cost = s.beginRun() // cost.go
	if s.pev != nil {
		st.Pv = make([]float64, N*s.pw)
	}
	if s.cfg.Twist.Differentiable() {
		st.Grad = make([]float64, N*L*(V+1))
	}
	return st
}

// initTime returns the initial time t = 1 and its tempering exponent.
func (s *Sampler) initTime() (t, lambda float64) {
	t = s.cfg.Grid[s.T]
	return t, s.cfg.Lambda.At(0, s.T, t)
}

// initWeights finishes Init on an evaluated initial state.
func (s *Sampler) initWeights(rng *rand.Rand, st *State) (*State, Info, error) {
	N := s.cfg.N
	t, lambda := s.initTime()
	inc := make([]float64, N)
	for i := range N {
		st.LogW[i] = -math.Log(float64(N))
		inc[i] = st.LogPsi[i]
	}
	info, err := s.reweight(st, inc, lambda, t)
	if err != nil {
		return nil, Info{}, fmt.Errorf("smc: initialisation (t=%v): %w", t, err)
	}
	if err := s.maybeResample(rng, st, &info); err != nil {
		return nil, info, err
	}
	return st, info, nil
}

// evaluate runs the networks and the twist at the current particles.
// A twist that primes the base's logit cache (GradLookAhead.Share) runs
// first; it does not read the base's outputs, and the base draws no random
// numbers, so the order does not change the random stream.
func (s *Sampler) evaluate(rng *rand.Rand, st *State, t, lambda float64) error {
	first := false
	if p, ok := s.cfg.Twist.(interface{ primesBase() bool }); ok && p.primesBase() {
		first = true
		if err := s.cfg.Twist.Eval(rng, &s.env, st.X, nil, t, lambda, st.LogPsi, st.Rhat, st.Grad); err != nil {
			return err
		}
	}
	if err := s.env.Target.Base.Eval(st.X, t, st.Ev, s.cfg.Workers); err != nil {
		return err
	}
	if s.pev != nil {
		if err := s.pev.Eval(st.X, t, st.Pv, s.cfg.Workers); err != nil {
			return err
		}
	}
	if first {
		return nil
	}
	return s.cfg.Twist.Eval(rng, &s.env, st.X, st.Ev, t, lambda, st.LogPsi, st.Rhat, st.Grad)
}

// Step advances the particles one reverse step, from t = Grid[T−i] to
// s = Grid[T−i−1], as in the paper's algorithm (§5.1):
//
//  1. propose  x_s ~ q(· | x_t), with exact log q and log k;
//  2. reweight log w += log k − log q + log ψ_s(x_s) − log ψ_t(x_t),
//     where ψ at s = 0 is the exact exp(r(x0)/α), and accumulate log Ẑ;
//  3. resample if the trigger fires (never after the last step: the
//     final selection does that).
//
// It updates st in place and returns the step's diagnostics.
func (s *Sampler) Step(rng *rand.Rand, st *State) (Info, error) {
	if rng == nil || st == nil {
		return Info{}, fmt.Errorf("smc: Step needs a non-nil rng and state")
	}
	if st.Step >= s.T {
		return Info{}, fmt.Errorf("smc: the run is finished (%d of %d steps)", st.Step, s.T)
	}
	p, err := s.propose(rng, st)
	if err != nil {
		return Info{}, err
	}
	switch {
	case p.final:
		err = s.finalRewards(st)
	case s.adaptive(): // adaptive.go: evaluate, then choose λ_s
		err = s.adaptStep(rng, st, p)
	default:
		err = s.evaluate(rng, st, p.s, p.lambdaS)
	}
	if err != nil {
		return Info{}, p.wrap(err)
	}
	return s.stepWeights(rng, st, p)
}

// pending is a step between its proposal and its reweighting.
type pending struct {
	i                   int
	t, s, lambdaS       float64
	final               bool
	logq, logk, prevPsi []float64
}

func (p *pending) wrap(err error) error {
	return wrapf(err, "step %d (t=%.4g -> s=%.4g)", p.i+1, p.t, p.s)
}

// propose performs step 1: it moves st.X to the proposed x_s and advances
// st.Step; the twist at the new state is still to be evaluated.
func (s *Sampler) propose(rng *rand.Rand, st *State) (*pending, error) {
	N, L := s.cfg.N, s.env.L
	i := st.Step
	p := &pending{i: i, t: s.cfg.Grid[s.T-i], s: s.cfg.Grid[s.T-i-1], final: i+1 == s.T, lambdaS: 1}
	if !p.final {
		p.lambdaS = s.cfg.Lambda.At(i+1, s.T, p.s)
		if s.adaptive() { // the proposal sees λ_t; adaptStep chooses λ_s
			p.lambdaS = max(st.lambda, LambdaFloor)
		}
	}
	xs := make([]int, N*L)
	p.logq = make([]float64, N)
	p.logk = make([]float64, N)
	mv := &Move{Step: i, T: p.t, S: p.s, LambdaS: p.lambdaS, X: st.X, Ev: st.Ev, Pv: st.Pv, Grad: st.Grad, Twist: s.cfg.Twist, Final: p.final}
	if err := s.cfg.Proposal.Propose(rng, &s.env, mv, xs, p.logq, p.logk); err != nil {
		return nil, p.wrap(err)
	}
	for j := range N {
		if math.IsNaN(p.logq[j]) || math.IsInf(p.logq[j], 0) {
			return nil, p.wrap(fmt.Errorf("proposal %s gave log q = %v for particle %d (it sampled a state it gives no mass)", s.cfg.Proposal.Name(), p.logq[j], j))
		}
	}
	p.prevPsi = append([]float64(nil), st.LogPsi...)
	st.X = xs
	st.Step++
	return p, nil
}

// finalRewards sets the exact rewards and log ψ = r/α at the clean state.
func (s *Sampler) finalRewards(st *State) error {
	if err := s.env.rewards(st.X, st.Rhat, "final particle"); err != nil {
		return err
	}
	for j, r := range st.Rhat {
		st.LogPsi[j] = r / s.env.Target.Alpha
	}
	return nil
}

// stepWeights performs steps 2 and 3 once the twist at the new state is
// known.
func (s *Sampler) stepWeights(rng *rand.Rand, st *State, p *pending) (Info, error) {
	N := s.cfg.N
	inc := make([]float64, N)
	for j := range N {
		inc[j] = p.logk[j] - p.logq[j] + st.LogPsi[j] - p.prevPsi[j]
		if math.IsNaN(inc[j]) {
			return Info{}, p.wrap(fmt.Errorf("incremental log-weight of particle %d is NaN (log k %v, log q %v, log psi %v -> %v)",
				j, p.logk[j], p.logq[j], p.prevPsi[j], st.LogPsi[j]))
		}
	}
	info, err := s.reweight(st, inc, p.lambdaS, p.s)
	if err != nil {
		return info, p.wrap(err)
	}
	info.LogQ, info.LogK = p.logq, p.logk
	if !p.final {
		if err := s.maybeResample(rng, st, &info); err != nil {
			return info, p.wrap(err)
		}
	}
	return info, nil
}

// reweight adds the increments to the normalised log-weights, accumulates
// log Ẑ (log Σ_i W_i·exp(inc_i), correct whether or not the previous step
// resampled) and fills the diagnostics.
func (s *Sampler) reweight(st *State, inc []float64, lambda, t float64) (Info, error) {
	N := s.cfg.N
	info := Info{Step: st.Step, T: t, Lambda: lambda, Increments: inc}
	lw := make([]float64, N)
	dead := 0
	for j := range N {
		lw[j] = st.LogW[j] + inc[j]
		if math.IsInf(lw[j], -1) {
			dead++
		}
	}
	if dead == N {
		return info, fmt.Errorf("all %d log-weights are -Inf: %s", N, s.deathCause(st, inc))
	}
	lse, err := Normalize(lw, st.LogW)
	if err != nil {
		return info, err
	}
	st.LogZ += lse
	info.LogZ = st.LogZ
	info.ESS = ESS(st.LogW) / float64(N)
	info.Dead = dead
	lo, hi := math.Inf(1), math.Inf(-1)
	info.RhatMax = math.Inf(-1)
	for j, l := range st.LogW {
		if !math.IsInf(l, -1) {
			lo, hi = math.Min(lo, l), math.Max(hi, l)
			info.RhatMean += math.Exp(l) * st.Rhat[j]
		}
		info.RhatMax = math.Max(info.RhatMax, st.Rhat[j])
	}
	info.LogWSpread = hi - lo
	info.Unique = countUnique(st.Origin)
	info.Cost = s.costSince(st)
	return info, nil
}

// deathCause explains why every particle was killed.
func (s *Sampler) deathCause(st *State, inc []float64) string {
	psi := 0
	for j := range inc {
		if math.IsInf(st.LogPsi[j], -1) {
			psi++
		}
	}
	switch {
	case psi == len(inc):
		return "the reward (or look-ahead reward) is -Inf for every particle"
	case psi > 0:
		return fmt.Sprintf("%d particles have a -Inf (look-ahead) reward, the others had zero weight or left the target's support", psi)
	default:
		return "every particle had zero weight or moved to a state of zero target probability"
	}
}

// countUnique returns the number of distinct values in a.
func countUnique(a []int) int {
	seen := make(map[int]struct{}, len(a))
	for _, v := range a {
		seen[v] = struct{}{}
	}
	return len(seen)
}

// maybeResample resamples if the trigger fires, permuting every
// per-particle array by the ancestors.
func (s *Sampler) maybeResample(rng *rand.Rand, st *State, info *Info) error {
	if !s.cfg.Trigger.Fire(st.Step, info.ESS) {
		return nil
	}
	if err := s.resample(rng, st, s.cfg.Resampler); err != nil {
		return err
	}
	info.Resampled = true
	info.Unique = countUnique(st.Origin)
	return nil
}

// resample draws ancestors with r and permutes the state.
func (s *Sampler) resample(rng *rand.Rand, st *State, r Resampler) error {
	return s.resampleState(rng, st, r, true)
}

// resampleState is resample; without evals it leaves the per-particle
// evaluations (Ev, Pv, Grad) alone, for a final selection that outputs
// only the states, rewards and weights.
func (s *Sampler) resampleState(rng *rand.Rand, st *State, r Resampler, evals bool) error {
	N, L := s.cfg.N, s.env.L
	anc := make([]int, N)
	out := make([]float64, N)
	if err := r.Resample(rng, st.LogW, anc, out); err != nil {
		return err
	}
	st.X = gatherInts(st.X, anc, L)
	st.Origin = gatherInts(st.Origin, anc, 1)
	st.LogPsi = gather(st.LogPsi, anc, 1)
	st.Rhat = gather(st.Rhat, anc, 1)
	st.LogW = out
	if !evals {
		return nil
	}
	// the large per-particle arrays are permuted in place: only the rows
	// whose ancestor is another particle are written (the transformer's
	// rows are 1 MB each)
	gatherInPlace(st.Ev, anc, s.width, &st.spare.ev)
	if st.Pv != nil {
		gatherInPlace(st.Pv, anc, s.pw, &st.spare.pv)
	}
	if st.Grad != nil {
		gatherInPlace(st.Grad, anc, L*(s.env.V+1), &st.spare.grad)
	}
	return nil
}

// gatherInPlace sets row j of a (rows of width w) to the old row anc[j],
// writing only the rows whose ancestor is another row. The old rows that
// are both overwritten and read by another row are first saved in scratch
// (grown as needed), so a resampling that keeps most particles in place
// copies little, and the result equals gather's.
func gatherInPlace(a []float64, anc []int, w int, scratch *[]float64) {
	n := len(anc)
	saved := make([]int, n) // old row p → 1 + its slot in scratch, or 0
	count := 0
	for j, p := range anc {
		if p != j && anc[p] != p && saved[p] == 0 {
			count++
			saved[p] = count
		}
	}
	buf := grow(scratch, count*w)
	for p, k := range saved {
		if k > 0 {
			copy(buf[(k-1)*w:k*w], a[p*w:(p+1)*w])
		}
	}
	for j, p := range anc {
		if p == j {
			continue
		}
		src := a[p*w : (p+1)*w] // row p stays in place: its ancestor is itself
		if k := saved[p]; k > 0 {
			src = buf[(k-1)*w : k*w]
		}
		copy(a[j*w:(j+1)*w], src)
	}
}

func gather(a []float64, anc []int, w int) []float64 {
	out := make([]float64, len(anc)*w)
	for j, p := range anc {
		copy(out[j*w:(j+1)*w], a[p*w:(p+1)*w])
	}
	return out
}

func gatherInts(a []int, anc []int, w int) []int {
	out := make([]int, len(anc)*w)
	for j, p := range anc {
		copy(out[j*w:(j+1)*w], a[p*w:(p+1)*w])
	}
	return out
}

// checkClamp validates a clamp pattern against the base.
func checkClamp(c []int, b Base, L, V int) error {
	if c == nil {
		return nil
	}
	if len(c) != L {
		return fmt.Errorf("smc: clamp has %d positions, the sequences %d", len(c), L)
	}
	for l, v := range c {
		if v < -1 || v >= V {
			return fmt.Errorf("smc: clamp position %d = %d: want a token in [0, %d) or -1 (free)", l, v, V)
		}
	}
	if kb, ok := b.(KernelBase); ok && kb.Kernel().Eta > 0 {
		return fmt.Errorf("smc: clamping needs eta = 0: ReMDM remasking (eta = %v) would remask the clamped positions", kb.Kernel().Eta)
	}
	return nil
}
