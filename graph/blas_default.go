//go:build !openblas

package graph

// BLAS names the BLAS implementation that Gorgonia, gorgonia.org/tensor and
// gonum use in this build. The default build is pure Go (no cgo); build
// with -tags openblas (and CGO_LDFLAGS=-lopenblas) to use OpenBLAS.
func BLAS() string { return "gonum pure Go" }
