package graph

import (
	"errors"
	"fmt"
	"math"
	"sync"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/ddsmc/ddsmc/layers"
)

// Model is a denoiser: its configuration, its master parameters and a cache
// of compiled programs, one per batch size, each built once and re-run with
// new inputs. It implements diffusion.Denoiser. A Model's methods are safe
// for concurrent use but serialise on a mutex; use Clone for parallel
// workers.
type Model struct {
	Cfg   Config
	Store *layers.Store

	// class is the class every call conditions on (NullClass = none);
	// see WithClass.
	class int

	mu   sync.Mutex
	fwd  map[int]*compiled
	grad map[int]*compiled
}

// compiled is one pruned program for a fixed batch size.
type compiled struct {
	net *Net
	in  *Inputs
	cot *tensor.Dense // cotangent of the logits (gradient programs only)
	lv  G.Value       // logits captured by a read op (gradient programs only)
	dxv G.Value       // dx captured by a read op (gradient programs only)
	dx  *G.Node       // d(Σ logits ⊙ cot)/dx (gradient programs only)
	m   G.VM
}

// New returns a model with deterministically initialised parameters.
func New(cfg Config) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s, err := layers.NewStore(cfg.dtype(), cfg.InitSeed)
	if err != nil {
		return nil, err
	}
	m := &Model{Cfg: cfg, Store: s, class: NullClass, fwd: map[int]*compiled{}, grad: map[int]*compiled{}}
	// Building once creates every parameter in the store.
	unlock := LockBuild()
	_, err = Build(cfg, layers.NewCtx(s, false), 1)
	unlock()
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Clone returns a model sharing nothing mutable with m: its own copy of the
// parameters and its own compiled programs.
func (m *Model) Clone() (*Model, error) {
	c, err := New(m.Cfg)
	if err != nil {
		return nil, err
	}
	c.class = m.class
	for _, n := range m.Store.Names() {
		if err := layers.SetFloat64s(c.Store.Get(n), layers.Float64s(m.Store.Get(n), nil)); err != nil {
			return nil, err
		}
	}
	c.Store.Touch()
	return c, nil
}

// View returns a model sharing m's parameters (the same Store: later
// updates of m's weights are seen) with its own compiled programs and
// lock, so that parallel SMC workers can evaluate one set of weights
// concurrently without copying it (each program has its own tensor
// headers over the shared data, which Gorgonia needs for concurrent use).
// Do not train m while views of it run.
func (m *Model) View() *Model {
	return &Model{Cfg: m.Cfg, Store: m.Store, class: m.class, fwd: map[int]*compiled{}, grad: map[int]*compiled{}}
}

// WithClass returns a view of a class-conditional model (View) whose calls
// all condition on class c: p(x | c) for c in 0..Classes−1, or the
// unconditional p(x) for c = NullClass. It is an error for an
// unconditional model or a class out of range.
func (m *Model) WithClass(c int) (*Model, error) {
	if m.Cfg.Classes == 0 {
		return nil, fmt.Errorf("graph: a class (%d) for an unconditional denoiser: it needs model.classes > 0 (a class-conditional checkpoint)", c)
	}
	if c != NullClass && (c < 0 || c >= m.Cfg.Classes) {
		return nil, fmt.Errorf("graph: class %d outside 0..%d (or %d for none)", c, m.Cfg.Classes-1, NullClass)
	}
	v := m.View()
	v.class = c
	return v, nil
}

// Class returns the class the model's calls condition on (NullClass for
// an unconditional model or the null class).
func (m *Model) Class() int { return m.class }

// LoadBase copies every parameter of base into m by name, for fine-tuning
// a LoRA model (m.Cfg.LoRARank > 0) from a trained base model with the same
// architecture: afterwards m computes exactly base's function, since m's
// adapters that base lacks keep their initialisation (lora_B = 0). Values
// are converted if the dtypes differ (then the match is only up to
// rounding). It is an error, with nothing copied, when a non-adapter
// parameter of m is missing from base, when base has a parameter m lacks
// (e.g. adapters of a LoRA base loaded into a plain model), when shapes
// differ, or when both models have adapters with different scales
// (LoRAAlpha/LoRARank). Every problem is reported, one per line. m's
// compiled programs share the parameter tensors, so they see the new
// values without Invalidate.
func (m *Model) LoadBase(base *Model) error {
	if base == nil {
		return fmt.Errorf("graph: LoadBase: base model is nil")
	}
	if base == m {
		return fmt.Errorf("graph: LoadBase: base is the model itself")
	}
	if base.Cfg.LoRARank > 0 && m.Cfg.LoRARank > 0 && base.Cfg.LoRA().Scale() != m.Cfg.LoRA().Scale() {
		return fmt.Errorf("graph: LoadBase: base adapter scale %v (lora_alpha %v, lora_rank %d) differs from the model's %v (lora_alpha %v, lora_rank %d)",
			base.Cfg.LoRA().Scale(), base.Cfg.LoRAAlpha, base.Cfg.LoRARank, m.Cfg.LoRA().Scale(), m.Cfg.LoRAAlpha, m.Cfg.LoRARank)
	}
	var errs []error
	for _, n := range m.Store.Names() {
		bt, mt := base.Store.Get(n), m.Store.Get(n)
		switch {
		case bt == nil && !layers.IsLoRA(n):
			errs = append(errs, fmt.Errorf("graph: LoadBase: base model lacks parameter %q (shape %v)", n, []int(mt.Shape())))
		case bt != nil && !bt.Shape().Eq(mt.Shape()):
			errs = append(errs, fmt.Errorf("graph: LoadBase: parameter %q has shape %v in the base model, %v in the model", n, []int(bt.Shape()), []int(mt.Shape())))
		}
	}
	for _, n := range base.Store.Names() {
		if m.Store.Get(n) == nil {
			errs = append(errs, fmt.Errorf("graph: LoadBase: base parameter %q (shape %v) has no counterpart in the model", n, []int(base.Store.Get(n).Shape())))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, n := range base.Store.Names() {
		if err := layers.SetFloat64s(m.Store.Get(n), layers.Float64s(base.Store.Get(n), nil)); err != nil {
			return fmt.Errorf("graph: LoadBase: parameter %q: %w", n, err)
		}
	}
	m.Store.Touch()
	return nil
}

// Trainable returns the parameter filter for fine-tuning m: layers.IsLoRA
// (adapters only) when m has adapters (Cfg.LoRARank > 0), otherwise a
// function accepting every parameter. It suits
// objectives.LogVarConfig.Trainable.
func (m *Model) Trainable() func(name string) bool {
	if m.Cfg.LoRARank > 0 {
		return layers.IsLoRA
	}
	return func(string) bool { return true }
}

// Shape returns the sequence length and vocabulary size (excluding MASK).
func (m *Model) Shape() (L, V int) { return m.Cfg.L, m.Cfg.V }

// Invalidate drops the compiled programs. Parameters are shared by pointer,
// so programs see in-place updates without this; call it after replacing a
// parameter tensor.
func (m *Model) Invalidate() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, c := range m.fwd {
		c.m.Close()
	}
	for _, c := range m.grad {
		c.m.Close()
	}
	m.fwd, m.grad = map[int]*compiled{}, map[int]*compiled{}
}

// graphMu guards graph construction: Gorgonia's global node counters race
// when graphs are built concurrently.
var graphMu sync.Mutex

// LockBuild takes the package's graph-construction lock and returns its
// unlock function. Code outside graph that builds Gorgonia graphs (e.g.
// objectives.LookAhead) must hold it, so that no two graphs are ever built
// at once anywhere in the process: Gorgonia's global counters race.
func LockBuild() (unlock func()) {
	graphMu.Lock()
	return graphMu.Unlock
}

func (m *Model) program(B int, withGrad bool) (*compiled, error) {
	cache := m.fwd
	if withGrad {
		cache = m.grad
	}
	if c, ok := cache[B]; ok {
		return c, nil
	}
	graphMu.Lock()
	defer graphMu.Unlock()
	ctx := layers.NewCtx(m.Store, false)
	net, err := Build(m.Cfg, ctx, B)
	if err != nil {
		return nil, err
	}
	c := &compiled{net: net, in: NewInputs(m.Cfg, B)}
	if err := c.in.Bind(net); err != nil {
		return nil, err
	}
	if withGrad {
		shape := []int{B, m.Cfg.L, m.Cfg.V}
		c.cot = layers.NewDense(m.Cfg.dtype(), shape, make([]float64, B*m.Cfg.L*m.Cfg.V))
		cot := ctx.Input("cotangent", shape...)
		cost := G.Must(G.Sum(G.Must(G.HadamardProd(net.Logits, cot))))
		g, err := G.Grad(cost, net.X)
		if err != nil {
			return nil, fmt.Errorf("graph: input gradient: %w", err)
		}
		c.dx = g[0]
		G.Read(net.Flat, &c.lv)
		G.Read(c.dx, &c.dxv)
		if err := G.Let(cot, c.cot); err != nil {
			return nil, err
		}
		// The pruned CompileFunction program returns corrupted logits here
		// (their buffer is reused by the backward pass), so the gradient
		// program runs the whole tape and reads its outputs with Read.
		c.m = layers.TapeMachine(ctx.G)
		cache[B] = c
		return c, nil
	}
	inputs := G.Nodes{net.X}
	if net.TF != nil {
		inputs = append(inputs, net.TF)
	}
	if net.C != nil {
		inputs = append(inputs, net.C)
	}
	prog, locs, err := G.CompileFunction(ctx.G, inputs, G.Nodes{net.Flat})
	if err != nil {
		return nil, fmt.Errorf("graph: compile B=%d: %w", B, err)
	}
	c.m = layers.TapeMachine(ctx.G, G.WithPrecompiled(prog, locs))
	cache[B] = c
	return c, nil
}

func (c *compiled) run(out []float64) error {
	c.m.Reset()
	if err := c.m.RunAll(); err != nil {
		return fmt.Errorf("graph: run: %w", err)
	}
	var v G.Value = c.net.Flat.Value()
	if c.dx != nil {
		v = c.lv
	}
	if v == nil {
		return fmt.Errorf("graph: run produced no logits")
	}
	layers.CopyFloat64s(v, out)
	for i, x := range out {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return fmt.Errorf("graph: denoiser produced non-finite logit %v at index %d", x, i)
		}
	}
	return nil
}

func (m *Model) checkOut(B int, out []float64, what string) error {
	if want := B * m.Cfg.L * m.Cfg.V; len(out) != want {
		return fmt.Errorf("graph: %s has length %d, want B·L·V = %d", what, len(out), want)
	}
	return nil
}

// call runs the program for a batch of B = len(t) sequences: set fills its
// inputs, the logits go to out (length B·L·V) and, when dx is non-nil, the
// input gradient of a gradient program goes to dx (length B·L·(V+1)).
func (m *Model) call(t, out, dx []float64, set func(c *compiled) error) error {
	B := len(t)
	if B == 0 {
		return fmt.Errorf("graph: empty batch")
	}
	if err := m.checkOut(B, out, "logits buffer"); err != nil {
		return err
	}
	if want := B * m.Cfg.L * (m.Cfg.V + 1); dx != nil && len(dx) != want {
		return fmt.Errorf("graph: dx has length %d, want B·L·(V+1) = %d", len(dx), want)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	c, err := m.program(B, dx != nil)
	if err != nil {
		return err
	}
	if err := c.in.SetClass(m.class); err != nil {
		return err
	}
	if err := set(c); err != nil {
		return err
	}
	if err := c.run(out); err != nil {
		return err
	}
	if dx != nil {
		layers.CopyFloat64s(c.dxv, dx)
	}
	return nil
}

// X0Logits writes the x0-logits [B][L][V] of the B = len(t) noisy sequences
// xt (length B·L, tokens 0..V with V = MASK) at times t into out.
func (m *Model) X0Logits(xt []int, t []float64, out []float64) error {
	return m.call(t, out, nil, func(c *compiled) error { return c.in.SetTokens(xt, t) })
}

// SoftLogits is X0Logits for a soft one-hot input x of length B·L·(V+1).
func (m *Model) SoftLogits(x []float64, t []float64, out []float64) error {
	return m.call(t, out, nil, func(c *compiled) error { return c.in.SetSoft(x, t) })
}

// InputGrad is the vector-Jacobian product of the denoiser with respect to
// its (soft) one-hot input: for x of length B·L·(V+1) and a cotangent cot
// of the logits (length B·L·V), it writes the logits into logits and
// ∂(Σ logits ⊙ cot)/∂x into dx (length B·L·(V+1)). This is what a
// first-order proposal needs to push a reward gradient back to x_t.
func (m *Model) InputGrad(x, t, cot, logits, dx []float64) error {
	if dx == nil {
		return fmt.Errorf("graph: InputGrad needs a dx buffer")
	}
	if err := m.checkOut(len(t), cot, "cotangent"); err != nil {
		return err
	}
	return m.call(t, logits, dx, func(c *compiled) error {
		if err := c.in.SetSoft(x, t); err != nil {
			return err
		}
		return layers.SetFloat64s(c.cot, cot)
	})
}

// TimeIndependent reports whether the denoiser ignores t (no time input),
// which lets samplers reuse logits of unchanged rows.
func (m *Model) TimeIndependent() bool { return m.Cfg.TimeDim == 0 }
