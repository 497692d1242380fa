package sgemm

import (
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
)

// TestSgemmPackedFusedMatchesPasses checks the fused mask and epilogue
// against the same operations done as separate passes around Sgemm, bit
// for bit: edge sizes, k beyond one block, β ≠ 0, the assembly kernel and
// the fallback, and inputs with NaN, ±0 and negative pre-activations.
func TestSgemmPackedFusedMatchesPasses(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	fill := func(n int) []float32 { return normals(rng, n) }
	impl := Implementation{}
	defer func(e bool) { Enabled = e }(Enabled)
	for _, enabled := range []bool{Enabled, false} {
		Enabled = enabled
		for _, sh := range [][3]int{{1, 1, 1}, {5, 17, 3}, {13, 33, 300}, {64, 40, 70}, {200, 48, 600}} {
			m, n, k := sh[0], sh[1], sh[2]
			for _, tB := range []blas.Transpose{blas.NoTrans, blas.Trans} {
				for _, beta := range []float32{0, 0.5} {
					for _, v := range []struct{ mask, bias, relu bool }{{false, true, true}, {false, false, true}, {false, true, false}, {true, false, false}, {true, true, true}} {
						lda, ldb, ldc := k+2, n+1, n+3
						rb := k
						if tB == blas.Trans {
							ldb, rb = k+1, n
						}
						a, b, c0 := fill(m*lda), fill(rb*ldb), fill(m*ldc)
						a[0] = float32(math.NaN())
						if len(a) > 3 {
							a[2], a[3] = 0, float32(math.Copysign(0, -1))
						}
						var mask, bias []float32
						if v.mask {
							mask = fill(m * lda)
							mask[0] = 0 // NaN·0 stays NaN
						}
						if v.bias {
							bias = fill(n)
						}
						// the passes: mask A, Sgemm, add the bias, clamp
						am := append([]float32(nil), a...)
						if mask != nil {
							for i := range am {
								var f float32
								if mask[i] > 0 {
									f = 1
								}
								am[i] *= f
							}
						}
						want := append([]float32(nil), c0...)
						impl.Sgemm(blas.NoTrans, tB, m, n, k, -1.25, am, lda, b, ldb, beta, want, ldc)
						for i := 0; i < m; i++ {
							for j := 0; j < n; j++ {
								x := want[i*ldc+j]
								if bias != nil {
									x += bias[j]
								}
								if v.relu && x < 0 {
									x = 0
								}
								want[i*ldc+j] = x
							}
						}
						p, err := Pack(tB, k, n, b, ldb)
						if err != nil {
							t.Fatal(err)
						}
						got := append([]float32(nil), c0...)
						impl.SgemmPackedFused(blas.NoTrans, m, -1.25, a, mask, lda, p, beta, got, ldc, &Epilogue{Bias: bias, ReLU: v.relu})
						for i := range want {
							if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
								t.Fatalf("asm %v m %d n %d k %d tB %v beta %v %+v: c[%d] = %v, passes %v", enabled, m, n, k, tB, beta, v, i, got[i], want[i])
							}
						}
					}
				}
			}
		}
	}
}

// TestEpiTileMatchesGo checks the vector epilogue against the scalar loop
// on NaN, ±0 and negative entries, with and without a bias.
func TestEpiTileMatchesGo(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, rows := range []int{1, 6, 12} {
		for _, bias := range []bool{false, true} {
			for _, relu := range []bool{false, true} {
				ldc := 19
				c := make([]float32, (rows-1)*ldc+nr)
				for i := range c {
					c[i] = float32(rng.NormFloat64())
				}
				c[0], c[1], c[2] = float32(math.NaN()), 0, float32(math.Copysign(0, -1))
				var b []float32
				if bias {
					b = make([]float32, nr)
					for i := range b {
						b[i] = float32(rng.NormFloat64())
					}
					b[1], b[2] = 0, 0
				}
				want := append([]float32(nil), c...)
				epiTileGo(want, ldc, rows, nr, b, relu)
				epiTile(c, ldc, rows, nr, b, relu)
				for i := range c {
					if math.Float32bits(c[i]) != math.Float32bits(want[i]) {
						t.Fatalf("rows %d bias %v relu %v: c[%d] = %v (%#x), scalar %v (%#x)", rows, bias, relu, i, c[i], math.Float32bits(c[i]), want[i], math.Float32bits(want[i]))
					}
				}
			}
		}
	}
}

// TestDirectAMatchesPacked checks that reading full 12-row groups of A in
// place (the AVX-512 kernel) gives the bits of packing them, for row
// counts around the group and block sizes, k beyond one block, a padded
// lda, plain and prepacked B, and a split over two cores.
func TestDirectAMatchesPacked(t *testing.T) {
	if !Enabled || !has512 {
		t.Skip("no AVX-512 kernel")
	}
	defer func(d bool) { directA = d }(directA)
	rng := rand.New(rand.NewPCG(13, 14))
	impl := Implementation{}
	for _, sh := range [][3]int{{12, 16, 5}, {13, 33, 300}, {24, 7, 64}, {95, 40, 256}, {97, 48, 513}, {256, 130, 192}} {
		m, n, k := sh[0], sh[1], sh[2]
		lda := k + 3
		a, b := normals(rng, m*lda), normals(rng, k*n)
		p, err := Pack(blas.NoTrans, k, n, b, n)
		if err != nil {
			t.Fatal(err)
		}
		var out [2][2][]float32 // [direct][prepacked]
		for d, direct := range []bool{false, true} {
			directA = direct
			for pp := range 2 {
				c := make([]float32, m*n)
				if pp == 0 {
					impl.Sgemm(blas.NoTrans, blas.NoTrans, m, n, k, 1, a, lda, b, n, 0, c, n)
				} else {
					impl.SgemmPacked(blas.NoTrans, m, 1, a, lda, p, 0, c, n)
				}
				out[d][pp] = c
			}
		}
		for pp := range 2 {
			for i := range out[0][pp] {
				if math.Float32bits(out[1][pp][i]) != math.Float32bits(out[0][pp][i]) {
					t.Fatalf("m %d n %d k %d prepacked %v: c[%d] = %v in place, %v packed", m, n, k, pp == 1, i, out[1][pp][i], out[0][pp][i])
				}
			}
		}
	}
}
