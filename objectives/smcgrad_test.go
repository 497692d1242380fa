package objectives

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/ddsmc/ddsmc/diffusion"
	"github.com/ddsmc/ddsmc/graph"
	"github.com/ddsmc/ddsmc/smc"
)

// gradToy is the end-to-end toy of SMC-grad with the real Gorgonia
// gradient: a float64 MLP denoiser (L = 2, V = 3, time input), an additive
// reward, T = 6 linear steps, α = 0.5.
type gradToy struct {
	m      *graph.Model
	terms  [][]float64
	grid   diffusion.Grid
	kernel diffusion.Kernel
}

func newGradToy(t testing.TB) *gradToy {
	t.Helper()
	m, err := graph.New(graph.Config{Arch: "mlp", L: 2, V: 3, Embed: 6, Hidden: 12, Layers: 2, TimeDim: 4, Act: "silu", DType: "float64", InitSeed: 5})
	if err != nil {
		t.Fatal(err)
	}
	grid, err := diffusion.NewGrid(6, "linear")
	if err != nil {
		t.Fatal(err)
	}
	return &gradToy{m: m, terms: laTerms(rand.New(rand.NewPCG(3, 3)), 2, 3), grid: grid, kernel: diffusion.Kernel{Schedule: diffusion.Linear()}}
}

func (g *gradToy) target(t testing.TB) smc.Target {
	t.Helper()
	base, err := smc.NewReverse(g.kernel, []diffusion.Denoiser{g.m}, 32)
	if err != nil {
		t.Fatal(err)
	}
	return smc.Target{Base: base, Reward: smc.TableReward(g.terms), Alpha: 0.5}
}

func (g *gradToy) sampler(t testing.TB, N, phi int, prop smc.GradProposal, trigger smc.Trigger) *smc.Sampler {
	t.Helper()
	la, err := NewLookAhead(g.m, LinearReward{Terms: g.terms}, LookAheadConfig{Batch: 32, Phi: phi})
	if err != nil {
		t.Fatal(err)
	}
	s, err := smc.New(g.target(t), smc.Config{
		N: N, Grid: g.grid, Lambda: smc.Lambda{Kind: "linear", K: 3}, Twist: smc.GradLookAhead{Pool: []smc.LookAheadGrad{la}},
		Proposal: prop, Trigger: trigger, Final: smc.FinalWeighted,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSMCGradMatchesExactTarget runs SMC with the first-order gradient
// proposal, its gradient taken through the Gorgonia denoiser and the
// straight-through Gumbel look-ahead, in both tilt spaces, and checks the
// weighted particles (N = 10⁴) against the exactly enumerated target
// π ∝ p_θ·exp(r/α) of the same model: TV within the N-derived bound of the
// smc tests (iid bound at N/10), and on average smaller than at N = 30.
func TestSMCGradMatchesExactTarget(t *testing.T) {
	g := newGradToy(t)
	ex, err := smc.ExactTarget(g.target(t), g.grid, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, prop := range []smc.GradProposal{{}, {Space: smc.TiltX0, Centre: true}} {
		tv := func(N int, seed uint64) float64 {
			res, err := g.sampler(t, N, 2, prop, smc.Trigger{}).Run(rand.New(rand.NewPCG(seed, 9)))
			if err != nil {
				t.Fatal(err)
			}
			p, err := smc.WeightedPMF(res.X, res.LogW, 2, 3)
			if err != nil {
				t.Fatal(err)
			}
			d, _ := diffusion.TotalVariation(p, ex.Target)
			return d
		}
		// Without resampling the weights of this toy are degenerate (min
		// ESS ≈ 0), so one run's TV at N = 1e4 varies by 10× over seeds
		// (0.007–0.07): the bound is checked per run, the shrinkage on
		// means over three seeds.
		bound := diffusion.TVBound(9, 10000/10, 1e-3)
		big, small := 0.0, 0.0
		for seed := uint64(1); seed <= 3; seed++ {
			b := tv(10000, seed)
			if b > bound {
				t.Errorf("tilt %q, seed %d: TV %.4f exceeds the bound %.4f", prop.Space, seed, b, bound)
			}
			big += b / 3
			small += tv(30, seed) / 3
		}
		t.Logf("tilt %q: mean TV %.4f at N=1e4 (bound %.4f), %.4f at N=30", prop.Space, big, bound, small)
		if big >= small {
			t.Errorf("tilt %q: TV does not shrink with N (%.4f at 1e4, %.4f at 30)", prop.Space, big, small)
		}
	}
}

// TestSMCGradEvidenceUnbiased: over R runs with N = 32, the mean of Ẑ/Z is
// 1 within 3 standard errors with the real gradient proposal.
func TestSMCGradEvidenceUnbiased(t *testing.T) {
	g := newGradToy(t)
	ex, err := smc.ExactTarget(g.target(t), g.grid, 1)
	if err != nil {
		t.Fatal(err)
	}
	s := g.sampler(t, 32, 2, smc.GradProposal{}, smc.Trigger{})
	rng := rand.New(rand.NewPCG(4, 4))
	// R = 300 gives 0.88 ± 0.05; the weights are heavy-tailed (R = 3000
	// gave 0.978 ± 0.042), so the sample mean sits low more often than not.
	const R = 300
	var sum, sum2 float64
	for range R {
		res, err := s.Run(rng)
		if err != nil {
			t.Fatal(err)
		}
		z := math.Exp(res.LogZ - ex.LogZ)
		sum += z
		sum2 += z * z
	}
	mean := sum / float64(R)
	se := math.Sqrt((sum2/float64(R) - mean*mean) / float64(R-1))
	t.Logf("mean Ẑ/Z = %.4f ± %.4f", mean, se)
	if math.Abs(mean-1) > 3*se || se == 0 {
		t.Errorf("mean Ẑ/Z = %.4f ± %.4f is not 1 within 3 SE", mean, se)
	}
}

// TestSMCGradWorkersDoNotChangeResults: with Gorgonia denoisers and
// look-aheads (one clone per worker), the same seed gives bit-identical
// particles, weights and log Ẑ with 1 and 2 workers.
func TestSMCGradWorkersDoNotChangeResults(t *testing.T) {
	g := newGradToy(t)
	run := func(workers int) *smc.Result {
		dens := []diffusion.Denoiser{g.m}
		pool := []smc.LookAheadGrad{}
		for w := range workers {
			m := g.m
			if w > 0 {
				c, err := g.m.Clone()
				if err != nil {
					t.Fatal(err)
				}
				m = c
				dens = append(dens, c)
			}
			la, err := NewLookAhead(m, LinearReward{Terms: g.terms}, LookAheadConfig{Batch: 16, Phi: 2})
			if err != nil {
				t.Fatal(err)
			}
			pool = append(pool, la)
		}
		base, err := smc.NewReverse(g.kernel, dens, 16)
		if err != nil {
			t.Fatal(err)
		}
		s, err := smc.New(smc.Target{Base: base, Reward: smc.TableReward(g.terms), Alpha: 0.5}, smc.Config{
			N: 100, Grid: g.grid, Lambda: smc.Lambda{Kind: "constant"}, Twist: smc.GradLookAhead{Pool: pool},
			Proposal: smc.GradProposal{}, Workers: workers,
		})
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Run(rand.New(rand.NewPCG(8, 8)))
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	a, b := run(1), run(2)
	if a.LogZ != b.LogZ || fmt.Sprint(a.X, a.LogW, a.Samples) != fmt.Sprint(b.X, b.LogW, b.Samples) {
		t.Fatalf("1 and 2 workers differ: log Ẑ %v vs %v", a.LogZ, b.LogZ)
	}
	if a.Resamples == 0 {
		t.Fatalf("no resampling happened; the comparison is weak")
	}
}

// countingModel counts the sequences a denoiser is asked for.
type countingModel struct {
	*graph.Model
	rows *int
}

func (c countingModel) X0Logits(xt []int, t []float64, out []float64) error {
	*c.rows += len(t)
	return c.Model.X0Logits(xt, t, out)
}

// With GradLookAhead.Share the look-ahead graph's logits fill the base's
// cache (time-independent denoiser): the run must be the same as without
// sharing, with the base denoiser called far less.
func TestSMCGradSharedLogitsKeepResultsAndSaveCalls(t *testing.T) {
	m, err := graph.New(graph.Config{Arch: "mlp", L: 3, V: 3, Embed: 6, Hidden: 12, Layers: 2, Act: "silu", DType: "float64", InitSeed: 9})
	if err != nil {
		t.Fatal(err)
	}
	terms := laTerms(rand.New(rand.NewPCG(4, 4)), 3, 3)
	grid, err := diffusion.NewGrid(8, "linear")
	if err != nil {
		t.Fatal(err)
	}
	run := func(share bool) (*smc.Result, int) {
		rows := 0
		base, err := smc.NewReverse(diffusion.Kernel{Schedule: diffusion.Linear()}, []diffusion.Denoiser{countingModel{m, &rows}}, 16)
		if err != nil {
			t.Fatal(err)
		}
		la, err := NewLookAhead(m, LinearReward{Terms: terms}, LookAheadConfig{Batch: 16, Phi: 3})
		if err != nil {
			t.Fatal(err)
		}
		tw := smc.GradLookAhead{Pool: []smc.LookAheadGrad{la}}
		if share {
			tw.Share = base
		}
		s, err := smc.New(smc.Target{Base: base, Reward: smc.TableReward(terms), Alpha: 0.5}, smc.Config{
			N: 200, Grid: grid, Lambda: smc.Lambda{Kind: "linear", K: 3}, Twist: tw, Proposal: smc.GradProposal{}, Workers: 1,
		})
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Run(rand.New(rand.NewPCG(5, 5)))
		if err != nil {
			t.Fatal(err)
		}
		return res, rows
	}
	a, rowsA := run(false)
	b, rowsB := run(true)
	if math.Abs(a.LogZ-b.LogZ) > 1e-9 || fmt.Sprint(a.X, a.Samples) != fmt.Sprint(b.X, b.Samples) {
		t.Fatalf("sharing the look-ahead logits changed the run: log Ẑ %v vs %v", a.LogZ, b.LogZ)
	}
	for i := range a.LogW {
		if math.Abs(a.LogW[i]-b.LogW[i]) > 1e-9 {
			t.Fatalf("log weight %d: %v vs %v", i, a.LogW[i], b.LogW[i])
		}
	}
	if rowsA == 0 || rowsB*4 > rowsA {
		t.Fatalf("base denoiser rows: %d without sharing, %d with; want at most a quarter", rowsA, rowsB)
	}
	t.Logf("base denoiser rows: %d without sharing, %d with", rowsA, rowsB)
}

// The look-ahead's rewards and its gradient at masked positions do not
// depend on the Gumbel noise of unmasked positions (their tokens are
// carried over), which is why smc.GradLookAhead draws noise only for the
// masked rows: the same masked-row noise with the unmasked rows zeroed
// gives the same rewards and the same gradient wherever x is masked.
func TestLookAheadIgnoresNoiseOfUnmaskedRows(t *testing.T) {
	g := newGradToy(t)
	const L, V, B, K = 2, 3, 2, 2
	la, err := NewLookAhead(g.m, LinearReward{Terms: g.terms}, LookAheadConfig{Batch: B, Phi: K})
	if err != nil {
		t.Fatal(err)
	}
	x := []int{0, V, V, V} // particle 0 has position 0 unmasked
	rng := rand.New(rand.NewPCG(1, 1))
	full := make([]float64, B*K*L*V)
	for i := range full {
		full[i] = rng.NormFloat64()
	}
	zeroed := append([]float64(nil), full...)
	for b := range B {
		for k := range K {
			for l := range L {
				if x[b*L+l] != V {
					clear(zeroed[((b*K+k)*L+l)*V : ((b*K+k)*L+l+1)*V])
				}
			}
		}
	}
	run := func(noise []float64) ([]float64, []float64) {
		lg, r, gr := make([]float64, B*L*V), make([]float64, B*K), make([]float64, B*L*(V+1))
		if err := la.ValueGrad(x, 0.5, 1, noise, lg, r, gr); err != nil {
			t.Fatal(err)
		}
		return r, gr
	}
	r1, g1 := run(full)
	r2, g2 := run(zeroed)
	for i := range r1 {
		if r1[i] != r2[i] {
			t.Fatalf("reward %d: %v with the unmasked rows' noise, %v without", i, r1[i], r2[i])
		}
	}
	for p := range B * L {
		if x[p] != V {
			continue
		}
		for v := range V + 1 {
			if i := p*(V+1) + v; g1[i] != g2[i] {
				t.Fatalf("gradient at masked position %d, token %d: %v with the unmasked rows' noise, %v without", p, v, g1[i], g2[i])
			}
		}
	}
}
