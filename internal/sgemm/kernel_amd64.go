package sgemm

//go:noescape
func kern6x16(kc int, a, b, c *float32)

//go:noescape
func kern12x16(kc int, a, b, c *float32)

//go:noescape
func addTile16(rows int, alpha float32, t, c *float32, ldc int)

// addTile adds alpha·t (rows × nr, row stride nr) to the rows × nn block of
// c starting at c[0] (row stride ldc).
func addTile(c []float32, ldc int, t []float32, rows, nn int, alpha float32) {
	if Enabled && nn == nr && rows > 0 {
		_ = c[(rows-1)*ldc+nr-1] // the whole block is inside c
		_ = t[rows*nr-1]
		addTile16(rows, alpha, &t[0], &c[0], ldc)
		return
	}
	addTileGo(c, ldc, t, rows, nn, alpha)
}

//go:noescape
func setTile16(rows int, alpha float32, t, c *float32, ldc int)

// setTile writes alpha·t (+0 for a zero product) to the rows × nn block
// of c.
func setTile(c []float32, ldc int, t []float32, rows, nn int, alpha float32) {
	if Enabled && nn == nr && rows > 0 {
		_ = c[(rows-1)*ldc+nr-1]
		_ = t[rows*nr-1]
		setTile16(rows, alpha, &t[0], &c[0], ldc)
		return
	}
	setTileGo(c, ldc, t, rows, nn, alpha)
}

func cpuid(eax, ecx uint32) (a, b, c, d uint32)

func xgetbv() (eax uint32)

// detect reports whether the CPU and OS support AVX2 and FMA (YMM state
// enabled by the OS).
func detect() bool {
	maxID, _, _, _ := cpuid(0, 0)
	if maxID < 7 {
		return false
	}
	_, _, c1, _ := cpuid(1, 0)
	const fma, osxsave, avx = 1 << 12, 1 << 27, 1 << 28
	if c1&fma == 0 || c1&osxsave == 0 || c1&avx == 0 {
		return false
	}
	if xgetbv()&6 != 6 { // XMM and YMM state
		return false
	}
	_, b7, _, _ := cpuid(7, 0)
	return b7&(1<<5) != 0 // AVX2
}

// detect512 reports whether the CPU and OS support AVX-512F (opmask and
// ZMM state enabled by the OS).
func detect512() bool {
	if !detect() {
		return false
	}
	if xgetbv()&0xe6 != 0xe6 {
		return false
	}
	_, b7, _, _ := cpuid(7, 0)
	return b7&(1<<16) != 0
}

func kernel(kc int, a, b, c []float32) { kern6x16(kc, &a[0], &b[0], &c[0]) }

// kernel2 computes two consecutive 6-row panels (a holds 12·kc values)
// into a 12×16 tile.
func kernel2(kc int, a, b, c []float32) {
	if has512 {
		kern12x16(kc, &a[0], &b[0], &c[0])
		return
	}
	kern6x16(kc, &a[0], &b[0], &c[0])
	kern6x16(kc, &a[mr*kc], &b[0], &c[mr*nr])
}

//go:noescape
func epiTile16(rows int, c *float32, ldc int, b *float32, relu bool)

// epiTile applies the epilogue (bias b when set, then ReLU) to the rows ×
// nn block of c.
func epiTile(c []float32, ldc int, rows, nn int, b []float32, relu bool) {
	if Enabled && nn == nr && rows > 0 {
		_ = c[(rows-1)*ldc+nr-1]
		var bp *float32
		if b != nil {
			_ = b[nr-1]
			bp = &b[0]
		}
		epiTile16(rows, &c[0], ldc, bp, relu)
		return
	}
	epiTileGo(c, ldc, rows, nn, b, relu)
}

//go:noescape
func kern12x16d(kc int, a *float32, lda int, b, c *float32)

// kernelDirect computes the 12×16 tile of rows a, a+lda, …, a+11·lda of a
// non-transposed A (kc values each) against a packed B panel, when the
// AVX-512 kernel is in use; it reports false otherwise.
func kernelDirect(kc int, a []float32, lda int, b, c []float32) bool {
	if !has512 || kc == 0 {
		return false
	}
	_ = a[11*lda+kc-1] // the twelve rows are inside a
	_ = b[kc*nr-1]
	_ = c[2*mr*nr-1]
	kern12x16d(kc, &a[0], lda, &b[0], &c[0])
	return true
}
