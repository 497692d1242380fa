package objectives

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/ddsmc/ddsmc/layers"
	"github.com/ddsmc/ddsmc/smc"
)

// PWMReward is the soft motif count of a position weight matrix over
// sequences of L tokens from an alphabet of V = len(W[0]) letters, in
// nats:
//
//	r(x) = log Σ_{p=0}^{L−w} [exp(Σ_j W[j][x_{p+j}]) + exp(Σ_j R[j][x_{p+j}])]
//
// where W is the forward-strand log-odds matrix of width w and R the
// reverse-strand one (for DNA, W reversed in both axes; nil R scans one
// strand). It is an smc.Reward on tokens and a RewardGraph on soft one-hot
// inputs: the scores are one banded (Toeplitz) matmul of the one-hot rows
// [n, L·V] with a constant [L·V, S] matrix, S = (1 or 2)·(L−w+1), and the
// log-sum-exp is taken stably (max-shifted) with Gorgonia ops that are
// gradient-checked in float64.
type PWMReward struct {
	L int
	W [][]float64 // forward strand [w][V]
	R [][]float64 // reverse strand [w][V], or nil
}

var (
	_ smc.Reward  = (*PWMReward)(nil)
	_ RewardGraph = (*PWMReward)(nil)
)

// NewPWMReward checks the matrices (equal widths 1..L, a common V ≥ 2,
// finite entries) and returns the reward; the matrices are copied.
func NewPWMReward(L int, w, r [][]float64) (*PWMReward, error) {
	if len(w) == 0 || L < len(w) {
		return nil, fmt.Errorf("objectives: PWM reward of width %d for sequences of length %d: want 1 ≤ width ≤ L", len(w), L)
	}
	V := len(w[0])
	if V < 2 {
		return nil, fmt.Errorf("objectives: PWM reward over %d letters: want ≥ 2", V)
	}
	if r != nil && len(r) != len(w) {
		return nil, fmt.Errorf("objectives: PWM reward strands of widths %d and %d", len(w), len(r))
	}
	cp := func(m [][]float64, what string) ([][]float64, error) {
		if m == nil {
			return nil, nil
		}
		out := make([][]float64, len(m))
		for j, row := range m {
			if len(row) != V {
				return nil, fmt.Errorf("objectives: PWM reward %s row %d has %d letters, want %d", what, j, len(row), V)
			}
			for b, v := range row {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					return nil, fmt.Errorf("objectives: PWM reward %s entry [%d][%d] = %v is not finite", what, j, b, v)
				}
			}
			out[j] = append([]float64(nil), row...)
		}
		return out, nil
	}
	fw, err := cp(w, "forward")
	if err != nil {
		return nil, err
	}
	rv, err := cp(r, "reverse")
	if err != nil {
		return nil, err
	}
	return &PWMReward{L: L, W: fw, R: rv}, nil
}

// Shape implements RewardGraph.
func (p *PWMReward) Shape() (L, V int) { return p.L, len(p.W[0]) }

// Sites is the number of scored (position, strand) pairs S.
func (p *PWMReward) Sites() int {
	n := p.L - len(p.W) + 1
	if p.R != nil {
		return 2 * n
	}
	return n
}

// Scores writes the S site scores of one sequence x (L tokens) into s.
func (p *PWMReward) Scores(x []int, s []float64) {
	P := p.L - len(p.W) + 1
	for q := 0; q < P; q++ {
		f := 0.0
		for j, row := range p.W {
			f += row[x[q+j]]
		}
		s[q] = f
		if p.R != nil {
			r := 0.0
			for j, row := range p.R {
				r += row[x[q+j]]
			}
			s[P+q] = r
		}
	}
}

// Reward implements smc.Reward in float64: len(out) sequences of L tokens.
func (p *PWMReward) Reward(x0 []int, out []float64) error {
	L, V := p.Shape()
	if len(x0) != len(out)*L {
		return fmt.Errorf("objectives: PWM reward: %d tokens for %d sequences of length %d", len(x0), len(out), L)
	}
	s := make([]float64, p.Sites())
	for b := range out {
		x := x0[b*L : (b+1)*L]
		for i, v := range x {
			if v < 0 || v >= V {
				return fmt.Errorf("objectives: PWM reward: token %d at sequence %d, position %d is outside [0, %d)", v, b, i, V)
			}
		}
		p.Scores(x, s)
		out[b] = smc.LogSumExp(s)
	}
	return nil
}

// Toeplitz returns the banded matrix M [L·V, S] (row-major) with
// (one-hot x) · M = the site scores.
func (p *PWMReward) Toeplitz() []float64 {
	L, V := p.Shape()
	S := p.Sites()
	P := L - len(p.W) + 1
	m := make([]float64, L*V*S)
	for q := 0; q < P; q++ {
		for j := range p.W {
			for b := 0; b < V; b++ {
				m[((q+j)*V+b)*S+q] = p.W[j][b]
				if p.R != nil {
					m[((q+j)*V+b)*S+P+q] = p.R[j][b]
				}
			}
		}
	}
	return m
}

// Build implements RewardGraph: x0 [n·L, V] soft one-hots → r [n].
func (p *PWMReward) Build(c *layers.Ctx, x0 *G.Node, n int) (out *G.Node, err error) {
	if c == nil || c.G == nil || c.Store == nil {
		return nil, fmt.Errorf("objectives: PWM reward needs a context with a graph and a store")
	}
	L, V := p.Shape()
	if n <= 0 {
		return nil, fmt.Errorf("objectives: PWM reward for %d sequences", n)
	}
	if x0 == nil || !x0.Shape().Eq(tensor.Shape{n * L, V}) {
		return nil, fmt.Errorf("objectives: PWM reward input must have shape [%d, %d]", n*L, V)
	}
	dt := c.Store.DType()
	if x0.Dtype() != dt {
		return nil, fmt.Errorf("objectives: PWM reward input has dtype %v, the context's store %v", x0.Dtype(), dt)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("objectives: building PWM reward: %v", r)
		}
	}()
	S := p.Sites()
	id := buildSeq.Add(1)
	m := G.NewMatrix(c.G, dt, G.WithShape(L*V, S), G.WithName(fmt.Sprintf("pwm#%d/toeplitz", id)),
		G.WithValue(layers.NewDense(dt, []int{L * V, S}, p.Toeplitz())))
	x := G.Must(G.Reshape(x0, tensor.Shape{n, L * V}))
	s := G.Must(G.Mul(x, m)) // [n, S]
	if n == 1 {
		// Keep the reductions' results vectors of length 1.
		s = G.Must(G.Reshape(s, tensor.Shape{1, S}))
	}
	mx := G.Must(G.Max(s, 1))
	e := G.Must(G.Exp(G.Must(G.BroadcastSub(s, mx, nil, []byte{1}))))
	lse := G.Must(G.Add(G.Must(G.Log(G.Must(G.Sum(e, 1)))), mx))
	if !lse.Shape().Eq(tensor.Shape{n}) {
		lse = G.Must(G.Reshape(lse, tensor.Shape{n}))
	}
	return lse, nil
}
