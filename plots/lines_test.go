package plots

import (
	"bytes"
	_ "image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

func TestLines(t *testing.T) {
	dir := t.TempDir()
	var x, s, c, e []float64
	for i := 0; i <= 100; i++ {
		v := float64(i) / 10
		x = append(x, v)
		s = append(s, math.Sin(v))
		c = append(c, math.Cos(v))
		e = append(e, math.Exp(-v/3))
	}
	s[40], s[41] = math.NaN(), math.NaN() // a gap
	series := []Series{
		{Name: "sin", X: x, Y: s, Marks: []float64{1.57, 4.71, 7.85, 4.05}}, // 4.05 falls in the gap: skipped
		{Name: "cos", X: x, Y: c, Marks: []float64{0, 3.14159, 6.283, 42}},  // 42 is off the curve: skipped
		{Name: "exp(−x/3)", X: x, Y: e},
	}
	both(t, dir, "lines", 6, 4, func(p string) error {
		return Lines(p, series, LineOpts{Title: "Lines with marks and a gap", XLabel: "x", YLabel: "f(x)", YMin: -1.2, YMax: math.NaN()})
	})
	lx := []float64{1, 10, 100, 1000, 10000}
	if err := Lines(filepath.Join(dir, "logx.png"), []Series{{Name: "a", X: lx, Y: []float64{5, 4, 2, 1.5, 1.4}}}, LineOpts{Title: "log x", LogX: true}); err != nil {
		t.Fatal(err)
	}
	// One point only, zero-value options.
	if err := Lines(filepath.Join(dir, "one.svg"), []Series{{X: []float64{1}, Y: []float64{2}}}, LineOpts{}); err != nil {
		t.Fatal(err)
	}

	// A good figure, then bad calls on the same path: the file stays intact.
	path := filepath.Join(dir, "keep.png")
	if err := Lines(path, series, LineOpts{Title: "keep"}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	wantErr(t, "empty", Lines(path, nil, LineOpts{}), "no series")
	wantErr(t, "X/Y length", Lines(path, []Series{{Name: "ragged", X: x, Y: s[:50]}}, LineOpts{}), "ragged", "length mismatch", "101", "50")
	wantErr(t, "NaN-only", Lines(path, []Series{{Name: "void", X: []float64{1, 2}, Y: []float64{math.NaN(), math.NaN()}}}, LineOpts{}), "void", "no finite")
	wantErr(t, "LogX with 0", Lines(path, []Series{{Name: "zero", X: []float64{0, 1}, Y: []float64{1, 2}}}, LineOpts{LogX: true}), "zero", "LogX")
	wantErr(t, "YMin>YMax", Lines(path, series, LineOpts{YMin: 2, YMax: 1}), "YMin")
	wantErr(t, "extension", Lines(filepath.Join(dir, "fig.jpg"), series, LineOpts{}), `".jpg"`, "extension")
	wantErr(t, "no extension", Lines(filepath.Join(dir, "fig"), series, LineOpts{}), "extension")
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("a failed call changed the existing figure")
	}
	// A write that fails at the file system (the parent is a file) leaves
	// nothing behind either.
	wantErr(t, "unwritable", Lines(filepath.Join(path, "sub.png"), series, LineOpts{}))
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("a failed write changed the existing figure")
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(m) > 0 {
		t.Fatalf("temporary files left behind: %v", m)
	}
}

func TestErrorBars(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	ns := []float64{64, 128, 256, 512, 1024, 2048, 4096}
	var scaling []ErrorSeries
	for m, name := range []string{"SMC (ours)", "SMC, no twist", "best-of-N"} {
		s := ErrorSeries{Name: name}
		for _, n := range ns {
			s.X = append(s.X, n)
			s.Y = append(s.Y, 1/(1+float64(m))*math.Pow(n, -0.3)*(1+0.05*rng.NormFloat64()))
			s.Err = append(s.Err, 0.02*math.Pow(n, -0.3)*(1+rng.Float64()))
		}
		scaling = append(scaling, s)
	}
	scaling[2].Err[0] = math.NaN() // a single repeat: no bar
	both(t, dir, "errorbars_scaling", 6, 4, func(p string) error {
		return ErrorBars(p, scaling, ErrorOpts{LineOpts: LineOpts{Title: "EMD vs number of particles", XLabel: "N (particles)", YLabel: "EMD to target", LogX: true}})
	})

	ticks := []string{"full method", "no look-ahead", "no tempering", "no resampling", "multinomial"}
	var ablation []ErrorSeries
	for m, name := range []string{"reward", "diversity"} {
		s := ErrorSeries{Name: name}
		for k := range ticks {
			s.X = append(s.X, float64(k))
			s.Y = append(s.Y, 0.8-0.1*float64(k)+0.2*float64(m))
			s.Err = append(s.Err, 0.03+0.02*rng.Float64())
		}
		ablation = append(ablation, s)
	}
	both(t, dir, "errorbars_ablation", 6, 4, func(p string) error {
		return ErrorBars(p, ablation, ErrorOpts{LineOpts: LineOpts{Title: "Ablation", XLabel: "variant", YLabel: "score", YMin: 0, YMax: math.NaN()}, Ticks: ticks})
	})

	bad := filepath.Join(dir, "bad.svg")
	wantErr(t, "empty", ErrorBars(bad, nil, ErrorOpts{}), "no series")
	wantErr(t, "Err length", ErrorBars(bad, []ErrorSeries{{Name: "e", X: []float64{1, 2}, Y: []float64{1, 2}, Err: []float64{1}}}, ErrorOpts{}), `"e"`, "Err", "length mismatch")
	wantErr(t, "Err nil", ErrorBars(bad, []ErrorSeries{{Name: "e", X: []float64{1, 2}, Y: []float64{1, 2}}}, ErrorOpts{}), "Err", "length mismatch")
	wantErr(t, "X/Y length", ErrorBars(bad, []ErrorSeries{{Name: "xy", X: []float64{1}, Y: []float64{1, 2}, Err: []float64{1, 1}}}, ErrorOpts{}), "len(X)")
	wantErr(t, "negative Err", ErrorBars(bad, []ErrorSeries{{Name: "neg", X: []float64{1, 2}, Y: []float64{1, 2}, Err: []float64{1, -1}}}, ErrorOpts{}), "neg", "negative")
	wantErr(t, "tick index", ErrorBars(bad, ablation, ErrorOpts{Ticks: ticks[:2]}), "tick index")
	wantErr(t, "NaN-only", ErrorBars(bad, []ErrorSeries{{Name: "nan", X: []float64{1}, Y: []float64{math.NaN()}, Err: []float64{1}}}, ErrorOpts{}), "no finite")
	wantErr(t, "extension", ErrorBars(filepath.Join(dir, "x.pdf"), scaling, ErrorOpts{}), `".pdf"`)
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Fatalf("a failed call left %s behind", bad)
	}
}
