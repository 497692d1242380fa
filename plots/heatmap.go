package plots

import (
	"bufio"
	"fmt"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/ddsmc/ddsmc/internal/atomicfile"
)

// Panel is one heat map: a pmf over an n×n grid (index i·n + j, i on the
// x-axis) with a title.
type Panel struct {
	Title string
	PMF   []float64
}

// grid adapts a pmf to plotter.GridXYZ.
type grid struct {
	n int
	p []float64
}

func (g grid) Dims() (c, r int)   { return g.n, g.n }
func (g grid) Z(c, r int) float64 { return g.p[c*g.n+r] }
func (g grid) X(c int) float64    { return float64(c) }
func (g grid) Y(r int) float64    { return float64(r) }

// GridHeatmaps draws the panels side by side on one shared colour scale and
// writes a PNG to path (atomically).
func GridHeatmaps(path string, panels []Panel) error {
	if len(panels) == 0 {
		return fmt.Errorf("plots: no panels")
	}
	n := int(math.Round(math.Sqrt(float64(len(panels[0].PMF)))))
	hi := 0.0
	for _, p := range panels {
		if len(p.PMF) != n*n || n == 0 {
			return fmt.Errorf("plots: panel %q has %d cells, want a square grid of %d", p.Title, len(p.PMF), n*n)
		}
		for _, v := range p.PMF {
			if math.IsNaN(v) || v < 0 {
				return fmt.Errorf("plots: panel %q has an invalid probability %v", p.Title, v)
			}
			hi = math.Max(hi, v)
		}
	}
	pal := moreland.SmoothBlueRed()
	pal.SetMin(0)
	pal.SetMax(hi)
	const side = 4 * vg.Inch
	row := make([]*plot.Plot, len(panels))
	for i, p := range panels {
		pl := plot.New()
		pl.Title.Text = wrapText(pl.Title.TextStyle, p.Title, side-vg.Inch/2)
		pl.X.Label.Text = "x0 bin"
		pl.Y.Label.Text = "x1 bin"
		h := plotter.NewHeatMap(grid{n, p.PMF}, pal.Palette(255))
		h.Min, h.Max = 0, hi
		pl.Add(h)
		row[i] = pl
	}
	img := vgimg.New(side*vg.Length(len(panels)), side)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: len(panels), PadX: vg.Millimeter * 4, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2}
	canvases := plot.Align([][]*plot.Plot{row}, tiles, dc)
	for i := range row {
		row[i].Draw(canvases[0][i])
	}
	return atomicfile.Write(path, func(w *bufio.Writer) error {
		_, err := vgimg.PngCanvas{Canvas: img}.WriteTo(w)
		return err
	})
}
