package logsumexp

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The loops this package replaced, copied verbatim from smc/weights.go
// (lseParts), diffusion/kernel.go (logNormalizer's sum) and
// objectives/validate.go (logSoftmaxAt).
func formerParts(x []float64) (m, s float64, nan bool) {
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
	for _, v := range x {
		s += math.Exp(v - m)
	}
	return m, s, false
}

func formerLogNormalizer(logits []float64, m float64) float64 {
	sum := 0.0
	for _, x := range logits {
		sum += math.Exp(x - m) // exp(−Inf) = 0
	}
	return m + math.Log(sum)
}

func formerLogSoftmaxAt(z []float64, k int) float64 {
	m := math.Inf(-1)
	for _, v := range z {
		m = math.Max(m, v)
	}
	s := 0.0
	for _, v := range z {
		s += math.Exp(v - m)
	}
	return z[k] - m - math.Log(s)
}

func same(a, b float64) bool {
	return math.Float64bits(a) == math.Float64bits(b) || (math.IsNaN(a) && math.IsNaN(b))
}

// randomRow draws a row of n entries of mixed scale, some −Inf.
func randomRow(rng *rand.Rand, n int) []float64 {
	x := make([]float64, n)
	scale := math.Pow(10, float64(rng.IntN(7)-2))
	for i := range x {
		x[i] = scale * rng.NormFloat64()
		if rng.IntN(8) == 0 {
			x[i] = math.Inf(-1)
		}
	}
	return x
}

// Parts, SumExp and LogSoftmaxAt give the former copies' results bit for
// bit on 2000 random rows, including rows with −Inf, +Inf and NaN entries.
func TestMatchesFormerCopiesBitForBit(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for r := 0; r < 2000; r++ {
		x := randomRow(rng, 1+rng.IntN(12))
		switch r % 50 {
		case 1:
			x[rng.IntN(len(x))] = math.NaN()
		case 2:
			x[rng.IntN(len(x))] = math.Inf(1)
		}
		m, s, nan := Parts(x)
		fm, fs, fnan := formerParts(x)
		if !same(m, fm) || !same(s, fs) || nan != fnan {
			t.Fatalf("Parts(%v) = %v, %v, %v; former %v, %v, %v", x, m, s, nan, fm, fs, fnan)
		}
		if !nan && !math.IsInf(m, 0) {
			if got, want := m+math.Log(SumExp(x, m)), formerLogNormalizer(x, m); !same(got, want) {
				t.Fatalf("m + log SumExp(%v) = %v, former %v", x, got, want)
			}
		}
		for k := range x {
			if got, want := LogSoftmaxAt(x, k), formerLogSoftmaxAt(x, k); !same(got, want) {
				t.Fatalf("LogSoftmaxAt(%v, %d) = %v, former %v", x, k, got, want)
			}
		}
	}
}

// m + log s is log Σ exp(x_i) (checked directly where exp does not
// overflow), stays finite under a shift of 1e300, and LogSoftmax
// exponentiates to a distribution.
func TestLogSumExpAndLogSoftmaxValues(t *testing.T) {
	x := []float64{0.3, -1.2, 2.5, math.Inf(-1), 0}
	direct := 0.0
	for _, v := range x {
		direct += math.Exp(v)
	}
	m, s, _ := Parts(x)
	if got := m + math.Log(s); math.Abs(got-math.Log(direct)) > 1e-15 {
		t.Errorf("m + log s = %v, log Σ exp directly %v", got, math.Log(direct))
	}
	big := []float64{1e300, 1e300 - 1e285, -1e300}
	if m, s, _ := Parts(big); !(s >= 1 && s <= 3) || m != 1e300 {
		t.Errorf("Parts(%v) = %v, %v", big, m, s)
	}
	out := make([]float64, len(x))
	LogSoftmax(x, out)
	total := 0.0
	for i, v := range out {
		total += math.Exp(v)
		if want := LogSoftmaxAt(x, i); math.Abs(v-want) > 1e-15 {
			t.Errorf("LogSoftmax[%d] = %v, LogSoftmaxAt %v", i, v, want)
		}
	}
	if math.Abs(total-1) > 1e-15 {
		t.Errorf("Σ exp(log softmax) = %v", total)
	}
}

// Empty and all −Inf input give m = −Inf; +Inf gives m = +Inf; NaN is
// reported; LogSoftmax of invalid input is all NaN.
func TestPartsEdgeCases(t *testing.T) {
	inf := math.Inf(1)
	for _, tc := range []struct {
		x   []float64
		m   float64
		nan bool
	}{
		{nil, -inf, false},
		{[]float64{-inf, -inf}, -inf, false},
		{[]float64{1, inf, -inf}, inf, false},
		{[]float64{1, math.NaN()}, math.NaN(), true},
	} {
		m, _, nan := Parts(tc.x)
		if !same(m, tc.m) || nan != tc.nan {
			t.Errorf("Parts(%v) = m %v, nan %v; want %v, %v", tc.x, m, nan, tc.m, tc.nan)
		}
		if len(tc.x) > 0 {
			out := make([]float64, len(tc.x))
			LogSoftmax(tc.x, out)
			for i, v := range out {
				if !math.IsNaN(v) {
					t.Errorf("LogSoftmax(%v)[%d] = %v, want NaN", tc.x, i, v)
				}
			}
		}
	}
}
