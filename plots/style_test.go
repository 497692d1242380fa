package plots

import (
	_ "image/png"
	"testing"
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
