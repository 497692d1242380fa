package testutil

import (
	"fmt"
	"math"
	"testing"
)

// recorder is a testing.TB that records failures instead of stopping.
type recorder struct {
	testing.TB
	errors, fatals []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.fatals = append(r.fatals, fmt.Sprintf(format, args...))
}

// cubic is f(x) = Σ_j sin(x_j)·x_{j+1}³ with its exact gradient.
func cubic(x []float64) (float64, []float64) {
	f, g := 0.0, make([]float64, len(x))
	for j := 0; j+1 < len(x); j++ {
		f += math.Sin(x[j]) * x[j+1] * x[j+1] * x[j+1]
		g[j] += math.Cos(x[j]) * x[j+1] * x[j+1] * x[j+1]
		g[j+1] += 3 * math.Sin(x[j]) * x[j+1] * x[j+1]
	}
	return f, g
}

// Both stencils accept the exact gradient of a smooth function, leave x
// as it was, and count every coordinate.
func TestCheckerAcceptsExactGradient(t *testing.T) {
	for _, c := range []*Checker{
		{Stencil: Central, H: 1e-6, Tol: 1e-6},
		{Stencil: FivePoint, H: 1e-3, Tol: 1e-9},
		{Stencil: Central, H: 1e-6, Tol: 1e-6, ScaleByEstimate: true},
	} {
		x := []float64{0.3, -1.2, 0.8, 2.1, -0.4}
		before := append([]float64(nil), x...)
		_, g := cubic(x)
		f := func() float64 { v, _ := cubic(x); return v }
		c.All(t, "d f/d x", f, x, g)
		for j := range x {
			if x[j] != before[j] {
				t.Fatalf("x[%d] not restored: %v, was %v", j, x[j], before[j])
			}
		}
		if c.Checked != len(x) || !(c.Worst <= c.Tol) {
			t.Fatalf("stencil %d: %d checked, worst %g", c.Stencil, c.Checked, c.Worst)
		}
		t.Logf("stencil %d, h=%g: worst relative error %.2g", c.Stencil, c.H, c.Worst)
	}
}

// A deliberately wrong gradient (one coordinate off by 1e-4 relative, or
// NaN) fails with Fatalf, or Errorf under Continue, naming the coordinate.
func TestCheckerCatchesWrongGradient(t *testing.T) {
	x := []float64{0.3, -1.2, 0.8, 2.1, -0.4}
	f := func() float64 { v, _ := cubic(x); return v }
	for _, tc := range []struct {
		name  string
		wrong func(float64) float64
	}{
		{"off by 1e-4", func(g float64) float64 { return g * (1 + 1e-4) }},
		{"NaN", func(float64) float64 { return math.NaN() }},
		{"sign", func(g float64) float64 { return -g }},
	} {
		for _, cont := range []bool{false, true} {
			_, g := cubic(x)
			g[2] = tc.wrong(g[2])
			r := &recorder{TB: t}
			c := &Checker{H: 1e-6, Tol: 1e-6, Continue: cont}
			c.All(r, "d f/d x", f, x, g)
			got, other := r.fatals, r.errors
			if cont {
				got, other = other, got
			}
			if len(got) != 1 || len(other) != 0 {
				t.Fatalf("%s (continue %v): fatals %q, errors %q; want one failure", tc.name, cont, r.fatals, r.errors)
			}
			if want := "d f/d x[2]: "; len(got[0]) < len(want) || got[0][:len(want)] != want {
				t.Fatalf("%s: message %q does not name the coordinate", tc.name, got[0])
			}
		}
	}
}

// RelErr is |a − n| / max(Floor, |a|, |n|), or max(Floor, |n|) under
// ScaleByEstimate, with a floor of 1 by default.
func TestRelErrDenominators(t *testing.T) {
	for _, tc := range []struct {
		c    Checker
		a, n float64
		want float64
	}{
		{Checker{}, 0.5, 0.25, 0.25},
		{Checker{}, 4, 2, 0.5},
		{Checker{ScaleByEstimate: true}, 4, 2, 1},
		{Checker{ScaleByEstimate: true}, 0.5, 0.25, 0.25},
		{Checker{Floor: 1e-3}, 0.02, 0.01, 0.5},
		{Checker{Floor: 1e-3}, 0, 0, 0},
	} {
		if got := tc.c.RelErr(tc.a, tc.n); got != tc.want {
			t.Errorf("%+v: RelErr(%v, %v) = %v, want %v", tc.c, tc.a, tc.n, got, tc.want)
		}
	}
}

// On exp at a step of 1e-2 the truncation errors are h²/6 (central) and
// h⁴/30 (five-point) relative, and the calls come in the documented order.
func TestStencilTruncationAndOrder(t *testing.T) {
	const h = 1e-2
	c := Central.Derivative(math.Exp, 0, h)
	p := FivePoint.Derivative(math.Exp, 0, h)
	if e := math.Abs(c-1) / (h * h / 6); e < 0.9 || e > 1.1 {
		t.Errorf("central error %g, %.3g × h²/6", c-1, e)
	}
	if e := math.Abs(p-1) / (h * h * h * h / 30); e < 0.5 || e > 1.5 {
		t.Errorf("five-point error %g, %.3g × h⁴/30", p-1, e)
	}
	var at []float64
	g := func(v float64) float64 { at = append(at, v); return v }
	FivePoint.Derivative(g, 1, 0.5)
	if fmt.Sprint(at) != "[1.5 0.5 2 0]" {
		t.Errorf("five-point evaluation order %v", at)
	}
}
