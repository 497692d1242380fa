package vmath

import "github.com/ddsmc/ddsmc/internal/sgemm"

// has512 selects the eight-wide kernel: AVX-512F with AVX2 and FMA (so
// math.Exp takes the FMA path that the kernel reproduces).
var has512 = sgemm.AVX512()

// exp8 sets dst[i] = exp(src[i]) for i < n (a multiple of 8) by math's
// algorithm, without its special cases (Exp patches those lanes).
//
//go:noescape
func exp8(dst, src *float64, n int)
