package objectives

import (
	"fmt"
	"math"
	"sync/atomic"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/ddsmc/ddsmc/layers"
	"github.com/ddsmc/ddsmc/smc"
)

// LogRegReward is the reward of a bag-of-words logistic regression over
// one-hot tokens (domains.md §1.4):
//
//	z(x) = Bias + Σ_l W[x_l],   r(x) = log σ(z(x)) = −softplus(−z(x)),
//
// the log-probability of the positive class. On soft one-hots S it is
// z(S) = Bias + Σ_l ⟨W, S_l⟩, linear in S, so ∂z/∂S_l[v] = W[v] and
// ∂r/∂S_l[v] = σ(−z)·W[v]. It is an smc.Reward on tokens and a RewardGraph
// on soft one-hots; it is not additive (the log σ couples the positions).
// Its fields are read-only once built.
type LogRegReward struct {
	L    int       // sequence length
	W    []float64 // one weight per token, len V
	Bias float64
}

var (
	_ smc.Reward  = (*LogRegReward)(nil)
	_ RewardGraph = (*LogRegReward)(nil)
)

// NewLogRegReward checks and copies the weights of a logistic regression
// for sequences of length L over len(w) tokens.
func NewLogRegReward(L int, w []float64, bias float64) (*LogRegReward, error) {
	if L <= 0 || len(w) == 0 {
		return nil, fmt.Errorf("objectives: logistic-regression reward with L = %d and %d weights: both must be positive", L, len(w))
	}
	for v, x := range w {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("objectives: logistic-regression weight %d = %v is not finite", v, x)
		}
	}
	if math.IsNaN(bias) || math.IsInf(bias, 0) {
		return nil, fmt.Errorf("objectives: logistic-regression bias %v is not finite", bias)
	}
	return &LogRegReward{L: L, W: append([]float64(nil), w...), Bias: bias}, nil
}

// Shape implements RewardGraph: (L, V = len(W)).
func (r *LogRegReward) Shape() (L, V int) { return r.L, len(r.W) }

// Logits writes z(x0_b) for B = len(out) sequences x0 (B·L tokens).
func (r *LogRegReward) Logits(x0 []int, out []float64) error {
	if r.L < 1 || len(x0) != len(out)*r.L {
		return fmt.Errorf("objectives: logistic-regression reward got %d tokens for %d sequences of length %d", len(x0), len(out), r.L)
	}
	V := len(r.W)
	for b := range out {
		z := r.Bias
		for l, v := range x0[b*r.L : (b+1)*r.L] {
			if v < 0 || v >= V {
				return fmt.Errorf("objectives: logistic-regression reward: token %d at position %d outside 0..%d", v, l, V-1)
			}
			z += r.W[v]
		}
		out[b] = z
	}
	return nil
}

// LogSigmoid is log σ(z), computed without overflow for any z.
func LogSigmoid(z float64) float64 {
	if z >= 0 {
		return -math.Log1p(math.Exp(-z))
	}
	return z - math.Log1p(math.Exp(z))
}

// Reward implements smc.Reward: log σ(z(x0_b)) for each sequence.
func (r *LogRegReward) Reward(x0 []int, out []float64) error {
	if err := r.Logits(x0, out); err != nil {
		return err
	}
	for b, z := range out {
		out[b] = LogSigmoid(z)
	}
	return nil
}

// logregSeq numbers Build calls, so that the weight nodes of two builds in
// one graph never merge (Gorgonia merges equal-named inputs).
var logregSeq atomic.Uint64

// Build implements RewardGraph: x0 [n·L, V] times the weight vector gives
// [n·L], reshaped to [n, L] and summed over positions, plus the bias, then
// r = −softplus(−z) (Gorgonia's Softplus, whose gradient σ is correct, and
// which is linear beyond 16 so large |z| cannot overflow). The weights are
// copied into constant nodes of the graph's dtype: they are not learnables.
func (r *LogRegReward) Build(c *layers.Ctx, x0 *G.Node, n int) (out *G.Node, err error) {
	if c == nil || c.G == nil || c.Store == nil {
		return nil, fmt.Errorf("objectives: logistic-regression reward needs a context with a graph and a store")
	}
	if x0 == nil {
		return nil, fmt.Errorf("objectives: logistic-regression reward needs an input node")
	}
	L, V := r.Shape()
	if L <= 0 || V == 0 {
		return nil, fmt.Errorf("objectives: logistic-regression reward with L = %d and %d weights", L, V)
	}
	if n <= 0 {
		return nil, fmt.Errorf("objectives: logistic-regression reward for %d sequences", n)
	}
	if want := (tensor.Shape{n * L, V}); !x0.Shape().Eq(want) {
		return nil, fmt.Errorf("objectives: logistic-regression reward input has shape %v, want %v", x0.Shape(), want)
	}
	dt := c.Store.DType()
	if x0.Dtype() != dt {
		return nil, fmt.Errorf("objectives: logistic-regression reward input has dtype %v, the context's store %v", x0.Dtype(), dt)
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("objectives: building logistic-regression reward: %v", p)
		}
	}()
	id := logregSeq.Add(1)
	w := G.NewVector(c.G, dt, G.WithShape(V), G.WithName(fmt.Sprintf("logreg#%d/w", id)),
		G.WithValue(layers.NewDense(dt, []int{V}, r.W)))
	bias := make([]float64, n)
	for i := range bias {
		bias[i] = r.Bias
	}
	b := G.NewVector(c.G, dt, G.WithShape(n), G.WithName(fmt.Sprintf("logreg#%d/b", id)),
		G.WithValue(layers.NewDense(dt, []int{n}, bias)))
	perPos := G.Must(G.Mul(x0, w))                                       // [n·L]
	z := G.Must(G.Sum(G.Must(G.Reshape(perPos, tensor.Shape{n, L})), 1)) // [n]
	z = G.Must(G.Add(z, b))
	return G.Must(G.Neg(G.Must(G.Softplus(G.Must(G.Neg(z)))))), nil
}
