package objectives

import (
	"fmt"
	"math"
	"math/rand/v2"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/ddsmc/ddsmc/diffusion"
	"github.com/ddsmc/ddsmc/graph"
	"github.com/ddsmc/ddsmc/layers"
)

// TimeEps is the smallest training time: t is drawn in [TimeEps, 1] so the
// 1/t-type ELBO weight stays finite (MDLM's sampling_eps).
const TimeEps = 1e-3

// Data is a set of clean token sequences (experiments.Dataset satisfies it).
type Data interface {
	Len() int
	Row(i int) []int
}

// LabelledData is Data with a class label per row, which a
// class-conditional model (graph.Config.Classes > 0) trains on.
type LabelledData interface {
	Data
	Label(i int) int
}

// MDLMLoss is the MDLM continuous-time ELBO on a batch, as a Gorgonia graph
// bound to a model's master weights:
//
//	loss = (1/(B·L)) Σ_b Σ_l 1[x_t^{b,l} = MASK] · w(t_b) · (−log x̂θ(x_t^b)^l[x0^{b,l}])
//
// with w(t) = −α'(t)/(1 − α(t)) (Schedule.Rate; 1/t for the linear
// schedule). It is the masked cross-entropy weighted by the schedule, in
// nats per token, and its expectation over t ~ U(0,1) and the forward
// masking is the negative ELBO per token.
type MDLMLoss struct {
	Model *graph.Model
	Sched diffusion.Schedule
	B     int
	// MaskedMean makes the loss the mean cross-entropy over the batch's
	// masked tokens (TrainConfig.Loss = "masked_ce") instead of the
	// schedule-weighted ELBO.
	MaskedMean bool
	// LabelDropout is the probability that a row of a class-conditional
	// model's batch is shown the null class instead of its label
	// (classifier-free guidance training), so that the one network learns
	// p(x | c) and p(x).
	LabelDropout float64

	ctx    *layers.Ctx
	net    *graph.Net
	in     *graph.Inputs
	y, w   *tensor.Dense // clean one-hots [B·L, V], weights [B·L]
	yv, wv []float64
	loss   *G.Node
	lossV  G.Value
	x0, xt []int
	t      []float64
	cls    []int
}

// NewMDLMLoss builds the loss graph for batch size B. Its parameter nodes
// alias the model's master tensors, so a solver stepping them trains the
// model in place.
func NewMDLMLoss(m *graph.Model, s diffusion.Schedule, B int) (*MDLMLoss, error) {
	if B <= 0 {
		return nil, fmt.Errorf("objectives: batch size %d must be positive", B)
	}
	L, V := m.Shape()
	ctx := layers.NewCtx(m.Store, true)
	net, err := graph.Build(m.Cfg, ctx, B)
	if err != nil {
		return nil, err
	}
	f := &MDLMLoss{Model: m, Sched: s, B: B, ctx: ctx, net: net, in: graph.NewInputs(m.Cfg, B),
		yv: make([]float64, B*L*V), wv: make([]float64, B*L),
		x0: make([]int, B*L), xt: make([]int, B*L), t: make([]float64, B)}
	dt := m.Store.DType()
	f.y = layers.NewDense(dt, []int{B * L, V}, f.yv)
	f.w = layers.NewDense(dt, []int{B * L}, f.wv)
	err = func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("objectives: building MDLM loss: %v", r)
			}
		}()
		logp, err := layers.LogSoftmax(net.Flat)
		if err != nil {
			return err
		}
		y := ctx.Input("x0_onehot", B*L, V)
		w := ctx.Input("weights", B*L)
		ll := G.Must(G.Sum(G.Must(G.HadamardProd(logp, y)), 1)) // [B·L]
		f.loss = G.Must(G.HadamardProd(G.Must(G.Sum(G.Must(G.HadamardProd(ll, w)))), ctx.Const(-1/float64(B*L))))
		G.Read(f.loss, &f.lossV)
		if err := G.Let(y, f.y); err != nil {
			return err
		}
		return G.Let(w, f.w)
	}()
	if err != nil {
		return nil, err
	}
	if err := f.in.Bind(net); err != nil {
		return nil, err
	}
	return f, nil
}

// Learnables returns the parameter nodes.
func (f *MDLMLoss) Learnables() G.Nodes { return f.ctx.Learnables() }

// Graph returns the loss graph.
func (f *MDLMLoss) Graph() *G.ExprGraph { return f.ctx.G }

// Node returns the scalar loss node.
func (f *MDLMLoss) Node() *G.Node { return f.loss }

// Value returns the loss computed by the last run.
func (f *MDLMLoss) Value() float64 {
	switch v := f.lossV.Data().(type) {
	case float32:
		return float64(v)
	case float64:
		return v
	}
	return math.NaN()
}

// SampleBatch draws B rows of data with replacement, stratified times
// t_b = TimeEps + (1−TimeEps)·((u + b/B) mod 1) (low-variance, as in MDLM),
// masks them with the forward process and fills the graph's inputs.
func (f *MDLMLoss) SampleBatch(rng *rand.Rand, data Data) error {
	n := data.Len()
	if n == 0 {
		return fmt.Errorf("objectives: empty data set")
	}
	L, _ := f.Model.Shape()
	K := f.Model.Cfg.Classes
	var ld LabelledData
	if K > 0 {
		var ok bool
		if ld, ok = data.(LabelledData); !ok {
			return fmt.Errorf("objectives: the denoiser is class-conditional (model.classes = %d) but the data have no labels", K)
		}
		if f.cls == nil {
			f.cls = make([]int, f.B)
		}
	}
	u := rng.Float64()
	for b := 0; b < f.B; b++ {
		i := rng.IntN(n)
		row := data.Row(i)
		if ld != nil {
			c := ld.Label(i)
			if c < 0 || c >= K {
				return fmt.Errorf("objectives: row %d has label %d, outside the model's classes 0..%d", i, c, K-1)
			}
			if rng.Float64() < f.LabelDropout {
				c = graph.NullClass
			}
			f.cls[b] = c
		}
		if len(row) != L {
			return fmt.Errorf("objectives: data row has length %d, model expects L = %d", len(row), L)
		}
		copy(f.x0[b*L:], row)
		f.t[b] = TimeEps + (1-TimeEps)*math.Mod(u+float64(b)/float64(f.B), 1)
	}
	if ld != nil {
		if err := f.in.SetClasses(f.cls); err != nil {
			return err
		}
	}
	return f.SetBatch(rng, f.x0, f.t)
}

// SetBatch masks the given clean rows x0 (length B·L) at times t (length B)
// with the forward process and fills the graph's inputs.
func (f *MDLMLoss) SetBatch(rng *rand.Rand, x0 []int, t []float64) error {
	L, V := f.Model.Shape()
	if len(x0) != f.B*L || len(t) != f.B {
		return fmt.Errorf("objectives: batch of %d tokens and %d times, want %d and %d", len(x0), len(t), f.B*L, f.B)
	}
	clear(f.yv)
	for b := 0; b < f.B; b++ {
		if err := diffusion.ForwardMask(rng, f.Sched, t[b], V, x0[b*L:(b+1)*L], f.xt[b*L:(b+1)*L]); err != nil {
			return err
		}
		rate := f.Sched.Rate(t[b])
		for l := 0; l < L; l++ {
			i := b*L + l
			f.yv[i*V+x0[i]] = 1
			f.wv[i] = 0
			if f.xt[i] == V {
				f.wv[i] = rate
			}
		}
	}
	if f.MaskedMean { // the graph divides by B·L: weight B·L/#masked
		masked := 0
		for _, x := range f.xt {
			if x == V {
				masked++
			}
		}
		for i, x := range f.xt {
			f.wv[i] = 0
			if x == V {
				f.wv[i] = float64(f.B*L) / float64(masked)
			}
		}
	}
	if err := layers.SetFloat64s(f.y, f.yv); err != nil {
		return err
	}
	if err := layers.SetFloat64s(f.w, f.wv); err != nil {
		return err
	}
	return f.in.SetTokens(f.xt, t)
}
