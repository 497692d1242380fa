package diffusion

import (
	"fmt"
	"math"
)

// Denoiser maps noisy sequences to x0-logits, i.e. the SUBS denoiser
// x̂_θ(x_t) = p_θ(x0 | x_t) of paper.md §1.1 before the softmax.
type Denoiser interface {
	// X0Logits writes x0-logits for B = len(t) sequences of length L: xt has
	// length B*L with values in 0..V (V = MASK), t[b] is the time of sequence
	// b, and out has length B*L*V (row-major [B][L][V]).
	X0Logits(xt []int, t []float64, out []float64) error
	// Shape returns the sequence length L and vocabulary size V (excluding MASK).
	Shape() (L, V int)
}

// maxEnumStates bounds the size of enumerated state spaces (V^L or (V+1)^L).
const maxEnumStates = 1 << 24

// PosteriorDenoiser is the exact data-posterior denoiser p(x0 | x_t) for a
// data pmf over V^L: its x0-logits at position l are the log marginals
// log P(x0^l = v | x0 agrees with x_t at every unmasked position). For
// masked diffusion this posterior does not depend on t. Impossible tokens
// get −Inf. It implements Denoiser.
//
// If x_t agrees with no sequence of positive mass the posterior is
// undefined and X0Logits returns an error. Note that the T-step chain can
// reach such states when pdata lacks full support: positions unmasked in
// the same step are drawn independently from their marginals (e.g. [0 2 M]
// from a pmf supported on {000, 222, ...}). Use a pmf with full support
// (e.g. mix in a little uniform mass) for sampling and ExactMarginal.
type PosteriorDenoiser struct {
	seqLen  int
	vocab   int
	support []int     // decoded support sequences, flat [n][L]
	mass    []float64 // their probabilities
}

// NewPosteriorDenoiser builds the exact posterior denoiser of pdata, a pmf
// over V^L indexed by Index (length V^L). Entries must be finite and
// non-negative and sum to 1 within 1e-6 (they are renormalised).
func NewPosteriorDenoiser(pdata []float64, L, V int) (*PosteriorDenoiser, error) {
	if L < 1 || V < 1 {
		return nil, fmt.Errorf("diffusion: posterior denoiser needs L >= 1 and V >= 1, got L=%d V=%d", L, V)
	}
	K, ok := powInt(V, L)
	if !ok || K > maxEnumStates {
		return nil, fmt.Errorf("diffusion: state space %d^%d too large to enumerate", V, L)
	}
	if len(pdata) != K {
		return nil, fmt.Errorf("diffusion: pdata has length %d, want V^L = %d", len(pdata), K)
	}
	sum := 0.0
	for i, p := range pdata {
		if !(p >= 0) || math.IsInf(p, 1) {
			return nil, fmt.Errorf("diffusion: pdata[%d] = %v is not a probability", i, p)
		}
		sum += p
	}
	if math.Abs(sum-1) > 1e-6 {
		return nil, fmt.Errorf("diffusion: pdata sums to %v, want 1", sum)
	}
	d := &PosteriorDenoiser{seqLen: L, vocab: V}
	x := make([]int, L)
	for i, p := range pdata {
		if p > 0 {
			Unindex(i, L, V, x)
			d.support = append(d.support, x...)
			d.mass = append(d.mass, p/sum)
		}
	}
	return d, nil
}

// Shape returns (L, V).
func (d *PosteriorDenoiser) Shape() (L, V int) { return d.seqLen, d.vocab }

// TimeIndependent reports true: the exact posterior of masked diffusion
// does not depend on t.
func (d *PosteriorDenoiser) TimeIndependent() bool { return true }

// X0Logits writes the exact posterior log-marginals (see PosteriorDenoiser).
// The times t are only used for the batch size. It is an error if some
// sequence of xt agrees with no sequence in the data support.
func (d *PosteriorDenoiser) X0Logits(xt []int, t []float64, out []float64) error {
	L, V := d.seqLen, d.vocab
	B := len(t)
	if len(xt) != B*L {
		return fmt.Errorf("diffusion: xt has length %d, want B*L = %d", len(xt), B*L)
	}
	if len(out) != B*L*V {
		return fmt.Errorf("diffusion: out has length %d, want B*L*V = %d", len(out), B*L*V)
	}
	for i, v := range xt {
		if v < 0 || v > V {
			return fmt.Errorf("diffusion: token xt[%d] = %d outside 0..%d", i, v, V)
		}
	}
	for b := range B {
		seq := xt[b*L : (b+1)*L]
		o := out[b*L*V : (b+1)*L*V]
		clear(o)
		z := 0.0
	support:
		for j, p := range d.mass {
			x0 := d.support[j*L : (j+1)*L]
			for l, v := range seq {
				if v != V && v != x0[l] {
					continue support
				}
			}
			z += p
			for l, v := range x0 {
				o[l*V+v] += p
			}
		}
		if z == 0 {
			return fmt.Errorf("diffusion: sequence %d of xt %v is inconsistent with the data support", b, seq)
		}
		lz := math.Log(z)
		for i, p := range o {
			o[i] = math.Log(p) - lz
		}
	}
	return nil
}
