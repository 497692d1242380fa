package objectives

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"

	"github.com/ddsmc/ddsmc/diffusion"
	"github.com/ddsmc/ddsmc/graph"
	"github.com/ddsmc/ddsmc/internal/logsumexp"
	"github.com/ddsmc/ddsmc/internal/testutil"
	"github.com/ddsmc/ddsmc/layers"
)

// rows is a minimal Data.
type rows struct {
	L    int
	toks []int
}

func (r rows) Len() int        { return len(r.toks) / r.L }
func (r rows) Row(i int) []int { return r.toks[i*r.L : (i+1)*r.L] }

func tinyModel(t *testing.T, dtype string) *graph.Model {
	t.Helper()
	m, err := graph.New(graph.Config{Arch: "mlp", L: 3, V: 3, Embed: 8, Hidden: 32, Layers: 2, TimeDim: 4, Act: "relu", DType: dtype, InitSeed: 3})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// tinyData holds a strongly correlated distribution over {0,1,2}^3.
func tinyData() rows {
	return rows{L: 3, toks: []int{0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 1, 0, 0, 1, 2, 2, 2, 2, 1, 1, 1, 0, 0, 0}}
}

// The graph's loss equals the same formula computed in plain Go from the
// denoiser's logits and the forward-masked batch it was fed.
func TestMDLMLossMatchesPlainGoFormula(t *testing.T) {
	m := tinyModel(t, "float64")
	f, err := NewMDLMLoss(m, diffusion.Linear(), 4)
	if err != nil {
		t.Fatal(err)
	}
	x0 := []int{0, 1, 2, 2, 2, 2, 1, 0, 1, 0, 0, 0}
	ts := []float64{0.2, 0.5, 0.8, 0.99}
	if err := f.SetBatch(rand.New(rand.NewPCG(1, 2)), x0, ts); err != nil {
		t.Fatal(err)
	}
	vm := G.NewTapeMachine(f.Graph())
	defer vm.Close()
	if err := vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	logits := make([]float64, 4*3*3)
	if err := m.X0Logits(f.xt, ts, logits); err != nil {
		t.Fatal(err)
	}
	want, masked := 0.0, 0
	for i, v := range f.xt {
		if v == 3 {
			masked++
			want += -logsumexp.LogSoftmaxAt(logits[i*3:(i+1)*3], x0[i]) / ts[i/3]
		}
	}
	want /= 12
	if masked == 0 {
		t.Fatal("test batch has no masked token")
	}
	if got := f.Value(); math.Abs(got-want) > 1e-12 {
		t.Fatalf("graph loss %v, plain Go %v", got, want)
	}
}

// The MDLM loss composes LogSoftmax, the schedule weights and the
// denoiser; its parameter gradient must match finite differences.
func TestMDLMLossGradientMatchesFiniteDifferences(t *testing.T) {
	m := tinyModel(t, "float64")
	f, _ := NewMDLMLoss(m, diffusion.Linear(), 4)
	if err := f.SetBatch(rand.New(rand.NewPCG(1, 2)), []int{0, 1, 2, 2, 2, 2, 1, 0, 1, 0, 0, 0}, []float64{0.3, 0.6, 0.9, 1}); err != nil {
		t.Fatal(err)
	}
	grads, err := G.Grad(f.Node(), f.Learnables()...)
	if err != nil {
		t.Fatal(err)
	}
	gv := make([]G.Value, len(grads))
	for i, g := range grads {
		G.Read(g, &gv[i])
	}
	vm := G.NewTapeMachine(f.Graph())
	defer vm.Close()
	run := func() float64 {
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		return f.Value()
	}
	run()
	rng := rand.New(rand.NewPCG(9, 9))
	fd := testutil.Checker{H: 1e-6, Tol: 1e-6, ScaleByEstimate: true}
	for i, p := range f.Learnables() {
		an := layers.Float64s(gv[i], nil)
		d := p.Value().Data().([]float64)
		for k := 0; k < 5; k++ {
			j := rng.IntN(len(d))
			fd.Coord(t, "d loss/d "+p.Name(), run, d, j, an[j])
		}
	}
}

func TestTrainingLossDecreasesOnTinyData(t *testing.T) {
	m := tinyModel(t, "float32")
	tr, err := NewTrainer(m, diffusion.Linear(), TrainConfig{Steps: 400, Batch: 32, LR: 3e-3, ValSamples: 4, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	data := tinyData()
	val := func() (float64, error) {
		v, _, err := ValidationELBO(m, diffusion.Linear(), data, 64, 64, 7)
		return v, err
	}
	before, _ := val()
	curve, err := Train(tr, data, Hooks{Validate: val})
	if err != nil {
		t.Fatal(err)
	}
	after := curve[len(curve)-1].ValELBO
	t.Logf("held-out -ELBO: %.4f -> %.4f nats/token after %d steps", before, after, tr.Steps())
	// An untrained denoiser is near uniform (≈ log 3 = 1.10 per masked
	// token); the data here is nearly deterministic given one token, so a
	// trained model must cut the bound by well over half.
	if !(after < 0.5*before) {
		t.Fatalf("validation -ELBO went from %.4f to %.4f: not a clear decrease", before, after)
	}
}

// The T-step discrete ELBO of a trained model bounds the exact negative
// log-likelihood of that model's own T-step chain, computed by enumeration.
func TestDiscreteELBOBoundsExactChainNLL(t *testing.T) {
	m := tinyModel(t, "float64")
	tr, _ := NewTrainer(m, diffusion.Linear(), TrainConfig{Steps: 150, Batch: 32, LR: 3e-3, ValSamples: 1, Seed: 2})
	defer tr.Close()
	if _, err := Train(tr, tinyData(), Hooks{}); err != nil {
		t.Fatal(err)
	}
	for _, T := range []int{1, 2, 4, 16} {
		grid, _ := diffusion.NewGrid(T, "linear")
		k := diffusion.Kernel{Schedule: diffusion.Linear()}
		p, err := diffusion.ExactMarginal(k, m, grid, 16)
		if err != nil {
			t.Fatal(err)
		}
		x := make([]int, 3)
		for i := range p {
			diffusion.Unindex(i, 3, 3, x)
			elbo, err := diffusion.DiscreteELBO(diffusion.Linear(), m, grid, x)
			if err != nil {
				t.Fatal(err)
			}
			nll := -math.Log(p[i])
			if elbo < nll-1e-9 {
				t.Fatalf("T=%d x0=%v: discrete ELBO %v < exact NLL %v", T, x, elbo, nll)
			}
		}
	}
}

func TestNaNLossIsAnErrorAndLeavesWeights(t *testing.T) {
	m := tinyModel(t, "float32")
	tr, _ := NewTrainer(m, diffusion.Linear(), TrainConfig{Steps: 5, Batch: 8, LR: 1e-3, ValSamples: 1, Seed: 1})
	defer tr.Close()
	w := m.Store.Get("mlp.0.W").Data().([]float32)
	w[0] = float32(math.NaN())
	snap := append([]float32(nil), m.Store.Get("mlp.1.W").Data().([]float32)...)
	_, err := Train(tr, tinyData(), Hooks{})
	if err == nil || !strings.Contains(err.Error(), "NaN") {
		t.Fatalf("NaN parameters: err = %v, want a NaN-loss error", err)
	}
	for i, v := range m.Store.Get("mlp.1.W").Data().([]float32) {
		if v != snap[i] {
			t.Fatal("a NaN step still updated the weights")
		}
	}
}

func TestEmptyDataAndBadConfigAreErrors(t *testing.T) {
	m := tinyModel(t, "float32")
	tr, _ := NewTrainer(m, diffusion.Linear(), TrainConfig{Steps: 5, Batch: 8, LR: 1e-3, ValSamples: 1})
	defer tr.Close()
	if _, err := Train(tr, rows{L: 3}, Hooks{}); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("empty data: err = %v", err)
	}
	if _, _, err := ValidationELBO(m, diffusion.Linear(), rows{L: 3}, 1, 4, 1); err == nil {
		t.Fatal("empty validation set: want an error")
	}
	if _, err := NewTrainer(m, diffusion.Linear(), TrainConfig{Steps: 5, Batch: 8, LR: -1, ValSamples: 1}); err == nil || !strings.Contains(err.Error(), "train.lr") {
		t.Fatalf("negative lr: err = %v", err)
	}
	if _, err := Train(tr, rows{L: 2, toks: []int{0, 1}}, Hooks{}); err == nil || !strings.Contains(err.Error(), "length") {
		t.Fatalf("rows of the wrong length: err = %v", err)
	}
}

func TestValidationELBOIsReproducible(t *testing.T) {
	m := tinyModel(t, "float32")
	a, _, err := ValidationELBO(m, diffusion.Linear(), tinyData(), 16, 10, 5)
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := ValidationELBO(m, diffusion.Linear(), tinyData(), 16, 10, 5)
	c, _, _ := ValidationELBO(m, diffusion.Linear(), tinyData(), 16, 10, 6)
	if a != b || a == c {
		t.Fatalf("same seed gave %v and %v; other seed %v", a, b, c)
	}
}

// The Monte Carlo validation estimate of the continuous-time ELBO must agree,
// within its standard error, with the exact T-step discrete ELBO at large T
// (which converges to the continuous one), computed by enumerating masks.
func TestValidationELBOMatchesExactDiscreteELBOAtLargeT(t *testing.T) {
	m := tinyModel(t, "float64")
	tr, _ := NewTrainer(m, diffusion.Linear(), TrainConfig{Steps: 100, Batch: 32, LR: 3e-3, ValSamples: 1, Seed: 4})
	defer tr.Close()
	data := tinyData()
	if _, err := Train(tr, data, Hooks{}); err != nil {
		t.Fatal(err)
	}
	mc, se, err := ValidationELBO(m, diffusion.Linear(), data, 4000, 500, 11)
	if err != nil {
		t.Fatal(err)
	}
	grid, _ := diffusion.NewGrid(2000, "linear")
	exact := 0.0
	for i := 0; i < data.Len(); i++ {
		e, err := diffusion.DiscreteELBO(diffusion.Linear(), m, grid, data.Row(i))
		if err != nil {
			t.Fatal(err)
		}
		exact += e / 3
	}
	exact /= float64(data.Len())
	t.Logf("MC continuous -ELBO %.4f ± %.4f, exact T=2000 discrete -ELBO %.4f nats/token", mc, se, exact)
	// 5 standard errors, plus 0.3%% for the t ≥ 1e-3 truncation and T = 2000.
	if math.Abs(mc-exact) > 5*se+0.003*exact {
		t.Fatalf("MC estimate %.4f ± %.4f disagrees with the exact limit %.4f", mc, se, exact)
	}
}
