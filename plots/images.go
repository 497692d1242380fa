package plots

import (
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// This file holds ImageGrid, the sample grids of the image models: small
// binary or grey images side by side with a caption under each.
//
// The layout is computed in PNG pixels (1/150 inch = 0.48 pt) so that every
// image pixel covers a whole number of PNG pixels and the images come out
// crisp, with no blur and no seams. Each grey level of an image is filled as
// one path (runs of equal pixels merged), which also keeps the SVG free of
// hairline seams and small.

// Image grid geometry, in PNG pixels (devPt points each) unless noted.
const (
	imgTargetSide = 167    // an image is about this wide (≈ 80 pt): 6 px = 2.88 pt per pixel for 28×28
	imgMargin     = 21     // around the figure (≈ 10 pt)
	imgGapX       = 21     // between the images of a row (≈ 10 pt)
	imgCaptionGap = 6      // image bottom to caption top (≈ 3 pt)
	imgRowGap     = 17     // caption bottom (or image bottom) to the next row (≈ 8 pt)
	imgTitleGap   = 13     // title bottom to the first row (≈ 6 pt)
	imgCaptionPt  = 7      // caption font size, points
	imgTitlePt    = 11     // title font size, points
	imgBorderPt   = 0.5    // border line width, points
	imgMaxTitleW  = 6 * 72 // the figure widens up to this many points to fit the title on one line
)

// devPt is the size of one PNG pixel in points.
const devPt = 72.0 / pngDPI

// imgBorderColor is the colour of the thin frame around each image.
var imgBorderColor = color.Gray{Y: 0xA0}

// dev converts a length in PNG pixels to points.
func dev(k int) vg.Length { return vg.Length(float64(k) * devPt) }

// devCeil converts a length in points to whole PNG pixels, rounding up.
func devCeil(l vg.Length) int { return int(math.Ceil(float64(l)/devPt - 1e-9)) }

// gridLayout is where ImageGrid puts everything, in points from the bottom
// left corner of the figure.
type gridLayout struct {
	w, h     vg.Length      // figure size
	pix      vg.Length      // side of one image pixel
	rects    []vg.Rectangle // image i occupies rects[i]
	captions []string       // wrapped captions (nil: none)
	title    string         // wrapped title ("" = none)
}

// imageGridLayout places n images of h×w pixels in cols columns (cols ≥ 1)
// with the given captions (nil or one per image) and title.
func imageGridLayout(n, h, w, cols int, captions []string, title string) gridLayout {
	p := max(1, int(math.Round(float64(imgTargetSide)/float64(max(h, w)))))
	iw, ih := w*p, h*p
	cols = min(cols, n)
	rows := (n + cols - 1) / cols

	capSty := textStyle(sansFont, imgCaptionPt)
	var wrapped []string
	capH := 0
	for _, s := range captions {
		s = wrapText(capSty, s, dev(iw+imgGapX/2))
		wrapped = append(wrapped, s)
		if s != "" {
			capH = max(capH, imgCaptionGap+devCeil(capSty.Height(s)))
		}
	}
	if capH == 0 {
		wrapped = nil
	}

	gridW := cols*iw + (cols-1)*imgGapX
	figW := gridW + 2*imgMargin
	titleH := 0
	if title != "" {
		sty := textStyle(boldFont, imgTitlePt)
		figW = max(figW, min(devCeil(sty.Width(title)), devCeil(imgMaxTitleW))+2*imgMargin)
		title = wrapText(sty, title, dev(figW-2*imgMargin))
		titleH = devCeil(sty.Height(title)) + imgTitleGap
	}
	figH := 2*imgMargin + titleH + rows*(ih+capH) + (rows-1)*imgRowGap

	l := gridLayout{w: dev(figW), h: dev(figH), pix: dev(p), captions: wrapped, title: title}
	x0 := (figW - gridW) / 2
	for i := range n {
		r, k := i/cols, i%cols
		top := figH - imgMargin - titleH - r*(ih+capH+imgRowGap)
		left := x0 + k*(iw+imgGapX)
		l.rects = append(l.rects, vg.Rectangle{
			Min: vg.Point{X: dev(left), Y: dev(top - ih)},
			Max: vg.Point{X: dev(left + iw), Y: dev(top)},
		})
	}
	return l
}

// validateImages checks the arguments of ImageGrid.
func validateImages(imgs [][]float64, h, w, cols int, captions []string) error {
	switch {
	case len(imgs) == 0:
		return fmt.Errorf("plots: no images")
	case h <= 0 || w <= 0:
		return fmt.Errorf("plots: image size h×w = %d×%d: h and w must be positive", h, w)
	case cols < 0:
		return fmt.Errorf("plots: cols = %d is negative (want 0 for automatic, or the number of images per row)", cols)
	case len(captions) != 0 && len(captions) != len(imgs):
		return fmt.Errorf("plots: length mismatch, %d captions for %d images (want none or one per image)", len(captions), len(imgs))
	}
	for i, img := range imgs {
		if len(img) != h*w {
			return fmt.Errorf("plots: image %d has %d pixels, want h·w = %d×%d = %d", i, len(img), h, w, h*w)
		}
		for j, v := range img {
			if math.IsNaN(v) || v < 0 || v > 1 {
				return fmt.Errorf("plots: image %d, pixel %d (row %d, column %d): value %v is not in [0, 1]", i, j, j/w, j%w, v)
			}
		}
	}
	return nil
}

// ImageGrid draws binary (or grey) images in a grid with one caption under
// each image and an optional title, for sample grids of image models.
// imgs[i] holds one image of h·w pixels, row-major, values in [0, 1]
// (1 = ink, drawn black on white). cols is the number of images per row
// (0 = ceil(sqrt(n))). captions is nil or has one (possibly empty) string
// per image. The file format follows path's extension (.png or .svg) and the
// write is atomic (temporary file then rename), like the other plots.
//
// Each image pixel is drawn as a sharp square (about 2.9 pt for 28×28
// images, so that an image is about 80 pt wide whatever its size) inside a
// thin grey frame. Captions (7 pt) and the title (11 pt, bold) are wrapped
// to fit. cols larger than the number of images is reduced to it. Errors:
// no images, h or w not positive, cols negative, a caption count other
// than 0 or len(imgs), an image whose length is not h·w, a pixel value NaN
// or outside [0, 1], an unsupported extension.
func ImageGrid(path string, imgs [][]float64, h, w, cols int, captions []string, title string) error {
	if _, err := imageFormat(path); err != nil {
		return err
	}
	if err := validateImages(imgs, h, w, cols, captions); err != nil {
		return err
	}
	n := len(imgs)
	if cols == 0 {
		cols = int(math.Ceil(math.Sqrt(float64(n))))
	}
	l := imageGridLayout(n, h, w, cols, captions, title)
	return render(path, l.w, l.h, func(c draw.Canvas) {
		border := draw.LineStyle{Color: imgBorderColor, Width: vg.Points(imgBorderPt)}
		capSty := textStyle(sansFont, imgCaptionPt)
		capSty.XAlign, capSty.YAlign = draw.XCenter, draw.YTop
		for i, img := range imgs {
			r := l.rects[i]
			drawPixels(c, r, img, h, w, l.pix)
			// The frame sits just outside the image so it hides no pixel.
			o := vg.Points(imgBorderPt / 2)
			c.StrokeLines(border, []vg.Point{
				{X: r.Min.X - o, Y: r.Min.Y - o}, {X: r.Max.X + o, Y: r.Min.Y - o},
				{X: r.Max.X + o, Y: r.Max.Y + o}, {X: r.Min.X - o, Y: r.Max.Y + o},
				{X: r.Min.X - o, Y: r.Min.Y - o},
			})
			if l.captions != nil && l.captions[i] != "" {
				at := vg.Point{X: (r.Min.X + r.Max.X) / 2, Y: r.Min.Y - dev(imgCaptionGap)}
				c.FillText(capSty, at, l.captions[i])
			}
		}
		if l.title != "" {
			sty := textStyle(boldFont, imgTitlePt)
			sty.XAlign, sty.YAlign = draw.XCenter, draw.YTop
			c.FillText(sty, vg.Point{X: l.w / 2, Y: l.h - dev(imgMargin)}, l.title)
		}
	})
}

// drawPixels fills the non-white pixels of one h×w image (row 0 at the top)
// into r, one path per grey level with horizontal runs of equal pixels
// merged, so that adjacent pixels of a level leave no seam between them.
func drawPixels(c draw.Canvas, r vg.Rectangle, img []float64, h, w int, pix vg.Length) {
	level := func(v float64) uint8 { return uint8(math.Round(255 * (1 - v))) }
	paths := map[uint8]*vg.Path{}
	var order []uint8
	for row := range h {
		top := r.Max.Y - vg.Length(row)*pix
		for col := 0; col < w; {
			g := level(img[row*w+col])
			end := col + 1
			for end < w && level(img[row*w+end]) == g {
				end++
			}
			if g != 255 {
				p, ok := paths[g]
				if !ok {
					p = &vg.Path{}
					paths[g] = p
					order = append(order, g)
				}
				x0, x1 := r.Min.X+vg.Length(col)*pix, r.Min.X+vg.Length(end)*pix
				p.Move(vg.Point{X: x0, Y: top})
				p.Line(vg.Point{X: x1, Y: top})
				p.Line(vg.Point{X: x1, Y: top - pix})
				p.Line(vg.Point{X: x0, Y: top - pix})
				p.Close()
			}
			col = end
		}
	}
	for _, g := range order {
		c.SetColor(color.Gray{Y: g})
		c.Fill(*paths[g])
	}
}
