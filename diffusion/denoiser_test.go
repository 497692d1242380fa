package diffusion

import (
	"fmt"
	"math"
	"testing"
)

// toyL, toyV and toySparsePMF define the enumerable toy of the tests: a
// strongly correlated pmf on 8 of the 27 sequences in {0,1,2}^3.
const toyL, toyV = 3, 3

func toySparsePMF() []float64 {
	p := make([]float64, 27)
	for seq, m := range map[[3]int]float64{
		{0, 0, 0}: 0.30, {1, 1, 1}: 0.20, {2, 2, 2}: 0.15,
		{0, 1, 2}: 0.10, {1, 2, 0}: 0.10, {2, 0, 1}: 0.05,
		{0, 0, 1}: 0.05, {1, 1, 0}: 0.05,
	} {
		p[Index(seq[:], toyV)] = m
	}
	return p
}

// toyPMF is the chain tests' data pmf: 0.946·toySparsePMF + 0.002 on every
// sequence. It needs full support because the T-step chain unmasks
// positions that move in the same step independently, so with the exact
// posterior denoiser it can reach partial states (e.g. [0 2 MASK]) that no
// sequence of a sparse pmf agrees with, where the posterior is undefined
// (PosteriorDenoiser returns an error there).
func toyPMF() []float64 {
	p := toySparsePMF()
	for i := range p {
		p[i] = 0.946*p[i] + 0.002
	}
	return p
}

func toyPosterior(t testing.TB) *PosteriorDenoiser {
	t.Helper()
	d, err := NewPosteriorDenoiser(toyPMF(), toyL, toyV)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// uniformDenoiser returns all-zero logits (x̂ uniform over V tokens).
type uniformDenoiser struct{ L, V int }

func (d uniformDenoiser) Shape() (int, int) { return d.L, d.V }
func (d uniformDenoiser) X0Logits(xt []int, t []float64, out []float64) error {
	if len(xt) != len(t)*d.L || len(out) != len(xt)*d.V {
		return fmt.Errorf("bad lengths")
	}
	clear(out)
	return nil
}

// batchChecker wraps a denoiser and fails the test if it is called with a
// batch size other than want.
type batchChecker struct {
	Denoiser
	t     testing.TB
	want  int
	calls int
}

func (c *batchChecker) X0Logits(xt []int, tv []float64, out []float64) error {
	c.calls++
	if len(tv) != c.want {
		c.t.Errorf("denoiser called with batch %d, want %d", len(tv), c.want)
	}
	return c.Denoiser.X0Logits(xt, tv, out)
}

// TestPosteriorDenoiser compares the posterior log-marginals with a direct
// conditional computed over all 27 sequences, for every x_t in {0..3}^3
// consistent with the support; inconsistent x_t must be an error.
func TestPosteriorDenoiser(t *testing.T) {
	p := toySparsePMF()
	d, err := NewPosteriorDenoiser(p, toyL, toyV)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float64, toyL*toyV)
	x0 := make([]int, toyL)
	for code := range 64 { // all x_t in {0,1,2,3}^3
		xt := []int{code / 16, code / 4 % 4, code % 4}
		want := make([]float64, toyL*toyV)
		z := 0.0
		for i, m := range p {
			Unindex(i, toyL, toyV, x0)
			ok := true
			for l := range toyL {
				if xt[l] != toyV && xt[l] != x0[l] {
					ok = false
				}
			}
			if ok && m > 0 {
				z += m
				for l := range toyL {
					want[l*toyV+x0[l]] += m
				}
			}
		}
		err := d.X0Logits(xt, []float64{0.5}, out)
		if z == 0 {
			if err == nil {
				t.Errorf("xt=%v inconsistent with the support but no error", xt)
			}
			continue
		}
		if err != nil {
			t.Fatalf("xt=%v: %v", xt, err)
		}
		for i := range want {
			w := want[i] / z
			if got := math.Exp(out[i]); math.Abs(got-w) > 1e-14 {
				t.Errorf("xt=%v entry %d: got %v want %v", xt, i, got, w)
			}
			if w == 0 && !math.IsInf(out[i], -1) {
				t.Errorf("xt=%v entry %d: zero mass should be -Inf, got %v", xt, i, out[i])
			}
		}
		for l := range toyL { // unmasked positions are carried over
			if xt[l] != toyV && out[l*toyV+xt[l]] != 0 {
				t.Errorf("xt=%v position %d: log-mass at xt is %v, want 0", xt, l, out[l*toyV+xt[l]])
			}
		}
	}
}

func TestPosteriorDenoiserErrors(t *testing.T) {
	p := toyPMF()
	if _, err := NewPosteriorDenoiser(p[:26], toyL, toyV); err == nil {
		t.Error("short pdata: no error")
	}
	bad := append([]float64(nil), p...)
	bad[0] = -0.1
	if _, err := NewPosteriorDenoiser(bad, toyL, toyV); err == nil {
		t.Error("negative pdata: no error")
	}
	bad[0] = 0.5 // sums to 1.2
	if _, err := NewPosteriorDenoiser(bad, toyL, toyV); err == nil {
		t.Error("pdata not summing to 1: no error")
	}
	bad[0] = math.NaN()
	if _, err := NewPosteriorDenoiser(bad, toyL, toyV); err == nil {
		t.Error("NaN pdata: no error")
	}
	if _, err := NewPosteriorDenoiser(p, 0, toyV); err == nil {
		t.Error("L=0: no error")
	}
	d := toyPosterior(t)
	out := make([]float64, 2*toyL*toyV)
	if err := d.X0Logits([]int{3, 3, 3}, []float64{1, 1}, out); err == nil {
		t.Error("xt shorter than B*L: no error")
	}
	if err := d.X0Logits([]int{3, 3, 3, 3, 3, 4}, []float64{1, 1}, out); err == nil {
		t.Error("token > V: no error")
	}
	if err := d.X0Logits([]int{3, 3, 3, 3, 3, 3}, []float64{1, 1}, out[:5]); err == nil {
		t.Error("short out: no error")
	}
}
