package plots

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Grouped bar charts with error bars.

// Bars draws grouped bars with error bars: groups (x categories) × series
// (e.g. methods, named by names, coloured like the series of the other
// figures). Values[s][g], Errs[s][g] (Errs may be nil, and so may any
// Errs[s]). A NaN value draws no bar; the bars start at 0. o.XLabel names
// the groups' axis; o.LogX is not supported.
func Bars(path string, groups []string, names []string, values, errs [][]float64, o LineOpts) error {
	if _, err := imageFormat(path); err != nil {
		return err
	}
	switch {
	case len(groups) == 0:
		return fmt.Errorf("plots: no groups")
	case len(names) == 0:
		return fmt.Errorf("plots: no series")
	case len(values) != len(names):
		return fmt.Errorf("plots: length mismatch, %d series names but %d rows of values", len(names), len(values))
	case errs != nil && len(errs) != len(names):
		return fmt.Errorf("plots: length mismatch, %d series names but %d rows of errors", len(names), len(errs))
	case o.LogX:
		return fmt.Errorf("plots: LogX is not supported by Bars")
	}
	lo, hi, setLo, setHi, err := yBounds(o)
	if err != nil {
		return err
	}
	nFinite := 0
	for s, name := range names {
		if len(values[s]) != len(groups) {
			return fmt.Errorf("plots: series %q: length mismatch, %d values but %d groups", name, len(values[s]), len(groups))
		}
		if errs != nil && errs[s] != nil && len(errs[s]) != len(groups) {
			return fmt.Errorf("plots: series %q: length mismatch, len(Err) = %d but %d groups", name, len(errs[s]), len(groups))
		}
		for g, v := range values[s] {
			if finite(v) {
				nFinite++
			}
			if errs != nil && errs[s] != nil && errs[s][g] < 0 {
				return fmt.Errorf("plots: series %q: negative error bar %v in group %q", name, errs[s][g], groups[g])
			}
		}
	}
	if nFinite == 0 {
		return fmt.Errorf("plots: no finite values to draw (all NaN/Inf)")
	}

	p := newPlot(o.Title, o.XLabel, o.YLabel)
	leg := newLegendBox()
	const groupWidth = 0.8
	bw := groupWidth / float64(len(names))
	for s, name := range names {
		col := seriesColor(s)
		var xys plotter.XYs
		var yerrs plotter.YErrors
		var poly *plotter.Polygon
		for g, v := range values[s] {
			if !finite(v) {
				continue
			}
			x := float64(g) - groupWidth/2 + bw*(float64(s)+0.5)
			ring := plotter.XYs{{X: x - bw/2, Y: 0}, {X: x - bw/2, Y: v}, {X: x + bw/2, Y: v}, {X: x + bw/2, Y: 0}}
			pg, err := plotter.NewPolygon(ring)
			if err != nil {
				return fmt.Errorf("plots: series %q: %v", name, err)
			}
			pg.Color = col
			pg.LineStyle = draw.LineStyle{Color: color.Gray{0x30}, Width: vg.Points(0.5)}
			p.Add(pg)
			poly = pg
			if errs != nil && errs[s] != nil && finite(errs[s][g]) && errs[s][g] > 0 {
				xys = append(xys, plotter.XY{X: x, Y: v})
				yerrs = append(yerrs, struct{ Low, High float64 }{errs[s][g], errs[s][g]})
			}
		}
		if len(xys) > 0 {
			p.Add(&plotter.YErrorBars{XYs: xys, YErrors: yerrs, LineStyle: draw.LineStyle{Color: color.Black, Width: vg.Points(1)}, CapWidth: vg.Points(5)})
		}
		if poly == nil {
			poly = &plotter.Polygon{Color: col, LineStyle: draw.LineStyle{Color: color.Gray{0x30}, Width: vg.Points(0.5)}}
		}
		if name != "" {
			leg.Add(name, poly)
		}
	}
	// Bars start at 0: keep 0 in view, with no padding under it.
	p.Y.Min = math.Min(p.Y.Min, 0)
	p.Y.Max = math.Max(p.Y.Max, 0)
	if span := p.Y.Max - p.Y.Min; span > 0 {
		// Headroom so that the error bar caps clear the frame.
		if p.Y.Max > 0 {
			p.Y.Max += 0.05 * span
		}
		if p.Y.Min < 0 {
			p.Y.Min -= 0.05 * span
		}
	}
	if setLo {
		p.Y.Min = lo
	}
	if setHi {
		p.Y.Max = hi
	}
	if p.Y.Min >= p.Y.Max {
		p.Y.Max = p.Y.Min + 1
	}
	p.Y.Padding = 0
	p.X.Min, p.X.Max = -0.5, float64(len(groups))-0.5
	p.X.Padding = 0
	w := max(figW, vg.Inch*(1.5+0.3*vg.Length(len(groups)*len(names))))
	w = min(w, 16*vg.Inch)
	categoricalTicks(p, groups, w-vg.Inch)
	w += leg.width()
	p.Title.Text = wrapText(p.Title.TextStyle, o.Title, w-leg.width()-vg.Inch/2) // the plot's width, beside the legend
	return render(path, w, figH, func(c draw.Canvas) { drawWithLegend(c, p, leg) })
}
