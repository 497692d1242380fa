package objectives

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/ddsmc/ddsmc/graph"
	"github.com/ddsmc/ddsmc/internal/testutil"
	"github.com/ddsmc/ddsmc/layers"
	"github.com/ddsmc/ddsmc/smc"
)

// laModel is a small smooth (SiLU) MLP denoiser with a time input. Its
// embedding is enlarged from the default N(0, 0.02²) to N(0, 1) so the
// gradient path through the denoiser is of the same order as the
// carry-over path and the checks below exercise it.
func laModel(t testing.TB, dtype string) *graph.Model {
	t.Helper()
	m, err := graph.New(graph.Config{Arch: "mlp", L: 3, V: 4, Embed: 6, Hidden: 12, Layers: 2, TimeDim: 4, Act: "silu", DType: dtype, InitSeed: 17})
	if err != nil {
		t.Fatal(err)
	}
	e := m.Store.Get("embed.E")
	if e == nil {
		t.Fatalf("no embed.E parameter in %v", m.Store.Names())
	}
	vals := layers.Float64s(e, nil)
	for i := range vals {
		vals[i] *= 50
	}
	if err := layers.SetFloat64s(e, vals); err != nil {
		t.Fatal(err)
	}
	return m
}

func laTerms(rng *rand.Rand, L, V int) [][]float64 {
	c := make([][]float64, L)
	for l := range c {
		c[l] = make([]float64, V)
		for v := range c[l] {
			c[l][v] = 4*rng.Float64() - 2
		}
	}
	return c
}

func laGumbel(rng *rand.Rand, n int) []float64 {
	g := make([]float64, n)
	for i := range g {
		g[i] = -math.Log(-math.Log(1 - rng.Float64()))
	}
	return g
}

// laLME is (1/s)·log((1/φ)·Σ_k exp(s·r_k)), computed stably.
func laLME(s float64, r []float64) float64 {
	mx := math.Inf(-1)
	for _, x := range r {
		mx = math.Max(mx, s*x)
	}
	sum := 0.0
	for _, x := range r {
		sum += math.Exp(s*x - mx)
	}
	return (mx + math.Log(sum/float64(len(r)))) / s
}

type laOut struct{ logits, rewards, grad, rhat []float64 }

func laBuffers(la *LookAhead) laOut {
	L, V := la.Shape()
	B, K := la.Batch(), la.Phi()
	return laOut{make([]float64, B*L*V), make([]float64, B*K), make([]float64, B*L*(V+1)), make([]float64, B)}
}

func laSoft(t *testing.T, la *LookAhead, x []float64, tm, scale float64, noise []float64) laOut {
	t.Helper()
	o := laBuffers(la)
	if err := la.ValueGradSoft(x, tm, scale, noise, o.logits, o.rewards, o.grad); err != nil {
		t.Fatal(err)
	}
	if err := la.RHat(o.rhat); err != nil {
		t.Fatal(err)
	}
	return o
}

func laHard(t *testing.T, la *LookAhead, xt []int, tm, scale float64, noise []float64) laOut {
	t.Helper()
	o := laBuffers(la)
	if err := la.ValueGrad(xt, tm, scale, noise, o.logits, o.rewards, o.grad); err != nil {
		t.Fatal(err)
	}
	if err := la.RHat(o.rhat); err != nil {
		t.Fatal(err)
	}
	return o
}

func onehots(xt []int, V int) []float64 {
	x := make([]float64, len(xt)*(V+1))
	for i, v := range xt {
		x[i*(V+1)+v] = 1
	}
	return x
}

func maxAbsDiff(a, b []float64) float64 {
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(a[i]-b[i]))
	}
	return d
}

// In Soft mode the graph's gradient is the exact gradient of the relaxed
// r̂: it matches central finite differences of Σ_b r̂_b (evaluated with
// ValueGradSoft at x ± h·e_i, same noise) in every coordinate of x, at a
// soft x and at a one-hot x with masked positions, for φ = 1 and 3 and two
// scales, with the relative error |a − n|/max(1, |a|, |n|) below 1e-6.
func TestLookAheadSoftGradientMatchesFiniteDifferences(t *testing.T) {
	m := laModel(t, "float64")
	L, V := m.Shape()
	const B, tm, tau, h = 2, 0.55, 0.7, 1e-5
	rng := rand.New(rand.NewPCG(3, 4))
	r := LinearReward{Terms: laTerms(rng, L, V)}
	soft := make([]float64, B*L*(V+1))
	for i := 0; i < B*L; i++ {
		row := soft[i*(V+1) : (i+1)*(V+1)]
		s := 0.0
		for v := range row {
			row[v] = 0.05 + rng.Float64()
			s += row[v]
		}
		for v := range row {
			row[v] /= s
		}
	}
	hard := onehots([]int{V, 1, V, 3, V, V}, V)
	fd := testutil.Checker{H: h, Tol: 1e-6}
	for _, phi := range []int{1, 3} {
		la, err := NewLookAhead(m, r, LookAheadConfig{Batch: B, Phi: phi, Tau: tau, Soft: true})
		if err != nil {
			t.Fatal(err)
		}
		noise := laGumbel(rng, B*phi*L*V)
		for _, scale := range []float64{0.6, 4} {
			for name, x0 := range map[string][]float64{"soft": soft, "onehot": hard} {
				x := append([]float64(nil), x0...)
				base := laSoft(t, la, x, tm, scale, noise)
				// The graph's r̂ is the log-mean-exp of its rewards.
				for b := 0; b < B; b++ {
					if want := laLME(scale, base.rewards[b*phi:(b+1)*phi]); math.Abs(base.rhat[b]-want) > 1e-12 {
						t.Fatalf("φ=%d scale=%v: r̂[%d] = %v, log-mean-exp of rewards %v", phi, scale, b, base.rhat[b], want)
					}
				}
				f := func() float64 {
					o := laSoft(t, la, x, tm, scale, noise)
					return o.rhat[0] + o.rhat[1]
				}
				fd.All(t, fmt.Sprintf("φ=%d scale=%v %s x: ∂r̂/∂x", phi, scale, name), f, x, base.grad)
			}
		}
	}
	t.Logf("worst relative error %.2g over 2 φ × 2 scales × 2 points × %d coordinates", fd.Worst, B*L*(V+1))
}

// hardSamples returns the carried-over hard samples of the look-ahead
// computed in Go: argmax_v(ℓ + g_k) at masked positions, the token itself
// at unmasked ones, in order [b][k][l].
func hardSamples(xt []int, logits, noise []float64, B, K, L, V int) []int {
	x0 := make([]int, B*K*L)
	for b := 0; b < B; b++ {
		for k := 0; k < K; k++ {
			for l := 0; l < L; l++ {
				i := (b*K+k)*L + l
				if tok := xt[b*L+l]; tok != V {
					x0[i] = tok
					continue
				}
				best, bv := 0, math.Inf(-1)
				for v := 0; v < V; v++ {
					if z := logits[(b*L+l)*V+v] + noise[i*V+v]; z > bv {
						best, bv = v, z
					}
				}
				x0[i] = best
			}
		}
	}
	return x0
}

// In straight-through mode the rewards are those of the hard carried-over
// samples (equal to smc.TableReward on the Go-computed argmax tokens), the
// logits equal the model's X0Logits, r̂ is finite and is the log-mean-exp
// of the rewards, and repeated calls give identical results (no buffer
// reuse corrupts an output).
func TestLookAheadStraightThroughRewardsAndLogits(t *testing.T) {
	for _, tc := range []struct {
		dtype string
		K     int
	}{{"float64", 1}, {"float64", 3}, {"float32", 1}, {"float32", 3}} {
		dtype, K := tc.dtype, tc.K
		t.Run(fmt.Sprintf("%s/phi=%d", dtype, K), func(t *testing.T) {
			m := laModel(t, dtype)
			L, V := m.Shape()
			const B, tm, scale = 4, 0.6, 2.5
			rng := rand.New(rand.NewPCG(5, uint64(K)))
			terms := laTerms(rng, L, V)
			la, err := NewLookAhead(m, LinearReward{Terms: terms}, LookAheadConfig{Batch: B, Phi: K, Tau: 0.5})
			if err != nil {
				t.Fatal(err)
			}
			xt := []int{V, V, V, 0, V, 2, V, 3, 1, 2, 1, 0}
			noise := laGumbel(rng, B*K*L*V)
			o := laHard(t, la, xt, tm, scale, noise)
			want := make([]float64, B*L*V)
			if err := m.X0Logits(xt, []float64{tm, tm, tm, tm}, want); err != nil {
				t.Fatal(err)
			}
			tolLogit, tolReward := 1e-9, 1e-12
			if dtype == "float32" {
				tolLogit, tolReward = 1e-5, 1e-5
			}
			if d := maxAbsDiff(o.logits, want); d > tolLogit {
				t.Fatalf("logits differ from X0Logits by %.3g", d)
			}
			x0 := hardSamples(xt, o.logits, noise, B, K, L, V)
			wantR := make([]float64, B*K)
			if err := smc.TableReward(terms).Reward(x0, wantR); err != nil {
				t.Fatal(err)
			}
			dR := maxAbsDiff(o.rewards, wantR)
			if dR > tolReward {
				t.Fatalf("rewards %v, TableReward of the hard samples %v (diff %.3g)", o.rewards, wantR, dR)
			}
			distinct := map[float64]bool{}
			for _, r := range o.rewards {
				distinct[r] = true
			}
			if len(distinct) < 3*K/2 {
				t.Fatalf("degenerate test: rewards %v", o.rewards)
			}
			for b := 0; b < B; b++ {
				if math.IsNaN(o.rhat[b]) || math.IsInf(o.rhat[b], 0) {
					t.Fatalf("r̂[%d] = %v", b, o.rhat[b])
				}
				if w := laLME(scale, o.rewards[b*K:(b+1)*K]); math.Abs(w-o.rhat[b]) > 10*tolReward {
					t.Fatalf("r̂[%d] = %v, log-mean-exp of rewards %v", b, o.rhat[b], w)
				}
			}
			// Another call with other inputs, then the first again: bit-identical.
			laHard(t, la, []int{V, V, V, V, V, V, V, V, V, V, V, V}, 0.9, 0.3, laGumbel(rng, B*K*L*V))
			o2 := laHard(t, la, xt, tm, scale, noise)
			if maxAbsDiff(o.logits, o2.logits) != 0 || maxAbsDiff(o.rewards, o2.rewards) != 0 || maxAbsDiff(o.grad, o2.grad) != 0 {
				t.Fatal("repeating a call changed its outputs")
			}
			t.Logf("max |logits − X0Logits| = %.2g, max |rewards − TableReward| = %.2g", maxAbsDiff(o.logits, want), dR)
		})
	}
}

// The straight-through gradient equals an independent analytic gradient.
// With w_k = softmax_k(scale·r_k) (w = 1 for φ = 1), c_l the reward terms,
// y_{k,l} = softmax((ℓ_l + g_{k,l})/τ), h_{k,l} its hard one-hot and γ_l the
// carry-over weight (1 masked, 0 unmasked):
//
//	∂r̂/∂x[l,v] = Σ_k w_k (c_l[v]·1[v<V] − 1[v<V]·⟨c_l, h_{k,l}⟩)   (carry-over)
//	           + (J_ℓ(x)ᵀ cot)[l,v],  cot_l = Σ_k w_k (γ_l/τ)(y_{k,l}⊙c_l − y_{k,l}⟨y_{k,l}, c_l⟩),
//
// where the denoiser VJP J_ℓᵀ cot comes from graph.Model.InputGrad.
func TestLookAheadStraightThroughGradientMatchesAnalytic(t *testing.T) {
	m := laModel(t, "float64")
	L, V := m.Shape()
	const B, tm, tau, scale = 3, 0.4, 0.5, 1.7
	rng := rand.New(rand.NewPCG(7, 8))
	terms := laTerms(rng, L, V)
	xt := []int{V, V, V, 2, V, 0, 1, V, 3}
	ts := []float64{tm, tm, tm}
	for _, K := range []int{1, 3} {
		la, err := NewLookAhead(m, LinearReward{Terms: terms}, LookAheadConfig{Batch: B, Phi: K, Tau: tau})
		if err != nil {
			t.Fatal(err)
		}
		noise := laGumbel(rng, B*K*L*V)
		o := laHard(t, la, xt, tm, scale, noise)
		logits := o.logits
		x0 := hardSamples(xt, logits, noise, B, K, L, V)
		cot := make([]float64, B*L*V)
		direct := make([]float64, B*L*(V+1))
		for b := 0; b < B; b++ {
			r := o.rewards[b*K : (b+1)*K]
			w := make([]float64, K)
			mx := math.Inf(-1)
			for _, x := range r {
				mx = math.Max(mx, scale*x)
			}
			sw := 0.0
			for k := range w {
				w[k] = math.Exp(scale*r[k] - mx)
				sw += w[k]
			}
			for k := 0; k < K; k++ {
				w[k] /= sw
				for l := 0; l < L; l++ {
					i := (b*K+k)*L + l
					c := terms[l]
					ch := c[x0[i]] // ⟨c_l, h⟩ of the hard sample (its own token if unmasked)
					if xt[b*L+l] != V {
						// h is still argmax(ℓ+g) here; the carry-over term uses S = h.
						best, bv := 0, math.Inf(-1)
						for v := 0; v < V; v++ {
							if z := logits[(b*L+l)*V+v] + noise[i*V+v]; z > bv {
								best, bv = v, z
							}
						}
						ch = c[best]
					}
					for v := 0; v < V; v++ {
						direct[(b*L+l)*(V+1)+v] += w[k] * (c[v] - ch)
					}
					if xt[b*L+l] != V {
						continue // γ = 0: no gradient through the sample
					}
					y := make([]float64, V)
					ymx, ys := math.Inf(-1), 0.0
					for v := range y {
						y[v] = (logits[(b*L+l)*V+v] + noise[i*V+v]) / tau
						ymx = math.Max(ymx, y[v])
					}
					for v := range y {
						y[v] = math.Exp(y[v] - ymx)
						ys += y[v]
					}
					yc := 0.0
					for v := range y {
						y[v] /= ys
						yc += y[v] * c[v]
					}
					for v := range y {
						cot[(b*L+l)*V+v] += w[k] / tau * y[v] * (c[v] - yc)
					}
				}
			}
		}
		dx := make([]float64, B*L*(V+1))
		lg := make([]float64, B*L*V)
		if err := m.InputGrad(onehots(xt, V), ts, cot, lg, dx); err != nil {
			t.Fatal(err)
		}
		want := make([]float64, len(dx))
		dn, dd := 0.0, 0.0
		for i := range want {
			want[i] = dx[i] + direct[i]
			dn = math.Max(dn, math.Abs(dx[i]))
			dd = math.Max(dd, math.Abs(direct[i]))
		}
		if dn < 1e-2 {
			t.Fatalf("φ=%d: degenerate test: denoiser path max |J^T cot| = %.3g", K, dn)
		}
		if d := maxAbsDiff(o.grad, want); d > 1e-8 {
			t.Fatalf("φ=%d: gradient differs from analytic by %.3g\n got  %v\n want %v", K, d, o.grad, want)
		} else {
			t.Logf("φ=%d: max |grad − analytic| = %.2g (denoiser path up to %.3g, carry-over up to %.3g)", K, d, dn, dd)
		}
	}
}

// Bad configurations and inputs are errors naming the problem, never
// panics, and a failed call leaves the instance usable.
func TestLookAheadBadInputsAreErrors(t *testing.T) {
	m := laModel(t, "float64")
	L, V := m.Shape()
	rng := rand.New(rand.NewPCG(9, 10))
	r := LinearReward{Terms: laTerms(rng, L, V)}
	good := LookAheadConfig{Batch: 2, Phi: 2}
	for _, c := range []struct {
		name string
		m    *graph.Model
		r    RewardGraph
		cfg  LookAheadConfig
		want string
	}{
		{"nil model", nil, r, good, "model"},
		{"nil reward", m, nil, good, "reward"},
		{"batch 0", m, r, LookAheadConfig{Batch: 0, Phi: 1}, "Batch"},
		{"negative phi", m, r, LookAheadConfig{Batch: 1, Phi: -1}, "Phi"},
		{"negative tau", m, r, LookAheadConfig{Batch: 1, Phi: 1, Tau: -1}, "Tau"},
		{"NaN tau", m, r, LookAheadConfig{Batch: 1, Phi: 1, Tau: math.NaN()}, "Tau"},
		{"Inf tau", m, r, LookAheadConfig{Batch: 1, Phi: 1, Tau: math.Inf(1)}, "Tau"},
		{"reward L", m, LinearReward{Terms: laTerms(rng, L-1, V)}, good, "shape"},
		{"reward V", m, LinearReward{Terms: laTerms(rng, L, V+1)}, good, "shape"},
		{"empty reward", m, LinearReward{}, good, "shape"},
		{"ragged reward", m, LinearReward{Terms: [][]float64{{1, 2, 3, 4}, {1, 2}, {1, 2, 3, 4}}}, good, "row 1"},
		{"NaN reward term", m, LinearReward{Terms: [][]float64{{1, 2, 3, 4}, {1, math.NaN(), 3, 4}, {1, 2, 3, 4}}}, good, "not finite"},
	} {
		la, err := NewLookAhead(c.m, c.r, c.cfg)
		if err == nil || la != nil {
			t.Errorf("%s: NewLookAhead = %v, %v; want an error", c.name, la, err)
		} else if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q does not mention %q", c.name, err, c.want)
		}
	}
	la, err := NewLookAhead(m, r, LookAheadConfig{Batch: 2, Phi: 2})
	if err != nil {
		t.Fatal(err)
	}
	if la.Config().Tau != 1 {
		t.Errorf("Tau 0 became %v, want 1", la.Config().Tau)
	}
	if err := la.RHat(make([]float64, 2)); err == nil {
		t.Error("RHat before any call: no error")
	}
	const B, K = 2, 2
	xt := []int{V, 0, V, 1, V, V}
	noise := laGumbel(rng, B*K*L*V)
	o := laBuffers(la)
	bad := func(f func([]float64) []float64) []float64 {
		return f(append([]float64(nil), noise...))
	}
	type call struct {
		name       string
		xt         []int
		t, scale   float64
		noise      []float64
		lg, rw, gr []float64
		soft       []float64 // use ValueGradSoft when non-nil
		want       string
	}
	calls := []call{
		{"short xt", xt[:5], 0.5, 1, noise, o.logits, o.rewards, o.grad, nil, "tokens"},
		{"token > V", []int{V + 1, 0, V, 1, V, V}, 0.5, 1, noise, o.logits, o.rewards, o.grad, nil, "out of range"},
		{"token < 0", []int{-1, 0, V, 1, V, V}, 0.5, 1, noise, o.logits, o.rewards, o.grad, nil, "out of range"},
		{"t > 1", xt, 1.5, 1, noise, o.logits, o.rewards, o.grad, nil, "time"},
		{"NaN t", xt, math.NaN(), 1, noise, o.logits, o.rewards, o.grad, nil, "time"},
		{"scale 0", xt, 0.5, 0, noise, o.logits, o.rewards, o.grad, nil, "scale"},
		{"negative scale", xt, 0.5, -2, noise, o.logits, o.rewards, o.grad, nil, "scale"},
		{"NaN scale", xt, 0.5, math.NaN(), noise, o.logits, o.rewards, o.grad, nil, "scale"},
		{"Inf scale", xt, 0.5, math.Inf(1), noise, o.logits, o.rewards, o.grad, nil, "scale"},
		{"short noise", xt, 0.5, 1, noise[1:], o.logits, o.rewards, o.grad, nil, "noise"},
		{"NaN noise", xt, 0.5, 1, bad(func(g []float64) []float64 { g[7] = math.NaN(); return g }), o.logits, o.rewards, o.grad, nil, "noise[7]"},
		{"Inf noise", xt, 0.5, 1, bad(func(g []float64) []float64 { g[3] = math.Inf(-1); return g }), o.logits, o.rewards, o.grad, nil, "noise[3]"},
		{"short logits", xt, 0.5, 1, noise, o.logits[1:], o.rewards, o.grad, nil, "logits"},
		{"long rewards", xt, 0.5, 1, noise, o.logits, make([]float64, 5), o.grad, nil, "rewards"},
		{"short grad", xt, 0.5, 1, noise, o.logits, o.rewards, o.grad[1:], nil, "grad"},
		{"short soft x", nil, 0.5, 1, noise, o.logits, o.rewards, o.grad, make([]float64, 3), "soft"},
		{"NaN soft x", nil, 0.5, 1, noise, o.logits, o.rewards, o.grad, func() []float64 {
			x := onehots(xt, V)
			x[4] = math.NaN()
			return x
		}(), "soft x_t[4]"},
	}
	for _, c := range calls {
		var err error
		if c.soft != nil {
			err = la.ValueGradSoft(c.soft, c.t, c.scale, c.noise, c.lg, c.rw, c.gr)
		} else {
			err = la.ValueGrad(c.xt, c.t, c.scale, c.noise, c.lg, c.rw, c.gr)
		}
		if err == nil {
			t.Errorf("%s: no error", c.name)
		} else if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q does not mention %q", c.name, err, c.want)
		}
	}
	if err := la.RHat(make([]float64, 2)); err == nil {
		t.Error("RHat after only failed calls: no error")
	}
	got := laHard(t, la, xt, 0.5, 1, noise)
	if err := la.RHat(make([]float64, 3)); err == nil {
		t.Error("RHat with a wrong-length buffer: no error")
	}
	fresh, err := NewLookAhead(m, r, LookAheadConfig{Batch: 2, Phi: 2})
	if err != nil {
		t.Fatal(err)
	}
	if want := laHard(t, fresh, xt, 0.5, 1, noise); maxAbsDiff(got.grad, want.grad) != 0 || maxAbsDiff(got.rewards, want.rewards) != 0 {
		t.Error("failed calls changed the results of a later good call")
	}
}

// A clone gives bit-identical outputs, shares nothing mutable with the
// original (changing the original model's weights does not affect it), and
// clones run concurrently with the same results as sequential runs.
func TestLookAheadCloneIsIdenticalAndConcurrent(t *testing.T) {
	m := laModel(t, "float64")
	L, V := m.Shape()
	const B, K = 3, 2
	rng := rand.New(rand.NewPCG(11, 12))
	la, err := NewLookAhead(m, LinearReward{Terms: laTerms(rng, L, V)}, LookAheadConfig{Batch: B, Phi: K, Tau: 0.8})
	if err != nil {
		t.Fatal(err)
	}
	const runs = 8
	xts := make([][]int, runs)
	noises := make([][]float64, runs)
	want := make([]laOut, runs)
	for i := range xts {
		xts[i] = make([]int, B*L)
		for j := range xts[i] {
			xts[i][j] = rng.IntN(V + 1)
		}
		noises[i] = laGumbel(rng, B*K*L*V)
		want[i] = laHard(t, la, xts[i], 0.3+0.05*float64(i), 1+float64(i), noises[i])
	}
	clones := make([]*LookAhead, 2)
	for i := range clones {
		if clones[i], err = la.Clone(); err != nil {
			t.Fatal(err)
		}
	}
	same := func(a, b laOut) bool {
		return maxAbsDiff(a.logits, b.logits) == 0 && maxAbsDiff(a.rewards, b.rewards) == 0 &&
			maxAbsDiff(a.grad, b.grad) == 0 && maxAbsDiff(a.rhat, b.rhat) == 0
	}
	var wg sync.WaitGroup
	errs := make([]string, len(clones))
	for c, cl := range clones {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for rep := 0; rep < 3; rep++ {
				for i := range xts {
					o := laBuffers(cl)
					if err := cl.ValueGrad(xts[i], 0.3+0.05*float64(i), 1+float64(i), noises[i], o.logits, o.rewards, o.grad); err != nil {
						errs[c] = err.Error()
						return
					}
					if err := cl.RHat(o.rhat); err != nil {
						errs[c] = err.Error()
						return
					}
					if !same(o, want[i]) {
						errs[c] = fmt.Sprintf("clone %d, input %d: outputs differ from the original's", c, i)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	for _, e := range errs {
		if e != "" {
			t.Fatal(e)
		}
	}
	// Perturb the original model: the original look-ahead follows it, the
	// clone does not.
	e := m.Store.Get("embed.E")
	vals := layers.Float64s(e, nil)
	vals[0] += 1
	if err := layers.SetFloat64s(e, vals); err != nil {
		t.Fatal(err)
	}
	if o := laHard(t, la, xts[0], 0.3, 1, noises[0]); same(o, want[0]) {
		t.Error("the original look-ahead did not see the model's weight change")
	}
	if o := laHard(t, clones[0], xts[0], 0.3, 1, noises[0]); !same(o, want[0]) {
		t.Error("the clone changed when the original model's weights changed")
	}
}

// BenchmarkLookAheadGMM times one ValueGrad call of the paper's GMM MLP
// (graph.DefaultConfig(2, 64), float32) on B = 64 half-masked sequences, next
// to the logits-only forward pass of the same batch.
func BenchmarkLookAheadGMM(b *testing.B) {
	const B, L, V = 64, 2, 64
	m, err := graph.New(graph.DefaultConfig(L, V))
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(13, 14))
	terms := laTerms(rng, L, V)
	xt := make([]int, B*L)
	for i := range xt {
		xt[i] = V
		if rng.IntN(2) == 0 {
			xt[i] = rng.IntN(V)
		}
	}
	ts := make([]float64, B)
	for i := range ts {
		ts[i] = 0.5
	}
	b.Run("forward", func(b *testing.B) {
		out := make([]float64, B*L*V)
		for b.Loop() {
			if err := m.X0Logits(xt, ts, out); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, K := range []int{1, 10} {
		b.Run(fmt.Sprintf("phi=%d", K), func(b *testing.B) {
			la, err := NewLookAhead(m, LinearReward{Terms: terms}, LookAheadConfig{Batch: B, Phi: K})
			if err != nil {
				b.Fatal(err)
			}
			noise := laGumbel(rng, B*K*L*V)
			o := laBuffers(la)
			for b.Loop() {
				if err := la.ValueGrad(xt, 0.5, 1, noise, o.logits, o.rewards, o.grad); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// The logits the look-ahead returns must be the denoiser's own X0Logits:
// smc.GradLookAhead.Share puts them in the base's logit cache, in place of
// a second forward pass. Checked for both architectures and dtypes, with
// time input and without, and a classifier reward whose graph has its own
// matmuls (buffer reuse in the pruned program must not touch the logits).
func TestLookAheadLogitsAreTheDenoisers(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, arch := range []string{"mlp", "transformer"} {
		for _, dtype := range []string{"float32", "float64"} {
			for _, tdim := range []int{0, 4} {
				m, err := graph.New(graph.Config{Arch: arch, L: 4, V: 2, Embed: 8, Hidden: 16, Layers: 2, Heads: 2, TimeDim: tdim, Act: "gelu", DType: dtype, InitSeed: 3})
				if err != nil {
					t.Fatal(err)
				}
				clf, err := NewClassifier(ClassifierConfig{H: 2, W: 2, Hidden: []int{5}, Act: "relu", DType: dtype, Seed: 4, Classes: 3})
				if err != nil {
					t.Fatal(err)
				}
				r, err := clf.Reward(1)
				if err != nil {
					t.Fatal(err)
				}
				const B, K = 3, 2
				la, err := NewLookAhead(m, r, LookAheadConfig{Batch: B, Phi: K})
				if err != nil {
					t.Fatal(err)
				}
				for rep := range 3 {
					xt := make([]int, B*4)
					for i := range xt {
						xt[i] = rng.IntN(3)
					}
					tm := 0.2 + 0.3*float64(rep)
					got := laHard(t, la, xt, tm, 1, laGumbel(rng, B*K*4*2))
					want := make([]float64, B*4*2)
					if err := m.X0Logits(xt, []float64{tm, tm, tm}, want); err != nil {
						t.Fatal(err)
					}
					tol := 1e-12
					if dtype == "float32" {
						tol = 1e-5
					}
					if d := maxAbsDiff(got.logits, want); d > tol {
						t.Fatalf("%s %s time_dim %d call %d: look-ahead logits differ from X0Logits by %g", arch, dtype, tdim, rep, d)
					}
				}
			}
		}
	}
}

// TestLookAheadSameBitsOnOneOrTwoCores checks that a look-ahead large
// enough for its ops and products to be split over goroutines gives the
// same logits, rewards and gradient bit for bit with GOMAXPROCS 1 and 2.
func TestLookAheadSameBitsOnOneOrTwoCores(t *testing.T) {
	m, err := graph.New(graph.Config{Arch: "mlp", L: 8, V: 64, Embed: 16, Hidden: 256, Layers: 2, TimeDim: 4, Act: "relu", DType: "float32", InitSeed: 9})
	if err != nil {
		t.Fatal(err)
	}
	const B, K = 64, 2 // 1,024 sample rows × 64 tokens: above the ops' parallel threshold
	rng := rand.New(rand.NewPCG(3, 3))
	terms := laTerms(rng, 8, 64)
	la, err := NewLookAhead(m, LinearReward{Terms: terms}, LookAheadConfig{Batch: B, Phi: K})
	if err != nil {
		t.Fatal(err)
	}
	xt := make([]int, B*8)
	for i := range xt {
		if rng.IntN(3) > 0 {
			xt[i] = 64 // MASK
		} else {
			xt[i] = rng.IntN(64)
		}
	}
	noise := laGumbel(rng, B*K*8*64)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	one := laHard(t, la, xt, 0.5, 1.5, noise)
	runtime.GOMAXPROCS(2)
	two := laHard(t, la, xt, 0.5, 1.5, noise)
	for name, p := range map[string][2][]float64{"logits": {one.logits, two.logits}, "rewards": {one.rewards, two.rewards}, "grad": {one.grad, two.grad}, "r̂": {one.rhat, two.rhat}} {
		for i := range p[0] {
			if math.Float64bits(p[0][i]) != math.Float64bits(p[1][i]) {
				t.Fatalf("%s[%d]: %v on one core, %v on two", name, i, p[0][i], p[1][i])
			}
		}
	}
}
