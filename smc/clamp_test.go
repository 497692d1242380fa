package smc

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ddsmc/ddsmc/diffusion"
)

// Prompt conditioning: with positions clamped (a prefix, or an infilling
// pattern), every proposal and twist of the exactness suite leaves them at
// their tokens, and the weighted particles converge to the exactly
// enumerated conditional target π(x0 | clamp) (ExactTargetFrom), within
// the same bound as the unconditional exactness test.
func TestClampedRunsMatchTheExactConditionalTarget(t *testing.T) {
	const N = 10000
	for _, clamp := range [][]int{{1, -1, -1}, {-1, 2, -1}} {
		for _, su := range setups() {
			t.Run(su.name, func(t *testing.T) {
				tg := su.target(t, 2)
				ex, err := ExactTargetFrom(su.target(t, 1), toyGrid(t, toyT), clamp, 1)
				if err != nil {
					t.Fatal(err)
				}
				s, err := New(tg, Config{N: N, Grid: toyGrid(t, toyT), Lambda: su.lambda, Twist: su.twist(2), Proposal: su.proposal(t, 2),
					Final: FinalWeighted, Workers: 2, RewardBatch: 7, Clamp: clamp})
				if err != nil {
					t.Fatal(err)
				}
				res, err := s.Run(rand.New(rand.NewPCG(3, 4)))
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i < len(res.X); i += toyL {
					for l, c := range clamp {
						if c >= 0 && res.X[i+l] != c {
							t.Fatalf("particle %d has token %d at clamped position %d, want %d", i/toyL, res.X[i+l], l, c)
						}
					}
				}
				p, err := WeightedPMF(res.X, res.LogW, toyL, toyV)
				if err != nil {
					t.Fatal(err)
				}
				tv, _ := diffusion.TotalVariation(p, ex.Target)
				if b := smcTVBound(27, N); tv > b {
					t.Errorf("clamp %v: TV %.4f to the exact conditional target, over the bound %.4f", clamp, tv, b)
				}
			})
		}
	}
}

// A clamp of the wrong length, a token out of range, and clamping with
// ReMDM remasking are errors.
func TestClampErrors(t *testing.T) {
	grid := toyGrid(t, toyT)
	base := toyReverse(t, 1)
	for _, c := range []struct {
		clamp []int
		want  string
	}{{[]int{1, 2}, "clamp has 2 positions"}, {[]int{0, 3, -1}, "clamp position 1 = 3"}, {[]int{-2, 0, 0}, "clamp position 0 = -2"}} {
		if _, err := New(Target{Base: base, Alpha: 1}, Config{N: 4, Grid: grid, Clamp: c.clamp}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error containing %q", c.clamp, err, c.want)
		}
	}
	k := toyKernel()
	k.Eta = 0.1
	remdm, err := NewReverse(k, toyPool(1, 0), 8)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Target{Base: remdm, Alpha: 1}, Config{N: 4, Grid: grid, Clamp: []int{1, -1, -1}}); err == nil || !strings.Contains(err.Error(), "eta = 0") {
		t.Errorf("clamping with ReMDM: %v", err)
	}
}
