package smc

import (
	"fmt"
	"math"
	"slices"
	"sync/atomic"

	"github.com/ddsmc/ddsmc/diffusion"
)

// Base is the untwisted path of the target: the per-position, possibly
// unnormalised, reverse kernel k(x_s | x_t) = Π_l k_l(x_s^l | x_t) whose
// path marginal at t = 0 is the base measure that the reward tilts. For the
// reward-tilted target it is the model's own kernel p_θ (Reverse); for the
// product target it is p₁^a·p₂^b·q_fwd^{1−a−b} (Product; paper.md §2.3).
//
// The engine calls Eval once per step on all particles and keeps each
// particle's evaluation (e.g. its x0-logits) next to it, permuting it on
// resampling; LogKernel and X0Logits then read one particle's evaluation.
type Base interface {
	// Shape returns the sequence length L and vocabulary size V (no MASK).
	Shape() (L, V int)
	// Width is the number of float64s Eval stores per particle.
	Width() int
	// Eval evaluates the network(s) at the n = len(x)/L states x (tokens
	// 0..V, V = MASK) at time t, writing n·Width values into out, on up
	// to workers goroutines.
	Eval(x []int, t float64, out []float64, workers int) error
	// LogKernel writes the per-position log-kernel log k_l(x_s^l = v | x_t),
	// v = 0..V, for one particle (xt of length L, its evaluation ev) and
	// the step t → s into out (length L·(V+1)). −Inf marks impossible moves.
	LogKernel(xt []int, ev []float64, t, s float64, out []float64) error
	// Normalized reports whether every position's kernel sums to one (then
	// the path marginal is a probability distribution and the reverse
	// proposal's weight has no kernel term).
	Normalized() bool
	// X0Logits returns the x0-logits (length L·V) inside a particle's
	// evaluation, used by look-ahead twists to sample p(x0 | x_t).
	X0Logits(ev []float64) []float64
}

// KernelBase is a Base driven by a single diffusion.Kernel, which the
// gradient proposal needs to tilt in x0-logit space.
type KernelBase interface {
	Base
	Kernel() diffusion.Kernel
}

// Reverse is the base of the reward-tilted target: the model's SUBS/ReMDM
// reverse kernel p_θ(x_s | x_t) with denoiser x̂_θ. Its path marginal is
// the model's p_θ(x0).
type Reverse struct {
	k     diffusion.Kernel
	pool  *denoiserPool
	l, v  int
	width int
	cache *logitCache // nil unless the denoisers are time-independent
	// primed holds the logits of one batch of states at one time, given by
	// PrimeAt (time-dependent denoisers): the next Eval of exactly these
	// states at this time copies them instead of running the denoiser.
	primed struct {
		ok     bool
		t      float64
		x      []int
		logits []float64
	}
}

// NewReverse returns the reverse-kernel base for kernel k and one denoiser
// per worker (all computing the same function, e.g. graph.Model clones),
// called in padded batches of exactly batch sequences.
func NewReverse(k diffusion.Kernel, dens []diffusion.Denoiser, batch int) (*Reverse, error) {
	if err := k.Validate(); err != nil {
		return nil, err
	}
	p, err := newDenoiserPool(dens, batch)
	if err != nil {
		return nil, err
	}
	r := &Reverse{k: k, pool: p, l: p.l, v: p.v, width: p.l * p.v}
	if MaxCachedStates > 0 && allTimeIndependent(dens) {
		r.cache = newLogitCache(p, max(1, min(MaxCachedStates, MaxCachedValues/(p.l*p.v))))
	}
	return r, nil
}

// MaxCachedStates bounds the per-base cache of x0-logits kept for
// time-independent denoisers (states beyond it are evaluated every time);
// 0 disables the cache for bases built afterwards.
var MaxCachedStates = 1 << 16

// MaxCachedValues bounds the same cache by the number of logits it holds
// (L·V per state; 2^24 float64s = 128 MB), which binds for long sequences:
// 10,700 states of a 784-pixel binary image.
var MaxCachedValues = 1 << 24

// allTimeIndependent reports whether every denoiser declares
// diffusion.TimeIndependent, so that a state's logits can be reused.
func allTimeIndependent(dens []diffusion.Denoiser) bool {
	for _, d := range dens {
		ti, ok := d.(diffusion.TimeIndependent)
		if !ok || !ti.TimeIndependent() {
			return false
		}
	}
	return true
}

// Shape implements Base.
func (r *Reverse) Shape() (int, int) { return r.l, r.v }

// Width implements Base: the L·V x0-logits.
func (r *Reverse) Width() int { return r.width }

// Eval implements Base. With time-independent denoisers a state's logits
// are computed once and then reused (the particles of an SMC run revisit
// few distinct states, and the locally optimal proposal evaluates the same
// candidates at every step).
func (r *Reverse) Eval(x []int, t float64, out []float64, workers int) error {
	if p := &r.primed; p.ok && p.t == t && len(out) == len(p.logits) && slices.Equal(p.x, x) {
		copy(out, p.logits)
		return nil
	}
	if r.cache != nil {
		return r.cache.logits(x, t, out, workers)
	}
	return r.pool.logits(x, t, out, workers)
}

// Prime stores x0-logits of the states x (n·L tokens; logits n·L·V)
// computed elsewhere by the same denoiser, e.g. by a gradient look-ahead
// whose graph runs it forward anyway, so that the next Eval at these states
// does not run the denoiser again. It is a no-op without the cache (for
// time-dependent denoisers) and for states already cached or beyond
// MaxCachedStates. The caller guarantees the logits are the base
// denoiser's; Eval would otherwise mix two functions.
func (r *Reverse) Prime(x []int, logits []float64) error {
	if r.cache == nil {
		return nil
	}
	L, V := r.l, r.v
	if len(x)%L != 0 || len(logits) != len(x)/L*L*V {
		return fmt.Errorf("smc: Prime: %d tokens and %d logits do not match L=%d, V=%d", len(x), len(logits), L, V)
	}
	for i := range len(x) / L {
		k := stateKey(x[i*L : (i+1)*L])
		r.cache.put(k, append([]float64(nil), logits[i*L*V:(i+1)*L*V]...))
		r.cache.sawInRun(i, k) // cost hook (cost.go)
	}
	return nil
}

// PrimeAt is Prime for logits computed at time t: with the cache (for
// time-independent denoisers) it is Prime; otherwise the logits are kept
// for the next Eval of exactly the states x at time t (a gradient
// look-ahead's forward pass then serves as the base's evaluation of the
// same step). The same caveat as for Prime applies.
func (r *Reverse) PrimeAt(x []int, t float64, logits []float64) error {
	if r.cache != nil {
		return r.Prime(x, logits)
	}
	L, V := r.l, r.v
	if len(x)%L != 0 || len(logits) != len(x)/L*L*V {
		return fmt.Errorf("smc: PrimeAt: %d tokens and %d logits do not match L=%d, V=%d", len(x), len(logits), L, V)
	}
	p := &r.primed
	p.ok, p.t = true, t
	p.x = append(p.x[:0], x...)
	p.logits = append(p.logits[:0], logits...)
	return nil
}

// LogKernel implements Base.
func (r *Reverse) LogKernel(xt []int, ev []float64, t, s float64, out []float64) error {
	return r.k.PositionLogProbsInto(xt, ev, t, s, out)
}

// Normalized implements Base.
func (r *Reverse) Normalized() bool { return true }

// X0Logits implements Base.
func (r *Reverse) X0Logits(ev []float64) []float64 { return ev }

// Kernel implements KernelBase.
func (r *Reverse) Kernel() diffusion.Kernel { return r.k }

// Product is the base of the product target π ∝ p₁(x0)^a·p₂(x0)^b
// (classifier-free guidance when p₁ = p(·|c), p₂ = p(·), a = w, b = 1 − w).
// Following paper.md §2.3, its path kernel uses the forward kernel as the
// backward L-kernel:
//
//	k(x_s | x_t) = p₁(x_s|x_t)^a · p₂(x_s|x_t)^b · q_fwd(x_t|x_s)^{1−a−b},
//
// which factorises over positions. Its path marginal equals p₁^a·p₂^b
// exactly when the models satisfy detailed balance with the forward process
// (e.g. T = 1); in general it is the path-space product, which
// ExactTarget enumerates (its Base field). The look-ahead x0-logits are a·ℓ₁ + b·ℓ₂. A position where
// either model gives probability 0 gets probability 0 (support
// intersection), so negative exponents never produce +Inf.
type Product struct {
	k      diffusion.Kernel
	p1, p2 *denoiserPool
	a, b   float64
	l, v   int
}

// NewProduct returns the product base with exponents a and b for two
// denoiser pools (one denoiser per worker each) sharing the kernel k.
func NewProduct(k diffusion.Kernel, d1, d2 []diffusion.Denoiser, a, b float64, batch int) (*Product, error) {
	if err := k.Validate(); err != nil {
		return nil, err
	}
	if math.IsNaN(a) || math.IsInf(a, 0) || math.IsNaN(b) || math.IsInf(b, 0) {
		return nil, fmt.Errorf("smc: product exponents must be finite, got a=%v b=%v", a, b)
	}
	p1, err := newDenoiserPool(d1, batch)
	if err != nil {
		return nil, fmt.Errorf("%w (first model)", err)
	}
	p2, err := newDenoiserPool(d2, batch)
	if err != nil {
		return nil, fmt.Errorf("%w (second model)", err)
	}
	if p1.l != p2.l || p1.v != p2.v {
		return nil, fmt.Errorf("smc: product models have shapes L=%d V=%d and L=%d V=%d", p1.l, p1.v, p2.l, p2.v)
	}
	return &Product{k: k, p1: p1, p2: p2, a: a, b: b, l: p1.l, v: p1.v}, nil
}

// Shape implements Base.
func (p *Product) Shape() (int, int) { return p.l, p.v }

// Width implements Base: both models' x0-logits and their mix, 3·L·V.
func (p *Product) Width() int { return 3 * p.l * p.v }

// Eval implements Base.
func (p *Product) Eval(x []int, t float64, out []float64, workers int) error {
	n := len(x) / p.l
	lv := p.l * p.v
	if len(out) != n*3*lv {
		return fmt.Errorf("smc: product eval out has length %d, want %d", len(out), n*3*lv)
	}
	a := make([]float64, n*lv)
	b := make([]float64, n*lv)
	if err := p.p1.logits(x, t, a, workers); err != nil {
		return err
	}
	if err := p.p2.logits(x, t, b, workers); err != nil {
		return err
	}
	for i := range n {
		o := out[i*3*lv : (i+1)*3*lv]
		copy(o[:lv], a[i*lv:(i+1)*lv])
		copy(o[lv:2*lv], b[i*lv:(i+1)*lv])
		for j := range lv {
			o[2*lv+j] = p.a*o[j] + p.b*o[lv+j]
			if math.IsInf(o[j], -1) || math.IsInf(o[lv+j], -1) {
				o[2*lv+j] = math.Inf(-1)
			}
		}
	}
	return nil
}

// LogKernel implements Base.
func (p *Product) LogKernel(xt []int, ev []float64, t, s float64, out []float64) error {
	L, V := p.l, p.v
	lv := L * V
	if len(ev) != 3*lv || len(out) != L*(V+1) || len(xt) != L {
		return fmt.Errorf("smc: product kernel got lengths xt %d ev %d out %d", len(xt), len(ev), len(out))
	}
	k1 := make([]float64, L*(V+1))
	if err := p.k.PositionLogProbsInto(xt, ev[:lv], t, s, k1); err != nil {
		return err
	}
	if err := p.k.PositionLogProbsInto(xt, ev[lv:2*lv], t, s, out); err != nil {
		return err
	}
	at, as := p.k.Schedule.Alpha(t), p.k.Schedule.Alpha(s)
	c := 1 - p.a - p.b
	for l, u := range xt {
		for v := 0; v <= V; v++ {
			i := l*(V+1) + v
			l1, l2 := k1[i], out[i]
			if math.IsInf(l1, -1) || math.IsInf(l2, -1) {
				out[i] = math.Inf(-1)
				continue
			}
			val := 0.0
			if p.a != 0 {
				val += p.a * l1
			}
			if p.b != 0 {
				val += p.b * l2
			}
			if c != 0 {
				f := logForward(u, v, V, at, as)
				if math.IsInf(f, -1) {
					out[i] = math.Inf(-1)
					continue
				}
				val += c * f
			}
			out[i] = val
		}
	}
	return nil
}

// logForward is log q_fwd(x_t = u | x_s = v) of one position for the
// masking process: an unmasked v survives to t with probability α_t/α_s.
func logForward(u, v, V int, at, as float64) float64 {
	switch {
	case v == V: // masked stays masked
		if u == V {
			return 0
		}
		return math.Inf(-1)
	case u == V:
		return math.Log1p(-at / as)
	case u == v:
		return math.Log(at / as)
	default:
		return math.Inf(-1)
	}
}

// Normalized implements Base: the product kernel is unnormalised.
func (p *Product) Normalized() bool { return false }

// X0Logits implements Base: a·ℓ₁ + b·ℓ₂.
func (p *Product) X0Logits(ev []float64) []float64 { return ev[2*p.l*p.v:] }

// Kernel implements KernelBase (the x0-space gradient tilt uses the mixed
// logits with the shared kernel).
func (p *Product) Kernel() diffusion.Kernel { return p.k }

// denoiserPool evaluates x0-logits in padded fixed-size batches, one
// denoiser per worker.
type denoiserPool struct {
	dens  []diffusion.Denoiser
	batch int
	l, v  int
	xs    [][]int
	ts    [][]float64
	outs  [][]float64
	rows  atomic.Int64 // rows evaluated (Cost.DenoiserRows or ProposalRows)
}

func newDenoiserPool(dens []diffusion.Denoiser, batch int) (*denoiserPool, error) {
	if len(dens) == 0 || dens[0] == nil {
		return nil, fmt.Errorf("smc: need at least one denoiser")
	}
	if batch < 1 {
		return nil, fmt.Errorf("smc: denoiser batch size %d must be positive", batch)
	}
	L, V := dens[0].Shape()
	if L < 1 || V < 1 {
		return nil, fmt.Errorf("smc: denoiser shape L=%d V=%d invalid", L, V)
	}
	p := &denoiserPool{dens: dens, batch: batch, l: L, v: V}
	for i, d := range dens {
		if d == nil {
			return nil, fmt.Errorf("smc: denoiser %d is nil", i)
		}
		if l, v := d.Shape(); l != L || v != V {
			return nil, fmt.Errorf("smc: denoiser %d has shape L=%d V=%d, want L=%d V=%d", i, l, v, L, V)
		}
		p.xs = append(p.xs, make([]int, batch*L))
		p.ts = append(p.ts, make([]float64, batch))
		p.outs = append(p.outs, make([]float64, batch*L*V))
	}
	return p, nil
}

// logits evaluates x0-logits for n = len(x)/L states at time t.
func (p *denoiserPool) logits(x []int, t float64, out []float64, workers int) error {
	L, V := p.l, p.v
	if len(x)%L != 0 {
		return fmt.Errorf("smc: %d tokens is not a multiple of L = %d", len(x), L)
	}
	n := len(x) / L
	if len(out) != n*L*V {
		return fmt.Errorf("smc: logits buffer has length %d, want %d", len(out), n*L*V)
	}
	workers = max(1, min(workers, len(p.dens)))
	return forChunks(n, p.batch, workers, func(w, start, count int) error {
		xb, tb, ob := p.xs[w], p.ts[w], p.outs[w]
		copy(xb, x[start*L:(start+count)*L])
		for i := count * L; i < len(xb); i++ {
			xb[i] = V // pad with all-mask rows
		}
		for i := range tb {
			tb[i] = t
		}
		nan := math.NaN()
		for i := range ob {
			ob[i] = nan // a value the denoiser leaves unwritten stays NaN
		}
		if err := p.dens[w].X0Logits(xb, tb, ob); err != nil {
			return wrapf(err, "denoiser at t=%v", t)
		}
		if err := checkLogits(ob[:count*L*V], L, V, start); err != nil {
			return wrapf(err, "denoiser at t=%v", t)
		}
		copy(out[start*L*V:(start+count)*L*V], ob[:count*L*V])
		p.rows.Add(int64(count)) // cost hook (cost.go)
		return nil
	})
}

// logitCache memoises x0-logits by state for time-independent denoisers.
// Misses are evaluated together, in the order they first appear, so the
// cache's contents do not depend on the number of workers.
type logitCache struct {
	pool *denoiserPool
	max  int
	m    map[string][]float64

	runCount // rows charged to the current run (cost.go)
}

func newLogitCache(p *denoiserPool, max int) *logitCache {
	return &logitCache{pool: p, max: max, m: map[string][]float64{}}
}

func (c *logitCache) logits(x []int, t float64, out []float64, workers int) error {
	L, V := c.pool.l, c.pool.v
	if len(x)%L != 0 || len(out) != len(x)/L*L*V {
		return fmt.Errorf("smc: logits for %d tokens into %d values (L=%d, V=%d)", len(x), len(out), L, V)
	}
	n := len(x) / L
	var missX []int         // distinct missing states, in order of first appearance
	var missRows []int      // rows that missed
	pos := map[string]int{} // missing state → its index in missX
	keys := make([]string, n)
	for i := range n {
		k := stateKey(x[i*L : (i+1)*L])
		keys[i] = k
		if v, ok := c.m[k]; ok {
			copy(out[i*L*V:(i+1)*L*V], v)
			continue
		}
		if _, ok := pos[k]; !ok {
			pos[k] = len(missX) / L
			missX = append(missX, x[i*L:(i+1)*L]...)
		}
		missRows = append(missRows, i)
	}
	c.charge(keys, pos) // cost hook (cost.go)
	if len(missRows) == 0 {
		return nil
	}
	ml := make([]float64, len(missX)*V)
	if err := c.pool.logits(missX, t, ml, workers); err != nil {
		return err
	}
	for _, i := range missRows {
		j := pos[keys[i]]
		copy(out[i*L*V:(i+1)*L*V], ml[j*L*V:(j+1)*L*V])
	}
	for j := 0; j < len(missX)/L; j++ {
		c.put(stateKey(missX[j*L:(j+1)*L]), ml[j*L*V:(j+1)*L*V])
	}
	return nil
}

// put stores a state's logits (kept, not copied) unless the state is
// cached already or the cache is full.
func (c *logitCache) put(key string, logits []float64) {
	if _, ok := c.m[key]; ok || len(c.m) >= c.max {
		return
	}
	c.m[key] = logits
}

// checkLogits refuses x0-logits that are NaN (including values the
// denoiser left unwritten, which are pre-filled with NaN) or +Inf, for
// every row of a batch; first is the batch's first row.
func checkLogits(z []float64, L, V, first int) error {
	for i, v := range z {
		if math.IsNaN(v) || math.IsInf(v, 1) {
			what := "is NaN (not a number, or left unwritten)"
			if v > 0 {
				what = "is +Inf"
			}
			row := i / (L * V)
			return fmt.Errorf("smc: x0-logit of particle %d, position %d, token %d %s", first+row, i/V%L, i%V, what)
		}
	}
	return nil
}
