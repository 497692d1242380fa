package objectives

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gorgonia.org/tensor"
)

// boeRandom is a bag-of-embeddings MLP with Gaussian weights (the embedding
// and first layer times scale, so that the tanh units leave their linear
// range).
func boeRandom(t *testing.T, rng *rand.Rand, L, V, D, H int, scale float64) *BoEReward {
	t.Helper()
	gauss := func(n int, s float64) []float64 {
		x := make([]float64, n)
		for i := range x {
			x[i] = s * rng.NormFloat64()
		}
		return x
	}
	r, err := NewBoEReward(L, V, D, H, gauss(V*D, scale), gauss(D*H, scale), gauss(H, 0.5), gauss(H, 1), 0.2)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// boeClosedForm is ∂r_b/∂S_l[v] of sequence b (the same at every
// position), computed in plain Go from the soft input xs.
func boeClosedForm(r *BoEReward, xs []float64, b int) []float64 {
	L, V, D, H := r.L, r.V, r.D, r.H
	h := make([]float64, D)
	for l := range L {
		for v := range V {
			for j := range D {
				h[j] += xs[(b*L+l)*V+v] * r.E[v*D+j] / float64(L)
			}
		}
	}
	z := r.B2
	du := make([]float64, H) // ∂z/∂a_k = (1 − u_k²)·W2[k]
	for k := range H {
		a := r.B1[k]
		for j := range D {
			a += h[j] * r.W1[j*H+k]
		}
		u := math.Tanh(a)
		z += u * r.W2[k]
		du[k] = (1 - u*u) * r.W2[k]
	}
	s := 1 / (1 + math.Exp(z)) // ∂ log σ(z)/∂z = σ(−z)
	g := make([]float64, V)
	for v := range V {
		for j := range D {
			dh := 0.0
			for k := range H {
				dh += r.W1[j*H+k] * du[k]
			}
			g[v] += s * r.E[v*D+j] * dh / float64(L)
		}
	}
	return g
}

// The graph's gradient with respect to soft one-hot inputs matches central
// finite differences of Σ_b r_b in float64 at every input coordinate
// (relative error < 1e-7) and the closed form, for n = 3 and n = 1.
func TestBoERewardGradientMatchesFiniteDifferences(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	const L, V, D, H = 4, 5, 3, 6
	r := boeRandom(t, rng, L, V, D, H, 1.5)
	for _, n := range []int{3, 1} {
		g := buildRewardHarness(t, r, tensor.Float64, n, true)
		xs := softOneHots(rng, n*L, V)
		grad, fd := g.checkGradient(t, xs, 1e-6, 1e-7)
		for b := range n {
			want := boeClosedForm(r, xs, b)
			for l := range L {
				for v := range V {
					if d := math.Abs(grad[(b*L+l)*V+v] - want[v]); d > 1e-12 {
						t.Fatalf("n = %d: grad[%d][%d][%d] = %v, closed form %v", n, b, l, v, grad[(b*L+l)*V+v], want[v])
					}
				}
			}
		}
		g.m.Close()
		t.Logf("n = %d: %d coordinates checked, worst relative error %.2g", n, fd.Checked, fd.Worst)
	}
}

// On hard one-hots the graph equals the token reward log σ(z) (1e-12 in
// float64, 1e-5 in float32), also for logits far in both tails; Logits is
// the closed form of the type's doc comment.
func TestBoERewardGraphEqualsTokenReward(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	const n, L, V, D, H = 6, 3, 7, 4, 5
	for _, c := range []struct {
		dt    tensor.Dtype
		scale float64
		tol   float64
	}{{tensor.Float64, 1, 1e-12}, {tensor.Float64, 30, 1e-12}, {tensor.Float32, 1, 1e-5}} {
		r := boeRandom(t, rng, L, V, D, H, c.scale)
		for k := range r.W2 {
			r.W2[k] *= c.scale // far tails at scale 30: |z| up to ~100
		}
		x := randomTokens(rng, n*L, V)
		want := checkLogProbGraph(t, r, c.dt, x, c.tol, fmt.Sprintf("%v scale %v", c.dt, c.scale))
		z := make([]float64, n)
		if err := r.Logits(x, z); err != nil {
			t.Fatal(err)
		}
		for b := range n {
			zb := r.B2
			for k := range H {
				a := r.B1[k]
				for j := range D {
					e := 0.0
					for l := range L {
						e += r.E[x[b*L+l]*D+j]
					}
					a += e / L * r.W1[j*H+k]
				}
				zb += math.Tanh(a) * r.W2[k]
			}
			if math.Abs(zb-z[b]) > 1e-12*math.Max(1, math.Abs(zb)) || LogSigmoid(z[b]) != want[b] {
				t.Fatalf("sequence %d: logit %v, closed form %v; reward %v", b, z[b], zb, want[b])
			}
		}
		t.Logf("%v scale %v: logits %.3g", c.dt, c.scale, z)
	}
}

// cosine is the cosine of the angle between a and b.
func cosine(a, b []float64) float64 {
	var ab, aa, bb float64
	for i := range a {
		ab += a[i] * b[i]
		aa += a[i] * a[i]
		bb += b[i] * b[i]
	}
	return ab / math.Sqrt(aa*bb)
}

// The gradient depends on x: among eight sequences with different
// inputs, some have gradients far from proportional (|cos| < 0.5),
// whereas the logistic regression's always are (cos = ±1, ∝ W); within a
// sequence the gradient is the same at every position (mean pooling).
func TestBoERewardGradientDependsOnX(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	const n, L, V, D, H = 8, 3, 12, 4, 8
	r := boeRandom(t, rng, L, V, D, H, 1.5)
	lr := lrRandom(t, rng, L, V, 1)
	x := make([]float64, n*L*V)
	for i := range n * L { // different hard inputs
		x[i*V+rng.IntN(V)] = 1
	}
	grads := func(rw RewardGraph) []float64 {
		g := buildRewardHarness(t, rw, tensor.Float64, n, true)
		defer g.m.Close()
		return g.gradient(t, x)
	}
	row := func(grad []float64, b int) []float64 { return grad[b*L*V : b*L*V+V] }
	gb, gl := grads(r), grads(lr)
	for b := range n {
		for l := 1; l < L; l++ {
			for v := range V {
				if d := math.Abs(gb[(b*L+l)*V+v] - gb[b*L*V+v]); d > 1e-12 {
					t.Fatalf("sequence %d: gradient at position %d differs from position 0 by %v", b, l, d)
				}
			}
		}
	}
	minCos := 1.0
	for b := range n {
		for c := range b {
			if cl := cosine(row(gl, b), row(gl, c)); math.Abs(math.Abs(cl)-1) > 1e-12 {
				t.Fatalf("LR gradients of sequences %d and %d not proportional: cos %v", b, c, cl)
			}
			minCos = math.Min(minCos, math.Abs(cosine(row(gb, b), row(gb, c))))
		}
	}
	t.Logf("smallest |cos| between two sequences' BoE gradients: %.4f", minCos)
	if minCos > 0.5 {
		t.Fatalf("BoE gradients of different inputs nearly proportional: smallest |cos| %v", minCos)
	}
}

// The reward plugs into a LookAhead: in float64 its straight-through
// rewards equal the token reward of the hard carried-over samples.
func TestBoERewardInLookAhead(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	const B, K, L, V, tm, scale = 2, 3, 4, 6, 0.6, 10.0
	checkInLookAhead(t, boeRandom(t, rng, L, V, 3, 5, 1), rng, B, K, tm, scale)
}

// Bad shapes, weights, tokens and inputs are errors naming the problem,
// never panics (a hand-built value with inconsistent sizes included).
func TestBoERewardBadInputs(t *testing.T) {
	ok := func(n int) []float64 { return make([]float64, n) }
	const L, V, D, H = 2, 3, 2, 4
	if _, err := NewBoEReward(0, V, D, H, ok(V*D), ok(D*H), ok(H), ok(H), 0); err == nil || !strings.HasPrefix(err.Error(), "objectives:") {
		t.Errorf("L = 0: %v", err)
	}
	if _, err := NewBoEReward(L, V, D, H, ok(V*D-1), ok(D*H), ok(H), ok(H), 0); err == nil || !strings.Contains(err.Error(), "embedding E has 5 entries, want 6") {
		t.Errorf("short E: %v", err)
	}
	if _, err := NewBoEReward(L, V, D, H, ok(V*D), ok(D*H), ok(H), ok(H+1), 0); err == nil || !strings.Contains(err.Error(), "W2") {
		t.Errorf("long W2: %v", err)
	}
	w1 := ok(D * H)
	w1[5] = math.NaN()
	if _, err := NewBoEReward(L, V, D, H, ok(V*D), w1, ok(H), ok(H), 0); err == nil || !strings.Contains(err.Error(), "W1 entry 5") {
		t.Errorf("NaN in W1: %v", err)
	}
	if _, err := NewBoEReward(L, V, D, H, ok(V*D), ok(D*H), ok(H), ok(H), math.Inf(-1)); err == nil || !strings.Contains(err.Error(), "B2") {
		t.Errorf("infinite B2: %v", err)
	}
	e := ok(V * D)
	r, err := NewBoEReward(L, V, D, H, e, ok(D*H), ok(H), ok(H), 0)
	if err != nil {
		t.Fatal(err)
	}
	e[0] = 7
	if r.E[0] != 0 {
		t.Error("NewBoEReward does not copy its weights")
	}
	out := make([]float64, 1)
	if err := r.Reward([]int{0, 3}, out); err == nil || !strings.Contains(err.Error(), "token 3 at position 1") {
		t.Errorf("token outside V: %v", err)
	}
	if err := r.Reward([]int{0, -1}, out); err == nil || !strings.Contains(err.Error(), "token -1") {
		t.Errorf("negative token: %v", err)
	}
	if err := r.Reward([]int{0, 1, 2}, out); err == nil {
		t.Error("ragged input: want an error")
	}
	if err := r.Reward([]int{0, 1}, out); err != nil || math.Abs(out[0]-math.Log(0.5)) > 1e-15 {
		t.Errorf("zero weights: reward %v (%v), want log 1/2", out, err)
	}
	broken := &BoEReward{L: L, V: V, D: D, H: H, E: ok(V * D), W1: ok(D * H), B1: ok(H)}
	if err := broken.Reward([]int{0, 1}, out); err == nil || !strings.Contains(err.Error(), "wrong sizes") {
		t.Errorf("hand-built reward without W2: %v", err)
	}
	if err := buildError(t, broken, L*2, V, 2); err == nil || !strings.Contains(err.Error(), "wrong sizes") {
		t.Errorf("hand-built reward in a graph: %v", err)
	}
	checkBuildRejects(t, r)
}
