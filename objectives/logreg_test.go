package objectives

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gorgonia.org/tensor"

	"github.com/ddsmc/ddsmc/graph"
	"github.com/ddsmc/ddsmc/internal/testutil"
	"github.com/ddsmc/ddsmc/layers"
)

func lrRandom(t *testing.T, rng *rand.Rand, L, V int, scale float64) *LogRegReward {
	t.Helper()
	w := make([]float64, V)
	for i := range w {
		w[i] = scale * rng.NormFloat64()
	}
	r, err := NewLogRegReward(L, w, 0.3)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The graph's gradient with respect to soft one-hot inputs matches central
// finite differences of Σ_b r_b in float64 at every input coordinate
// (relative error < 1e-7), and equals the closed form σ(−z_b)·W[v].
func lrBuild(t *testing.T, r *LogRegReward, dt tensor.Dtype, n int) *rewardHarness {
	return buildRewardHarness(t, r, dt, n, true)
}

func TestLogRegRewardGradientMatchesFiniteDifferences(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n, L, V = 3, 4, 5
	r := lrRandom(t, rng, L, V, 1.5)
	g := lrBuild(t, r, tensor.Float64, n)
	defer g.m.Close()
	xs := make([]float64, n*L*V)
	for i := 0; i < n*L; i++ { // soft one-hot rows (Dirichlet-like)
		s := 0.0
		for v := range V {
			xs[i*V+v] = rng.ExpFloat64()
			s += xs[i*V+v]
		}
		for v := range V {
			xs[i*V+v] /= s
		}
	}
	g.run(t, xs)
	grad := layers.Float64s(g.gv, nil)
	cost := func() float64 {
		s := 0.0
		for _, v := range g.run(t, xs) {
			s += v
		}
		return s
	}
	fd := testutil.Checker{H: 1e-6, Tol: 1e-7}
	fd.All(t, "d r/d x", cost, xs, grad)
	for b := range n {
		z := r.Bias
		for l := range L {
			for v := range V {
				z += r.W[v] * xs[(b*L+l)*V+v]
			}
		}
		for l := range L {
			for v := range V {
				if want := r.W[v] / (1 + math.Exp(z)); math.Abs(grad[(b*L+l)*V+v]-want) > 1e-12 {
					t.Fatalf("grad[%d][%d][%d] = %v, closed form σ(−z)·W = %v", b, l, v, grad[(b*L+l)*V+v], want)
				}
			}
		}
	}
	t.Logf("%d coordinates checked, worst relative error %.2g", fd.Checked, fd.Worst)
}

// On hard one-hots the graph equals the token reward log σ(z) (1e-12 in
// float64, 1e-5 in float32), also for logits far in both tails.
func TestLogRegRewardGraphEqualsTokenReward(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const n, L, V = 6, 3, 7
	for _, c := range []struct {
		dt    tensor.Dtype
		scale float64
		tol   float64
	}{{tensor.Float64, 1, 1e-12}, {tensor.Float64, 15, 1e-12}, {tensor.Float32, 1, 1e-5}} {
		r := lrRandom(t, rng, L, V, c.scale)
		x := make([]int, n*L)
		for i := range x {
			x[i] = rng.IntN(V)
		}
		want := make([]float64, n)
		if err := r.Reward(x, want); err != nil {
			t.Fatal(err)
		}
		xs := make([]float64, n*L*V)
		for i, v := range x {
			xs[i*V+v] = 1
		}
		g := lrBuild(t, r, c.dt, n)
		got := g.run(t, xs)
		g.m.Close()
		for b := range n {
			if d := math.Abs(got[b] - want[b]); d > c.tol*math.Max(1, math.Abs(want[b])) || want[b] > 0 {
				t.Fatalf("%v scale %v: graph %v, token reward %v", c.dt, c.scale, got, want)
			}
		}
	}
	for _, z := range []float64{-800, -40, -1, 0, 1, 40, 800} {
		want := -math.Log1p(math.Exp(-z))
		if z < -700 {
			want = z
		}
		if d := math.Abs(LogSigmoid(z) - want); d > 1e-12*math.Max(1, math.Abs(want)) || math.IsInf(LogSigmoid(z), 0) {
			t.Errorf("LogSigmoid(%v) = %v, want %v", z, LogSigmoid(z), want)
		}
	}
}

// The reward plugs into a LookAhead: in float64 its straight-through
// rewards equal the token reward of the hard carried-over samples.
func TestLogRegRewardInLookAhead(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const B, K, L, V, tm, scale = 2, 3, 4, 6, 0.6, 10.0
	r := lrRandom(t, rng, L, V, 1)
	m, err := graph.New(graph.Config{Arch: "mlp", L: L, V: V, Embed: 4, Hidden: 16, Layers: 2, Act: "relu", DType: "float64", InitSeed: 5})
	if err != nil {
		t.Fatal(err)
	}
	la, err := NewLookAhead(m, r, LookAheadConfig{Batch: B, Phi: K, Tau: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	xt := make([]int, B*L)
	for i := range xt {
		xt[i] = rng.IntN(V + 1) // V = MASK
	}
	noise := laGumbel(rng, B*K*L*V)
	o := laHard(t, la, xt, tm, scale, noise)
	want := make([]float64, B*K)
	if err := r.Reward(hardSamples(xt, o.logits, noise, B, K, L, V), want); err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(o.rewards, want); d > 1e-10 {
		t.Fatalf("look-ahead rewards %v, token rewards %v", o.rewards, want)
	}
	if maxAbsDiff(o.grad, make([]float64, len(o.grad))) == 0 {
		t.Fatal("look-ahead gradient is zero")
	}
}

// Bad weights, shapes and tokens are errors naming the problem.
func TestLogRegRewardBadInputs(t *testing.T) {
	if _, err := NewLogRegReward(2, []float64{1, math.NaN()}, 0); err == nil || !strings.Contains(err.Error(), "weight 1") {
		t.Errorf("NaN weight: %v", err)
	}
	if _, err := NewLogRegReward(0, []float64{1}, 0); err == nil {
		t.Error("L = 0: want an error")
	}
	if _, err := NewLogRegReward(2, []float64{1}, math.Inf(1)); err == nil || !strings.Contains(err.Error(), "bias") {
		t.Errorf("infinite bias: %v", err)
	}
	r, _ := NewLogRegReward(2, []float64{1, 2, 3}, 0)
	out := make([]float64, 1)
	if err := r.Reward([]int{0, 3}, out); err == nil || !strings.Contains(err.Error(), "token 3 at position 1") {
		t.Errorf("token outside V: %v", err)
	}
	if err := r.Reward([]int{0, 1, 2}, out); err == nil {
		t.Error("ragged input: want an error")
	}
	unlock := graph.LockBuild()
	defer unlock()
	s, _ := layers.NewStore(tensor.Float64, 1)
	ctx := layers.NewCtx(s, false)
	if _, err := r.Build(ctx, ctx.Input("x", 4, 4), 2); err == nil || !strings.Contains(err.Error(), "shape") {
		t.Errorf("wrong input shape: %v", err)
	}
}
