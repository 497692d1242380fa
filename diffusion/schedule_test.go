package diffusion

import (
	"math"
	"strings"
	"testing"

	"github.com/ddsmc/ddsmc/internal/testutil"
)

func allSchedules() []Schedule {
	return []Schedule{Linear(), Cosine(), LogLinear(1e-3), LogLinear(0)}
}

func TestScheduleEndpointsAndMonotone(t *testing.T) {
	for _, s := range allSchedules() {
		if a := s.Alpha(0); a != 1 {
			t.Errorf("%s: alpha(0) = %v, want exactly 1", s.Name(), a)
		}
		want1 := 0.0
		if ll, ok := s.(logLinearSchedule); ok {
			want1 = ll.eps
		}
		if a := s.Alpha(1); math.Abs(a-want1) > 1e-15 {
			t.Errorf("%s: alpha(1) = %v, want %v", s.Name(), a, want1)
		}
		prev := s.Alpha(0)
		for i := 1; i <= 1000; i++ {
			a := s.Alpha(float64(i) / 1000)
			if !(a < prev) {
				t.Errorf("%s: alpha not strictly decreasing at t=%v", s.Name(), float64(i)/1000)
			}
			prev = a
		}
	}
}

func TestCosineMatchesReferenceForm(t *testing.T) {
	s := Cosine()
	for i := 0; i <= 100; i++ {
		x := float64(i) / 100
		want := 1 - math.Cos(math.Pi/2*(1-x))
		if got := s.Alpha(x); math.Abs(got-want) > 1e-15 {
			t.Errorf("cosine alpha(%v) = %v, reference form %v", x, got, want)
		}
	}
}

// TestScheduleRate checks Rate = −α'/(1−α) against a central difference.
func TestScheduleRate(t *testing.T) {
	for _, s := range allSchedules() {
		for _, x := range []float64{0.05, 0.2, 0.5, 0.77, 0.95} {
			h := 1e-6
			deriv := testutil.Central.Derivative(s.Alpha, x, h)
			want := -deriv / (1 - s.Alpha(x))
			if got := s.Rate(x); math.Abs(got-want) > 1e-6*math.Abs(want) {
				t.Errorf("%s: rate(%v) = %v, finite difference %v", s.Name(), x, got, want)
			}
		}
	}
	if r := Linear().Rate(0.25); r != 4 {
		t.Errorf("linear rate(0.25) = %v, want 4", r)
	}
}

func TestParseSchedule(t *testing.T) {
	for _, name := range []string{"linear", "cosine", "loglinear", " LogLinear "} {
		s, err := ParseSchedule(name, 1e-3)
		if err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		if s.Name() != strings.ToLower(strings.TrimSpace(name)) {
			t.Errorf("%q parsed to %q", name, s.Name())
		}
	}
	if s, _ := ParseSchedule("loglinear", 0.25); math.Abs(s.Alpha(1)-0.25) > 1e-15 {
		t.Errorf("loglinear eps not used: alpha(1) = %v", s.Alpha(1))
	}
	for _, eps := range []float64{-0.1, 1, math.NaN()} {
		if _, err := ParseSchedule("loglinear", eps); err == nil {
			t.Errorf("loglinear eps=%v: no error", eps)
		}
	}
	_, err := ParseSchedule("sqrt", 0)
	if err == nil || !strings.Contains(err.Error(), "sqrt") || !strings.HasPrefix(err.Error(), "diffusion: ") {
		t.Errorf("unknown schedule: error %v should name it and carry the prefix", err)
	}
}
