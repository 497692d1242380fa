package diffusion

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/ddsmc/ddsmc/internal/testutil"
)

func TestIndexRoundTrip(t *testing.T) {
	for _, c := range [][2]int{{3, 3}, {5, 2}, {2, 7}, {1, 4}} {
		V, L := c[0], c[1]
		K, _ := powInt(V, L)
		x := make([]int, L)
		for i := range K {
			Unindex(i, L, V, x)
			if got := Index(x, V); got != i {
				t.Fatalf("V=%d L=%d: Index(Unindex(%d)) = %d (x=%v)", V, L, i, got, x)
			}
		}
	}
	if got := Index([]int{1, 0, 0}, 3); got != 9 {
		t.Errorf("first position must be most significant: Index([1 0 0],3) = %d", got)
	}
	if got := Index([]int{2, 1}, 4); got != 9 {
		t.Errorf("Index([2 1],4) = %d, want 9", got)
	}
	for _, bad := range [][]int{{0, 3}, {-1, 0}} {
		if Index(bad, 3) != -1 {
			t.Errorf("Index(%v,3) should be -1", bad)
		}
	}
	if Index([]int{0}, 0) != -1 {
		t.Error("V=0 should give -1")
	}
	x := []int{7, 7, 7}
	Unindex(27, 3, 3, x)
	if !slices.Equal(x, []int{-1, -1, -1}) {
		t.Errorf("Unindex out of range: %v", x)
	}
	x = []int{7, 7}
	Unindex(0, 3, 3, x) // x too short
	if !slices.Equal(x, []int{-1, -1}) {
		t.Errorf("Unindex short x: %v", x)
	}
}

// productOfMarginals returns Π_l p_l(x_l) over V^L.
func productOfMarginals(p []float64, L, V int) []float64 {
	marg := make([]float64, L*V)
	x := make([]int, L)
	for i, m := range p {
		Unindex(i, L, V, x)
		for l, v := range x {
			marg[l*V+v] += m
		}
	}
	out := make([]float64, len(p))
	for i := range out {
		Unindex(i, L, V, x)
		out[i] = 1
		for l, v := range x {
			out[i] *= marg[l*V+v]
		}
	}
	return out
}

// TestExactMarginalOneStep: with T = 1 every position is unmasked in the
// single step, independently, from the all-mask posterior marginals, so the
// chain marginal is exactly the product of the data marginals (for every
// schedule, η and strategy: remasking needs unmasked tokens, and α(0) = 1).
func TestExactMarginalOneStep(t *testing.T) {
	p := toyPMF()
	want := productOfMarginals(p, toyL, toyV)
	g, _ := NewGrid(1, "linear")
	for _, k := range allKernels() {
		got, err := ExactMarginal(k, toyPosterior(t), g, 4)
		if err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if math.Abs(got[i]-want[i]) > 1e-14 {
				t.Fatalf("%s eta=%v: marginal[%d] = %v, product of marginals %v", kname(k), k.Eta, i, got[i], want[i])
			}
		}
	}
}

// TestExactMarginalBatchInvariance: the result does not depend on how the
// states are batched, every call has exactly `batch` rows, and with η > 0
// (fully unmasked states remask without a denoiser call) it still sums to 1.
func TestExactMarginalBatchInvariance(t *testing.T) {
	g, _ := NewGrid(6, "cosine")
	for _, k := range []Kernel{{Schedule: Linear()}, {Schedule: Cosine(), Eta: 0.4, Remask: RemaskMaxCap}} {
		var ref []float64
		for _, batch := range []int{1, 5, 64} {
			c := &batchChecker{Denoiser: testutil.HashDenoiser{L: toyL, V: toyV, Scale: 3}, t: t, want: batch}
			m, err := ExactMarginal(k, c, g, batch)
			if err != nil {
				t.Fatal(err)
			}
			if ref == nil {
				ref = m
				continue
			}
			tv, _ := TotalVariation(ref, m)
			if tv > 1e-14 {
				t.Errorf("%s eta=%v batch=%d: differs from batch=1 by TV %v", kname(k), k.Eta, batch, tv)
			}
		}
	}
}

// collisionBound is P(some two of L positions unmask in the same step) for
// the linear schedule on a linear T-step grid, where each position's
// unmasking step is uniform on 1..T: 1 − Π_{j<L} (1 − j/T).
func collisionBound(L, T int) float64 {
	p := 1.0
	for j := range L {
		p *= math.Max(0, 1-float64(j)/float64(T))
	}
	return 1 - p
}

// TestChainMarginalConverges (item 5): with the exact posterior denoiser the
// T-step chain marginal approaches pdata as T grows. Why it is wrong for
// small T: positions that unmask in the same step are drawn independently
// from their posterior marginals, so correlations between them are lost
// (T = 1 gives exactly the product of marginals). Conversely the unmasking
// pattern has the same law as under the exact reverse process, and on the
// event that no two positions unmask in the same step every draw is from an
// exact conditional, so TV(chain, pdata) ≤ P(collision) =
// 1 − (1 − 1/T)(1 − 2/T) for L = 3 (0.0233 at T = 128); this theorem is the
// threshold used.
func TestChainMarginalConverges(t *testing.T) {
	p := toyPMF()
	d := toyPosterior(t)
	k := Kernel{Schedule: Linear()}
	prev := math.Inf(1)
	for _, T := range []int{1, 2, 4, 8, 32, 128} {
		g, _ := NewGrid(T, "linear")
		m, err := ExactMarginal(k, d, g, 8)
		if err != nil {
			t.Fatal(err)
		}
		tv, _ := TotalVariation(m, p)
		bound := collisionBound(toyL, T)
		t.Logf("T=%3d TV(chain, pdata) = %.5f (collision bound %.4f)", T, tv, bound)
		if !(tv < prev) {
			t.Errorf("T=%d: TV %v not below the previous %v", T, tv, prev)
		}
		if tv > bound+1e-12 {
			t.Errorf("T=%d: TV %v exceeds the collision bound %v", T, tv, bound)
		}
		if T <= 2 && tv < 0.3 {
			t.Errorf("T=%d: TV %v should be clearly positive (correlations lost)", T, tv)
		}
		prev = tv
	}
	if tv1, _ := TotalVariation(productOfMarginals(p, toyL, toyV), p); tv1 < 0.5 {
		t.Errorf("toy pmf is not strongly correlated: TV(product of marginals, pdata) = %v", tv1)
	}
}

// TestExactMarginalLarge: L = 2, V = 64, T = 100 (4225 states) with the
// exact posterior denoiser of a random pmf runs in a few seconds and obeys
// the collision bound 1 − (1 − 1/T) = 0.01 (L = 2, linear grid).
func TestExactMarginalLarge(t *testing.T) {
	const L, V, T = 2, 64, 100
	rng := rand.New(rand.NewPCG(9, 0))
	p := make([]float64, V*V)
	sum := 0.0
	for i := range p {
		p[i] = rng.ExpFloat64()
		if i%V == (i/V*7)%V {
			p[i] += 40 // correlated diagonal-ish structure
		}
		sum += p[i]
	}
	for i := range p {
		p[i] /= sum
	}
	d, err := NewPosteriorDenoiser(p, L, V)
	if err != nil {
		t.Fatal(err)
	}
	g, _ := NewGrid(T, "linear")
	c := &batchChecker{Denoiser: d, t: t, want: 32}
	start := time.Now()
	m, err := ExactMarginal(Kernel{Schedule: Linear()}, c, g, 32)
	if err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	tv, _ := TotalVariation(m, p)
	t.Logf("L=2 V=64 T=100: %v, %d denoiser calls, TV(chain, pdata) = %.5f", el, c.calls, tv)
	if el > 20*time.Second {
		t.Errorf("too slow: %v", el)
	}
	if b := collisionBound(L, T); tv > b {
		t.Errorf("TV %v exceeds collision bound %v", tv, b)
	}
}

// alphaFloor is a schedule with α(0) < 1, so masks can survive to t = 0.
type alphaFloor struct{}

func (alphaFloor) Alpha(t float64) float64 { return 0.9 * (1 - t) }
func (alphaFloor) Rate(t float64) float64  { return 0.9 / (0.1 + 0.9*t) }
func (alphaFloor) Name() string            { return "floor" }

func TestExactMarginalErrors(t *testing.T) {
	g, _ := NewGrid(3, "linear")
	d := toyPosterior(t)
	if _, err := ExactMarginal(Kernel{Schedule: alphaFloor{}}, d, g, 4); err == nil {
		t.Error("alpha(0) < 1: no error about mass left on masked states")
	}
	if _, err := ExactMarginal(Kernel{Schedule: Linear()}, d, g, 0); err == nil {
		t.Error("batch 0: no error")
	}
	if _, err := ExactMarginal(Kernel{Schedule: Linear()}, d, Grid{0, 0.5}, 4); err == nil {
		t.Error("bad grid: no error")
	}
	if _, err := ExactMarginal(Kernel{Schedule: Linear()}, nil, g, 4); err == nil {
		t.Error("nil denoiser: no error")
	}
	if _, err := ExactMarginal(Kernel{Schedule: Linear()}, uniformDenoiser{L: 30, V: 3}, g, 4); err == nil {
		t.Error("huge state space: no error")
	}
	sparse, _ := NewPosteriorDenoiser(toySparsePMF(), toyL, toyV)
	if _, err := ExactMarginal(Kernel{Schedule: Linear()}, sparse, g, 4); err == nil {
		t.Error("denoiser error (inconsistent state) not propagated")
	}
}

// TestExactMarginalBruteForce recomputes the chain marginal with a dense
// (V+1)^L × (V+1)^L transition matrix built from Kernel.LogProb (one
// denoiser call per state, no batching, no support enumeration) for
// L = 2, V = 3, T = 4, and compares with ExactMarginal for plain MDLM and
// ReMDM kernels (where fully unmasked states remask).
func TestExactMarginalBruteForce(t *testing.T) {
	const L, V, T = 2, 3, 4
	M := V + 1
	S := M * M
	d := testutil.HashDenoiser{L: L, V: V, Scale: 3}
	for _, kind := range []string{"linear", "cosine"} {
		g, _ := NewGrid(T, kind)
		for _, k := range []Kernel{
			{Schedule: Linear()},
			{Schedule: Cosine(), Eta: 0.6, Remask: RemaskRescale},
			{Schedule: Linear(), Eta: 0.8, Remask: RemaskMaxCap},
		} {
			got, err := ExactMarginal(k, d, g, 3)
			if err != nil {
				t.Fatal(err)
			}
			p := make([]float64, S)
			p[S-1] = 1
			logits := make([]float64, L*V)
			for i := T; i >= 1; i-- {
				q := make([]float64, S)
				for x := range S {
					if p[x] == 0 {
						continue
					}
					xt := []int{x / M, x % M}
					if err := d.X0Logits(xt, []float64{g[i]}, logits); err != nil {
						t.Fatal(err)
					}
					for y := range S {
						lp, err := k.LogProb(xt, []int{y / M, y % M}, logits, g[i], g[i-1])
						if err != nil {
							t.Fatal(err)
						}
						q[y] += p[x] * math.Exp(lp)
					}
				}
				p = q
			}
			for x := range S {
				a, b := x/M, x%M
				if a == V || b == V {
					if p[x] != 0 {
						t.Errorf("brute force leaves mass %v on masked state %d", p[x], x)
					}
					continue
				}
				if diff := math.Abs(p[x] - got[Index([]int{a, b}, V)]); diff > 1e-14 {
					t.Errorf("%s-grid %s eta=%v: state %v: ExactMarginal %v, brute force %v",
						kind, kname(k), k.Eta, []int{a, b}, got[Index([]int{a, b}, V)], p[x])
				}
			}
		}
	}
}
