package smc

import (
	"errors"
	"fmt"
	"math"

	"github.com/ddsmc/ddsmc/internal/logsumexp"
)

// LogSumExp returns log Σ_i exp(x_i), computed stably by shifting by the
// maximum. It is −Inf if x is empty or every entry is −Inf, NaN if any entry
// is NaN, and +Inf if any entry is +Inf (and none is NaN).
func LogSumExp(x []float64) float64 {
	m, s, nan := logsumexp.Parts(x)
	switch {
	case nan:
		return math.NaN()
	case math.IsInf(m, 0):
		return m
	}
	return m + math.Log(s)
}

// LogMeanExp returns log((1/N) Σ_i exp(x_i)) = LogSumExp(x) − log N, the
// log of the average weight (the per-step evidence increment of SMC). It is
// NaN for empty x, where the mean is undefined.
func LogMeanExp(x []float64) float64 {
	if len(x) == 0 {
		return math.NaN()
	}
	return LogSumExp(x) - math.Log(float64(len(x)))
}

// Normalize writes the normalised log-weights lw_i − LogSumExp(lw) into out
// and returns LogSumExp(lw). out must have the same length as lw and may alias
// it. The shift is applied as (lw_i − max lw) − log Σ exp(lw_j − max lw), so
// the output is normalised even when |lw_i| is so large (≈1e300) that
// max lw + log Σ(…) rounds to max lw.
//
// It fails, leaving out untouched, on empty input, a length mismatch, a NaN or
// +Inf entry ("smc: log-weight i is NaN") or when every entry is −Inf
// ("smc: all N log-weights are -Inf"; the returned value is then −Inf).
func Normalize(lw, out []float64) (float64, error) {
	if len(lw) == 0 {
		return math.NaN(), errors.New("smc: normalize: no log-weights")
	}
	if len(out) != len(lw) {
		return math.NaN(), fmt.Errorf("smc: normalize: len(out)=%d, want len(lw)=%d", len(out), len(lw))
	}
	for i, x := range lw {
		if math.IsNaN(x) {
			return math.NaN(), fmt.Errorf("smc: log-weight %d is NaN", i)
		}
		if math.IsInf(x, 1) {
			return math.Inf(1), fmt.Errorf("smc: log-weight %d is +Inf", i)
		}
	}
	m, s, _ := logsumexp.Parts(lw)
	if math.IsInf(m, -1) {
		return m, fmt.Errorf("smc: all %d log-weights are -Inf", len(lw))
	}
	logS := math.Log(s)
	for i, x := range lw {
		out[i] = (x - m) - logS
	}
	return m + logS, nil
}

// ESS returns the effective sample size 1/Σ_i W_i² of the normalised
// log-weights normLogW (W_i = exp(normLogW_i)); it lies in [1, N]. It is
// computed as (Σ w_i)²/Σ w_i² with w_i = exp(normLogW_i − max), which equals
// 1/Σ W_i² for normalised input and stays in [1, N] under rounding. It is 0
// for empty or all −Inf input and NaN if any entry is NaN or +Inf.
func ESS(normLogW []float64) float64 {
	m, _, nan := logsumexp.Parts(normLogW)
	switch {
	case nan || math.IsInf(m, 1):
		return math.NaN()
	case math.IsInf(m, -1):
		return 0
	}
	var s1, s2 float64
	for _, x := range normLogW {
		w := math.Exp(x - m)
		s1 += w
		s2 += w * w
	}
	// w_max = 1, so s2 ≤ s1 and the ratio is ≥ s1 ≥ 1; clamp the upper end,
	// where Cauchy–Schwarz can be broken by one rounding.
	return math.Min(s1*s1/s2, float64(len(normLogW)))
}
