package configs

import (
	"slices"
	"testing"
)

func TestBuiltinsAreListedAndReadable(t *testing.T) {
	names := Names()
	if !slices.IsSorted(names) || !slices.Contains(names, "gmm1") || !slices.Contains(names, "gmm2") || !slices.Contains(names, "dna") {
		t.Fatalf("Names() = %v, want a sorted list holding gmm1, gmm2 and dna", names)
	}
	for _, n := range names {
		if b, err := Get(n); err != nil || len(b) == 0 {
			t.Fatalf("Get(%q): %v", n, err)
		}
	}
	if _, err := Get("gmm3"); err == nil {
		t.Fatal("Get of an unknown name: want an error")
	}
}
