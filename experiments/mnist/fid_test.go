package mnist

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// The Fréchet distance of samples from two known Gaussians converges to
// the closed form ‖μa − μb‖² + Σ_j (σa_j + σb_j − 2√(σa_j σb_j)) for
// diagonal covariances; of a set with itself it is 0.
func TestFrechetDistanceOnKnownGaussians(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const n, d = 40000, 3
	mua, mub := []float64{0, 1, -1}, []float64{0.5, 1, 0}
	va, vb := []float64{1, 4, 0.25}, []float64{2, 1, 0.25}
	draw := func(mu, v []float64) []float64 {
		x := make([]float64, n*d)
		for i := range n {
			for j := range d {
				x[i*d+j] = mu[j] + math.Sqrt(v[j])*rng.NormFloat64()
			}
		}
		return x
	}
	a, b := draw(mua, va), draw(mub, vb)
	want := 0.0
	for j := range d {
		want += (mua[j]-mub[j])*(mua[j]-mub[j]) + va[j] + vb[j] - 2*math.Sqrt(va[j]*vb[j])
	}
	got, err := FrechetDistance(a, n, b, n, d)
	if err != nil {
		t.Fatal(err)
	}
	// The estimate's error is dominated by the covariance entries' sampling
	// error, O(σ²/√n) ≈ 0.02 for the largest variance here.
	if math.Abs(got-want) > 0.1 {
		t.Fatalf("Fréchet distance %v, closed form %v", got, want)
	}
	if self, _ := FrechetDistance(a, n, a, n, d); math.Abs(self) > 1e-9 {
		t.Fatalf("distance of a set to itself %v, want 0", self)
	}
	// Two halves of one sample ("real against real") are close to 0, far
	// below the distance between the two Gaussians.
	if half, _ := FrechetDistance(a[:n/2*d], n/2, a[n/2*d:], n/2, d); half > 0.05 {
		t.Fatalf("real-vs-real distance %v", half)
	}
	if _, err := FrechetDistance(a[:d], 1, b, n, d); err == nil || !strings.Contains(err.Error(), "at least 2 rows") {
		t.Fatalf("one row: %v", err)
	}
}

// The inception score is 1 for identical predictions and C for confident
// predictions spread evenly over C classes.
func TestInceptionScoreBounds(t *testing.T) {
	same := []float64{0.2, 0.8, 0.2, 0.8, 0.2, 0.8}
	if s, err := InceptionScore(same, 3, 2); err != nil || math.Abs(s-1) > 1e-12 {
		t.Fatalf("identical rows: %v %v, want 1", s, err)
	}
	conf := []float64{1, 0, 0, 0, 1, 0, 0, 0, 1}
	if s, _ := InceptionScore(conf, 3, 3); math.Abs(s-3) > 1e-12 {
		t.Fatalf("confident spread rows: %v, want 3", s)
	}
	if _, err := InceptionScore(conf, 2, 3); err == nil {
		t.Fatal("mismatched sizes: no error")
	}
}
