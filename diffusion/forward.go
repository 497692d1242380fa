package diffusion

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// ForwardMask samples x_t ~ q(x_t | x_0) (paper.md §1.1): each token of x0
// (values 0..V-1) is independently kept with probability α(t) and otherwise
// replaced by the MASK token V. x0 and xt must have the same length; they
// may be the same slice.
func ForwardMask(rng *rand.Rand, s Schedule, t float64, V int, x0, xt []int) error {
	if rng == nil || s == nil {
		return fmt.Errorf("diffusion: ForwardMask needs a non-nil rng and schedule")
	}
	if V < 1 {
		return fmt.Errorf("diffusion: vocabulary size must be >= 1, got %d", V)
	}
	if len(x0) != len(xt) {
		return fmt.Errorf("diffusion: ForwardMask length mismatch: x0 %d, xt %d", len(x0), len(xt))
	}
	if !(t >= 0 && t <= 1) {
		return fmt.Errorf("diffusion: time must lie in [0,1], got %v", t)
	}
	a := s.Alpha(t)
	if !(a >= 0 && a <= 1) || math.IsNaN(a) {
		return fmt.Errorf("diffusion: schedule %s gives alpha(%v) = %v outside [0,1]", s.Name(), t, a)
	}
	for i, v := range x0 {
		if v < 0 || v >= V {
			return fmt.Errorf("diffusion: x0[%d] = %d outside 0..%d", i, v, V-1)
		}
	}
	for i, v := range x0 {
		if rng.Float64() < a {
			xt[i] = v
		} else {
			xt[i] = V
		}
	}
	return nil
}
