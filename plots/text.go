package plots

import (
	"fmt"
	"strings"

	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// TextBlock is one panel of a text figure: a bold heading and its lines
// (for example generated samples with their scores).
type TextBlock struct {
	Title string
	Lines []string
}

// Text figure geometry.
const (
	textFigW   = 8 * vg.Inch
	textMargin = 0.25 * vg.Inch
	textSize   = 9
	textHead   = 10.5
)

// TextPanels draws a titled figure of text blocks, one under the other,
// wrapping each line at the figure width (continuation lines indented),
// to path (PNG or SVG by extension), written atomically. The figure is as
// tall as its text.
func TextPanels(path, title string, blocks []TextBlock) error {
	if len(blocks) == 0 {
		return fmt.Errorf("plots: text figure %s has no blocks", path)
	}
	body, head, top := textStyle(sansFont, textSize), textStyle(boldFont, textHead), textStyle(boldFont, 13)
	width := textFigW - 2*textMargin
	type line struct {
		s    string
		bold bool
		x    vg.Length
	}
	var lines []line
	for _, b := range blocks {
		lines = append(lines, line{s: b.Title, bold: true})
		for _, l := range b.Lines {
			for i, w := range strings.Split(wrapText(body, l, width-textMargin), "\n") {
				x := vg.Length(0)
				if i > 0 {
					x = textMargin
				}
				lines = append(lines, line{s: w, x: x})
			}
		}
		lines = append(lines, line{})
	}
	titleLines := strings.Split(wrapText(top, title, width), "\n")
	lh, hh, th := 1.3*body.Height("Xg"), 1.4*head.Height("Xg"), 1.3*top.Height("Xg")
	h := 2*textMargin + th*vg.Length(len(titleLines))
	for _, l := range lines {
		if l.bold {
			h += hh
		} else {
			h += lh
		}
	}
	return render(path, textFigW, h, func(c draw.Canvas) {
		y := c.Max.Y - textMargin
		for _, t := range titleLines {
			y -= th
			c.FillText(top, vg.Point{X: c.Min.X + textMargin, Y: y}, t)
		}
		for _, l := range lines {
			sty, step := body, lh
			if l.bold {
				sty, step = head, hh
			}
			y -= step
			if l.s != "" {
				c.FillText(sty, vg.Point{X: c.Min.X + textMargin + l.x, Y: y}, l.s)
			}
		}
	})
}
