package vmath

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestExpMatchesMath checks Exp against math.Exp bit for bit: random
// values over the whole finite range and near the kernel's limits, ±0,
// ±Inf, NaN, rounding ties of k = round(x·log2 e), denormal and
// overflowing results, and every length from 0 to 40 (the scalar tail).
func TestExpMatchesMath(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var xs []float64
	for range 200000 {
		switch rng.IntN(4) {
		case 0:
			xs = append(xs, 40*rng.NormFloat64())
		case 1:
			xs = append(xs, (rng.Float64()*2-1)*750)
		case 2:
			xs = append(xs, rng.NormFloat64()*1e-3)
		default:
			k := float64(rng.IntN(2100) - 1075)
			xs = append(xs, (k+0.5)*math.Ln2+rng.NormFloat64()*1e-12) // near a tie of the rounding
		}
	}
	xs = append(xs, 0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.NaN(), -708, 709, -708.0000001, 709.0000001,
		-745.2, -745.1, -740, 709.78, 709.79, 1e300, -1e300, 5e-324, math.SmallestNonzeroFloat64, math.MaxFloat64)
	got := make([]float64, len(xs))
	Exp(got, xs)
	for i, x := range xs {
		if w := math.Exp(x); math.Float64bits(got[i]) != math.Float64bits(w) && !(math.IsNaN(w) && math.IsNaN(got[i])) {
			t.Fatalf("Exp(%v) = %v (%#x), math.Exp %v (%#x)", x, got[i], math.Float64bits(got[i]), w, math.Float64bits(w))
		}
	}
	for n := range 41 {
		dst := make([]float64, n+1)
		dst[n] = 7 // not written
		Exp(dst, xs[:n])
		for i := range n {
			if math.Float64bits(dst[i]) != math.Float64bits(math.Exp(xs[i])) {
				t.Fatalf("length %d: dst[%d] = %v, want %v", n, i, dst[i], math.Exp(xs[i]))
			}
		}
		if dst[n] != 7 {
			t.Fatalf("length %d: wrote past the end", n)
		}
	}
	inPlace := append([]float64(nil), xs...)
	Exp(inPlace, inPlace)
	for i := range xs {
		if math.Float64bits(inPlace[i]) != math.Float64bits(got[i]) && !math.IsNaN(got[i]) {
			t.Fatalf("in place: Exp(%v) = %v, want %v", xs[i], inPlace[i], got[i])
		}
	}
	t.Logf("vector kernel: %v", has512)
}

func BenchmarkExp(b *testing.B) {
	src, dst := make([]float64, 4096), make([]float64, 4096)
	for i := range src {
		src[i] = float64(i%200) - 150
	}
	b.Run("vmath", func(b *testing.B) {
		for range b.N {
			Exp(dst, src)
		}
	})
	b.Run("math", func(b *testing.B) {
		for range b.N {
			for i, x := range src {
				dst[i] = math.Exp(x)
			}
		}
	})
}
