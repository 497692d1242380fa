package plots

import (
	"fmt"
	"image/color"
	"math"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// ScatterPanel is one 2-D sample scatter on a W×H integer grid, with an
// optional background pmf drawn as a light heat map under the points.
//
// PMF uses the same indexing as GridHeatmaps' Panel.PMF, generalised to a
// rectangle: cell (x, y), with x on the horizontal axis (0..W−1) and y on
// the vertical axis (0..H−1), is PMF[x*H+y] (x-major; for W = H = n this is
// heatmap.go's index i·n + j). PMF is nil (no background) or has W·H
// finite, non-negative entries; it need not sum to 1. All panels of one
// figure share one colour scale.
//
// Points are grid cells (x, y). Repeated points are drawn once, with a
// marker whose area grows with the number of repeats.
type ScatterPanel struct {
	Title  string
	Points [][2]int
	PMF    []float64
}

// Scatters draws panels side by side (up to 4 per row, further rows
// below), each titled (callers put reward, EMD, diversity into the title;
// long titles are wrapped), with equal aspect and axes 0..W−1, 0..H−1.
// Errors: no panels, a non-positive grid size, a point outside the grid, a
// PMF of the wrong length or with a negative or non-finite entry, an
// unsupported extension.
func Scatters(path string, w, h int, panels []ScatterPanel) error {
	if _, err := imageFormat(path); err != nil {
		return err
	}
	if len(panels) == 0 {
		return fmt.Errorf("plots: no panels")
	}
	if w <= 0 || h <= 0 {
		return fmt.Errorf("plots: grid size %d×%d is not positive", w, h)
	}
	hi := 0.0
	for _, p := range panels {
		for _, pt := range p.Points {
			if pt[0] < 0 || pt[0] >= w || pt[1] < 0 || pt[1] >= h {
				return fmt.Errorf("plots: panel %q: point (%d, %d) outside the %d×%d grid", p.Title, pt[0], pt[1], w, h)
			}
		}
		if p.PMF == nil {
			continue
		}
		if len(p.PMF) != w*h {
			return fmt.Errorf("plots: panel %q: PMF has %d cells, want W·H = %d×%d = %d", p.Title, len(p.PMF), w, h, w*h)
		}
		for i, v := range p.PMF {
			if !finite(v) || v < 0 {
				return fmt.Errorf("plots: panel %q: PMF cell (%d, %d) = %v is not a finite non-negative value", p.Title, i/h, i%h, v)
			}
			hi = math.Max(hi, v)
		}
	}

	// Data area of one panel: the longer side is `side`, the other follows
	// the grid's aspect ratio (clamped; the exact aspect is enforced when
	// drawing).
	const side = 2.6 * vg.Inch
	dw, dh := side, side
	if w > h {
		dh = max(side*vg.Length(h)/vg.Length(w), 0.6*vg.Inch)
	} else if h > w {
		dw = max(side*vg.Length(w)/vg.Length(h), 0.6*vg.Inch)
	}
	cols := min(4, len(panels))
	rows := (len(panels) + cols - 1) / cols
	tileW := dw + 0.8*vg.Inch

	bg := lightPalette{}
	pl := make([]*plot.Plot, len(panels))
	titleH := vg.Length(0)
	for i, sp := range panels {
		p := newPlot("", "x", "y")
		p.Title.TextStyle = textStyle(boldFont, 11)
		p.Title.TextStyle.XAlign = draw.XCenter
		p.Title.TextStyle.YAlign = draw.YTop
		p.Title.Padding = vg.Points(5)
		p.Title.Text = wrapText(p.Title.TextStyle, sp.Title, tileW-vg.Points(8))
		if p.Title.Text != "" {
			titleH = max(titleH, p.Title.TextStyle.Height(p.Title.Text)+p.Title.Padding)
		}
		if sp.PMF != nil && hi > 0 {
			hm := plotter.NewHeatMap(rectGrid{w, h, sp.PMF}, bg)
			hm.Min, hm.Max = 0, hi
			p.Add(hm)
		}
		p.Add(newCountScatter(sp.Points))
		p.X.Min, p.X.Max = -0.5, float64(w)-0.5
		p.Y.Min, p.Y.Max = -0.5, float64(h)-0.5
		p.X.Padding, p.Y.Padding = 0, 0
		p.X.Tick.Marker = intTicks(w)
		p.Y.Tick.Marker = intTicks(h)
		pl[i] = p
	}
	tileH := dh + 0.7*vg.Inch + titleH
	figWidth, figHeight := tileW*vg.Length(cols), tileH*vg.Length(rows)
	return render(path, figWidth, figHeight, func(c draw.Canvas) {
		grid := make([][]*plot.Plot, rows)
		for r := range grid {
			grid[r] = make([]*plot.Plot, cols)
			for k := range cols {
				if i := r*cols + k; i < len(pl) {
					grid[r][k] = pl[i]
				}
			}
		}
		tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Points(10), PadY: vg.Points(10), PadTop: vg.Points(6), PadBottom: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(10)}
		canvases := plot.Align(grid, tiles, c)
		for r := range grid {
			for k, p := range grid[r] {
				if p != nil {
					p.Draw(equalAspect(p, canvases[r][k], float64(w)/float64(h)))
				}
			}
		}
	})
}

// equalAspect shrinks c (centred horizontally, from the bottom vertically
// so the titles of a row stay level) until the data area of p has the
// width/height ratio want, so that grid cells are square.
func equalAspect(p *plot.Plot, c draw.Canvas, want float64) draw.Canvas {
	da := p.DataCanvas(c)
	dw, dh := float64(da.Max.X-da.Min.X), float64(da.Max.Y-da.Min.Y)
	if dw <= 0 || dh <= 0 {
		return c
	}
	if dw/dh > want {
		ex := vg.Length(dw - dh*want)
		return draw.Crop(c, ex/2, -ex/2, 0, 0)
	}
	ex := vg.Length(dh - dw/want)
	return draw.Crop(c, 0, 0, ex, 0)
}

// intTicks labels 0..n−1 with a step of 1, 2, 5, 10, … chosen for at most
// about eight labels, with unlabelled minor ticks at the other integers
// when the grid is small enough for them to be useful.
func intTicks(n int) plot.Ticker {
	step := 1
	for _, s := range []int{1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000} {
		step = s
		if (n-1)/s+1 <= 8 {
			break
		}
	}
	for (n-1)/step+1 > 8 {
		step *= 10
	}
	var ticks plot.ConstantTicks
	for i := 0; i < n; i++ {
		switch {
		case i%step == 0:
			ticks = append(ticks, plot.Tick{Value: float64(i), Label: fmt.Sprint(i)})
		case n <= 64:
			ticks = append(ticks, plot.Tick{Value: float64(i)})
		}
	}
	return ticks
}

// rectGrid adapts a W×H pmf (index x*H+y) to plotter.GridXYZ.
type rectGrid struct {
	w, h int
	p    []float64
}

func (g rectGrid) Dims() (c, r int)   { return g.w, g.h }
func (g rectGrid) Z(c, r int) float64 { return g.p[c*g.h+r] }
func (g rectGrid) X(c int) float64    { return float64(c) }
func (g rectGrid) Y(r int) float64    { return float64(r) }

// lightPalette runs from white to a light sky blue, so that the
// background pmf stays behind the points.
type lightPalette struct{}

func (lightPalette) Colors() []color.Color {
	const n = 64
	lo := [3]float64{0xFF, 0xFF, 0xFF}
	hi := [3]float64{0x7F, 0xB8, 0xE0}
	cs := make([]color.Color, n)
	for i := range cs {
		t := float64(i) / (n - 1)
		var c [3]uint8
		for k := range c {
			c[k] = uint8(math.Round(lo[k] + t*(hi[k]-lo[k])))
		}
		cs[i] = color.RGBA{c[0], c[1], c[2], 0xFF}
	}
	return cs
}

// countScatter draws distinct grid points with a marker whose area grows
// with the number of repeats, sized to the grid cell at draw time.
type countScatter struct {
	pts   [][2]int
	count []int
	max   int
}

func newCountScatter(points [][2]int) *countScatter {
	idx := map[[2]int]int{}
	s := &countScatter{}
	for _, p := range points {
		i, ok := idx[p]
		if !ok {
			i = len(s.pts)
			idx[p] = i
			s.pts = append(s.pts, p)
			s.count = append(s.count, 0)
		}
		s.count[i]++
		s.max = max(s.max, s.count[i])
	}
	// Largest markers first, so small ones stay visible on top.
	order := make([]int, len(s.pts))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return s.count[order[a]] > s.count[order[b]] })
	pts, cnt := make([][2]int, len(order)), make([]int, len(order))
	for k, i := range order {
		pts[k], cnt[k] = s.pts[i], s.count[i]
	}
	s.pts, s.count = pts, cnt
	return s
}

var pointColor = color.RGBA{0xD5, 0x5E, 0x00, 0xE0} // Okabe–Ito vermillion

func (s *countScatter) Plot(c draw.Canvas, p *plot.Plot) {
	if len(s.pts) == 0 {
		return
	}
	trX, trY := p.Transforms(&c)
	cell := min(trX(1)-trX(0), trY(1)-trY(0))
	rmax := min(max(cell*0.48, vg.Points(1.6)), vg.Points(6))
	rmin := rmax * 0.45
	if s.max == 1 {
		rmin = rmax * 0.7
	}
	edge := draw.LineStyle{Color: color.RGBA{0x40, 0x1C, 0x00, 0xFF}, Width: vg.Points(0.4)}
	for i, pt := range s.pts {
		r := rmin
		if s.max > 1 {
			r = rmin + (rmax-rmin)*vg.Length(math.Sqrt(float64(s.count[i]-1)/float64(s.max-1)))
		}
		ctr := vg.Point{X: trX(float64(pt[0])), Y: trY(float64(pt[1]))}
		var path vg.Path
		path.Move(vg.Point{X: ctr.X + r, Y: ctr.Y})
		path.Arc(ctr, r, 0, 2*math.Pi)
		path.Close()
		c.SetColor(pointColor)
		c.Fill(path)
		c.SetLineStyle(edge)
		c.Stroke(path)
	}
}

// DataRange keeps the points inside the axis ranges set by Scatters.
func (s *countScatter) DataRange() (xmin, xmax, ymin, ymax float64) {
	xmin, ymin = math.Inf(1), math.Inf(1)
	xmax, ymax = math.Inf(-1), math.Inf(-1)
	for _, p := range s.pts {
		xmin, xmax = math.Min(xmin, float64(p[0])), math.Max(xmax, float64(p[0]))
		ymin, ymax = math.Min(ymin, float64(p[1])), math.Max(ymax, float64(p[1]))
	}
	return
}
