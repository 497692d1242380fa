package smc

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/ddsmc/ddsmc/diffusion"
	"github.com/ddsmc/ddsmc/internal/testutil"
)

// countingTI is a time-independent denoiser (the hash denoiser at a fixed
// time) that counts the rows it evaluates.
type countingTI struct {
	testutil.HashDenoiser
	rows *int
}

func (d countingTI) TimeIndependent() bool { return true }
func (d countingTI) X0Logits(xt []int, t []float64, out []float64) error {
	*d.rows += len(t)
	fixed := make([]float64, len(t))
	for i := range fixed {
		fixed[i] = 0.5
	}
	return d.HashDenoiser.X0Logits(xt, fixed, out)
}

// TestLogitCacheKeepsResultsAndSavesCalls: with a time-independent
// denoiser, the reverse base's logit cache gives bit-identical runs (reverse
// and locally optimal proposals) to the uncached evaluation, with fewer
// denoiser rows.
func TestLogitCacheKeepsResultsAndSavesCalls(t *testing.T) {
	defer func(old int) { MaxCachedStates = old }(MaxCachedStates)
	run := func(maxCache int, prop Proposal, tw Twist) (*Result, int) {
		MaxCachedStates = maxCache
		rows := 0
		dens := []diffusion.Denoiser{countingTI{testutil.HashDenoiser{L: toyL, V: toyV, Scale: 2}, &rows}, countingTI{testutil.HashDenoiser{L: toyL, V: toyV, Scale: 2}, &rows}}
		b, err := NewReverse(toyKernel(), dens, 8)
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(Target{Base: b, Reward: toyTable(), Alpha: 0.7}, Config{N: 300, Grid: toyGrid(t, toyT),
			Lambda: Lambda{Kind: "constant"}, Twist: tw, Proposal: prop, Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Run(rand.New(rand.NewPCG(3, 3)))
		if err != nil {
			t.Fatal(err)
		}
		return res, rows
	}
	for _, c := range []struct {
		p  Proposal
		tw Twist
	}{{ReverseProposal{}, LookAhead{Phi: 2}}, {LOP{}, ExactLookAhead{}}} {
		a, rowsA := run(0, c.p, c.tw)
		b, rowsB := run(1<<16, c.p, c.tw)
		if a.LogZ != b.LogZ || fmt.Sprint(a.X, a.LogW) != fmt.Sprint(b.X, b.LogW) {
			t.Fatalf("%s: cached run differs (log Ẑ %v vs %v)", c.p.Name(), a.LogZ, b.LogZ)
		}
		// 64 states at most, plus padding to the batch of 8 per call.
		if rowsB >= rowsA || rowsB > 64+8*(toyT+1) {
			t.Fatalf("%s: cache evaluated %d rows, uncached %d; want fewer, at most the 64 states plus padding", c.p.Name(), rowsB, rowsA)
		}
		t.Logf("%s: denoiser rows %d uncached, %d cached", c.p.Name(), rowsA, rowsB)
	}
}

// Prime fills the cache: Eval then returns the primed logits without a
// denoiser call; mismatched lengths are an error.
func TestReversePrimeFillsTheCache(t *testing.T) {
	rows := 0
	b, err := NewReverse(toyKernel(), []diffusion.Denoiser{countingTI{testutil.HashDenoiser{L: toyL, V: toyV, Scale: 2}, &rows}}, 4)
	if err != nil {
		t.Fatal(err)
	}
	x := make([]int, toyL)
	want := make([]float64, toyL*toyV)
	for i := range want {
		want[i] = float64(i) + 0.5
	}
	if err := b.Prime(x, want); err != nil {
		t.Fatal(err)
	}
	got := make([]float64, len(want))
	if err := b.Eval(x, 0.5, got, 1); err != nil {
		t.Fatal(err)
	}
	if rows != 0 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after Prime: %d denoiser rows, logits %v, want 0 and %v", rows, got, want)
	}
	if err := b.Prime(x, want[1:]); err == nil {
		t.Fatal("Prime accepted logits of the wrong length")
	}
}
