package gmm

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
)

// maxEMDPoints bounds the set size EMD accepts: the solver stores the n×n
// cost matrix (8·n² bytes, 800 MB at the bound) and runs in O(n³) time, so
// larger inputs are refused with an error instead of exhausting memory.
const maxEMDPoints = 10000

// maxSamplePoints bounds the number of draws SamplePMF makes in one call
// (16 bytes per point, 1 GiB at the bound), so that an absurd n is an error
// rather than a failed allocation.
const maxSamplePoints = 1 << 26

// EMD returns the exact earth mover's (1-Wasserstein) distance between two
// equal-size point sets on the grid, with Euclidean ground distance in grid
// units:
//
//	EMD(a, b) = min over permutations σ of (1/n) Σ_i ||a_i − b_σ(i)||₂.
//
// With equal sizes and uniform weights 1/n the optimal transport plan can be
// taken to be a permutation (Birkhoff–von Neumann), so this is the
// optimal-transport distance between the two empirical measures. The
// assignment problem is solved exactly in float64 by the shortest
// augmenting path (Hungarian / Jonker–Volgenant) method in O(n³) time and
// O(n²) memory; n = 500 takes a few tens of milliseconds.
//
// It returns an error if the sets are empty, differ in size, exceed 10000
// points, or contain a negative coordinate.
func EMD(a, b [][2]int) (float64, error) {
	total, _, _, _, err := emdAssignment(a, b)
	if err != nil {
		return 0, err
	}
	return total / float64(len(a)), nil
}

// emdAssignment validates a and b, solves the assignment problem for the
// cost c_ij = ||a_i − b_j||₂ and returns the optimal total cost
// Σ_i c_{i,match[i]} (not divided by n), the optimal permutation (a_i is
// matched with b_match[i]) and the dual potentials u (rows, i.e. a) and
// v (columns, i.e. b). Up to rounding the duals are feasible,
// u_i + v_j ≤ c_ij for all i, j, and tight on the matching, so
// Σu + Σv = total: a certificate that the matching is optimal (weak LP
// duality bounds every permutation's cost below by Σu + Σv).
func emdAssignment(a, b [][2]int) (total float64, match []int, u, v []float64, err error) {
	if err = checkPoints("first", a); err != nil {
		return 0, nil, nil, nil, err
	}
	if err = checkPoints("second", b); err != nil {
		return 0, nil, nil, nil, err
	}
	n := len(a)
	if len(b) != n {
		return 0, nil, nil, nil, fmt.Errorf("gmm: EMD needs point sets of equal size, got %d and %d", len(a), len(b))
	}
	if n > maxEMDPoints {
		return 0, nil, nil, nil, fmt.Errorf("gmm: EMD of %d points exceeds the limit of %d", n, maxEMDPoints)
	}
	cost := make([]float64, n*n)
	for i, p := range a {
		row := cost[i*n : (i+1)*n]
		for j, q := range b {
			dx, dy := float64(p[0]-q[0]), float64(p[1]-q[1])
			row[j] = math.Sqrt(dx*dx + dy*dy)
		}
	}
	match, u, v, err = assignment(cost, n)
	if err != nil {
		return 0, nil, nil, nil, err
	}
	for i, j := range match {
		total += cost[i*n+j]
	}
	return total, match, u, v, nil
}

// checkPoints rejects an empty point set or one with a negative coordinate;
// which names the set in the error.
func checkPoints(which string, pts [][2]int) error {
	if len(pts) == 0 {
		return fmt.Errorf("gmm: EMD %s point set is empty", which)
	}
	for i, p := range pts {
		if p[0] < 0 || p[1] < 0 {
			return fmt.Errorf("gmm: EMD %s point set has negative coordinate at point %d %v", which, i, p)
		}
	}
	return nil
}

// assignment solves the n×n linear assignment problem
// min over permutations σ of Σ_i cost[i·n + σ(i)] for a finite cost matrix
// (row-major) by the shortest augmenting path method with potentials
// (the Hungarian algorithm in Jonker–Volgenant form): rows are inserted one
// at a time and each is connected to a free column by a Dijkstra search on
// the reduced costs c_ij − u_i − v_j, which the potential updates keep
// non-negative. It returns match (row i ↦ column match[i]) and the final
// potentials u (rows) and v (columns), which form an optimal dual solution.
// It runs in O(n³) time.
func assignment(cost []float64, n int) (match []int, u, v []float64, err error) {
	if n < 1 || len(cost) != n*n {
		return nil, nil, nil, fmt.Errorf("gmm: assignment needs an n×n cost matrix with n ≥ 1, got %d entries for n = %d", len(cost), n)
	}
	for k, c := range cost {
		if math.IsNaN(c) || math.IsInf(c, 0) {
			return nil, nil, nil, fmt.Errorf("gmm: assignment cost %d is %v, want finite", k, c)
		}
	}
	// Internally 1-based: column 0 is a virtual column holding the row
	// being inserted, so that the search starts from it.
	U := make([]float64, n+1)
	V := make([]float64, n+1)
	p := make([]int, n+1)   // p[j] = row matched to column j, 0 if none
	way := make([]int, n+1) // way[j] = previous column on the shortest path to j
	minv := make([]float64, n+1)
	used := make([]bool, n+1)
	inf := math.Inf(1)
	for i := 1; i <= n; i++ {
		p[0] = i
		j0 := 0
		for j := range minv {
			minv[j] = inf
			used[j] = false
		}
		for {
			used[j0] = true
			i0 := p[j0]
			row := cost[(i0-1)*n : i0*n]
			ui0 := U[i0]
			delta, j1 := inf, 0
			for j := 1; j <= n; j++ {
				if used[j] {
					continue
				}
				if cur := row[j-1] - ui0 - V[j]; cur < minv[j] {
					minv[j] = cur
					way[j] = j0
				}
				if minv[j] < delta {
					delta = minv[j]
					j1 = j
				}
			}
			if j1 == 0 { // unreachable for finite costs; guards an endless loop
				return nil, nil, nil, errors.New("gmm: assignment found no augmenting path")
			}
			for j := 0; j <= n; j++ {
				if used[j] {
					U[p[j]] += delta
					V[j] -= delta
				} else {
					minv[j] -= delta
				}
			}
			j0 = j1
			if p[j0] == 0 {
				break
			}
		}
		for j0 != 0 { // augment along the path back to the virtual column
			j1 := way[j0]
			p[j0] = p[j1]
			j0 = j1
		}
	}
	match = make([]int, n)
	for j := 1; j <= n; j++ {
		match[p[j]-1] = j - 1
	}
	return match, U[1:], V[1:], nil
}

// Diversity returns the number of distinct points in pts (0 for an empty
// set).
func Diversity(pts [][2]int) int {
	seen := make(map[[2]int]struct{}, len(pts))
	for _, p := range pts {
		seen[p] = struct{}{}
	}
	return len(seen)
}

// SamplePMF draws n independent points from a pmf over the w×h grid. Cell
// (x, y), 0 ≤ x < w, 0 ≤ y < h, has index x·h + y in pmf: the first
// coordinate is the most significant, which for a square grid w = h = V is
// exactly diffusion.Index([]int{x, y}, V), the order of GMM.PMF and of
// diffusion.EmpiricalPMF for L = 2 tokens.
//
// The weights need not sum to 1 (they are normalised by their sum) but must
// be finite and non-negative with a positive, finite sum; a cell of zero
// weight is never drawn. Each draw inverts the cumulative sum at
// rng.Float64()·sum by binary search. It returns an error for a nil rng,
// w or h < 1, len(pmf) ≠ w·h, n < 1 (or n > 2²⁶) or invalid weights.
func SamplePMF(rng *rand.Rand, pmf []float64, w, h, n int) ([][2]int, error) {
	if rng == nil {
		return nil, errors.New("gmm: SamplePMF needs a random number generator, got nil")
	}
	if w < 1 || h < 1 {
		return nil, fmt.Errorf("gmm: SamplePMF grid is %d×%d, want both sides ≥ 1", w, h)
	}
	if w > math.MaxInt/h || len(pmf) != w*h {
		return nil, fmt.Errorf("gmm: SamplePMF pmf has length %d, want %d×%d", len(pmf), w, h)
	}
	if n < 1 || n > maxSamplePoints {
		return nil, fmt.Errorf("gmm: SamplePMF cannot draw %d points, want 1 ≤ n ≤ %d", n, maxSamplePoints)
	}
	cdf := make([]float64, len(pmf))
	sum := 0.0
	last := -1 // last cell with positive mass
	for i, p := range pmf {
		switch {
		case math.IsNaN(p):
			return nil, fmt.Errorf("gmm: SamplePMF pmf[%d] is NaN", i)
		case p < 0:
			return nil, fmt.Errorf("gmm: SamplePMF pmf[%d] = %v is negative", i, p)
		case math.IsInf(p, 1):
			return nil, fmt.Errorf("gmm: SamplePMF pmf[%d] is +Inf", i)
		case p > 0:
			last = i
		}
		sum += p
		cdf[i] = sum
	}
	if last < 0 {
		return nil, errors.New("gmm: SamplePMF pmf is all zero")
	}
	if math.IsInf(sum, 1) {
		return nil, errors.New("gmm: SamplePMF pmf sum overflows to +Inf")
	}
	out := make([][2]int, n)
	for k := range out {
		r := rng.Float64() * sum
		// The first cell whose cumulative sum exceeds r. A zero-mass cell
		// has the same cumulative sum as its predecessor (or 0 if it is
		// first, and r ≥ 0), so it is never the first to exceed r.
		i := sort.Search(len(cdf), func(i int) bool { return cdf[i] > r })
		if i == len(cdf) { // r rounded up to sum
			i = last
		}
		out[k] = [2]int{i / h, i % h}
	}
	return out, nil
}

// PointsFromTokens converts flat clean L = 2 token rows, x = (x0, y0, x1,
// y1, …) of length 2n as in Dataset.Tokens or sampler output, into n points
// (x_k, y_k). It returns an error if x is empty or of odd length or holds a
// negative token.
func PointsFromTokens(x []int) ([][2]int, error) {
	if len(x) == 0 {
		return nil, errors.New("gmm: PointsFromTokens got no tokens")
	}
	if len(x)%2 != 0 {
		return nil, fmt.Errorf("gmm: PointsFromTokens got odd length %d, want 2 tokens per point", len(x))
	}
	pts := make([][2]int, len(x)/2)
	for k := range pts {
		p := [2]int{x[2*k], x[2*k+1]}
		if p[0] < 0 || p[1] < 0 {
			return nil, fmt.Errorf("gmm: PointsFromTokens point %d %v has a negative token", k, p)
		}
		pts[k] = p
	}
	return pts, nil
}
