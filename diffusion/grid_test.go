package diffusion

import (
	"math"
	"testing"
)

func TestNewGrid(t *testing.T) {
	for _, T := range []int{1, 2, 3, 100, 1000} {
		for _, kind := range []string{"linear", "cosine"} {
			g, err := NewGrid(T, kind)
			if err != nil {
				t.Fatalf("T=%d %s: %v", T, kind, err)
			}
			if g.Steps() != T || len(g) != T+1 {
				t.Fatalf("T=%d %s: Steps %d len %d", T, kind, g.Steps(), len(g))
			}
			if g[0] != 0 || g[T] != 1 {
				t.Errorf("T=%d %s: endpoints %v %v", T, kind, g[0], g[T])
			}
			for i := range g {
				u := float64(i) / float64(T)
				want := u
				if kind == "cosine" {
					want = math.Cos(math.Pi / 2 * (1 - u))
				}
				if math.Abs(g[i]-want) > 1e-15 {
					t.Errorf("T=%d %s: g[%d] = %v, want %v", T, kind, i, g[i], want)
				}
				if i > 0 && !(g[i] > g[i-1]) {
					t.Errorf("T=%d %s: not increasing at %d", T, kind, i)
				}
			}
		}
	}
}

func TestGridErrors(t *testing.T) {
	if _, err := NewGrid(0, "linear"); err == nil {
		t.Error("T=0: no error")
	}
	if _, err := NewGrid(4, "geometric"); err == nil {
		t.Error("unknown kind: no error")
	}
	for _, g := range []Grid{nil, {0}, {0, 0.5}, {0.1, 1}, {0, 0.5, 0.5, 1}, {0, 0.7, 0.3, 1}, {0, math.NaN(), 1}} {
		if err := g.Validate(); err == nil {
			t.Errorf("grid %v: no error", g)
		}
	}
	if (Grid{}).Steps() != 0 {
		t.Error("empty grid should have 0 steps")
	}
}
