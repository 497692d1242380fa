package diffusion

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestTotalVariation(t *testing.T) {
	tv, err := TotalVariation([]float64{0.5, 0.5, 0}, []float64{0.2, 0.3, 0.5})
	if err != nil || math.Abs(tv-0.5) > 1e-15 {
		t.Errorf("TV = %v %v, want 0.5", tv, err)
	}
	if _, err := TotalVariation([]float64{1}, []float64{0.5, 0.5}); err == nil {
		t.Error("length mismatch: no error")
	}
}

func TestEmpiricalPMF(t *testing.T) {
	pmf, err := EmpiricalPMF([]int{0, 1, 0, 1, 1, 1, 2, 0}, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]float64, 9)
	want[1], want[4], want[6] = 0.5, 0.25, 0.25
	for i := range want {
		if pmf[i] != want[i] {
			t.Errorf("pmf[%d] = %v, want %v", i, pmf[i], want[i])
		}
	}
	for name, err := range map[string]error{
		"ragged": func() error { _, e := EmpiricalPMF([]int{0, 1, 0}, 2, 3); return e }(),
		"empty":  func() error { _, e := EmpiricalPMF(nil, 2, 3); return e }(),
		"token":  func() error { _, e := EmpiricalPMF([]int{0, 3}, 2, 3); return e }(),
		"mask":   func() error { _, e := EmpiricalPMF([]int{0, -1}, 2, 3); return e }(),
		"L":      func() error { _, e := EmpiricalPMF([]int{0, 1}, 0, 3); return e }(),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestTVBound checks the formula and its coverage: over 300 repetitions of
// n = 500 draws from a skewed 27-category pmf, TV(empirical, true) exceeds
// TVBound(27, 500, 0.05) at most 15 + 5·sd times (it is a loose bound, so
// typically never), and the mean TV is below the expectation term ½√(K/n).
func TestTVBound(t *testing.T) {
	if got, want := TVBound(27, 100000, 1e-6), 0.5*math.Sqrt(27.0/100000)+math.Sqrt(math.Log(1e6)/200000); math.Abs(got-want) > 1e-15 {
		t.Errorf("TVBound = %v, want %v", got, want)
	}
	if !math.IsInf(TVBound(4, 0, 0.1), 1) || !math.IsNaN(TVBound(0, 10, 0.1)) || !math.IsNaN(TVBound(4, 10, 0)) {
		t.Error("TVBound edge cases")
	}
	const K, n, reps, delta = 27, 500, 300, 0.05
	p := make([]float64, K)
	cdf := make([]float64, K)
	acc := 0.0
	for i := range p {
		p[i] = math.Pow(0.8, float64(i))
		acc += p[i]
	}
	c := 0.0
	for i := range p {
		p[i] /= acc
		c += p[i]
		cdf[i] = c
	}
	rng := rand.New(rand.NewPCG(10, 0))
	bound := TVBound(K, n, delta)
	exceed, meanTV := 0, 0.0
	samples := make([]int, n)
	for range reps {
		for j := range samples {
			u := rng.Float64()
			k := 0
			for k < K-1 && u >= cdf[k] {
				k++
			}
			samples[j] = k
		}
		emp, err := EmpiricalPMF(samples, 1, K)
		if err != nil {
			t.Fatal(err)
		}
		tv, _ := TotalVariation(emp, p)
		meanTV += tv / reps
		if tv > bound {
			exceed++
		}
	}
	if lim := reps*delta + 5*math.Sqrt(reps*delta*(1-delta)); float64(exceed) > lim {
		t.Errorf("TV exceeded the bound %d/%d times (limit %v)", exceed, reps, lim)
	}
	if e := 0.5 * math.Sqrt(K/float64(n)); meanTV > e {
		t.Errorf("mean TV %v above the expectation bound %v", meanTV, e)
	}
	t.Logf("bound %.4f, mean TV %.4f, exceedances %d/%d", bound, meanTV, exceed, reps)
}
