package diffusion

import (
	"fmt"
	"math"
)

// TotalVariation returns the total-variation distance ½ Σ_k |p_k − q_k|
// between two pmfs over the same categories (error on length mismatch).
func TotalVariation(p, q []float64) (float64, error) {
	if len(p) != len(q) {
		return 0, fmt.Errorf("diffusion: TotalVariation length mismatch: %d vs %d", len(p), len(q))
	}
	s := 0.0
	for i := range p {
		s += math.Abs(p[i] - q[i])
	}
	return s / 2, nil
}

// EmpiricalPMF turns n = len(samples)/L flat clean samples of length L
// (tokens 0..V-1) into their empirical pmf over V^L, indexed by Index.
func EmpiricalPMF(samples []int, L, V int) ([]float64, error) {
	if L < 1 || V < 1 {
		return nil, fmt.Errorf("diffusion: EmpiricalPMF needs L >= 1 and V >= 1, got L=%d V=%d", L, V)
	}
	if len(samples) == 0 || len(samples)%L != 0 {
		return nil, fmt.Errorf("diffusion: %d sample tokens is not a positive multiple of L = %d", len(samples), L)
	}
	K, ok := powInt(V, L)
	if !ok || K > maxEnumStates {
		return nil, fmt.Errorf("diffusion: V^L = %d^%d categories too many", V, L)
	}
	n := len(samples) / L
	pmf := make([]float64, K)
	for j := range n {
		idx := Index(samples[j*L:(j+1)*L], V)
		if idx < 0 {
			return nil, fmt.Errorf("diffusion: sample %d %v has a token outside 0..%d", j, samples[j*L:(j+1)*L], V-1)
		}
		pmf[idx]++
	}
	for i := range pmf {
		pmf[i] /= float64(n)
	}
	return pmf, nil
}

// TVBound returns a bound on TV(p̂_n, p), where p̂_n is the empirical pmf of
// n i.i.d. samples from any pmf p over K categories, that holds with
// probability at least 1 − delta:
//
//	½·sqrt(K/n) + sqrt(ln(1/delta)/(2n)).
//
// Derivation. Expectation: n·p̂_k ~ Binomial(n, p_k), so by Jensen
// E|p̂_k − p_k| ≤ sqrt(p_k(1−p_k)/n) ≤ sqrt(p_k/n), and by Cauchy–Schwarz
// Σ_k sqrt(p_k) ≤ sqrt(K), hence E TV ≤ ½·sqrt(K/n). Concentration:
// replacing one sample moves at most 1/n of mass, changing TV by at most
// 1/n, so McDiarmid gives P(TV − E TV ≥ ε) ≤ exp(−2nε²); setting this to
// delta gives ε = sqrt(ln(1/delta)/(2n)).
//
// It returns +Inf if n < 1 and NaN if K < 1 or delta is outside (0,1].
func TVBound(K, n int, delta float64) float64 {
	if K < 1 || !(delta > 0 && delta <= 1) {
		return math.NaN()
	}
	if n < 1 {
		return math.Inf(1)
	}
	nf := float64(n)
	return 0.5*math.Sqrt(float64(K)/nf) + math.Sqrt(math.Log(1/delta)/(2*nf))
}
