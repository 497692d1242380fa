package plots

import (
	_ "image/png"
	"strings"
	"testing"

	"gonum.org/v1/plot/vg"
)

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

// A title wider than its figure wraps at spaces, and a single word wider
// than the figure (a long sweep label) is cut into pieces that fit, so no
// line of a title runs past the figure's edges.
func TestWrapTextFitsEveryLine(t *testing.T) {
	sty := textStyle(boldFont, 13)
	max := vg.Points(120)
	for _, s := range []string{
		"variant=SMC-FALOP,particles=16,lambda_k=3,phi=10,resampler=partial,final=resample",
		"mnist_lambda: success@all (every output correct) against lambda_k (mean ± SE, 10 repeats)",
		"short",
	} {
		got := wrapText(sty, s, max)
		for _, line := range strings.Split(got, "\n") {
			if w := sty.Width(line); w > max {
				t.Errorf("%q: line %q is %v wide, over %v", s, line, w, max)
			}
		}
		if strings.ReplaceAll(strings.ReplaceAll(got, "\n", ""), " ", "") != strings.ReplaceAll(s, " ", "") {
			t.Errorf("%q: wrapping lost text: %q", s, got)
		}
	}
}
