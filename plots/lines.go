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

// Line figures (Lines, ErrorBars) and the curve engine they share with
// the trace and loss figures: validation, gaps, marks, error bars, axis
// ranges and scales.

// Series is one named curve: Y against X (same length); Marks are X
// positions to highlight (e.g. resampling events) drawn as markers on the
// curve.
//
// Non-finite X or Y values break the curve (a gap is drawn); a mark is
// placed at the curve's Y for that X (interpolated linearly between the
// neighbouring points when X does not hold the mark exactly) and is
// skipped when it falls outside the curve.
type Series struct {
	Name  string
	X, Y  []float64
	Marks []float64
}

// LineOpts are the options of Lines (and of ErrorBars and Bars).
//
// YMin and YMax fix the y-range; NaN leaves a bound automatic. Because the
// zero value of LineOpts has YMin = YMax = 0, both bounds being 0 also
// means "automatic" (to pin the bottom at 0, set YMin: 0, YMax: math.NaN()).
// LogX puts the x-axis on a log scale (all x must then be positive).
type LineOpts struct {
	Title, XLabel, YLabel string
	YMin, YMax            float64
	LogX                  bool
}

// ErrorSeries is one named curve with symmetric error bars (e.g. mean ±
// standard error over repeats). A non-finite Err draws no bar at that
// point; a negative Err is an error.
type ErrorSeries struct {
	Name      string
	X, Y, Err []float64
}

// ErrorOpts are the options of ErrorBars: those of LineOpts, and Ticks for
// categorical x: when Ticks is non-empty every X must be one of
// 0..len(Ticks)−1, the axis is labelled with the tick names, the points
// are not joined by lines (the categories have no order to interpolate),
// and the series are spread slightly sideways so that their error bars do
// not overlap.
type ErrorOpts struct {
	LineOpts
	Ticks []string
}

// curve is one drawable series: a line (optionally with a glyph at every
// point), optional error bars and optional marks.
type curve struct {
	name      string
	x, y, err []float64
	marks     []float64
	points    bool // draw a glyph at every point
	idx       int  // palette index
	dodge     float64
	noData    bool    // legend entry only (RewardTraces: no finite value)
	width     float64 // line width in points (0 = lineWidth)
	noLine    bool    // points only (categorical x)
}

// curveOpts are the internal options of drawCurves.
type curveOpts struct {
	LineOpts
	logY      bool
	ticks     []string
	markLabel string // legend entry for the marks ("" = none)
}

// finite reports whether every value is finite.
func finite(vs ...float64) bool {
	for _, v := range vs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}

// yBounds resolves YMin/YMax: NaN (or both zero, the zero value) = auto.
func yBounds(o LineOpts) (lo, hi float64, setLo, setHi bool, err error) {
	if o.YMin == 0 && o.YMax == 0 {
		return 0, 0, false, false, nil
	}
	setLo, setHi = !math.IsNaN(o.YMin), !math.IsNaN(o.YMax)
	if math.IsInf(o.YMin, 0) || math.IsInf(o.YMax, 0) {
		return 0, 0, false, false, fmt.Errorf("plots: infinite y bound (YMin %v, YMax %v)", o.YMin, o.YMax)
	}
	if setLo && setHi && o.YMin >= o.YMax {
		return 0, 0, false, false, fmt.Errorf("plots: YMin %v is not below YMax %v", o.YMin, o.YMax)
	}
	return o.YMin, o.YMax, setLo, setHi, nil
}

// segments splits the points of c into runs of finite (x, y).
func (c curve) segments() []plotter.XYs {
	var segs []plotter.XYs
	var cur plotter.XYs
	for i := range c.x {
		if finite(c.x[i], c.y[i]) {
			cur = append(cur, plotter.XY{X: c.x[i] + c.dodge, Y: c.y[i]})
			continue
		}
		if len(cur) > 0 {
			segs = append(segs, cur)
			cur = nil
		}
	}
	if len(cur) > 0 {
		segs = append(segs, cur)
	}
	return segs
}

// markPoints places the marks of c on the curve.
func (c curve) markPoints() plotter.XYs {
	var out plotter.XYs
	for _, m := range c.marks {
		if !finite(m) {
			continue
		}
		y, ok := math.NaN(), false
		for i := range c.x {
			if c.x[i] == m && finite(c.y[i]) {
				y, ok = c.y[i], true
				break
			}
		}
		for i := 0; !ok && i+1 < len(c.x); i++ {
			x0, x1, y0, y1 := c.x[i], c.x[i+1], c.y[i], c.y[i+1]
			if !finite(x0, x1, y0, y1) || x0 == x1 {
				continue
			}
			if (x0 <= m && m <= x1) || (x1 <= m && m <= x0) {
				y, ok = y0+(y1-y0)*(m-x0)/(x1-x0), true
			}
		}
		if ok {
			out = append(out, plotter.XY{X: m + c.dodge, Y: y})
		}
	}
	return out
}

// validateCurves checks lengths, finiteness and log-scale positivity.
func validateCurves(cs []curve, o curveOpts) error {
	if len(cs) == 0 {
		return fmt.Errorf("plots: no series")
	}
	for _, c := range cs {
		if c.noData {
			continue
		}
		if len(c.x) != len(c.y) {
			return fmt.Errorf("plots: series %q: length mismatch, len(X) = %d but len(Y) = %d", c.name, len(c.x), len(c.y))
		}
		if c.err != nil && len(c.err) != len(c.y) {
			return fmt.Errorf("plots: series %q: length mismatch, len(Err) = %d but len(Y) = %d", c.name, len(c.err), len(c.y))
		}
		n := 0
		for i := range c.x {
			if !finite(c.x[i], c.y[i]) {
				continue
			}
			n++
			if o.LogX && c.x[i] <= 0 {
				return fmt.Errorf("plots: series %q: LogX needs positive x, got x = %v", c.name, c.x[i])
			}
			if o.logY && c.y[i] <= 0 {
				return fmt.Errorf("plots: series %q: log y-axis needs positive y, got y = %v", c.name, c.y[i])
			}
			if c.err != nil && c.err[i] < 0 {
				return fmt.Errorf("plots: series %q: negative error bar %v at x = %v", c.name, c.err[i], c.x[i])
			}
			if len(o.ticks) > 0 && (c.x[i] != math.Trunc(c.x[i]) || c.x[i] < 0 || c.x[i] >= float64(len(o.ticks))) {
				return fmt.Errorf("plots: series %q: x = %v is not a tick index in 0..%d", c.name, c.x[i], len(o.ticks)-1)
			}
		}
		if n == 0 {
			return fmt.Errorf("plots: series %q has no finite (x, y) points (all NaN/Inf or empty)", c.name)
		}
	}
	return nil
}

// drawCurves validates cs and writes the figure.
func drawCurves(path string, cs []curve, o curveOpts) error {
	if _, err := imageFormat(path); err != nil {
		return err
	}
	if err := validateCurves(cs, o); err != nil {
		return err
	}
	lo, hi, setLo, setHi, err := yBounds(o.LineOpts)
	if err != nil {
		return err
	}
	if len(o.ticks) > 0 && o.LogX {
		return fmt.Errorf("plots: categorical ticks and LogX cannot be combined")
	}

	p := newPlot(o.Title, o.XLabel, o.YLabel)
	leg := newLegendBox()
	anyMarks := false
	for _, c := range cs {
		col := seriesColor(c.idx)
		lw := c.width
		if lw == 0 {
			lw = lineWidth
		}
		ls := draw.LineStyle{Color: col, Width: vg.Points(lw), Dashes: seriesDashes(c.idx)}
		gs := draw.GlyphStyle{Color: col, Radius: vg.Points(pointRadius), Shape: seriesGlyph(c.idx)}
		var thumbs []plot.Thumbnailer
		lineThumb := &plotter.Line{LineStyle: ls}
		if !c.noLine {
			thumbs = append(thumbs, lineThumb)
		}
		if c.noData {
			if c.name != "" {
				leg.Add(c.name+" (no finite values)", lineThumb)
			}
			continue
		}
		for _, seg := range c.segments() {
			l, err := plotter.NewLine(seg)
			if err != nil {
				return fmt.Errorf("plots: series %q: %v", c.name, err)
			}
			l.LineStyle = ls
			if !c.noLine {
				p.Add(l)
			}
			if c.points || len(seg) == 1 {
				s, err := plotter.NewScatter(seg)
				if err != nil {
					return fmt.Errorf("plots: series %q: %v", c.name, err)
				}
				s.GlyphStyle = gs
				if !c.points {
					s.GlyphStyle.Shape = draw.CircleGlyph{}
					s.GlyphStyle.Radius = vg.Points(1.5)
				}
				p.Add(s)
			}
		}
		if c.points {
			thumbs = append(thumbs, &plotter.Scatter{GlyphStyle: gs})
		}
		if c.err != nil {
			var xys plotter.XYs
			var errs plotter.YErrors
			for i := range c.x {
				if finite(c.x[i], c.y[i], c.err[i]) && c.err[i] > 0 {
					xys = append(xys, plotter.XY{X: c.x[i] + c.dodge, Y: c.y[i]})
					errs = append(errs, struct{ Low, High float64 }{c.err[i], c.err[i]})
				}
			}
			if len(xys) > 0 {
				eb := &plotter.YErrorBars{XYs: xys, YErrors: errs, LineStyle: draw.LineStyle{Color: col, Width: vg.Points(1.2)}, CapWidth: vg.Points(6)}
				p.Add(eb)
			}
		}
		if mp := c.markPoints(); len(mp) > 0 {
			anyMarks = true
			s, err := plotter.NewScatter(mp)
			if err != nil {
				return fmt.Errorf("plots: series %q marks: %v", c.name, err)
			}
			s.GlyphStyle = draw.GlyphStyle{Color: col, Radius: vg.Points(markRadius), Shape: draw.CircleGlyph{}}
			p.Add(s)
			if o.markLabel == "" {
				thumbs = append(thumbs, &plotter.Scatter{GlyphStyle: s.GlyphStyle})
			}
		}
		if c.name != "" {
			leg.Add(c.name, thumbs...)
		}
	}
	if anyMarks && o.markLabel != "" {
		leg.Add(o.markLabel, &plotter.Scatter{GlyphStyle: draw.GlyphStyle{Color: color.Gray{0x40}, Radius: vg.Points(markRadius), Shape: draw.CircleGlyph{}}})
	}

	// Axis ranges and scales.
	if setLo {
		p.Y.Min = lo
	}
	if setHi {
		p.Y.Max = hi
	}
	if setLo && !setHi && p.Y.Max <= lo {
		p.Y.Max = lo + 1
	}
	if setHi && !setLo && p.Y.Min >= hi {
		p.Y.Min = hi - 1
	}
	if setLo || setHi {
		p.Y.Padding = 0
	}
	if o.LogX {
		p.X.Scale = plot.LogScale{}
		if p.X.Min == p.X.Max {
			p.X.Min, p.X.Max = p.X.Min/2, p.X.Max*2
		}
		p.X.Tick.Marker = logTicks(distinctX(cs))
	}
	if o.logY {
		p.Y.Scale = plot.LogScale{}
		if p.Y.Min == p.Y.Max {
			p.Y.Min, p.Y.Max = p.Y.Min/2, p.Y.Max*2
		}
		p.Y.Tick.Marker = logTicks(nil)
	}
	w := figW + leg.width()
	if len(o.ticks) > 0 {
		p.X.Min, p.X.Max = -0.5, float64(len(o.ticks))-0.5
		p.X.Padding = 0
		categoricalTicks(p, o.ticks, w-leg.width()-vg.Inch)
	}
	// The title is centred over the plot, which the legend leaves beside
	// it: wrap it to that width, or a long title overflows the left edge.
	p.Title.Text = wrapText(p.Title.TextStyle, o.Title, w-leg.width()-vg.Inch/2)
	return render(path, w, figH, func(c draw.Canvas) { drawWithLegend(c, p, leg) })
}

// distinctX returns the sorted distinct finite x of the curves.
func distinctX(cs []curve) []float64 {
	seen := map[float64]bool{}
	var xs []float64
	for _, c := range cs {
		for i, x := range c.x {
			if !c.noData && finite(x, c.y[i]) && !seen[x] {
				seen[x] = true
				xs = append(xs, x)
			}
		}
	}
	sort.Float64s(xs)
	return xs
}

// Lines draws several series on one axes. Options: title, axis labels,
// YMin/YMax (NaN = auto), LogX. Errors: no series, a length mismatch
// between X and Y, a series with no finite point, non-positive x with
// LogX, an unsupported extension.
func Lines(path string, series []Series, o LineOpts) error {
	cs := make([]curve, len(series))
	for i, s := range series {
		cs[i] = curve{name: s.Name, x: s.X, y: s.Y, marks: s.Marks, idx: i}
	}
	return drawCurves(path, cs, curveOpts{LineOpts: o})
}

// ErrorBars draws metric-vs-setting curves with error bars (the "scaling"
// and "ablation" figures): a line with a marker at every point and a bar
// of ±Err. Options as LineOpts (LogX for N on a log scale; with few
// distinct x the ticks sit at the x values themselves). If X values are
// categorical, the caller passes 0..k−1 and o.Ticks names them.
func ErrorBars(path string, series []ErrorSeries, o ErrorOpts) error {
	cs := make([]curve, len(series))
	for i, s := range series {
		e := s.Err
		if e == nil {
			e = []float64{}
		}
		cs[i] = curve{name: s.Name, x: s.X, y: s.Y, err: e, points: true, idx: i, noLine: len(o.Ticks) > 0}
		if len(o.Ticks) > 0 && len(series) > 1 {
			// Spread the series over ±0.15 of a category.
			cs[i].dodge = 0.3 * (float64(i)/float64(len(series)-1) - 0.5)
		}
	}
	return drawCurves(path, cs, curveOpts{LineOpts: o.LineOpts, ticks: o.Ticks})
}
