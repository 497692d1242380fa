//go:build openblas

package graph

import (
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/netlib/blas/netlib"
	G "gorgonia.org/gorgonia"
)

// With -tags openblas the matrix products in Gorgonia, gorgonia.org/tensor
// (G.Use calls tensor.Use) and gonum's blas32/blas64 go through OpenBLAS
// via cgo, except those with a layer's weights as right operand (layers'
// MatMulParam and Dense), which keep their weights packed for the internal
// kernel on CPUs with AVX2/FMA: OpenBLAS has no prepacked-operand
// interface, and repacking on every product halved the build's speed at
// the GMM shape. Link with CGO_LDFLAGS=-lopenblas (Debian: libopenblas-dev).
// Do not use Gorgonia's blase wrapper instead: it deadlocks once a second
// TapeMachine exists.
func init() {
	G.Use(netlib.Implementation{})
	blas32.Use(netlib.Implementation{})
	blas64.Use(netlib.Implementation{})
}

// BLAS names the BLAS implementation that Gorgonia, gorgonia.org/tensor and
// gonum use in this build.
func BLAS() string { return "OpenBLAS via gonum.org/v1/netlib (cgo)" }
