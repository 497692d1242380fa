package gmm

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/ddsmc/ddsmc/experiments/task"
)

// GMM is one of the synthetic 2-D grid mixtures of the paper, §6(a1): an
// equal-weight mixture of isotropic Gaussians N(Means[c], Std²·I) whose draws
// are discretised coordinate by coordinate into Bins equal-width bins over
// [Lo, Hi]. A data point is therefore a sequence of L = 2 tokens over a
// vocabulary of V = Bins.
//
// Bin k of a coordinate covers [Lo + k·w, Lo + (k+1)·w) with w = (Hi−Lo)/Bins,
// except that bin 0 also absorbs everything below Lo and bin Bins−1
// everything at or above Hi (the clamping of the reference code's
// np.digitize + np.clip). For the paper's settings the mass outside the box
// is tiny: a component centred 2 units from the edge with std √0.3 puts
// Φ(−2/√0.3) ≈ 1.3·10⁻⁴ of its mass past that edge.
type GMM struct {
	// Name is "gmm1" or "gmm2"; it selects the reward.
	Name string
	// Means holds the component means; the components have equal weight.
	Means [][2]float64
	// Std is the per-coordinate standard deviation of every component.
	Std float64
	// Bins is the number of bins per coordinate (the vocabulary size V).
	Bins int
	// Lo and Hi bound the discretisation box [Lo, Hi]² .
	Lo, Hi float64
}

// NewGMM returns the paper's GMM-1 ("gmm1": 9 components on the 3×3 lattice
// {−4, 0, 4}²) or GMM-2 ("gmm2": 8 components on the circle of radius 4 at
// angles k·45°), both with covariance 0.3·I, discretised into 64 bins per
// coordinate over [−6, 6].
func NewGMM(name string) (*GMM, error) {
	g := &GMM{Name: name, Std: math.Sqrt(0.3), Bins: 64, Lo: -6, Hi: 6}
	switch name {
	case "gmm1":
		for _, a := range []float64{-4, 0, 4} {
			for _, b := range []float64{-4, 0, 4} {
				g.Means = append(g.Means, [2]float64{a, b})
			}
		}
	case "gmm2":
		// Written out rather than computed with Sincos so that the means,
		// and hence the pmf, are exactly symmetric under x ↔ −x and x0 ↔ x1.
		d := 2 * math.Sqrt2 // 4·cos 45°
		g.Means = [][2]float64{
			{4, 0}, {d, d}, {0, 4}, {-d, d},
			{-4, 0}, {-d, -d}, {0, -4}, {d, -d},
		}
	default:
		return nil, fmt.Errorf("gmm: unknown GMM %q, want \"gmm1\" or \"gmm2\"", name)
	}
	return g, nil
}

// SampleContinuous draws n points from the continuous mixture (before
// discretisation): a component chosen uniformly, then mean + Std·N(0, I).
// It requires n ≥ 0 and a non-nil rng.
func (g *GMM) SampleContinuous(rng *rand.Rand, n int) ([][2]float64, error) {
	if rng == nil {
		return nil, errors.New("gmm: SampleContinuous needs a random number generator, got nil")
	}
	if n < 0 {
		return nil, fmt.Errorf("gmm: cannot draw %d samples, want n ≥ 0", n)
	}
	if len(g.Means) == 0 {
		return nil, fmt.Errorf("gmm: GMM %q has no components", g.Name)
	}
	out := make([][2]float64, n)
	for i := range out {
		m := g.Means[rng.IntN(len(g.Means))]
		out[i] = [2]float64{m[0] + g.Std*rng.NormFloat64(), m[1] + g.Std*rng.NormFloat64()}
	}
	return out, nil
}

// Discretise maps a continuous point to its grid cell: per coordinate,
// bin = ⌊(x − Lo)·Bins/(Hi − Lo)⌋ clamped to [0, Bins−1] (for the paper,
// ⌊(x+6)/12·64⌋). Points outside the box, including ±Inf, land in the border
// bins; NaN lands in bin 0.
func (g *GMM) Discretise(p [2]float64) [2]int {
	return [2]int{g.bin(p[0]), g.bin(p[1])}
}

func (g *GMM) bin(x float64) int {
	f := math.Floor((x - g.Lo) * float64(g.Bins) / (g.Hi - g.Lo))
	switch {
	case !(f >= 0): // also catches NaN
		return 0
	case f > float64(g.Bins-1):
		return g.Bins - 1
	}
	return int(f)
}

// Sample draws n discretised points as a Dataset with L = 2 and V = Bins.
// It requires n > 0 (a data set is never empty) and a non-nil rng.
func (g *GMM) Sample(rng *rand.Rand, n int) (*task.Dataset, error) {
	if n <= 0 {
		return nil, fmt.Errorf("gmm: cannot draw a data set of %d samples, want n > 0", n)
	}
	pts, err := g.SampleContinuous(rng, n)
	if err != nil {
		return nil, err
	}
	tokens := make([]int, 0, 2*n)
	for _, p := range pts {
		c := g.Discretise(p)
		tokens = append(tokens, c[0], c[1])
	}
	return &task.Dataset{L: 2, V: g.Bins, Tokens: tokens}, nil
}

// PMF returns the exact probability mass function of the discretised data
// over the Bins×Bins grid, indexed x0·Bins + x1. Because each component has
// diagonal covariance, cell (i, j) has mass
//
//	(1/K) Σ_c P_c,0(bin i) · P_c,1(bin j),
//
// where P_c,d(bin k) is the normal probability of bin k's interval for
// coordinate d of component c, with the border bins extended to ±∞ to match
// the clamping in Discretise. The result sums to 1 up to rounding.
func (g *GMM) PMF() []float64 {
	n := g.Bins
	pmf := make([]float64, n*n)
	w := 1 / float64(len(g.Means))
	for _, m := range g.Means {
		p0, p1 := g.binMasses(m[0]), g.binMasses(m[1])
		for i, a := range p0 {
			row := pmf[i*n : (i+1)*n]
			for j, b := range p1 {
				row[j] += w * a * b
			}
		}
	}
	return pmf
}

// binMasses returns P(bin k) for k = 0..Bins−1 of N(mu, Std²), the border
// bins extended to ±∞.
func (g *GMM) binMasses(mu float64) []float64 {
	out := make([]float64, g.Bins)
	width := (g.Hi - g.Lo) / float64(g.Bins)
	for k := range out {
		a, b := g.Lo+float64(k)*width, g.Lo+float64(k+1)*width
		if k == 0 {
			a = math.Inf(-1)
		}
		if k == g.Bins-1 {
			b = math.Inf(1)
		}
		out[k] = normalInterval((a-mu)/g.Std, (b-mu)/g.Std)
	}
	return out
}

// normalInterval returns P(a ≤ Z < b) for Z ~ N(0, 1). It works with the
// tail on the side of the interval away from 0, via erfc, so that small
// tail masses keep full relative precision and mirror-image intervals get
// mirror-image arithmetic.
func normalInterval(a, b float64) float64 {
	const s = math.Sqrt2
	switch {
	case a >= 0:
		return 0.5 * (math.Erfc(a/s) - math.Erfc(b/s))
	case b <= 0:
		return 0.5 * (math.Erfc(-b/s) - math.Erfc(-a/s))
	default:
		return 1 - 0.5*(math.Erfc(-a/s)+math.Erfc(b/s))
	}
}

// RewardTerms returns the reward split into per-position terms R[0], R[1]
// (each of length Bins) with r(x) = R[0][x0] + R[1][x1]; the paper's rewards
// are linear in the one-hot encoding, r = Σ_j ⟨onehot(x_j), R_j⟩. With
// u_j = x_j/(Bins−1) and z_j = (u_j − 0.5)·12:
//
//	gmm1: r(x) = −z0²/100 − z1²       (favours the middle row, x1 ≈ 32)
//	gmm2: r(x) = −z0² − (z1 − 1)²/10  (favours the middle column, x0 ≈ 32)
//
// It returns an error for a Name other than "gmm1" or "gmm2".
func (g *GMM) RewardTerms() ([2][]float64, error) {
	var R [2][]float64
	if g.Name != "gmm1" && g.Name != "gmm2" {
		return R, fmt.Errorf("gmm: no reward defined for GMM %q", g.Name)
	}
	for d := range R {
		R[d] = make([]float64, g.Bins)
		for k := range R[d] {
			R[d][k] = g.rewardTerm(d, k)
		}
	}
	return R, nil
}

// rewardTerm is the contribution of token k at position d to the reward.
func (g *GMM) rewardTerm(d, k int) float64 {
	z := (float64(k)/float64(g.Bins-1) - 0.5) * 12
	switch {
	case g.Name == "gmm1" && d == 0:
		return -z * z / 100
	case g.Name == "gmm1":
		return -z * z
	case d == 0: // gmm2
		return -z * z
	default:
		return -(z - 1) * (z - 1) / 10
	}
}

// Reward returns the paper's reward r(x) of a clean grid point x = (x0, x1)
// (see RewardTerms for the formulas). It returns NaN if x is not a clean
// grid point — len(x) ≠ 2 or a token outside [0, Bins), such as a MASK
// token — or if Name has no reward, so that misuse cannot pass silently.
func (g *GMM) Reward(x []int) float64 {
	if len(x) != 2 || (g.Name != "gmm1" && g.Name != "gmm2") {
		return math.NaN()
	}
	for _, t := range x {
		if t < 0 || t >= g.Bins {
			return math.NaN()
		}
	}
	return g.rewardTerm(0, x[0]) + g.rewardTerm(1, x[1])
}

// RewardTable returns r over the whole grid, indexed x0·Bins + x1 like PMF
// (all NaN if Name has no reward).
func (g *GMM) RewardTable() []float64 {
	n := g.Bins
	t := make([]float64, n*n)
	for i := range n {
		for j := range n {
			t[i*n+j] = g.Reward([]int{i, j})
		}
	}
	return t
}

// TiltedPMF returns the exact reward-tilted target of the paper,
// π(x) ∝ p_data(x)·exp(r(x)/alpha), over the grid (indexed like PMF). It is
// the distribution that the paper's "Target" column approximates by
// importance-resampling data samples. It requires alpha > 0 and a Name
// with a reward.
func (g *GMM) TiltedPMF(alpha float64) ([]float64, error) {
	if !(alpha > 0) || math.IsInf(alpha, 1) {
		return nil, fmt.Errorf("gmm: tilt temperature alpha = %v, want a finite alpha > 0", alpha)
	}
	if _, err := g.RewardTerms(); err != nil {
		return nil, err
	}
	p, r := g.PMF(), g.RewardTable()
	logw := make([]float64, len(p))
	maxw := math.Inf(-1)
	for i := range p {
		logw[i] = math.Log(p[i]) + r[i]/alpha
		maxw = math.Max(maxw, logw[i])
	}
	var z float64
	for i := range logw {
		logw[i] = math.Exp(logw[i] - maxw)
		z += logw[i]
	}
	for i := range logw {
		logw[i] /= z
	}
	return logw, nil
}
