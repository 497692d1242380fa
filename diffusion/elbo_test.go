package diffusion

import (
	"math"
	"testing"

	"github.com/ddsmc/ddsmc/internal/testutil"
)

// TestDiscreteELBOBound (item 6): DiscreteELBO ≥ −log p_chain(x0) for every
// x0 in the support, for the exact posterior denoiser, a uniform one and an
// arbitrary (hashed, x_t- and t-dependent) one, over schedules and grids.
// The uniform denoiser makes the bound tight (the model's path posterior
// equals q(path|x0) because it ignores x_t), which is checked as an exact
// identity; the hashed one must have a clearly positive gap.
func TestDiscreteELBOBound(t *testing.T) {
	p := toyPMF()
	dens := map[string]Denoiser{
		"posterior": toyPosterior(t),
		"uniform":   uniformDenoiser{toyL, toyV},
		"hash":      testutil.HashDenoiser{L: toyL, V: toyV, Scale: 3},
	}
	x0 := make([]int, toyL)
	for _, s := range []Schedule{Linear(), Cosine()} {
		for _, kind := range []string{"linear", "cosine"} {
			for _, T := range []int{1, 2, 3, 4, 8, 32} {
				g, _ := NewGrid(T, kind)
				for name, d := range dens {
					m, err := ExactMarginal(Kernel{Schedule: s}, d, g, 8)
					if err != nil {
						t.Fatal(err)
					}
					minGap := math.Inf(1)
					for i, q := range p {
						if q == 0 {
							continue
						}
						Unindex(i, toyL, toyV, x0)
						e, err := DiscreteELBO(s, d, g, x0)
						if err != nil {
							t.Fatal(err)
						}
						gap := e + math.Log(m[i])
						minGap = min(minGap, gap)
						if gap < -1e-12 {
							t.Errorf("%s %s-grid T=%d %s x0=%v: ELBO %v < -log p_chain %v", s.Name(), kind, T, name, x0, e, -math.Log(m[i]))
						}
						if name == "uniform" && math.Abs(gap) > 1e-12 {
							t.Errorf("%s T=%d uniform x0=%v: gap %v, want 0 (L log V = %v, ELBO %v)", s.Name(), T, x0, gap, 3*math.Log(3), e)
						}
					}
					if name == "hash" && T > 1 && minGap < 0.01 {
						t.Errorf("%s %s-grid T=%d hash: minimum gap %v suspiciously small", s.Name(), kind, T, minGap)
					}
				}
			}
		}
	}
}

// TestDiscreteELBOGapShrinks (item 6): for the exact posterior denoiser
// (linear schedule and grid) the pdata-weighted gap E[ELBO + log p_chain]
// is exactly 0 at T = 1 (q(x_1|x0) is the all-mask point mass, so there is
// no latent uncertainty and the one-step chain's likelihood is computed
// exactly), positive for T ≥ 2 and strictly shrinking over T = 2..128; and
// the weighted ELBO approaches the data entropy, E[ELBO + log pdata]
// decreasing to ≈ 0 (it is ≥ 0 by Gibbs' inequality).
func TestDiscreteELBOGapShrinks(t *testing.T) {
	p := toyPMF()
	d := toyPosterior(t)
	x0 := make([]int, toyL)
	prevGap, prevExcess := math.Inf(1), math.Inf(1)
	for _, T := range []int{1, 2, 4, 8, 32, 128} {
		g, _ := NewGrid(T, "linear")
		m, err := ExactMarginal(Kernel{Schedule: Linear()}, d, g, 8)
		if err != nil {
			t.Fatal(err)
		}
		gap, excess := 0.0, 0.0
		for i, q := range p {
			Unindex(i, toyL, toyV, x0)
			e, err := DiscreteELBO(Linear(), d, g, x0)
			if err != nil {
				t.Fatal(err)
			}
			gap += q * (e + math.Log(m[i]))
			excess += q * (e + math.Log(q))
		}
		t.Logf("T=%3d E[ELBO + log p_chain] = %.5f  E[ELBO + log pdata] = %.5f", T, gap, excess)
		if T == 1 {
			if math.Abs(gap) > 1e-12 {
				t.Errorf("T=1: gap %v, want 0", gap)
			}
		} else {
			if !(gap > 0 && gap < prevGap) {
				t.Errorf("T=%d: gap %v not in (0, previous %v)", T, gap, prevGap)
			}
			prevGap = gap
		}
		if !(excess > 0 && excess < prevExcess) {
			t.Errorf("T=%d: E[ELBO + log pdata] = %v not in (0, previous %v)", T, excess, prevExcess)
		}
		prevExcess = excess
	}
	if prevExcess > 0.02 {
		t.Errorf("T=128: ELBO still %v nats above the data entropy", prevExcess)
	}
}

// zeroMassDenoiser gives token 0 zero mass everywhere.
type zeroMassDenoiser struct{ uniformDenoiser }

func (d zeroMassDenoiser) X0Logits(xt []int, t []float64, out []float64) error {
	clear(out)
	for i := 0; i < len(out); i += d.V {
		out[i] = math.Inf(-1)
	}
	return nil
}

func TestDiscreteELBOEdgeCases(t *testing.T) {
	g, _ := NewGrid(4, "linear")
	d := toyPosterior(t)
	// Uniform denoiser: exactly L·log V for any x0 (see TestDiscreteELBOBound).
	e, err := DiscreteELBO(Linear(), uniformDenoiser{toyL, toyV}, g, []int{2, 0, 1})
	if err != nil || math.Abs(e-3*math.Log(3)) > 1e-12 {
		t.Errorf("uniform: %v %v, want %v", e, err, 3*math.Log(3))
	}
	e, err = DiscreteELBO(Linear(), zeroMassDenoiser{uniformDenoiser{toyL, toyV}}, g, []int{0, 1, 1})
	if err != nil || !math.IsInf(e, 1) {
		t.Errorf("zero mass on x0: got %v %v, want +Inf", e, err)
	}
	for name, f := range map[string]func() (float64, error){
		"length": func() (float64, error) { return DiscreteELBO(Linear(), d, g, []int{0, 1}) },
		"token":  func() (float64, error) { return DiscreteELBO(Linear(), d, g, []int{0, 1, 3}) },
		"grid":   func() (float64, error) { return DiscreteELBO(Linear(), d, Grid{0, 2}, []int{0, 1, 2}) },
		"nil":    func() (float64, error) { return DiscreteELBO(nil, d, g, []int{0, 1, 2}) },
		"L":      func() (float64, error) { return DiscreteELBO(Linear(), uniformDenoiser{30, 2}, g, make([]int, 30)) },
	} {
		if _, err := f(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
