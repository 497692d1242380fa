package objectives

import (
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/ddsmc/ddsmc/diffusion"
	"github.com/ddsmc/ddsmc/graph"
	"github.com/ddsmc/ddsmc/internal/logsumexp"
	"github.com/ddsmc/ddsmc/internal/testutil"
	"github.com/ddsmc/ddsmc/layers"
)

// lvModel is a small smooth (SiLU) time-dependent MLP denoiser, L=3, V=4.
func lvModel(t testing.TB, dtype string, seed uint64) *graph.Model {
	t.Helper()
	m, err := graph.New(graph.Config{Arch: "mlp", L: 3, V: 4, Embed: 8, Hidden: 16, Layers: 2, TimeDim: 4,
		Act: "silu", DType: dtype, InitSeed: seed})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func lvMDLM() diffusion.Kernel { return diffusion.Kernel{Schedule: diffusion.Linear()} }

func lvReMDM() diffusion.Kernel {
	return diffusion.Kernel{Schedule: diffusion.Linear(), Eta: 0.3, Remask: diffusion.RemaskRescale}
}

// lvTransitions draws B noisy sequences x_t (each position MASK with
// probability t, else a uniform token) and x_s ~ k(·|x_t) under m's logits.
func lvTransitions(t testing.TB, rng *rand.Rand, m *graph.Model, k diffusion.Kernel, B int, tm, s float64) (xt, xs []int) {
	t.Helper()
	L, V := m.Shape()
	xt, xs = make([]int, B*L), make([]int, B*L)
	for i := range xt {
		if rng.Float64() < tm {
			xt[i] = V
		} else {
			xt[i] = rng.IntN(V)
		}
	}
	logits := lvLogits(t, m, xt, tm, B)
	if err := k.Step(rng, xt, logits, L, V, tm, s, xs); err != nil {
		t.Fatal(err)
	}
	return xt, xs
}

func lvLogits(t testing.TB, m *graph.Model, xt []int, tm float64, B int) []float64 {
	t.Helper()
	L, V := m.Shape()
	tv := make([]float64, B)
	for b := range tv {
		tv[b] = tm
	}
	logits := make([]float64, B*L*V)
	if err := m.X0Logits(xt, tv, logits); err != nil {
		t.Fatal(err)
	}
	return logits
}

// lvKernelLogQ is Σ_l log k(x_s|x_t) per sequence from the kernel itself.
func lvKernelLogQ(t testing.TB, m *graph.Model, k diffusion.Kernel, xt, xs []int, tm, s float64, B int) []float64 {
	t.Helper()
	L, V := m.Shape()
	logits := lvLogits(t, m, xt, tm, B)
	out := make([]float64, B)
	for b := range out {
		lp, err := k.LogProb(xt[b*L:(b+1)*L], xs[b*L:(b+1)*L], logits[b*L*V:(b+1)*L*V], tm, s)
		if err != nil {
			t.Fatal(err)
		}
		out[b] = lp
	}
	return out
}

func lvNew(t testing.TB, q, ref *graph.Model, k diffusion.Kernel, cfg LogVarConfig) *LogVarLoss {
	t.Helper()
	l, err := NewLogVarLoss(q, ref, k, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

// lvGrads returns copies of the accumulated gradients (parameters, F).
func lvGrads(l *LogVarLoss) ([][]float64, []float64) {
	g := make([][]float64, len(l.acc))
	for i, a := range l.acc {
		g[i] = append([]float64(nil), a...)
	}
	return g, append([]float64(nil), l.accF...)
}

// lvZero clears the accumulators (test hook).
func lvZero(l *LogVarLoss) {
	for _, a := range l.acc {
		clear(a)
	}
	clear(l.accF)
	l.pending = 0
}

// LogQ equals diffusion.Kernel.LogProb of the realised transitions on q's
// own x0-logits, for MDLM and for ReMDM (rescale, η = 0.3), on transitions
// sampled from the kernel.
func TestLogVarLogQMatchesKernel(t *testing.T) {
	q := lvModel(t, "float64", 3)
	const B = 16
	for _, tc := range []struct {
		name string
		k    diffusion.Kernel
	}{{"mdlm", lvMDLM()}, {"remdm", lvReMDM()}} {
		l := lvNew(t, q, nil, tc.k, LogVarConfig{Batch: B, Steps: 4, LR: 1e-3})
		rng := rand.New(rand.NewPCG(1, 2))
		counts := map[string]int{}
		worst := 0.0
		for _, ts := range [][2]float64{{1, 0.75}, {0.75, 0.5}, {0.5, 0.25}, {0.25, 0}} {
			xt, xs := lvTransitions(t, rng, q, tc.k, B, ts[0], ts[1])
			for i := range xt {
				switch {
				case xt[i] == 4 && xs[i] == 4:
					counts["mask→mask"]++
				case xt[i] == 4:
					counts["mask→token"]++
				case xs[i] == 4:
					counts["token→mask"]++
				default:
					counts["token→token"]++
				}
			}
			got := make([]float64, B)
			if err := l.LogQ(xt, xs, ts[0], ts[1], got); err != nil {
				t.Fatal(err)
			}
			want := lvKernelLogQ(t, q, tc.k, xt, xs, ts[0], ts[1], B)
			for b := range got {
				if math.IsInf(want[b], 0) || math.IsNaN(want[b]) {
					t.Fatalf("%s: kernel log-prob %v of a sampled transition", tc.name, want[b])
				}
				worst = math.Max(worst, math.Abs(got[b]-want[b]))
			}
		}
		t.Logf("%s: max |LogQ − Kernel.LogProb| = %.3g over %d transitions; position kinds %v", tc.name, worst, 4*B, counts)
		if worst > 1e-10 {
			t.Fatalf("%s: LogQ differs from the kernel by %g", tc.name, worst)
		}
		if counts["mask→token"] == 0 || counts["mask→mask"] == 0 || counts["token→token"] == 0 {
			t.Fatalf("%s: transitions do not cover every kind: %v", tc.name, counts)
		}
		if tc.k.Eta > 0 && counts["token→mask"] == 0 {
			t.Fatalf("%s: no ReMDM remasking in the sample: %v", tc.name, counts)
		}
	}
}

// Central finite differences (five-point) of Accumulate's total (loss + reg) match the
// accumulated gradient, for q's parameters and F, with each regulariser,
// both with a random c (variance part dominant) and at the zero-variance
// point (regulariser alone).
func TestLogVarGradientMatchesFiniteDifferences(t *testing.T) {
	const B, T, step = 4, 3, 1
	const tm, s = 0.7, 0.45
	for _, tc := range []struct {
		name    string
		cfg     LogVarConfig
		k       diffusion.Kernel
		regOnly bool
	}{
		{"none", LogVarConfig{}, lvMDLM(), false},
		{"forward", LogVarConfig{KL: "forward", KLWeight: 0.7}, lvMDLM(), false},
		{"backward", LogVarConfig{KL: "backward", KLWeight: 0.6}, lvReMDM(), false},
		{"entropy", LogVarConfig{EntropyWeight: 1.3}, lvMDLM(), false},
		{"backward+entropy", LogVarConfig{KL: "backward", KLWeight: 0.4, EntropyWeight: 0.9}, lvMDLM(), false},
		{"forward only", LogVarConfig{KL: "forward", KLWeight: 0.7}, lvMDLM(), true},
		{"backward only", LogVarConfig{KL: "backward", KLWeight: 0.6}, lvReMDM(), true},
		{"entropy only", LogVarConfig{EntropyWeight: 1.3}, lvMDLM(), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := lvModel(t, "float64", 3)
			ref := lvModel(t, "float64", 17)
			cfg := tc.cfg
			cfg.Batch, cfg.Steps, cfg.LR = B, T, 1e-3
			if cfg.KL == "" {
				ref = nil
			}
			l := lvNew(t, q, ref, tc.k, cfg)
			rng := rand.New(rand.NewPCG(5, 6))
			xt, xs := lvTransitions(t, rng, q, tc.k, B, tm, s)
			c := make([]float64, B)
			for b := range c {
				c[b] = 2 * rng.NormFloat64()
			}
			if err := l.SetF([]float64{0.3, -0.8, 1.1}); err != nil {
				t.Fatal(err)
			}
			if tc.regOnly {
				// c at the zero-variance fixed point (c_b = log q_b + F[step]):
				// the variance part and its gradient vanish, so the check
				// sees the regulariser's gradient alone.
				if err := l.LogQ(xt, xs, tm, s, c); err != nil {
					t.Fatal(err)
				}
				for b := range c {
					c[b] += -0.8
				}
			}
			total := func() float64 {
				lv, reg, err := l.Accumulate(xt, xs, tm, s, step, c)
				if err != nil {
					t.Fatal(err)
				}
				return lv + reg
			}
			lvZero(l)
			f0 := total()
			if cfg.KL != "" || cfg.EntropyWeight > 0 {
				kl, ent := l.LastRegTerms()
				if (cfg.KL != "" && !(kl > 0)) || (cfg.EntropyWeight > 0 && !(ent > 0)) {
					t.Fatalf("regulariser terms kl=%v entropy=%v should be positive", kl, ent)
				}
			}
			gq, gf := lvGrads(l)
			// Five-point central differences: O(h⁴) truncation, so a larger
			// step keeps the rounding noise of the total far below 1e-6.
			fd := testutil.Checker{Stencil: testutil.FivePoint, H: 1e-4, Tol: 1e-6, Floor: 1e-3, Continue: true}
			for i, p := range l.params {
				d := l.master[i].Data().([]float64)
				// the largest-|gradient| entries and one random entry
				idx := make([]int, len(d))
				for j := range idx {
					idx[j] = j
				}
				sort.Slice(idx, func(a, b int) bool { return math.Abs(gq[i][idx[a]]) > math.Abs(gq[i][idx[b]]) })
				pick := append(idx[:min(2, len(idx))], rng.IntN(len(d)))
				for _, j := range pick {
					fd.Coord(t, "d total/d "+p.Name(), total, d, j, gq[i][j])
				}
			}
			for j := 0; j < T; j++ {
				fv := l.F()
				fd.Setter(t, "d total/d F", j, total, func(v float64) {
					g := append([]float64(nil), fv...)
					g[j] = v
					if err := l.SetF(g); err != nil {
						t.Fatal(err)
					}
				}, fv[j], gf[j])
				if j != step && gf[j] != 0 {
					t.Errorf("gradient of F[%d] = %v at step %d, want 0", j, gf[j], step)
				}
			}
			t.Logf("total %.6g; %d entries checked, worst relative error %.3g", f0, fd.Checked, fd.Worst)
			if tc.regOnly {
				big := 0.0
				for _, g := range gq {
					for _, x := range g {
						big = math.Max(big, math.Abs(x))
					}
				}
				if big < 1e-3 {
					t.Fatalf("regulariser gradient too small to check (max %g)", big)
				}
			}
		})
	}
}

// At the zero-variance fixed point — c_b = log q_φ(x_s^b|x_t^b) + const
// with the same const for every b, and F[step] = const — the loss and its
// gradient vanish.
func TestLogVarZeroVarianceFixedPoint(t *testing.T) {
	const B, T, step = 8, 4, 2
	const tm, s, konst = 0.8, 0.55, -3.7
	for _, k := range []diffusion.Kernel{lvMDLM(), lvReMDM()} {
		q := lvModel(t, "float64", 3)
		l := lvNew(t, q, nil, k, LogVarConfig{Batch: B, Steps: T, LR: 1e-3})
		rng := rand.New(rand.NewPCG(7, 8))
		xt, xs := lvTransitions(t, rng, q, k, B, tm, s)
		c := make([]float64, B)
		if err := l.LogQ(xt, xs, tm, s, c); err != nil {
			t.Fatal(err)
		}
		for b := range c {
			c[b] += konst
		}
		if err := l.SetF([]float64{9, 9, konst, 9}); err != nil {
			t.Fatal(err)
		}
		loss, reg, err := l.Accumulate(xt, xs, tm, s, step, c)
		if err != nil {
			t.Fatal(err)
		}
		gq, gf := lvGrads(l)
		maxG := 0.0
		for _, g := range append(gq, gf) {
			for _, x := range g {
				maxG = math.Max(maxG, math.Abs(x))
			}
		}
		t.Logf("eta=%v: loss %.3g, reg %v, max |gradient| %.3g", k.Eta, loss, reg, maxG)
		if loss > 1e-24 || reg != 0 || maxG > 1e-11 {
			t.Fatalf("fixed point: loss %g, reg %g, max |gradient| %g; want 0", loss, reg, maxG)
		}
		// Moving F off the fixed point gives the exact loss (F − const)² and
		// ∂/∂F[step] = 2(F − const).
		if err := l.SetF([]float64{9, 9, konst + 0.5, 9}); err != nil {
			t.Fatal(err)
		}
		lvZero(l)
		if loss, _, err = l.Accumulate(xt, xs, tm, s, step, c); err != nil {
			t.Fatal(err)
		}
		_, gf = lvGrads(l)
		if math.Abs(loss-0.25) > 1e-12 || math.Abs(gf[step]-1) > 1e-12 {
			t.Fatalf("F off by 0.5: loss %v (want 0.25), dF %v (want 1)", loss, gf[step])
		}
	}
}

// Two Accumulate calls sum their gradients, and Apply takes exactly one
// (first-step) Adam update with that sum, then zeroes the accumulators;
// with Clip the sum is first rescaled to the clip norm per group.
func TestLogVarAccumulateSumsAndApplyIsAdam(t *testing.T) {
	const B, T = 4, 5
	const lr = 1e-3
	for _, clip := range []float64{0, 1e-9} {
		q := lvModel(t, "float64", 3)
		k := lvMDLM()
		l := lvNew(t, q, nil, k, LogVarConfig{Batch: B, Steps: T, LR: lr, Clip: clip, EntropyWeight: 0.5})
		rng := rand.New(rand.NewPCG(9, 10))
		type batch struct {
			xt, xs []int
			t, s   float64
			step   int
			c      []float64
		}
		var bs []batch
		for i, ts := range [][2]float64{{0.9, 0.6}, {0.6, 0.3}} {
			xt, xs := lvTransitions(t, rng, q, k, B, ts[0], ts[1])
			c := make([]float64, B)
			for b := range c {
				c[b] = rng.NormFloat64()
			}
			bs = append(bs, batch{xt, xs, ts[0], ts[1], []int{1, 3}[i], c})
		}
		var single [][][]float64
		var singleF [][]float64
		for _, b := range bs {
			if _, _, err := l.Accumulate(b.xt, b.xs, b.t, b.s, b.step, b.c); err != nil {
				t.Fatal(err)
			}
			g, f := lvGrads(l)
			single, singleF = append(single, g), append(singleF, f)
			lvZero(l)
		}
		for _, b := range bs {
			if _, _, err := l.Accumulate(b.xt, b.xs, b.t, b.s, b.step, b.c); err != nil {
				t.Fatal(err)
			}
		}
		if l.Pending() != 2 {
			t.Fatalf("pending %d, want 2", l.Pending())
		}
		sum, sumF := lvGrads(l)
		worst := 0.0
		for i := range sum {
			for j := range sum[i] {
				worst = math.Max(worst, math.Abs(sum[i][j]-single[0][i][j]-single[1][i][j]))
			}
		}
		for j := range sumF {
			worst = math.Max(worst, math.Abs(sumF[j]-singleF[0][j]-singleF[1][j]))
			if (j == 1 || j == 3) != (sumF[j] != 0) {
				t.Fatalf("F gradient %v: want non-zero exactly at steps 1 and 3", sumF)
			}
		}
		if worst > 1e-12 {
			t.Fatalf("accumulated gradient differs from the sum of the two by %g", worst)
		}
		before := make([][]float64, len(l.master))
		for i, m := range l.master {
			before[i] = layers.Float64s(m, nil)
		}
		f0 := l.F()
		qs, fs := 1.0, 1.0
		if clip > 0 {
			n := 0.0
			for _, g := range sum {
				for _, x := range g {
					n += x * x
				}
			}
			qs = clip / math.Sqrt(n)
			n = 0
			for _, x := range sumF {
				n += x * x
			}
			fs = clip / math.Sqrt(n)
		}
		if err := l.Apply(); err != nil {
			t.Fatal(err)
		}
		// First Adam step: m̂ = g, v̂ = g², Δ = −lr·g/(|g| + ε).
		want := func(g, scale float64) float64 { g *= scale; return -lr * g / (math.Abs(g) + 1e-8) }
		worst = 0
		for i, m := range l.master {
			after := layers.Float64s(m, nil)
			for j := range after {
				worst = math.Max(worst, math.Abs((after[j]-before[i][j])-want(sum[i][j], qs)))
			}
		}
		f1 := l.F()
		for j := range f1 {
			worst = math.Max(worst, math.Abs((f1[j]-f0[j])-want(sumF[j], fs)))
		}
		t.Logf("clip=%g: max |Δθ − Adam step| = %.3g (lr %g)", clip, worst, lr)
		if worst > 1e-15 {
			t.Fatalf("clip=%g: parameter change differs from one Adam step by %g", clip, worst)
		}
		if clip > 0 {
			// With the gradient clipped to norm 1e-9, its entries are at
			// most ε in size, so the step is visibly smaller than lr.
			if d := math.Abs(f1[1] - f0[1]); !(d < 0.99*lr) {
				t.Fatalf("clipped F step %g, want < lr = %g", d, lr)
			}
		}
		g, gF := lvGrads(l)
		for i := range g {
			for _, x := range g[i] {
				if x != 0 {
					t.Fatal("accumulators not zeroed by Apply")
				}
			}
		}
		for _, x := range gF {
			if x != 0 {
				t.Fatal("F accumulator not zeroed by Apply")
			}
		}
		if l.Pending() != 0 {
			t.Fatal("pending not reset by Apply")
		}
		if err := l.Apply(); err == nil {
			t.Fatal("Apply with nothing accumulated should be an error")
		}
		// q's own programs see the update without Invalidate.
		xt, xs := bs[0].xt, bs[0].xs
		got := make([]float64, B)
		if err := l.LogQ(xt, xs, bs[0].t, bs[0].s, got); err != nil {
			t.Fatal(err)
		}
		wantQ := lvKernelLogQ(t, q, k, xt, xs, bs[0].t, bs[0].s, B)
		for b := range got {
			if math.Abs(got[b]-wantQ[b]) > 1e-10 {
				t.Fatalf("after Apply, LogQ %v and q.X0Logits-based %v disagree", got[b], wantQ[b])
			}
		}
	}
}

// Fitting q_φ so that log q_φ(x_s|x_t) matches a teacher's log-probs (plus
// a constant absorbed by F) drives the summed loss down by ≥ 10×.
func TestLogVarTrainingReducesLoss(t *testing.T) {
	const B, T = 8, 2
	k := lvMDLM()
	teacher := lvModel(t, "float64", 101)
	q := lvModel(t, "float64", 3)
	l := lvNew(t, q, nil, k, LogVarConfig{Batch: B, Steps: T, LR: 1e-2})
	rng := rand.New(rand.NewPCG(11, 12))
	type batch struct {
		xt, xs []int
		t, s   float64
		c      []float64
	}
	times := [][2]float64{{1, 0.6}, {0.6, 0.2}}
	var bs []batch
	for i, ts := range times {
		xt, xs := lvTransitions(t, rng, teacher, k, B, ts[0], ts[1])
		c := lvKernelLogQ(t, teacher, k, xt, xs, ts[0], ts[1], B)
		for b := range c {
			c[b] += 1.5 * float64(i+1) // a per-step offset for F to learn
		}
		bs = append(bs, batch{xt, xs, ts[0], ts[1], c})
	}
	epoch := func() float64 {
		sum := 0.0
		for i, b := range bs {
			loss, _, err := l.Accumulate(b.xt, b.xs, b.t, b.s, i, b.c)
			if err != nil {
				t.Fatal(err)
			}
			sum += loss
		}
		if err := l.Apply(); err != nil {
			t.Fatal(err)
		}
		return sum
	}
	first := epoch()
	last := first
	for i := 1; i < 200; i++ {
		last = epoch()
	}
	t.Logf("summed loss: %.4g at step 1, %.4g at step 200 (×%.0f); F = %v", first, last, first/last, l.F())
	if !(last*10 <= first) {
		t.Fatalf("loss fell only from %g to %g", first, last)
	}
}

// Float32 models, B = 1 and T = 1 work (with both regularisers).
func TestLogVarFloat32AndSingletonShapes(t *testing.T) {
	q := lvModel(t, "float32", 3)
	ref := lvModel(t, "float32", 5)
	k := lvMDLM()
	l := lvNew(t, q, ref, k, LogVarConfig{Batch: 1, Steps: 1, LR: 1e-3, KL: "backward", KLWeight: 0.2, EntropyWeight: 0.1})
	xt, xs := []int{4, 4, 1}, []int{2, 4, 1}
	got := make([]float64, 1)
	if err := l.LogQ(xt, xs, 0.5, 0.25, got); err != nil {
		t.Fatal(err)
	}
	want := lvKernelLogQ(t, q, k, xt, xs, 0.5, 0.25, 1)
	if math.Abs(got[0]-want[0]) > 1e-5 {
		t.Fatalf("float32 LogQ %v, kernel %v", got[0], want[0])
	}
	loss, reg, err := l.Accumulate(xt, xs, 0.5, 0.25, 0, []float64{got[0] + 1})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(loss-1) > 1e-5 || reg == 0 {
		t.Fatalf("loss %v (want 1), reg %v (want non-zero)", loss, reg)
	}
	if err := l.Apply(); err != nil {
		t.Fatal(err)
	}
	if f := l.F(); !(f[0] > 0.0009 && f[0] < 0.0011) {
		t.Fatalf("F after one step %v, want ≈ lr", f)
	}
}

// Bad configurations and inputs are errors, never panics, and leave the
// accumulators untouched.
func TestLogVarBadInputsAreErrors(t *testing.T) {
	q := lvModel(t, "float64", 3)
	ref := lvModel(t, "float64", 5)
	k := lvMDLM()
	good := LogVarConfig{Batch: 2, Steps: 3, LR: 1e-3}
	for _, tc := range []struct {
		want string
		mod  func(*LogVarConfig)
	}{
		{"Batch", func(c *LogVarConfig) { c.Batch = 0 }},
		{"Steps", func(c *LogVarConfig) { c.Steps = -1 }},
		{"LR", func(c *LogVarConfig) { c.LR = 0 }},
		{"LR", func(c *LogVarConfig) { c.LR = math.NaN() }},
		{"Clip", func(c *LogVarConfig) { c.Clip = -1 }},
		{"Clip", func(c *LogVarConfig) { c.Clip = math.Inf(1) }},
		{"KL", func(c *LogVarConfig) { c.KL = "sideways" }},
		{"KLWeight", func(c *LogVarConfig) { c.KLWeight = -0.1 }},
		{"EntropyWeight", func(c *LogVarConfig) { c.EntropyWeight = math.NaN() }},
	} {
		cfg := good
		tc.mod(&cfg)
		if _, err := NewLogVarLoss(q, ref, k, cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("config %+v: error %v, want one naming %s", cfg, err, tc.want)
		}
	}
	fwd := good
	fwd.KL, fwd.KLWeight = "forward", 0.5
	other, err := graph.New(graph.Config{Arch: "mlp", L: 3, V: 5, Embed: 8, Hidden: 16, Layers: 1, Act: "relu", DType: "float64", InitSeed: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		q    *graph.Model
		ref  *graph.Model
		k    diffusion.Kernel
		cfg  LogVarConfig
		want string
	}{
		{"nil q", nil, nil, k, good, "proposal model"},
		{"KL without ref", q, nil, k, fwd, "reference model"},
		{"ref is q", q, q, k, fwd, "q itself"},
		{"ref shape", q, other, k, fwd, "shape"},
		{"bad kernel", q, nil, diffusion.Kernel{}, good, "kernel"},
		{"bad eta", q, nil, diffusion.Kernel{Schedule: diffusion.Linear(), Eta: 2}, good, "kernel"},
	} {
		if _, err := NewLogVarLoss(tc.q, tc.ref, tc.k, tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}

	l := lvNew(t, q, ref, k, fwd)
	xt, xs := []int{4, 4, 0, 4, 1, 2}, []int{3, 4, 0, 0, 1, 2}
	c := []float64{0.1, -0.2}
	for _, tc := range []struct {
		name   string
		xt, xs []int
		t, s   float64
		step   int
		c      []float64
	}{
		{"short xt", xt[:5], xs, 0.5, 0.2, 1, c},
		{"long xs", xt, append(xs, 0), 0.5, 0.2, 1, c},
		{"xt token", []int{4, 5, 0, 4, 1, 2}, xs, 0.5, 0.2, 1, c},
		{"xs token", xt, []int{3, 4, 0, -1, 1, 2}, 0.5, 0.2, 1, c},
		{"step -1", xt, xs, 0.5, 0.2, -1, c},
		{"step T", xt, xs, 0.5, 0.2, 3, c},
		{"t = s", xt, xs, 0.5, 0.5, 1, c},
		{"t < s", xt, xs, 0.2, 0.5, 1, c},
		{"t > 1", xt, xs, 1.5, 0.5, 1, c},
		{"s < 0", xt, xs, 0.5, -0.1, 1, c},
		{"NaN t", xt, xs, math.NaN(), 0.2, 1, c},
		{"NaN c", xt, xs, 0.5, 0.2, 1, []float64{math.NaN(), 0}},
		{"Inf c", xt, xs, 0.5, 0.2, 1, []float64{0, math.Inf(-1)}},
		{"short c", xt, xs, 0.5, 0.2, 1, c[:1]},
		{"impossible", xt, []int{3, 4, 1, 0, 1, 2}, 0.5, 0.2, 1, c},
		{"unmask at s=0 stays masked", xt, xs, 0.5, 0, 1, c},
	} {
		_, _, err := l.Accumulate(tc.xt, tc.xs, tc.t, tc.s, tc.step, tc.c)
		if err == nil || !strings.Contains(err.Error(), "step") {
			t.Errorf("Accumulate %s: error %v, want one naming the step", tc.name, err)
		}
	}
	if l.Pending() != 0 {
		t.Fatal("failed Accumulate calls were counted")
	}
	g, gF := lvGrads(l)
	for _, a := range append(g, gF) {
		for _, x := range a {
			if x != 0 {
				t.Fatal("failed Accumulate calls changed the accumulators")
			}
		}
	}
	out := make([]float64, 2)
	if err := l.LogQ(xt, xs, 0.5, 0.2, out[:1]); err == nil {
		t.Error("LogQ with a short output buffer should fail")
	}
	if err := l.LogQ(xt[:3], xs, 0.5, 0.2, out); err == nil {
		t.Error("LogQ with short x_t should fail")
	}
	if err := l.LogQ(xt, xs, 0.2, 0.5, out); err == nil {
		t.Error("LogQ with t < s should fail")
	}
	if err := l.LogQ(xt, []int{3, 4, 1, 0, 1, 2}, 0.5, 0.2, out); err != nil || !math.IsInf(out[0], -1) || math.IsInf(out[1], 0) {
		t.Errorf("LogQ of an impossible transition: %v, %v; want −Inf for it only", out, err)
	}
	if err := l.SetF([]float64{1, 2}); err == nil {
		t.Error("SetF with the wrong length should fail")
	}
	if err := l.SetF([]float64{1, math.NaN(), 2}); err == nil {
		t.Error("SetF with NaN should fail")
	}
	if err := l.Apply(); err == nil {
		t.Error("Apply with nothing accumulated should fail")
	}
	if _, _, err := l.Accumulate(xt, xs, 0.5, 0.2, 2, c); err != nil {
		t.Fatalf("a good call after the bad ones: %v", err)
	}
}

// The regulariser values equal plain-Go KL and entropy sums over the masked
// positions of x_t (mean over the batch), and reg = KLWeight·KL −
// EntropyWeight·H.
func TestLogVarRegularisersMatchPlainGo(t *testing.T) {
	const B, tm, s = 6, 0.8, 0.5
	q := lvModel(t, "float64", 3)
	ref := lvModel(t, "float64", 23)
	k := lvMDLM()
	rng := rand.New(rand.NewPCG(13, 14))
	xt, xs := lvTransitions(t, rng, q, k, B, tm, s)
	lq, lr := lvLogits(t, q, xt, tm, B), lvLogits(t, ref, xt, tm, B)
	const V = 4
	logSM := func(z []float64) []float64 {
		out := make([]float64, len(z))
		for v := range z {
			out[v] = logsumexp.LogSoftmaxAt(z, v)
		}
		return out
	}
	var fwd, bwd, ent float64
	for i, x := range xt {
		if x != V {
			continue
		}
		a, b := logSM(lq[i*V:(i+1)*V]), logSM(lr[i*V:(i+1)*V])
		for v := 0; v < V; v++ {
			fwd += math.Exp(b[v]) * (b[v] - a[v])
			bwd += math.Exp(a[v]) * (a[v] - b[v])
			ent -= math.Exp(a[v]) * a[v]
		}
	}
	fwd, bwd, ent = fwd/B, bwd/B, ent/B
	c := make([]float64, B)
	for _, tc := range []struct {
		kl      string
		want    float64
		klW, eW float64
	}{{"forward", fwd, 0.7, 0}, {"backward", bwd, 0.6, 1.3}, {"none", 0, 0, 2}} {
		r := ref
		if tc.kl == "none" {
			r = nil
		}
		l := lvNew(t, q, r, k, LogVarConfig{Batch: B, Steps: 1, LR: 1e-3, KL: tc.kl, KLWeight: tc.klW, EntropyWeight: tc.eW})
		_, reg, err := l.Accumulate(xt, xs, tm, s, 0, c)
		if err != nil {
			t.Fatal(err)
		}
		kl, h := l.LastRegTerms()
		wantH := 0.0
		if tc.eW > 0 {
			wantH = ent
		}
		t.Logf("%s: KL %.6g (plain Go %.6g), entropy %.6g (plain Go %.6g)", tc.kl, kl, tc.want, h, wantH)
		if math.Abs(kl-tc.want) > 1e-12 || math.Abs(h-wantH) > 1e-12 || math.Abs(reg-(tc.klW*tc.want-tc.eW*wantH)) > 1e-12 {
			t.Fatalf("%s: KL %v (want %v), entropy %v (want %v), reg %v", tc.kl, kl, tc.want, h, wantH, reg)
		}
	}
}
