package sgemm

//go:noescape
func kern6x16(kc int, a, b, c *float32)

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

func kernel(kc int, a, b, c []float32) { kern6x16(kc, &a[0], &b[0], &c[0]) }
