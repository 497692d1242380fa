package plots

import (
	"bufio"
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	xfont "golang.org/x/image/font"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/ddsmc/ddsmc/internal/atomicfile"
)

// This file holds the curve figures (Lines, ErrorBars, Bars and the SMC
// trace wrappers) and the helpers every figure in the package shares:
// the output format, the palette, fonts, the outside legend and title
// wrapping.
//
// Conventions common to all figures:
//   - The format comes from the file extension, ".png" (150 dpi) or ".svg"
//     (case-insensitive); anything else is an error. The file is written
//     atomically, so a failed call never leaves a partial file and never
//     touches an existing one.
//   - Series get the Okabe–Ito colours in the order they are given, so the
//     same method gets the same colour in every figure when methods are
//     passed in the same order. After eight series the colours repeat with
//     a dashed line.
//   - The legend sits outside the axes, to the right, so it never hides
//     data. Series with an empty Name get no legend entry.
//   - Every error starts with "plots: "; bad input is reported, never
//     allowed to panic.

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

// TraceCurve is one method's per-step trace: Step, ESS (fraction of N),
// Resampled, RhatMean values in step order (as in smc.Info). Resampled may
// be nil (no resampling marks); RhatMean may be nil when only ESSTraces is
// used.
type TraceCurve struct {
	Name      string
	Step      []int
	ESS       []float64
	Resampled []bool
	RhatMean  []float64
}

// Figure geometry.
const (
	pngDPI      = 150
	figW        = 6 * vg.Inch
	figH        = 4 * vg.Inch
	lineWidth   = 1.6 // points
	markRadius  = 2.6 // points
	pointRadius = 2.4 // points
)

// okabeIto is the Okabe–Ito colour-blind-safe palette, ordered so that the
// first few colours are the most distinct on white (yellow last).
var okabeIto = []color.Color{
	color.RGBA{0x00, 0x72, 0xB2, 0xFF}, // blue
	color.RGBA{0xD5, 0x5E, 0x00, 0xFF}, // vermillion
	color.RGBA{0x00, 0x9E, 0x73, 0xFF}, // bluish green
	color.RGBA{0xE6, 0x9F, 0x00, 0xFF}, // orange
	color.RGBA{0xCC, 0x79, 0xA7, 0xFF}, // reddish purple
	color.RGBA{0x56, 0xB4, 0xE9, 0xFF}, // sky blue
	color.RGBA{0x00, 0x00, 0x00, 0xFF}, // black
	color.RGBA{0xF0, 0xE4, 0x42, 0xFF}, // yellow
}

// seriesColor is the colour of the i-th series.
func seriesColor(i int) color.Color { return okabeIto[i%len(okabeIto)] }

// seriesDashes is the dash pattern of the i-th series: solid for the first
// round of colours, then dashed, then dotted.
func seriesDashes(i int) []vg.Length {
	switch (i / len(okabeIto)) % 3 {
	case 1:
		return []vg.Length{vg.Points(6), vg.Points(3)}
	case 2:
		return []vg.Length{vg.Points(1.5), vg.Points(2.5)}
	}
	return nil
}

// seriesGlyph is the point shape of the i-th series (used where every
// point is drawn, e.g. ErrorBars), so that series differ by more than
// colour.
func seriesGlyph(i int) draw.GlyphDrawer {
	shapes := []draw.GlyphDrawer{draw.CircleGlyph{}, draw.BoxGlyph{}, draw.PyramidGlyph{}, draw.RingGlyph{}, draw.SquareGlyph{}, draw.TriangleGlyph{}, draw.CrossGlyph{}, draw.PlusGlyph{}}
	return shapes[i%len(shapes)]
}

var (
	sansFont = font.Font{Typeface: "Liberation", Variant: "Sans"}
	boldFont = font.Font{Typeface: "Liberation", Variant: "Sans", Weight: xfont.WeightBold}
)

// textStyle is a plain Liberation Sans text style.
func textStyle(f font.Font, size vg.Length) text.Style {
	return text.Style{Color: color.Black, Font: font.From(f, size), Handler: plot.DefaultTextHandler}
}

// newPlot returns a plot with sans-serif fonts, a title and axis labels.
func newPlot(title, xlabel, ylabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle = textStyle(boldFont, 13)
	p.Title.TextStyle.XAlign = draw.XCenter
	p.Title.TextStyle.YAlign = draw.YTop
	p.Title.Padding = vg.Points(6)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = font.From(sansFont, 12)
		a.Tick.Label.Font = font.From(sansFont, 10)
	}
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	p.X.Tick.Marker = plot.TickerFunc(linearTicks)
	p.Y.Tick.Marker = plot.TickerFunc(linearTicks)
	return p
}

// wrapText breaks s at spaces so that no line is wider than max in style
// sty (a single word longer than max stays on its own line). It uses as
// few lines as possible, balances their widths and prefers to break after
// punctuation ("reward 0.8, EMD 0.1,|diversity 0.7"). Existing newlines
// are kept.
func wrapText(sty text.Style, s string, max vg.Length) string {
	var out []string
	for _, para := range strings.Split(s, "\n") {
		if sty.Width(para) <= max {
			out = append(out, para)
			continue
		}
		out = append(out, wrapPara(sty, strings.Fields(para), float64(max))...)
	}
	return strings.Join(out, "\n")
}

// wrapPara splits words into lines by dynamic programming over the break
// points: cost = many × lines + Σ slack² + a penalty per break that does
// not follow punctuation.
func wrapPara(sty text.Style, words []string, max float64) []string {
	n := len(words)
	if n == 0 {
		return []string{""}
	}
	const perLine = 1e12
	penalty := 0.1 * max * max
	best := make([]float64, n+1) // best[i]: cost of words[i:]
	next := make([]int, n+1)
	for i := n - 1; i >= 0; i-- {
		best[i] = math.Inf(1)
		for j := i + 1; j <= n; j++ {
			w := float64(sty.Width(strings.Join(words[i:j], " ")))
			if w > max && j > i+1 {
				break
			}
			slack := math.Max(max-w, 0)
			c := perLine + slack*slack + best[j]
			if j < n && !strings.ContainsAny(words[j-1][len(words[j-1])-1:], ",;:|)") {
				c += penalty
			}
			if c < best[i] {
				best[i], next[i] = c, j
			}
		}
	}
	var lines []string
	for i := 0; i < n; i = next[i] {
		lines = append(lines, strings.Join(words[i:next[i]], " "))
	}
	return lines
}

// linearTicks labels a linear axis at 1, 2 or 5 × 10^k with at most
// about eight labels and unlabelled minor ticks in between.
func linearTicks(min, max float64) []plot.Tick {
	if !finite(min, max) || !(max > min) {
		return plot.DefaultTicks{}.Ticks(min, max)
	}
	mag := math.Pow(10, math.Floor(math.Log10((max-min)/7)))
	step, sub := mag, 5
	for _, m := range []struct {
		f   float64
		sub int
	}{{1, 5}, {2, 4}, {5, 5}, {10, 5}} {
		step, sub = m.f*mag, m.sub
		if (max-min)/step <= 8 {
			break
		}
	}
	minor := step / float64(sub)
	decimals := int(math.Max(0, -math.Floor(math.Log10(step)+1e-9)))
	var ticks []plot.Tick
	for i := math.Ceil(min/minor - 1e-9); i <= math.Floor(max/minor+1e-9); i++ {
		v := i * minor
		t := plot.Tick{Value: v}
		if int(math.Round(i))%sub == 0 {
			if math.Abs(v) < minor/2 {
				v = 0
			}
			t.Label = strconv.FormatFloat(v, 'f', decimals, 64)
		}
		ticks = append(ticks, t)
	}
	return ticks
}

// imageFormat returns "png" or "svg" for the extension of path.
func imageFormat(path string) (string, error) {
	ext := filepath.Ext(path)
	switch strings.ToLower(ext) {
	case ".png":
		return "png", nil
	case ".svg":
		return "svg", nil
	}
	return "", fmt.Errorf("plots: unsupported file extension %q in %s (want .png or .svg)", ext, path)
}

// render draws a w×h figure with fill and writes it atomically to path in
// the format its extension names. A panic inside fill (gonum/plot panics on
// some degenerate input) becomes an error and nothing is written.
func render(path string, w, h vg.Length, fill func(c draw.Canvas)) (err error) {
	format, err := imageFormat(path)
	if err != nil {
		return err
	}
	var (
		cv      vg.CanvasSizer
		writeTo func(w *bufio.Writer) error
	)
	switch format {
	case "png":
		img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(pngDPI), vgimg.UseBackgroundColor(color.White))
		cv = img
		writeTo = func(bw *bufio.Writer) error {
			_, err := vgimg.PngCanvas{Canvas: img}.WriteTo(bw)
			return err
		}
	default:
		svg := vgsvg.New(w, h)
		cv = svg
		writeTo = func(bw *bufio.Writer) error {
			_, err := svg.WriteTo(bw)
			return err
		}
	}
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("plots: drawing %s: %v", filepath.Base(path), r)
			}
		}()
		c := draw.New(cv)
		c.SetColor(color.White)
		c.Fill(c.Rectangle.Path())
		fill(c)
	}()
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, writeTo); err != nil {
		return fmt.Errorf("plots: %w", err)
	}
	return nil
}

// legendBox is a legend drawn outside the axes, to the right.
type legendBox struct {
	plot.Legend
}

func newLegendBox() *legendBox {
	l := plot.NewLegend()
	l.TextStyle = textStyle(sansFont, 11)
	l.Top, l.Left = true, true
	l.ThumbnailWidth = vg.Points(24)
	l.Padding = vg.Points(3)
	return &legendBox{l}
}

// width is the horizontal space the legend needs, margins included (0 for
// an empty legend).
func (l *legendBox) width() vg.Length {
	r := l.Rectangle(draw.Canvas{})
	w := r.Max.X - r.Min.X
	if w <= 0 {
		return 0
	}
	return w + vg.Points(18)
}

// drawWithLegend draws p on c with the legend in a strip to the right of
// the axes, top-aligned with the data area.
func drawWithLegend(c draw.Canvas, p *plot.Plot, l *legendBox) {
	lw := l.width()
	pc := draw.Crop(c, vg.Points(4), -lw, vg.Points(2), -vg.Points(4))
	p.Draw(pc)
	if lw == 0 {
		return
	}
	da := p.DataCanvas(pc)
	lc := draw.Canvas{Canvas: c.Canvas, Rectangle: vg.Rectangle{
		Min: vg.Point{X: pc.Max.X + vg.Points(10), Y: da.Min.Y},
		Max: vg.Point{X: c.Max.X - vg.Points(4), Y: da.Max.Y},
	}}
	l.Draw(lc)
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
	p.Title.Text = wrapText(p.Title.TextStyle, o.Title, w-vg.Inch/2)
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

// logTicks labels a log axis: at the data x values when there are only a
// few of them (e.g. N = 64, 128, …), otherwise at 1, 2, 5 × 10^k for
// ranges of up to three decades and at powers of ten beyond.
func logTicks(xs []float64) plot.Ticker {
	return plot.TickerFunc(func(min, max float64) []plot.Tick {
		if min <= 0 || max <= 0 || !finite(min, max) {
			return nil
		}
		var ticks []plot.Tick
		if len(xs) >= 2 && len(xs) <= 10 {
			for _, x := range xs {
				ticks = append(ticks, plot.Tick{Value: x, Label: strconv.FormatFloat(x, 'g', 4, 64)})
			}
			return ticks
		}
		lo, hi := math.Floor(math.Log10(min)), math.Ceil(math.Log10(max))
		mult := []float64{1}
		if hi-lo <= 3 {
			mult = []float64{1, 2, 5}
		}
		for e := lo; e <= hi; e++ {
			for k := 1; k <= 9; k++ {
				v := float64(k) * math.Pow(10, e)
				label := ""
				for _, m := range mult {
					if float64(k) == m {
						label = strconv.FormatFloat(v, 'g', 4, 64)
					}
				}
				ticks = append(ticks, plot.Tick{Value: v, Label: label})
			}
		}
		return ticks
	})
}

// categoricalTicks names the x positions 0..k−1, rotating the labels when
// they would not fit side by side in width.
func categoricalTicks(p *plot.Plot, names []string, width vg.Length) {
	ticks := make(plot.ConstantTicks, len(names))
	widest := vg.Length(0)
	for i, n := range names {
		ticks[i] = plot.Tick{Value: float64(i), Label: n}
		widest = max(widest, p.X.Tick.Label.Width(n))
	}
	p.X.Tick.Marker = ticks
	if widest > 0.9*width/vg.Length(len(names)) {
		p.X.Tick.Label.Rotation = math.Pi / 6
		p.X.Tick.Label.XAlign = draw.XRight
		p.X.Tick.Label.YAlign = draw.YTop
	}
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
	p.Title.Text = wrapText(p.Title.TextStyle, o.Title, w-vg.Inch/2)
	return render(path, w, figH, func(c draw.Canvas) { drawWithLegend(c, p, leg) })
}

// checkTrace validates one TraceCurve; need selects the value slices used.
func checkTrace(c TraceCurve, ess, rhat bool) error {
	if ess && len(c.ESS) != len(c.Step) {
		return fmt.Errorf("plots: trace %q: length mismatch, len(Step) = %d but len(ESS) = %d", c.Name, len(c.Step), len(c.ESS))
	}
	if ess && c.Resampled != nil && len(c.Resampled) != len(c.Step) {
		return fmt.Errorf("plots: trace %q: length mismatch, len(Step) = %d but len(Resampled) = %d", c.Name, len(c.Step), len(c.Resampled))
	}
	if rhat && len(c.RhatMean) != len(c.Step) {
		return fmt.Errorf("plots: trace %q: length mismatch, len(Step) = %d but len(RhatMean) = %d", c.Name, len(c.Step), len(c.RhatMean))
	}
	return nil
}

func stepsAsFloat(steps []int) []float64 {
	x := make([]float64, len(steps))
	for i, s := range steps {
		x[i] = float64(s)
	}
	return x
}

// ESSTraces plots ESS/N against the step, one curve per method, with
// markers at resampling events (a "resampled" legend entry explains them);
// y in [0, 1.02].
func ESSTraces(path string, curves []TraceCurve, title string) error {
	if len(curves) == 0 {
		return fmt.Errorf("plots: no traces")
	}
	cs := make([]curve, len(curves))
	for i, c := range curves {
		if err := checkTrace(c, true, false); err != nil {
			return err
		}
		x := stepsAsFloat(c.Step)
		var marks []float64
		for j, r := range c.Resampled {
			if r {
				marks = append(marks, x[j])
			}
		}
		cs[i] = curve{name: c.Name, x: x, y: c.ESS, marks: marks, idx: i}
	}
	return drawCurves(path, cs, curveOpts{
		LineOpts:  LineOpts{Title: title, XLabel: "SMC step", YLabel: "ESS / N", YMin: 0, YMax: 1.02},
		markLabel: "resampled",
	})
}

// RewardTraces plots the mean look-ahead reward (RhatMean) against the
// step, one curve per method. Non-finite values are skipped (the curve
// joins its finite neighbours); a method with no finite value keeps its
// colour and gets a "(no finite values)" legend entry; if no method has a
// finite value the call fails.
func RewardTraces(path string, curves []TraceCurve, title string) error {
	if len(curves) == 0 {
		return fmt.Errorf("plots: no traces")
	}
	cs := make([]curve, len(curves))
	someData := false
	for i, c := range curves {
		if err := checkTrace(c, false, true); err != nil {
			return err
		}
		var x, y []float64
		for j, s := range c.Step {
			if finite(c.RhatMean[j]) {
				x = append(x, float64(s))
				y = append(y, c.RhatMean[j])
			}
		}
		cs[i] = curve{name: c.Name, x: x, y: y, idx: i, noData: len(y) == 0}
		someData = someData || len(y) > 0
	}
	if !someData {
		return fmt.Errorf("plots: no trace has a finite RhatMean value")
	}
	return drawCurves(path, cs, curveOpts{LineOpts: LineOpts{Title: title, XLabel: "SMC step", YLabel: "mean look-ahead reward"}})
}

// LossCurve plots a training loss curve (step vs loss) and, when valStep
// and val are non-empty, a second series ("validation") drawn with
// markers. Non-finite losses leave gaps. When every loss is positive and
// the largest is 30 times the smallest or more, the y-axis is logarithmic.
func LossCurve(path string, step, loss []float64, valStep, val []float64, title string) error {
	cs := []curve{{name: "train", x: step, y: loss, idx: 0, width: 1}}
	if len(valStep) > 0 || len(val) > 0 {
		cs = append(cs, curve{name: "validation", x: valStep, y: val, points: true, idx: 1})
	}
	if err := validateCurves(cs, curveOpts{}); err != nil {
		return err
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, c := range cs {
		for i := range c.x {
			if finite(c.x[i], c.y[i]) {
				lo, hi = math.Min(lo, c.y[i]), math.Max(hi, c.y[i])
			}
		}
	}
	logY := lo > 0 && hi/lo >= 30
	ylabel := "loss"
	if logY {
		ylabel = "loss (log scale)"
	}
	return drawCurves(path, cs, curveOpts{LineOpts: LineOpts{Title: title, XLabel: "training step", YLabel: ylabel}, logY: logY})
}
