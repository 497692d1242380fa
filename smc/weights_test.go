package smc

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

var (
	minusInf   = math.Inf(-1)
	plusInf    = math.Inf(1)
	notANumber = math.NaN()
)

// floatsMatch reports whether a and b agree to within tol, treating equal
// infinities and two NaNs as equal.
func floatsMatch(a, b, tol float64) bool {
	switch {
	case math.IsNaN(a) || math.IsNaN(b):
		return math.IsNaN(a) && math.IsNaN(b)
	case math.IsInf(a, 0) || math.IsInf(b, 0):
		return a == b
	}
	return math.Abs(a-b) <= tol
}

func TestLogSumExpExactValues(t *testing.T) {
	ln := math.Log
	cases := []struct {
		name string
		x    []float64
		want float64
	}{
		{"empty", nil, minusInf},
		{"single", []float64{-3.5}, -3.5},
		{"two zeros", []float64{0, 0}, ln(2)},
		{"1+2+3", []float64{ln(1), ln(2), ln(3)}, ln(6)},
		{"-Inf entry ignored", []float64{minusInf, ln(2), minusInf, ln(3)}, ln(5)},
		{"all -Inf", []float64{minusInf, minusInf}, minusInf},
		{"NaN", []float64{0, notANumber, 1}, notANumber},
		{"NaN beats +Inf", []float64{plusInf, notANumber}, notANumber},
		{"+Inf", []float64{0, plusInf, minusInf}, plusInf},
		// exp(1000) overflows: only the shifted form is finite.
		{"large", []float64{1000, 1000 + ln(3)}, 1000 + ln(4)},
		{"very negative", []float64{-1000, -1000}, -1000 + ln(2)},
		// At 1e300 the O(1) correction is below one ulp; the result must
		// still be finite and equal to the maximum.
		{"huge positive", []float64{1e300, 1e300}, 1e300},
		{"huge negative", []float64{-1e300, -1e300}, -1e300},
		{"huge spread", []float64{1e300, -1e300, 0}, 1e300},
		{"max float", []float64{math.MaxFloat64, math.MaxFloat64}, math.MaxFloat64},
	}
	for _, c := range cases {
		if got := LogSumExp(c.x); !floatsMatch(got, c.want, 1e-12) {
			t.Errorf("%s: LogSumExp(%v) = %v, want %v", c.name, c.x, got, c.want)
		}
	}
}

func TestLogMeanExpIsLogOfMeanWeight(t *testing.T) {
	ln := math.Log
	cases := []struct {
		x    []float64
		want float64
	}{
		{[]float64{ln(1), ln(3)}, ln(2)},
		{[]float64{-7}, -7},
		{[]float64{minusInf, 0}, -ln(2)},
		{[]float64{minusInf, minusInf}, minusInf},
		{[]float64{1000, 1000, 1000 + ln(4)}, 1000 + ln(2)},
		{nil, notANumber}, // the mean of nothing is undefined
	}
	for _, c := range cases {
		if got := LogMeanExp(c.x); !floatsMatch(got, c.want, 1e-12) {
			t.Errorf("LogMeanExp(%v) = %v, want %v", c.x, got, c.want)
		}
	}
}

func TestNormalizeExactValues(t *testing.T) {
	ln := math.Log
	cases := []struct {
		name    string
		lw      []float64
		wantOut []float64
		wantLSE float64
	}{
		{"1:3", []float64{ln(1), ln(3)}, []float64{ln(0.25), ln(0.75)}, ln(4)},
		{"shifted 1:3", []float64{-1e5, -1e5 + ln(3)}, []float64{ln(0.25), ln(0.75)}, -1e5 + ln(4)},
		{"with -Inf", []float64{minusInf, ln(2), ln(2), minusInf}, []float64{minusInf, ln(0.5), ln(0.5), minusInf}, ln(4)},
		{"already normalised", []float64{ln(0.2), ln(0.8)}, []float64{ln(0.2), ln(0.8)}, 0},
		// lw_i − LogSumExp(lw) would give 0, 0 here (1e300 + log 2 rounds to
		// 1e300); the output must still be normalised.
		{"huge equal", []float64{1e300, 1e300}, []float64{-ln(2), -ln(2)}, 1e300},
		{"huge negative equal", []float64{-1e300, -1e300, -1e300}, []float64{-ln(3), -ln(3), -ln(3)}, -1e300},
		{"huge spread", []float64{-1e300, 0}, []float64{-1e300, 0}, 0},
	}
	for _, c := range cases {
		out := make([]float64, len(c.lw))
		lse, err := Normalize(c.lw, out)
		if err != nil {
			t.Errorf("%s: unexpected error %v", c.name, err)
			continue
		}
		if !floatsMatch(lse, c.wantLSE, 1e-12) {
			t.Errorf("%s: LogSumExp = %v, want %v", c.name, lse, c.wantLSE)
		}
		for i := range out {
			if !floatsMatch(out[i], c.wantOut[i], 1e-12) {
				t.Errorf("%s: out[%d] = %v, want %v", c.name, i, out[i], c.wantOut[i])
			}
		}
		var s float64
		for _, x := range out {
			s += math.Exp(x)
		}
		if math.Abs(s-1) > 1e-14 {
			t.Errorf("%s: Σ exp(out) = %v, want 1", c.name, s)
		}
	}
}

func TestNormalizeInPlaceMatchesCopy(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	lw := make([]float64, 50)
	for i := range lw {
		lw[i] = 30 * rng.NormFloat64()
	}
	lw[7] = minusInf
	want := make([]float64, len(lw))
	wantLSE, err := Normalize(lw, want)
	if err != nil {
		t.Fatal(err)
	}
	gotLSE, err := Normalize(lw, lw)
	if err != nil {
		t.Fatal(err)
	}
	if gotLSE != wantLSE {
		t.Fatalf("aliased LogSumExp %v, separate %v", gotLSE, wantLSE)
	}
	for i := range lw {
		if lw[i] != want[i] {
			t.Fatalf("aliased out[%d] = %v, separate %v", i, lw[i], want[i])
		}
	}
}

func TestNormalizeRejectsBadInput(t *testing.T) {
	cases := []struct {
		name    string
		lw, out []float64
		wantMsg string
		wantLSE float64
	}{
		{"empty", nil, nil, "no log-weights", notANumber},
		{"length mismatch", []float64{0, 0}, make([]float64, 1), "len(out)=1", notANumber},
		{"NaN", []float64{0, minusInf, notANumber}, make([]float64, 3), "log-weight 2 is NaN", notANumber},
		{"+Inf", []float64{plusInf, 0}, make([]float64, 2), "log-weight 0 is +Inf", plusInf},
		{"all -Inf", []float64{minusInf, minusInf, minusInf}, make([]float64, 3), "all 3 log-weights are -Inf", minusInf},
	}
	for _, c := range cases {
		for i := range c.out {
			c.out[i] = 42
		}
		lse, err := Normalize(c.lw, c.out)
		if err == nil {
			t.Errorf("%s: no error", c.name)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "smc: ") || !strings.Contains(msg, c.wantMsg) {
			t.Errorf("%s: error %q, want prefix \"smc: \" and %q", c.name, msg, c.wantMsg)
		}
		if !floatsMatch(lse, c.wantLSE, 0) {
			t.Errorf("%s: returned %v, want %v", c.name, lse, c.wantLSE)
		}
		for i, x := range c.out {
			if x != 42 {
				t.Errorf("%s: out[%d] written on error", c.name, i)
			}
		}
	}
}

func TestESSExactValues(t *testing.T) {
	ln := math.Log
	cases := []struct {
		name string
		lw   []float64
		want float64
	}{
		{"uniform N=5", []float64{-ln(5), -ln(5), -ln(5), -ln(5), -ln(5)}, 5},
		{"one-hot with -Inf", []float64{minusInf, 0, minusInf}, 1},
		{"1/2,1/4,1/4", []float64{ln(0.5), ln(0.25), ln(0.25)}, 8.0 / 3},
		{"0.9,0.1", []float64{ln(0.9), ln(0.1)}, 1 / (0.81 + 0.01)},
		// Unnormalised input gives the same value (the formula is scale-free).
		{"unnormalised huge", []float64{1e300, 1e300}, 2},
		{"unnormalised 1:1:2", []float64{-1000, -1000, -1000 + ln(2)}, 16.0 / 6},
		{"empty", nil, 0},
		{"all -Inf", []float64{minusInf, minusInf}, 0},
		{"NaN", []float64{0, notANumber}, notANumber},
		{"+Inf", []float64{0, plusInf}, notANumber},
	}
	for _, c := range cases {
		if got := ESS(c.lw); !floatsMatch(got, c.want, 1e-12) {
			t.Errorf("%s: ESS = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestESSLiesBetweenOneAndN(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for trial := range 200 {
		n := 1 + rng.IntN(300)
		lw := make([]float64, n)
		spread := math.Pow(10, 3*rng.Float64()-1) // 0.1 … 100
		for i := range lw {
			lw[i] = spread * rng.NormFloat64()
		}
		if _, err := Normalize(lw, lw); err != nil {
			t.Fatal(err)
		}
		var s2 float64
		for _, x := range lw {
			s2 += math.Exp(2 * x)
		}
		ess := ESS(lw)
		if ess < 1 || ess > float64(n) {
			t.Fatalf("trial %d: ESS %v outside [1, %d]", trial, ess, n)
		}
		if math.Abs(ess-1/s2) > 1e-9*ess {
			t.Fatalf("trial %d: ESS %v, 1/Σ W² = %v", trial, ess, 1/s2)
		}
	}
}
