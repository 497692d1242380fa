package smc

import (
	"fmt"
	"math"
)

// LambdaFloor is the smallest tempering exponent: the look-ahead reward
// r̂ = (α/λ)·log ψ divides by λ, so λ is clamped to at least this value
// (paper.md §1.4: "λ is clamped to ≥ 0.001").
const LambdaFloor = 0.001

// Lambda is a tempering schedule for the intermediate targets
// π_t(x_t) ∝ p_θ(x_t)·exp(λ_t·r̂(x_t)/α) (paper.md §1.2, §1.4). It is
// indexed by the number of reverse steps taken, i = 0 (all-mask, t = 1) to
// T (clean, t = 0), at time t = grid[T−i]. The final target always uses
// λ = 1 with the exact reward, whatever the schedule says at i = T.
type Lambda struct {
	// Kind is "constant" (λ ≡ 1; also the zero value ""), "linear" (λ_i = min(i/K, 1): 0 at the
	// start, 1 after K steps), "exp" (λ_i = min((1+Gamma)^i − 1, 1), the
	// paper's MDM ramp), "time" (λ = 1 − t), "list" (Values) or "adaptive"
	// (chosen from the particles at each step to keep ESS ≥ ESS·N; see
	// adaptive.go).
	Kind string
	// K is the ramp length of "linear" in steps (≥ 1).
	K int
	// Gamma is the growth rate of "exp" (> 0; the paper uses 0.05).
	Gamma float64
	// Values are λ_0..λ_T for "list" (length T+1, each in [0, 1]).
	Values []float64
	// ESS is the target ESS fraction κ_λ ∈ (0, 1] of "adaptive" (the
	// conditional ESS of each step's tempering; κ_λ = 1 allows no change of
	// the weights, so λ stays at LambdaFloor until the final step).
	ESS float64
}

// Validate checks the schedule for a run of T steps.
func (l Lambda) Validate(T int) error {
	switch l.Kind {
	case "", "constant", "time":
	case "linear":
		if l.K < 1 {
			return fmt.Errorf("smc: linear lambda ramp needs k >= 1 steps, got %d", l.K)
		}
	case "exp":
		if !(l.Gamma > 0) || math.IsInf(l.Gamma, 1) {
			return fmt.Errorf("smc: exp lambda ramp needs gamma > 0, got %v", l.Gamma)
		}
	case "list":
		if len(l.Values) != T+1 {
			return fmt.Errorf("smc: lambda list has %d values, want T+1 = %d", len(l.Values), T+1)
		}
		for i, v := range l.Values {
			if !(v >= 0 && v <= 1) {
				return fmt.Errorf("smc: lambda list value %d = %v outside [0, 1]", i, v)
			}
		}
	case "adaptive":
		if !(l.ESS > 0 && l.ESS <= 1) {
			return fmt.Errorf("smc: adaptive lambda needs a target ESS fraction in (0, 1], got %v", l.ESS)
		}
		if l.Values != nil {
			return fmt.Errorf("smc: adaptive lambda takes no list of values (got %d)", len(l.Values))
		}
	default:
		return fmt.Errorf("smc: unknown lambda schedule %q (want constant, linear, exp, time, list or adaptive)", l.Kind)
	}
	return nil
}

// At returns λ after i of T steps, at time t, floored at LambdaFloor. For
// "adaptive" it is LambdaFloor, the lower end of the first search (the
// engine chooses the actual values from the particles).
func (l Lambda) At(i, T int, t float64) float64 {
	var v float64
	switch l.Kind {
	case "adaptive":
		v = 0
	case "linear":
		v = math.Min(float64(i)/float64(l.K), 1)
	case "exp":
		v = math.Min(math.Pow(1+l.Gamma, float64(i))-1, 1)
	case "time":
		v = 1 - t
	case "list":
		v = l.Values[i]
	default:
		v = 1
	}
	return math.Max(v, LambdaFloor)
}
