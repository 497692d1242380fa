//go:build !openblas

package graph

import (
	"gonum.org/v1/gonum/blas/blas32"
	G "gorgonia.org/gorgonia"

	"github.com/ddsmc/ddsmc/internal/sgemm"
)

// The default build stays pure Go (no cgo), but its float32 matrix
// products go through internal/sgemm: gonum's BLAS with a packed AVX2/FMA
// Sgemm kernel (gonum's own Sgemm on CPUs without AVX2/FMA). G.Use also
// switches gorgonia.org/tensor.
func init() {
	G.Use(sgemm.Implementation{})
	blas32.Use(sgemm.Implementation{})
}

// BLAS names the BLAS implementation that Gorgonia, gorgonia.org/tensor and
// gonum use in this build. The default build is pure Go (no cgo); build
// with -tags openblas (and CGO_LDFLAGS=-lopenblas) to use OpenBLAS.
func BLAS() string { return sgemm.Name() }
