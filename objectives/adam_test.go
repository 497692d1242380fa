package objectives

import (
	"math"
	"math/rand/v2"
	"testing"
)

// Three Adam steps on one weight (lr 0.1, w₀ = 1, gradients 0.5, −1·2 and
// 0.25·0.5 after scaling) match the update worked by hand:
//
//	t=1: m = 0.05,   v = 0.00025,    m̂ = 0.5,    v̂ = 0.25,   w = 1 − 0.1·0.5/(0.5+1e-8) = 0.900000002
//	t=2: m = −0.155, v = 0.00424975, m̂ = −0.155/0.19, v̂ = 0.00424975/0.001999, w = 0.95595035102…
//	t=3: m = −0.127, v = 0.00426112525, w = 0.99525244777…
func TestAdamMatchesHandComputedSteps(t *testing.T) {
	a := newAdam(0.1, 1)
	w := []float64{1}
	for i, tc := range []struct{ g, scale, m, v, w float64 }{
		{0.5, 1, 0.05, 0.00025, 0.900000002},
		{-1, 2, -0.155, 0.00424975, 0.9559503510200555},
		{0.25, 0.5, -0.127, 0.00426112525, 0.9952524477706384},
	} {
		a.step()
		a.update(0, w, []float64{tc.g}, tc.scale)
		if a.t != i+1 || math.Abs(a.m[0][0]-tc.m) > 1e-15 || math.Abs(a.v[0][0]-tc.v) > 1e-15 || math.Abs(w[0]-tc.w) > 1e-12 {
			t.Fatalf("step %d: t %d, m %.17g, v %.17g, w %.17g; want m %v, v %v, w %v", i+1, a.t, a.m[0][0], a.v[0][0], w[0], tc.m, tc.v, tc.w)
		}
	}
}

// adam reproduces, bit for bit, the closure LogVarLoss.Apply used before it
// (copied verbatim below) over 20 steps on two buffers with random
// gradients and scales.
func TestAdamMatchesFormerLogVarClosure(t *testing.T) {
	const lvBeta1, lvBeta2, lvEps, lr = 0.9, 0.999, 1e-8, 3e-3
	rng := rand.New(rand.NewPCG(7, 8))
	sizes := []int{5, 3}
	a := newAdam(lr, sizes...)
	var w, wOld, mOld, vOld [][]float64
	for _, n := range sizes {
		x := make([]float64, n)
		for j := range x {
			x[j] = rng.NormFloat64()
		}
		w, wOld = append(w, x), append(wOld, append([]float64(nil), x...))
		mOld, vOld = append(mOld, make([]float64, n)), append(vOld, make([]float64, n))
	}
	for iter := 1; iter <= 20; iter++ {
		c1 := 1 - math.Pow(lvBeta1, float64(iter))
		c2 := 1 - math.Pow(lvBeta2, float64(iter))
		old := func(w, g, m, v []float64, scale float64) {
			for j := range w {
				gj := g[j] * scale
				m[j] = lvBeta1*m[j] + (1-lvBeta1)*gj
				v[j] = lvBeta2*v[j] + (1-lvBeta2)*gj*gj
				w[j] -= lr * (m[j] / c1) / (math.Sqrt(v[j]/c2) + lvEps)
			}
		}
		a.step()
		for k := range w {
			g := make([]float64, len(w[k]))
			for j := range g {
				g[j] = rng.NormFloat64() * math.Pow(10, float64(rng.IntN(5)-2))
			}
			scale := 1.0
			if rng.IntN(2) == 0 {
				scale = rng.Float64()
			}
			a.update(k, w[k], g, scale)
			old(wOld[k], g, mOld[k], vOld[k], scale)
			for j := range w[k] {
				if math.Float64bits(w[k][j]) != math.Float64bits(wOld[k][j]) ||
					math.Float64bits(a.m[k][j]) != math.Float64bits(mOld[k][j]) ||
					math.Float64bits(a.v[k][j]) != math.Float64bits(vOld[k][j]) {
					t.Fatalf("step %d buffer %d entry %d: w %v m %v v %v, former %v %v %v", iter, k, j, w[k][j], a.m[k][j], a.v[k][j], wOld[k][j], mOld[k][j], vOld[k][j])
				}
			}
		}
	}
}
