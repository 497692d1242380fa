package gmm

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ddsmc/ddsmc/experiments/task"
)

func mustGMM(t *testing.T, name string) *GMM {
	t.Helper()
	g, err := NewGMM(name)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestNewGMMRejectsUnknownNameAndBuildsPaperMixtures(t *testing.T) {
	if _, err := NewGMM("gmm3"); err == nil || !strings.Contains(err.Error(), `"gmm3"`) {
		t.Fatalf("NewGMM(gmm3) error = %v, want one naming \"gmm3\"", err)
	}
	for name, k := range map[string]int{"gmm1": 9, "gmm2": 8} {
		g := mustGMM(t, name)
		if len(g.Means) != k || g.Bins != 64 || g.Lo != -6 || g.Hi != 6 || math.Abs(g.Std*g.Std-0.3) > 1e-15 {
			t.Errorf("%s = %+v, want %d components, 64 bins over [-6,6], variance 0.3", name, g, k)
		}
		for _, m := range g.Means {
			norm := math.Hypot(m[0], m[1])
			if name == "gmm2" && math.Abs(norm-4) > 1e-14 {
				t.Errorf("gmm2 mean %v has radius %v, want 4", m, norm)
			}
		}
	}
}

func TestDiscretiseBinEdgesAndClamping(t *testing.T) {
	g := mustGMM(t, "gmm1")
	w := 12.0 / 64
	cases := []struct {
		x    float64
		want int
	}{
		{-6, 0}, {-6 + w, 1}, {-6 + w - 1e-12, 0}, {0, 32}, {-1e-12, 31},
		{6 - 1e-12, 63}, {6, 63}, {-100, 0}, {100, 63},
		{math.Inf(-1), 0}, {math.Inf(1), 63}, {math.NaN(), 0},
	}
	for _, c := range cases {
		if got := g.Discretise([2]float64{c.x, c.x}); got != [2]int{c.want, c.want} {
			t.Errorf("Discretise(%v) = %v, want bin %d in both coordinates", c.x, got, c.want)
		}
	}
	// Every bin's left edge maps to that bin.
	for k := range 64 {
		if got := g.Discretise([2]float64{-6 + float64(k)*w, 0}); got[0] != k {
			t.Errorf("left edge of bin %d maps to bin %d", k, got[0])
		}
	}
}

func TestPMFSumsToOne(t *testing.T) {
	for _, name := range []string{"gmm1", "gmm2"} {
		p := mustGMM(t, name).PMF()
		if len(p) != 64*64 {
			t.Fatalf("%s: len(PMF) = %d, want 4096", name, len(p))
		}
		var s float64
		for i, v := range p {
			if !(v >= 0) {
				t.Fatalf("%s: pmf[%d] = %v < 0", name, i, v)
			}
			s += v
		}
		// 4096 additions of values ≤ 1 carry at most 4096·2⁻⁵³ ≈ 5e-13 of rounding.
		if math.Abs(s-1) > 1e-12 {
			t.Errorf("%s: PMF sums to %.17g, want 1", name, s)
		}
	}
}

// TestPMFMatchesEmpiricalHistogram compares the exact pmf with the histogram
// of n discretised samples in total variation. With K cells,
// E[TV] ≤ ½ Σ_i sqrt(p_i(1−p_i)/n) ≤ ½ sqrt(K/n) (Jensen, then
// Cauchy–Schwarz), and TV moves by at most 1/n when one sample changes, so by
// McDiarmid P(TV > E[TV] + t) ≤ exp(−2nt²); t = sqrt(ln(1/δ)/(2n)) gives a
// bound that fails with probability below δ = 1e-6 if PMF is right.
func TestPMFMatchesEmpiricalHistogram(t *testing.T) {
	const n, delta = 1_000_000, 1e-6
	for seed, name := range []string{"gmm1", "gmm2"} {
		g := mustGMM(t, name)
		d, err := g.Sample(rand.New(rand.NewPCG(uint64(seed)+1, 7)), n)
		if err != nil {
			t.Fatal(err)
		}
		p := g.PMF()
		hist := make([]float64, len(p))
		for i := range d.Len() {
			r := d.Row(i)
			hist[r[0]*64+r[1]]++
		}
		var tv, sharp float64
		for i := range p {
			tv += math.Abs(hist[i]/n - p[i])
			sharp += math.Sqrt(p[i] * (1 - p[i]) / n)
		}
		tv /= 2
		mcd := math.Sqrt(math.Log(1/delta) / (2 * n))
		loose := 0.5*math.Sqrt(float64(len(p))/n) + mcd
		tight := 0.5*sharp + mcd
		t.Logf("%s: TV(empirical, PMF) = %.5f; bound ½Σ√(p(1−p)/n)+t = %.5f; ½√(K/n)+t = %.5f", name, tv, tight, loose)
		if tv > tight {
			t.Errorf("%s: TV = %.5f exceeds the δ=1e-6 bound %.5f", name, tv, tight)
		}
	}
}

// TestPMFSymmetries checks the symmetries that hold exactly: both mean sets
// are invariant under x0 ↔ x1 and under x_d ↔ −x_d, and the bin edges
// −6 + k·12/64 are symmetric about 0 (x = 0 is the edge between bins 31 and
// 32), so bin k of −x is bin 63−k of x. Only floating-point rounding
// separates the mirrored cells; masses are ≤ 1, so 1e-15 is generous.
func TestPMFSymmetries(t *testing.T) {
	for _, name := range []string{"gmm1", "gmm2"} {
		p := mustGMM(t, name).PMF()
		at := func(i, j int) float64 { return p[i*64+j] }
		for i := range 64 {
			for j := range 64 {
				v := at(i, j)
				for _, m := range [][3]int{{j, i}, {63 - i, j}, {i, 63 - j}} {
					if math.Abs(v-at(m[0], m[1])) > 1e-15 {
						t.Fatalf("%s: pmf(%d,%d) = %v but its mirror pmf(%d,%d) = %v", name, i, j, v, m[0], m[1], at(m[0], m[1]))
					}
				}
			}
		}
	}
}

// TestPMFMoments checks the mean locations and spread through the second
// moment of bin centres: the continuous mixture has E[x0²] = 0.3 + mean of
// μ0² (32/3 for gmm1, 16·½ = 8 for gmm2); binning adds Sheppard's h²/12 with
// h = 12/64, and the clamped tails (≈ 1e-4 of mass within 0.2 of the edge)
// shift it by ≲ 1e-4. A wrong std (e.g. 0.3 instead of √0.3) moves it by
// 0.21, a misplaced lattice by far more.
func TestPMFMoments(t *testing.T) {
	h := 12.0 / 64
	for name, want := range map[string]float64{"gmm1": 0.3 + 32.0/3, "gmm2": 0.3 + 8} {
		p := mustGMM(t, name).PMF()
		var m0, m1, s0, s1 float64
		for i := range 64 {
			for j := range 64 {
				x, y := -6+(float64(i)+0.5)*h, -6+(float64(j)+0.5)*h
				m0 += p[i*64+j] * x
				m1 += p[i*64+j] * y
				s0 += p[i*64+j] * x * x
				s1 += p[i*64+j] * y * y
			}
		}
		want += h * h / 12
		if math.Abs(m0) > 1e-12 || math.Abs(m1) > 1e-12 {
			t.Errorf("%s: mean (%v, %v), want (0, 0)", name, m0, m1)
		}
		if math.Abs(s0-want) > 1e-3 || math.Abs(s1-want) > 1e-3 {
			t.Errorf("%s: E[x²] = (%.5f, %.5f), want %.5f", name, s0, s1, want)
		}
	}
	// Mode check: the cell under each gmm1 mean (−4 → bin ⌊2/12·64⌋ = 10,
	// 4 → bin 53) holds about 1/9 · (per-axis bin mass)².
	g := mustGMM(t, "gmm1")
	p := g.PMF()
	one := normalInterval((-6+10*h+4)/g.Std, (-6+11*h+4)/g.Std)
	if got, want := p[10*64+53], one*one/9; math.Abs(got-want) > 1e-3*want {
		t.Errorf("gmm1: pmf(10,53) = %v, want ≈ %v", got, want)
	}
}

func TestRewardHandComputedValues(t *testing.T) {
	g1, g2 := mustGMM(t, "gmm1"), mustGMM(t, "gmm2")
	cases := []struct {
		g    *GMM
		x    []int
		want float64
	}{
		// u = 0 → z = −6; u = 1 → z = 6; x = 21 → z = −2; x = 42 → z = 2.
		{g1, []int{0, 0}, -36.0/100 - 36},
		{g1, []int{63, 0}, -36.0/100 - 36},
		{g1, []int{21, 42}, -4.0/100 - 4},
		{g1, []int{42, 21}, -4.0/100 - 4},
		{g2, []int{0, 0}, -36 - 49.0/10},
		{g2, []int{63, 63}, -36 - 25.0/10},
		{g2, []int{21, 42}, -4 - 1.0/10},
		{g2, []int{42, 21}, -4 - 9.0/10},
	}
	for _, c := range cases {
		if got := c.g.Reward(c.x); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("%s.Reward(%v) = %v, want %v", c.g.Name, c.x, got, c.want)
		}
	}
	for _, bad := range [][]int{{1}, {1, 2, 3}, {64, 0}, {0, -1}} {
		if got := g1.Reward(bad); !math.IsNaN(got) {
			t.Errorf("Reward(%v) = %v, want NaN for a non-grid point", bad, got)
		}
	}
}

func TestRewardTableAndTermsAgreeWithReward(t *testing.T) {
	for _, name := range []string{"gmm1", "gmm2"} {
		g := mustGMM(t, name)
		tab := g.RewardTable()
		R, err := g.RewardTerms()
		if err != nil {
			t.Fatal(err)
		}
		if len(tab) != 4096 {
			t.Fatalf("len(RewardTable) = %d", len(tab))
		}
		for i := range 64 {
			for j := range 64 {
				r := g.Reward([]int{i, j})
				if tab[i*64+j] != r || math.Abs(R[0][i]+R[1][j]-r) > 1e-12 {
					t.Fatalf("%s at (%d,%d): Reward %v, table %v, terms %v", name, i, j, r, tab[i*64+j], R[0][i]+R[1][j])
				}
			}
		}
	}
	if _, err := (&GMM{Name: "other", Bins: 64}).RewardTerms(); err == nil {
		t.Error("RewardTerms accepted a GMM with no defined reward")
	}
}

// TestTiltedTargetMeanRewardMatchesPaper computes the exact mean reward under
// π ∝ p_data·exp(r) (α = 1) and compares it with the paper's "Target"
// values −0.30 (GMM-1) and −1.35 (GMM-2). Those came from importance-
// resampling 2000 of 200,000 data samples, so their Monte Carlo standard
// error is about sd_π(r)·sqrt(1/2000 + 1/ESS), ESS = 200000·(E_p w)²/E_p w²
// the effective size of the weighted pool; we allow 4 standard errors plus
// 0.005 for the paper's rounding to two decimals.
func TestTiltedTargetMeanRewardMatchesPaper(t *testing.T) {
	for name, paper := range map[string]float64{"gmm1": -0.30, "gmm2": -1.35} {
		g := mustGMM(t, name)
		q, err := g.TiltedPMF(1)
		if err != nil {
			t.Fatal(err)
		}
		p, r := g.PMF(), g.RewardTable()
		var sum, mean, m2, ew, ew2, dataMean float64
		for i := range q {
			sum += q[i]
			mean += q[i] * r[i]
			m2 += q[i] * r[i] * r[i]
			w := math.Exp(r[i])
			ew += p[i] * w
			ew2 += p[i] * w * w
			dataMean += p[i] * r[i]
		}
		// Direct computation Σ p·e^r·r / Σ p·e^r as a cross-check of TiltedPMF.
		var num float64
		for i := range p {
			num += p[i] * math.Exp(r[i]) * r[i]
		}
		direct := num / ew
		sd := math.Sqrt(m2 - mean*mean)
		ess := 200000 * ew * ew / ew2
		se := sd * math.Sqrt(1.0/2000+1/ess)
		tol := 4*se + 0.005
		t.Logf("%s: exact tilted mean reward %.5f (direct %.5f), sd %.4f, pool ESS %.0f, MC s.e. %.4f; paper %.2f (tol %.3f); data mean reward %.4f",
			name, mean, direct, sd, ess, se, paper, tol, dataMean)
		if math.Abs(sum-1) > 1e-12 || math.Abs(mean-direct) > 1e-12 {
			t.Errorf("%s: TiltedPMF sums to %v and gives mean %v, direct formula %v", name, sum, mean, direct)
		}
		if math.Abs(mean-paper) > tol {
			t.Errorf("%s: exact tilted mean reward %.4f, paper %.2f, tolerance %.3f", name, mean, paper, tol)
		}
	}
	g := mustGMM(t, "gmm1")
	for _, a := range []float64{0, -1, math.NaN(), math.Inf(1)} {
		if _, err := g.TiltedPMF(a); err == nil {
			t.Errorf("TiltedPMF(%v) accepted a bad temperature", a)
		}
	}
}

func TestSampleIsSeededAndValid(t *testing.T) {
	g := mustGMM(t, "gmm2")
	a, err := g.Sample(rand.New(rand.NewPCG(3, 4)), 500)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := g.Sample(rand.New(rand.NewPCG(3, 4)), 500)
	c, _ := g.Sample(rand.New(rand.NewPCG(5, 6)), 500)
	if a.L != 2 || a.V != 64 || a.Len() != 500 {
		t.Fatalf("Sample gave L=%d V=%d N=%d", a.L, a.V, a.Len())
	}
	if _, err := task.NewDataset(a.L, a.V, a.Tokens); err != nil {
		t.Errorf("Sample produced an invalid data set: %v", err)
	}
	same := func(x, y *task.Dataset) bool {
		for i := range x.Tokens {
			if x.Tokens[i] != y.Tokens[i] {
				return false
			}
		}
		return true
	}
	if !same(a, b) || same(a, c) {
		t.Error("Sample is not a deterministic function of the seed")
	}
	if _, err := g.Sample(rand.New(rand.NewPCG(1, 1)), 0); err == nil {
		t.Error("Sample(0) should refuse to build an empty data set")
	}
	if _, err := g.SampleContinuous(rand.New(rand.NewPCG(1, 1)), -1); err == nil {
		t.Error("SampleContinuous(-1) should fail")
	}
	if _, err := g.SampleContinuous(nil, 1); err == nil {
		t.Error("SampleContinuous(nil rng) should fail")
	}
}
