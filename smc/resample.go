package smc

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
)

// Resampler draws ancestor indices from normalised log-weights. Every scheme
// here is unbiased: the expected total post-resampling weight of the offspring
// of particle i equals its weight W_i before resampling.
type Resampler interface {
	// Resample reads normalised log-weights lw (length N, LogSumExp(lw) = 0
	// within 1e-9; −Inf is allowed and marks a dead particle) and writes N
	// ancestor indices into anc (len N, every index in [0, N), never a
	// particle with −Inf weight) and the particles' normalised log-weights
	// after resampling into out (len N; out may alias lw): −log N each for
	// the full schemes; for Partial, see its documentation. Σ exp(out) = 1.
	// Bad input (length mismatch, nil rng, NaN or +Inf entries, weights not
	// normalised) is reported as an error and nothing is written.
	Resample(rng *rand.Rand, lw []float64, anc []int, out []float64) error
	// Name returns the scheme's name as accepted by ParseResampler.
	Name() string
}

// The full schemes. Each draws all N offspring by inverting the cumulative
// weights at N non-decreasing points u_1 ≤ … ≤ u_N in [0, 1), so the
// ancestors come out in non-decreasing order.
var (
	// Multinomial draws the N ancestors i.i.d. from W (sorted uniforms from
	// normalised cumulative exponential spacings, O(N)). It has the largest
	// offspring-count variance, N·W_i(1−W_i), and is mainly a baseline.
	Multinomial Resampler = multinomial{}
	// Stratified draws one independent uniform in each stratum
	// [n/N, (n+1)/N), n = 0..N−1.
	Stratified Resampler = stratified{}
	// Systematic uses the points (n + U)/N, n = 0..N−1, for a single
	// U ~ Uniform[0, 1); particle i gets ⌊N·W_i⌋ or ⌈N·W_i⌉ offspring.
	Systematic Resampler = systematic{}
	// Residual keeps ⌊N·W_i⌋ copies of particle i deterministically and
	// draws the remaining R = N − Σ⌊N·W_i⌋ multinomially with probabilities
	// ∝ N·W_i − ⌊N·W_i⌋.
	Residual Resampler = residual{}
)

// resamplerNames lists the names accepted by ParseResampler.
var resamplerNames = []string{"multinomial", "stratified", "systematic", "residual", "partial"}

// ParseResampler returns the resampler called name (case-insensitive,
// surrounding space ignored): "multinomial", "stratified", "systematic",
// "residual" or "partial" (Partial{Base: Systematic, Frac: 0.5}).
func ParseResampler(name string) (Resampler, error) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "multinomial":
		return Multinomial, nil
	case "stratified":
		return Stratified, nil
	case "systematic":
		return Systematic, nil
	case "residual":
		return Residual, nil
	case "partial":
		return Partial{Base: Systematic, Frac: 0.5}, nil
	}
	return nil, fmt.Errorf("smc: unknown resampler %q (valid: %s)", name, strings.Join(resamplerNames, ", "))
}

// normTol is the accepted |Σ exp(lw) − 1| for the input of a Resampler.
const normTol = 1e-9

// checkInput validates the arguments of Resample and returns the total
// Σ exp(lw_i) (summed in index order) and the last index with positive
// linear weight.
func checkInput(rng *rand.Rand, lw []float64, anc []int, out []float64) (total float64, last int, err error) {
	n := len(lw)
	if n == 0 {
		return 0, 0, errors.New("smc: resample: no log-weights")
	}
	if len(anc) != n || len(out) != n {
		return 0, 0, fmt.Errorf("smc: resample: len(anc)=%d and len(out)=%d, want len(lw)=%d", len(anc), len(out), n)
	}
	if rng == nil {
		return 0, 0, errors.New("smc: resample: nil rng")
	}
	last = -1
	for i, x := range lw {
		if math.IsNaN(x) {
			return 0, 0, fmt.Errorf("smc: log-weight %d is NaN", i)
		}
		if math.IsInf(x, 1) {
			return 0, 0, fmt.Errorf("smc: log-weight %d is +Inf", i)
		}
		w := math.Exp(x)
		total += w
		if w > 0 {
			last = i
		}
	}
	if !(math.Abs(total-1) <= normTol) {
		return 0, 0, fmt.Errorf("smc: resample: log-weights are not normalised: Σ exp(lw) = %.17g, want 1 ± %g", total, normTol)
	}
	return total, last, nil
}

// cdf inverts the cumulative sum C_j = Σ_{k≤j} w_k of per-particle weights at
// non-decreasing points. Query points u ∈ [0, 1] are scaled by the actual
// final sum total (not by 1), and the walk stops at last, the last index with
// w > 0; so the result is always in range and never a zero-weight particle,
// even if the sum rounds below 1 or u·total rounds up to total.
type cdf struct {
	lw    []float64
	scale float64 // 0: w_j = exp(lw_j); > 0: residual weight frac(scale·exp(lw_j))
	total float64 // Σ_j w_j, summed in index order exactly as the walk does
	last  int     // last index with w_j > 0
	j     int     // current index
	c     float64 // C_j
}

// newCDF starts a walk over lw; total and last must come from summing weight
// in index order.
func newCDF(lw []float64, scale, total float64, last int) cdf {
	c := cdf{lw: lw, scale: scale, total: total, last: last}
	c.c = c.weight(0)
	return c
}

// weight returns w_j.
func (c *cdf) weight(j int) float64 {
	w := math.Exp(c.lw[j])
	if c.scale == 0 {
		return w
	}
	y := w * c.scale
	return y - math.Floor(y)
}

// find returns the smallest j with C_j > u·total, or last if there is none.
// Successive calls must use non-decreasing u. A zero-weight j is never
// returned: C_j = C_{j−1} there, so the walk would have stopped at j−1.
func (c *cdf) find(u float64) int {
	v := u * c.total
	for c.c <= v && c.j < c.last {
		c.j++
		c.c += c.weight(c.j)
	}
	return c.j
}

// sortedUniforms fills u with the order statistics of len(u) independent
// Uniform[0, 1) draws: u_k = S_k/S_n with S_k the partial sums of n+1
// independent Exp(1) variables.
func sortedUniforms(rng *rand.Rand, u []float64) {
	var s float64
	for k := range u {
		s += rng.ExpFloat64()
		u[k] = s
	}
	s += rng.ExpFloat64()
	for k := range u {
		u[k] /= s
	}
}

// scratch returns a float64 slice of length n, reusing out unless it is the
// same slice as lw (which must be read after the scratch space is filled).
func scratch(lw, out []float64, n int) []float64 {
	if n <= len(out) && (len(out) == 0 || &out[0] != &lw[0]) {
		return out[:n]
	}
	return make([]float64, n)
}

// fillUniform sets every entry of out to −log N.
func fillUniform(out []float64) {
	v := -math.Log(float64(len(out)))
	for i := range out {
		out[i] = v
	}
}

type multinomial struct{}

func (multinomial) Name() string { return "multinomial" }

// Resample implements Resampler.
func (multinomial) Resample(rng *rand.Rand, lw []float64, anc []int, out []float64) error {
	total, last, err := checkInput(rng, lw, anc, out)
	if err != nil {
		return err
	}
	u := scratch(lw, out, len(lw))
	sortedUniforms(rng, u)
	c := newCDF(lw, 0, total, last)
	for k, uk := range u {
		anc[k] = c.find(uk)
	}
	fillUniform(out)
	return nil
}

type stratified struct{}

func (stratified) Name() string { return "stratified" }

// Resample implements Resampler.
func (stratified) Resample(rng *rand.Rand, lw []float64, anc []int, out []float64) error {
	total, last, err := checkInput(rng, lw, anc, out)
	if err != nil {
		return err
	}
	n := float64(len(lw))
	c := newCDF(lw, 0, total, last)
	for k := range anc {
		anc[k] = c.find((float64(k) + rng.Float64()) / n)
	}
	fillUniform(out)
	return nil
}

type systematic struct{}

func (systematic) Name() string { return "systematic" }

// Resample implements Resampler.
func (systematic) Resample(rng *rand.Rand, lw []float64, anc []int, out []float64) error {
	total, last, err := checkInput(rng, lw, anc, out)
	if err != nil {
		return err
	}
	n := float64(len(lw))
	u := rng.Float64()
	c := newCDF(lw, 0, total, last)
	for k := range anc {
		anc[k] = c.find((float64(k) + u) / n)
	}
	fillUniform(out)
	return nil
}

type residual struct{}

func (residual) Name() string { return "residual" }

// Resample implements Resampler.
func (residual) Resample(rng *rand.Rand, lw []float64, anc []int, out []float64) error {
	total, _, err := checkInput(rng, lw, anc, out)
	if err != nil {
		return err
	}
	n := len(lw)
	scale := float64(n) / total // N·W_i = scale·exp(lw_i), with W normalised by the actual total
	counts := make([]int, n)
	det := 0
	rtot, rlast := 0.0, -1
	for i, x := range lw {
		y := math.Exp(x) * scale
		f := math.Floor(y)
		counts[i] = int(f)
		det += int(f)
		if r := y - f; r > 0 {
			rtot += r
			rlast = i
		}
	}
	// Σ⌊N·W_i⌋ ≤ N·(1 + O(Nε)) < N + 1, and if it is below N the fractional
	// parts sum to at least ≈ 1; both guards are unreachable in float64.
	rem := n - det
	if rem < 0 || (rem > 0 && rlast < 0) {
		return fmt.Errorf("smc: residual: %d deterministic copies and residual mass %g for N=%d", det, rtot, n)
	}
	if rem > 0 {
		u := scratch(lw, out, rem)
		sortedUniforms(rng, u)
		c := newCDF(lw, scale, rtot, rlast)
		for _, uk := range u {
			counts[c.find(uk)]++
		}
	}
	k := 0
	for i, m := range counts {
		for range m {
			anc[k] = i
			k++
		}
	}
	fillUniform(out)
	return nil
}

// Partial resamples only a subset I of the particles (partial resampling):
//
//   - M = max(2, round(Frac·N)), with Frac = 0.5 if zero; if M ≥ N it is a
//     full resample with Base.
//   - Order the particles by decreasing weight, ties by increasing index. I is
//     the first ⌈M/2⌉ (the highest weights) and the last ⌊M/2⌋ (the lowest)
//     in that order, extended to every particle with −Inf weight so that no
//     dead particle survives (if I then covers all N particles it is a full
//     resample with Base).
//   - |I| offspring are drawn within I by Base from the weights w_i/S,
//     S = Σ_{i∈I} w_i, and each offspring gets weight S·exp(Base's output
//     log-weight), i.e. S/|I| for the full schemes. They fill the slots of I;
//     particles outside I keep their index and weight.
//
// The total weight is unchanged and the scheme is unbiased whenever Base is:
// E[Σ out-weight of offspring of i] = w_i. For N = 2 it is a full resample;
// for N = 3 it resamples the heaviest and the lightest particle.
type Partial struct {
	// Base draws the offspring within I (nil: Systematic).
	Base Resampler
	// Frac is the resampled fraction of the particles, in (0, 1]
	// (zero: 0.5).
	Frac float64
}

// Name implements Resampler; it is "partial" whatever Base and Frac are.
func (Partial) Name() string { return "partial" }

// Resample implements Resampler.
func (p Partial) Resample(rng *rand.Rand, lw []float64, anc []int, out []float64) error {
	if _, _, err := checkInput(rng, lw, anc, out); err != nil {
		return err
	}
	frac := p.Frac
	if frac == 0 {
		frac = 0.5
	}
	if !(frac > 0 && frac <= 1) {
		return fmt.Errorf("smc: partial: Frac = %g, want it in (0, 1]", p.Frac)
	}
	base := p.Base
	if base == nil {
		base = Systematic
	}
	n := len(lw)
	m := max(2, int(math.Round(frac*float64(n))))
	if m >= n {
		return base.Resample(rng, lw, anc, out)
	}

	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		if c := cmp.Compare(lw[b], lw[a]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	hi, lo := (m+1)/2, n-m/2 // I = order[:hi] ∪ order[lo:]
	for lo > hi && math.IsInf(lw[order[lo-1]], -1) {
		lo--
	}
	if hi+(n-lo) >= n {
		return base.Resample(rng, lw, anc, out)
	}
	set := append(order[:hi:hi], order[lo:]...)
	mi := len(set)

	sub := make([]float64, mi)
	for k, i := range set {
		sub[k] = lw[i]
	}
	logS, err := Normalize(sub, sub)
	if err != nil {
		return err // unreachable: the heaviest particle is in I
	}
	subAnc := make([]int, mi)
	subOut := make([]float64, mi)
	if err := base.Resample(rng, sub, subAnc, subOut); err != nil {
		return err
	}
	for _, a := range subAnc {
		if a < 0 || a >= mi {
			return fmt.Errorf("smc: partial: base resampler %q returned ancestor %d outside [0, %d)", base.Name(), a, mi)
		}
	}
	for i := range anc {
		anc[i] = i
	}
	copy(out, lw)
	for k, i := range set {
		anc[i] = set[subAnc[k]]
		out[i] = logS + subOut[k]
	}
	return nil
}
