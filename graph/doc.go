// Package graph owns the compiled denoisers: a model (MLP or transformer)
// built from package layers, compiled once per batch shape and re-run with new
// inputs, its deterministic seeded initialisation, its gradient with respect
// to the one-hot input, and the versioned, checksummed parameter file.
package graph
