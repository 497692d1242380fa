package smc

import (
	"math/rand/v2"
	"testing"
)

// TestGatherInPlaceMatchesGather checks the in-place permutation of rows
// against gather on random ancestor vectors: sorted (systematic and
// stratified resampling) and not (partial resampling), with duplicates,
// the identity, a single survivor and cycles; the scratch is reused.
func TestGatherInPlaceMatchesGather(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	var scratch []float64
	for trial := range 3000 {
		n, w := 1+rng.IntN(12), 1+rng.IntN(4)
		anc := make([]int, n)
		switch trial % 5 {
		case 0: // identity
			for j := range anc {
				anc[j] = j
			}
		case 1: // one survivor
			p := rng.IntN(n)
			for j := range anc {
				anc[j] = p
			}
		case 2: // a permutation (cycles)
			copy(anc, rng.Perm(n))
		default: // random, sorted half the time
			for j := range anc {
				anc[j] = rng.IntN(n)
			}
			if trial%2 == 0 {
				for i := 1; i < n; i++ {
					for k := i; k > 0 && anc[k] < anc[k-1]; k-- {
						anc[k], anc[k-1] = anc[k-1], anc[k]
					}
				}
			}
		}
		a := make([]float64, n*w)
		for i := range a {
			a[i] = rng.NormFloat64()
		}
		want := gather(a, anc, w)
		gatherInPlace(a, anc, w, &scratch)
		for i := range a {
			if a[i] != want[i] {
				t.Fatalf("n %d w %d anc %v: row %d = %v, gather %v", n, w, anc, i/w, a[i/w*w:i/w*w+w], want[i/w*w:i/w*w+w])
			}
		}
	}
}
