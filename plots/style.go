package plots

import (
	"image/color"
	"math"
	"strings"

	xfont "golang.org/x/image/font"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// The look shared by every figure: geometry, the palette and per-series
// line and point styles, fonts, plot construction, title wrapping and the
// legend drawn outside the axes.

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
		var words []string
		for _, w := range strings.Fields(para) {
			words = append(words, splitWide(sty, w, max)...)
		}
		out = append(out, wrapPara(sty, words, float64(max))...)
	}
	return strings.Join(out, "\n")
}

// splitWide cuts a word wider than max into pieces that fit, so that a long
// unbroken label (a sweep point's settings, a path) wraps instead of
// running past the figure's edges; it cuts after '=', ',', '_', '/' or '-'
// where it can.
func splitWide(sty text.Style, w string, max vg.Length) []string {
	var out []string
	r := []rune(w)
	for len(r) > 0 && sty.Width(string(r)) > max {
		cut, soft := 1, 0
		for k := 1; k <= len(r) && sty.Width(string(r[:k])) <= max; k++ {
			cut = k
			if strings.ContainsRune("=,_/-", r[k-1]) {
				soft = k
			}
		}
		if soft > cut/2 {
			cut = soft
		}
		out = append(out, string(r[:cut]))
		r = r[cut:]
	}
	if len(r) > 0 {
		out = append(out, string(r))
	}
	return out
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
