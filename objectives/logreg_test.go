package objectives

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gorgonia.org/tensor"
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
func TestLogRegRewardGradientMatchesFiniteDifferences(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n, L, V = 3, 4, 5
	r := lrRandom(t, rng, L, V, 1.5)
	g := buildRewardHarness(t, r, tensor.Float64, n, true)
	defer g.m.Close()
	xs := softOneHots(rng, n*L, V)
	grad, fd := g.checkGradient(t, xs, 1e-6, 1e-7)
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
		checkLogProbGraph(t, r, c.dt, randomTokens(rng, n*L, V), c.tol, fmt.Sprintf("%v scale %v", c.dt, c.scale))
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
	checkInLookAhead(t, lrRandom(t, rng, L, V, 1), rng, B, K, tm, scale)
}

// Bad weights, shapes, tokens and Build arguments are errors naming the
// problem.
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
	checkBuildRejects(t, r)
}
