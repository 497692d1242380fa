package objectives

import (
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"

	"github.com/ddsmc/ddsmc/graph"
	"github.com/ddsmc/ddsmc/layers"
)

// pwmRandom returns a random forward matrix [w][V] and its reverse
// complement (reversed in both axes, as for DNA).
func pwmRandom(rng *rand.Rand, w, V int, scale float64) (fwd, rev [][]float64) {
	fwd = make([][]float64, w)
	rev = make([][]float64, w)
	for j := range fwd {
		fwd[j] = make([]float64, V)
		for b := range fwd[j] {
			fwd[j][b] = scale * rng.NormFloat64()
		}
	}
	for j := range rev {
		rev[j] = make([]float64, V)
		for b := range rev[j] {
			rev[j][b] = fwd[w-1-j][V-1-b]
		}
	}
	return fwd, rev
}

func pwmBuild(t testing.TB, rw *PWMReward, dtype tensor.Dtype, n int, withGrad bool) *rewardHarness {
	return buildRewardHarness(t, rw, dtype, n, withGrad)
}

// naivePWM is the reward by its definition, summing exp directly.
func naivePWM(x []int, fwd, rev [][]float64) float64 {
	s := 0.0
	for p := 0; p+len(fwd) <= len(x); p++ {
		f, r := 0.0, 0.0
		for j := range fwd {
			f += fwd[j][x[p+j]]
			r += rev[j][x[p+j]]
		}
		s += math.Exp(f) + math.Exp(r)
	}
	return math.Log(s)
}

// The graph's gradient with respect to soft one-hot inputs matches central
// finite differences of Σ_b r_b at every input coordinate (float64; h =
// 1e-6 gives truncation error O(h²·|r”'|) ≈ 1e-11 and rounding ≈ 1e-10,
// so 1e-6 relative is a loose bound), for one and for several sequences,
// with sites scoring up to ±10 nats (the max-shift matters).
func TestPWMRewardGradientMatchesFiniteDifferences(t *testing.T) {
	for _, n := range []int{1, 3} {
		rng := rand.New(rand.NewPCG(1, uint64(n)))
		const L, w, V, h, tol = 12, 4, 4, 1e-6, 1e-6
		fwd, rev := pwmRandom(rng, w, V, 2.5)
		rw, err := NewPWMReward(L, fwd, rev)
		if err != nil {
			t.Fatal(err)
		}
		g := pwmBuild(t, rw, tensor.Float64, n, true)
		xs := make([]float64, n*L*V)
		for i := 0; i < n*L; i++ { // soft one-hot rows (Dirichlet-like)
			s := 0.0
			for b := 0; b < V; b++ {
				xs[i*V+b] = rng.ExpFloat64()
				s += xs[i*V+b]
			}
			for b := 0; b < V; b++ {
				xs[i*V+b] /= s
			}
		}
		g.run(t, xs)
		grad := layers.Float64s(g.gv, nil)
		cost := func(x []float64) float64 {
			s := 0.0
			for _, r := range g.run(t, x) {
				s += r
			}
			return s
		}
		worst, norm := 0.0, 0.0
		for i := range xs {
			old := xs[i]
			xs[i] = old + h
			fp := cost(xs)
			xs[i] = old - h
			fm := cost(xs)
			xs[i] = old
			num := (fp - fm) / (2 * h)
			rel := math.Abs(grad[i]-num) / math.Max(1, math.Max(math.Abs(grad[i]), math.Abs(num)))
			worst = math.Max(worst, rel)
			norm = math.Max(norm, math.Abs(grad[i]))
			if rel > tol || math.IsNaN(grad[i]) {
				t.Fatalf("n=%d: d r/d x[%d]: analytic %.10g, finite difference %.10g (rel err %.3g)", n, i, grad[i], num, rel)
			}
		}
		if norm < 0.1 {
			t.Fatalf("degenerate test: gradient max %g", norm)
		}
		t.Logf("n=%d: %d coordinates, worst relative error %.2g", n, len(xs), worst)
	}
}

// On exact one-hot inputs the graph equals the token reward (1e-10 in
// float64, 1e-4 in float32 for rewards of size ≈ 10), which equals the
// definition summed directly.
func TestPWMRewardTokenMatchesGraph(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const L, w, V, n = 20, 5, 4, 6
	fwd, rev := pwmRandom(rng, w, V, 1.5)
	rw, err := NewPWMReward(L, fwd, rev)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]int, n*L)
	for i := range x {
		x[i] = rng.IntN(V)
	}
	tok := make([]float64, n)
	if err := rw.Reward(x, tok); err != nil {
		t.Fatal(err)
	}
	oh := make([]float64, n*L*V)
	for i, v := range x {
		oh[i*V+v] = 1
	}
	for _, c := range []struct {
		dt  tensor.Dtype
		tol float64
	}{{tensor.Float64, 1e-10}, {tensor.Float32, 1e-4}} {
		g := pwmBuild(t, rw, c.dt, n, false)
		got := g.run(t, oh)
		for b := range tok {
			if d := math.Abs(got[b] - tok[b]); d > c.tol {
				t.Fatalf("%v: graph reward %v, token reward %v", c.dt, got[b], tok[b])
			}
			if d := math.Abs(tok[b] - naivePWM(x[b*L:(b+1)*L], fwd, rev)); d > 1e-12 {
				t.Fatalf("token reward %v, definition %v", tok[b], naivePWM(x[b*L:(b+1)*L], fwd, rev))
			}
		}
	}
	// One strand only: the reverse sites are left out.
	one, err := NewPWMReward(L, fwd, nil)
	if err != nil {
		t.Fatal(err)
	}
	r1 := make([]float64, 1)
	if err := one.Reward(x[:L], r1); err != nil {
		t.Fatal(err)
	}
	if !(r1[0] < tok[0]) || one.Sites() != L-w+1 {
		t.Fatalf("one strand %v (sites %d), both %v", r1[0], one.Sites(), tok[0])
	}
}

// In the look-ahead, the rewards of the hard samples equal the token
// rewards (1e-10, float64) and the gradient is non-zero.
func TestPWMRewardInLookAhead(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const L, V = 10, 4
	fwd, rev := pwmRandom(rng, 4, V, 1.0)
	rw, err := NewPWMReward(L, fwd, rev)
	if err != nil {
		t.Fatal(err)
	}
	m, err := graph.New(graph.Config{Arch: "mlp", L: L, V: V, Embed: 4, Hidden: 16, Layers: 2, TimeDim: 0, Act: "relu", DType: "float64", InitSeed: 5})
	if err != nil {
		t.Fatal(err)
	}
	const B, K, tm, scale = 3, 2, 0.6, 1.0
	la, err := NewLookAhead(m, rw, LookAheadConfig{Batch: B, Phi: K, Tau: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	xt := make([]int, B*L)
	for i := range xt {
		xt[i] = rng.IntN(V + 1) // V = MASK
	}
	noise := laGumbel(rng, B*K*L*V)
	o := laHard(t, la, xt, tm, scale, noise)
	x0 := hardSamples(xt, o.logits, noise, B, K, L, V)
	want := make([]float64, B*K)
	if err := rw.Reward(x0, want); err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(o.rewards, want); d > 1e-10 {
		t.Fatalf("look-ahead rewards %v, token rewards %v (diff %.3g)", o.rewards, want, d)
	}
	if maxAbsDiff(o.grad, make([]float64, len(o.grad))) == 0 {
		t.Fatal("look-ahead gradient is zero")
	}
}

// Bad matrices and inputs are errors.
func TestPWMRewardBadInputs(t *testing.T) {
	good := [][]float64{{0, 1, 0, 0}, {1, 0, 0, 0}}
	for name, c := range map[string]struct {
		L    int
		w, r [][]float64
	}{
		"empty":          {10, nil, nil},
		"wider than L":   {1, good, nil},
		"ragged":         {10, [][]float64{{0, 1, 0, 0}, {1, 0}}, nil},
		"strand widths":  {10, good, good[:1]},
		"non-finite":     {10, [][]float64{{0, math.NaN(), 0, 0}}, nil},
		"one letter":     {10, [][]float64{{0}}, nil},
		"reverse ragged": {10, good, [][]float64{{0, 1, 0, 0}, {1, 0, 0}}},
	} {
		if _, err := NewPWMReward(c.L, c.w, c.r); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	rw, err := NewPWMReward(4, good, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := rw.Reward([]int{0, 1, 2}, make([]float64, 1)); err == nil {
		t.Error("length mismatch: no error")
	}
	if err := rw.Reward([]int{0, 1, 2, 4}, make([]float64, 1)); err == nil {
		t.Error("token 4 (MASK) in a clean sequence: no error")
	}
}
