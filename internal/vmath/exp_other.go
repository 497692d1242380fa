//go:build !amd64

package vmath

const has512 = false

func exp8(dst, src *float64, n int) { panic("vmath: no vector kernel") }
