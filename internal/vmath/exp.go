// Package vmath evaluates elementary functions over slices, several values
// per instruction where the CPU allows, with exactly the results of the
// standard library's scalar functions, so that swapping a loop of
// math.Exp for Exp changes no bit of any result (and no seeded run).
package vmath

import "math"

// Exp sets dst[i] = math.Exp(src[i]) for i < len(src) (dst at least as
// long; dst and src may be the same slice), bit for bit. On amd64 with
// AVX-512 it runs Go's own exp algorithm (the FMA variant of math's
// assembly, which math uses on any CPU with AVX and FMA) eight values at a
// time; blocks of eight holding a value outside [−708, 709], where math
// takes its special paths (NaN, ±Inf, overflow, denormal results), and
// the tail go through math.Exp.
func Exp(dst, src []float64) {
	dst = dst[:len(src)]
	n := 0
	if has512 {
		n = len(src) / 8 * 8
	}
	run := 0 // first block of the current run of plain blocks
	for b := 0; b < n; b += 8 {
		plain := true
		for _, x := range src[b : b+8] {
			if !(x >= -708 && x <= 709) {
				plain = false
				break
			}
		}
		if plain {
			continue
		}
		if b > run {
			exp8(&dst[run], &src[run], b-run)
		}
		for i := b; i < b+8; i++ {
			dst[i] = math.Exp(src[i])
		}
		run = b + 8
	}
	if n > run {
		exp8(&dst[run], &src[run], n-run)
	}
	for i := n; i < len(src); i++ {
		dst[i] = math.Exp(src[i])
	}
}
