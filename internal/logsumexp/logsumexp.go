// Package logsumexp computes log Σ_i exp(x_i) and the log-softmax stably, by
// shifting by the maximum: log Σ exp(x_i) = m + log s with m = max_i x_i and
// s = Σ_i exp(x_i − m) ∈ [1, N]. It is the one home of these loops for smc,
// diffusion and objectives (smc.LogSumExp is the exported API); it imports
// only the standard library. Sums run in index order, so every caller gets
// the same bits it computed when it wrote the loop out itself.
package logsumexp

import "math"

// Parts splits log Σ exp(x_i) into the shift m = max_i x_i and the scaled
// sum s = Σ_i exp(x_i − m), so that log Σ exp(x_i) = m + log s. nan reports
// a NaN entry (m and s are then NaN); m is −Inf for empty or all −Inf input
// and +Inf if any entry is +Inf (s is then NaN and meaningless).
func Parts(x []float64) (m, s float64, nan bool) {
	m = math.Inf(-1)
	for _, v := range x {
		if math.IsNaN(v) {
			return math.NaN(), math.NaN(), true
		}
		if v > m {
			m = v
		}
	}
	if math.IsInf(m, 0) {
		return m, math.NaN(), false
	}
	return m, SumExp(x, m), false
}

// SumExp returns Σ_i exp(x_i − m), summed in index order, for a shift m the
// caller has already found (and validated); exp(−Inf) contributes 0.
func SumExp(x []float64, m float64) float64 {
	s := 0.0
	for _, v := range x {
		s += math.Exp(v - m)
	}
	return s
}

// LogSoftmaxAt returns log softmax(z)[k] = (z_k − m) − log Σ_i exp(z_i − m)
// with m = max_i z_i (found with math.Max, so a NaN entry gives NaN and
// +0 wins over −0). A +Inf entry gives NaN.
func LogSoftmaxAt(z []float64, k int) float64 {
	m := math.Inf(-1)
	for _, v := range z {
		m = math.Max(m, v)
	}
	return z[k] - m - math.Log(SumExp(z, m))
}

// LogSoftmax writes log softmax(x)_i = (x_i − m) − log s into out (len(out)
// = len(x); out may alias x), with m and s from Parts. A NaN or +Inf entry
// makes every output NaN; all −Inf input makes every output NaN too.
func LogSoftmax(x, out []float64) {
	m, s, _ := Parts(x)
	ls := math.Log(s)
	for i, v := range x {
		out[i] = (v - m) - ls
	}
}
