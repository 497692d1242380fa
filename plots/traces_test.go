package plots

import (
	_ "image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// exampleTraces simulates SMC traces: ESS decays and is reset by
// resampling when it drops below a threshold.
func exampleTraces() []TraceCurve {
	rng := rand.New(rand.NewPCG(7, 11))
	names := []string{"SMC (ours)", "SMC, no twist", "importance sampling"}
	decay := []float64{0.9, 0.75, 0.85}
	thresh := []float64{0.5, 0.5, -1}
	var out []TraceCurve
	for m, name := range names {
		c := TraceCurve{Name: name}
		ess, r := 1.0, 0.0
		for s := 0; s <= 60; s++ {
			ess *= decay[m] + 0.08*rng.Float64()
			res := ess < thresh[m]
			c.Step = append(c.Step, s)
			c.ESS = append(c.ESS, ess)
			c.Resampled = append(c.Resampled, res)
			if res {
				ess = 1
			}
			r += 0.02*float64(3-m) + 0.01*rng.NormFloat64()
			c.RhatMean = append(c.RhatMean, r)
		}
		out = append(out, c)
	}
	// The second method has a few undefined rewards, the third none at all.
	out[1].RhatMean[10], out[1].RhatMean[30] = math.NaN(), math.Inf(1)
	for i := range out[2].RhatMean {
		out[2].RhatMean[i] = math.NaN()
	}
	return out
}

func TestTraces(t *testing.T) {
	dir := t.TempDir()
	tr := exampleTraces()
	both(t, dir, "ess_traces", 6, 4, func(p string) error { return ESSTraces(p, tr, "ESS during sampling (N = 256, α = 0.1)") })
	both(t, dir, "reward_traces", 6, 4, func(p string) error { return RewardTraces(p, tr, "Mean look-ahead reward") })

	bad := filepath.Join(dir, "bad.png")
	wantErr(t, "no traces", ESSTraces(bad, nil, "x"), "no traces")
	short := tr[0]
	short.ESS = short.ESS[:5]
	wantErr(t, "ESS length", ESSTraces(bad, []TraceCurve{short}, "x"), "length mismatch", "ESS", tr[0].Name)
	short = tr[0]
	short.Resampled = short.Resampled[:5]
	wantErr(t, "Resampled length", ESSTraces(bad, []TraceCurve{short}, "x"), "Resampled")
	wantErr(t, "all rewards NaN", RewardTraces(bad, tr[2:], "x"), "finite")
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Fatalf("a failed call left %s behind (%v)", bad, err)
	}
}
