package objectives

import (
	"math"
	"math/rand/v2"
	"testing"

	"gorgonia.org/tensor"
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
		grad, fd := g.checkGradient(t, softOneHots(rng, n*L, V), h, tol)
		if norm := maxAbsDiff(grad, make([]float64, len(grad))); norm < 0.1 {
			t.Fatalf("n=%d: degenerate test: gradient max %g", n, norm)
		}
		t.Logf("n=%d: %d coordinates, worst relative error %.2g", n, fd.Checked, fd.Worst)
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
	x := randomTokens(rng, n*L, V)
	var tok []float64
	for _, c := range []struct {
		dt  tensor.Dtype
		tol float64
	}{{tensor.Float64, 1e-10}, {tensor.Float32, 1e-4}} {
		var got []float64
		got, tok = graphOnOneHots(t, rw, c.dt, x)
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
	const B, K, tm, scale = 3, 2, 0.6, 1.0
	checkInLookAhead(t, rw, rng, B, K, tm, scale)
}

// Bad matrices, inputs and Build arguments are errors.
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
	checkBuildRejects(t, rw)
}
