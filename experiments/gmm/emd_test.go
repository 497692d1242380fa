package gmm

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ddsmc/ddsmc/diffusion"
)

// emdRandPoints returns n points uniform on the side×side grid.
func emdRandPoints(rng *rand.Rand, n, side int) [][2]int {
	pts := make([][2]int, n)
	for i := range pts {
		pts[i] = [2]int{rng.IntN(side), rng.IntN(side)}
	}
	return pts
}

func emdDist(p, q [2]int) float64 {
	dx, dy := float64(p[0]-q[0]), float64(p[1]-q[1])
	return math.Sqrt(dx*dx + dy*dy)
}

// emdBruteForce returns min over all permutations σ of (1/n) Σ ||a_i − b_σ(i)||
// by enumerating every permutation (Heap's algorithm).
func emdBruteForce(a, b [][2]int) float64 {
	n := len(a)
	perm := make([]int, n)
	for i := range perm {
		perm[i] = i
	}
	best := math.Inf(1)
	eval := func() {
		s := 0.0
		for i, j := range perm {
			s += emdDist(a[i], b[j])
		}
		best = math.Min(best, s)
	}
	c := make([]int, n)
	eval()
	for i := 0; i < n; {
		if c[i] < i {
			if i%2 == 0 {
				perm[0], perm[i] = perm[i], perm[0]
			} else {
				perm[c[i]], perm[i] = perm[i], perm[c[i]]
			}
			eval()
			c[i]++
			i = 0
		} else {
			c[i] = 0
			i++
		}
	}
	return best / float64(n)
}

func mustEMD(t *testing.T, a, b [][2]int) float64 {
	t.Helper()
	d, err := EMD(a, b)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func emdShuffled(rng *rand.Rand, pts [][2]int) [][2]int {
	out := append([][2]int(nil), pts...)
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// checkEMDCertificate verifies that emdAssignment returns a permutation whose
// cost is the reported total and dual potentials that certify its
// optimality: u_i + v_j ≤ c_ij for all i, j and Σu + Σv = total, each within
// tol. By weak LP duality every permutation then costs at least
// Σu + Σv ≥ total − tol, so the matching is optimal to within tol.
func checkEMDCertificate(t *testing.T, a, b [][2]int, tol float64) float64 {
	t.Helper()
	total, match, u, v, err := emdAssignment(a, b)
	if err != nil {
		t.Fatal(err)
	}
	n := len(a)
	if len(match) != n || len(u) != n || len(v) != n {
		t.Fatalf("n = %d: got %d matches, %d row and %d column duals", n, len(match), len(u), len(v))
	}
	seen := make([]bool, n)
	cost := 0.0
	for i, j := range match {
		if j < 0 || j >= n || seen[j] {
			t.Fatalf("match %v is not a permutation of 0..%d", match, n-1)
		}
		seen[j] = true
		cost += emdDist(a[i], b[j])
	}
	if math.Abs(cost-total) > tol {
		t.Errorf("n = %d: matching costs %v, reported total %v", n, cost, total)
	}
	worst := math.Inf(-1)
	for i := range n {
		for j := range n {
			worst = math.Max(worst, u[i]+v[j]-emdDist(a[i], b[j]))
		}
	}
	if worst > tol {
		t.Errorf("n = %d: dual infeasible, max_ij u_i + v_j − c_ij = %v > %v", n, worst, tol)
	}
	dual := 0.0
	for i := range n {
		dual += u[i] + v[i]
	}
	if math.Abs(dual-total) > tol {
		t.Errorf("n = %d: duality gap Σu + Σv − total = %v − %v = %v, want |·| ≤ %v", n, dual, total, dual-total, tol)
	}
	if d := mustEMD(t, a, b); d != total/float64(n) {
		t.Errorf("n = %d: EMD = %v, want total/n = %v", n, d, total/float64(n))
	}
	return total
}

func TestEMDMatchesBruteForceSmall(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for c := range 400 {
		n := 1 + rng.IntN(7)
		side := 64
		if c%3 == 0 {
			side = 3 // many coincident points and ties
		}
		a, b := emdRandPoints(rng, n, side), emdRandPoints(rng, n, side)
		want := emdBruteForce(a, b)
		if got := mustEMD(t, a, b); math.Abs(got-want) > 1e-12 {
			t.Fatalf("case %d: EMD(%v, %v) = %v, brute force %v", c, a, b, got, want)
		}
		checkEMDCertificate(t, a, b, 1e-9)
	}
}

func TestEMDHandComputed(t *testing.T) {
	cases := []struct {
		a, b [][2]int
		want float64
	}{
		{[][2]int{{0, 0}}, [][2]int{{3, 4}}, 5},
		// Crossing the pairs would cost 2·√2 each; the straight pairing 1 each.
		{[][2]int{{0, 0}, {0, 2}}, [][2]int{{1, 2}, {1, 0}}, 1},
		// One point moves 10 units, the shared point stays: (0 + 10)/2.
		{[][2]int{{5, 5}, {0, 0}}, [][2]int{{0, 10}, {5, 5}}, 5},
	}
	for _, c := range cases {
		if got := mustEMD(t, c.a, c.b); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("EMD(%v, %v) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

func TestEMDSelfShuffledIsZeroAndSymmetric(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 2, 10, 50, 200} {
		a := emdRandPoints(rng, n, 64)
		if d := mustEMD(t, a, emdShuffled(rng, a)); d != 0 {
			t.Errorf("n = %d: EMD(a, shuffled a) = %v, want 0", n, d)
		}
		b := emdRandPoints(rng, n, 64)
		ab, ba := mustEMD(t, a, b), mustEMD(t, b, a)
		if math.Abs(ab-ba) > 1e-12*math.Max(1, ab) {
			t.Errorf("n = %d: EMD(a, b) = %v but EMD(b, a) = %v", n, ab, ba)
		}
		if ab <= 0 {
			t.Errorf("n = %d: EMD of two random sets = %v, want > 0", n, ab)
		}
	}
}

// Translating every point by t costs exactly n·||t|| under the identity
// matching, and no permutation does better: Σ ||a_i + t − a_σ(i)|| ≥
// ||Σ (a_i + t − a_σ(i))|| = n·||t||. So EMD(a, a + t) = ||t||.
func TestEMDTranslationIsShiftLength(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	shifts := [][2]int{{0, 0}, {1, 0}, {0, -1}, {3, 4}, {-5, 12}, {7, -2}, {-10, -10}, {1, 1}}
	for _, n := range []int{1, 5, 40, 150} {
		a := make([][2]int, n)
		for i := range a {
			a[i] = [2]int{10 + rng.IntN(44), 10 + rng.IntN(44)} // room to shift by ±10
		}
		for _, s := range shifts {
			b := make([][2]int, n)
			for i, p := range a {
				b[i] = [2]int{p[0] + s[0], p[1] + s[1]}
			}
			want := math.Sqrt(float64(s[0]*s[0] + s[1]*s[1]))
			got := mustEMD(t, a, emdShuffled(rng, b))
			if math.Abs(got-want) > 1e-12*math.Max(1, want) {
				t.Errorf("n = %d shift %v: EMD = %v, want %v", n, s, got, want)
			}
		}
	}
}

func TestEMDTriangleInequality(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const n = 30
	for c := range 200 {
		side := 64
		if c%2 == 0 {
			side = 8
		}
		a, b, d := emdRandPoints(rng, n, side), emdRandPoints(rng, n, side), emdRandPoints(rng, n, side)
		ab, bd, ad := mustEMD(t, a, b), mustEMD(t, b, d), mustEMD(t, a, d)
		if ad > ab+bd+1e-12 {
			t.Fatalf("case %d: EMD(a, c) = %v > EMD(a, b) + EMD(b, c) = %v + %v", c, ad, ab, bd)
		}
	}
}

// For n = 200 the optimum is certified by the LP dual returned alongside
// the matching (an exact check independent of how the solver got there);
// the value must also be no larger than any other matching tried.
func TestEMDDualCertificateLarge(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, side := range []int{64, 5} { // 5×5: massive ties and duplicates
		for rep := range 3 {
			a, b := emdRandPoints(rng, 200, side), emdRandPoints(rng, 200, side)
			total := checkEMDCertificate(t, a, b, 1e-9)
			// Sanity against explicit matchings: identity, random and greedy.
			perms := [][]int{make([]int, 200)}
			for i := range perms[0] {
				perms[0][i] = i
			}
			for range 20 {
				perms = append(perms, rng.Perm(200))
			}
			perms = append(perms, emdGreedy(a, b))
			for k, p := range perms {
				s := 0.0
				for i, j := range p {
					s += emdDist(a[i], b[j])
				}
				if s < total-1e-9 {
					t.Errorf("side %d rep %d: matching %d costs %v < optimal %v", side, rep, k, s, total)
				}
			}
		}
	}
	// The optimum of n = 200 points is strictly below the greedy matching
	// on a typical instance, so the solver is doing more than greedy.
	a, b := emdRandPoints(rng, 200, 64), emdRandPoints(rng, 200, 64)
	g := 0.0
	for i, j := range emdGreedy(a, b) {
		g += emdDist(a[i], b[j])
	}
	if opt := checkEMDCertificate(t, a, b, 1e-9); !(opt < g-1e-6) {
		t.Errorf("optimal total %v not below greedy %v", opt, g)
	}
}

// emdGreedy matches each a_i in turn to its nearest unused b_j.
func emdGreedy(a, b [][2]int) []int {
	used := make([]bool, len(b))
	p := make([]int, len(a))
	for i := range a {
		best, bj := math.Inf(1), -1
		for j := range b {
			if d := emdDist(a[i], b[j]); !used[j] && d < best {
				best, bj = d, j
			}
		}
		used[bj] = true
		p[i] = bj
	}
	return p
}

func TestEMDRejectsBadInput(t *testing.T) {
	ok := [][2]int{{0, 0}, {1, 1}}
	cases := []struct {
		name string
		a, b [][2]int
		want string
	}{
		{"different sizes", ok, [][2]int{{0, 0}}, "equal size"},
		{"first empty", nil, ok, "first point set is empty"},
		{"second empty", ok, [][2]int{}, "second point set is empty"},
		{"negative x", [][2]int{{0, 0}, {-1, 3}}, ok, "negative coordinate at point 1"},
		{"negative y", ok, [][2]int{{0, -2}, {1, 1}}, "second point set has negative"},
	}
	for _, c := range cases {
		d, err := EMD(c.a, c.b)
		if err == nil || !strings.HasPrefix(err.Error(), "gmm: ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: EMD = %v, %v; want error containing %q", c.name, d, err, c.want)
		}
	}
	big := make([][2]int, maxEMDPoints+1)
	if _, err := EMD(big, big); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("EMD of %d points: err = %v, want size-limit error", len(big), err)
	}
	if _, _, _, err := assignment([]float64{0, math.NaN(), 1, 2}, 2); err == nil {
		t.Error("assignment accepted a NaN cost")
	}
	if _, _, _, err := assignment([]float64{0, 1, 2}, 2); err == nil {
		t.Error("assignment accepted a 3-entry cost for n = 2")
	}
}

func TestDiversityCountsDistinctPoints(t *testing.T) {
	cases := []struct {
		pts  [][2]int
		want int
	}{
		{nil, 0},
		{[][2]int{{3, 4}}, 1},
		{[][2]int{{3, 4}, {3, 4}, {3, 4}}, 1},
		{[][2]int{{3, 4}, {4, 3}, {3, 4}, {0, 0}}, 3},
		{[][2]int{{0, 1}, {1, 0}, {1, 1}, {0, 0}}, 4},
	}
	for _, c := range cases {
		if got := Diversity(c.pts); got != c.want {
			t.Errorf("Diversity(%v) = %d, want %d", c.pts, got, c.want)
		}
	}
}

func TestPointsFromTokensRoundTrip(t *testing.T) {
	g := mustGMM(t, "gmm1")
	ds, err := g.Sample(rand.New(rand.NewPCG(11, 12)), 100)
	if err != nil {
		t.Fatal(err)
	}
	pts, err := PointsFromTokens(ds.Tokens)
	if err != nil {
		t.Fatal(err)
	}
	if len(pts) != ds.Len() {
		t.Fatalf("got %d points from %d rows", len(pts), ds.Len())
	}
	var back []int
	for i, p := range pts {
		if r := ds.Row(i); p != [2]int{r[0], r[1]} {
			t.Fatalf("point %d = %v, row %v", i, p, r)
		}
		back = append(back, p[0], p[1])
	}
	for i := range back {
		if back[i] != ds.Tokens[i] {
			t.Fatalf("round trip differs at token %d: %d vs %d", i, back[i], ds.Tokens[i])
		}
	}
	for _, c := range []struct {
		x    []int
		want string
	}{
		{[]int{1, 2, 3}, "odd length 3"},
		{nil, "no tokens"},
		{[]int{1, 2, 3, -1}, "point 1"},
	} {
		if _, err := PointsFromTokens(c.x); err == nil || !strings.HasPrefix(err.Error(), "gmm: ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("PointsFromTokens(%v) error = %v, want one containing %q", c.x, err, c.want)
		}
	}
}

func TestSamplePMFMatchesGMMPMF(t *testing.T) {
	g := mustGMM(t, "gmm2")
	pmf := g.PMF()
	const n = 100000
	pts, err := SamplePMF(rand.New(rand.NewPCG(13, 14)), pmf, 64, 64, n)
	if err != nil {
		t.Fatal(err)
	}
	tokens := make([]int, 0, 2*n)
	for _, p := range pts {
		tokens = append(tokens, p[0], p[1])
	}
	// EmpiricalPMF indexes by diffusion.Index, so this also checks that
	// SamplePMF reads the pmf in that order.
	emp, err := diffusion.EmpiricalPMF(tokens, 2, 64)
	if err != nil {
		t.Fatal(err)
	}
	tv, _ := diffusion.TotalVariation(emp, pmf)
	if bound := diffusion.TVBound(len(pmf), n, 1e-6); !(tv < bound) {
		t.Errorf("TV(empirical, pmf) = %v, want < %v", tv, bound)
	}
	// A tilted, highly non-uniform target as well.
	tilt, err := g.TiltedPMF(1)
	if err != nil {
		t.Fatal(err)
	}
	pts, err = SamplePMF(rand.New(rand.NewPCG(15, 16)), tilt, 64, 64, n)
	if err != nil {
		t.Fatal(err)
	}
	emp = make([]float64, len(tilt))
	for _, p := range pts {
		emp[diffusion.Index(p[:], 64)] += 1.0 / n
	}
	tv, _ = diffusion.TotalVariation(emp, tilt)
	if bound := diffusion.TVBound(len(tilt), n, 1e-6); !(tv < bound) {
		t.Errorf("tilted: TV(empirical, pmf) = %v, want < %v", tv, bound)
	}
}

// A non-square grid with zero cells (including the first and last), an
// unnormalised total and a tiny positive mass next to zeros: frequencies
// match, zero-mass cells never appear, and (x, y) is read from index x·h + y.
func TestSamplePMFSparseNonSquare(t *testing.T) {
	const w, h, n = 3, 5, 100000
	pmf := make([]float64, w*h)
	pmf[1*h+2] = 6    // (1, 2)
	pmf[0*h+3] = 3    // (0, 3)
	pmf[2*h+0] = 1    // (2, 0)
	pmf[2*h+3] = 1e-9 // (2, 3), tiny but allowed
	var sum float64
	for _, p := range pmf {
		sum += p
	}
	pts, err := SamplePMF(rand.New(rand.NewPCG(17, 18)), pmf, w, h, n)
	if err != nil {
		t.Fatal(err)
	}
	count := make([]float64, w*h)
	for _, p := range pts {
		if p[0] < 0 || p[0] >= w || p[1] < 0 || p[1] >= h {
			t.Fatalf("point %v outside the %d×%d grid", p, w, h)
		}
		i := p[0]*h + p[1]
		if pmf[i] == 0 {
			t.Fatalf("drew zero-mass cell %v", p)
		}
		count[i]++
	}
	var tv float64
	for i := range pmf {
		tv += math.Abs(count[i]/n-pmf[i]/sum) / 2
	}
	if bound := diffusion.TVBound(w*h, n, 1e-6); !(tv < bound) {
		t.Errorf("TV = %v, want < %v", tv, bound)
	}
	// One-hot pmfs pin down the index order exactly.
	for x := range w {
		for y := range h {
			one := make([]float64, w*h)
			one[x*h+y] = 0.25
			got, err := SamplePMF(rand.New(rand.NewPCG(uint64(x), uint64(y))), one, w, h, 50)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range got {
				if p != [2]int{x, y} {
					t.Fatalf("one-hot at index %d drew %v, want (%d, %d)", x*h+y, p, x, y)
				}
			}
		}
	}
}

func TestSamplePMFIsSeeded(t *testing.T) {
	pmf := mustGMM(t, "gmm1").PMF()
	a, err1 := SamplePMF(rand.New(rand.NewPCG(19, 20)), pmf, 64, 64, 1000)
	b, err2 := SamplePMF(rand.New(rand.NewPCG(19, 20)), pmf, 64, 64, 1000)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, draw %d differs: %v vs %v", i, a[i], b[i])
		}
	}
}

func TestSamplePMFRejectsBadInput(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	good := []float64{0.5, 0.5, 0, 0}
	with := func(i int, v float64) []float64 {
		p := append([]float64(nil), good...)
		p[i] = v
		return p
	}
	cases := []struct {
		name    string
		rng     *rand.Rand
		pmf     []float64
		w, h, n int
		want    string
	}{
		{"nil rng", nil, good, 2, 2, 1, "random number generator"},
		{"NaN", rng, with(2, math.NaN()), 2, 2, 1, "pmf[2] is NaN"},
		{"negative", rng, with(1, -0.1), 2, 2, 1, "pmf[1] = -0.1 is negative"},
		{"+Inf", rng, with(3, math.Inf(1)), 2, 2, 1, "pmf[3] is +Inf"},
		{"all zero", rng, make([]float64, 4), 2, 2, 1, "all zero"},
		{"overflowing sum", rng, []float64{math.MaxFloat64, math.MaxFloat64, 0, 0}, 2, 2, 1, "overflows"},
		{"wrong length", rng, good, 2, 3, 1, "length 4, want 2×3"},
		{"zero width", rng, good, 0, 4, 1, "0×4"},
		{"negative height", rng, good, 4, -1, 1, "4×-1"},
		{"n = 0", rng, good, 2, 2, 0, "cannot draw 0 points"},
		{"n < 0", rng, good, 2, 2, -3, "cannot draw -3 points"},
		{"huge n", rng, good, 2, 2, math.MaxInt, "cannot draw"},
		{"overflowing grid", rng, good, math.MaxInt/2 + 1, 3, 1, "pmf has length 4"},
	}
	for _, c := range cases {
		pts, err := SamplePMF(c.rng, c.pmf, c.w, c.h, c.n)
		if err == nil || !strings.HasPrefix(err.Error(), "gmm: ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: SamplePMF = %d points, %v; want error containing %q", c.name, len(pts), err, c.want)
		}
	}
}

func BenchmarkEMD500(b *testing.B) {
	rng := rand.New(rand.NewPCG(23, 24))
	x, y := emdRandPoints(rng, 500, 64), emdRandPoints(rng, 500, 64)
	for b.Loop() {
		if _, err := EMD(x, y); err != nil {
			b.Fatal(err)
		}
	}
}
