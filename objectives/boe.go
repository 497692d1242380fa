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

// BoEReward is the reward of a bag-of-embeddings MLP over one-hot tokens
// (the nonlinear control of domains.md §1.4):
//
//	h(x) = (1/L) Σ_l E[x_l],   u = tanh(h·W1 + B1),   z(x) = u·W2 + B2,
//	r(x) = log σ(z(x)) = −softplus(−z(x)),
//
// the log-probability of the positive class. On soft one-hots S it is
// h(S) = (1/L) Σ_l S_l·E, so ∂r/∂S_l[v] = σ(−z)·(1/L)·Σ_j E[v][j]·
// Σ_k W1[j][k]·(1 − u_k²)·W2[k]: unlike the logistic regression's, the
// gradient depends on x through u and z (as a transformer classifier's
// would), although it is the same at every position of a sequence. It is
// an smc.Reward on tokens and a RewardGraph on soft one-hots. Its fields
// are read-only once built.
type BoEReward struct {
	L  int       // sequence length
	V  int       // tokens
	D  int       // embedding width
	H  int       // hidden width
	E  []float64 // embedding, V×D row-major
	W1 []float64 // first layer, D×H row-major
	B1 []float64 // first-layer bias, len H
	W2 []float64 // output weights, len H
	B2 float64   // output bias
}

var (
	_ smc.Reward  = (*BoEReward)(nil)
	_ RewardGraph = (*BoEReward)(nil)
)

// NewBoEReward checks and copies the weights of a bag-of-embeddings MLP for
// sequences of length L over V tokens with embedding width D and hidden
// width H: e is V×D and w1 D×H (row-major), b1 and w2 have length H.
func NewBoEReward(L, V, D, H int, e, w1, b1, w2 []float64, b2 float64) (*BoEReward, error) {
	if L <= 0 || V <= 0 || D <= 0 || H <= 0 {
		return nil, fmt.Errorf("objectives: bag-of-embeddings reward with L = %d, V = %d, D = %d, H = %d: all must be positive", L, V, D, H)
	}
	for _, p := range []struct {
		name string
		x    []float64
		n    int
	}{{"embedding E", e, V * D}, {"first layer W1", w1, D * H}, {"first-layer bias B1", b1, H}, {"output weights W2", w2, H}} {
		if len(p.x) != p.n {
			return nil, fmt.Errorf("objectives: bag-of-embeddings %s has %d entries, want %d", p.name, len(p.x), p.n)
		}
		for i, x := range p.x {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, fmt.Errorf("objectives: bag-of-embeddings %s entry %d = %v is not finite", p.name, i, x)
			}
		}
	}
	if math.IsNaN(b2) || math.IsInf(b2, 0) {
		return nil, fmt.Errorf("objectives: bag-of-embeddings output bias B2 = %v is not finite", b2)
	}
	cp := func(x []float64) []float64 { return append([]float64(nil), x...) }
	return &BoEReward{L: L, V: V, D: D, H: H, E: cp(e), W1: cp(w1), B1: cp(b1), W2: cp(w2), B2: b2}, nil
}

// Shape implements RewardGraph: (L, V).
func (r *BoEReward) Shape() (L, V int) { return r.L, r.V }

// check reports whether the receiver's fields are consistent (they are
// when it comes from NewBoEReward), so that a hand-built value is an
// error rather than a panic.
func (r *BoEReward) check() error {
	if r.L <= 0 || r.V <= 0 || r.D <= 0 || r.H <= 0 || len(r.E) != r.V*r.D || len(r.W1) != r.D*r.H || len(r.B1) != r.H || len(r.W2) != r.H {
		return fmt.Errorf("objectives: bag-of-embeddings reward with L = %d, V = %d, D = %d, H = %d has weights of the wrong sizes (%d, %d, %d, %d)",
			r.L, r.V, r.D, r.H, len(r.E), len(r.W1), len(r.B1), len(r.W2))
	}
	return nil
}

// Logits writes z(x0_b) for B = len(out) sequences x0 (B·L tokens).
func (r *BoEReward) Logits(x0 []int, out []float64) error {
	if err := r.check(); err != nil {
		return err
	}
	if err := checkSequences(boeName, x0, len(out), r.L); err != nil {
		return err
	}
	h := make([]float64, r.D)
	for b := range out {
		clear(h)
		for l, v := range x0[b*r.L : (b+1)*r.L] {
			if err := checkToken(boeName, v, l, r.V); err != nil {
				return err
			}
			for j, e := range r.E[v*r.D : (v+1)*r.D] {
				h[j] += e
			}
		}
		for j := range h {
			h[j] /= float64(r.L)
		}
		out[b] = r.head(h)
	}
	return nil
}

// head is z = tanh(h·W1 + B1)·W2 + B2 for a pooled embedding h.
func (r *BoEReward) head(h []float64) float64 {
	z := r.B2
	for k := range r.H {
		a := r.B1[k]
		for j, hj := range h {
			a += hj * r.W1[j*r.H+k]
		}
		z += math.Tanh(a) * r.W2[k]
	}
	return z
}

// Reward implements smc.Reward: log σ(z(x0_b)) for each sequence.
func (r *BoEReward) Reward(x0 []int, out []float64) error {
	return logSigmoidRewards(r.Logits, x0, out)
}

// boeName names the bag-of-embeddings reward in errors.
const boeName = "bag-of-embeddings reward"

// boeSeq numbers Build calls, so that the weight nodes of two builds in one
// graph never merge (Gorgonia merges equal-named inputs).
var boeSeq atomic.Uint64

// Build implements RewardGraph: x0 [n·L, V] is reshaped to [n, L, V] and
// summed over positions ([n, V]), then multiplied by E/L ([V, D]; pooling
// before the matmul costs L times less than embedding every position),
// which gives h [n, D]; then u = tanh(h·W1 + B1) [n, H] (Gorgonia's Tanh,
// whose gradient 1 − u² is correct), z = u·W2 + B2 [n] and
// r = −softplus(−z) (linear beyond 16, so large |z| cannot overflow). The
// weights are copied into constant nodes of the graph's dtype (the biases
// tiled over the n rows): they are not learnables.
func (r *BoEReward) Build(c *layers.Ctx, x0 *G.Node, n int) (out *G.Node, err error) {
	L, V, D, H := r.L, r.V, r.D, r.H
	dt, err := checkBuildArgs(boeName, c, x0, n, L, V, r.check)
	if err != nil {
		return nil, err
	}
	defer recoverBuild(boeName, &err)
	id := boeSeq.Add(1)
	name := func(s string) G.NodeConsOpt { return G.WithName(fmt.Sprintf("boe#%d/%s", id, s)) }
	eScaled := make([]float64, len(r.E))
	for i, e := range r.E {
		eScaled[i] = e / float64(L)
	}
	e := G.NewMatrix(c.G, dt, G.WithShape(V, D), name("e"), G.WithValue(layers.NewDense(dt, []int{V, D}, eScaled)))
	w1 := G.NewMatrix(c.G, dt, G.WithShape(D, H), name("w1"), G.WithValue(layers.NewDense(dt, []int{D, H}, r.W1)))
	b1 := G.NewMatrix(c.G, dt, G.WithShape(n, H), name("b1"), G.WithValue(layers.NewDense(dt, []int{n, H}, tile(r.B1, n))))
	w2 := G.NewVector(c.G, dt, G.WithShape(H), name("w2"), G.WithValue(layers.NewDense(dt, []int{H}, r.W2)))
	bz := G.NewVector(c.G, dt, G.WithShape(n), name("b2"), G.WithValue(layers.NewDense(dt, []int{n}, tile([]float64{r.B2}, n))))

	counts := G.Must(G.Sum(G.Must(G.Reshape(x0, tensor.Shape{n, L, V})), 1)) // [n, V]
	h := G.Must(G.Mul(counts, e))                                            // [n, D]
	u := G.Must(G.Tanh(G.Must(G.Add(G.Must(G.Mul(h, w1)), b1))))             // [n, H]
	z := G.Must(G.Add(G.Must(G.Mul(u, w2)), bz))                             // [n]
	return logSigmoidNode(z), nil
}
