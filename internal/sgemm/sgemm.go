// Package sgemm is a faster pure-Go (no cgo) float32 matrix product for
// the default build: gonum's BLAS with Sgemm replaced by a packed,
// cache-blocked GEMM around a 6×16 AVX2/FMA assembly micro-kernel, split
// over the available cores for large products. On CPUs without AVX2 and
// FMA it calls gonum's own Sgemm.
//
// Each entry of C is accumulated in the same order (k in blocks of KC,
// sequentially within a block) whatever the matrix sizes, the position of
// the entry and the number of goroutines, so results do not depend on
// how a batch is split. They differ from gonum's in the last bits.
package sgemm

import (
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"

	"github.com/ddsmc/ddsmc/internal/par"
)

// Micro-kernel and blocking sizes.
const (
	mr = 6
	nr = 16
	kc = 256
	mc = 96
	nc = 2048
)

// Enabled reports whether the assembly kernel is in use (AVX2 and FMA
// present). Tests may switch it off to exercise the fallback.
var Enabled = detect()

// has512 selects the AVX-512 kernel for pairs of row panels (same results
// as the AVX2 kernel, twice the width).
var has512 = detect512()

// AVX512 reports whether the CPU and the OS support AVX-512F, with AVX2
// and FMA.
func AVX512() bool { return has512 }

// directA lets the AVX-512 kernel read full 12-row groups of a
// non-transposed, unmasked A in place instead of packing them (the same
// bits; tests switch it off to compare).
var directA = true

// parWork is the smallest m·n·k split over cores. Every product, however
// small, goes through the packed kernel (when Enabled): choosing gonum for
// small m would make a row's result depend on its batch size.
var parWork = 1 << 17

// inflight counts the products being computed, over all goroutines.
var inflight atomic.Int32

// Implementation is gonum's BLAS implementation with a faster Sgemm. It
// satisfies gorgonia's and gorgonia.org/tensor's BLAS interfaces and
// gonum's blas.Float32.
type Implementation struct{ gonum.Implementation }

// Name describes the implementation in use.
func Name() string {
	if Enabled && has512 {
		return "gonum pure Go + internal/sgemm AVX-512/AVX2 FMA kernels"
	}
	if Enabled {
		return "gonum pure Go + internal/sgemm AVX2/FMA kernel"
	}
	return "gonum pure Go"
}

// operand describes op(X) for a row-major X: element (i, j) of op(X) is
// x[i*ld+j], or x[j*ld+i] when trans.
type operand struct {
	x     []float32
	ld    int
	trans bool
	// mask, when set (a non-transposed left operand only), has x's layout:
	// element (i, j) is used as x[i*ld+j]·[mask[i*ld+j] > 0] (the backward
	// pass of a ReLU, fused into the packing)
	mask []float32
}

// Epilogue is applied to C after the product, in the last block of k while
// the tile is in cache: C[i, j] += Bias[j] (when Bias is set), then
// C[i, j] = 0 where C[i, j] < 0 (when ReLU; NaN and ±0 are kept). The bits
// equal those of the same additions and comparisons done as separate
// passes after the product.
type Epilogue struct {
	Bias []float32
	ReLU bool
}

func (e *Epilogue) none() bool { return e == nil || (e.Bias == nil && !e.ReLU) }

// Sgemm computes C = alpha·op(A)·op(B) + beta·C (row-major), as
// gonum.Implementation.Sgemm, whose argument checks (and panics) it keeps.
func (impl Implementation) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if !Enabled || alpha == 0 || k == 0 || !valid(tA, tB, m, n, k, a, lda, b, ldb, c, ldc) {
		impl.Implementation.Sgemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	if beta != 0 {
		scale(beta, m, n, c, ldc)
	}
	A := operand{x: a, ld: lda, trans: tA != blas.NoTrans}
	B := operand{x: b, ld: ldb, trans: tB != blas.NoTrans}
	split(A, B, nil, nil, m, n, k, alpha, beta == 0, c, ldc)
}

// scale sets C = beta·C (the blocks then accumulate alpha·A·B into it).
func scale(beta float32, m, n int, c []float32, ldc int) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		switch beta {
		case 0:
			clear(row)
		case 1:
		default:
			for j := range row {
				row[j] *= beta
			}
		}
	}
}

// split runs the product on the cores: the larger dimension is split into
// parts aligned to the kernel (columns of C, or rows), unless another
// product is in flight (parallel SMC workers keep their cores busy) or the
// product is small.
//
// With overwrite (β = 0), C's old values are never read: the first block
// of k writes its tile (+0 for a zero product, as 0 + x gives) and the
// others add to it.
func split(A, B operand, pb *Packed, epi *Epilogue, m, n, k int, alpha float32, overwrite bool, c []float32, ldc int) {
	procs := runtime.GOMAXPROCS(0)
	defer inflight.Add(-1)
	if inflight.Add(1) > 1 || procs < 2 || m*n*k < parWork || !par.Idle() {
		gemm(A, B, pb, epi, overwrite, c, ldc, alpha, 0, m, 0, n, k)
		return
	}
	// Columns, unless B is prepacked and there are rows enough: then each
	// part packs its own rows of A only, where split columns each pack all
	// of A.
	byCols := n >= m && n >= 2*nr
	if pb != nil && m >= 8*mr*procs {
		byCols = false
	}
	if byCols {
		step := (n/procs + nr - 1) / nr * nr
		par.Do((n+step-1)/step, func(i int) {
			gemm(A, B, pb, epi, overwrite, c, ldc, alpha, 0, m, i*step, min(n, (i+1)*step), k)
		})
	} else {
		step := (m/procs + mr - 1) / mr * mr
		par.Do((m+step-1)/step, func(i int) {
			gemm(A, B, pb, epi, overwrite, c, ldc, alpha, i*step, min(m, (i+1)*step), 0, n, k)
		})
	}
}

// valid reports whether the arguments pass gonum's checks (otherwise gonum
// is called to panic with its message).
func valid(tA, tB blas.Transpose, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) bool {
	okT := func(t blas.Transpose) bool { return t == blas.NoTrans || t == blas.Trans || t == blas.ConjTrans }
	if !okT(tA) || !okT(tB) || m <= 0 || n <= 0 || k <= 0 || ldc < max(1, n) || len(c) < (m-1)*ldc+n {
		return false
	}
	if tA != blas.NoTrans {
		if lda < max(1, m) || len(a) < (k-1)*lda+m {
			return false
		}
	} else if lda < max(1, k) || len(a) < (m-1)*lda+k {
		return false
	}
	if tB != blas.NoTrans {
		if ldb < max(1, k) || len(b) < (n-1)*ldb+k {
			return false
		}
	} else if ldb < max(1, n) || len(b) < (k-1)*ldb+n {
		return false
	}
	return true
}

// buffers are the packing buffers of one goroutine.
type buffers struct {
	a    []float32 // mc×kc
	b    []float32 // kc×nc
	tile [2 * mr * nr]float32
}

var pool = sync.Pool{New: func() any {
	return &buffers{a: make([]float32, mc*kc), b: make([]float32, kc*nc)}
}}

// gemm adds alpha·op(A)[i0:i1, :]·op(B)[:, j0:j1] to C's block, with op(B)
// optionally prepacked (pb != nil; B unused), writing instead of adding in
// the first block of k when overwrite is set, and applying epi (when set)
// to each tile in the last block of k.
func gemm(A, B operand, pb *Packed, epi *Epilogue, overwrite bool, c []float32, ldc int, alpha float32, i0, i1, j0, j1, k int) {
	if epi.none() {
		epi = nil
	}
	buf := pool.Get().(*buffers)
	defer pool.Put(buf)
	for jc := j0; jc < j1; jc += nc {
		nb := min(nc, j1-jc)
		for pc := 0; pc < k; pc += kc {
			kb := min(kc, k-pc)
			if pb == nil {
				packB(B, buf.b, pc, kb, jc, nb)
			}
			for ic := i0; ic < i1; ic += mc {
				mb := min(mc, i1-ic)
				// Full 12-row groups of a plain A are read in place by
				// the AVX-512 kernel; the other rows are packed. Not for
				// rows a multiple of 4 KB apart: they would all fall in
				// one set of the L1 cache.
				direct := 0
				if directA && has512 && !A.trans && A.mask == nil && A.ld%1024 != 0 {
					direct = mb / (2 * mr) * (2 * mr)
				}
				if direct < mb {
					packA(A, buf.a[direct*kb:], ic+direct, mb-direct, pc, kb)
				}
				for jr := 0; jr < nb; jr += nr {
					var bp []float32
					if pb == nil {
						bp = buf.b[jr*kb : (jr+nr)*kb]
					} else { // panel (jc+jr)/nr of all k rows; rows pc.. of it
						o := (jc+jr)/nr*k*nr + pc*nr
						bp = pb.data[o : o+kb*nr]
					}
					nn := min(nr, nb-jr)
					for ir := 0; ir < mb; {
						rows := mr
						switch {
						case ir < direct:
							rows = 2 * mr
							o := (ic+ir)*A.ld + pc
							kernelDirect(kb, A.x[o:], A.ld, bp, buf.tile[:])
						case ir+mr < mb: // two panels at once
							rows = 2 * mr
							kernel2(kb, buf.a[ir*kb:(ir+rows)*kb], bp, buf.tile[:])
						default:
							kernel(kb, buf.a[ir*kb:(ir+mr)*kb], bp, buf.tile[:])
						}
						ct := c[(ic+ir)*ldc+jc+jr:]
						if overwrite && pc == 0 {
							setTile(ct, ldc, buf.tile[:], min(rows, mb-ir), nn, alpha)
						} else {
							addTile(ct, ldc, buf.tile[:], min(rows, mb-ir), nn, alpha)
						}
						if epi != nil && pc+kb == k {
							var b []float32
							if epi.Bias != nil {
								b = epi.Bias[jc+jr : jc+jr+nn]
							}
							epiTile(ct, ldc, min(rows, mb-ir), nn, b, epi.ReLU)
						}
						ir += rows
					}
				}
			}
		}
	}
}

// addTileGo adds alpha·t (rows × nn of a tile with row stride nr) to the
// block of c starting at c[0] (row stride ldc).
func addTileGo(c []float32, ldc int, t []float32, rows, nn int, alpha float32) {
	for i := 0; i < rows; i++ {
		row := c[i*ldc : i*ldc+nn]
		for j, v := range t[i*nr : i*nr+nn] {
			row[j] += alpha * v
		}
	}
}

// setTileGo writes alpha·t (+0 for a zero product) to the block of c.
func setTileGo(c []float32, ldc int, t []float32, rows, nn int, alpha float32) {
	for i := 0; i < rows; i++ {
		row := c[i*ldc : i*ldc+nn]
		for j, v := range t[i*nr : i*nr+nn] {
			x := alpha * v
			if x == 0 {
				x = 0 // +0, as 0 + alpha·v gives
			}
			row[j] = x
		}
	}
}

// epiTileGo applies the epilogue to the rows × nn block of c: c += b
// (when b is set), then c = 0 where c < 0 (when relu).
func epiTileGo(c []float32, ldc int, rows, nn int, b []float32, relu bool) {
	for i := 0; i < rows; i++ {
		row := c[i*ldc : i*ldc+nn]
		if b != nil {
			for j, v := range b[:nn] {
				row[j] += v
			}
		}
		if relu {
			for j, v := range row {
				if v < 0 {
					row[j] = 0
				}
			}
		}
	}
}

// packA packs op(A)[ic:ic+mb, pc:pc+kb] into panels of mr rows: panel
// ir/mr holds dst[ir*kb + p*mr + i] = op(A)(ic+ir+i, pc+p), zero-padded.
func packA(A operand, dst []float32, ic, mb, pc, kb int) {
	if A.mask != nil {
		packAMasked(A, dst, ic, mb, pc, kb)
		return
	}
	for ir := 0; ir < mb; ir += mr {
		panel := dst[ir*kb : (ir+mr)*kb]
		mm := min(mr, mb-ir)
		if A.trans { // row p of A holds column p of op(A): contiguous mr values
			for p := 0; p < kb; p++ {
				off := (pc+p)*A.ld + ic + ir
				d := panel[p*mr : p*mr+mr]
				if mm == mr {
					*(*[mr]float32)(d) = *(*[mr]float32)(A.x[off : off+mr])
					continue
				}
				clear(d)
				copy(d, A.x[off:off+mm])
			}
			continue
		}
		if mm < mr {
			clear(panel)
			for i := 0; i < mm; i++ {
				src := A.x[(ic+ir+i)*A.ld+pc : (ic+ir+i)*A.ld+pc+kb]
				for p, v := range src {
					panel[p*mr+i] = v
				}
			}
			continue
		}
		// Six streams, sequential writes.
		r := (ic + ir) * A.ld
		s0, s1, s2 := A.x[r+pc:r+pc+kb], A.x[r+A.ld+pc:r+A.ld+pc+kb], A.x[r+2*A.ld+pc:r+2*A.ld+pc+kb]
		s3, s4, s5 := A.x[r+3*A.ld+pc:r+3*A.ld+pc+kb], A.x[r+4*A.ld+pc:r+4*A.ld+pc+kb], A.x[r+5*A.ld+pc:r+5*A.ld+pc+kb]
		for p := range s0 {
			d := (*[mr]float32)(panel[p*mr : p*mr+mr])
			d[0], d[1], d[2], d[3], d[4], d[5] = s0[p], s1[p], s2[p], s3[p], s4[p], s5[p]
		}
	}
}

// packAMasked is packA for a masked, non-transposed A: the packed value is
// x·1 or x·0 (so NaN·0 stays NaN, as the separate backward pass gives).
func packAMasked(A operand, dst []float32, ic, mb, pc, kb int) {
	for ir := 0; ir < mb; ir += mr {
		panel := dst[ir*kb : (ir+mr)*kb]
		mm := min(mr, mb-ir)
		if mm < mr {
			clear(panel)
			for i := 0; i < mm; i++ {
				o := (ic+ir+i)*A.ld + pc
				src, msk := A.x[o:o+kb], A.mask[o:o+kb]
				for p, v := range src {
					panel[p*mr+i] = v * step(msk[p])
				}
			}
			continue
		}
		// Six streams of values and six of masks, sequential writes.
		var s, m [mr][]float32
		for i := range s {
			o := (ic+ir+i)*A.ld + pc
			s[i], m[i] = A.x[o:o+kb], A.mask[o:o+kb]
		}
		for p := range s[0] {
			d := (*[mr]float32)(panel[p*mr : p*mr+mr])
			d[0], d[1], d[2] = s[0][p]*step(m[0][p]), s[1][p]*step(m[1][p]), s[2][p]*step(m[2][p])
			d[3], d[4], d[5] = s[3][p]*step(m[3][p]), s[4][p]*step(m[4][p]), s[5][p]*step(m[5][p])
		}
	}
}

// step is [x > 0], without a branch (the signs of ReLU inputs are
// unpredictable): a bool is stored as one byte, 0 or 1.
func step(x float32) float32 {
	b := x > 0
	return float32(*(*uint8)(unsafe.Pointer(&b)))
}

// packB packs op(B)[pc:pc+kb, jc:jc+nb] into panels of nr columns: panel
// jr/nr holds dst[jr*kb + p*nr + j] = op(B)(pc+p, jc+jr+j), zero-padded.
func packB(B operand, dst []float32, pc, kb, jc, nb int) {
	if !B.trans {
		// Row by row of B (sequential reads), scattered into the panels.
		full := nb / nr * nr
		for p := 0; p < kb; p++ {
			off := (pc+p)*B.ld + jc
			src := B.x[off : off+nb]
			for jr := 0; jr < full; jr += nr {
				*(*[nr]float32)(dst[jr*kb+p*nr : jr*kb+p*nr+nr]) = *(*[nr]float32)(src[jr : jr+nr])
			}
			if full < nb {
				d := dst[full*kb+p*nr : full*kb+p*nr+nr]
				clear(d)
				copy(d, src[full:])
			}
		}
		return
	}
	for jr := 0; jr < nb; jr += nr {
		panel := dst[jr*kb : (jr+nr)*kb]
		nn := min(nr, nb-jr)
		if nn < nr {
			clear(panel)
			for j := 0; j < nn; j++ {
				src := B.x[(jc+jr+j)*B.ld+pc : (jc+jr+j)*B.ld+pc+kb]
				for p, v := range src {
					panel[p*nr+j] = v
				}
			}
			continue
		}
		// Sixteen streams (rows of B), sequential writes.
		var rows [nr][]float32
		for j := range rows {
			o := (jc+jr+j)*B.ld + pc
			rows[j] = B.x[o : o+kb]
		}
		for p := 0; p < kb; p++ {
			d := (*[nr]float32)(panel[p*nr : p*nr+nr])
			for j := range d {
				d[j] = rows[j][p]
			}
		}
	}
}

// kernelGo is the micro-kernel in Go (reference for tests and other
// architectures).
func kernelGo(kb int, a, b, c []float32) {
	clear(c[:mr*nr])
	for p := 0; p < kb; p++ {
		for i := 0; i < mr; i++ {
			av := a[p*mr+i]
			for j := 0; j < nr; j++ {
				c[i*nr+j] += av * b[p*nr+j]
			}
		}
	}
}
