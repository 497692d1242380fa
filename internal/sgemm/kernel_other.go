//go:build !amd64

package sgemm

func detect() bool { return false }

func kernel(kc int, a, b, c []float32) { kernelGo(kc, a, b, c) }
