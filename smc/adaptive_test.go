package smc

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ddsmc/ddsmc/diffusion"
)

// adaptiveSetups are the exactness setups with λ made adaptive (all but
// the ones without a twist, whose ψ ≡ 1 does not depend on λ).
func adaptiveSetups(kappa float64) []setup {
	var out []setup
	for _, su := range setups() {
		switch su.name {
		case "reverse/mc", "reverse/exact-nonadditive", "lop/exact", "grad-transition", "learned/mc":
			su.lambda = Lambda{Kind: "adaptive", ESS: kappa}
			out = append(out, su)
		}
	}
	return out
}

// TestAdaptiveLambdaHitsTargetESS guards the sign of the search (BlackJAX
// #914): the λ used to search CESS(λ) and the λ used in the weight update
// are the same quantity. With a deterministic twist the test recomputes,
// independently of the engine, log ψ_s(x_s; λ_t) at the new particles, splits
// each realised increment into the move m_j and the tempering τ_j, and
// checks that wherever λ_t < λ_s < 1 the conditional ESS of τ under the
// weights after the move equals κ_λ to the bisection's precision (a search
// with the opposite sign, or over another quantity than the update's, lands
// elsewhere), and that λ_s = 1 before the last step only when CESS(1) ≥ κ_λ.
// For every setup λ never decreases, advances at least twice before the end,
// the last step has λ = 1, and the runs are the same for 1 and 3 workers.
// (Steps that resampled are not recomputed: the state is permuted.)
func TestAdaptiveLambdaHitsTargetESS(t *testing.T) {
	// A high target and 32 steps, so that λ takes several steps to reach 1.
	const kappa, N, T = 0.99, 1000, 32
	for _, su := range adaptiveSetups(kappa) {
		t.Run(su.name, func(t *testing.T) {
			var traces [2]string
			for w, workers := range []int{1, 3} {
				s, err := New(su.target(t, workers), Config{
					N: N, Grid: toyGrid(t, T), Lambda: su.lambda, Twist: su.twist(workers), Proposal: su.proposal(t, workers),
					Final: FinalWeighted, Workers: workers, RewardBatch: 7,
				})
				if err != nil {
					t.Fatal(err)
				}
				exact, isExact := s.cfg.Twist.(ExactLookAhead)
				rng := rand.New(rand.NewPCG(5, 1))
				st, in, err := s.Init(rng)
				if err != nil {
					t.Fatal(err)
				}
				if in.Lambda != LambdaFloor {
					t.Fatalf("initial λ = %v, want LambdaFloor", in.Lambda)
				}
				prev, advanced, checked := in.Lambda, 0, 0
				var sb strings.Builder
				for st.Step < s.Steps() {
					prevW := append([]float64(nil), st.LogW...)
					if in, err = s.Step(rng, st); err != nil {
						t.Fatal(err)
					}
					fmt.Fprintf(&sb, "%d λ=%.4f ess=%.3f|", in.Step, in.Lambda, in.ESS)
					if in.Lambda < prev {
						t.Fatalf("step %d: λ decreased from %v to %v", in.Step, prev, in.Lambda)
					}
					if st.Step == s.Steps() {
						if in.Lambda != 1 {
							t.Errorf("last step has λ = %v, want 1", in.Lambda)
						}
						break
					}
					if in.Lambda > prev {
						advanced++
					}
					if isExact && prev < 1 && !in.Resampled { // (resampling permutes st)
						psiT, rh := make([]float64, N), make([]float64, N)
						if err := exact.Eval(nil, s.Env(), st.X, st.Ev, in.T, prev, psiT, rh, nil); err != nil {
							t.Fatal(err)
						}
						moved, tau := make([]float64, N), make([]float64, N)
						for j := range N {
							tau[j] = st.LogPsi[j] - psiT[j]
							moved[j] = prevW[j] + in.Increments[j] - tau[j]
						}
						if _, err := Normalize(moved, moved); err != nil {
							t.Fatal(err)
						}
						c := CESS(moved, tau)
						fmt.Fprintf(&sb, "cess=%.6f|", c)
						switch {
						case in.Lambda < 1:
							checked++
							if math.Abs(c-kappa) > 1e-6 {
								t.Errorf("step %d: λ %v -> %v, realised tempering CESS = %.9f, want the target %v", in.Step, prev, in.Lambda, c, kappa)
							}
						case c < kappa-1e-9:
							t.Errorf("step %d: λ jumped to 1 with tempering CESS = %v below the target %v", in.Step, c, kappa)
						}
					}
					prev = in.Lambda
				}
				if advanced < 3 || isExact && checked < 3 {
					t.Fatalf("λ advanced %d times (%d checked against the target): the test cannot see a sign error\n%s", advanced, checked, sb.String())
				}
				if w == 0 {
					t.Logf("trace: %s", sb.String())
				}
				traces[w] = fmt.Sprint(st.X, st.LogW, st.LogZ) + sb.String()
			}
			if traces[0] != traces[1] {
				t.Errorf("1 and 3 workers give different runs")
			}
		})
	}
}

// TestAdaptiveMatchesExactTarget: under the adaptive schedule the weighted
// particles converge to the exactly enumerated π (mean TV over 3 seeds
// falls from N = 100 to 10⁴ and lies within the N-derived bound at 10⁴),
// and log Ẑ is consistent: its mean absolute error falls with N. (λ_s
// depends on the particles, so Ẑ is not exactly unbiased; no unbiasedness
// is asserted.)
func TestAdaptiveMatchesExactTarget(t *testing.T) {
	K := 27
	for _, su := range adaptiveSetups(0.5) {
		t.Run(su.name, func(t *testing.T) {
			ex := exactOf(t, su)
			var tv, dz [3]float64
			for i, N := range []int{100, 1000, 10000} {
				for seed := uint64(1); seed <= 3; seed++ {
					s := su.sampler(t, N, 2, Trigger{}, Systematic, FinalWeighted)
					res, err := s.Run(rand.New(rand.NewPCG(seed, 9)))
					if err != nil {
						t.Fatal(err)
					}
					p, err := WeightedPMF(res.X, res.LogW, toyL, toyV)
					if err != nil {
						t.Fatal(err)
					}
					a, _ := diffusion.TotalVariation(p, ex.Target)
					tv[i] += a / 3
					dz[i] += math.Abs(res.LogZ-ex.LogZ) / 3
					if b := smcTVBound(K, N); N == 10000 && a > b {
						t.Errorf("seed %d: TV %.4f at N=1e4 exceeds the bound %.4f", seed, a, b)
					}
				}
			}
			t.Logf("TABLE | adaptive %-18s | TV %.4f %.4f %.4f | |dlogZ| %.4f %.4f %.4f", su.name, tv[0], tv[1], tv[2], dz[0], dz[1], dz[2])
			if tv[2] >= tv[0] {
				t.Errorf("TV does not shrink with N: %.4f at N=100, %.4f at N=1e4", tv[0], tv[2])
			}
			if dz[2] >= dz[0] {
				t.Errorf("|log Ẑ − log Z| does not shrink with N: %.4f at N=100, %.4f at N=1e4", dz[0], dz[2])
			}
		})
	}
}

// TestAdaptiveRunManyMatchesRun: RunMany of an adaptive schedule returns
// what separate runs return.
func TestAdaptiveRunManyMatchesRun(t *testing.T) {
	su := adaptiveSetups(0.6)[0]
	s := su.sampler(t, 50, 1, Trigger{}, Systematic, FinalWeighted)
	many, err := s.RunMany([]*rand.Rand{rand.New(rand.NewPCG(1, 2)), rand.New(rand.NewPCG(3, 4))})
	if err != nil {
		t.Fatal(err)
	}
	for r, seed := range []uint64{1, 3} {
		one, err := s.Run(rand.New(rand.NewPCG(seed, seed+1)))
		if err != nil {
			t.Fatal(err)
		}
		if one.LogZ != many[r].LogZ || fmt.Sprint(one.X, one.LogW) != fmt.Sprint(many[r].X, many[r].LogW) {
			t.Errorf("run %d differs between RunMany and Run", r)
		}
	}
}

// mcTwist is a non-deterministic custom twist the adaptive schedule cannot
// re-temper.
type mcTwist struct{ NoTwist }

func (mcTwist) Name() string        { return "custom-mc" }
func (mcTwist) Deterministic() bool { return false }

// TestAdaptiveBadInput: κ_λ outside (0, 1], a list of values with the
// adaptive kind, and a twist that cannot be re-tempered are errors.
func TestAdaptiveBadInput(t *testing.T) {
	for _, c := range []struct {
		l    Lambda
		want string
	}{
		{Lambda{Kind: "adaptive"}, "target ESS fraction in (0, 1], got 0"},
		{Lambda{Kind: "adaptive", ESS: -0.1}, "got -0.1"},
		{Lambda{Kind: "adaptive", ESS: 1.5}, "got 1.5"},
		{Lambda{Kind: "adaptive", ESS: math.NaN()}, "got NaN"},
		{Lambda{Kind: "adaptive", ESS: 0.5, Values: []float64{0, 1}}, "adaptive lambda takes no list of values"},
	} {
		err := c.l.Validate(toyT)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "smc: ") {
			t.Errorf("%+v: error %v, want one containing %q", c.l, err, c.want)
		}
	}
	if err := (Lambda{Kind: "adaptive", ESS: 1}).Validate(toyT); err != nil {
		t.Errorf("κ = 1 refused: %v", err)
	}
	_, err := New(Target{Base: toyReverse(t, 1), Reward: toyTable(), Alpha: 1},
		Config{N: 4, Grid: toyGrid(t, toyT), Lambda: Lambda{Kind: "adaptive", ESS: 0.5}, Twist: mcTwist{}})
	if err == nil || !strings.Contains(err.Error(), "re-temper") {
		t.Errorf("custom Monte Carlo twist: error %v, want one about re-tempering", err)
	}
}
