package plots

import (
	_ "image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

func TestLossCurve(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 5))
	var step, loss, vs, vl []float64
	for i := 0; i < 2000; i++ {
		step = append(step, float64(i))
		loss = append(loss, 0.05+4*math.Exp(-float64(i)/150)*(1+0.2*rng.NormFloat64()*0.5))
		if i%200 == 199 {
			vs = append(vs, float64(i))
			vl = append(vl, 0.07+4*math.Exp(-float64(i)/150))
		}
	}
	both(t, dir, "loss_curve", 6, 4, func(p string) error { return LossCurve(p, step, loss, vs, vl, "Denoiser training") })
	if err := LossCurve(filepath.Join(dir, "train_only.png"), step, loss, nil, nil, "train only"); err != nil {
		t.Fatal(err)
	}

	bad := filepath.Join(dir, "bad.png")
	wantErr(t, "loss length", LossCurve(bad, step, loss[:10], nil, nil, "x"), "length mismatch")
	wantErr(t, "val length", LossCurve(bad, step, loss, vs, vl[:1], "x"), "validation", "length mismatch")
	nan := []float64{math.NaN(), math.NaN()}
	wantErr(t, "NaN-only loss", LossCurve(bad, []float64{0, 1}, nan, nil, nil, "x"), "no finite")
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Fatalf("a failed call left %s behind (%v)", bad, err)
	}
}
