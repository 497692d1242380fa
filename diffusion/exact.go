package diffusion

import (
	"fmt"
	"math"
)

// powInt returns base^exp and whether it is at most math.MaxInt32 (so that
// callers can compare it with maxEnumStates without overflow).
func powInt(base, exp int) (int, bool) {
	if base < 1 || exp < 0 {
		return 0, false
	}
	r := 1
	for range exp {
		if r > math.MaxInt32/base { // keep well inside int range
			return 0, false
		}
		r *= base
	}
	return r, true
}

// Index maps a clean sequence x ∈ V^L to an integer in [0, V^L), first
// position most significant (base-V digits). It returns −1 if V < 1, a token
// lies outside 0..V-1, or the index would overflow.
func Index(x []int, V int) int {
	if V < 1 {
		return -1
	}
	idx := 0
	for _, v := range x {
		if v < 0 || v >= V || idx > (math.MaxInt-v)/V {
			return -1
		}
		idx = idx*V + v
	}
	return idx
}

// Unindex is the inverse of Index: it writes the L base-V digits of i into
// x[:L], first position most significant. If the input is invalid (L < 0,
// V < 1, len(x) < L, or i outside [0, V^L)) it fills x[:min(L, len(x))]
// with −1 instead (it cannot return an error).
func Unindex(i, L, V int, x []int) {
	n := min(max(L, 0), len(x))
	bad := L < 0 || V < 1 || len(x) < L || i < 0
	if !bad {
		for l := L - 1; l >= 0; l-- {
			x[l] = i % V
			i /= V
		}
		bad = i != 0
	}
	if bad {
		for l := range n {
			x[l] = -1
		}
	}
}

// ExactMarginal returns the exact marginal over V^L (length V^L, indexed by
// Index) of the T-step reverse chain of kernel k over grid, started from the
// all-mask state at t = 1, computed by pushing the distribution forward over
// all (V+1)^L states (state index: base-(V+1) digits, first position most
// significant). At each step, all states with positive mass that contain a
// MASK are sent to d in calls of exactly batch sequences (the last call is
// padded with all-mask rows). Fully unmasked states need no denoiser call:
// with Eta = 0 they are absorbing, and with Eta > 0 their remasking does not
// depend on the logits. For each state the factorised kernel is enumerated
// over the product of the per-position supports, so the cost is dominated by
// the all-mask state ((V+1)^L targets) and the denoiser calls.
//
// It is an error if (V+1)^L exceeds 2^24, if any mass is left on masked states
// at t = 0 (impossible when α(0) = 1), or if the result does not sum to 1
// within 1e-9.
func ExactMarginal(k Kernel, d Denoiser, grid Grid, batch int) ([]float64, error) {
	if err := k.Validate(); err != nil {
		return nil, err
	}
	if err := grid.Validate(); err != nil {
		return nil, err
	}
	if d == nil {
		return nil, fmt.Errorf("diffusion: ExactMarginal needs a denoiser")
	}
	if batch < 1 {
		return nil, fmt.Errorf("diffusion: batch must be >= 1, got %d", batch)
	}
	L, V := d.Shape()
	if L < 1 || V < 1 {
		return nil, fmt.Errorf("diffusion: denoiser shape L=%d V=%d invalid", L, V)
	}
	M := V + 1
	S, ok := powInt(M, L)
	if !ok || S > maxEnumStates {
		return nil, fmt.Errorf("diffusion: (V+1)^L = %d^%d states too many to enumerate", M, L)
	}
	cur := make([]float64, S)
	next := make([]float64, S)
	cur[S-1] = 1 // all digits V: the all-mask state

	xtBuf := make([]int, batch*L)
	tBuf := make([]float64, batch)
	logits := make([]float64, batch*L*V)
	dummy := make([]float64, L*V) // zero logits: ignored at unmasked positions
	row := make([]float64, M)
	supVal := make([][]int, L)
	supP := make([][]float64, L)
	for l := range L {
		supVal[l] = make([]int, 0, M)
		supP[l] = make([]float64, 0, M)
	}
	tokens := make([]int, L)
	var masked []int

	// push adds mass p of state x (decoded in tok) to next under tr.
	var rec func(l, idx int, prob float64)
	rec = func(l, idx int, prob float64) {
		if l == L {
			next[idx] += prob
			return
		}
		for j, v := range supVal[l] {
			rec(l+1, idx*M+v, prob*supP[l][j])
		}
	}
	push := func(tr *transition, tok []int, p float64, lg []float64) error {
		for l := range L {
			if err := tr.fill(tok[l], lg[l*V:(l+1)*V], row); err != nil {
				return fmt.Errorf("%w (state %v, position %d)", err, tok, l)
			}
			supVal[l], supP[l] = supVal[l][:0], supP[l][:0]
			for v, lp := range row {
				if lp > math.Inf(-1) {
					supVal[l] = append(supVal[l], v)
					supP[l] = append(supP[l], math.Exp(lp))
				}
			}
		}
		rec(0, 0, p)
		return nil
	}
	decode := func(x int, tok []int) (hasMask bool) {
		for l := L - 1; l >= 0; l-- {
			tok[l] = x % M
			x /= M
			if tok[l] == V {
				hasMask = true
			}
		}
		return hasMask
	}

	for i := grid.Steps(); i >= 1; i-- {
		t, s := grid[i], grid[i-1]
		tr, err := k.transition(t, s)
		if err != nil {
			return nil, err
		}
		clear(next)
		masked = masked[:0]
		for x, p := range cur {
			if p == 0 {
				continue
			}
			if decode(x, tokens) {
				masked = append(masked, x)
			} else if tr.sigma == 0 {
				next[x] += p
			} else if err := push(&tr, tokens, p, dummy); err != nil {
				return nil, err
			}
		}
		for start := 0; start < len(masked); start += batch {
			chunk := masked[start:min(start+batch, len(masked))]
			for j := range batch {
				seq := xtBuf[j*L : (j+1)*L]
				if j < len(chunk) {
					decode(chunk[j], seq)
				} else {
					for l := range seq {
						seq[l] = V
					}
				}
				tBuf[j] = t
			}
			if err := d.X0Logits(xtBuf, tBuf, logits); err != nil {
				return nil, fmt.Errorf("diffusion: denoiser at t=%v: %w", t, err)
			}
			for j, x := range chunk {
				decode(x, tokens) // re-decode: do not trust d to leave xtBuf alone
				if err := push(&tr, tokens, cur[x], logits[j*L*V:(j+1)*L*V]); err != nil {
					return nil, err
				}
			}
		}
		cur, next = next, cur
	}

	K, ok := powInt(V, L)
	if !ok {
		return nil, fmt.Errorf("diffusion: V^L overflows")
	}
	out := make([]float64, K)
	total, maskedMass := 0.0, 0.0
	for x, p := range cur {
		if p == 0 {
			continue
		}
		if decode(x, tokens) {
			maskedMass += p
			continue
		}
		out[Index(tokens, V)] += p
		total += p
	}
	if maskedMass > 0 {
		return nil, fmt.Errorf("diffusion: chain leaves mass %v on masked states at t=0 (need alpha(0) = 1)", maskedMass)
	}
	if math.Abs(total-1) > 1e-9 {
		return nil, fmt.Errorf("diffusion: chain marginal sums to %v, want 1 within 1e-9", total)
	}
	return out, nil
}
