package diffusion

import (
	"fmt"
	"math"
)

// Grid holds T+1 strictly increasing times with Grid[0] = 0 and Grid[T] = 1.
// Reverse step i (i = T..1) moves from t = Grid[i] to s = Grid[i-1].
type Grid []float64

// NewGrid returns a T-step grid (T ≥ 1). kind "linear" gives t_i = i/T;
// kind "cosine" gives t_i = cos(π/2·(1 − i/T)) (the toy discretisation of
// paper.md §1.1), computed as sin(π/2·i/T) so that the end points are exact.
func NewGrid(T int, kind string) (Grid, error) {
	if T < 1 {
		return nil, fmt.Errorf("diffusion: grid needs T >= 1, got %d", T)
	}
	g := make(Grid, T+1)
	switch kind {
	case "linear":
		for i := range g {
			g[i] = float64(i) / float64(T)
		}
	case "cosine":
		for i := range g {
			g[i] = math.Sin(math.Pi / 2 * float64(i) / float64(T))
		}
	default:
		return nil, fmt.Errorf("diffusion: unknown grid kind %q (want linear or cosine)", kind)
	}
	g[0], g[T] = 0, 1
	if err := g.Validate(); err != nil {
		return nil, err
	}
	return g, nil
}

// Steps returns the number of reverse steps T = len(g) − 1 (0 for an empty grid).
func (g Grid) Steps() int {
	if len(g) == 0 {
		return 0
	}
	return len(g) - 1
}

// Validate checks the Grid invariants: at least two times, Grid[0] = 0,
// Grid[T] = 1, and strictly increasing.
func (g Grid) Validate() error {
	if len(g) < 2 {
		return fmt.Errorf("diffusion: grid needs at least 2 times, got %d", len(g))
	}
	if g[0] != 0 || g[len(g)-1] != 1 {
		return fmt.Errorf("diffusion: grid must run from 0 to 1, got %v to %v", g[0], g[len(g)-1])
	}
	for i := 1; i < len(g); i++ {
		if !(g[i] > g[i-1]) {
			return fmt.Errorf("diffusion: grid not strictly increasing at %d (%v, %v)", i, g[i-1], g[i])
		}
	}
	return nil
}
