package smc

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// fullResamplers are the schemes that resample every particle.
var fullResamplers = []Resampler{Multinomial, Stratified, Systematic, Residual}

// allResamplers adds Partial over every base scheme and several fractions.
var allResamplers = append(slices.Clone(fullResamplers),
	Partial{Base: Systematic},
	Partial{Base: Multinomial, Frac: 0.5},
	Partial{Base: Stratified, Frac: 0.3},
	Partial{Base: Residual, Frac: 0.7},
)

// label names a resampler in test messages.
func label(r Resampler) string {
	if p, ok := r.(Partial); ok {
		base := "systematic"
		if p.Base != nil {
			base = p.Base.Name()
		}
		return fmt.Sprintf("partial(%s,%g)", base, p.Frac)
	}
	return r.Name()
}

func isFull(r Resampler) bool {
	_, partial := r.(Partial)
	return !partial
}

// logWeights returns the normalised log of w (zero → −Inf).
func logWeights(t testing.TB, w []float64) []float64 {
	t.Helper()
	lw := make([]float64, len(w))
	for i, x := range w {
		lw[i] = math.Log(x)
	}
	if _, err := Normalize(lw, lw); err != nil {
		t.Fatal(err)
	}
	return lw
}

// checkResampled asserts the output contract of Resample: ancestors in range
// and alive, finite normalised output weights, and for the full schemes
// non-decreasing ancestors and −log N weights.
func checkResampled(t testing.TB, r Resampler, lw []float64, anc []int, out []float64) {
	t.Helper()
	n := len(lw)
	var s float64
	for j, a := range anc {
		if a < 0 || a >= n {
			t.Fatalf("%s: anc[%d] = %d outside [0, %d)", label(r), j, a, n)
		}
		if math.IsInf(lw[a], -1) {
			t.Fatalf("%s: anc[%d] = %d has weight zero", label(r), j, a)
		}
		if math.IsInf(out[j], 0) || math.IsNaN(out[j]) {
			t.Fatalf("%s: out[%d] = %v", label(r), j, out[j])
		}
		s += math.Exp(out[j])
	}
	if math.Abs(s-1) > 1e-9 {
		t.Fatalf("%s: Σ exp(out) = %.17g, want 1", label(r), s)
	}
	if !isFull(r) {
		return
	}
	want := -math.Log(float64(n))
	for j := range anc {
		if out[j] != want {
			t.Fatalf("%s: out[%d] = %v, want -log N = %v", label(r), j, out[j], want)
		}
		if j > 0 && anc[j] < anc[j-1] {
			t.Fatalf("%s: ancestors not sorted at %d: %v", label(r), j, anc)
		}
	}
}

// unbiasedViolations resamples the weights w reps times and returns every
// particle whose mean offspring weight mass Σ_{j: anc_j = i} exp(out_j)
// differs from w_i by more than four standard errors (estimated from the
// replicates' sample variance) plus 1e-12 for the deterministic cases.
func unbiasedViolations(t testing.TB, r Resampler, w []float64, reps int, seed uint64) []string {
	t.Helper()
	n := len(w)
	lw := logWeights(t, w)
	rng := rand.New(rand.NewPCG(seed, 99))
	anc, out := make([]int, n), make([]float64, n)
	mass := make([]float64, n)
	sum, sum2 := make([]float64, n), make([]float64, n)
	for range reps {
		if err := r.Resample(rng, lw, anc, out); err != nil {
			t.Fatalf("%s: %v", label(r), err)
		}
		checkResampled(t, r, lw, anc, out)
		clear(mass)
		for j, a := range anc {
			mass[a] += math.Exp(out[j])
		}
		for i, m := range mass {
			sum[i] += m
			sum2[i] += m * m
		}
	}
	var bad []string
	R := float64(reps)
	for i := range w {
		mean := sum[i] / R
		v := max(0, (sum2[i]-R*mean*mean)/(R-1))
		se := math.Sqrt(v / R)
		if d := math.Abs(mean - math.Exp(lw[i])); d > 4*se+1e-12 {
			bad = append(bad, fmt.Sprintf("particle %d: mean offspring mass %.6f, weight %.6f, |diff| = %.2g > 4·SE = %.2g",
				i, mean, math.Exp(lw[i]), d, 4*se))
		}
	}
	return bad
}

// skewedWeights are the weight vectors of the unbiasedness test; every one
// with N ≥ 3 has a zero-weight particle.
var skewedWeights = [][]float64{
	{0.75, 0.25},
	{0.6, 0, 0.4},
	{0.2, 0.5, 0.3},
	{0.05, 0.4, 0, 0.3, 0.25},
	{0.02, 0.3, 0.001, 0, 0.15, 0.009, 0.2, 0.05, 0.07, 0.2},
}

func TestResamplersAreUnbiased(t *testing.T) {
	const reps = 20000
	for ci, w := range skewedWeights {
		for ri, r := range allResamplers {
			for _, msg := range unbiasedViolations(t, r, w, reps, uint64(100*ci+ri)) {
				t.Errorf("%s, N=%d: %s", label(r), len(w), msg)
			}
		}
	}
}

// greedy is a biased resampler: every offspring copies the heaviest particle.
type greedy struct{}

func (greedy) Name() string { return "greedy" }
func (greedy) Resample(_ *rand.Rand, lw []float64, anc []int, out []float64) error {
	best := 0
	for i, x := range lw {
		if x > lw[best] {
			best = i
		}
	}
	for j := range anc {
		anc[j] = best
	}
	fillUniform(out)
	return nil
}

func TestUnbiasednessCheckDetectsBias(t *testing.T) {
	for _, w := range skewedWeights[1:] {
		if bad := unbiasedViolations(t, greedy{}, w, 2000, 1); len(bad) == 0 {
			t.Errorf("N=%d: the unbiasedness check accepts the greedy resampler", len(w))
		}
	}
}

func TestPartialReallyResamplesSmallN(t *testing.T) {
	const reps = 20000
	ln := math.Log
	rng := rand.New(rand.NewPCG(5, 6))
	p := Partial{Base: Systematic}

	// N = 2: M = 2 = N, a full systematic resample. With W = (3/4, 1/4)
	// both offspring copy particle 0 iff U < 1/2.
	lw := logWeights(t, []float64{0.75, 0.25})
	anc, out := make([]int, 2), make([]float64, 2)
	killed := 0
	for range reps {
		if err := p.Resample(rng, lw, anc, out); err != nil {
			t.Fatal(err)
		}
		checkResampled(t, p, lw, anc, out)
		if out[0] != -ln(2) || out[1] != -ln(2) {
			t.Fatalf("N=2: out = %v, want -log 2 each", out)
		}
		if anc[1] == 0 {
			killed++
		}
	}
	assertFraction(t, "N=2: P(particle 1 replaced)", killed, reps, 0.5)

	// N = 3: M = 2, I = {1 (heaviest), 0 (lightest)}, S = 0.7, each of the
	// two slots gets weight 0.35; particle 2 is untouched. Systematic within
	// I on (5/7, 2/7) kills particle 0 iff U < 3/7.
	lw = logWeights(t, []float64{0.2, 0.5, 0.3})
	anc, out = make([]int, 3), make([]float64, 3)
	killed = 0
	for range reps {
		if err := p.Resample(rng, lw, anc, out); err != nil {
			t.Fatal(err)
		}
		checkResampled(t, p, lw, anc, out)
		if anc[2] != 2 || math.Abs(out[2]-ln(0.3)) > 1e-12 {
			t.Fatalf("N=3: particle 2 changed: anc %v out %v", anc, out)
		}
		for _, j := range []int{0, 1} {
			if math.Abs(out[j]-ln(0.35)) > 1e-12 {
				t.Fatalf("N=3: out[%d] = %v, want log 0.35", j, out[j])
			}
		}
		if anc[0] == 1 && anc[1] == 1 {
			killed++
		} else if anc[0] != 0 || anc[1] != 1 {
			t.Fatalf("N=3: anc = %v, want [0 1 2] or [1 1 2]", anc)
		}
	}
	assertFraction(t, "N=3: P(particle 0 replaced)", killed, reps, 3.0/7)
}

// assertFraction checks that k of n Bernoulli trials is within four binomial
// standard errors of probability p.
func assertFraction(t *testing.T, what string, k, n int, p float64) {
	t.Helper()
	got := float64(k) / float64(n)
	se := math.Sqrt(p * (1 - p) / float64(n))
	if math.Abs(got-p) > 4*se {
		t.Errorf("%s = %.4f, want %.4f ± %.4f", what, got, p, 4*se)
	}
}

func TestPartialSubsetSelection(t *testing.T) {
	ln := math.Log
	run := func(t *testing.T, p Partial, lw []float64, seed uint64) ([]int, []float64) {
		t.Helper()
		anc, out := make([]int, len(lw)), make([]float64, len(lw))
		if err := p.Resample(rand.New(rand.NewPCG(seed, 1)), lw, anc, out); err != nil {
			t.Fatal(err)
		}
		checkResampled(t, p, lw, anc, out)
		return anc, out
	}
	// check asserts that exactly the particles in set were resampled: they
	// copy members of set and share its mass equally; the others are kept.
	check := func(t *testing.T, p Partial, lw []float64, set []int) {
		t.Helper()
		var s float64
		for _, i := range set {
			s += math.Exp(lw[i])
		}
		share := ln(s / float64(len(set)))
		for seed := range uint64(50) {
			anc, out := run(t, p, lw, seed)
			for i := range lw {
				if slices.Contains(set, i) {
					if !slices.Contains(set, anc[i]) || math.Abs(out[i]-share) > 1e-12 {
						t.Fatalf("seed %d: slot %d in I: anc %d, out %v (I = %v, want share %v)", seed, i, anc[i], out[i], set, share)
					}
				} else if anc[i] != i || out[i] != lw[i] {
					t.Fatalf("seed %d: slot %d outside I %v changed: anc %d, out %v", seed, i, set, anc[i], out[i])
				}
			}
		}
	}

	// N = 10, Frac 0.4: M = 4, the two heaviest (3, 7) and two lightest (0, 5).
	w := []float64{0.01, 0.1, 0.08, 0.3, 0.09, 0.02, 0.07, 0.2, 0.06, 0.07}
	t.Run("top and bottom", func(t *testing.T) {
		check(t, Partial{Base: Multinomial, Frac: 0.4}, logWeights(t, w), []int{3, 7, 0, 5})
	})
	// Odd M = 3 (Frac 0.3): two heaviest, one lightest.
	t.Run("odd M", func(t *testing.T) { check(t, Partial{Base: Systematic, Frac: 0.3}, logWeights(t, w), []int{3, 7, 0}) })
	// Equal weights: ties by index, so the "heaviest" is 0 and the
	// "lightest" is N−1.
	t.Run("ties", func(t *testing.T) {
		check(t, Partial{Base: Systematic, Frac: 0.4}, logWeights(t, []float64{1, 1, 1, 1, 1}), []int{0, 4})
	})
	// Four dead particles and M = 4: I grows to the 2 heaviest plus all 4
	// dead ones, so no dead particle survives.
	t.Run("dead particles join I", func(t *testing.T) {
		w := []float64{0.1, 0, 0.3, 0.05, 0, 0.15, 0, 0.25, 0.15, 0}
		check(t, Partial{Base: Systematic, Frac: 0.4}, logWeights(t, w), []int{2, 7, 1, 4, 6, 9})
	})
	// Frac = 1 (M = N) and a zero Frac on N = 2 are full resamples.
	t.Run("M = N is full", func(t *testing.T) {
		lw := logWeights(t, w)
		anc, out := run(t, Partial{Base: Systematic, Frac: 1}, lw, 3)
		wantAnc, wantOut := make([]int, len(lw)), make([]float64, len(lw))
		if err := Systematic.Resample(rand.New(rand.NewPCG(3, 1)), lw, wantAnc, wantOut); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(anc, wantAnc) || !slices.Equal(out, wantOut) {
			t.Fatalf("Partial{Frac: 1} = %v %v, Systematic = %v %v", anc, out, wantAnc, wantOut)
		}
	})
}

// countStats resamples w reps times and returns, per particle, the sample
// variance of the offspring count and an estimate of its standard error,
// sqrt((m4 − s⁴)/reps).
func countStats(t *testing.T, r Resampler, w []float64, reps int, seed uint64) (variance, se []float64) {
	n := len(w)
	lw := logWeights(t, w)
	rng := rand.New(rand.NewPCG(seed, 7))
	anc, out := make([]int, n), make([]float64, n)
	counts := make([][]float64, n)
	for i := range counts {
		counts[i] = make([]float64, reps)
	}
	for k := range reps {
		if err := r.Resample(rng, lw, anc, out); err != nil {
			t.Fatal(err)
		}
		for _, a := range anc {
			counts[a][k]++
		}
	}
	variance, se = make([]float64, n), make([]float64, n)
	for i, c := range counts {
		var mean float64
		for _, x := range c {
			mean += x
		}
		mean /= float64(reps)
		var m2, m4 float64
		for _, x := range c {
			d := (x - mean) * (x - mean)
			m2 += d
			m4 += d * d
		}
		variance[i] = m2 / float64(reps-1)
		m4 /= float64(reps)
		se[i] = math.Sqrt(max(0, m4-variance[i]*variance[i]) / float64(reps))
	}
	return variance, se
}

func TestOffspringCountVariance(t *testing.T) {
	const reps = 20000
	w := []float64{0.23, 0.17, 0.15, 0.13, 0.09, 0.08, 0.07, 0.05, 0.03, 0}
	n := len(w)
	N := float64(n)

	// Exact per-particle count variances.
	theory := map[string][]float64{}
	frac := make([]float64, n) // N·W_i − ⌊N·W_i⌋
	var rem float64
	for i, x := range w {
		frac[i] = N*x - math.Floor(N*x)
		rem += frac[i]
	}
	cum := make([]float64, n+1) // C_i = W_0 + … + W_{i−1}
	for i, x := range w {
		cum[i+1] = cum[i] + x
	}
	for _, name := range []string{"multinomial", "systematic", "residual", "stratified"} {
		theory[name] = make([]float64, n)
	}
	for i, x := range w {
		theory["multinomial"][i] = N * x * (1 - x)
		theory["systematic"][i] = frac[i] * (1 - frac[i]) // ⌊N·W_i⌋ or ⌈N·W_i⌉ offspring
		p := frac[i] / rem
		theory["residual"][i] = rem * p * (1 - p)
		// Stratified: one independent Bernoulli per stratum n with success
		// probability N·|[k/N, (k+1)/N) ∩ [C_i, C_{i+1})|.
		for k := range n {
			q := N * max(0, min(cum[i+1], float64(k+1)/N)-max(cum[i], float64(k)/N))
			theory["stratified"][i] += q * (1 - q)
		}
	}

	measured := map[string]float64{}
	tol := map[string]float64{}
	for ri, r := range fullResamplers {
		v, se := countStats(t, r, w, reps, uint64(ri))
		var sv, sse, sth float64
		for i := range v {
			sv += v[i]
			sse += se[i] // SE of the sum ≤ Σ SE_i (the counts are correlated)
			sth += theory[r.Name()][i]
		}
		measured[r.Name()], tol[r.Name()] = sv, 4*sse
		t.Logf("%-11s Σ_i Var(count_i) = %.4f (exact %.4f, 4·SE = %.4f)", r.Name(), sv, sth, 4*sse)
		if math.Abs(sv-sth) > 4*sse {
			t.Errorf("%s: Σ Var(count) = %.4f, exact %.4f ± %.4f", r.Name(), sv, sth, 4*sse)
		}
	}
	for _, name := range []string{"systematic", "stratified", "residual"} {
		if measured[name]+tol[name] >= measured["multinomial"]-tol["multinomial"] {
			t.Errorf("%s: Σ Var(count) = %.4f ± %.4f is not below multinomial's %.4f ± %.4f",
				name, measured[name], tol[name], measured["multinomial"], tol["multinomial"])
		}
	}
}

func TestSystematicAndResidualKeepFloorCopies(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for trial := range 300 {
		n := 1 + rng.IntN(200)
		lw := make([]float64, n)
		spread := math.Pow(10, 2*rng.Float64()-1)
		for i := range lw {
			lw[i] = spread * rng.NormFloat64()
			if rng.IntN(5) == 0 {
				lw[i] = minusInf
			}
		}
		lw[rng.IntN(n)] = 0 // at least one live particle
		if _, err := Normalize(lw, lw); err != nil {
			t.Fatal(err)
		}
		anc, out := make([]int, n), make([]float64, n)
		counts := make([]int, n)
		for _, r := range []Resampler{Systematic, Residual} {
			if err := r.Resample(rng, lw, anc, out); err != nil {
				t.Fatal(err)
			}
			checkResampled(t, r, lw, anc, out)
			clear(counts)
			for _, a := range anc {
				counts[a]++
			}
			for i, c := range counts {
				nw := float64(n) * math.Exp(lw[i])
				lo := int(math.Floor(nw - 1e-9))
				if c < lo || (r == Systematic && c > int(math.Ceil(nw+1e-9))) {
					t.Fatalf("trial %d, %s: particle %d has %d offspring, N·W = %.12f", trial, r.Name(), i, c, nw)
				}
			}
		}
	}
}

// constSource always returns the same word; with ^uint64(0), Float64 returns
// 1 − 2⁻⁵³, the largest value below 1.
type constSource uint64

func (c constSource) Uint64() uint64 { return uint64(c) }

func TestResampleIndicesStayValid(t *testing.T) {
	// Adversarial: N = 1000, the last particle dead and the others sharing
	// 1 − 1e-12, so the cumulative sum ends below 1 and the top systematic
	// point lies beyond it.
	const n = 1000
	adv := make([]float64, n)
	for i := range adv {
		adv[i] = math.Log((1 - 1e-12) / (n - 1))
	}
	adv[n-1] = minusInf
	var total float64
	for _, x := range adv {
		total += math.Exp(x)
	}
	if !(total < 1 && total > 1-normTol) {
		t.Fatalf("setup: Σ exp(lw) = %.17g, want slightly below 1", total)
	}
	uTop := (n - 1 + rand.New(constSource(^uint64(0))).Float64()) / n
	if !(uTop >= total) {
		t.Fatalf("setup: top systematic point %.17g does not exceed the cdf %.17g", uTop, total)
	}

	dead := func(w []float64) []float64 { return logWeights(t, w) }
	cases := []struct {
		name string
		lw   []float64
	}{
		{"cdf below 1", adv},
		{"dead first and last", dead([]float64{0, 0.3, 0, 0.2, 0.5, 0})},
		{"many dead", dead([]float64{0, 0, 0, 1e-9, 0, 0, 0, 0.5, 0, 0, 0.5 - 1e-9, 0})},
		{"all mass on last", dead([]float64{0, 0, 0, 0, 0, 0, 1})},
		{"all mass on first", dead([]float64{1, 0, 0, 0, 0})},
		{"nearly all on last", dead([]float64{1e-300, 1e-200, 1e-20, 1e-10, 1})},
		{"single", []float64{0}},
	}
	for _, c := range cases {
		anc, out := make([]int, len(c.lw)), make([]float64, len(c.lw))
		for _, r := range allResamplers {
			rngs := []*rand.Rand{rand.New(constSource(^uint64(0))), rand.New(constSource(0))}
			if r == Multinomial || r == Residual || (!isFull(r) && (r.(Partial).Base == Multinomial || r.(Partial).Base == Residual)) {
				rngs = nil // ExpFloat64 needs a varying source
			}
			for seed := range uint64(30) {
				rngs = append(rngs, rand.New(rand.NewPCG(seed, 13)))
			}
			for _, rng := range rngs {
				if err := r.Resample(rng, c.lw, anc, out); err != nil {
					t.Fatalf("%s, %s: %v", c.name, label(r), err)
				}
				checkResampled(t, r, c.lw, anc, out)
			}
		}
	}
}

func TestCDFFindClampsToLastPositive(t *testing.T) {
	// Weights 0, .3, 0, .7−1e-12, 0, 0: the sum ends below 1 and the last
	// two particles are dead.
	w := []float64{0, 0.3, 0, 0.7 - 1e-12, 0, 0}
	lw := make([]float64, len(w))
	var total float64
	for i, x := range w {
		lw[i] = math.Log(x)
		total += math.Exp(lw[i])
	}
	c := newCDF(lw, 0, total, 3)
	for _, q := range []struct {
		u    float64
		want int
	}{
		{0, 1}, {0.2, 1}, {0.31, 3}, {0.9, 3}, {math.Nextafter(1, 0), 3}, {1, 3}, {1.5, 3},
	} {
		if got := c.find(q.u); got != q.want {
			t.Errorf("find(%v) = %d, want %d", q.u, got, q.want)
		}
	}

	// Residual weights frac(2·w) for w = (1, .6, .4): (0, .2, .8) (2·1 = 2
	// exactly); the walk must skip particle 0, whose residual weight is zero.
	lw = []float64{0, math.Log(0.6), math.Log(0.4)}
	scale := 2.0
	var rtot float64
	for i := range lw {
		y := math.Exp(lw[i]) * scale
		rtot += y - math.Floor(y)
	}
	c = newCDF(lw, scale, rtot, 2)
	for _, q := range []struct {
		u    float64
		want int
	}{{0, 1}, {0.1, 1}, {0.5, 2}, {1, 2}} {
		if got := c.find(q.u); got != q.want {
			t.Errorf("residual find(%v) = %d, want %d", q.u, got, q.want)
		}
	}
}

// badBase returns an out-of-range ancestor.
type badBase struct{}

func (badBase) Name() string { return "bad" }
func (badBase) Resample(_ *rand.Rand, _ []float64, anc []int, out []float64) error {
	for j := range anc {
		anc[j] = len(anc)
	}
	fillUniform(out)
	return nil
}

func TestResampleRejectsBadInput(t *testing.T) {
	ln := math.Log
	good := []float64{ln(0.5), ln(0.25), ln(0.25)}
	rng := rand.New(rand.NewPCG(1, 1))
	cases := []struct {
		name    string
		rng     *rand.Rand
		lw      []float64
		nAnc    int
		nOut    int
		wantMsg string
	}{
		{"empty", rng, nil, 0, 0, "no log-weights"},
		{"short anc", rng, good, 2, 3, "len(anc)=2"},
		{"short out", rng, good, 3, 4, "len(out)=4"},
		{"nil rng", nil, good, 3, 3, "nil rng"},
		{"NaN", rng, []float64{ln(0.5), notANumber, ln(0.5)}, 3, 3, "log-weight 1 is NaN"},
		{"+Inf", rng, []float64{plusInf, 0}, 2, 2, "log-weight 0 is +Inf"},
		{"unnormalised", rng, []float64{ln(0.5), ln(0.4)}, 2, 2, "not normalised"},
		{"off by 1e-8", rng, []float64{ln(0.5), ln(0.5 + 1e-8)}, 2, 2, "not normalised"},
		{"all dead", rng, []float64{minusInf, minusInf}, 2, 2, "not normalised"},
	}
	for _, r := range allResamplers {
		for _, c := range cases {
			anc, out := make([]int, c.nAnc), make([]float64, c.nOut)
			for i := range anc {
				anc[i] = -7
			}
			for i := range out {
				out[i] = 42
			}
			err := r.Resample(c.rng, c.lw, anc, out)
			if err == nil {
				t.Errorf("%s, %s: no error", label(r), c.name)
				continue
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "smc: ") || !strings.Contains(msg, c.wantMsg) {
				t.Errorf("%s, %s: error %q, want prefix \"smc: \" and %q", label(r), c.name, msg, c.wantMsg)
			}
			if slices.ContainsFunc(anc, func(a int) bool { return a != -7 }) ||
				slices.ContainsFunc(out, func(x float64) bool { return x != 42 }) {
				t.Errorf("%s, %s: output written on error", label(r), c.name)
			}
		}
		// Within tolerance is accepted.
		lw := []float64{ln(0.5), ln(0.5 + 1e-11)}
		if err := r.Resample(rng, lw, make([]int, 2), make([]float64, 2)); err != nil {
			t.Errorf("%s: Σ W = 1 + 1e-11 rejected: %v", label(r), err)
		}
	}

	lw := logWeights(t, []float64{0.1, 0.2, 0.3, 0.15, 0.25})
	for _, p := range []Partial{
		{Base: Systematic, Frac: -0.1},
		{Base: Systematic, Frac: 1.5},
		{Base: Systematic, Frac: notANumber},
		{Base: Systematic, Frac: plusInf},
	} {
		err := p.Resample(rng, lw, make([]int, 5), make([]float64, 5))
		if err == nil || !strings.HasPrefix(err.Error(), "smc: partial: Frac") {
			t.Errorf("Partial{Frac: %v}: error %v, want \"smc: partial: Frac …\"", p.Frac, err)
		}
	}
	err := Partial{Base: badBase{}, Frac: 0.4}.Resample(rng, lw, make([]int, 5), make([]float64, 5))
	if err == nil || !strings.Contains(err.Error(), "outside [0, 2)") {
		t.Errorf("Partial with an out-of-range base: error %v", err)
	}
}

func TestResampleIsReproducibleAndAliasSafe(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	lw := make([]float64, 40)
	for i := range lw {
		lw[i] = 2 * rng.NormFloat64()
	}
	lw[3], lw[17] = minusInf, minusInf
	if _, err := Normalize(lw, lw); err != nil {
		t.Fatal(err)
	}
	for _, r := range allResamplers {
		anc1, out1 := make([]int, len(lw)), make([]float64, len(lw))
		if err := r.Resample(rand.New(rand.NewPCG(5, 5)), lw, anc1, out1); err != nil {
			t.Fatal(err)
		}
		// Same seed, out aliasing lw: same ancestors and weights.
		lw2 := slices.Clone(lw)
		anc2 := make([]int, len(lw))
		if err := r.Resample(rand.New(rand.NewPCG(5, 5)), lw2, anc2, lw2); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(anc1, anc2) || !slices.Equal(out1, lw2) {
			t.Errorf("%s: rerun with the same seed (out aliasing lw) differs:\n%v %v\n%v %v", label(r), anc1, out1, anc2, lw2)
		}
	}
}

func TestParseResamplerNames(t *testing.T) {
	cases := map[string]Resampler{
		"multinomial":  Multinomial,
		"Stratified":   Stratified,
		"SYSTEMATIC":   Systematic,
		" residual ":   Residual,
		"partial":      Partial{Base: Systematic, Frac: 0.5},
		"Partial":      Partial{Base: Systematic, Frac: 0.5},
		"multiNomial ": Multinomial,
	}
	for name, want := range cases {
		got, err := ParseResampler(name)
		if err != nil {
			t.Errorf("ParseResampler(%q): %v", name, err)
			continue
		}
		if got != want {
			t.Errorf("ParseResampler(%q) = %#v, want %#v", name, got, want)
		}
	}
	for _, r := range allResamplers {
		got, err := ParseResampler(r.Name())
		if err != nil || got.Name() != r.Name() {
			t.Errorf("ParseResampler(%q) = %v, %v: Name does not round-trip", r.Name(), got, err)
		}
	}
}

func TestParseResamplerUnknownNameListsValidNames(t *testing.T) {
	for _, name := range []string{"", "systematc", "ssp", "partial-systematic"} {
		r, err := ParseResampler(name)
		if err == nil {
			t.Errorf("ParseResampler(%q) = %v, want an error", name, r)
			continue
		}
		want := fmt.Sprintf("smc: unknown resampler %q (valid: multinomial, stratified, systematic, residual, partial)", name)
		if err.Error() != want {
			t.Errorf("ParseResampler(%q): error %q, want %q", name, err, want)
		}
	}
}

func BenchmarkSystematic(b *testing.B) {
	const n = 2000
	rng := rand.New(rand.NewPCG(1, 2))
	lw := make([]float64, n)
	for i := range lw {
		lw[i] = rng.NormFloat64()
	}
	if _, err := Normalize(lw, lw); err != nil {
		b.Fatal(err)
	}
	anc, out := make([]int, n), make([]float64, n)
	b.ReportAllocs()
	for b.Loop() {
		if err := Systematic.Resample(rng, lw, anc, out); err != nil {
			b.Fatal(err)
		}
	}
}
