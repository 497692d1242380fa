package plots

import (
	"bytes"
	"fmt"
	"image"
	_ "image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkPNG decodes the PNG at path and checks that its size is plausible
// for a figure of at least minW×minH inches at the package's 150 dpi.
func checkPNG(t *testing.T, path string, minW, minH float64) image.Image {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 || !bytes.HasPrefix(b, []byte("\x89PNG")) {
		t.Fatalf("%s: not a PNG (%d bytes)", path, len(b))
	}
	img, format, err := image.Decode(bytes.NewReader(b))
	if err != nil || format != "png" {
		t.Fatalf("%s: decode: format %q, %v", path, format, err)
	}
	r := img.Bounds()
	if float64(r.Dx()) < minW*pngDPI-1 || float64(r.Dy()) < minH*pngDPI-1 || r.Dx() > 6000 || r.Dy() > 6000 {
		t.Fatalf("%s: implausible size %dx%d (want at least %.0fx%.0f)", path, r.Dx(), r.Dy(), minW*pngDPI, minH*pngDPI)
	}
	// A figure is not blank: some pixels are far from white.
	dark := 0
	for y := r.Min.Y; y < r.Max.Y; y += 3 {
		for x := r.Min.X; x < r.Max.X; x += 3 {
			if cr, cg, cb, _ := img.At(x, y).RGBA(); cr+cg+cb < 3*0x8000 {
				dark++
			}
		}
	}
	if dark < 50 {
		t.Fatalf("%s: figure looks blank (%d dark samples)", path, dark)
	}
	return img
}

// checkSVG checks that path holds a well-formed-looking SVG document.
func checkSVG(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSpace(string(b))
	if !(strings.HasPrefix(s, "<?xml") || strings.HasPrefix(s, "<svg")) || !strings.Contains(s, "</svg>") {
		t.Fatalf("%s: not an SVG document: %.80q…", path, s)
	}
	return s
}

// wantErr fails unless err is non-nil, starts with "plots: " and contains
// every fragment.
func wantErr(t *testing.T, what string, err error, fragments ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", what)
	}
	if !strings.HasPrefix(err.Error(), "plots: ") {
		t.Fatalf("%s: error %q lacks the plots: prefix", what, err)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Fatalf("%s: error %q does not mention %q", what, err, f)
		}
	}
}

// preview copies a PNG into $PLOTS_PREVIEW (if set) for a human to look at.
func preview(t *testing.T, src string) {
	t.Helper()
	dir := os.Getenv("PLOTS_PREVIEW")
	if dir == "" {
		return
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, filepath.Base(src)), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// both writes name.png and name.svg with draw, checks them and previews the PNG.
func both(t *testing.T, dir, name string, minW, minH float64, draw func(path string) error) {
	t.Helper()
	png := filepath.Join(dir, name+".png")
	if err := draw(png); err != nil {
		t.Fatalf("%s: %v", png, err)
	}
	checkPNG(t, png, minW, minH)
	svg := filepath.Join(dir, name+".svg")
	if err := draw(svg); err != nil {
		t.Fatalf("%s: %v", svg, err)
	}
	checkSVG(t, svg)
	preview(t, png)
}

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

func TestTracesAndLoss(t *testing.T) {
	dir := t.TempDir()
	tr := exampleTraces()
	both(t, dir, "ess_traces", 6, 4, func(p string) error { return ESSTraces(p, tr, "ESS during sampling (N = 256, α = 0.1)") })
	both(t, dir, "reward_traces", 6, 4, func(p string) error { return RewardTraces(p, tr, "Mean look-ahead reward") })

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
	wantErr(t, "no traces", ESSTraces(bad, nil, "x"), "no traces")
	short := tr[0]
	short.ESS = short.ESS[:5]
	wantErr(t, "ESS length", ESSTraces(bad, []TraceCurve{short}, "x"), "length mismatch", "ESS", tr[0].Name)
	short = tr[0]
	short.Resampled = short.Resampled[:5]
	wantErr(t, "Resampled length", ESSTraces(bad, []TraceCurve{short}, "x"), "Resampled")
	wantErr(t, "all rewards NaN", RewardTraces(bad, tr[2:], "x"), "finite")
	wantErr(t, "loss length", LossCurve(bad, step, loss[:10], nil, nil, "x"), "length mismatch")
	wantErr(t, "val length", LossCurve(bad, step, loss, vs, vl[:1], "x"), "validation", "length mismatch")
	nan := []float64{math.NaN(), math.NaN()}
	wantErr(t, "NaN-only loss", LossCurve(bad, []float64{0, 1}, nan, nil, nil, "x"), "no finite")
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Fatalf("a failed call left %s behind (%v)", bad, err)
	}
}

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

func TestPaletteIsFixedAndDistinct(t *testing.T) {
	seen := map[[4]uint32]bool{}
	for i := range okabeIto {
		r, g, b, a := seriesColor(i).RGBA()
		k := [4]uint32{r, g, b, a}
		if seen[k] {
			t.Fatalf("colour %d repeats", i)
		}
		seen[k] = true
	}
	if seriesColor(0) != seriesColor(len(okabeIto)) || seriesDashes(len(okabeIto)) == nil || seriesDashes(0) != nil {
		t.Fatal("after the palette runs out colours must repeat with a dash")
	}
}

// Degenerate but valid input draws a figure instead of panicking.
func TestDegenerateInputsDraw(t *testing.T) {
	dir := t.TempDir()
	inf := math.Inf(1)
	cases := map[string]func(p string) error{
		"flat": func(p string) error {
			return Lines(p, []Series{{Name: "c", X: []float64{0, 1, 2}, Y: []float64{3, 3, 3}}}, LineOpts{})
		},
		"inf": func(p string) error {
			return Lines(p, []Series{{Name: "c", X: []float64{0, 1, 2}, Y: []float64{1, inf, 2}}}, LineOpts{})
		},
		"logx-one": func(p string) error {
			return Lines(p, []Series{{Name: "c", X: []float64{8}, Y: []float64{1}}}, LineOpts{LogX: true})
		},
		"ymin-only": func(p string) error {
			return Lines(p, []Series{{Name: "c", X: []float64{0, 1}, Y: []float64{-5, -4}}}, LineOpts{YMin: 0, YMax: math.NaN()})
		},
		"ess-one": func(p string) error {
			return ESSTraces(p, []TraceCurve{{Name: "a", Step: []int{0}, ESS: []float64{1}}}, "")
		},
		"bars-zero": func(p string) error { return Bars(p, []string{"g"}, []string{"s"}, [][]float64{{0}}, nil, LineOpts{}) },
		"scatter-1": func(p string) error {
			return Scatters(p, 1, 1, []ScatterPanel{{Points: [][2]int{{0, 0}}, PMF: []float64{0}}})
		},
		"many-lines": func(p string) error {
			var ss []Series
			for i := range 20 {
				ss = append(ss, Series{Name: fmt.Sprint("method ", i), X: []float64{0, 1}, Y: []float64{0, float64(i)}})
			}
			return Lines(p, ss, LineOpts{Title: "twenty series"})
		},
	}
	for name, f := range cases {
		for _, ext := range []string{".png", ".svg"} {
			if err := f(filepath.Join(dir, name+ext)); err != nil {
				t.Errorf("%s%s: %v", name, ext, err)
			}
		}
	}
}
