package plots

import (
	"fmt"
	_ "image/png"
	"math"
	"path/filepath"
	"testing"
)

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
