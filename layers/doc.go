// Package layers owns the Gorgonia neural building blocks used by denoisers,
// rewards and proposals: Linear, the one-hot input projection (so gradients
// with respect to the input exist), LayerNorm, a numerically stable
// log-softmax, GELU, an MLP, multi-head attention, a pre-LN transformer block
// and time (mask-rate) conditioning. Every op composed from Gorgonia
// primitives is finite-difference gradient-checked in float64.
//
// Gorgonia v0.9.18 bugs avoided here: InverseSqrt and Log2 have wrong
// gradients, the last-axis SoftMax/LogSoftMax kernels can return NaN/-Inf,
// and LogSumExp is wrong. None of them is used.
package layers
