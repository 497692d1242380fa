package plots

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// gaussMix is a pmf over a w×h grid (index x*h+y) with two bumps.
func gaussMix(w, h int) []float64 {
	p := make([]float64, w*h)
	sum := 0.0
	for x := 0; x < w; x++ {
		for y := 0; y < h; y++ {
			dx1, dy1 := float64(x)-0.25*float64(w), float64(y)-0.3*float64(h)
			dx2, dy2 := float64(x)-0.7*float64(w), float64(y)-0.7*float64(h)
			v := math.Exp(-(dx1*dx1+dy1*dy1)/8) + 0.6*math.Exp(-(dx2*dx2+dy2*dy2)/12)
			p[x*h+y] = v
			sum += v
		}
	}
	for i := range p {
		p[i] /= sum
	}
	return p
}

// sample draws n points from pmf (index x*h+y).
func sample(rng *rand.Rand, pmf []float64, h, n int) [][2]int {
	var pts [][2]int
	for range n {
		u, i := rng.Float64(), 0
		for ; i < len(pmf)-1 && u > pmf[i]; i++ {
			u -= pmf[i]
		}
		pts = append(pts, [2]int{i / h, i % h})
	}
	return pts
}

func TestScatters(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(42, 1))
	const w, h = 16, 16
	pmf := gaussMix(w, h)
	var panels []ScatterPanel
	for k, name := range []string{"target", "SMC (ours)", "SMC, no twist", "best-of-N", "guidance"} {
		n := 200
		if k == 4 {
			n = 40
		}
		panels = append(panels, ScatterPanel{
			Title:  fmt.Sprintf("%s: reward 0.%d2, EMD 0.%d1, diversity 0.%d7", name, 9-k, k, 8-k),
			Points: sample(rng, pmf, h, n),
			PMF:    pmf,
		})
	}
	panels[3].PMF = nil // no background for one panel
	both(t, dir, "scatters", 4*2.9, 2*2.9, func(p string) error { return Scatters(p, w, h, panels) })
	both(t, dir, "scatters_2", 2*2.9, 2.9, func(p string) error { return Scatters(p, w, h, panels[:2]) })

	// A non-square grid keeps square cells: the panel is wider than high,
	// and index x*H+y puts the bump where the points are.
	rect := gaussMix(24, 8)
	img := func() string {
		p := filepath.Join(dir, "rect.png")
		if err := Scatters(p, 24, 8, []ScatterPanel{{Title: "24×8", Points: sample(rng, rect, 8, 300), PMF: rect}}); err != nil {
			t.Fatal(err)
		}
		return p
	}()
	im := checkPNG(t, img, 2.5, 1)
	preview(t, img)
	if b := im.Bounds(); b.Dx() <= b.Dy() {
		t.Fatalf("24×8 grid drawn %dx%d, want wider than high", b.Dx(), b.Dy())
	}
	if err := Scatters(filepath.Join(dir, "empty.svg"), 3, 5, []ScatterPanel{{Title: "nothing"}}); err != nil {
		t.Fatal(err)
	}

	path := filepath.Join(dir, "keep.png")
	if err := Scatters(path, w, h, panels[:1]); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	wantErr(t, "no panels", Scatters(path, w, h, nil), "no panels")
	wantErr(t, "grid size", Scatters(path, 0, h, panels), "grid size")
	out := ScatterPanel{Title: "stray", Points: [][2]int{{1, 1}, {w, 3}}}
	wantErr(t, "outside", Scatters(path, w, h, []ScatterPanel{out}), "stray", "(16, 3)", "outside")
	neg := ScatterPanel{Title: "neg", Points: [][2]int{{-1, 0}}}
	wantErr(t, "negative point", Scatters(path, w, h, []ScatterPanel{neg}), "outside")
	short := ScatterPanel{Title: "short", PMF: pmf[:100]}
	wantErr(t, "PMF length", Scatters(path, w, h, []ScatterPanel{short}), "short", "PMF", "100", "256")
	nanPMF := append([]float64(nil), pmf...)
	nanPMF[17] = math.NaN()
	wantErr(t, "PMF NaN", Scatters(path, w, h, []ScatterPanel{{Title: "nan", PMF: nanPMF}}), "nan", "(1, 1)")
	wantErr(t, "extension", Scatters(filepath.Join(dir, "s.eps"), w, h, panels), `".eps"`)
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("a failed call changed the existing figure")
	}
}

func TestIntTicks(t *testing.T) {
	for _, n := range []int{1, 2, 5, 9, 16, 33, 100, 1000} {
		labelled := 0
		last := -1.0
		for _, tk := range intTicks(n).Ticks(0, 0) {
			if tk.Value < 0 || tk.Value > float64(n-1) || tk.Value <= last {
				t.Fatalf("n=%d: tick %v out of range or out of order", n, tk.Value)
			}
			last = tk.Value
			if tk.Label != "" {
				labelled++
			}
		}
		if labelled < 1 || labelled > 8 {
			t.Fatalf("n=%d: %d labelled ticks", n, labelled)
		}
	}
}
