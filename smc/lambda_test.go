package smc

import (
	"math"
	"strconv"
	"strings"
	"testing"
)

// TestLambdaFloorValue pins the documented clamp (paper.md §1.4: λ ≥ 0.001).
func TestLambdaFloorValue(t *testing.T) {
	if LambdaFloor != 0.001 {
		t.Fatalf("LambdaFloor = %v, want 0.001", LambdaFloor)
	}
}

// TestLambdaAt checks λ_i for every kind against hand-computed values.
func TestLambdaAt(t *testing.T) {
	const T = 20
	near := func(t *testing.T, what string, got, want float64) {
		t.Helper()
		if math.Abs(got-want) > 1e-12 {
			t.Errorf("%s = %.17g, want %.17g", what, got, want)
		}
	}

	t.Run("constant", func(t *testing.T) {
		for _, l := range []Lambda{{Kind: "constant"}, {}} { // the zero value is constant
			for i, tm := range []float64{1, 0.5, 0} {
				if got := l.At(i, T, tm); got != 1 {
					t.Errorf("%+v: At(%d, t=%v) = %v, want 1", l, i, tm, got)
				}
			}
		}
	})

	t.Run("linear", func(t *testing.T) {
		l := Lambda{Kind: "linear", K: 3}
		want := []float64{LambdaFloor, 1.0 / 3, 2.0 / 3, 1, 1, 1}
		for i, w := range want {
			// t is irrelevant for the step-indexed ramps.
			near(t, "linear(K=3) λ_"+strconv.Itoa(i), l.At(i, T, 0.37), w)
		}
		if l.At(0, T, 1) != LambdaFloor {
			t.Errorf("linear λ_0 = %v, want exactly the floor %v", l.At(0, T, 1), LambdaFloor)
		}
	})

	t.Run("exp", func(t *testing.T) {
		l := Lambda{Kind: "exp", Gamma: 0.05}
		// The ramp reaches 1 at i = 15: 1.05^14 − 1 ≈ 0.97993 < 1 ≤ 1.05^15 − 1 ≈ 1.07893.
		if !(math.Pow(1.05, 14)-1 < 1 && 1 <= math.Pow(1.05, 15)-1) {
			t.Fatal("arithmetic premise of the test is wrong")
		}
		near(t, "exp λ_0", l.At(0, T, 1), LambdaFloor)
		near(t, "exp λ_1", l.At(1, T, 0.9), 0.05)
		near(t, "exp λ_2", l.At(2, T, 0.9), 0.1025)
		near(t, "exp λ_14", l.At(14, T, 0.3), 0.97993159943939)
		if got := l.At(14, T, 0.3); !(got < 1) {
			t.Errorf("exp λ_14 = %v, want < 1", got)
		}
		for i := 15; i <= T; i++ {
			if got := l.At(i, T, 0.2); got != 1 {
				t.Errorf("exp λ_%d = %v, want exactly 1", i, got)
			}
		}
		// Monotone non-decreasing over the run.
		prev := 0.0
		for i := 0; i <= T; i++ {
			v := l.At(i, T, 0)
			if v < prev {
				t.Errorf("exp λ decreases at %d: %v < %v", i, v, prev)
			}
			prev = v
		}
	})

	t.Run("time", func(t *testing.T) {
		l := Lambda{Kind: "time"}
		near(t, "time λ(t=0.25)", l.At(3, T, 0.25), 0.75)
		near(t, "time λ(t=0.6)", l.At(8, T, 0.6), 0.4)
		if got := l.At(T, T, 0); got != 1 {
			t.Errorf("time λ(t=0) = %v, want 1", got)
		}
		if got := l.At(0, T, 1); got != LambdaFloor {
			t.Errorf("time λ(t=1) = %v, want the floor %v", got, LambdaFloor)
		}
		if got := l.At(1, T, 0.9995); got != LambdaFloor {
			t.Errorf("time λ(t=0.9995) = %v, want the floor %v", got, LambdaFloor)
		}
	})

	t.Run("list", func(t *testing.T) {
		vals := []float64{0, 0.0005, 0.25, 0.9, 1}
		l := Lambda{Kind: "list", Values: vals}
		want := []float64{LambdaFloor, LambdaFloor, 0.25, 0.9, 1}
		for i, w := range want {
			if got := l.At(i, len(vals)-1, 0.5); got != w {
				t.Errorf("list λ_%d = %v, want %v", i, got, w)
			}
		}
	})
}

// TestLambdaValidate: valid schedules pass; each invalid one is rejected
// with an error naming the problem.
func TestLambdaValidate(t *testing.T) {
	const T = 4
	ok := []Lambda{
		{Kind: "constant"},
		{Kind: "time"},
		{}, // the zero value is constant
		{Kind: "linear", K: 1},
		{Kind: "exp", Gamma: 0.05},
		{Kind: "list", Values: []float64{0, 0.25, 0.5, 1, 1}},
	}
	for _, l := range ok {
		if err := l.Validate(T); err != nil {
			t.Errorf("%+v: unexpected error %v", l, err)
		}
	}
	bad := []struct {
		l    Lambda
		want string
	}{
		{Lambda{Kind: "cubic"}, `unknown lambda schedule "cubic"`},
		{Lambda{Kind: "Constant"}, `"Constant"`},
		{Lambda{Kind: "linear"}, "k >= 1"},
		{Lambda{Kind: "linear", K: -2}, "got -2"},
		{Lambda{Kind: "exp"}, "gamma > 0"},
		{Lambda{Kind: "exp", Gamma: -0.1}, "gamma > 0"},
		{Lambda{Kind: "exp", Gamma: math.NaN()}, "NaN"},
		{Lambda{Kind: "exp", Gamma: math.Inf(1)}, "gamma"},
		{Lambda{Kind: "list", Values: []float64{0, 1}}, "T+1 = 5"},
		{Lambda{Kind: "list"}, "has 0 values"},
		{Lambda{Kind: "list", Values: []float64{0, 0.5, 1, 1, 1, 1}}, "has 6 values"},
		{Lambda{Kind: "list", Values: []float64{0, -0.1, 0.5, 1, 1}}, "value 1 = -0.1 outside [0, 1]"},
		{Lambda{Kind: "list", Values: []float64{0, 0.5, 1.5, 1, 1}}, "value 2 = 1.5"},
		{Lambda{Kind: "list", Values: []float64{0, 0.5, 1, math.NaN(), 1}}, "value 3 = NaN"},
	}
	for _, c := range bad {
		err := c.l.Validate(T)
		if err == nil {
			t.Errorf("%+v: no error, want one mentioning %q", c.l, c.want)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %q does not mention %q", c.l, err, c.want)
		}
	}
}
