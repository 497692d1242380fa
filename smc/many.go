package smc

import (
	"fmt"
	"math/rand/v2"
)

// RunMany performs R = len(rngs) independent runs of the sampler's target
// and configuration, run r drawing from rngs[r]: it returns exactly what R
// calls s.Run(rngs[r]) would (same samples, weights, evidence and traces),
// but evaluates the networks of all R·N particles together.
func (s *Sampler) RunMany(rngs []*rand.Rand) ([]*Result, error) {
	if len(rngs) == 0 {
		return nil, fmt.Errorf("smc: RunMany needs at least one rng")
	}
	out := make([]*Result, len(rngs))
	for r, rng := range rngs {
		res, err := s.Run(rng)
		if err != nil {
			return nil, fmt.Errorf("smc: run %d: %w", r, err)
		}
		out[r] = res
	}
	return out, nil
}
