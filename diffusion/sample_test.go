package diffusion

import (
	"errors"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/ddsmc/ddsmc/internal/testutil"
)

// TestSampleMatchesExactMarginal (item 4): on the toy (V = 3, L = 3) with the
// exact posterior denoiser and T = 3, the empirical pmf of n = 100000
// samples is within TVBound(27, n, 1e-6) ≈ 0.0165 of ExactMarginal, for plain
// MDLM and for a ReMDM kernel; a third case uses the hashed denoiser, whose
// logits depend on t and x_t, so calling it at the wrong time would show.
// batch = 96 does not divide n, so the last call is padded; every call must
// have exactly 96 rows.
func TestSampleMatchesExactMarginal(t *testing.T) {
	const n, batch, T = 100000, 96, 3
	for i, k := range []Kernel{
		{Schedule: Linear()},
		{Schedule: Cosine(), Eta: 0.5, Remask: RemaskMaxCap},
		{Schedule: Linear(), Eta: 0.3, Remask: RemaskRescale},
	} {
		g, _ := NewGrid(T, []string{"linear", "cosine", "linear"}[i])
		var d Denoiser = toyPosterior(t)
		if i == 2 {
			d = testutil.HashDenoiser{L: toyL, V: toyV, Scale: 3}
		}
		exact, err := ExactMarginal(k, d, g, 8)
		if err != nil {
			t.Fatal(err)
		}
		c := &batchChecker{Denoiser: d, t: t, want: batch}
		rng := rand.New(rand.NewPCG(11, uint64(i)))
		xs, err := Sample(rng, k, c, g, n, batch)
		if err != nil {
			t.Fatal(err)
		}
		if len(xs) != n*toyL || slices.Contains(xs, toyV) {
			t.Fatalf("Sample returned %d tokens (want %d), mask left: %v", len(xs), n*toyL, slices.Contains(xs, toyV))
		}
		emp, err := EmpiricalPMF(xs, toyL, toyV)
		if err != nil {
			t.Fatal(err)
		}
		tv, _ := TotalVariation(emp, exact)
		bound := TVBound(27, n, 1e-6)
		tvData, _ := TotalVariation(exact, toyPMF())
		t.Logf("%s eta=%v: TV(empirical, exact) = %.4f (bound %.4f); TV(exact, pdata) = %.4f; %d calls",
			kname(k), k.Eta, tv, bound, tvData, c.calls)
		if tv > bound {
			t.Errorf("%s eta=%v: TV(empirical, exact) = %v > %v", kname(k), k.Eta, tv, bound)
		}
		// The test has power: the chain is far from pdata at T = 3.
		if i < 2 && tvData < 3*bound {
			t.Errorf("toy too easy: TV(exact, pdata) = %v", tvData)
		}
	}
}

// TestSampleReproducible: a fixed seed gives identical samples.
func TestSampleReproducible(t *testing.T) {
	g, _ := NewGrid(5, "cosine")
	k := Kernel{Schedule: Linear(), Eta: 0.2}
	a, err := Sample(rand.New(rand.NewPCG(12, 0)), k, testutil.HashDenoiser{L: 4, V: 5, Scale: 3}, g, 37, 8)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Sample(rand.New(rand.NewPCG(12, 0)), k, testutil.HashDenoiser{L: 4, V: 5, Scale: 3}, g, 37, 8)
	if !slices.Equal(a, b) {
		t.Error("same seed, different samples")
	}
}

type failingDenoiser struct{ uniformDenoiser }

func (failingDenoiser) X0Logits([]int, []float64, []float64) error { return errors.New("boom") }

func TestSampleErrors(t *testing.T) {
	g, _ := NewGrid(3, "linear")
	k := Kernel{Schedule: Linear()}
	rng := rand.New(rand.NewPCG(13, 0))
	d := uniformDenoiser{2, 3}
	for name, f := range map[string]func() ([]int, error){
		"nil rng":  func() ([]int, error) { return Sample(nil, k, d, g, 4, 2) },
		"n":        func() ([]int, error) { return Sample(rng, k, d, g, 0, 2) },
		"batch":    func() ([]int, error) { return Sample(rng, k, d, g, 4, 0) },
		"grid":     func() ([]int, error) { return Sample(rng, k, d, Grid{0.5, 1}, 4, 2) },
		"kernel":   func() ([]int, error) { return Sample(rng, Kernel{}, d, g, 4, 2) },
		"denoiser": func() ([]int, error) { return Sample(rng, k, failingDenoiser{d}, g, 4, 2) },
		"alpha(0)": func() ([]int, error) { return Sample(rng, Kernel{Schedule: alphaFloor{}}, d, g, 200, 50) },
		"shape":    func() ([]int, error) { return Sample(rng, k, uniformDenoiser{0, 3}, g, 4, 2) },
	} {
		if _, err := f(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// countingDenoiser counts evaluated rows and keeps TimeIndependent visible.
type countingDenoiser struct {
	*PosteriorDenoiser
	rows int
}

func (c *countingDenoiser) X0Logits(xt []int, t []float64, out []float64) error {
	c.rows += len(t)
	return c.PosteriorDenoiser.X0Logits(xt, t, out)
}

// For a time-independent denoiser, Sample reuses the logits of rows whose
// x_t did not change. The draws must be exactly those of the uncached path
// (same seed), with and without ReMDM remasking, at a fraction of the rows.
func TestCachedSampleEqualsUncached(t *testing.T) {
	const n, batch, T = 3000, 64, 50
	for _, k := range []Kernel{{Schedule: Linear()}, {Schedule: Linear(), Eta: 0.3, Remask: RemaskRescale}} {
		g, _ := NewGrid(T, "linear")
		cached := &countingDenoiser{PosteriorDenoiser: toyPosterior(t)}
		a, err := Sample(rand.New(rand.NewPCG(5, 6)), k, cached, g, n, batch)
		if err != nil {
			t.Fatal(err)
		}
		plain := &batchChecker{Denoiser: toyPosterior(t), t: t, want: batch}
		b, err := Sample(rand.New(rand.NewPCG(5, 6)), k, plain, g, n, batch)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(a, b) {
			t.Fatalf("eta=%v: cached and uncached samples differ", k.Eta)
		}
		full := plain.calls * batch
		t.Logf("eta=%v: cached path evaluated %d rows, uncached %d", k.Eta, cached.rows, full)
		if k.Eta == 0 && cached.rows*3 > full {
			t.Fatalf("cache saved too little: %d rows vs %d", cached.rows, full)
		}
	}
}
