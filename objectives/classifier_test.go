package objectives

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/ddsmc/ddsmc/graph"
	"github.com/ddsmc/ddsmc/internal/logsumexp"
	"github.com/ddsmc/ddsmc/internal/testutil"
	"github.com/ddsmc/ddsmc/layers"
	"github.com/ddsmc/ddsmc/smc"
)

func clfNew(t testing.TB, cfg ClassifierConfig) *Classifier {
	t.Helper()
	c, err := NewClassifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// clfRandomiseBiases gives the (zero-initialised) biases random values so
// that they take part in the checks.
func clfRandomiseBiases(t testing.TB, c *Classifier, seed uint64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 99))
	for _, n := range c.Store.Names() {
		if !strings.HasSuffix(n, ".b") {
			continue
		}
		v := layers.Float64s(c.Store.Get(n), nil)
		for i := range v {
			v[i] = 0.5 * rng.NormFloat64()
		}
		if err := layers.SetFloat64s(c.Store.Get(n), v); err != nil {
			t.Fatal(err)
		}
	}
}

func clfRandomImages(rng *rand.Rand, n, L int) []int {
	x := make([]int, n*L)
	for i := range x {
		x[i] = rng.IntN(2)
	}
	return x
}

// clfSynthetic returns n images of L pixels: image i has class k uniform in
// 0..classes−1 and is the k-th of fixed random binary prototypes with every
// pixel flipped with probability flip.
func clfSynthetic(rng *rand.Rand, n, L, classes int, flip float64) (pixels, labels []int) {
	prng := rand.New(rand.NewPCG(2024, 6))
	protos := clfRandomImages(prng, classes, L)
	pixels, labels = make([]int, n*L), make([]int, n)
	for i := range labels {
		k := rng.IntN(classes)
		labels[i] = k
		for l := 0; l < L; l++ {
			p := protos[k*L+l]
			if rng.Float64() < flip {
				p = 1 - p
			}
			pixels[i*L+l] = p
		}
	}
	return pixels, labels
}

// clfRefLogits is a plain-Go float64 forward pass of the classifier.
func clfRefLogits(c *Classifier, x []int, n int) []float64 {
	ls := c.Cfg.layerShapes()
	out := make([]float64, 0, n*c.Cfg.Classes)
	for b := 0; b < n; b++ {
		h := make([]float64, 2*c.L)
		for l, v := range x[b*c.L : (b+1)*c.L] {
			h[2*l+v] = 1
		}
		for i, l := range ls {
			W := layers.Float64s(c.Store.Get(l.name+".W"), nil)
			bias := layers.Float64s(c.Store.Get(l.name+".b"), nil)
			y := make([]float64, l.out)
			for o := range y {
				s := bias[o]
				for k := 0; k < l.in; k++ {
					s += h[k] * W[k*l.out+o]
				}
				if i < len(ls)-1 {
					switch c.Cfg.Act {
					case "relu":
						s = math.Max(0, s)
					case "silu":
						s = s / (1 + math.Exp(-s))
					case "gelu":
						s = 0.5 * s * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(s+0.044715*s*s*s)))
					}
				}
				y[o] = s
			}
			h = y
		}
		out = append(out, h...)
	}
	return out
}

// clfGraph is a classifier reward's test graph.
type clfGraph = rewardHarness

func clfBuildGraph(t testing.TB, rw *ClassifierReward, dtype tensor.Dtype, n int, withGrad bool) *clfGraph {
	return buildRewardHarness(t, rw, dtype, n, withGrad)
}

func clfOneHot(x []int) []float64 {
	s := make([]float64, 2*len(x))
	for i, v := range x {
		s[2*i+v] = 1
	}
	return s
}

func clfSnapshot(c *Classifier) map[string][]float64 {
	m := map[string][]float64{}
	for _, n := range c.Store.Names() {
		m[n] = layers.Float64s(c.Store.Get(n), nil)
	}
	return m
}

func clfSameParams(t *testing.T, c *Classifier, snap map[string][]float64) {
	t.Helper()
	for n, v := range snap {
		if d := maxAbsDiff(layers.Float64s(c.Store.Get(n), nil), v); d != 0 {
			t.Fatalf("classifier parameter %s changed by %g", n, d)
		}
	}
}

// The RewardGraph's gradient with respect to the soft one-hot input matches
// central finite differences of Σ_b r_b (float64, every input coordinate,
// relative error |a − n|/max(1, |a|, |n|) < 1e-6), for each activation, and
// evaluating it never changes the classifier's parameters.
func TestClassifierRewardGradientMatchesFiniteDifferences(t *testing.T) {
	for _, act := range []string{"relu", "gelu", "silu"} {
		t.Run(act, func(t *testing.T) {
			c := clfNew(t, ClassifierConfig{H: 3, W: 4, Hidden: []int{7, 5}, Act: act, DType: "float64", Seed: 3, Classes: 4})
			clfRandomiseBiases(t, c, 1)
			snap := clfSnapshot(c)
			rw, err := c.Reward(2)
			if err != nil {
				t.Fatal(err)
			}
			const n, h, tol = 3, 1e-6, 1e-6
			g := clfBuildGraph(t, rw, tensor.Float64, n, true)
			defer g.m.Close()
			rng := rand.New(rand.NewPCG(5, 6))
			xs := make([]float64, n*c.L*2)
			for i := 0; i < n*c.L; i++ { // soft one-hot rows
				p := rng.Float64()
				xs[2*i], xs[2*i+1] = p, 1-p
			}
			g.run(t, xs)
			grad := layers.Float64s(g.gv, nil)
			cost := func(x []float64) float64 {
				s := 0.0
				for _, r := range g.run(t, x) {
					s += r
				}
				return s
			}
			fd := testutil.Checker{H: h, Tol: tol}
			fd.All(t, "d r/d x", func() float64 { return cost(xs) }, xs, grad)
			if maxAbsDiff(grad, make([]float64, len(grad))) < 1e-3 {
				t.Fatalf("degenerate test: gradient %v", grad)
			}
			clfSameParams(t, c, snap)
			t.Logf("%d input coordinates checked, worst relative error %.2g", len(xs), fd.Worst)
		})
	}
}

// The token reward equals the RewardGraph forward pass on exact one-hot
// inputs and the log-softmax of Logits at the target (1e-10, float64);
// Logits matches a plain-Go forward pass, also when the images are split
// into several chunks (n > ClassifierMaxBatch).
func TestClassifierTokenRewardMatchesGraphAndLogits(t *testing.T) {
	c := clfNew(t, ClassifierConfig{H: 6, W: 6, Hidden: []int{16}, Act: "gelu", DType: "float64", Seed: 4, Classes: 10})
	clfRandomiseBiases(t, c, 2)
	rng := rand.New(rand.NewPCG(7, 8))
	const n = 5
	x := clfRandomImages(rng, n, c.L)
	for _, target := range []int{0, 7, 9} {
		rw, err := c.Reward(target)
		if err != nil {
			t.Fatal(err)
		}
		tok := make([]float64, n)
		if err := rw.Reward(x, tok); err != nil {
			t.Fatal(err)
		}
		g := clfBuildGraph(t, rw, tensor.Float64, n, false)
		gr := g.run(t, clfOneHot(x))
		gr2 := g.run(t, clfOneHot(x)) // re-running gives the same values
		g.m.Close()
		logits := make([]float64, n*10)
		if err := c.Logits(x, logits); err != nil {
			t.Fatal(err)
		}
		for b := 0; b < n; b++ {
			want := logsumexp.LogSoftmaxAt(logits[b*10:(b+1)*10], target)
			if math.Abs(tok[b]-want) > 1e-10 || math.Abs(gr[b]-tok[b]) > 1e-10 || gr[b] != gr2[b] {
				t.Fatalf("target %d image %d: token reward %.15g, graph %.15g (again %.15g), log-softmax of logits %.15g", target, b, tok[b], gr[b], gr2[b], want)
			}
			if tok[b] >= 0 {
				t.Fatalf("log-probability %v ≥ 0", tok[b])
			}
		}
	}
	// Chunked Logits against the plain-Go reference, float64 and float32.
	for _, dt := range []string{"float64", "float32"} {
		c := clfNew(t, ClassifierConfig{H: 3, W: 5, Hidden: []int{9, 6}, Act: "silu", DType: dt, Seed: 6, Classes: 3})
		clfRandomiseBiases(t, c, 3)
		const n = ClassifierMaxBatch + 45
		x := clfRandomImages(rng, n, c.L)
		got := make([]float64, n*3)
		if err := c.Logits(x, got); err != nil {
			t.Fatal(err)
		}
		tol := 1e-12
		if dt == "float32" {
			tol = 1e-5
		}
		if d := maxAbsDiff(got, clfRefLogits(c, x, n)); d > tol {
			t.Fatalf("%s: Logits differ from the plain-Go forward pass by %.3g", dt, d)
		}
		if len(c.progs) != 2 {
			t.Fatalf("%s: %d compiled programs for chunks of %d and %d, want 2", dt, len(c.progs), ClassifierMaxBatch, 45)
		}
	}
}

// Two classifiers of the same architecture built into one graph keep their
// own weights (Gorgonia merges equally named input nodes, so Build must
// name them uniquely), and a float64 classifier builds into a float32 graph
// (converted copy).
func TestClassifierRewardGraphsInOneGraphAndDTypes(t *testing.T) {
	cfg := ClassifierConfig{H: 4, W: 4, Hidden: []int{8}, Act: "relu", DType: "float64", Classes: 5}
	cfg.Seed = 1
	c1 := clfNew(t, cfg)
	cfg.Seed = 2
	c2 := clfNew(t, cfg)
	r1, _ := c1.Reward(1)
	r2, _ := c2.Reward(1)
	rng := rand.New(rand.NewPCG(9, 10))
	const n = 4
	x := clfRandomImages(rng, n, c1.L)
	w1, w2 := make([]float64, n), make([]float64, n)
	if err := r1.Reward(x, w1); err != nil {
		t.Fatal(err)
	}
	if err := r2.Reward(x, w2); err != nil {
		t.Fatal(err)
	}
	if maxAbsDiff(w1, w2) < 1e-3 {
		t.Fatalf("degenerate test: both classifiers give %v", w1)
	}
	unlock := graph.LockBuild()
	s, _ := layers.NewStore(tensor.Float64, 1)
	ctx := layers.NewCtx(s, false)
	xn := ctx.Input("x0", n*c1.L, 2)
	if err := G.Let(xn, layers.NewDense(tensor.Float64, []int{n * c1.L, 2}, clfOneHot(x))); err != nil {
		t.Fatal(err)
	}
	a, err := r1.Build(ctx, xn, n)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r2.Build(ctx, xn, n)
	if err != nil {
		t.Fatal(err)
	}
	var av, bv G.Value
	G.Read(a, &av)
	G.Read(b, &bv)
	m := G.NewTapeMachine(ctx.G)
	unlock()
	defer m.Close()
	if err := m.RunAll(); err != nil {
		t.Fatal(err)
	}
	if d1, d2 := maxAbsDiff(layers.Float64s(av, nil), w1), maxAbsDiff(layers.Float64s(bv, nil), w2); d1 > 1e-10 || d2 > 1e-10 {
		t.Fatalf("two classifiers in one graph: errors %.3g and %.3g", d1, d2)
	}

	g := clfBuildGraph(t, r1, tensor.Float32, n, true)
	defer g.m.Close()
	if d := maxAbsDiff(g.run(t, clfOneHot(x)), w1); d > 1e-4 {
		t.Fatalf("float64 classifier in a float32 graph: error %.3g", d)
	}
}

// The reward plugs into a LookAhead over a denoiser on the same images
// (L = H·W, V = 2): in float64 the look-ahead's straight-through rewards
// equal the token reward of the hard carried-over samples.
func TestClassifierRewardInLookAhead(t *testing.T) {
	c := clfNew(t, ClassifierConfig{H: 3, W: 3, Hidden: []int{12}, Act: "silu", DType: "float64", Seed: 8, Classes: 4})
	clfCheckLookAhead(t, c, rand.New(rand.NewPCG(11, 12)))
}

// clfCheckLookAhead plugs the reward of c (3×3 images, 4 classes, biases
// randomised) into a float64 LookAhead over a denoiser on the same images
// and checks that the straight-through rewards equal the token reward of
// the hard carried-over samples and that the gradient is non-zero.
func clfCheckLookAhead(t *testing.T, c *Classifier, rng *rand.Rand) {
	t.Helper()
	clfRandomiseBiases(t, c, 4)
	rw, err := c.Reward(3)
	if err != nil {
		t.Fatal(err)
	}
	m, err := graph.New(graph.Config{Arch: "mlp", L: 9, V: 2, Embed: 4, Hidden: 16, Layers: 2, TimeDim: 4, Act: "silu", DType: "float64", InitSeed: 5})
	if err != nil {
		t.Fatal(err)
	}
	const B, K, tm, scale = 3, 2, 0.7, 1.5
	la, err := NewLookAhead(m, rw, LookAheadConfig{Batch: B, Phi: K, Tau: 0.5})
	if err != nil {
		t.Fatal(err)
	}
	xt := make([]int, B*9)
	for i := range xt {
		xt[i] = rng.IntN(3) // 2 = MASK
	}
	noise := laGumbel(rng, B*K*9*2)
	o := laHard(t, la, xt, tm, scale, noise)
	x0 := hardSamples(xt, o.logits, noise, B, K, 9, 2)
	want := make([]float64, B*K)
	if err := rw.Reward(x0, want); err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(o.rewards, want); d > 1e-10 {
		t.Fatalf("look-ahead rewards %v, token rewards of the hard samples %v (diff %.3g)", o.rewards, want, d)
	}
	if maxAbsDiff(o.grad, make([]float64, len(o.grad))) == 0 {
		t.Fatalf("look-ahead gradient is zero")
	}
}

// Training on a separable synthetic set (10 random 6×6 prototypes, 10%
// pixel flips) lowers the loss every epoch and reaches > 95% held-out
// accuracy; the same seed reproduces it exactly.
func TestClassifierTrainsOnSyntheticDigits(t *testing.T) {
	cfg := ClassifierConfig{H: 6, W: 6, Hidden: []int{32}, Act: "relu", DType: "float64", Seed: 1, Classes: 10}
	rng := rand.New(rand.NewPCG(1, 1))
	trainX, trainY := clfSynthetic(rng, 2000, 36, 10, 0.1)
	testX, testY := clfSynthetic(rng, 500, 36, 10, 0.1)
	c := clfNew(t, cfg)
	acc0, err := c.Accuracy(testX, testY)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	losses, err := c.Train(trainX, trainY, 4, 50, 0.01, rand.New(rand.NewPCG(3, 3)), &log)
	if err != nil {
		t.Fatal(err)
	}
	if len(losses) != 4 {
		t.Fatalf("%d epoch losses, want 4", len(losses))
	}
	for e := 1; e < len(losses); e++ {
		if !(losses[e] < losses[e-1]) {
			t.Fatalf("loss did not decrease: %v", losses)
		}
	}
	acc, err := c.Accuracy(testX, testY)
	if err != nil {
		t.Fatal(err)
	}
	trainAcc, err := c.Accuracy(trainX, trainY)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("losses %.4f; held-out accuracy %.3f → %.3f (train %.3f)", losses, acc0, acc, trainAcc)
	if acc <= 0.95 {
		t.Fatalf("held-out accuracy %.3f ≤ 0.95", acc)
	}
	if !strings.Contains(log.String(), "epoch 4/4") {
		t.Fatalf("progress log %q", log.String())
	}
	// Reproducible: same config, data and rng seed.
	c2 := clfNew(t, cfg)
	losses2, err := c2.Train(trainX, trainY, 4, 50, 0.01, rand.New(rand.NewPCG(3, 3)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if maxAbsDiff(losses, losses2) != 0 {
		t.Fatalf("losses %v then %v", losses, losses2)
	}
	clfSameParams(t, c2, clfSnapshot(c))
	// The token reward is confident on clean prototypes of the target class.
	rw, _ := c.Reward(testY[0])
	r := make([]float64, 1)
	if err := rw.Reward(testX[:36], r); err != nil {
		t.Fatal(err)
	}
	if r[0] < math.Log(0.5) {
		t.Fatalf("log p(true class) = %v for a held-out image", r[0])
	}
}

// Save/Load round-trips the logits exactly (float64 and float32); loading
// for another image size names both sizes; a flipped byte fails the
// checksum; a non-classifier checkpoint is refused.
func TestClassifierSaveLoad(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(13, 14))
	for _, dt := range []string{"float64", "float32"} {
		c := clfNew(t, ClassifierConfig{H: 6, W: 5, Hidden: []int{8, 4}, Act: "gelu", DType: dt, Seed: 9, Classes: 10})
		clfRandomiseBiases(t, c, 5)
		path := filepath.Join(dir, dt, "clf.ckpt")
		if err := c.Save(path); err != nil {
			t.Fatal(err)
		}
		c2, err := LoadClassifier(path, 6, 5)
		if err != nil {
			t.Fatal(err)
		}
		if c2.Cfg.DType != dt || c2.Cfg.Act != "gelu" || len(c2.Cfg.Hidden) != 2 {
			t.Fatalf("loaded config %+v", c2.Cfg)
		}
		x := clfRandomImages(rng, 7, c.L)
		a, b := make([]float64, 70), make([]float64, 70)
		if err := c.Logits(x, a); err != nil {
			t.Fatal(err)
		}
		if err := c2.Logits(x, b); err != nil {
			t.Fatal(err)
		}
		if d := maxAbsDiff(a, b); d != 0 {
			t.Fatalf("%s: loaded classifier's logits differ by %g", dt, d)
		}
	}
	path := filepath.Join(dir, "float64", "clf.ckpt")
	_, err := LoadClassifier(path, 5, 6)
	if err == nil || !strings.Contains(err.Error(), "6×5") || !strings.Contains(err.Error(), "5×6") {
		t.Fatalf("wrong image size: error %v", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-100] ^= 0x10
	bad := filepath.Join(dir, "bad.ckpt")
	if err := os.WriteFile(bad, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadClassifier(bad, 6, 5); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("corrupted checkpoint: error %v", err)
	}
	other := filepath.Join(dir, "other.ckpt")
	if err := graph.WriteCheckpoint(other, &graph.Checkpoint{DType: "float64", Tensors: []graph.Tensor{{Name: "a", Shape: []int{1}, Data: []float64{1}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadClassifier(other, 6, 5); err == nil || !strings.Contains(err.Error(), "not a classifier checkpoint") {
		t.Fatalf("non-classifier checkpoint: error %v", err)
	}
	if _, err := LoadClassifier(filepath.Join(dir, "missing.ckpt"), 6, 5); err == nil {
		t.Fatal("missing file: no error")
	}
	if _, err := LoadClassifier(path, 0, 5); err == nil {
		t.Fatal("h = 0: no error")
	}
}

// Bad configurations and inputs are errors, never panics.
func TestClassifierBadInputsAreErrors(t *testing.T) {
	good := ClassifierConfig{H: 3, W: 3, Hidden: []int{4}, Act: "relu", Seed: 1, Classes: 10}
	for name, mod := range map[string]func(*ClassifierConfig){
		"h":          func(c *ClassifierConfig) { c.H = 0 },
		"w":          func(c *ClassifierConfig) { c.W = -1 },
		"huge":       func(c *ClassifierConfig) { c.H, c.W = 1<<15, 1<<15 },
		"classes":    func(c *ClassifierConfig) { c.Classes = 1 },
		"hidden":     func(c *ClassifierConfig) { c.Hidden = []int{4, 0} },
		"activation": func(c *ClassifierConfig) { c.Act = "tanh" },
		"no act":     func(c *ClassifierConfig) { c.Act = "" },
		"dtype":      func(c *ClassifierConfig) { c.DType = "float16" },
	} {
		cfg := good
		mod(&cfg)
		if _, err := NewClassifier(cfg); err == nil {
			t.Errorf("config %s: no error for %+v", name, cfg)
		}
	}
	c := clfNew(t, good)
	if c.Cfg.DType != "float32" {
		t.Fatalf("default dtype %q", c.Cfg.DType)
	}
	if _, err := c.Reward(11); err == nil || err.Error() != "objectives: target digit 11 out of range 0..9" {
		t.Fatalf("target 11: %v", err)
	}
	if _, err := c.Reward(-1); err == nil {
		t.Fatal("target -1: no error")
	}
	rw, err := c.Reward(3)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]int, 2*9)
	bad2 := append([]int(nil), x...)
	bad2[5] = 2
	badNeg := append([]int(nil), x...)
	badNeg[0] = -1
	expectErr := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s: no error", what)
		}
	}
	expectErr("logits short out", c.Logits(x, make([]float64, 15)))
	expectErr("logits wrong x", c.Logits(x[:17], make([]float64, 20)))
	expectErr("logits token 2", c.Logits(bad2, make([]float64, 20)))
	expectErr("logits token -1", c.Logits(badNeg, make([]float64, 20)))
	expectErr("reward wrong length", rw.Reward(x, make([]float64, 3)))
	expectErr("reward token 2", rw.Reward(bad2, make([]float64, 2)))
	if err := rw.Reward(x, make([]float64, 2)); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	labels := []int{1, 2}
	_, err = c.Train(x, []int{1, 10}, 1, 2, 0.01, rng, nil)
	expectErr("train label 10", err)
	_, err = c.Train(x[:10], labels, 1, 2, 0.01, rng, nil)
	expectErr("train pixels length", err)
	_, err = c.Train(bad2, labels, 1, 2, 0.01, rng, nil)
	expectErr("train token 2", err)
	_, err = c.Train(x, labels, 0, 2, 0.01, rng, nil)
	expectErr("train epochs 0", err)
	_, err = c.Train(x, labels, 1, 0, 0.01, rng, nil)
	expectErr("train batch 0", err)
	for _, lr := range []float64{0, 1, -0.1, math.NaN(), math.Inf(1)} {
		_, err = c.Train(x, labels, 1, 2, lr, rng, nil)
		expectErr("train lr", err)
	}
	_, err = c.Train(x, labels, 1, 2, 0.01, nil, nil)
	expectErr("train nil rng", err)
	_, err = c.Train(nil, nil, 1, 2, 0.01, rng, nil)
	expectErr("train empty", err)
	_, err = c.Accuracy(nil, nil)
	expectErr("accuracy empty", err)
	_, err = c.Accuracy(x, []int{1, -1})
	expectErr("accuracy label", err)
	_, err = c.Accuracy(x, []int{1})
	expectErr("accuracy length", err)

	// RewardGraph.Build on bad inputs.
	unlock := graph.LockBuild()
	defer unlock()
	s, _ := layers.NewStore(tensor.Float32, 1)
	ctx := layers.NewCtx(s, false)
	xn := ctx.Input("x0", 2*9, 2)
	_, err = rw.Build(ctx, xn, 3)
	expectErr("build n mismatch", err)
	_, err = rw.Build(ctx, xn, 0)
	expectErr("build n 0", err)
	_, err = rw.Build(ctx, ctx.Input("x3", 2*9, 3), 2)
	expectErr("build V = 3", err)
	_, err = rw.Build(nil, xn, 2)
	expectErr("build nil ctx", err)
	_, err = rw.Build(ctx, nil, 2)
	expectErr("build nil x", err)
	x64 := G.NewMatrix(ctx.G, tensor.Float64, G.WithShape(2*9, 2), G.WithName("x64"))
	_, err = rw.Build(ctx, x64, 2)
	expectErr("build dtype mismatch", err)
	if _, err := rw.Build(ctx, xn, 2); err != nil {
		t.Fatal(err)
	}
	var _ smc.Reward = rw
}

// BenchmarkClassifierReward times the classifier reward of n = 64 binarised
// 28×28 images (hidden [256], float32): the token reward (smc.Reward) and
// the RewardGraph forward plus d r/d x on soft one-hots (full tape).
func BenchmarkClassifierReward(b *testing.B) {
	const n = 64
	c := clfNew(b, ClassifierConfig{H: 28, W: 28, Hidden: []int{256}, Act: "relu", DType: "float32", Seed: 1, Classes: 10})
	rw, err := c.Reward(3)
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	x := clfRandomImages(rng, n, c.L)
	out := make([]float64, n)
	b.Run("tokens", func(b *testing.B) {
		if err := rw.Reward(x, out); err != nil { // compile
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := rw.Reward(x, out); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "images/s")
	})
	b.Run("graph+grad", func(b *testing.B) {
		g := clfBuildGraph(b, rw, tensor.Float32, n, true)
		defer g.m.Close()
		xs := clfOneHot(x)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			g.run(b, xs)
		}
		b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "images/s")
	})
}

// clfRefConv is a plain-Go float64 forward pass of a classifier with conv
// layers (3×3, stride 2, padding 1, channel-last) by direct loops: the
// logits [n·Classes] and what the output layer reads (feats, n rows of
// dim).
func clfRefConv(c *Classifier, x []int, n int) (logits, feats []float64, dim int) {
	act := func(s float64) float64 {
		switch c.Cfg.Act {
		case "relu":
			return math.Max(0, s)
		case "silu":
			return s / (1 + math.Exp(-s))
		}
		return 0.5 * s * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(s+0.044715*s*s*s)))
	}
	ls := c.Cfg.layerShapes()
	for b := 0; b < n; b++ {
		h := make([]float64, 2*c.L) // [H, W, 2]
		for l, v := range x[b*c.L : (b+1)*c.L] {
			h[2*l+v] = 1
		}
		H, W, C := c.Cfg.H, c.Cfg.W, 2
		for i, cout := range c.Cfg.Conv {
			name := fmt.Sprintf("classifier.conv%d", i)
			wt := layers.Float64s(c.Store.Get(name+".W"), nil) // [9·C, cout]
			bias := layers.Float64s(c.Store.Get(name+".b"), nil)
			Ho, Wo := (H-1)/2+1, (W-1)/2+1
			y := make([]float64, Ho*Wo*cout)
			for oi := 0; oi < Ho; oi++ {
				for oj := 0; oj < Wo; oj++ {
					for o := 0; o < cout; o++ {
						s := bias[o]
						for di := 0; di < 3; di++ {
							for dj := 0; dj < 3; dj++ {
								r, q := 2*oi-1+di, 2*oj-1+dj
								if r < 0 || r >= H || q < 0 || q >= W {
									continue
								}
								for ch := 0; ch < C; ch++ {
									s += h[(r*W+q)*C+ch] * wt[((di*3+dj)*C+ch)*cout+o]
								}
							}
						}
						y[(oi*Wo+oj)*cout+o] = act(s)
					}
				}
			}
			h, H, W, C = y, Ho, Wo, cout
		}
		for i, l := range ls {
			if i == len(ls)-1 {
				feats = append(feats, h...)
				dim = len(h)
			}
			Wm := layers.Float64s(c.Store.Get(l.name+".W"), nil)
			bias := layers.Float64s(c.Store.Get(l.name+".b"), nil)
			y := make([]float64, l.out)
			for o := range y {
				s := bias[o]
				for k := 0; k < l.in; k++ {
					s += h[k] * Wm[k*l.out+o]
				}
				if i < len(ls)-1 {
					s = act(s)
				}
				y[o] = s
			}
			h = y
		}
		logits = append(logits, h...)
	}
	return logits, feats, dim
}

// tinyConvCfg is a small conv classifier: a 5×4 image (odd side, padding
// on every border) → 3×2×3 → 2×1×2 → 4 hidden units → 3 classes.
func tinyConvCfg(act, dtype string) ClassifierConfig {
	return ClassifierConfig{H: 5, W: 4, Conv: []int{3, 2}, Hidden: []int{4}, Act: act, DType: dtype, Seed: 7, Classes: 3}
}

// A conv classifier's RewardGraph gradient with respect to the soft
// one-hot input matches central finite differences of Σ_b r_b (float64,
// every input coordinate, relative error < 1e-6), and its forward pass,
// Logits and the graph's features match a direct-loop reference.
func TestConvClassifierGradientAndForward(t *testing.T) {
	for _, act := range []string{"gelu", "silu", "relu"} {
		t.Run(act, func(t *testing.T) {
			c := clfNew(t, tinyConvCfg(act, "float64"))
			clfRandomiseBiases(t, c, 11)
			if got := c.Store.Names(); len(got) != 8 || got[4] != "classifier.conv0.W" || !c.Store.Get("classifier.conv1.W").Shape().Eq(tensor.Shape{27, 2}) ||
				!c.Store.Get("classifier.0.W").Shape().Eq(tensor.Shape{4, 4}) {
				t.Fatalf("parameters %v", got)
			}
			snap := clfSnapshot(c)
			rw, err := c.Reward(1)
			if err != nil {
				t.Fatal(err)
			}
			const n, h, tol = 3, 1e-6, 1e-6
			g := clfBuildGraph(t, rw, tensor.Float64, n, true)
			defer g.m.Close()
			rng := rand.New(rand.NewPCG(15, 16))
			xs := make([]float64, n*c.L*2)
			for i := 0; i < n*c.L; i++ {
				p := rng.Float64()
				xs[2*i], xs[2*i+1] = p, 1-p
			}
			g.run(t, xs)
			grad := layers.Float64s(g.gv, nil)
			fd := testutil.Checker{H: h, Tol: tol}
			fd.All(t, "d r/d x", func() float64 {
				s := 0.0
				for _, r := range g.run(t, xs) {
					s += r
				}
				return s
			}, xs, grad)
			if maxAbsDiff(grad, make([]float64, len(grad))) < 1e-3 {
				t.Fatalf("degenerate test: gradient %v", grad)
			}
			clfSameParams(t, c, snap)

			// Forward: the graph on exact one-hots, Logits and the graph's
			// features against the direct loops.
			x := clfRandomImages(rng, n, c.L)
			wantLogits, wantFeats, wantDim := clfRefConv(c, x, n)
			logits := make([]float64, n*3)
			if err := c.Logits(x, logits); err != nil {
				t.Fatal(err)
			}
			if d := maxAbsDiff(logits, wantLogits); d > 1e-12 {
				t.Fatalf("Logits differ from the direct loops by %.3g", d)
			}
			r := g.run(t, clfOneHot(x))
			for b := range r {
				if want := logsumexp.LogSoftmaxAt(wantLogits[b*3:(b+1)*3], 1); math.Abs(r[b]-want) > 1e-12 {
					t.Fatalf("image %d: graph reward %v, reference %v", b, r[b], want)
				}
			}
			feats, dim, err := c.graphFeatures(x)
			if err != nil {
				t.Fatal(err)
			}
			if dim != wantDim || dim != 4 || maxAbsDiff(feats, wantFeats) > 1e-12 {
				t.Fatalf("features (dim %d) %v, reference (dim %d) %v", dim, feats, wantDim, wantFeats)
			}
			t.Logf("%d input coordinates checked, worst relative error %.2g", len(xs), fd.Worst)
		})
	}
}

// A conv classifier without hidden layers feeds the flattened last conv
// layer to the output layer (its features); the graph's features of an
// MLP equal the plain-Go Features; Features of a conv classifier gives
// the graph's values or an error (until features.go routes conv
// classifiers to the graph, it refuses them), never the plain-Go MLP
// loop's misreading of the conv weights.
func TestConvClassifierFeatures(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	c := clfNew(t, ClassifierConfig{H: 7, W: 6, Conv: []int{2}, Act: "relu", DType: "float64", Seed: 3, Classes: 4})
	clfRandomiseBiases(t, c, 12)
	if !c.Store.Get("classifier.0.W").Shape().Eq(tensor.Shape{4 * 3 * 2, 4}) {
		t.Fatalf("output layer %v, want [24 4]", c.Store.Get("classifier.0.W").Shape())
	}
	const n = ClassifierMaxBatch + 3 // two chunks
	x := clfRandomImages(rng, n, c.L)
	wantLogits, wantFeats, _ := clfRefConv(c, x, n)
	feats, dim, err := c.graphFeatures(x)
	if err != nil {
		t.Fatal(err)
	}
	if dim != 24 || maxAbsDiff(feats, wantFeats) > 1e-12 {
		t.Fatalf("features: dim %d, error %.3g", dim, maxAbsDiff(feats, wantFeats))
	}
	logits := make([]float64, n*4)
	if err := c.Logits(x, logits); err != nil {
		t.Fatal(err)
	}
	if d := maxAbsDiff(logits, wantLogits); d > 1e-12 {
		t.Fatalf("Logits differ from the direct loops by %.3g", d)
	}
	// Features of a conv classifier: the right values or an error, never
	// the plain-Go MLP loop's misreading.
	if f, d, err := c.Features(x); err != nil {
		if !strings.Contains(err.Error(), "conv") {
			t.Fatalf("Features of a conv classifier: error %v", err)
		}
	} else if d != 24 || maxAbsDiff(f, wantFeats) > 1e-12 {
		t.Fatalf("Features of a conv classifier: dim %d, error %.3g", d, maxAbsDiff(f, wantFeats))
	}
	if _, _, err := c.graphFeatures(x[:5]); err == nil {
		t.Fatal("graphFeatures of 5 tokens: no error")
	}

	m := clfNew(t, ClassifierConfig{H: 4, W: 3, Hidden: []int{6, 5}, Act: "gelu", DType: "float64", Seed: 4, Classes: 3})
	clfRandomiseBiases(t, m, 13)
	xm := clfRandomImages(rng, 9, m.L)
	a, da, err := m.Features(xm)
	if err != nil {
		t.Fatal(err)
	}
	b, db, err := m.graphFeatures(xm)
	if err != nil {
		t.Fatal(err)
	}
	if da != db || maxAbsDiff(a, b) > 1e-12 {
		t.Fatalf("MLP features: plain Go (dim %d) and graph (dim %d) differ by %.3g", da, db, maxAbsDiff(a, b))
	}
}

// Save → Load of a conv classifier rebuilds the conv layers and gives the
// same logits bit for bit (float64 and float32); the checkpoint records the
// conv channels; the configuration of an MLP serialises exactly as before
// the conv field existed, so MLP checkpoints (which have no "conv") load as
// MLPs.
func TestConvClassifierSaveLoad(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(19, 20))
	for _, dt := range []string{"float64", "float32"} {
		c := clfNew(t, ClassifierConfig{H: 9, W: 8, Conv: []int{4, 3}, Hidden: []int{5}, Act: "gelu", DType: dt, Seed: 21, Classes: 10})
		clfRandomiseBiases(t, c, 14)
		path := filepath.Join(dir, dt, "clf.ckpt")
		if err := c.Save(path); err != nil {
			t.Fatal(err)
		}
		ck, err := graph.ReadCheckpoint(path)
		if err != nil {
			t.Fatal(err)
		}
		if js := ck.Meta[metaClassifierConfig]; !strings.Contains(js, `"conv":[4,3]`) {
			t.Fatalf("checkpoint config %s does not record the conv layers", js)
		}
		c2, err := LoadClassifier(path, 9, 8)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(c2.Cfg.Conv, []int{4, 3}) || c2.Cfg.DType != dt {
			t.Fatalf("loaded config %+v", c2.Cfg)
		}
		x := clfRandomImages(rng, 6, c.L)
		a, b := make([]float64, 60), make([]float64, 60)
		if err := c.Logits(x, a); err != nil {
			t.Fatal(err)
		}
		if err := c2.Logits(x, b); err != nil {
			t.Fatal(err)
		}
		for i := range a {
			if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
				t.Fatalf("%s: logit %d: %v before saving, %v loaded", dt, i, a[i], b[i])
			}
		}
		if maxAbsDiff(a, make([]float64, len(a))) == 0 {
			t.Fatal("degenerate test: zero logits")
		}
	}
	// The JSON of an MLP configuration has no conv key: byte for byte the
	// format of the existing checkpoints.
	js, err := json.Marshal(ClassifierConfig{H: 28, W: 28, Hidden: []int{256}, Act: "relu", DType: "float32", Seed: 11, Classes: 10})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"h":28,"w":28,"hidden":[256],"activation":"relu","dtype":"float32","seed":11,"classes":10}`; string(js) != want {
		t.Fatalf("MLP config JSON %s, want %s", js, want)
	}
	m := clfNew(t, ClassifierConfig{H: 4, W: 4, Hidden: []int{3}, Act: "relu", DType: "float64", Seed: 2, Classes: 3})
	path := filepath.Join(dir, "mlp.ckpt")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	ck, err := graph.ReadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	if js := ck.Meta[metaClassifierConfig]; strings.Contains(js, "conv") {
		t.Fatalf("MLP checkpoint config %s mentions conv", js)
	}
	m2, err := LoadClassifier(path, 4, 4)
	if err != nil {
		t.Fatal(err)
	}
	if m2.Cfg.Conv != nil || len(m2.Store.Names()) != 4 {
		t.Fatalf("MLP checkpoint loaded as %+v with parameters %v", m2.Cfg, m2.Store.Names())
	}
	// A conv checkpoint whose conv field was dropped fails the tensor check
	// (it is not silently read as an MLP).
	conv := clfNew(t, ClassifierConfig{H: 4, W: 4, Conv: []int{2}, Hidden: []int{3}, Act: "relu", DType: "float64", Seed: 2, Classes: 3})
	cpath := filepath.Join(dir, "conv.ckpt")
	if err := conv.Save(cpath); err != nil {
		t.Fatal(err)
	}
	ck, err = graph.ReadCheckpoint(cpath)
	if err != nil {
		t.Fatal(err)
	}
	ck.Meta[metaClassifierConfig] = strings.Replace(ck.Meta[metaClassifierConfig], `"conv":[2],`, "", 1)
	bad := filepath.Join(dir, "conv-dropped.ckpt")
	if err := graph.WriteCheckpoint(bad, ck); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadClassifier(bad, 4, 4); err == nil {
		t.Fatal("conv checkpoint without its conv field: no error")
	}
}

// A conv classifier trains (the loss falls every epoch and held-out
// accuracy on separable synthetic prototypes exceeds 90%), and plugs into
// a LookAhead: in float64 the straight-through rewards equal the token
// reward of the hard carried-over samples and the gradient is non-zero.
func TestConvClassifierTrainsAndLooksAhead(t *testing.T) {
	cfg := ClassifierConfig{H: 6, W: 6, Conv: []int{8}, Hidden: []int{16}, Act: "relu", DType: "float64", Seed: 1, Classes: 10}
	rng := rand.New(rand.NewPCG(1, 1))
	trainX, trainY := clfSynthetic(rng, 1000, 36, 10, 0.1)
	testX, testY := clfSynthetic(rng, 300, 36, 10, 0.1)
	c := clfNew(t, cfg)
	losses, err := c.Train(trainX, trainY, 4, 50, 0.01, rand.New(rand.NewPCG(3, 3)), nil)
	if err != nil {
		t.Fatal(err)
	}
	for e := 1; e < len(losses); e++ {
		if !(losses[e] < losses[e-1]) {
			t.Fatalf("loss did not decrease: %v", losses)
		}
	}
	acc, err := c.Accuracy(testX, testY)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("losses %.4f; held-out accuracy %.3f", losses, acc)
	if acc <= 0.9 {
		t.Fatalf("held-out accuracy %.3f ≤ 0.9", acc)
	}

	lc := clfNew(t, ClassifierConfig{H: 3, W: 3, Conv: []int{3}, Hidden: []int{5}, Act: "silu", DType: "float64", Seed: 8, Classes: 4})
	clfCheckLookAhead(t, lc, rng)
}

// Bad conv configurations are errors naming the field, never panics.
func TestConvClassifierBadConfigs(t *testing.T) {
	good := ClassifierConfig{H: 8, W: 8, Conv: []int{4, 4}, Hidden: []int{4}, Act: "relu", Seed: 1, Classes: 10}
	if _, err := NewClassifier(good); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		mod  func(*ClassifierConfig)
		want string
	}{
		"zero channels":     {func(c *ClassifierConfig) { c.Conv = []int{4, 0} }, "conv[1] = 0"},
		"negative channels": {func(c *ClassifierConfig) { c.Conv = []int{-3} }, "conv[0] = -3"},
		"huge channels":     {func(c *ClassifierConfig) { c.Conv = []int{1 << 20} }, "conv[0]"},
		"too many layers":   {func(c *ClassifierConfig) { c.H, c.W, c.Conv = 64, 64, []int{2, 2, 2, 2, 2} }, "at most 4 conv layers"},
		"image too small":   {func(c *ClassifierConfig) { c.H, c.W, c.Conv = 3, 9, []int{2, 2, 2} }, "only 1×3 at conv layer 2"},
		"one-pixel rows":    {func(c *ClassifierConfig) { c.H, c.W, c.Conv = 1, 9, []int{2} }, "at conv layer 0"},
	} {
		cfg := good
		c.mod(&cfg)
		if _, err := NewClassifier(cfg); err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "objectives: classifier conv") {
			t.Errorf("%s: error %v, want one containing %q", name, err, c.want)
		}
	}
}

// shiftImage translates an image with zero fill, by the definition
// dst[i, j] = src[i − dy, j − dx]; TrainAugmented with shift 0 is Train
// bit for bit, with shift 1 it is reproducible, learns and differs; a bad
// shift is an error naming it.
func TestClassifierTrainAugmented(t *testing.T) {
	const h, w = 3, 4
	src := []int{1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 0, 1}
	for dy := -3; dy <= 3; dy++ {
		for dx := -4; dx <= 4; dx++ {
			dst := make([]int, h*w)
			for i := range dst {
				dst[i] = 7 // overwritten
			}
			shiftImage(dst, src, h, w, dy, dx)
			for i := 0; i < h; i++ {
				for j := 0; j < w; j++ {
					want := 0
					if si, sj := i-dy, j-dx; si >= 0 && si < h && sj >= 0 && sj < w {
						want = src[si*w+sj]
					}
					if dst[i*w+j] != want {
						t.Fatalf("shift (%d, %d): pixel (%d, %d) = %d, want %d", dy, dx, i, j, dst[i*w+j], want)
					}
				}
			}
		}
	}

	cfg := ClassifierConfig{H: 6, W: 6, Conv: []int{4}, Hidden: []int{8}, Act: "relu", DType: "float64", Seed: 2, Classes: 10}
	rng := rand.New(rand.NewPCG(4, 4))
	x, y := clfSynthetic(rng, 300, 36, 10, 0.1)
	train := func(shift int) (*Classifier, []float64) {
		c := clfNew(t, cfg)
		var losses []float64
		var err error
		if shift < 0 {
			losses, err = c.Train(x, y, 3, 32, 0.01, rand.New(rand.NewPCG(5, 5)), nil)
		} else {
			losses, err = c.TrainAugmented(x, y, 3, 32, 0.01, shift, rand.New(rand.NewPCG(5, 5)), nil)
		}
		if err != nil {
			t.Fatal(err)
		}
		return c, losses
	}
	plain, lp := train(-1)
	zero, l0 := train(0)
	if maxAbsDiff(lp, l0) != 0 {
		t.Fatalf("shift 0: losses %v, Train %v", l0, lp)
	}
	clfSameParams(t, zero, clfSnapshot(plain))
	aug, l1 := train(1)
	aug2, l1b := train(1)
	if maxAbsDiff(l1, l1b) != 0 {
		t.Fatalf("shift 1 not reproducible: %v then %v", l1, l1b)
	}
	clfSameParams(t, aug2, clfSnapshot(aug))
	if maxAbsDiff(l1, l0) == 0 || !(l1[2] < l1[0]) {
		t.Fatalf("shift 1: losses %v (shift 0: %v), want different and falling", l1, l0)
	}
	for _, bad := range []int{-1, 9, 6} {
		if _, err := zero.TrainAugmented(x, y, 1, 32, 0.01, bad, rng, nil); err == nil || !strings.Contains(err.Error(), fmt.Sprintf("shift = %d", bad)) {
			t.Errorf("shift %d: error %v", bad, err)
		}
	}
}
