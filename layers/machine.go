package layers

import (
	"runtime"

	G "gorgonia.org/gorgonia"
)

// TapeMachine is G.NewTapeMachine without the finalizer Gorgonia v0.9.18
// sets on every tape machine (it only deinitialises CUDA state, which the
// CPU build does not have). Go never collects a reference cycle that holds
// an object with a finalizer, and a tape machine sits in such a cycle with
// its program and the graph's values: with the finalizer, every machine
// ever built — and every tensor it ran — stays alive for the life of the
// process (about 7 MB per gradient look-ahead at the GMM shape; 24 GB over
// a 600-run MNIST sweep). Every machine in this module is built here.
func TapeMachine(g *G.ExprGraph, opts ...G.VMOpt) G.VM {
	m := G.NewTapeMachine(g, opts...)
	runtime.SetFinalizer(m, nil)
	return m
}
