package testutil

import (
	"math"
	"testing"
)

// Stencil is a finite-difference rule for the derivative of a scalar
// function of one variable.
type Stencil int

const (
	// Central is (g(x+h) − g(x−h)) / 2h, with O(h²) truncation error.
	Central Stencil = iota
	// FivePoint is (8(g(x+h) − g(x−h)) − (g(x+2h) − g(x−2h))) / 12h, with
	// O(h⁴) truncation error, so a larger step keeps rounding noise down.
	FivePoint
)

// Derivative returns the stencil's estimate of g′(x) with step h. g is
// called at x+h and x−h (then x+2h and x−2h for FivePoint), in that order.
func (s Stencil) Derivative(g func(float64) float64, x, h float64) float64 {
	if s == FivePoint {
		return (8*(g(x+h)-g(x-h)) - (g(x+2*h) - g(x-2*h))) / (12 * h)
	}
	return (g(x+h) - g(x-h)) / (2 * h)
}

// Checker compares analytic partial derivatives of a scalar function with
// finite-difference estimates, one coordinate at a time, and fails the test
// when the relative error exceeds Tol or is NaN.
//
// The relative error of an analytic value a against an estimate n is
// |a − n| / max(Floor, |a|, |n|), or |a − n| / max(Floor, |n|) when
// ScaleByEstimate is set. Worst and Checked accumulate over every
// comparison, for a closing t.Logf.
type Checker struct {
	Stencil Stencil // the finite-difference rule (zero value: Central)
	H       float64 // the step
	Tol     float64 // the largest relative error accepted
	Floor   float64 // the floor of the relative error's denominator (0 means 1)
	// ScaleByEstimate leaves |a| out of the denominator.
	ScaleByEstimate bool
	// Continue reports a failure with Errorf and goes on; by default a
	// failure is reported with Fatalf.
	Continue bool

	Worst   float64 // the largest relative error seen so far
	Checked int     // the number of comparisons so far
}

// RelErr returns the relative error of the analytic value a against the
// estimate n, as defined on Checker.
func (c *Checker) RelErr(a, n float64) float64 {
	floor := c.Floor
	if floor == 0 {
		floor = 1
	}
	den := math.Max(floor, math.Abs(n))
	if !c.ScaleByEstimate {
		den = math.Max(floor, math.Max(math.Abs(a), math.Abs(n)))
	}
	return math.Abs(a-n) / den
}

// Compare records the relative error of the analytic ∂/∂name[j] = a
// against the estimate n and fails tb if it exceeds Tol or is NaN. It
// returns the relative error.
func (c *Checker) Compare(tb testing.TB, name string, j int, a, n float64) float64 {
	tb.Helper()
	rel := c.RelErr(a, n)
	c.Checked++
	c.Worst = math.Max(c.Worst, rel)
	if !(rel <= c.Tol) {
		report := tb.Fatalf
		if c.Continue {
			report = tb.Errorf
		}
		report("%s[%d]: analytic %.10g, finite difference %.10g (rel err %.3g)", name, j, a, n, rel)
	}
	return rel
}

// Setter estimates the derivative of f along one coordinate that set
// moves (set(v) makes the coordinate v; old is its current value), puts
// the coordinate back to old, and compares the estimate with the analytic
// a as Compare does.
func (c *Checker) Setter(tb testing.TB, name string, j int, f func() float64, set func(float64), old, a float64) float64 {
	tb.Helper()
	n := c.Stencil.Derivative(func(v float64) float64 { set(v); return f() }, old, c.H)
	set(old)
	return c.Compare(tb, name, j, a, n)
}

// Coord estimates ∂f/∂x[j] by moving x[j] in place (f reads x), restores
// x[j], and compares the estimate with the analytic a as Compare does.
func (c *Checker) Coord(tb testing.TB, name string, f func() float64, x []float64, j int, a float64) float64 {
	tb.Helper()
	return c.Setter(tb, name, j, f, func(v float64) { x[j] = v }, x[j], a)
}

// All checks every coordinate of x: ∂f/∂x[j] against analytic[j].
func (c *Checker) All(tb testing.TB, name string, f func() float64, x, analytic []float64) {
	tb.Helper()
	if len(x) != len(analytic) {
		tb.Fatalf("testutil: %s: %d coordinates, %d analytic derivatives", name, len(x), len(analytic))
	}
	for j := range x {
		c.Coord(tb, name, f, x, j, analytic[j])
	}
}
