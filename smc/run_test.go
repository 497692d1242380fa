package smc

import (
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// runToyCfg runs the tilted toy (table reward, α = 0.7, N particles,
// T = toyT) with an MC look-ahead unless cfg says otherwise.
func runToyCfg(t *testing.T, cfg Config, seed uint64) (*Result, *Sampler) {
	t.Helper()
	if cfg.Grid == nil {
		cfg.Grid = toyGrid(t, toyT)
	}
	if cfg.Lambda.Kind == "" {
		cfg.Lambda = Lambda{Kind: "linear", K: 4}
	}
	if cfg.Twist == nil {
		cfg.Twist = LookAhead{Phi: 2}
	}
	s, err := New(Target{Base: toyReverse(t, 1), Reward: toyTable(), Alpha: 0.7}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Run(rand.New(rand.NewPCG(seed, 77)))
	if err != nil {
		t.Fatal(err)
	}
	return res, s
}

// row returns particle j of x.
func row(x []int, j int) []int { return x[j*toyL : (j+1)*toyL] }

// findRow returns the indices of the particles of x equal to r.
func findRow(x []int, r []int) []int {
	var out []int
	for j := range len(x) / toyL {
		if slices.Equal(row(x, j), r) {
			out = append(out, j)
		}
	}
	return out
}

// TestFinalSelections: with the same seed the final particles are the same
// for every selection (it is the last use of the RNG), and each selection
// returns what it promises.
func TestFinalSelections(t *testing.T) {
	const N = 64
	res := map[Final]*Result{}
	for _, f := range []Final{FinalWeighted, FinalArgmaxReward, FinalArgmaxWeight, FinalMultinomial, FinalResample, ""} {
		res[f], _ = runToyCfg(t, Config{N: N, Final: f}, 5)
	}
	ref := res[FinalWeighted]
	// Reference particles: rewards are the exact table rewards, weights
	// normalised and not all equal (otherwise argmax-weight is vacuous).
	want := make([]float64, N)
	if err := toyTable().Reward(ref.X, want); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ref.Reward, want) {
		t.Fatalf("Result.Reward %v is not r(X) %v", ref.Reward, want)
	}
	if d := math.Abs(LogSumExp(ref.LogW)); d > 1e-12 {
		t.Fatalf("LogW not normalised: log Σ w = %v", d)
	}
	if slices.Min(ref.LogW) == slices.Max(ref.LogW) {
		t.Fatal("all final weights equal: the selections cannot be told apart")
	}
	for f, r := range res {
		if !slices.Equal(r.X, ref.X) || !slices.Equal(r.LogW, ref.LogW) || r.LogZ != ref.LogZ {
			t.Fatalf("final %q: the particles differ from the weighted run with the same seed", f)
		}
	}

	t.Run("weighted", func(t *testing.T) {
		if !slices.Equal(ref.Samples, ref.X) || !slices.Equal(ref.SampleLogW, ref.LogW) || !slices.Equal(ref.SampleReward, ref.Reward) {
			t.Fatal("weighted: samples are not all N particles with their weights and rewards")
		}
	})
	single := func(t *testing.T, r *Result, j int) {
		t.Helper()
		if len(r.Samples) != toyL || len(r.SampleReward) != 1 || len(r.SampleLogW) != 1 {
			t.Fatalf("%d tokens, %d rewards, %d weights: want one particle", len(r.Samples), len(r.SampleReward), len(r.SampleLogW))
		}
		if !slices.Equal(r.Samples, row(r.X, j)) || r.SampleReward[0] != r.Reward[j] || r.SampleLogW[0] != 0 {
			t.Fatalf("sample %v reward %v logw %v, want particle %d %v reward %v logw 0",
				r.Samples, r.SampleReward, r.SampleLogW, j, row(r.X, j), r.Reward[j])
		}
	}
	t.Run("argmax-reward", func(t *testing.T) {
		r := res[FinalArgmaxReward]
		j := slices.Index(r.Reward, slices.Max(r.Reward))
		single(t, r, j)
	})
	t.Run("argmax-weight", func(t *testing.T) {
		r := res[FinalArgmaxWeight]
		j := slices.Index(r.LogW, slices.Max(r.LogW))
		single(t, r, j)
	})
	t.Run("multinomial", func(t *testing.T) {
		r := res[FinalMultinomial]
		js := findRow(r.X, r.Samples)
		if len(js) == 0 {
			t.Fatalf("sample %v is not one of the particles", r.Samples)
		}
		j := js[0]
		if math.IsInf(r.LogW[j], -1) || r.SampleReward[0] != r.Reward[j] || len(r.SampleReward) != 1 || r.SampleLogW[0] != 0 {
			t.Fatalf("sample %v reward %v logw %v: not a live particle with its reward", r.Samples, r.SampleReward, r.SampleLogW)
		}
	})
	for _, f := range []Final{FinalResample, ""} {
		t.Run("final="+string(f), func(t *testing.T) {
			r := res[f]
			if len(r.Samples) != N*toyL || len(r.SampleReward) != N || len(r.SampleLogW) != N {
				t.Fatalf("%d tokens, %d rewards, %d weights: want N = %d particles", len(r.Samples), len(r.SampleReward), len(r.SampleLogW), N)
			}
			for i, lw := range r.SampleLogW {
				if math.Abs(lw+math.Log(N)) > 1e-12 {
					t.Fatalf("sample %d log-weight %v, want -log N", i, lw)
				}
				js := findRow(r.X, row(r.Samples, i))
				if len(js) == 0 {
					t.Fatalf("sample %d %v is not one of the particles", i, row(r.Samples, i))
				}
				if r.SampleReward[i] != r.Reward[js[0]] {
					t.Fatalf("sample %d reward %v, its particle's %v", i, r.SampleReward[i], r.Reward[js[0]])
				}
			}
			if slices.Equal(r.Samples, r.X) {
				t.Fatal("resampled output equals the particles: nothing was resampled")
			}
		})
	}
}

// finishOnly runs the final selection of a sampler on a hand-made final
// state with distinct particles 0..n−1 (token rows {j%V, j/V%V, 0}) and
// the given log-weights.
func finishOnly(t *testing.T, final Final, logw []float64, rng *rand.Rand) *Result {
	t.Helper()
	N := len(logw)
	s, err := New(Target{Base: toyReverse(t, 1), Alpha: 1}, Config{N: N, Grid: toyGrid(t, 1), Lambda: Lambda{Kind: "constant"}, Final: final})
	if err != nil {
		t.Fatal(err)
	}
	st := &State{Step: 1, X: make([]int, N*toyL), LogW: slices.Clone(logw), LogPsi: make([]float64, N), Rhat: make([]float64, N),
		Ev: make([]float64, N*s.width), Origin: make([]int, N)}
	for j := range N {
		st.X[j*toyL], st.X[j*toyL+1] = j%toyV, j/toyV%toyV
		st.Rhat[j] = float64(j)
		st.Origin[j] = j
	}
	res := &Result{}
	if err := s.finish(rng, st, res); err != nil {
		t.Fatal(err)
	}
	return res
}

// TestFinalDrawsFollowTheWeights: the multinomial selection picks particle
// j with probability W_j, and the final resampling gives particle j N·W_j
// offspring on average (both within 4 standard errors over R draws).
func TestFinalDrawsFollowTheWeights(t *testing.T) {
	const R = 20000
	w := []float64{0.05, 0.5, 0, 0.15, 0.3}
	logw := make([]float64, len(w))
	for i, x := range w {
		logw[i] = math.Log(x)
	}
	rng := rand.New(rand.NewPCG(4, 4))
	pick := make([]float64, len(w))
	off := make([]float64, len(w))
	for range R {
		r := finishOnly(t, FinalMultinomial, logw, rng)
		pick[int(r.SampleReward[0])]++
		r = finishOnly(t, FinalResample, logw, rng)
		for _, v := range r.SampleReward {
			off[int(v)]++
		}
	}
	N := float64(len(w))
	for j, p := range w {
		se := math.Sqrt(p * (1 - p) / R)
		if f := pick[j] / R; math.Abs(f-p) > 4*se || (p == 0 && f != 0) {
			t.Errorf("multinomial: particle %d picked with frequency %.4f, want %.4f ± %.4f", j, f, p, 4*se)
		}
		// Systematic offspring counts are ⌊NW⌋ or ⌈NW⌉: variance ≤ 1/4.
		if m := off[j] / R; math.Abs(m-N*p) > 4*0.5/math.Sqrt(R) || (p == 0 && m != 0) {
			t.Errorf("resample: particle %d has %.4f offspring on average, want N·W = %.4f", j, m, N*p)
		}
	}
}

// TestResultSummariesMatchTrace: Resamples, ESSMin, ESSMean and LogZ of
// the result agree with the trace, and the trace has one row per step with
// the documented time, step and λ.
func TestResultSummariesMatchTrace(t *testing.T) {
	for _, tr := range []Trigger{{}, {Kind: "ess", Kappa: 0.95}, {Kind: "every", Every: 3}, {Kind: "always"}, {Kind: "never"}} {
		res, _ := runToyCfg(t, Config{N: 48, Trigger: tr, Final: FinalWeighted}, 9)
		name := fmt.Sprintf("%+v", tr)
		if len(res.Trace) != toyT+1 {
			t.Fatalf("%s: %d trace rows, want T+1 = %d", name, len(res.Trace), toyT+1)
		}
		count, lo, mean := 0, math.Inf(1), 0.0
		for i, in := range res.Trace {
			if in.Step != i || math.Abs(in.T-float64(toyT-i)/toyT) > 1e-15 {
				t.Errorf("%s: row %d has step %d t %v", name, i, in.Step, in.T)
			}
			if in.Resampled {
				count++
			}
			lo = math.Min(lo, in.ESS)
			mean += in.ESS
		}
		mean /= float64(len(res.Trace))
		last := res.Trace[toyT]
		if last.Resampled {
			t.Errorf("%s: the last step resampled (the final selection does that)", name)
		}
		if last.Lambda != 1 || last.T != 0 {
			t.Errorf("%s: last row λ %v t %v, want 1 and 0", name, last.Lambda, last.T)
		}
		if res.Resamples != count {
			t.Errorf("%s: Resamples = %d, trace has %d resampled rows", name, res.Resamples, count)
		}
		if res.ESSMin != lo || math.Abs(res.ESSMean-mean) > 1e-12 {
			t.Errorf("%s: ESSMin %v ESSMean %v, trace gives %v and %v", name, res.ESSMin, res.ESSMean, lo, mean)
		}
		if res.LogZ != last.LogZ {
			t.Errorf("%s: log Ẑ %v, last trace row %v", name, res.LogZ, last.LogZ)
		}
		switch tr.Kind {
		case "always":
			if count != toyT {
				t.Errorf("%s: %d resamples, want %d (all but the last step)", name, count, toyT)
			}
		case "never":
			if count != 0 {
				t.Errorf("%s: %d resamples, want 0", name, count)
			}
		case "every":
			if count != toyT/3 {
				t.Errorf("%s: %d resamples, want %d (steps 3 and 6)", name, count, toyT/3)
			}
		}
		if tr.Kappa == 0.95 && (count == 0 || count == toyT) {
			t.Errorf("%s: %d resamples: the ESS trigger should fire on some steps only", name, count)
		}
	}
}

// TestBestOfN: no twist, the reverse proposal and no resampling is N
// independent base samples weighted by exp(r/α): the output is the particle
// with the largest reward, the weights are the softmax of r/α, and
// log Ẑ = log (1/N) Σ exp(r_i/α) exactly.
func TestBestOfN(t *testing.T) {
	const N = 32
	res, s := runToyCfg(t, Config{N: N, Twist: NoTwist{}, Proposal: ReverseProposal{}, Trigger: Trigger{Kind: "never"},
		Final: FinalArgmaxReward, Lambda: Lambda{Kind: "constant"}}, 3)
	alpha := s.Env().Target.Alpha
	if len(res.SampleReward) != 1 || res.SampleReward[0] != slices.Max(res.Reward) {
		t.Fatalf("best-of-N reward %v, want max %v", res.SampleReward, slices.Max(res.Reward))
	}
	if slices.Min(res.Reward) == slices.Max(res.Reward) {
		t.Fatal("all rewards equal: the test is vacuous")
	}
	for i, in := range res.Trace {
		if in.Resampled || in.Unique != N {
			t.Errorf("row %d: resampled %v unique %d", i, in.Resampled, in.Unique)
		}
		if i < toyT && in.ESS != 1 {
			t.Errorf("row %d: ESS/N %v before the reward, want 1", i, in.ESS)
		}
	}
	z := make([]float64, N)
	for i := range N {
		z[i] = res.Reward[i] / alpha
		if d := (res.LogW[i] - res.LogW[0]) - (res.Reward[i]-res.Reward[0])/alpha; math.Abs(d) > 1e-12 {
			t.Errorf("particle %d: log-weight difference off by %v from (r_i − r_0)/α", i, d)
		}
	}
	if want := LogMeanExp(z); math.Abs(res.LogZ-want) > 1e-12 {
		t.Errorf("log Ẑ = %v, want log mean exp(r/α) = %v", res.LogZ, want)
	}
}

// TestTriggerFire is the truth table of the resampling triggers.
func TestTriggerFire(t *testing.T) {
	cases := []struct {
		tr   Trigger
		step int
		ess  float64
		want bool
	}{
		{Trigger{Kind: "never"}, 0, 0.01, false},
		{Trigger{Kind: "never"}, 5, 0, false},
		{Trigger{Kind: "always"}, 0, 1, true},
		{Trigger{Kind: "always"}, 7, 1, true},
		{Trigger{Kind: "always", Every: 3}, 1, 1, true}, // Every is ignored
		{Trigger{Kind: "every"}, 0, 0.1, false},         // never right after initialisation
		{Trigger{Kind: "every"}, 1, 1, true},
		{Trigger{Kind: "every"}, 2, 1, true},
		{Trigger{Kind: "every", Every: 3}, 2, 0.1, false},
		{Trigger{Kind: "every", Every: 3}, 3, 1, true},
		{Trigger{Kind: "every", Every: 3}, 4, 1, false},
		{Trigger{Kind: "every", Every: 3}, 6, 1, true},
		{Trigger{}, 0, 0.49, true}, // "" is ess with κ = 0.5
		{Trigger{}, 0, 0.5, false}, // strict: ESS < κN
		{Trigger{}, 3, 0.51, false},
		{Trigger{Kind: "ess"}, 2, 0.2, true},
		{Trigger{Kind: "ess", Kappa: 0.8}, 2, 0.79, true},
		{Trigger{Kind: "ess", Kappa: 0.8}, 2, 0.8, false},
		{Trigger{Kind: "ess", Kappa: 1}, 1, 0.999, true},
		{Trigger{Kind: "ess", Kappa: 1}, 1, 1, false},
		{Trigger{Kind: "ess", Every: 2}, 1, 0.1, false},
		{Trigger{Kind: "ess", Every: 2}, 2, 0.1, true},
		{Trigger{Kind: "ess", Every: 2}, 0, 0.1, true},
		{Trigger{Kind: "ess", Every: 2, Kappa: 0.3}, 4, 0.4, false},
	}
	for _, c := range cases {
		if err := c.tr.Validate(); err != nil {
			t.Fatalf("%+v: %v", c.tr, err)
		}
		if got := c.tr.Fire(c.step, c.ess); got != c.want {
			t.Errorf("%+v.Fire(step %d, ESS/N %v) = %v, want %v", c.tr, c.step, c.ess, got, c.want)
		}
	}
	for _, bad := range []Trigger{{Kind: "sometimes"}, {Kappa: -0.1}, {Kappa: 1.01}, {Kappa: math.NaN()}, {Every: -1}} {
		if bad.Validate() == nil {
			t.Errorf("%+v: no validation error", bad)
		}
	}
}

// TestUniqueAncestorsNonIncreasing: under resampling at every step the
// number of distinct initial ancestors never grows, and it does shrink.
func TestUniqueAncestorsNonIncreasing(t *testing.T) {
	const N = 64
	for _, res := range []Resampler{Systematic, Multinomial, Residual} {
		r, _ := runToyCfg(t, Config{N: N, Trigger: Trigger{Kind: "always"}, Resampler: res, Final: FinalWeighted}, 12)
		prev := N
		for i, in := range r.Trace {
			if in.Unique > prev || in.Unique < 1 {
				t.Errorf("%s: row %d: %d unique ancestors after %d", res.Name(), i, in.Unique, prev)
			}
			prev = in.Unique
		}
		if prev >= N {
			t.Errorf("%s: still %d unique ancestors after %d resamplings", res.Name(), prev, toyT)
		}
	}
}

// TestSameSeedSameResult: two runs with the same seed give identical
// results (every field but the wall time), for several setups; a
// different seed gives different particles.
func TestSameSeedSameResult(t *testing.T) {
	for _, su := range setups() {
		run := func(seed uint64) *Result {
			s := su.sampler(t, 40, 1, Trigger{}, Systematic, FinalResample)
			res, err := s.Run(rand.New(rand.NewPCG(seed, 6)))
			if err != nil {
				t.Fatal(err)
			}
			res.WallSeconds = 0
			return res
		}
		a, b, c := run(31), run(31), run(32)
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: two runs with the same seed differ", su.name)
		}
		if slices.Equal(a.X, c.X) && slices.Equal(a.LogW, c.LogW) {
			t.Errorf("%s: different seeds give identical particles", su.name)
		}
	}
}

// TestProductA1B0IsReverse: the product base with a = 1, b = 0 has the
// forward-kernel exponent 1 − a − b = 0, so its log-kernel is the first
// model's reverse kernel (to 1e-12, per position), its path marginal is
// p_θ, and a run gives the same particles as the reverse base with the
// same seed; the weights agree to rounding (Product is not Normalized, so
// the reverse proposal's log q is recomputed rather than set to log k).
func TestProductA1B0IsReverse(t *testing.T) {
	rev := toyReverse(t, 1)
	prod, err := NewProduct(toyKernel(), toyPool(1, 0), toyPool(1, 5), 1, 0, 16)
	if err != nil {
		t.Fatal(err)
	}
	if !rev.Normalized() || prod.Normalized() {
		t.Fatalf("Normalized: reverse %v product %v, want true and false", rev.Normalized(), prod.Normalized())
	}
	M := toyV
	states := []int{M, M, M, 0, M, 2, M, 1, M, 2, 0, 1, M, M, 0}
	n := len(states) / toyL
	finite := 0
	for _, ts := range [][2]float64{{1, 0.875}, {0.5, 0.25}, {0.25, 0}, {0.625, 0.5}} {
		tm, s := ts[0], ts[1]
		evR := make([]float64, n*rev.Width())
		evP := make([]float64, n*prod.Width())
		if err := rev.Eval(states, tm, evR, 1); err != nil {
			t.Fatal(err)
		}
		if err := prod.Eval(states, tm, evP, 1); err != nil {
			t.Fatal(err)
		}
		kr := make([]float64, toyL*(toyV+1))
		kp := make([]float64, toyL*(toyV+1))
		for i := range n {
			x := states[i*toyL : (i+1)*toyL]
			if err := rev.LogKernel(x, evR[i*rev.Width():(i+1)*rev.Width()], tm, s, kr); err != nil {
				t.Fatal(err)
			}
			if err := prod.LogKernel(x, evP[i*prod.Width():(i+1)*prod.Width()], tm, s, kp); err != nil {
				t.Fatal(err)
			}
			for j := range kr {
				if math.IsInf(kr[j], -1) != math.IsInf(kp[j], -1) || (!math.IsInf(kr[j], -1) && math.Abs(kr[j]-kp[j]) > 1e-12) {
					t.Errorf("t=%v s=%v state %v position %d token %d: product %v, reverse %v", tm, s, x, j/(toyV+1), j%(toyV+1), kp[j], kr[j])
				}
				if !math.IsInf(kr[j], -1) {
					finite++
				}
			}
			if lr, lp := rev.X0Logits(evR[i*rev.Width():(i+1)*rev.Width()]), prod.X0Logits(evP[i*prod.Width():(i+1)*prod.Width()]); !slices.Equal(lr, lp) {
				t.Errorf("state %v: product look-ahead logits differ from the first model's", x)
			}
		}
	}
	if finite < 50 {
		t.Fatalf("only %d finite kernel entries compared", finite)
	}

	// The path marginals agree.
	exR, err := ExactTarget(Target{Base: rev, Reward: toyTable(), Alpha: 0.7}, toyGrid(t, toyT), 1)
	if err != nil {
		t.Fatal(err)
	}
	exP, err := ExactTarget(Target{Base: prod, Reward: toyTable(), Alpha: 0.7}, toyGrid(t, toyT), 1)
	if err != nil {
		t.Fatal(err)
	}
	for j := range exR.Base {
		if math.Abs(exR.Base[j]-exP.Base[j]) > 1e-12 {
			t.Fatalf("path marginal %d: product %v, reverse %v", j, exP.Base[j], exR.Base[j])
		}
	}

	// Whole runs with the same seed.
	run := func(b Base) *Result {
		s, err := New(Target{Base: b, Reward: toyTable(), Alpha: 0.7}, Config{
			N: 64, Grid: toyGrid(t, toyT), Lambda: Lambda{Kind: "linear", K: 4}, Twist: LookAhead{Phi: 2},
			Trigger: Trigger{Kappa: 0.8}, Final: FinalResample,
		})
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Run(rand.New(rand.NewPCG(13, 13)))
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	a, b := run(rev), run(prod)
	if !slices.Equal(a.X, b.X) || !slices.Equal(a.Samples, b.Samples) || !slices.Equal(a.Reward, b.Reward) {
		t.Fatal("product (a=1, b=0) and reverse runs with the same seed give different particles")
	}
	for j := range a.LogW {
		if math.Abs(a.LogW[j]-b.LogW[j]) > 1e-9 {
			t.Fatalf("particle %d: log-weight %v (reverse) vs %v (product)", j, a.LogW[j], b.LogW[j])
		}
	}
	if math.Abs(a.LogZ-b.LogZ) > 1e-9 || a.Resamples != b.Resamples {
		t.Fatalf("log Ẑ %v vs %v, resamples %d vs %d", a.LogZ, b.LogZ, a.Resamples, b.Resamples)
	}
	if a.Resamples == 0 {
		t.Fatal("no resampling in the runs: the comparison misses the resampling path")
	}
}
