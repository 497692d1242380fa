package diffusion

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestForwardMaskMarginals checks that the kept fraction matches α(t) within
// 5 binomial standard deviations (n tokens), that kept tokens equal x0 and
// that dropped ones are MASK.
func TestForwardMaskMarginals(t *testing.T) {
	const n, V = 200000, 7
	rng := rand.New(rand.NewPCG(1, 0))
	x0 := make([]int, n)
	for i := range x0 {
		x0[i] = rng.IntN(V)
	}
	xt := make([]int, n)
	for _, s := range allSchedules() {
		for _, tm := range []float64{0, 0.05, 0.37, 0.5, 0.9, 1} {
			if err := ForwardMask(rng, s, tm, V, x0, xt); err != nil {
				t.Fatal(err)
			}
			kept := 0
			for i, v := range xt {
				switch v {
				case x0[i]:
					kept++
				case V:
				default:
					t.Fatalf("%s t=%v: xt[%d]=%d is neither x0 nor MASK", s.Name(), tm, i, v)
				}
			}
			a := s.Alpha(tm)
			sd := math.Sqrt(a * (1 - a) / n)
			if got := float64(kept) / n; math.Abs(got-a) > 5*sd {
				t.Errorf("%s t=%v: kept fraction %v, alpha %v (5 sd = %v)", s.Name(), tm, got, a, 5*sd)
			}
		}
	}
}

func TestForwardMaskErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 0))
	x0 := []int{0, 1, 2}
	xt := make([]int, 3)
	cases := map[string]error{
		"length": ForwardMask(rng, Linear(), 0.5, 3, x0, xt[:2]),
		"token":  ForwardMask(rng, Linear(), 0.5, 2, x0, xt),
		"mask":   ForwardMask(rng, Linear(), 0.5, 3, []int{0, 3, 1}, xt),
		"t>1":    ForwardMask(rng, Linear(), 1.5, 3, x0, xt),
		"t NaN":  ForwardMask(rng, Linear(), math.NaN(), 3, x0, xt),
		"V":      ForwardMask(rng, Linear(), 0.5, 0, x0, xt),
		"nil":    ForwardMask(nil, Linear(), 0.5, 3, x0, xt),
		"alpha":  ForwardMask(rng, LogLinear(-1), 1, 3, x0, xt), // alpha(1) = -1
	}
	for name, err := range cases {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
