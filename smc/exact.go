package smc

import (
	"fmt"
	"math"

	"github.com/ddsmc/ddsmc/diffusion"
)

// maxExactStates bounds (V+1)^L for ExactTarget.
const maxExactStates = 1 << 20

// Exact is the exactly enumerated target of a small problem.
type Exact struct {
	// Base is the base path marginal m(x0) over V^L (diffusion.Index
	// order): p_θ(x0) of the T-step chain for Reverse, the path-space
	// product for Product. It sums to 1 when the base is normalised.
	Base []float64
	// Target is π(x0) = m(x0)·exp(r(x0)/α) / Z.
	Target []float64
	// LogZ is log Z = log Σ_x0 m(x0)·exp(r(x0)/α), the quantity that
	// log Ẑ estimates.
	LogZ float64
	// Reward holds r(x0) for every x0.
	Reward []float64
}

// ExactTarget computes the target of a run by pushing the base path
// kernel forward over all (V+1)^L states along grid, starting from the
// all-mask state, then tilting by exp(r/α). It is the oracle of the tests
// and of the synthetic experiments (L = 2). It is an error if (V+1)^L
// exceeds 2^20 or mass is left on masked states at t = 0.
func ExactTarget(tg Target, grid diffusion.Grid, workers int) (*Exact, error) {
	return ExactTargetFrom(tg, grid, nil, workers)
}

// ExactTargetFrom is ExactTarget starting from the state clamp instead of
// the all-mask state (clamp as in Config.Clamp: a token, or −1 for a
// masked position; nil is all-mask): the exact conditional target
// π(x0 | clamp) of a run with that Config.Clamp.
func ExactTargetFrom(tg Target, grid diffusion.Grid, clamp []int, workers int) (*Exact, error) {
	if err := tg.Validate(); err != nil {
		return nil, err
	}
	if tg.Reward == nil {
		tg.Reward = zeroReward{}
	}
	if err := grid.Validate(); err != nil {
		return nil, err
	}
	L, V := tg.Base.Shape()
	M := V + 1
	S := 1
	for range L {
		if S > maxExactStates/M {
			return nil, fmt.Errorf("smc: (V+1)^L = %d^%d states too many to enumerate", M, L)
		}
		S *= M
	}
	W := tg.Base.Width()
	if err := checkClamp(clamp, tg.Base, L, V); err != nil {
		return nil, err
	}
	cur := make([]float64, S)
	start := S - 1 // all MASK
	if clamp != nil {
		start = 0
		for _, c := range clamp {
			if c < 0 {
				c = V
			}
			start = start*M + c
		}
	}
	cur[start] = 1
	tok := make([]int, L)
	k := make([]float64, L*M)
	T := grid.Steps()
	for i := T; i >= 1; i-- {
		t, s := grid[i], grid[i-1]
		var idx []int
		var xs []int
		for j, p := range cur {
			if p != 0 {
				idx = append(idx, j)
				decodeState(j, L, M, tok)
				xs = append(xs, tok...)
			}
		}
		ev := make([]float64, len(idx)*W)
		if err := tg.Base.Eval(xs, t, ev, workers); err != nil {
			return nil, err
		}
		next := make([]float64, S)
		for n, j := range idx {
			xt := xs[n*L : (n+1)*L]
			if err := tg.Base.LogKernel(xt, ev[n*W:(n+1)*W], t, s, k); err != nil {
				return nil, err
			}
			// Enumerate the product of per-position supports.
			var rec func(l, state int, p float64)
			rec = func(l, state int, p float64) {
				if l == L {
					next[state] += p
					return
				}
				for v := range M {
					if lk := k[l*M+v]; !math.IsInf(lk, -1) {
						rec(l+1, state*M+v, p*math.Exp(lk))
					}
				}
			}
			rec(0, 0, cur[j])
		}
		cur = next
	}
	K := 1
	for range L {
		K *= V
	}
	ex := &Exact{Base: make([]float64, K), Target: make([]float64, K), Reward: make([]float64, K)}
	all := make([]int, K*L)
	for j, p := range cur {
		if p == 0 {
			continue
		}
		decodeState(j, L, M, tok)
		x0 := diffusion.Index(tok, V)
		if x0 < 0 {
			return nil, fmt.Errorf("smc: mass %v left on the masked state %v at t = 0", p, tok)
		}
		ex.Base[x0] += p
	}
	for j := range K {
		diffusion.Unindex(j, L, V, all[j*L:(j+1)*L])
	}
	if err := tg.Reward.Reward(all, ex.Reward); err != nil {
		return nil, wrapf(err, "reward")
	}
	if err := checkRewards(ex.Reward, "sequence"); err != nil {
		return nil, err
	}
	lw := make([]float64, K)
	for j := range K {
		lw[j] = math.Log(ex.Base[j]) + ex.Reward[j]/tg.Alpha
	}
	lz, err := Normalize(lw, lw)
	if err != nil {
		return nil, wrapf(err, "exact target")
	}
	ex.LogZ = lz
	for j := range K {
		ex.Target[j] = math.Exp(lw[j])
	}
	return ex, nil
}

// decodeState writes the base-M digits of state j (first position most
// significant) into tok.
func decodeState(j, L, M int, tok []int) {
	for l := L - 1; l >= 0; l-- {
		tok[l] = j % M
		j /= M
	}
}

// WeightedPMF returns the weighted empirical distribution over V^L
// (diffusion.Index order) of particles x (N·L clean tokens) with
// normalised log-weights logw (nil: uniform).
func WeightedPMF(x []int, logw []float64, L, V int) ([]float64, error) {
	if L < 1 || V < 1 || len(x)%L != 0 {
		return nil, fmt.Errorf("smc: WeightedPMF: %d tokens, L=%d V=%d", len(x), L, V)
	}
	N := len(x) / L
	if logw != nil && len(logw) != N {
		return nil, fmt.Errorf("smc: WeightedPMF: %d weights for %d particles", len(logw), N)
	}
	K := 1
	for range L {
		K *= V
	}
	p := make([]float64, K)
	for i := range N {
		j := diffusion.Index(x[i*L:(i+1)*L], V)
		if j < 0 {
			return nil, fmt.Errorf("smc: WeightedPMF: particle %d %v is not a clean sequence", i, x[i*L:(i+1)*L])
		}
		w := 1 / float64(N)
		if logw != nil {
			w = math.Exp(logw[i])
		}
		p[j] += w
	}
	return p, nil
}
