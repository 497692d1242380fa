package objectives

import (
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/ddsmc/ddsmc/graph"
	"github.com/ddsmc/ddsmc/layers"
)

// rewardHarness is the test graph of a RewardGraph: soft one-hot inputs
// x0 [n·L, V] bound to xv, the reward node r (read into rv) and, with a
// gradient, ∂Σ_b r_b/∂x0 (read into gv; the cost into costV). The
// classifier, PWM and logistic-regression reward tests share it.
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
