package graph

import (
	"fmt"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// openblasTag reports whether this test binary was built with -tags openblas.
func openblasTag() bool { return strings.HasPrefix(BLAS(), "OpenBLAS") }

// BLAS() names an implementation, and Gorgonia and tensor really use it.
func TestBLASMatchesBuildTag(t *testing.T) {
	name := BLAS()
	if name == "" {
		t.Fatal("BLAS() is empty")
	}
	gImpl, tImpl := fmt.Sprintf("%T", G.WhichBLAS()), fmt.Sprintf("%T", tensor.WhichBLAS())
	t.Logf("BLAS() = %q; gorgonia %s, tensor %s", name, gImpl, tImpl)
	isNetlib := strings.Contains(gImpl, "netlib")
	if openblasTag() != isNetlib {
		t.Errorf("BLAS() = %q but gorgonia.WhichBLAS() is %s", name, gImpl)
	}
	if strings.Contains(tImpl, "netlib") != isNetlib {
		t.Errorf("gorgonia uses %s but tensor uses %s", gImpl, tImpl)
	}
}
