package sgemm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// normals returns n standard normal float32s.
func normals(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

type gemmCase struct {
	tA, tB          blas.Transpose
	m, n, k         int
	padA, padB, pdC int
	alpha, beta     float32
}

// check runs one case with Implementation and gonum and compares both with
// a float64 reference, entry by entry, within a bound proportional to
// Σ|alpha·a·b| + |beta·c|.
func check(t *testing.T, rng *rand.Rand, tc gemmCase) {
	t.Helper()
	ar, ac := tc.m, tc.k
	if tc.tA != blas.NoTrans {
		ar, ac = tc.k, tc.m
	}
	br, bc := tc.k, tc.n
	if tc.tB != blas.NoTrans {
		br, bc = tc.n, tc.k
	}
	lda, ldb, ldc := ac+tc.padA, bc+tc.padB, tc.n+tc.pdC
	fill := func(n int) []float32 { return normals(rng, n) }
	a, b := fill((ar-1)*lda+ac), fill((br-1)*ldb+bc)
	c0 := fill((tc.m-1)*ldc + tc.n)
	if tc.beta == 0 {
		for i := range c0 {
			c0[i] = float32(math.NaN()) // beta = 0 must ignore C
		}
	}
	opA := func(i, p int) float64 {
		if tc.tA != blas.NoTrans {
			return float64(a[p*lda+i])
		}
		return float64(a[i*lda+p])
	}
	opB := func(p, j int) float64 {
		if tc.tB != blas.NoTrans {
			return float64(b[j*ldb+p])
		}
		return float64(b[p*ldb+j])
	}
	got := append([]float32(nil), c0...)
	ref := append([]float32(nil), c0...)
	Implementation{}.Sgemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, got, ldc)
	gonum.Implementation{}.Sgemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, tc.alpha, a, lda, b, ldb, tc.beta, ref, ldc)
	for i := 0; i < tc.m; i++ {
		for j := 0; j < tc.n; j++ {
			s, abs := 0.0, 0.0
			for p := 0; p < tc.k; p++ {
				s += opA(i, p) * opB(p, j)
				abs += math.Abs(opA(i, p) * opB(p, j))
			}
			want := float64(tc.alpha) * s
			abs *= math.Abs(float64(tc.alpha))
			if tc.beta != 0 {
				want += float64(tc.beta) * float64(c0[i*ldc+j])
				abs += math.Abs(float64(tc.beta) * float64(c0[i*ldc+j]))
			}
			tol := 4e-7*float64(tc.k+2)*abs + 1e-30
			for name, v := range map[string]float32{"sgemm": got[i*ldc+j], "gonum": ref[i*ldc+j]} {
				if d := math.Abs(float64(v) - want); !(d <= tol) {
					t.Fatalf("%+v: %s C[%d][%d] = %v, want %v (tol %g)", tc, name, i, j, v, want, tol)
				}
			}
		}
		for j := tc.n; j < ldc && i < tc.m-1; j++ { // padding untouched
			if g, w := got[i*ldc+j], c0[i*ldc+j]; g != w && !(math.IsNaN(float64(g)) && math.IsNaN(float64(w))) {
				t.Fatalf("%+v: padding C[%d][%d] changed from %v to %v", tc, i, j, w, g)
			}
		}
	}
}

// TestSgemmAgainstGonum covers every transpose combination on edge sizes
// around the kernel and block sizes (1, mr±1, nr±1, kc±1, mc+1), random
// shapes, padded leading dimensions, alpha and beta (including beta = 0
// over a NaN C), and products large enough to be split over goroutines.
func TestSgemmAgainstGonum(t *testing.T) {
	if !Enabled {
		t.Log("AVX2/FMA not available: testing the gonum fallback only")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	trans := []blas.Transpose{blas.NoTrans, blas.Trans}
	edges := []int{1, 5, 6, 7, 15, 16, 17, 97}
	var cases []gemmCase
	for _, tA := range trans {
		for _, tB := range trans {
			for _, m := range edges {
				for _, n := range edges {
					cases = append(cases, gemmCase{tA, tB, m, n, 40 + rng.IntN(30), rng.IntN(3), rng.IntN(3), rng.IntN(3), 1, 0})
				}
			}
			for _, k := range []int{1, 2, 255, 256, 257, 600} {
				cases = append(cases, gemmCase{tA, tB, 13, 35, k, 0, 1, 2, 0.5, 1})
			}
			for range 10 {
				cases = append(cases, gemmCase{tA, tB, 1 + rng.IntN(120), 1 + rng.IntN(120), 1 + rng.IntN(300), rng.IntN(4), rng.IntN(4), rng.IntN(4),
					float32(rng.NormFloat64()), []float32{0, 1, -0.7}[rng.IntN(3)]})
			}
			cases = append(cases, gemmCase{tA, tB, 200, 130, 300, 0, 0, 0, 1, 0}, gemmCase{tA, tB, 64, 2100, 40, 1, 0, 3, -2, 0.5},
				gemmCase{tA, tB, 301, 20, 260, 0, 0, 0, 1, 1})
		}
	}
	for _, tc := range cases {
		check(t, rng, tc)
	}
}

// TestSgemmFallback checks the non-AVX2 path (gonum itself) through the
// same comparison.
func TestSgemmFallback(t *testing.T) {
	saved := Enabled
	Enabled = false
	defer func() { Enabled = saved }()
	rng := rand.New(rand.NewPCG(3, 4))
	check(t, rng, gemmCase{blas.NoTrans, blas.Trans, 50, 40, 70, 1, 0, 2, 1, 0.5})
}

// TestKernelMatchesGo compares the assembly micro-kernel with the Go one.
func TestKernelMatchesGo(t *testing.T) {
	if !Enabled {
		t.Skip("no AVX2/FMA")
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, kb := range []int{0, 1, 3, 256} {
		a, b := make([]float32, max(1, kb)*mr), make([]float32, max(1, kb)*nr)
		for i := range a {
			a[i] = float32(rng.NormFloat64())
		}
		for i := range b {
			b[i] = float32(rng.NormFloat64())
		}
		got, want := make([]float32, mr*nr), make([]float32, mr*nr)
		for i := range got {
			got[i] = 99
		}
		kernel(kb, a, b, got)
		kernelGo(kb, a, b, want)
		for i := range got {
			if d := math.Abs(float64(got[i] - want[i])); d > 1e-5*float64(kb+1) {
				t.Fatalf("kb=%d: tile[%d] = %v, want %v", kb, i, got[i], want[i])
			}
		}
	}
}

// TestKernel2MatchesKernel checks that the two-panel kernel (AVX-512 where
// available) gives bit for bit the results of two calls of the AVX2
// kernel, so that a row's result does not depend on which kernel
// computed it.
func TestKernel2MatchesKernel(t *testing.T) {
	if !Enabled {
		t.Skip("no AVX2/FMA")
	}
	t.Logf("AVX-512 kernel: %v", has512)
	rng := rand.New(rand.NewPCG(9, 10))
	for _, kb := range []int{0, 1, 5, 256} {
		a, b := make([]float32, max(1, 2*kb)*mr), make([]float32, max(1, kb)*nr)
		for i := range a {
			a[i] = float32(rng.NormFloat64())
		}
		for i := range b {
			b[i] = float32(rng.NormFloat64())
		}
		got, want := make([]float32, 2*mr*nr), make([]float32, 2*mr*nr)
		kernel2(kb, a, b, got)
		kernel(kb, a, b, want)
		if kb > 0 {
			kernel(kb, a[mr*kb:], b, want[mr*nr:])
		}
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("kb=%d: tile[%d] = %v, want %v", kb, i, got[i], want[i])
			}
		}
	}
}

// TestRowsIndependentOfBatch checks that a row of C is bit-identical
// whether it is computed in a product of 6 rows or of 300 rows (split over
// goroutines), so SMC results do not depend on how particles are batched.
func TestRowsIndependentOfBatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const k, n = 700, 130
	a := make([]float32, 300*k)
	b := make([]float32, k*n)
	for i := range a {
		a[i] = float32(rng.NormFloat64())
	}
	for i := range b {
		b[i] = float32(rng.NormFloat64())
	}
	big := make([]float32, 300*n)
	Implementation{}.Sgemm(blas.NoTrans, blas.NoTrans, 300, n, k, 1, a, k, b, n, 0, big, n)
	for _, r0 := range []int{0, 6, 289} {
		for _, rows := range []int{1, 6, 11} {
			if r0+rows > 300 {
				continue
			}
			small := make([]float32, rows*n)
			Implementation{}.Sgemm(blas.NoTrans, blas.NoTrans, rows, n, k, 1, a[r0*k:], k, b, n, 0, small, n)
			for i := range small {
				if small[i] != big[r0*n+i] {
					t.Fatalf("rows %d..%d: C[%d] = %v in the small product, %v in the large one", r0, r0+rows, i, small[i], big[r0*n+i])
				}
			}
		}
	}
}

func BenchmarkSgemm(b *testing.B) {
	for _, s := range [][3]int{{256, 256, 256}, {64, 1024, 2368}, {512, 512, 512}} {
		m, n, k := s[0], s[1], s[2]
		x, y, c := make([]float32, m*k), make([]float32, k*n), make([]float32, m*n)
		for i := range x {
			x[i] = 1
		}
		for i := range y {
			y[i] = 1
		}
		for _, impl := range []struct {
			name string
			f    func()
		}{
			{"internal", func() { Implementation{}.Sgemm(blas.NoTrans, blas.NoTrans, m, n, k, 1, x, k, y, n, 0, c, n) }},
			{"gonum", func() { gonum.Implementation{}.Sgemm(blas.NoTrans, blas.NoTrans, m, n, k, 1, x, k, y, n, 0, c, n) }},
		} {
			b.Run(fmt.Sprintf("%s/%dx%dx%d", impl.name, m, n, k), func(b *testing.B) {
				for range b.N {
					impl.f()
				}
				b.ReportMetric(float64(2*m*n*k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

func BenchmarkSgemmMNIST(b *testing.B) {
	for _, s := range []struct {
		tA, tB  blas.Transpose
		m, n, k int
	}{{blas.NoTrans, blas.NoTrans, 64, 1568, 1024}, {blas.NoTrans, blas.Trans, 64, 2368, 1024}, {blas.NoTrans, blas.Trans, 64, 1024, 1568}} {
		lda, ldb := s.k, s.n
		if s.tB != blas.NoTrans {
			ldb = s.k
		}
		x, y, c := make([]float32, s.m*s.k), make([]float32, s.k*s.n), make([]float32, s.m*s.n)
		b.Run(fmt.Sprintf("%c%c/%dx%dx%d", s.tA, s.tB, s.m, s.n, s.k), func(b *testing.B) {
			for range b.N {
				Implementation{}.Sgemm(s.tA, s.tB, s.m, s.n, s.k, 1, x, lda, y, ldb, 0, c, s.n)
			}
			b.ReportMetric(float64(2*s.m*s.n*s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// TestAddTileMatchesGo checks the vector tile update against the scalar
// loop bit for bit (full and partial tiles, α = 1 and not, a padded ldc,
// ±0 products), and the tile write against clearing then adding.
func TestAddTileMatchesGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, rows := range []int{1, 5, 6, 12} {
		for _, nn := range []int{3, 16} {
			for _, alpha := range []float32{1, -0.37} {
				ldc := 21
				tile := make([]float32, 2*mr*nr)
				c := make([]float32, (rows-1)*ldc+nr)
				for i := range tile {
					tile[i] = float32(rng.NormFloat64())
				}
				for i := range c {
					c[i] = float32(rng.NormFloat64())
				}
				tile[0], tile[1] = 0, float32(math.Copysign(0, -1)) // ±0 products
				c0 := append([]float32(nil), c...)
				want := append([]float32(nil), c...)
				addTileGo(want, ldc, tile, rows, nn, alpha)
				addTile(c, ldc, tile, rows, nn, alpha)
				for i := range c {
					if math.Float32bits(c[i]) != math.Float32bits(want[i]) {
						t.Fatalf("rows %d, nn %d, alpha %v: c[%d] = %v, scalar %v", rows, nn, alpha, i, c[i], want[i])
					}
				}
				// setTile: the bits of 0 + alpha·t (the old clear-then-add)
				set, zero := append([]float32(nil), c0...), append([]float32(nil), c0...)
				for i := 0; i < rows; i++ {
					clear(zero[i*ldc : i*ldc+nn])
				}
				addTileGo(zero, ldc, tile, rows, nn, alpha)
				setTile(set, ldc, tile, rows, nn, alpha)
				for i := range set {
					if math.Float32bits(set[i]) != math.Float32bits(zero[i]) {
						t.Fatalf("rows %d, nn %d, alpha %v: set c[%d] = %v, clear-then-add %v", rows, nn, alpha, i, set[i], zero[i])
					}
				}
			}
		}
	}
}

// TestSgemmPackedMatchesSgemm checks products through a packed B against
// Sgemm bit for bit (edge and multi-block shapes, both transposes of A and
// B, α ≠ 1, β = 0 and β ≠ 0, padded leading dimensions), and Pack's errors.
func TestSgemmPackedMatchesSgemm(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	fill := func(n int) []float32 { return normals(rng, n) }
	impl := Implementation{}
	for _, sh := range [][3]int{{1, 1, 1}, {5, 17, 3}, {13, 33, 300}, {64, 2100, 70}, {200, 40, 600}} {
		m, n, k := sh[0], sh[1], sh[2]
		for _, tA := range []blas.Transpose{blas.NoTrans, blas.Trans} {
			for _, tB := range []blas.Transpose{blas.NoTrans, blas.Trans} {
				for _, beta := range []float32{0, 0.5} {
					lda, ldb, ldc := k+2, n+1, n+3
					if tA == blas.Trans {
						lda = m + 2
					}
					if tB == blas.Trans {
						ldb = k + 1
					}
					ra, rb := m, k
					if tA == blas.Trans {
						ra = k
					}
					if tB == blas.Trans {
						rb = n
					}
					a, b, c0 := fill(ra*lda), fill(rb*ldb), fill(m*ldc)
					want := append([]float32(nil), c0...)
					impl.Sgemm(tA, tB, m, n, k, -1.25, a, lda, b, ldb, beta, want, ldc)
					p, err := Pack(tB, k, n, b, ldb)
					if err != nil {
						t.Fatal(err)
					}
					got := append([]float32(nil), c0...)
					impl.SgemmPacked(tA, m, -1.25, a, lda, p, beta, got, ldc)
					for i := range want {
						if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
							t.Fatalf("m %d n %d k %d tA %v tB %v beta %v: c[%d] = %v, Sgemm %v", m, n, k, tA, tB, beta, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
	if _, err := Pack(blas.NoTrans, 3, 4, make([]float32, 11), 4); err == nil {
		t.Fatal("Pack of a short B: no error")
	}
	if _, err := Pack(blas.NoTrans, 0, 4, nil, 4); err == nil {
		t.Fatal("Pack with k = 0: no error")
	}
}
