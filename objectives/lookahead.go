package objectives

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/ddsmc/ddsmc/graph"
	"github.com/ddsmc/ddsmc/layers"
	"github.com/ddsmc/ddsmc/smc"
)

// RewardGraph builds a differentiable reward on (soft) one-hot clean
// sequences.
type RewardGraph interface {
	// Shape returns (L, V).
	Shape() (L, V int)
	// Build adds to c's graph the rewards of n sequences given as x0 with
	// shape [n·L, V] (rows = positions, soft one-hot over V tokens, no MASK
	// column) and returns a node of shape [n]. It must only read the
	// receiver, so that one RewardGraph can serve several look-aheads.
	Build(c *layers.Ctx, x0 *G.Node, n int) (*G.Node, error)
}

// LinearReward is the additive reward r(x) = Σ_l Terms[l][x_l]
// (smc.TableReward) as a RewardGraph: on soft one-hots S it is
// r(S) = Σ_l ⟨Terms[l], S_l⟩, one mat-vec of S reshaped to [n, L·V] with
// the flattened terms. The terms are copied into the graph when it is
// built.
type LinearReward struct{ Terms [][]float64 }

// Shape implements RewardGraph. A ragged or empty table reports V of its
// first row (or 0); Build rejects it.
func (r LinearReward) Shape() (L, V int) {
	if len(r.Terms) == 0 {
		return 0, 0
	}
	return len(r.Terms), len(r.Terms[0])
}

// Build implements RewardGraph.
func (r LinearReward) Build(c *layers.Ctx, x0 *G.Node, n int) (out *G.Node, err error) {
	L, V := r.Shape()
	if L == 0 || V == 0 {
		return nil, fmt.Errorf("objectives: linear reward has an empty table")
	}
	flat := make([]float64, 0, L*V)
	for l, row := range r.Terms {
		if len(row) != V {
			return nil, fmt.Errorf("objectives: linear reward row %d has %d terms, want V = %d", l, len(row), V)
		}
		for v, x := range row {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, fmt.Errorf("objectives: linear reward term [%d][%d] = %v is not finite", l, v, x)
			}
		}
		flat = append(flat, row...)
	}
	if n <= 0 {
		return nil, fmt.Errorf("objectives: linear reward for %d sequences", n)
	}
	if want := (tensor.Shape{n * L, V}); !x0.Shape().Eq(want) {
		return nil, fmt.Errorf("objectives: linear reward input has shape %v, want %v", x0.Shape(), want)
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("objectives: building linear reward: %v", p)
		}
	}()
	dt := c.Store.DType()
	// a [L·V, 1] matrix through the fused product, whose backward pass
	// (the outer product g·termsᵀ) writes into a buffer it owns
	terms := G.NewMatrix(c.G, dt, G.WithShape(L*V, 1), G.WithName("reward_terms"),
		G.WithValue(layers.NewDense(dt, []int{L * V, 1}, flat)))
	x2 := G.Must(G.Reshape(x0, tensor.Shape{n, L * V}))
	rw, err := layers.MatMulParam(x2, terms, nil) // the terms are constant
	if err != nil {
		return nil, err
	}
	return G.Must(G.Reshape(rw, tensor.Shape{n})), nil
}

// LookAheadConfig configures a LookAhead.
type LookAheadConfig struct {
	Batch int     // B sequences per call (> 0)
	Phi   int     // φ samples per sequence (> 0)
	Tau   float64 // Gumbel-softmax temperature τ (> 0; 0 means 1)
	// Soft selects the relaxed estimator: the samples are the soft
	// Gumbel-softmax y in the forward pass too (for gradient checks).
	// false (default) is straight-through: hard one-hot forward, soft
	// gradient.
	Soft bool
}

func (c LookAheadConfig) validate() (LookAheadConfig, error) {
	switch {
	case c.Batch <= 0:
		return c, fmt.Errorf("objectives: look-ahead Batch = %d: must be positive", c.Batch)
	case c.Phi <= 0:
		return c, fmt.Errorf("objectives: look-ahead Phi = %d: must be positive", c.Phi)
	case math.IsNaN(c.Tau) || math.IsInf(c.Tau, 0) || c.Tau < 0:
		return c, fmt.Errorf("objectives: look-ahead Tau = %v: must be positive and finite (0 means 1)", c.Tau)
	}
	if c.Tau == 0 {
		c.Tau = 1
	}
	return c, nil
}

// LookAhead is the Gorgonia implementation of smc.LookAheadGrad: the
// differentiable look-ahead reward r̂ of paper.md §1.3 and its gradient with
// respect to the one-hot noisy state (§3.2), for a fixed batch of B
// sequences and φ Gumbel samples per sequence.
//
// The graph, for x = onehot(x_t) [B·L, V+1] and internal sample order
// [k][b][l] (permuted to the interface's [b][k][l] when noise is copied in
// and rewards are copied out):
//
//	ℓ      = denoiser logits [B·L, V]             (the model's own Build)
//	z      = noisyTile(ℓ, G) = tile_φ(ℓ) + G       [φ·B·L, V] (G: Gumbel noise input)
//	S      = gumbelST(z): onehot(argmax z) forward, (soft) gradient of
//	         y = softmax(z/τ)                       (Soft: S = y)
//	S'     = carry(x, S) = γ⊙S + x[:, :V],  γ = 1 − Σ_{v<V} x[v]
//	r_k    = reward(S')                           [φ·B] → [B, φ]
//	r̂_b    = (1/scale)·(mean_k(s_k − LogSoftmax(s)_k) − log φ), s = scale·r
//	grad   = ∂(Σ_b r̂_b)/∂x                        [B, L, V+1]
//
// noisyTile, gumbelST and carry are fused custom ops (lookahead_ops.go) with
// hand-derived backward passes, O(rows·V) each way; forming γ and dropping
// the MASK column with constant selector matmuls cost O(B·L·V²), which
// dominated at large vocabularies. The straight-through forward value is
// exactly the hard one-hot, so the reward graph sees the hard carried-over
// samples (for LinearReward in float64 the rewards equal smc.TableReward
// bit for bit in the tests). The argmax is taken on z = ℓ + G in the
// model's dtype (the first maximum wins ties), as the smc interface
// specifies.
//
// A LookAhead is not safe for concurrent use; Clone gives each goroutine
// its own instance. Its parameter nodes read the model's master weights (own
// tensor headers over the same data), so it sees in-place training updates
// of m; do not train m while a LookAhead over it runs.
type LookAhead struct {
	model  *graph.Model
	reward RewardGraph
	cfg    LookAheadConfig
	L, V   int

	in       *graph.Inputs
	noise    *tensor.Dense // [φ·B·L, V], internal order [k][b][l]
	scale    *G.Node       // scalar inputs
	invScale *G.Node
	tvec     []float64 // B copies of t
	vm       G.VM

	logitsV, rewardsV, rhatV, gradV G.Value
	haveRun                         bool
}

var _ smc.LookAheadGrad = (*LookAhead)(nil)

// NewLookAhead compiles the look-ahead graph for model m (its denoiser,
// sharing m's parameters) and reward r.
func NewLookAhead(m *graph.Model, r RewardGraph, cfg LookAheadConfig) (*LookAhead, error) {
	if m == nil {
		return nil, fmt.Errorf("objectives: look-ahead needs a model")
	}
	if r == nil {
		return nil, fmt.Errorf("objectives: look-ahead needs a reward graph")
	}
	cfg, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	L, V := m.Shape()
	if rl, rv := r.Shape(); rl != L || rv != V {
		return nil, fmt.Errorf("objectives: reward shape (L=%d, V=%d) does not match model shape (L=%d, V=%d)", rl, rv, L, V)
	}
	la := &LookAhead{model: m, reward: r, cfg: cfg, L: L, V: V, tvec: make([]float64, cfg.Batch)}
	unlock := graph.LockBuild() // Gorgonia's global counters race when graphs are built concurrently
	defer unlock()
	if err := la.build(); err != nil {
		return nil, err
	}
	return la, nil
}

func (la *LookAhead) build() (err error) {
	B, K, L, V := la.cfg.Batch, la.cfg.Phi, la.L, la.V
	N, M := B*L, K*B*L
	dt := la.model.Store.DType()
	ctx := layers.NewCtx(la.model.Store, false)
	net, err := graph.Build(la.model.Cfg, ctx, B)
	if err != nil {
		return err
	}
	la.in = graph.NewInputs(la.model.Cfg, B)
	if err := la.in.SetClass(la.model.Class()); err != nil {
		return err
	}
	if err := la.in.Bind(net); err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("objectives: building look-ahead: %v", p)
		}
	}()
	xf := G.Must(G.Reshape(net.X, tensor.Shape{N, V + 1}))
	noise := ctx.Input("gumbel", M, V)
	z := G.Must(G.ApplyOp(newNoisyTile(), net.Flat, noise)) // tile_φ(ℓ) + G
	S := G.Must(G.ApplyOp(newGumbelST(la.cfg.Tau, !la.cfg.Soft), z))
	S1 := G.Must(G.ApplyOp(newCarry(), xf, S))
	r, err := la.reward.Build(ctx, S1, K*B)
	if err != nil {
		return err
	}
	if want := (tensor.Shape{K * B}); !r.Shape().Eq(want) {
		return fmt.Errorf("objectives: reward graph returned shape %v, want %v", r.Shape(), want)
	}
	// [φ·B] → [B, φ]. The Transpose materialises a copy even for φ = 1: an
	// elementwise op applied to a bare Reshape view of r overwrites r in
	// place (Gorgonia's liveness analysis does not see through views), which
	// corrupted the rewards read below.
	rBK := G.Must(G.Transpose(G.Must(G.Reshape(r, tensor.Shape{K, B})), 1, 0))
	la.scale = G.NewScalar(ctx.G, dt, G.WithName("scale"))
	la.invScale = G.NewScalar(ctx.G, dt, G.WithName("inv_scale"))
	s := G.Must(G.HadamardProd(rBK, la.scale))
	lsm, err := layers.LogSoftmax(s)
	if err != nil {
		return err
	}
	lse := G.Must(G.Mean(G.Must(G.Sub(s, lsm)), 1)) // [B]: log Σ_k exp(s_k), by the identity s_k − LogSoftmax(s)_k = LSE(s)
	rhat := G.Must(G.HadamardProd(G.Must(G.Sub(lse, ctx.Const(math.Log(float64(K))))), la.invScale))
	cost := G.Must(G.Sum(rhat))
	grads, err := G.Grad(cost, net.X)
	if err != nil {
		return fmt.Errorf("objectives: look-ahead gradient: %w", err)
	}
	reads := G.Nodes{G.Read(net.Flat, &la.logitsV), G.Read(r, &la.rewardsV), G.Read(rhat, &la.rhatV), G.Read(grads[0], &la.gradV)}
	la.noise = layers.NewDense(dt, []int{M, V}, make([]float64, M*V))
	if err := G.Let(noise, la.noise); err != nil {
		return err
	}
	if err := la.setScale(1); err != nil {
		return err
	}
	// The program is pruned to what the four Read ops need. G.Grad adds the
	// gradients of every matmul operand, parameters included; the whole
	// tape would compute them (a third of the work) only to drop them. The
	// outputs are the Read ops themselves, which copy their values when
	// they run, so later buffer reuse cannot corrupt them.
	inputs := G.Nodes{net.X, noise, la.scale, la.invScale}
	if net.TF != nil {
		inputs = append(inputs, net.TF)
	}
	prog, locs, err := G.CompileFunction(ctx.G, inputs, reads)
	if err != nil {
		return fmt.Errorf("objectives: compile look-ahead: %w", err)
	}
	la.vm = layers.TapeMachine(ctx.G, G.WithPrecompiled(prog, locs))
	return nil
}

func (la *LookAhead) setScale(scale float64) error {
	var s, inv any = scale, 1 / scale
	if la.model.Store.DType() == tensor.Float32 {
		s, inv = float32(scale), float32(1/scale)
	}
	if err := G.Let(la.scale, s); err != nil {
		return fmt.Errorf("objectives: bind scale: %w", err)
	}
	if err := G.Let(la.invScale, inv); err != nil {
		return fmt.Errorf("objectives: bind 1/scale: %w", err)
	}
	return nil
}

// Shape returns the sequence length L and vocabulary size V (no MASK).
func (la *LookAhead) Shape() (L, V int) { return la.L, la.V }

// Batch returns B.
func (la *LookAhead) Batch() int { return la.cfg.Batch }

// Phi returns φ.
func (la *LookAhead) Phi() int { return la.cfg.Phi }

// Config returns the validated configuration (Tau 0 replaced by 1).
func (la *LookAhead) Config() LookAheadConfig { return la.cfg }

// Clone returns an independent LookAhead over a clone of the model (a copy
// of its current weights; later training of the original model is not
// seen by the clone) and the same reward graph. Clones may run in parallel
// goroutines.
func (la *LookAhead) Clone() (*LookAhead, error) {
	m, err := la.model.Clone()
	if err != nil {
		return nil, err
	}
	return NewLookAhead(m, la.reward, la.cfg)
}

// ValueGrad implements smc.LookAheadGrad: it evaluates the B sequences xt
// (length B·L, tokens 0..V with V = MASK) at time t with look-ahead scale
// scale > 0 and Gumbel noise (length B·φ·L·V, order [b][k][l][v]), and
// writes the logits (B·L·V), the sample rewards (B·φ, index b·φ+k) and
// ∂r̂/∂onehot(xt) (B·L·(V+1)). In Soft mode the rewards are those of the
// soft carried-over samples.
func (la *LookAhead) ValueGrad(xt []int, t, scale float64, noise, logits, rewards, grad []float64) error {
	return la.run(t, scale, noise, logits, rewards, grad, func() error { return la.in.SetTokens(xt, la.tvec) })
}

// ValueGradSoft is ValueGrad at a soft one-hot input x (length B·L·(V+1),
// order [b][l][v], column V = MASK). With Soft set, finite differences of
// Σ_b r̂_b (see RHat) in x match grad; it is meant for gradient checks.
func (la *LookAhead) ValueGradSoft(x []float64, t, scale float64, noise, logits, rewards, grad []float64) error {
	for i, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("objectives: soft x_t[%d] = %v is not finite", i, v)
		}
	}
	return la.run(t, scale, noise, logits, rewards, grad, func() error { return la.in.SetSoft(x, la.tvec) })
}

// RHat writes the look-ahead values r̂_b (length B) of the last successful
// ValueGrad or ValueGradSoft call.
func (la *LookAhead) RHat(dst []float64) error {
	if len(dst) != la.cfg.Batch {
		return fmt.Errorf("objectives: r̂ buffer has length %d, want B = %d", len(dst), la.cfg.Batch)
	}
	if !la.haveRun {
		return fmt.Errorf("objectives: r̂ requested before any successful look-ahead call")
	}
	copy(dst, layers.Float64s(la.rhatV, nil))
	return nil
}

func (la *LookAhead) run(t, scale float64, noise, logits, rewards, grad []float64, set func() error) error {
	B, K, L, V := la.cfg.Batch, la.cfg.Phi, la.L, la.V
	la.haveRun = false
	switch {
	case len(noise) != B*K*L*V:
		return fmt.Errorf("objectives: look-ahead noise has length %d, want B·φ·L·V = %d", len(noise), B*K*L*V)
	case len(logits) != B*L*V:
		return fmt.Errorf("objectives: look-ahead logits buffer has length %d, want B·L·V = %d", len(logits), B*L*V)
	case len(rewards) != B*K:
		return fmt.Errorf("objectives: look-ahead rewards buffer has length %d, want B·φ = %d", len(rewards), B*K)
	case len(grad) != B*L*(V+1):
		return fmt.Errorf("objectives: look-ahead grad buffer has length %d, want B·L·(V+1) = %d", len(grad), B*L*(V+1))
	case !(scale > 0) || math.IsInf(scale, 0):
		return fmt.Errorf("objectives: look-ahead scale = %v: must be positive and finite", scale)
	}
	for i := range la.tvec {
		la.tvec[i] = t
	}
	if err := set(); err != nil {
		return err
	}
	// noise [b][k][l][v] → internal [k][b][l][v]
	bad := -1
	switch d := la.noise.Data().(type) {
	case []float64:
		bad = permuteNoise(d, noise, B, K, L*V)
	case []float32:
		bad = permuteNoise(d, noise, B, K, L*V)
	default:
		return fmt.Errorf("objectives: unsupported noise data %T", d)
	}
	if bad >= 0 {
		return fmt.Errorf("objectives: look-ahead noise[%d] = %v is not finite", bad, noise[bad])
	}
	if err := la.setScale(scale); err != nil {
		return err
	}
	la.vm.Reset()
	if err := la.vm.RunAll(); err != nil {
		return fmt.Errorf("objectives: look-ahead run: %w", err)
	}
	for _, v := range []G.Value{la.logitsV, la.rewardsV, la.rhatV, la.gradV} {
		if v == nil {
			return fmt.Errorf("objectives: look-ahead run produced no output")
		}
	}
	// The large outputs are checked while they are converted (one pass).
	if i := copyFinite(la.logitsV, logits); i >= 0 {
		return fmt.Errorf("objectives: look-ahead produced non-finite logit %v at index %d", logits[i], i)
	}
	if i := copyFinite(la.gradV, grad); i >= 0 {
		return fmt.Errorf("objectives: look-ahead produced non-finite gradient %v at index %d", grad[i], i)
	}
	r := layers.Float64s(la.rewardsV, nil) // [k][b]
	for b := 0; b < B; b++ {
		for k := 0; k < K; k++ {
			rewards[b*K+k] = r[k*B+b]
		}
	}
	for _, o := range []struct {
		name string
		v    []float64
	}{{"reward", rewards}, {"r̂", layers.Float64s(la.rhatV, nil)}} {
		for i, x := range o.v {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return fmt.Errorf("objectives: look-ahead produced non-finite %s %v at index %d", o.name, x, i)
			}
		}
	}
	la.haveRun = true
	return nil
}

// permuteNoise copies noise (order [b][k][l·v], LV values per sample) into
// d in the order [k][b][l·v] and returns the index of the first NaN or ±Inf
// in noise, or −1.
func permuteNoise[F float32 | float64](d []F, noise []float64, B, K, LV int) int {
	bad := -1
	for b := 0; b < B; b++ {
		for k := 0; k < K; k++ {
			src, dst := noise[(b*K+k)*LV:(b*K+k+1)*LV], d[(k*B+b)*LV:(k*B+b+1)*LV]
			for j, g := range src {
				if g-g != 0 && bad < 0 { // sources are visited in index order
					bad = (b*K+k)*LV + j
				}
				dst[j] = F(g)
			}
		}
	}
	return bad
}

// copyFinite copies v's float32 or float64 values into dst and returns the
// index of the first NaN or ±Inf, or −1 (x − x is 0 exactly for finite x).
func copyFinite(v G.Value, dst []float64) int {
	bad := -1
	switch d := v.Data().(type) {
	case []float32:
		for i, x := range d {
			dst[i] = float64(x)
			if x-x != 0 && bad < 0 {
				bad = i
			}
		}
	case []float64:
		copy(dst, d)
		for i, x := range d {
			if x-x != 0 {
				return i
			}
		}
	}
	return bad
}
