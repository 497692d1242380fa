package objectives

import (
	"fmt"
	"math"
	"strings"
	"sync"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/ddsmc/ddsmc/diffusion"
	"github.com/ddsmc/ddsmc/graph"
	"github.com/ddsmc/ddsmc/layers"
	"github.com/ddsmc/ddsmc/smc"
)

// Names of the KL regulariser options of LogVarConfig.KL.
const (
	lvKLNone     = "none"
	lvKLForward  = "forward"
	lvKLBackward = "backward"
)

// LogVarConfig configures a LogVarLoss: the log-variance loss of the
// amortised proposal q_φ and its per-step baseline F_ψ (paper.md §4.2,
// Eq. (9)), and the optional regularisers of paper.md §4.4.
type LogVarConfig struct {
	// Batch is B, the number of transitions per Accumulate call (> 0).
	Batch int
	// Steps is T, the number of reverse steps, i.e. the length of the
	// baseline F (> 0).
	Steps int
	// LR is the Adam learning rate (> 0, finite), used for q_φ's
	// parameters and for F alike. There is no weight decay on either.
	LR float64
	// Clip, when > 0, clips the accumulated gradient by its global L2 norm
	// before the Adam step, separately for q_φ's parameters and for F
	// (as torch's clip_grad_norm_ per parameter group); 0 turns it off.
	Clip float64
	// KL selects the regulariser on q_φ's x0-distribution at the masked
	// positions of x_t: "none" (or ""), "forward" for KL(p_ref ‖ q_φ) or
	// "backward" for KL(q_φ ‖ p_ref). Any other value is an error.
	KL string
	// KLWeight multiplies the KL term (≥ 0, finite).
	KLWeight float64
	// EntropyWeight multiplies the entropy bonus −H(q_φ(x0|x_t)) (≥ 0,
	// finite); 0 turns it off.
	EntropyWeight float64
	// Trainable, when non-nil, selects by name the parameters of q that are
	// differentiated and updated (e.g. graph.Model.Trainable(), which keeps
	// only the LoRA adapters of a LoRA q); the others stay in the graph as
	// fixed values and Apply never writes them. nil trains every parameter.
	// Selecting none of q's parameters is an error.
	Trainable func(name string) bool
}

// Validate reports the first out-of-range field, naming it.
func (c LogVarConfig) Validate() error {
	bad := func(x float64) bool { return math.IsNaN(x) || math.IsInf(x, 0) }
	switch {
	case c.Batch <= 0:
		return fmt.Errorf("objectives: log-variance Batch = %d: must be positive", c.Batch)
	case c.Steps <= 0:
		return fmt.Errorf("objectives: log-variance Steps = %d: must be positive", c.Steps)
	case bad(c.LR) || c.LR <= 0:
		return fmt.Errorf("objectives: log-variance LR = %v: must be positive and finite", c.LR)
	case bad(c.Clip) || c.Clip < 0:
		return fmt.Errorf("objectives: log-variance Clip = %v: must be ≥ 0 and finite (0 = off)", c.Clip)
	case bad(c.KLWeight) || c.KLWeight < 0:
		return fmt.Errorf("objectives: log-variance KLWeight = %v: must be ≥ 0 and finite", c.KLWeight)
	case bad(c.EntropyWeight) || c.EntropyWeight < 0:
		return fmt.Errorf("objectives: log-variance EntropyWeight = %v: must be ≥ 0 and finite", c.EntropyWeight)
	}
	if _, err := c.klMode(); err != nil {
		return err
	}
	return nil
}

// klMode returns the normalised KL option ("none", "forward" or
// "backward").
func (c LogVarConfig) klMode() (string, error) {
	switch m := strings.ToLower(strings.TrimSpace(c.KL)); m {
	case "", lvKLNone:
		return lvKLNone, nil
	case lvKLForward, lvKLBackward:
		return m, nil
	}
	return "", fmt.Errorf("objectives: log-variance KL = %q: want \"none\", \"forward\" or \"backward\"", c.KL)
}

// LogVarLoss is the log-variance loss of the amortised proposal (paper.md
// Eq. (9)) as a Gorgonia graph over the trainable proposal model q_φ and the
// per-step baseline F_ψ ∈ R^T. For one batch of B rollout transitions
// x_t → x_s at reverse step index `step` it is
//
//	L_step = (1/B) Σ_b ( c_b − log q_φ(x_s^b | x_t^b) − F[step] )²
//
// where c_b = log w_b + log q_φ(x_s^b | x_t^b) is everything in the
// incremental log-weight except −log q_φ (the twist difference and
// log p_θ); the caller computes it. Samples are constants: gradients flow
// only through log q_φ and F (the log-variance, not score-function,
// estimator of the paper), plus the optional regularisers on q_φ's
// x0-distribution x̂_φ = softmax(ℓ_φ(x_t)) at the masked positions of x_t:
//
//	reg = KLWeight · (1/B) Σ_b Σ_{l masked} KL_l  −  EntropyWeight · (1/B) Σ_b Σ_{l masked} H(x̂_φ,l)
//
// with KL_l = KL(p_ref,l ‖ x̂_φ,l) ("forward") or KL(x̂_φ,l ‖ p_ref,l)
// ("backward"), p_ref the frozen reference model's x0-distribution.
//
// log q_φ under the SUBS/ReMDM kernel k (diffusion.Kernel) splits into a
// part that does not depend on φ, computed exactly in Go from the kernel's
// step coefficients (log of the unmask/stay-masked probabilities and, for
// η > 0, the ReMDM stay/remask probabilities), and the φ-dependent part
// Σ_{positions masked in x_t and unmasked to v in x_s} LogSoftmax(ℓ_φ)[v],
// computed in the graph as Σ M ⊙ LogSoftmax(ℓ_φ) with a one-hot selector
// input M [B·L, V] (the repo's stable composed log-softmax). F[step] is
// selected with a matmul by a constant matrix whose rows are e_step.
//
// Design:
//   - Gradients. One graph holds q_φ's denoiser (its own tensor headers
//     over q.Store's data), the loss, the regularisers and their symbolic
//     gradient (G.Grad) with respect to q_φ's parameters and F. Each
//     Accumulate runs the whole tape (a full NewTapeMachine: a pruned
//     CompileFunction program with a gradient corrupts forward values),
//     reads the loss and the gradients with G.Read (copies, immune to
//     buffer reuse) and adds the gradients to float64 accumulators.
//   - Adam. Apply runs Adam in Go on float64 buffers (adam; β = 0.9/0.999,
//     ε = 1e-8, bias-corrected; torch's Adam, not AdamW): there is no weight
//     decay on q_φ or on F, unlike the reference code's AdamW (§10 item 9).
//     The updated values are written in place into the data of q.Store's
//     tensors, which every compiled program of q shares by pointer, so
//     q.Invalidate() is not needed; for float32 models they are rounded to
//     float32 on writing (the Adam moments stay float64).
//   - F. The baseline is the LogVarLoss's own float64 vector (mirrored into
//     a learnable graph node), not a parameter of q.Store, so q's
//     checkpoints stay compatible with the base model's; save it with F and
//     restore it with SetF.
//   - Reference. p_ref's x0-logits are computed outside the graph with
//     ref.X0Logits (a frozen model, no gradient) and fed as constants.
//   - LogQ uses a second, forward-only graph with the same log q_φ
//     formula, so it never touches the accumulators.
//
// A LogVarLoss serialises its methods on a mutex. Apply updates q's
// parameters in place: do not run q (or anything sharing its tensors) in
// another goroutine while Apply runs.
type LogVarLoss struct {
	mu    sync.Mutex
	q     *graph.Model
	ref   *graph.Model // nil without KL
	k     diffusion.Kernel
	cfg   LogVarConfig
	kl    string // normalised KL mode
	ent   bool   // entropy term built
	L, V  int
	dtype tensor.Dtype

	// Training graph.
	vm       G.VM
	in       *graph.Inputs
	sel      *tensor.Dense // selector M [B·L, V]
	cadj     *tensor.Dense // c_b − (φ-independent part of log q) [B]
	esel     *tensor.Dense // rows e_step [B, T]
	wmask    *tensor.Dense // 1/B at masked rows, [B·L, V] (backward KL, entropy)
	klA      *tensor.Dense // (1/B)·p_ref at masked rows, [B·L, V] (forward KL)
	klLP     *tensor.Dense // log p_ref, [B·L, V] (any KL)
	fT       *tensor.Dense // F in the model's dtype, [T]
	params   G.Nodes       // q's trained parameter nodes (cfg.Trainable) in the training graph
	master   []*tensor.Dense
	gradV    []G.Value // gradients of the parameters, then of F (last)
	lossV    G.Value
	klV      G.Value
	entV     G.Value
	selv     []float64
	cadjv    []float64
	eselv    []float64
	wmaskv   []float64
	klAv     []float64
	klLPv    []float64
	refLog   []float64
	konst    []float64 // φ-independent part of log q per transition
	tvec     []float64 // B copies of t
	lastKL   float64
	lastEnt  float64
	scratchG []float64

	// Forward-only graph of LogQ.
	fvm   G.VM
	fin   *graph.Inputs
	fsel  *tensor.Dense
	fphiV G.Value

	// Baseline, accumulators and Adam state.
	f       []float64
	acc     [][]float64 // per parameter
	accF    []float64
	pending int
	opt     *adam // q_φ's parameters, then F
}

// NewLogVarLoss builds the graph for the trainable proposal model q (its
// parameters are trained in place by Apply) with reverse kernel k; ref is
// the frozen reference (base) model for the KL term: it is required iff
// cfg.KL is "forward" or "backward" (even with KLWeight 0), must have q's
// shape (L, V), and must not be q itself (use a Clone of the base); it is
// ignored when there is no KL term. F starts at zero. Errors name the bad
// field.
func NewLogVarLoss(q *graph.Model, ref *graph.Model, k diffusion.Kernel, cfg LogVarConfig) (*LogVarLoss, error) {
	if q == nil {
		return nil, fmt.Errorf("objectives: log-variance loss needs a proposal model q")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	kl, _ := cfg.klMode()
	if err := k.Validate(); err != nil {
		return nil, fmt.Errorf("objectives: log-variance kernel: %w", err)
	}
	L, V := q.Shape()
	if kl != lvKLNone {
		switch {
		case ref == nil:
			return nil, fmt.Errorf("objectives: log-variance KL = %q needs a reference model (ref is nil)", kl)
		case ref == q:
			return nil, fmt.Errorf("objectives: log-variance reference model is q itself; pass a frozen copy (graph.Model.Clone) of the base")
		}
		if rl, rv := ref.Shape(); rl != L || rv != V {
			return nil, fmt.Errorf("objectives: log-variance reference model has shape L=%d V=%d, q has L=%d V=%d", rl, rv, L, V)
		}
	} else {
		ref = nil
	}
	B, T := cfg.Batch, cfg.Steps
	N := B * L
	l := &LogVarLoss{q: q, ref: ref, k: k, cfg: cfg, kl: kl, ent: cfg.EntropyWeight > 0,
		L: L, V: V, dtype: q.Store.DType(),
		selv: make([]float64, N*V), cadjv: make([]float64, B), eselv: make([]float64, B*T),
		konst: make([]float64, B), tvec: make([]float64, B), f: make([]float64, T),
		accF: make([]float64, T)}
	if kl != lvKLNone {
		l.klLPv = make([]float64, N*V)
		l.refLog = make([]float64, N*V)
		if kl == lvKLForward {
			l.klAv = make([]float64, N*V)
		}
	}
	if kl == lvKLBackward || l.ent {
		l.wmaskv = make([]float64, N*V)
	}
	unlock := graph.LockBuild() // Gorgonia's global counters race when graphs are built concurrently
	defer unlock()
	if err := l.buildTrain(); err != nil {
		return nil, err
	}
	if err := l.buildForward(); err != nil {
		l.vm.Close()
		return nil, err
	}
	l.acc = make([][]float64, len(l.params))
	sizes := make([]int, len(l.params)+1)
	for i, p := range l.params {
		sizes[i] = p.Shape().TotalSize()
		l.acc[i] = make([]float64, sizes[i])
	}
	sizes[len(l.params)] = T
	l.opt = newAdam(cfg.LR, sizes...)
	return l, nil
}

// lvPhi adds to ctx's graph the φ-dependent part of log q_φ for B
// sequences: logq = LogSoftmax(net.Flat) [B·L, V], the selector input
// sel [B·L, V] and phi = per-sequence Σ sel ⊙ logq [B].
func lvPhi(ctx *layers.Ctx, net *graph.Net, B, L, V int) (logq, sel, phi *G.Node, err error) {
	if logq, err = layers.LogSoftmax(net.Flat); err != nil {
		return nil, nil, nil, err
	}
	sel = ctx.Input("lv_selector", B*L, V)
	prod := G.Must(G.HadamardProd(sel, logq))
	phi = G.Must(G.Sum(G.Must(G.Reshape(prod, tensor.Shape{B, L * V})), 1))
	return logq, sel, phi, nil
}

// buildTrain builds the training graph and its machine. The caller holds
// graph.LockBuild.
func (l *LogVarLoss) buildTrain() (err error) {
	B, T, L, V := l.cfg.Batch, l.cfg.Steps, l.L, l.V
	N := B * L
	dt := l.dtype
	ctx := layers.NewCtx(l.q.Store, false)
	net, err := graph.Build(l.q.Cfg, ctx, B)
	if err != nil {
		return err
	}
	for _, p := range ctx.Learnables() {
		if l.cfg.Trainable == nil || l.cfg.Trainable(p.Name()) {
			l.params = append(l.params, p)
		}
	}
	if len(l.params) == 0 {
		return fmt.Errorf("objectives: log-variance Trainable selects none of q's %d parameters", len(ctx.Learnables()))
	}
	l.master = make([]*tensor.Dense, len(l.params))
	for i, p := range l.params {
		if l.master[i] = l.q.Store.Get(p.Name()); l.master[i] == nil {
			return fmt.Errorf("objectives: log-variance: parameter %q not in q's store", p.Name())
		}
	}
	l.in = graph.NewInputs(l.q.Cfg, B)
	if err := l.in.Bind(net); err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("objectives: building log-variance loss: %v", p)
		}
	}()
	logq, sel, phi, err := lvPhi(ctx, net, B, L, V)
	if err != nil {
		return err
	}
	cadj := ctx.Input("lv_c", B)
	esel := ctx.Input("lv_step_select", B, T)
	l.fT = layers.NewDense(dt, []int{T}, l.f)
	fNode := G.NewVector(ctx.G, dt, G.WithShape(T), G.WithName("f_psi"), G.WithValue(l.fT))
	fsel := G.Must(G.Mul(esel, fNode)) // [B]: F[step] in every row
	r := G.Must(G.Sub(G.Must(G.Sub(cadj, phi)), fsel))
	loss := G.Must(G.HadamardProd(G.Must(G.Sum(G.Must(G.Square(r)))), ctx.Const(1/float64(B))))
	total := loss
	var wq *G.Node // (1/B)·x̂_φ at masked rows
	if l.kl == lvKLBackward || l.ent {
		wm := ctx.Input("lv_mask", N, V)
		wq = G.Must(G.HadamardProd(wm, G.Must(G.Exp(logq))))
		l.wmask = layers.NewDense(dt, []int{N, V}, l.wmaskv)
		if err := G.Let(wm, l.wmask); err != nil {
			return err
		}
	}
	if l.kl != lvKLNone {
		lp := ctx.Input("lv_ref_logp", N, V)
		l.klLP = layers.NewDense(dt, []int{N, V}, l.klLPv)
		if err := G.Let(lp, l.klLP); err != nil {
			return err
		}
		var kl *G.Node
		if l.kl == lvKLForward {
			a := ctx.Input("lv_ref_p", N, V)
			l.klA = layers.NewDense(dt, []int{N, V}, l.klAv)
			if err := G.Let(a, l.klA); err != nil {
				return err
			}
			kl = G.Must(G.Sum(G.Must(G.HadamardProd(a, G.Must(G.Sub(lp, logq))))))
		} else {
			kl = G.Must(G.Sum(G.Must(G.HadamardProd(wq, G.Must(G.Sub(logq, lp))))))
		}
		G.Read(kl, &l.klV)
		total = G.Must(G.Add(total, G.Must(G.HadamardProd(kl, ctx.Const(l.cfg.KLWeight)))))
	}
	if l.ent {
		h := G.Must(G.Neg(G.Must(G.Sum(G.Must(G.HadamardProd(wq, logq))))))
		G.Read(h, &l.entV)
		total = G.Must(G.Sub(total, G.Must(G.HadamardProd(h, ctx.Const(l.cfg.EntropyWeight)))))
	}
	G.Read(loss, &l.lossV)
	wrt := append(append(G.Nodes(nil), l.params...), fNode)
	grads, err := G.Grad(total, wrt...)
	if err != nil {
		return fmt.Errorf("objectives: gradient of the log-variance loss: %w", err)
	}
	l.gradV = make([]G.Value, len(grads))
	for i, g := range grads {
		G.Read(g, &l.gradV[i])
	}
	l.sel = layers.NewDense(dt, []int{N, V}, l.selv)
	l.cadj = layers.NewDense(dt, []int{B}, l.cadjv)
	l.esel = layers.NewDense(dt, []int{B, T}, l.eselv)
	for _, b := range []struct {
		n *G.Node
		t *tensor.Dense
	}{{sel, l.sel}, {cadj, l.cadj}, {esel, l.esel}} {
		if err := G.Let(b.n, b.t); err != nil {
			return err
		}
	}
	// The whole tape runs: a pruned CompileFunction program with a gradient
	// corrupts forward values. Outputs are captured with Read.
	l.vm = layers.TapeMachine(ctx.G)
	return nil
}

// buildForward builds LogQ's forward-only graph. The caller holds
// graph.LockBuild.
func (l *LogVarLoss) buildForward() (err error) {
	B, L, V := l.cfg.Batch, l.L, l.V
	ctx := layers.NewCtx(l.q.Store, false)
	net, err := graph.Build(l.q.Cfg, ctx, B)
	if err != nil {
		return err
	}
	l.fin = graph.NewInputs(l.q.Cfg, B)
	if err := l.fin.Bind(net); err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("objectives: building log q graph: %v", p)
		}
	}()
	_, sel, phi, err := lvPhi(ctx, net, B, L, V)
	if err != nil {
		return err
	}
	G.Read(phi, &l.fphiV)
	l.fsel = layers.NewDense(l.dtype, []int{B * L, V}, l.selv)
	if err := G.Let(sel, l.fsel); err != nil {
		return err
	}
	l.fvm = layers.TapeMachine(ctx.G)
	return nil
}

// lvStep holds the φ-independent log-probabilities of one kernel step.
type lvStep struct {
	stay, remask float64 // unmasked token: kept, remasked
	unmask, mask float64 // masked token: log of the total unmask probability, stays masked
}

// lvCoefficients reads the φ-independent log-probabilities of the step
// t → s from the kernel itself, by probing PositionLogProbs with logits
// (0, −Inf, …, −Inf), whose log-softmax is exactly 0 at token 0.
func lvCoefficients(k diffusion.Kernel, V int, t, s float64) (lvStep, error) {
	probe := make([]float64, V)
	for v := 1; v < V; v++ {
		probe[v] = math.Inf(-1)
	}
	out := make([]float64, V+1)
	var c lvStep
	if err := k.PositionLogProbs(V, probe, t, s, out); err != nil {
		return c, err
	}
	c.unmask, c.mask = out[0], out[V]
	if err := k.PositionLogProbs(0, probe, t, s, out); err != nil {
		return c, err
	}
	c.stay, c.remask = out[0], out[V]
	return c, nil
}

// prepare validates a batch of transitions, fills the selector M (l.selv)
// and the φ-independent part of log q per transition (l.konst, −Inf for an
// impossible transition), and returns the position of the first impossible
// transition (−1 if none).
func (l *LogVarLoss) prepare(xt, xs []int, t, s float64) (bad int, err error) {
	B, L, V := l.cfg.Batch, l.L, l.V
	if len(xt) != B*L {
		return 0, fmt.Errorf("x_t has %d tokens, want B·L = %d·%d", len(xt), B, L)
	}
	if len(xs) != B*L {
		return 0, fmt.Errorf("x_s has %d tokens, want B·L = %d·%d", len(xs), B, L)
	}
	if math.IsNaN(t) || math.IsNaN(s) || !(s >= 0 && s < t && t <= 1) {
		return 0, fmt.Errorf("times t = %v, s = %v: need 0 ≤ s < t ≤ 1", t, s)
	}
	for i := range xt {
		if xt[i] < 0 || xt[i] > V {
			return 0, fmt.Errorf("x_t[%d] = %d outside 0..%d (%d is MASK)", i, xt[i], V, V)
		}
		if xs[i] < 0 || xs[i] > V {
			return 0, fmt.Errorf("x_s[%d] = %d outside 0..%d (%d is MASK)", i, xs[i], V, V)
		}
	}
	c, err := lvCoefficients(l.k, V, t, s)
	if err != nil {
		return 0, err
	}
	clear(l.selv)
	bad = -1
	for b := 0; b < B; b++ {
		sum := 0.0
		for j := b * L; j < (b+1)*L; j++ {
			var lp float64
			switch from, to := xt[j], xs[j]; {
			case from < V && to == from:
				lp = c.stay
			case from < V && to == V:
				lp = c.remask
			case from < V:
				lp = math.Inf(-1) // an unmasked token never changes value
			case to == V:
				lp = c.mask
			default:
				lp = c.unmask
				l.selv[j*V+to] = 1
			}
			if math.IsInf(lp, -1) && bad < 0 {
				bad = j
			}
			sum += lp
		}
		l.konst[b] = sum
	}
	for b := range l.tvec {
		l.tvec[b] = t
	}
	return bad, nil
}

// LogQ writes log q_φ(x_s^b | x_t^b) (length B) for B transitions under the
// current parameters, forward only (no gradient, the accumulators are not
// touched): xt and xs have B·L tokens with V = MASK, t > s are the step's
// times. It equals diffusion.Kernel.LogProb on q's x0-logits; an impossible
// transition gives −Inf, as there.
func (l *LogVarLoss) LogQ(xt, xs []int, t, s float64, out []float64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(out) != l.cfg.Batch {
		return fmt.Errorf("objectives: log q buffer has length %d, want B = %d", len(out), l.cfg.Batch)
	}
	if _, err := l.prepare(xt, xs, t, s); err != nil {
		return fmt.Errorf("objectives: log q: %w", err)
	}
	if err := l.fin.SetTokens(xt, l.tvec); err != nil {
		return fmt.Errorf("objectives: log q: %w", err)
	}
	if err := layers.SetFloat64s(l.fsel, l.selv); err != nil {
		return err
	}
	l.fvm.Reset()
	if err := l.fvm.RunAll(); err != nil {
		return fmt.Errorf("objectives: log q run: %w", err)
	}
	if l.fphiV == nil {
		return fmt.Errorf("objectives: log q run produced no output")
	}
	phi := layers.Float64s(l.fphiV, nil)
	for b := range out {
		out[b] = l.konst[b] + phi[b]
		if math.IsNaN(out[b]) || math.IsInf(out[b], 1) {
			return fmt.Errorf("objectives: log q of transition %d is %v (non-finite logits?)", b, out[b])
		}
	}
	return nil
}

// setRegInputs fills the KL and entropy inputs for the masked rows of xt,
// computing p_ref's x0-logits with ref.
func (l *LogVarLoss) setRegInputs(xt []int) error {
	if l.wmaskv == nil && l.klLPv == nil {
		return nil
	}
	B, V := l.cfg.Batch, l.V
	inv := 1 / float64(B)
	if l.klLPv != nil {
		if err := l.ref.X0Logits(xt, l.tvec, l.refLog); err != nil {
			return fmt.Errorf("reference model: %w", err)
		}
		clear(l.klLPv)
		if l.klAv != nil {
			clear(l.klAv)
		}
	}
	if l.wmaskv != nil {
		clear(l.wmaskv)
	}
	for j, x := range xt {
		if x != V {
			continue
		}
		row := j * V
		if l.wmaskv != nil {
			for v := 0; v < V; v++ {
				l.wmaskv[row+v] = inv
			}
		}
		if l.klLPv == nil {
			continue
		}
		lg := l.refLog[row : row+V]
		lse := smc.LogSumExp(lg)
		for v, z := range lg {
			lp := z - lse
			l.klLPv[row+v] = lp
			if l.klAv != nil {
				l.klAv[row+v] = inv * math.Exp(lp)
			}
		}
	}
	if l.wmaskv != nil {
		if err := layers.SetFloat64s(l.wmask, l.wmaskv); err != nil {
			return err
		}
	}
	if l.klLPv != nil {
		if err := layers.SetFloat64s(l.klLP, l.klLPv); err != nil {
			return err
		}
		if l.klAv != nil {
			if err := layers.SetFloat64s(l.klA, l.klAv); err != nil {
				return err
			}
		}
	}
	return nil
}

// Accumulate runs forward and backward for one reverse step's batch: xt, xs
// (B·L tokens each, V = MASK), the step's times t > s, the step index
// (0 ≤ step < T, selecting F[step]) and c (length B), with
// c_b = log w_b + log q_φ(x_s^b | x_t^b) (the incremental log-weight without
// its −log q_φ term). It adds the gradients of L_step + reg to the internal
// float64 accumulators and returns L_step (the variance part) and reg (the
// weighted KL and entropy terms; 0 without regularisers). Non-finite
// values (c, the loss, the regulariser or a gradient) and impossible
// transitions are errors naming the step; on any error nothing is
// accumulated.
func (l *LogVarLoss) Accumulate(xt, xs []int, t, s float64, step int, c []float64) (loss, reg float64, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fail := func(format string, a ...any) (float64, float64, error) {
		return 0, 0, fmt.Errorf("objectives: log-variance step %d: %s", step, fmt.Sprintf(format, a...))
	}
	B, T := l.cfg.Batch, l.cfg.Steps
	if step < 0 || step >= T {
		return fail("step index outside 0..%d", T-1)
	}
	if len(c) != B {
		return fail("c has length %d, want B = %d", len(c), B)
	}
	for b, x := range c {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fail("c[%d] = %v is not finite", b, x)
		}
	}
	bad, err := l.prepare(xt, xs, t, s)
	if err != nil {
		return fail("%v", err)
	}
	if bad >= 0 {
		return fail("transition %d (position %d: %d → %d) is impossible under the kernel (log q = −Inf)",
			bad/l.L, bad%l.L, xt[bad], xs[bad])
	}
	for b := range c {
		l.cadjv[b] = c[b] - l.konst[b]
	}
	clear(l.eselv)
	for b := 0; b < B; b++ {
		l.eselv[b*T+step] = 1
	}
	if err := l.in.SetTokens(xt, l.tvec); err != nil {
		return fail("%v", err)
	}
	if err := l.setRegInputs(xt); err != nil {
		return fail("%v", err)
	}
	for _, in := range []struct {
		t *tensor.Dense
		v []float64
	}{{l.sel, l.selv}, {l.cadj, l.cadjv}, {l.esel, l.eselv}} {
		if err := layers.SetFloat64s(in.t, in.v); err != nil {
			return fail("%v", err)
		}
	}
	l.vm.Reset()
	if err := l.vm.RunAll(); err != nil {
		return fail("run: %v", err)
	}
	if l.lossV == nil {
		return fail("run produced no loss")
	}
	loss = lvScalar(l.lossV)
	kl, ent := 0.0, 0.0
	if l.klV != nil {
		kl = lvScalar(l.klV)
	}
	if l.entV != nil {
		ent = lvScalar(l.entV)
	}
	reg = l.cfg.KLWeight*kl - l.cfg.EntropyWeight*ent
	for _, x := range []struct {
		name string
		v    float64
	}{{"loss", loss}, {"KL", kl}, {"entropy", ent}} {
		if math.IsNaN(x.v) || math.IsInf(x.v, 0) {
			return fail("%s is %v (non-finite; diverged parameters or logits?)", x.name, x.v)
		}
	}
	// Check every gradient before adding any.
	for i, gv := range l.gradV {
		if gv == nil {
			return fail("run produced no gradient %d", i)
		}
		l.scratchG = layers.Float64s(gv, l.scratchG)
		for j, g := range l.scratchG {
			if math.IsNaN(g) || math.IsInf(g, 0) {
				name := "F"
				if i < len(l.params) {
					name = l.params[i].Name()
				}
				return fail("gradient of %s[%d] is %v", name, j, g)
			}
		}
	}
	for i, gv := range l.gradV {
		l.scratchG = layers.Float64s(gv, l.scratchG)
		dst := l.accF
		if i < len(l.params) {
			dst = l.acc[i]
		}
		for j, g := range l.scratchG {
			dst[j] += g
		}
	}
	l.pending++
	l.lastKL, l.lastEnt = kl, ent
	return loss, reg, nil
}

// lvScalar returns a scalar Value as float64 (NaN if it is not one).
func lvScalar(v G.Value) float64 {
	switch d := v.Data().(type) {
	case float64:
		return d
	case float32:
		return float64(d)
	case []float64:
		if len(d) == 1 {
			return d[0]
		}
	case []float32:
		if len(d) == 1 {
			return float64(d[0])
		}
	}
	return math.NaN()
}

// LastRegTerms returns the unweighted regulariser terms of the last
// successful Accumulate: the KL (summed over masked positions, mean over
// the batch; 0 without KL) and the entropy of x̂_φ (likewise; 0 without the
// entropy term). The returned reg was KLWeight·kl − EntropyWeight·entropy.
func (l *LogVarLoss) LastRegTerms() (kl, entropy float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastKL, l.lastEnt
}

// Pending returns the number of Accumulate calls since the last Apply.
func (l *LogVarLoss) Pending() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pending
}

// Apply takes one Adam step with the accumulated gradients — their sum
// over the Accumulate calls since the last Apply, i.e. the gradient of
// Σ_steps L_step (+ reg), as the reference's loss = Σ_t mean_b(…)² — and
// zeroes them. q's parameters are updated in place in q.Store (every
// program of q shares them by pointer, so q.Invalidate() is not needed);
// F is updated too. Adam is torch's (β 0.9/0.999, ε 1e-8, bias-corrected),
// without weight decay; Clip > 0 first rescales each group's (q_φ's, F's)
// gradient to global L2 norm at most Clip. Apply with nothing accumulated
// is an error and changes nothing.
func (l *LogVarLoss) Apply() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pending == 0 {
		return fmt.Errorf("objectives: log-variance Apply with no accumulated gradient (call Accumulate first)")
	}
	qScale, fScale := 1.0, 1.0
	if l.cfg.Clip > 0 {
		norm := 0.0
		for _, a := range l.acc {
			for _, g := range a {
				norm += g * g
			}
		}
		if norm = math.Sqrt(norm); norm > l.cfg.Clip {
			qScale = l.cfg.Clip / norm
		}
		norm = 0
		for _, g := range l.accF {
			norm += g * g
		}
		if norm = math.Sqrt(norm); norm > l.cfg.Clip {
			fScale = l.cfg.Clip / norm
		}
	}
	l.opt.step()
	var w []float64
	for i, t := range l.master {
		w = layers.Float64s(t, w)
		l.opt.update(i, w, l.acc[i], qScale)
		if err := layers.SetFloat64s(t, w); err != nil {
			return fmt.Errorf("objectives: log-variance Apply: parameter %s: %w", l.params[i].Name(), err)
		}
		clear(l.acc[i])
	}
	l.q.Store.Touch() // q's weights changed in place
	l.opt.update(len(l.master), l.f, l.accF, fScale)
	if err := layers.SetFloat64s(l.fT, l.f); err != nil {
		return fmt.Errorf("objectives: log-variance Apply: F: %w", err)
	}
	clear(l.accF)
	l.pending = 0
	return nil
}

// F returns a copy of the baseline F_ψ (length T).
func (l *LogVarLoss) F() []float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]float64(nil), l.f...)
}

// SetF sets the baseline F_ψ (length T, finite), e.g. to the per-step mean
// log-weight at initialisation or to a saved value. Adam's moments of F are
// kept.
func (l *LogVarLoss) SetF(f []float64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(f) != len(l.f) {
		return fmt.Errorf("objectives: log-variance SetF: %d values, want T = %d", len(f), len(l.f))
	}
	for i, x := range f {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("objectives: log-variance SetF: F[%d] = %v is not finite", i, x)
		}
	}
	copy(l.f, f)
	return layers.SetFloat64s(l.fT, l.f)
}

// Close releases the machines. The LogVarLoss must not be used afterwards.
func (l *LogVarLoss) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.vm != nil {
		l.vm.Close()
	}
	if l.fvm != nil {
		l.fvm.Close()
	}
}
