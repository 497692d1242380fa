package sgemm

import (
	"fmt"

	"gonum.org/v1/gonum/blas"
)

// Packed is a right operand op(B) [k, n] packed once for the kernel, for
// the products of many left operands with one B that does not change (a
// layer's weights during sampling). Packing costs a pass over B per
// product otherwise, which at small batches rivals the product itself
// (the MNIST-shape MLP's 2368×1024 and 1024×1024 weights, transposed for
// the input gradient, against 64 rows).
//
// The panels are those that gemm packs per block, concatenated over all k
// rows, so products through a Packed give the same bits as Sgemm.
type Packed struct {
	k, n int
	// panel q (columns 16q .. 16q+15 of op(B), zero-padded) holds row p at
	// data[q·k·nr + p·nr:]
	data []float32
	// the operand itself, for the fallback without the assembly kernel
	b     []float32
	ldb   int
	trans bool
}

// Pack packs op(B) for SgemmPacked, with gonum's argument checks (an
// error, not a panic, for a bad shape).
func Pack(tB blas.Transpose, k, n int, b []float32, ldb int) (*Packed, error) {
	trans := tB != blas.NoTrans
	switch {
	case tB != blas.NoTrans && tB != blas.Trans && tB != blas.ConjTrans:
		return nil, fmt.Errorf("sgemm: pack: bad transpose %v", tB)
	case k <= 0 || n <= 0:
		return nil, fmt.Errorf("sgemm: pack: k = %d, n = %d must be positive", k, n)
	case trans && (ldb < k || len(b) < (n-1)*ldb+k):
		return nil, fmt.Errorf("sgemm: pack: transposed B of %d values, ld %d, too short for %d×%d", len(b), ldb, k, n)
	case !trans && (ldb < n || len(b) < (k-1)*ldb+n):
		return nil, fmt.Errorf("sgemm: pack: B of %d values, ld %d, too short for %d×%d", len(b), ldb, k, n)
	}
	p := &Packed{k: k, n: n, b: b, ldb: ldb, trans: trans}
	if Enabled {
		panels := (n + nr - 1) / nr
		p.data = make([]float32, panels*k*nr)
		packB(operand{x: b, ld: ldb, trans: trans}, p.data, 0, k, 0, n)
	}
	return p, nil
}

// Dims returns k and n of op(B).
func (p *Packed) Dims() (k, n int) { return p.k, p.n }

// SgemmPacked computes C = alpha·op(A)·op(B) + beta·C for the packed op(B)
// (row-major A [m, k] or its transpose, C [m, n]); it gives the bits of
// Sgemm with the same arguments.
func (impl Implementation) SgemmPacked(tA blas.Transpose, m int, alpha float32, a []float32, lda int, p *Packed, beta float32, c []float32, ldc int) {
	impl.SgemmPackedFused(tA, m, alpha, a, nil, lda, p, beta, c, ldc, nil)
}

// SgemmPackedFused is SgemmPacked with two fusions: a non-nil mask (the
// layout of a, which must not be transposed) multiplies each entry of A by
// [mask > 0] as it is packed, and a non-nil epi is applied to C after the
// product (Epilogue). The bits equal those of masking A, the product and
// the epilogue done as separate passes.
func (impl Implementation) SgemmPackedFused(tA blas.Transpose, m int, alpha float32, a, mask []float32, lda int, p *Packed, beta float32, c []float32, ldc int, epi *Epilogue) {
	k, n := p.k, p.n
	tB := blas.NoTrans
	if p.trans {
		tB = blas.Trans
	}
	if mask != nil && (tA != blas.NoTrans || len(mask) < len(a)) {
		panic("sgemm: mask for a transposed A, or shorter than A")
	}
	if epi != nil && epi.Bias != nil && len(epi.Bias) < n {
		panic(fmt.Sprintf("sgemm: epilogue bias of %d values for %d columns", len(epi.Bias), n))
	}
	if p.data == nil || alpha == 0 || !valid(tA, tB, m, n, k, a, lda, p.b, p.ldb, c, ldc) {
		if mask != nil && valid(tA, tB, m, n, k, a, lda, p.b, p.ldb, c, ldc) {
			a = maskedCopy(a, mask, m, k, lda)
		}
		impl.Sgemm(tA, tB, m, n, k, alpha, a, lda, p.b, p.ldb, beta, c, ldc)
		if !epi.none() {
			epiTileGo(c, ldc, m, n, epi.Bias, epi.ReLU)
		}
		return
	}
	if beta != 0 {
		scale(beta, m, n, c, ldc)
	}
	split(operand{x: a, ld: lda, trans: tA != blas.NoTrans, mask: mask}, operand{}, p, epi, m, n, k, alpha, beta == 0, c, ldc)
}

// maskedCopy returns A (m × k, row stride lda) with entries multiplied by
// [mask > 0].
func maskedCopy(a, mask []float32, m, k, lda int) []float32 {
	out := make([]float32, len(a))
	copy(out, a)
	for i := 0; i < m; i++ {
		for p := 0; p < k; p++ {
			out[i*lda+p] = a[i*lda+p] * step(mask[i*lda+p])
		}
	}
	return out
}
