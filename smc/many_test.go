package smc

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// resultString prints a result without its wall time, for exact
// comparisons (NaN-safe, unlike ==).
func resultString(r *Result) string {
	c := *r
	c.WallSeconds = 0
	return fmt.Sprintf("%+v", c)
}

// TestRunManyMatchesSeparateRuns checks, for every proposal/twist/target
// combination of the exactness tests and 1 or 3 workers, that RunMany with
// R rngs returns exactly the R results of separate Runs with the same
// seeds: particles, weights, rewards, evidence, the whole trace and the
// selected samples.
func TestRunManyMatchesSeparateRuns(t *testing.T) {
	const R, N = 4, 23
	seeds := func() []*rand.Rand {
		rngs := make([]*rand.Rand, R)
		for r := range rngs {
			rngs[r] = rand.New(rand.NewPCG(uint64(100+r), 7))
		}
		return rngs
	}
	for _, su := range setups() {
		for _, workers := range []int{1, 3} {
			for _, final := range []Final{FinalResample, FinalArgmaxReward} {
				s := su.sampler(t, N, workers, Trigger{}, Systematic, final)
				many, err := s.RunMany(seeds())
				if err != nil {
					t.Fatalf("%s: %v", su.name, err)
				}
				if len(many) != R {
					t.Fatalf("%s: %d results, want %d", su.name, len(many), R)
				}
				s2 := su.sampler(t, N, workers, Trigger{}, Systematic, final)
				for r, rng := range seeds() {
					one, err := s2.Run(rng)
					if err != nil {
						t.Fatal(err)
					}
					if a, b := resultString(one), resultString(many[r]); a != b {
						t.Fatalf("%s (workers %d, final %s): run %d differs between Run and RunMany (log Ẑ %v vs %v)",
							su.name, workers, final, r, one.LogZ, many[r].LogZ)
					}
				}
			}
		}
	}
}

// TestRunManyErrors checks RunMany's input validation.
func TestRunManyErrors(t *testing.T) {
	s := setups()[0].sampler(t, 5, 1, Trigger{}, Systematic, FinalResample)
	if _, err := s.RunMany(nil); err == nil {
		t.Error("RunMany(nil) did not fail")
	}
	if _, err := s.RunMany([]*rand.Rand{rand.New(rand.NewPCG(1, 1)), nil}); err == nil {
		t.Error("RunMany with a nil rng did not fail")
	}
}
