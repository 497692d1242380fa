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
	if err := checkSequences(logregName, x0, len(out), r.L); err != nil {
		return err
	}
	V := len(r.W)
	for b := range out {
		z := r.Bias
		for l, v := range x0[b*r.L : (b+1)*r.L] {
			if err := checkToken(logregName, v, l, V); err != nil {
				return err
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
	return logSigmoidRewards(r.Logits, x0, out)
}

// logSigmoidRewards writes log σ(z) for the logits z that logits writes
// into out: the reward of a binary classifier's positive class.
func logSigmoidRewards(logits func(x0 []int, out []float64) error, x0 []int, out []float64) error {
	if err := logits(x0, out); err != nil {
		return err
	}
	for b, z := range out {
		out[b] = LogSigmoid(z)
	}
	return nil
}

// logregName names the logistic-regression reward in errors.
const logregName = "logistic-regression reward"

// checkSequences checks that x0 holds B sequences of length L ≥ 1; what
// names the reward in the error.
func checkSequences(what string, x0 []int, B, L int) error {
	if L < 1 || len(x0) != B*L {
		return fmt.Errorf("objectives: %s got %d tokens for %d sequences of length %d", what, len(x0), B, L)
	}
	return nil
}

// checkToken checks that the token v at position l is in 0..V−1; what
// names the reward in the error.
func checkToken(what string, v, l, V int) error {
	if v < 0 || v >= V {
		return fmt.Errorf("objectives: %s: token %d at position %d outside 0..%d", what, v, l, V-1)
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
	L, V := r.Shape()
	dt, err := checkBuildArgs(logregName, c, x0, n, L, V, func() error {
		if L <= 0 || V == 0 {
			return fmt.Errorf("objectives: logistic-regression reward with L = %d and %d weights", L, V)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	defer recoverBuild(logregName, &err)
	id := logregSeq.Add(1)
	w := G.NewVector(c.G, dt, G.WithShape(V), G.WithName(fmt.Sprintf("logreg#%d/w", id)),
		G.WithValue(layers.NewDense(dt, []int{V}, r.W)))
	b := G.NewVector(c.G, dt, G.WithShape(n), G.WithName(fmt.Sprintf("logreg#%d/b", id)),
		G.WithValue(layers.NewDense(dt, []int{n}, tile([]float64{r.Bias}, n))))
	perPos := G.Must(G.Mul(x0, w))                                       // [n·L]
	z := G.Must(G.Sum(G.Must(G.Reshape(perPos, tensor.Shape{n, L})), 1)) // [n]
	return logSigmoidNode(G.Must(G.Add(z, b))), nil
}

// checkBuildArgs checks the arguments of the RewardGraph.Build of a
// reward of shape (L, V), named what in the errors, in this order: a
// context with a graph and a store, an input node, the reward's own
// weights (weights reports their inconsistency), n > 0 sequences, then
// an input x0 of shape [n·L, V] in the dtype of the context's store,
// which it returns.
func checkBuildArgs(what string, c *layers.Ctx, x0 *G.Node, n, L, V int, weights func() error) (dt tensor.Dtype, err error) {
	if c == nil || c.G == nil || c.Store == nil {
		return dt, fmt.Errorf("objectives: %s needs a context with a graph and a store", what)
	}
	if x0 == nil {
		return dt, fmt.Errorf("objectives: %s needs an input node", what)
	}
	if err := weights(); err != nil {
		return dt, err
	}
	if n <= 0 {
		return dt, fmt.Errorf("objectives: %s for %d sequences", what, n)
	}
	if want := (tensor.Shape{n * L, V}); !x0.Shape().Eq(want) {
		return dt, fmt.Errorf("objectives: %s input has shape %v, want %v", what, x0.Shape(), want)
	}
	dt = c.Store.DType()
	if x0.Dtype() != dt {
		return dt, fmt.Errorf("objectives: %s input has dtype %v, the context's store %v", what, x0.Dtype(), dt)
	}
	return dt, nil
}

// recoverBuild, deferred by a Build, turns a panic while building the
// reward named what into the error *err.
func recoverBuild(what string, err *error) {
	if p := recover(); p != nil {
		*err = fmt.Errorf("objectives: building %s: %v", what, p)
	}
}

// tile repeats b n times.
func tile(b []float64, n int) []float64 {
	t := make([]float64, 0, n*len(b))
	for range n {
		t = append(t, b...)
	}
	return t
}

// logSigmoidNode is log σ(z) = −softplus(−z) (Gorgonia's Softplus, whose
// gradient σ is correct, and which is linear beyond 16 so large |z|
// cannot overflow).
func logSigmoidNode(z *G.Node) *G.Node {
	return G.Must(G.Neg(G.Must(G.Softplus(G.Must(G.Neg(z))))))
}
