package plots

import (
	_ "image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

func TestBars(t *testing.T) {
	dir := t.TempDir()
	groups := []string{"two moons", "8 gaussians", "checkerboard"}
	names := []string{"SMC (ours)", "SMC, no twist", "best-of-N", "guidance"}
	rng := rand.New(rand.NewPCG(9, 9))
	values := make([][]float64, len(names))
	errs := make([][]float64, len(names))
	for s := range names {
		for range groups {
			values[s] = append(values[s], 0.3+0.6*rng.Float64())
			errs[s] = append(errs[s], 0.05*rng.Float64())
		}
	}
	values[3][1] = math.NaN() // missing bar
	errs[2] = nil             // no error bars for one method
	both(t, dir, "bars", 6, 4, func(p string) error {
		return Bars(p, groups, names, values, errs, LineOpts{Title: "Reward by target", XLabel: "target", YLabel: "mean reward"})
	})
	if err := Bars(filepath.Join(dir, "noerr.png"), groups, names, values, nil, LineOpts{}); err != nil {
		t.Fatal(err)
	}
	// Long category names are rotated rather than overlapping; negative
	// values hang below 0.
	long := []string{"two moons (hard)", "eight gaussians", "checkerboard 4×4", "pinwheel", "swiss roll, noisy", "circles"}
	lv := [][]float64{{0.5, -0.2, 0.3, 0.9, 0.1, 0.4}, {0.6, 0.1, -0.1, 0.7, 0.2, 0.5}}
	lp := filepath.Join(dir, "bars_long_labels.png")
	if err := Bars(lp, long, names[:2], lv, nil, LineOpts{Title: "Long group names", YLabel: "Δ reward"}); err != nil {
		t.Fatal(err)
	}
	checkPNG(t, lp, 6, 4)
	preview(t, lp)

	bad := filepath.Join(dir, "bad.png")
	wantErr(t, "no groups", Bars(bad, nil, names, values, errs, LineOpts{}), "no groups")
	wantErr(t, "no series", Bars(bad, groups, nil, nil, nil, LineOpts{}), "no series")
	wantErr(t, "rows", Bars(bad, groups, names, values[:2], nil, LineOpts{}), "length mismatch")
	ragged := [][]float64{values[0], values[1][:2], values[2], values[3]}
	wantErr(t, "ragged", Bars(bad, groups, names, ragged, nil, LineOpts{}), names[1], "length mismatch")
	raggedErr := [][]float64{errs[0], errs[1][:1], nil, errs[3]}
	wantErr(t, "Err length", Bars(bad, groups, names, values, raggedErr, LineOpts{}), names[1], "Err")
	allNaN := [][]float64{{math.NaN(), math.NaN(), math.NaN()}}
	wantErr(t, "NaN-only", Bars(bad, groups, names[:1], allNaN, nil, LineOpts{}), "no finite")
	wantErr(t, "extension", Bars(filepath.Join(dir, "b.gif"), groups, names, values, errs, LineOpts{}), `".gif"`)
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Fatalf("a failed call left %s behind", bad)
	}
}
