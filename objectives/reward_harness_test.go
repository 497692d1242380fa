package objectives

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/ddsmc/ddsmc/graph"
	"github.com/ddsmc/ddsmc/internal/testutil"
	"github.com/ddsmc/ddsmc/layers"
	"github.com/ddsmc/ddsmc/smc"
)

// rewardHarness is the test graph of a RewardGraph: soft one-hot inputs
// x0 [n·L, V] bound to xv, the reward node r (read into rv) and, with a
// gradient, ∂Σ_b r_b/∂x0 (read into gv; the cost into costV). The
// classifier, PWM, logistic-regression and bag-of-embeddings reward tests
// share it, with the checks below.
type rewardHarness struct {
	ctx   *layers.Ctx
	x     *tensor.Dense
	xv    []float64
	r     *G.Node
	rv    G.Value
	costV G.Value
	gv    G.Value
	m     G.VM
}

// buildRewardHarness builds rw's graph for n sequences of the given dtype
// and checks that Build added no parameters to the caller's context.
func buildRewardHarness(t testing.TB, rw RewardGraph, dtype tensor.Dtype, n int, withGrad bool) *rewardHarness {
	t.Helper()
	unlock := graph.LockBuild()
	defer unlock()
	L, V := rw.Shape()
	s, err := layers.NewStore(dtype, 1)
	if err != nil {
		t.Fatal(err)
	}
	g := &rewardHarness{ctx: layers.NewCtx(s, false), xv: make([]float64, n*L*V)}
	x := g.ctx.Input("x0", n*L, V)
	g.x = layers.NewDense(dtype, []int{n * L, V}, g.xv)
	if err := G.Let(x, g.x); err != nil {
		t.Fatal(err)
	}
	if g.r, err = rw.Build(g.ctx, x, n); err != nil {
		t.Fatal(err)
	}
	if !g.r.Shape().Eq(tensor.Shape{n}) {
		t.Fatalf("reward node has shape %v, want [%d]", g.r.Shape(), n)
	}
	G.Read(g.r, &g.rv)
	if withGrad {
		cost := G.Must(G.Sum(g.r))
		G.Read(cost, &g.costV)
		gr, err := G.Grad(cost, x)
		if err != nil {
			t.Fatal(err)
		}
		G.Read(gr[0], &g.gv)
	}
	if len(g.ctx.Learnables()) != 0 || len(s.Names()) != 0 {
		t.Fatalf("Build added parameters to the caller's context: %v / %v", g.ctx.Learnables(), s.Names())
	}
	g.m = layers.TapeMachine(g.ctx.G)
	return g
}

// run evaluates the graph at soft input xs (copied in) and returns the
// rewards.
func (g *rewardHarness) run(t testing.TB, xs []float64) []float64 {
	t.Helper()
	copy(g.xv, xs)
	if err := layers.SetFloat64s(g.x, g.xv); err != nil {
		t.Fatal(err)
	}
	g.m.Reset()
	if err := g.m.RunAll(); err != nil {
		t.Fatal(err)
	}
	return layers.Float64s(g.rv, nil)
}

// gradient evaluates the graph (built with a gradient) at soft input xs
// and returns ∂Σ_b r_b/∂x0.
func (g *rewardHarness) gradient(t testing.TB, xs []float64) []float64 {
	t.Helper()
	g.run(t, xs)
	return layers.Float64s(g.gv, nil)
}

// checkGradient checks the graph's gradient (built with one) at soft
// input xs against central finite differences of Σ_b r_b with step h at
// every coordinate (relative error ≤ tol, as testutil.Checker) and
// returns it, with the checker (Worst and Checked, for a closing log).
func (g *rewardHarness) checkGradient(t testing.TB, xs []float64, h, tol float64) ([]float64, *testutil.Checker) {
	t.Helper()
	grad := g.gradient(t, xs)
	cost := func() float64 {
		s := 0.0
		for _, r := range g.run(t, xs) {
			s += r
		}
		return s
	}
	fd := &testutil.Checker{H: h, Tol: tol}
	fd.All(t, "d r/d x", cost, xs, grad)
	return grad, fd
}

// softOneHots returns m Dirichlet-like rows over V.
func softOneHots(rng *rand.Rand, m, V int) []float64 {
	xs := make([]float64, m*V)
	for i := range m {
		s := 0.0
		for v := range V {
			xs[i*V+v] = rng.ExpFloat64()
			s += xs[i*V+v]
		}
		for v := range V {
			xs[i*V+v] /= s
		}
	}
	return xs
}

// randomTokens returns n tokens drawn uniformly from 0..V−1.
func randomTokens(rng *rand.Rand, n, V int) []int {
	x := make([]int, n)
	for i := range x {
		x[i] = rng.IntN(V)
	}
	return x
}

// oneHots returns the one-hot rows [len(x), V] of the tokens x.
func oneHots(x []int, V int) []float64 {
	xs := make([]float64, len(x)*V)
	for i, v := range x {
		xs[i*V+v] = 1
	}
	return xs
}

// tokenRewardGraph is a reward on tokens that is also a RewardGraph.
type tokenRewardGraph interface {
	smc.Reward
	RewardGraph
}

// graphOnOneHots returns rw's graph rewards (in dtype dt) on the one-hots
// of the sequences x, and its token rewards of x.
func graphOnOneHots(t testing.TB, rw tokenRewardGraph, dt tensor.Dtype, x []int) (graph, token []float64) {
	t.Helper()
	L, V := rw.Shape()
	n := len(x) / L
	token = make([]float64, n)
	if err := rw.Reward(x, token); err != nil {
		t.Fatal(err)
	}
	g := buildRewardHarness(t, rw, dt, n, false)
	defer g.m.Close()
	return g.run(t, oneHots(x, V)), token
}

// checkLogProbGraph checks that a reward log p of a classifier (≤ 0) is,
// in its graph in dtype dt on the one-hots of x, the token reward
// (relative error ≤ tol, floored at 1, and finite), and returns the token
// rewards; what prefixes the failure.
func checkLogProbGraph(t testing.TB, rw tokenRewardGraph, dt tensor.Dtype, x []int, tol float64, what string) []float64 {
	t.Helper()
	got, want := graphOnOneHots(t, rw, dt, x)
	for b := range want {
		if d := math.Abs(got[b] - want[b]); d > tol*math.Max(1, math.Abs(want[b])) || want[b] > 0 || math.IsInf(got[b], 0) {
			t.Fatalf("%s: graph %v, token reward %v", what, got, want)
		}
	}
	return want
}

// checkInLookAhead plugs rw into a LookAhead over a small float64 MLP
// denoiser (B sequences, K look-ahead samples each, time tm, logit
// scale), at partly masked inputs drawn with rng, and checks that its
// straight-through rewards equal the token rewards of the hard
// carried-over samples (1e-10) and that its gradient is not zero.
func checkInLookAhead(t *testing.T, rw tokenRewardGraph, rng *rand.Rand, B, K int, tm, scale float64) {
	t.Helper()
	L, V := rw.Shape()
	m, err := graph.New(graph.Config{Arch: "mlp", L: L, V: V, Embed: 4, Hidden: 16, Layers: 2, Act: "relu", DType: "float64", InitSeed: 5})
	if err != nil {
		t.Fatal(err)
	}
	la, err := NewLookAhead(m, rw, LookAheadConfig{Batch: B, Phi: K, Tau: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	xt := randomTokens(rng, B*L, V+1) // V = MASK
	noise := laGumbel(rng, B*K*L*V)
	o := laHard(t, la, xt, tm, scale, noise)
	want := make([]float64, B*K)
	if err := rw.Reward(hardSamples(xt, o.logits, noise, B, K, L, V), want); err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(o.rewards, want); d > 1e-10 {
		t.Fatalf("look-ahead rewards %v, token rewards %v (diff %.3g)", o.rewards, want, d)
	}
	if maxAbsDiff(o.grad, make([]float64, len(o.grad))) == 0 {
		t.Fatal("look-ahead gradient is zero")
	}
}

// buildError is the error of rw.Build for n sequences on a fresh float64
// input node of shape [rows, cols].
func buildError(t testing.TB, rw RewardGraph, rows, cols, n int) error {
	t.Helper()
	unlock := graph.LockBuild()
	defer unlock()
	ctx := layers.NewCtx(newStore(t, tensor.Float64), false)
	_, err := rw.Build(ctx, ctx.Input("x", rows, cols), n)
	return err
}

func newStore(t testing.TB, dt tensor.Dtype) *layers.Store {
	t.Helper()
	s, err := layers.NewStore(dt, 1)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkBuildRejects checks that rw.Build refuses, with errors naming the
// problem, an input of the wrong shape, n = 0 sequences, a nil context, a
// nil input and an input of another dtype than the context's store.
func checkBuildRejects(t testing.TB, rw RewardGraph) {
	t.Helper()
	L, V := rw.Shape()
	if err := buildError(t, rw, 2*L, V+1, 2); err == nil || !strings.Contains(err.Error(), "shape") {
		t.Errorf("wrong input shape: %v", err)
	}
	if err := buildError(t, rw, 2*L, V, 0); err == nil || !strings.Contains(err.Error(), "0 sequences") {
		t.Errorf("n = 0: %v", err)
	}
	unlock := graph.LockBuild()
	defer unlock()
	ctx := layers.NewCtx(newStore(t, tensor.Float64), false)
	if _, err := rw.Build(nil, ctx.Input("x", 2*L, V), 2); err == nil {
		t.Error("nil context: want an error")
	}
	if _, err := rw.Build(ctx, nil, 2); err == nil {
		t.Error("nil input: want an error")
	}
	if _, err := rw.Build(layers.NewCtx(newStore(t, tensor.Float32), false), ctx.Input("x2", 2*L, V), 2); err == nil || !strings.Contains(err.Error(), "dtype") {
		t.Errorf("dtype mismatch: %v", err)
	}
}
