package task

import (
	"errors"
	"fmt"
	"math/rand/v2"
)

// Dataset is a set of clean (fully unmasked) token sequences, all of length L
// over the vocabulary {0, …, V−1}. Tokens holds the rows flat and row-major:
// row i is Tokens[i*L : (i+1)*L], so len(Tokens) = Len()·L.
type Dataset struct {
	// L is the sequence length and V the vocabulary size.
	L, V int
	// Tokens holds the rows flat, row-major, len = Len()·L.
	Tokens []int
}

// NewDataset checks and wraps a flat, row-major token slice. It requires
// L > 0, V > 0, len(tokens) a positive multiple of L, and every token in
// [0, V). The tokens are copied, so the caller may reuse its slice.
func NewDataset(L, V int, tokens []int) (*Dataset, error) {
	if L <= 0 {
		return nil, fmt.Errorf("task: sequence length L = %d, want L > 0", L)
	}
	if V <= 0 {
		return nil, fmt.Errorf("task: vocabulary size V = %d, want V > 0", V)
	}
	if len(tokens) == 0 {
		return nil, errors.New("task: empty data set")
	}
	if len(tokens)%L != 0 {
		return nil, fmt.Errorf("task: %d tokens is not a multiple of the sequence length L = %d", len(tokens), L)
	}
	for k, t := range tokens {
		if t < 0 || t >= V {
			return nil, fmt.Errorf("task: token %d at row %d, position %d is outside the vocabulary [0, %d)", t, k/L, k%L, V)
		}
	}
	return &Dataset{L: L, V: V, Tokens: append([]int(nil), tokens...)}, nil
}

// Len returns the number of sequences (rows) in the data set.
func (d *Dataset) Len() int { return len(d.Tokens) / d.L }

// Row returns sequence i as a sub-slice of Tokens (not a copy). Like slice
// indexing, it requires 0 ≤ i < Len().
func (d *Dataset) Row(i int) []int { return d.Tokens[i*d.L : (i+1)*d.L : (i+1)*d.L] }

// Split shuffles the rows with rng and returns the first heldOut of them as
// val and the rest as train; both are fresh copies and d is left unchanged.
// It requires 0 < heldOut < Len() so that neither part is empty.
func (d *Dataset) Split(rng *rand.Rand, heldOut int) (train, val *Dataset, err error) {
	if rng == nil {
		return nil, nil, errors.New("task: Split needs a random number generator, got nil")
	}
	n := d.Len()
	if heldOut <= 0 || heldOut >= n {
		return nil, nil, fmt.Errorf("task: cannot hold out %d of %d rows, want 0 < heldOut < %d", heldOut, n, n)
	}
	perm := rng.Perm(n)
	gather := func(rows []int) *Dataset {
		out := &Dataset{L: d.L, V: d.V, Tokens: make([]int, 0, len(rows)*d.L)}
		for _, r := range rows {
			out.Tokens = append(out.Tokens, d.Row(r)...)
		}
		return out
	}
	return gather(perm[heldOut:]), gather(perm[:heldOut]), nil
}

// Batch fills dst (len b·L) with b rows drawn uniformly at random, with
// replacement, from the data set. It requires b > 0 and len(dst) = b·L.
func (d *Dataset) Batch(rng *rand.Rand, b int, dst []int) error {
	if rng == nil {
		return errors.New("task: Batch needs a random number generator, got nil")
	}
	if b <= 0 {
		return fmt.Errorf("task: batch size %d, want > 0", b)
	}
	if len(dst) != b*d.L {
		return fmt.Errorf("task: batch buffer has length %d, want b·L = %d·%d = %d", len(dst), b, d.L, b*d.L)
	}
	n := d.Len()
	for k := range b {
		copy(dst[k*d.L:(k+1)*d.L], d.Row(rng.IntN(n)))
	}
	return nil
}
