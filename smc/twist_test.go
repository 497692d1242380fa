package smc

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ddsmc/ddsmc/internal/testutil"
)

// twistEnv is the toy environment of the twist tests: the hashed reverse
// base, reward r and α = 0.7.
func twistEnv(t testing.TB, r Reward, workers int) *Env {
	return &Env{L: toyL, V: toyV, Target: Target{Base: toyReverse(t, workers), Reward: r, Alpha: 0.7},
		Workers: workers, RewardBatch: 64}
}

// baseEval evaluates the env's base at n = len(x)/L states at time tm.
func baseEval(t testing.TB, env *Env, x []int, tm float64) []float64 {
	t.Helper()
	ev := make([]float64, len(x)/env.L*env.Target.Base.Width())
	if err := env.Target.Base.Eval(x, tm, ev, env.Workers); err != nil {
		t.Fatal(err)
	}
	return ev
}

// repeatState returns n copies of the state x.
func repeatState(x []int, n int) []int {
	out := make([]int, 0, n*len(x))
	for range n {
		out = append(out, x...)
	}
	return out
}

// recordingReward wraps a Reward and keeps a copy of every sequence it
// scores, in call order.
type recordingReward struct {
	inner Reward
	rows  *[]int
}

func (r recordingReward) Reward(x0 []int, out []float64) error {
	*r.rows = append(*r.rows, x0...)
	return r.inner.Reward(x0, out)
}

// exactPsi is log ψ of one state by ExactLookAhead.
func exactPsi(t testing.TB, env *Env, x []int, tm, lambda float64) float64 {
	t.Helper()
	lp, rh := make([]float64, 1), make([]float64, 1)
	if err := (ExactLookAhead{}).Eval(nil, env, x, baseEval(t, env, x, tm), tm, lambda, lp, rh, nil); err != nil {
		t.Fatal(err)
	}
	return lp[0]
}

// TestLookAheadUnbiased: the Monte Carlo look-ahead's ψ̂ = exp(log ψ̂) is
// an unbiased estimate of ψ = E_{p(x0|x_t)} exp(λ·r(x0)/α): for several
// partially masked states and φ ∈ {1, 3}, the mean of R = 4000 independent
// ψ̂ is within 4 standard errors of the enumerated ψ. The samples keep the
// unmasked tokens, and each masked position's empirical token frequencies
// match softmax(x0-logits) within 4 standard errors.
func TestLookAheadUnbiased(t *testing.T) {
	const R, tm, lambda = 4000, 0.6, 0.8
	M := toyV
	var rows []int
	env := twistEnv(t, recordingReward{toyTable(), &rows}, 1)
	states := [][]int{{M, M, M}, {0, M, 2}, {M, 1, M}, {2, 0, M}}
	rng := rand.New(rand.NewPCG(17, 4))
	for _, x := range states {
		want := math.Exp(exactPsi(t, env, x, tm, lambda))
		for _, phi := range []int{1, 3} {
			rows = rows[:0]
			xs := repeatState(x, R)
			ev := baseEval(t, env, xs, tm)
			lp, rh := make([]float64, R), make([]float64, R)
			if err := (LookAhead{Phi: phi}).Eval(rng, env, xs, ev, tm, lambda, lp, rh, nil); err != nil {
				t.Fatal(err)
			}
			var s, s2 float64
			for i, l := range lp {
				if d := math.Abs(rh[i] - l*env.Target.Alpha/lambda); d > 1e-12 {
					t.Fatalf("%v: r̂ %v is not (α/λ)·log ψ %v", x, rh[i], l)
				}
				v := math.Exp(l)
				s += v
				s2 += v * v
			}
			mean := s / R
			se := math.Sqrt((s2/R - mean*mean) / (R - 1))
			if se == 0 {
				t.Fatalf("%v φ=%d: zero spread, the test cannot fail", x, phi)
			}
			if math.Abs(mean-want) > 4*se {
				t.Errorf("%v φ=%d: mean ψ̂ = %.5f, exact ψ = %.5f, |diff| > 4·SE = %.5f", x, phi, mean, want, 4*se)
			}

			// The reward saw R·φ samples: carried-over tokens and the
			// masked positions' token frequencies.
			if len(rows) != R*phi*toyL {
				t.Fatalf("%v φ=%d: the reward scored %d tokens, want %d", x, phi, len(rows), R*phi*toyL)
			}
			logits := env.Target.Base.X0Logits(ev[:env.Target.Base.Width()])
			for l, u := range x {
				count := make([]int, toyV)
				for k := range R * phi {
					v := rows[k*toyL+l]
					if u != M {
						if v != u {
							t.Fatalf("%v φ=%d: sample %d has %d at unmasked position %d", x, phi, k, v, l)
						}
						continue
					}
					if v < 0 || v >= toyV {
						t.Fatalf("%v φ=%d: sample %d has token %d at masked position %d", x, phi, k, v, l)
					}
					count[v]++
				}
				if u != M {
					continue
				}
				p := make([]float64, toyV)
				if err := logSoftmax(logits[l*toyV:(l+1)*toyV], p); err != nil {
					t.Fatal(err)
				}
				n := float64(R * phi)
				for v, c := range count {
					pv := math.Exp(p[v])
					if d := math.Abs(float64(c)/n - pv); d > 4*math.Sqrt(pv*(1-pv)/n) {
						t.Errorf("%v φ=%d position %d token %d: frequency %.4f, softmax %.4f", x, phi, l, v, float64(c)/n, pv)
					}
				}
			}
		}
	}
}

// TestLookAheadCleanStateIsExactReward: with every position unmasked the
// look-ahead has nothing to sample: log ψ = (λ/α)·r(x) and r̂ = r(x) (to
// rounding; exactly for φ = 1), for any φ.
func TestLookAheadCleanStateIsExactReward(t *testing.T) {
	const tm, lambda = 0.3, 0.45
	env := twistEnv(t, toyTable(), 1)
	xs := []int{0, 1, 2, 2, 2, 0, 1, 0, 1}
	n := len(xs) / toyL
	r := make([]float64, n)
	if err := toyTable().Reward(xs, r); err != nil {
		t.Fatal(err)
	}
	ev := baseEval(t, env, xs, tm)
	scale := lambda / env.Target.Alpha
	for _, phi := range []int{1, 3, 8} {
		lp, rh := make([]float64, n), make([]float64, n)
		if err := (LookAhead{Phi: phi}).Eval(rand.New(rand.NewPCG(1, 1)), env, xs, ev, tm, lambda, lp, rh, nil); err != nil {
			t.Fatal(err)
		}
		tol := 1e-12
		if phi == 1 {
			tol = 0
		}
		for i := range n {
			if d := math.Abs(lp[i] - scale*r[i]); d > tol {
				t.Errorf("φ=%d state %d: log ψ = %.17g, want (λ/α)·r = %.17g", phi, i, lp[i], scale*r[i])
			}
			if d := math.Abs(rh[i] - r[i]); d > 1e-12 {
				t.Errorf("φ=%d state %d: r̂ = %v, want r = %v", phi, i, rh[i], r[i])
			}
		}
	}
	// The exact look-ahead agrees.
	lp, rh := make([]float64, n), make([]float64, n)
	if err := (ExactLookAhead{}).Eval(nil, env, xs, ev, tm, lambda, lp, rh, nil); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if d := math.Abs(lp[i] - scale*r[i]); d > 1e-12 {
			t.Errorf("exact state %d: log ψ = %v, want %v", i, lp[i], scale*r[i])
		}
	}
}

// allToyStates returns the 64 noisy states {0..V}^L of the toy.
func allToyStates() []int {
	var xs []int
	for a := 0; a <= toyV; a++ {
		for b := 0; b <= toyV; b++ {
			for c := 0; c <= toyV; c++ {
				xs = append(xs, a, b, c)
			}
		}
	}
	return xs
}

// TestExactLookAheadAdditiveMatchesEnumeration: the factorised fast path
// for an AdditiveReward gives the same log ψ and r̂ (to 1e-12) as the
// general enumeration, reached by hiding the same table behind the
// non-additive SequenceReward, on all 64 states at two λ.
func TestExactLookAheadAdditiveMatchesEnumeration(t *testing.T) {
	tbl := toyTable()
	seq := SequenceReward{L: toyL, F: func(x []int) float64 {
		out := make([]float64, 1)
		if err := tbl.Reward(x, out); err != nil {
			panic(err)
		}
		return out[0]
	}}
	var _ AdditiveReward = tbl
	if _, ok := Reward(seq).(AdditiveReward); ok {
		t.Fatal("SequenceReward must not be additive, or the test compares the fast path with itself")
	}
	envA, envS := twistEnv(t, tbl, 1), twistEnv(t, seq, 1)
	xs := allToyStates()
	n := len(xs) / toyL
	for _, tm := range []float64{0.5, 0.875} {
		ev := baseEval(t, envA, xs, tm)
		for _, lambda := range []float64{0.3, 1} {
			la, ra := make([]float64, n), make([]float64, n)
			ls, rs := make([]float64, n), make([]float64, n)
			if err := (ExactLookAhead{}).Eval(nil, envA, xs, ev, tm, lambda, la, ra, nil); err != nil {
				t.Fatal(err)
			}
			if err := (ExactLookAhead{}).Eval(nil, envS, xs, ev, tm, lambda, ls, rs, nil); err != nil {
				t.Fatal(err)
			}
			spread := 0.0
			for i := range n {
				if math.Abs(la[i]-ls[i]) > 1e-12 || math.Abs(ra[i]-rs[i]) > 1e-12 {
					t.Errorf("t=%v λ=%v state %v: additive log ψ %.15g r̂ %.15g, enumerated %.15g %.15g",
						tm, lambda, xs[i*toyL:(i+1)*toyL], la[i], ra[i], ls[i], rs[i])
				}
				spread = math.Max(spread, math.Abs(la[i]-la[0]))
			}
			if spread < 0.1 {
				t.Fatalf("log ψ barely varies over the states (%v): the comparison is weak", spread)
			}
		}
	}
}

// TestSearchCDFNeverPicksZeroMass: searchCDF returns an index whose
// cumulative mass increases (positive mass), for cdfs with leading, inner
// and trailing flat segments, at u = 0, u = 1 − 2⁻⁵³ (the largest
// rand.Float64) and many u in between; and when tiny masses are absorbed by
// rounding (the total is below the exact sum), never one of those.
func TestSearchCDFNeverPicksZeroMass(t *testing.T) {
	top := math.Nextafter(1, 0) // 1 − 2⁻⁵³
	positive := func(cdf []float64, j int) bool {
		if j < 0 || j >= len(cdf) {
			return false
		}
		if j == 0 {
			return cdf[0] > 0
		}
		return cdf[j] > cdf[j-1]
	}
	cum := func(w ...float64) []float64 {
		c := make([]float64, len(w))
		s := 0.0
		for i, x := range w {
			s += x
			c[i] = s
		}
		return c
	}
	cases := []struct {
		cdf        []float64
		atZero     int // expected index at u = 0
		atTop      int // expected index at u = 1 − 2⁻⁵³
		name       string
		tinyAbsorb bool
	}{
		{cum(0, 0, 1, 0, 0, 2, 0), 2, 5, "flat segments", false},
		{cum(1, 0, 0, 0), 0, 0, "single mass first", false},
		{cum(0, 0, 0, 3), 3, 3, "single mass last", false},
		{cum(0.1, 0.2, 0.3, 0.4), 0, 3, "no flats", false},
		{cum(1, 0x1p-60, 0x1p-60, 0), 0, 0, "absorbed tiny masses", true},
		{cum(0x1p-1074, 0, 1), 0, 2, "denormal first mass", false},
		{cum(1e300, 0, 1e300, 0), 0, 2, "huge masses", false},
	}
	rng := rand.New(rand.NewPCG(3, 9))
	for _, c := range cases {
		if j := searchCDF(c.cdf, 0); j != c.atZero || !positive(c.cdf, j) {
			t.Errorf("%s: u=0 gives %d, want %d", c.name, j, c.atZero)
		}
		if j := searchCDF(c.cdf, top); j != c.atTop || !positive(c.cdf, j) {
			t.Errorf("%s: u=1-2^-53 gives %d, want %d", c.name, j, c.atTop)
		}
		if c.tinyAbsorb && c.cdf[len(c.cdf)-1] != 1 {
			t.Fatalf("%s: premise: the tiny masses should be absorbed, total %v", c.name, c.cdf[len(c.cdf)-1])
		}
		for k := range 2000 {
			u := rng.Float64()
			if k < 50 {
				u = top - float64(k)*0x1p-53
			}
			if j := searchCDF(c.cdf, u); !positive(c.cdf, j) {
				t.Fatalf("%s: u=%v gives zero-mass index %d of %v", c.name, u, j, c.cdf)
			}
		}
	}
	// Random cdfs with many flat segments.
	for range 500 {
		w := make([]float64, 1+rng.IntN(12))
		for i := range w {
			if rng.IntN(2) == 0 {
				w[i] = math.Exp(40 * (rng.Float64() - 0.5))
			}
		}
		w[rng.IntN(len(w))] = 1
		c := cum(w...)
		for _, u := range []float64{0, top, rng.Float64(), rng.Float64()} {
			if j := searchCDF(c, u); !positive(c, j) {
				t.Fatalf("u=%v gives zero-mass index %d of %v", u, j, c)
			}
		}
	}
}

// recordingGrad wraps a LookAheadGrad and records the rewards of every
// call (the batch must have no padding for the concatenation to be r).
type recordingGrad struct {
	LookAheadGrad
	rewards *[]float64
}

func (g recordingGrad) ValueGrad(xt []int, t, scale float64, noise, logits, rewards, grad []float64) error {
	err := g.LookAheadGrad.ValueGrad(xt, t, scale, noise, logits, rewards, grad)
	*g.rewards = append(*g.rewards, rewards...)
	return err
}

func newFakeGrad(B, phi int) *fakeGrad {
	return &fakeGrad{den: testutil.HashDenoiser{L: toyL, V: toyV, Scale: 2}, reward: toyTable(), B: B, Ph: phi}
}

// TestGradLookAheadMatchesFakeRewards: with the fake differentiable
// look-ahead, log ψ_i = log (1/φ) Σ_k exp((λ/α)·r_ik) of exactly the
// rewards the fake returned, r̂ = (α/λ)·log ψ, the gradient is passed
// through, and the result does not depend on the worker count (with
// padding in the last batch).
func TestGradLookAheadMatchesFakeRewards(t *testing.T) {
	const B, phi, tm, lambda = 4, 3, 0.5, 0.6
	env := twistEnv(t, toyTable(), 1)
	M := toyV
	xs := []int{M, M, M, 0, M, 2, M, 1, M, 2, 0, 1, M, M, 0, 1, M, M, M, M, M, 0, 0, M}
	n := len(xs) / toyL // 8 = 2·B: no padding
	var rec []float64
	g := GradLookAhead{Pool: []LookAheadGrad{recordingGrad{newFakeGrad(B, phi), &rec}}}
	lp, rh := make([]float64, n), make([]float64, n)
	grad := make([]float64, n*toyL*(toyV+1))
	if err := g.Eval(rand.New(rand.NewPCG(8, 8)), env, xs, nil, tm, lambda, lp, rh, grad); err != nil {
		t.Fatal(err)
	}
	if len(rec) != n*phi {
		t.Fatalf("the fake returned %d rewards, want %d", len(rec), n*phi)
	}
	scale := lambda / env.Target.Alpha
	distinct := map[float64]bool{}
	for i := range n {
		s := 0.0
		for k := range phi {
			s += math.Exp(scale * rec[i*phi+k])
			distinct[rec[i*phi+k]] = true
		}
		want := math.Log(s / phi)
		if math.Abs(lp[i]-want) > 1e-12 {
			t.Errorf("particle %d: log ψ = %.15g, want %.15g", i, lp[i], want)
		}
		if math.Abs(rh[i]-want/scale) > 1e-12 {
			t.Errorf("particle %d: r̂ = %v, want %v", i, rh[i], want/scale)
		}
		for l := range toyL {
			for v := range toyV + 1 {
				w := 0.3
				if v < toyV {
					w = toyTable()[l][v]
				}
				if got := grad[(i*toyL+l)*(toyV+1)+v]; got != w {
					t.Fatalf("particle %d gradient [%d][%d] = %v, want the fake's %v", i, l, v, got, w)
				}
			}
		}
	}
	if len(distinct) < 4 {
		t.Fatalf("only %d distinct look-ahead rewards: the check is weak", len(distinct))
	}

	// Workers and padding do not change the result.
	xs = append(xs, 1, M, 1, M, M, 2, 0, 0, 0) // n = 11: a padded last batch
	n = len(xs) / toyL
	run := func(workers int) ([]float64, []float64) {
		pool := make([]LookAheadGrad, workers)
		for w := range pool {
			pool[w] = newFakeGrad(B, phi)
		}
		e := twistEnv(t, toyTable(), workers)
		lp, rh := make([]float64, n), make([]float64, n)
		gr := make([]float64, n*toyL*(toyV+1))
		if err := (GradLookAhead{Pool: pool}).Eval(rand.New(rand.NewPCG(2, 2)), e, xs, nil, tm, lambda, lp, rh, gr); err != nil {
			t.Fatal(err)
		}
		return lp, gr
	}
	l1, g1 := run(1)
	l3, g3 := run(3)
	if fmt.Sprint(l1) != fmt.Sprint(l3) || fmt.Sprint(g1) != fmt.Sprint(g3) {
		t.Errorf("log ψ differs between 1 and 3 workers:\n%v\n%v", l1, l3)
	}
}

// badGrad corrupts the output of a fake look-ahead.
type badGrad struct {
	*fakeGrad
	nanReward, infGrad bool
}

func (b badGrad) ValueGrad(xt []int, t, scale float64, noise, logits, rewards, grad []float64) error {
	if err := b.fakeGrad.ValueGrad(xt, t, scale, noise, logits, rewards, grad); err != nil {
		return err
	}
	if b.nanReward {
		rewards[1] = math.NaN()
	}
	if b.infGrad {
		grad[len(grad)-1] = math.Inf(1)
	}
	return nil
}

// TestGradLookAheadErrors: an empty, nil or mismatched pool, a wrong
// gradient buffer and a NaN reward or non-finite gradient from the
// look-ahead are errors naming the problem.
func TestGradLookAheadErrors(t *testing.T) {
	env := twistEnv(t, toyTable(), 2)
	xs := repeatState([]int{toyV, 0, toyV}, 4)
	n := 4
	eval := func(g GradLookAhead, gradLen int) error {
		lp, rh := make([]float64, n), make([]float64, n)
		return g.Eval(rand.New(rand.NewPCG(1, 1)), env, xs, nil, 0.5, 1, lp, rh, make([]float64, gradLen))
	}
	full := n * toyL * (toyV + 1)
	shape := &fakeGrad{den: testutil.HashDenoiser{L: 2, V: toyV, Scale: 2}, reward: toyTable(), B: 4, Ph: 2}
	cases := []struct {
		name    string
		g       GradLookAhead
		gradLen int
		want    []string
	}{
		{"empty pool", GradLookAhead{}, full, []string{"no LookAheadGrad"}},
		{"nil first", GradLookAhead{Pool: []LookAheadGrad{nil}}, full, []string{"no LookAheadGrad"}},
		{"nil member", GradLookAhead{Pool: []LookAheadGrad{newFakeGrad(4, 2), nil}}, full, []string{"look-ahead 1 is nil"}},
		{"shape", GradLookAhead{Pool: []LookAheadGrad{shape}}, full, []string{"shape L=2 V=3", "want L=3 V=3"}},
		{"batch mismatch", GradLookAhead{Pool: []LookAheadGrad{newFakeGrad(4, 2), newFakeGrad(8, 2)}}, full, []string{"look-ahead 1", "batch 8"}},
		{"phi mismatch", GradLookAhead{Pool: []LookAheadGrad{newFakeGrad(4, 2), newFakeGrad(4, 3)}}, full, []string{"look-ahead 1", "phi 3"}},
		{"zero batch", GradLookAhead{Pool: []LookAheadGrad{newFakeGrad(0, 2)}}, full, []string{"positive"}},
		{"zero phi", GradLookAhead{Pool: []LookAheadGrad{newFakeGrad(4, 0)}}, full, []string{"positive"}},
		{"gradient buffer", GradLookAhead{Pool: []LookAheadGrad{newFakeGrad(4, 2)}}, full - 1, []string{"gradient buffer", fmt.Sprint(full)}},
		{"nan reward", GradLookAhead{Pool: []LookAheadGrad{badGrad{fakeGrad: newFakeGrad(4, 2), nanReward: true}}}, full, []string{"look-ahead sample 1", "NaN"}},
		{"inf gradient", GradLookAhead{Pool: []LookAheadGrad{badGrad{fakeGrad: newFakeGrad(4, 2), infGrad: true}}}, full, []string{"gradient of particle 3", "+Inf"}},
	}
	for _, c := range cases {
		err := eval(c.g, c.gradLen)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", c.name, err, w)
			}
		}
	}
	// The sampler rejects a bad pool up front.
	_, err := New(Target{Base: toyReverse(t, 1), Reward: toyTable(), Alpha: 1}, Config{
		N: 4, Grid: toyGrid(t, 2), Lambda: Lambda{Kind: "constant"}, Twist: GradLookAhead{},
	})
	if err == nil || !strings.Contains(err.Error(), "no LookAheadGrad") {
		t.Errorf("New with an empty pool: %v", err)
	}
}

// zeroOnce is a rand.Source whose first output makes ExpFloat64 return
// exactly 0 (a zero 64-bit draw), then behaves like PCG.
type zeroOnce struct {
	done bool
	pcg  *rand.PCG
}

func (z *zeroOnce) Uint64() uint64 {
	if !z.done {
		z.done = true
		return 0
	}
	return z.pcg.Uint64()
}

// TestGumbelNeverInfinite: rand.ExpFloat64 can return exactly 0, which
// must not turn into a +Inf Gumbel variate.
func TestGumbelNeverInfinite(t *testing.T) {
	rng := rand.New(&zeroOnce{pcg: rand.NewPCG(1, 2)})
	if e := rand.New(&zeroOnce{pcg: rand.NewPCG(1, 2)}).ExpFloat64(); e != 0 {
		t.Skipf("ExpFloat64 of a zero draw is %v here; the case cannot be provoked", e)
	}
	for i := range 1000 {
		if g := gumbel(rng); math.IsInf(g, 0) || math.IsNaN(g) {
			t.Fatalf("draw %d: gumbel = %v", i, g)
		}
	}
}
