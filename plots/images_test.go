package plots

import (
	"fmt"
	"image"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/plot/vg"
)

// patternImages returns 6 images of 8×8: image k < 4 has only row 2k
// inked, image 4 is all black and image 5 all white.
func patternImages() [][]float64 {
	const h, w = 8, 8
	imgs := make([][]float64, 6)
	for k := range imgs {
		imgs[k] = make([]float64, h*w)
		for j := range imgs[k] {
			switch {
			case k == 4:
				imgs[k][j] = 1
			case k < 4 && j/w == 2*k:
				imgs[k][j] = 1
			}
		}
	}
	return imgs
}

// pngPixel returns the PNG pixel at the point pt (points from the bottom
// left) of a figure fig points high.
func pngPixel(fig vg.Length, pt vg.Point) (x, y int) {
	s := pngDPI / 72.0
	return int(math.Floor(float64(pt.X) * s)), int(math.Floor(float64(fig-pt.Y) * s))
}

// grey returns the mean of the colour channels of a pixel, 0..0xffff.
func grey(img image.Image, x, y int) uint32 {
	r, g, b, _ := img.At(x, y).RGBA()
	return (r + g + b) / 3
}

func TestImageGridPixels(t *testing.T) {
	dir := t.TempDir()
	imgs := patternImages()
	captions := []string{"row 0", "row 2", "row 4", "row 6", "black", "white"}
	title := "Pattern grid"
	path := filepath.Join(dir, "grid.png")
	if err := ImageGrid(path, imgs, 8, 8, 3, captions, title); err != nil {
		t.Fatal(err)
	}
	l := imageGridLayout(len(imgs), 8, 8, 3, captions, title)
	img := checkPNG(t, path, float64(l.w)/72-0.01, float64(l.h)/72-0.01)
	preview(t, path)
	if b := img.Bounds(); b.Dx() != int(math.Round(float64(l.w)*pngDPI/72)) || b.Dy() != int(math.Round(float64(l.h)*pngDPI/72)) {
		t.Fatalf("PNG is %dx%d, layout says %.1fx%.1f pt", b.Dx(), b.Dy(), l.w, l.h)
	}
	if l.pix < 2 || l.pix > 12 {
		t.Fatalf("pixel size %v pt out of range", l.pix)
	}
	// Two rows of three, left to right then top to bottom, no overlap.
	if !(l.rects[0].Max.X < l.rects[1].Min.X && l.rects[1].Max.X < l.rects[2].Min.X) ||
		l.rects[3].Max.Y >= l.rects[0].Min.Y || l.rects[3].Min.X != l.rects[0].Min.X {
		t.Fatalf("unexpected placement: %v", l.rects)
	}

	// The centre of every image pixel is black where inked and white
	// elsewhere, exactly (crisp rendering, no blur into neighbours).
	for k, im := range imgs {
		r := l.rects[k]
		for row := range 8 {
			for col := range 8 {
				pt := vg.Point{X: r.Min.X + (vg.Length(col)+0.5)*l.pix, Y: r.Max.Y - (vg.Length(row)+0.5)*l.pix}
				x, y := pngPixel(l.h, pt)
				g := grey(img, x, y)
				if im[row*8+col] == 1 && g != 0 {
					t.Fatalf("image %d pixel (%d, %d): want black at PNG (%d, %d), got grey %#x", k, row, col, x, y, g)
				}
				if im[row*8+col] == 0 && g != 0xffff {
					t.Fatalf("image %d pixel (%d, %d): want white at PNG (%d, %d), got grey %#x", k, row, col, x, y, g)
				}
			}
		}
	}
	// Every PNG pixel of the black image is black, of the white image
	// white, up to the edges: the images sit on PNG pixel boundaries and
	// the frame lies outside them.
	for _, c := range []struct {
		k    int
		want uint32
	}{{4, 0}, {5, 0xffff}} {
		r := l.rects[c.k]
		x0, y0 := pngPixel(l.h, vg.Point{X: r.Min.X, Y: r.Max.Y})
		x1, y1 := pngPixel(l.h, vg.Point{X: r.Max.X, Y: r.Min.Y})
		for y := y0; y < y1; y++ {
			for x := x0; x < x1; x++ {
				if g := grey(img, x, y); g != c.want {
					t.Fatalf("image %d: PNG pixel (%d, %d) is %#x, want %#x", c.k, x, y, g, c.want)
				}
			}
		}
		// The frame: just outside the white image it is grey, not white.
		if c.k == 5 {
			fx, fy := pngPixel(l.h, vg.Point{X: (r.Min.X + r.Max.X) / 2, Y: r.Max.Y + vg.Points(imgBorderPt)/2})
			if g := grey(img, fx, fy); g == 0xffff {
				t.Fatalf("no frame above the white image at PNG (%d, %d)", fx, fy)
			}
		}
	}
	// Something (the caption) is drawn under the first image.
	r := l.rects[0]
	cx0, cy0 := pngPixel(l.h, vg.Point{X: r.Min.X, Y: r.Min.Y - vg.Points(2)})
	cx1, cy1 := pngPixel(l.h, vg.Point{X: r.Max.X, Y: r.Min.Y - vg.Points(12)})
	dark := 0
	for y := cy0; y < cy1; y++ {
		for x := cx0; x < cx1; x++ {
			if grey(img, x, y) < 0x8000 {
				dark++
			}
		}
	}
	if dark == 0 {
		t.Fatal("no caption under image 0")
	}
}

func TestImageGridLayout(t *testing.T) {
	// 28×28 images are about 80 pt wide; cols = 0 means ceil(√n).
	l := imageGridLayout(10, 28, 28, 4, nil, "")
	if side := l.rects[0].Max.X - l.rects[0].Min.X; side < 70 || side > 90 {
		t.Fatalf("28×28 image is %v pt wide, want ≈ 80", side)
	}
	if l.captions != nil {
		t.Fatalf("captions %q without captions", l.captions)
	}
	// Every coordinate falls on a PNG pixel boundary.
	for _, r := range l.rects {
		for _, v := range []vg.Length{r.Min.X, r.Min.Y, r.Max.X, r.Max.Y, l.w, l.h} {
			if d := float64(v) * pngDPI / 72; math.Abs(d-math.Round(d)) > 1e-6 {
				t.Fatalf("coordinate %v pt is not on a PNG pixel boundary", v)
			}
		}
	}
	// A caption or a title makes the figure taller; cols beyond n is clamped.
	lc := imageGridLayout(10, 28, 28, 4, []string{}, "")
	if lc.h != l.h {
		t.Fatal("empty caption list changed the layout")
	}
	caps := make([]string, 10)
	caps[3] = "one caption"
	if lc = imageGridLayout(10, 28, 28, 4, caps, ""); lc.h <= l.h {
		t.Fatal("captions take no room")
	}
	if lt := imageGridLayout(10, 28, 28, 4, nil, "A title"); lt.h <= l.h {
		t.Fatal("the title takes no room")
	}
	if wide := imageGridLayout(2, 28, 28, 10, nil, ""); wide.w != imageGridLayout(2, 28, 28, 2, nil, "").w {
		t.Fatal("cols > n not clamped")
	}

	// Automatic columns: 10 images → 4 per row, 3 rows.
	dir := t.TempDir()
	imgs := make([][]float64, 10)
	for i := range imgs {
		imgs[i] = make([]float64, 28*28)
		for j := range imgs[i] {
			imgs[i][j] = float64((j/28+j%28+i)%5) / 4 // grey levels
		}
	}
	path := filepath.Join(dir, "auto.png")
	if err := ImageGrid(path, imgs, 28, 28, 0, nil, ""); err != nil {
		t.Fatal(err)
	}
	got := checkPNG(t, path, 1, 1).Bounds()
	if want := imageGridLayout(10, 28, 28, 4, nil, ""); got.Dx() != int(math.Round(float64(want.w)*pngDPI/72)) || got.Dy() != int(math.Round(float64(want.h)*pngDPI/72)) {
		t.Fatalf("cols = 0: PNG is %dx%d, want the 4-column layout %.1fx%.1f pt", got.Dx(), got.Dy(), want.w, want.h)
	}
	preview(t, path)
}

func TestImageGridSVG(t *testing.T) {
	dir := t.TempDir()
	imgs := patternImages()
	var captions []string
	for i := range imgs {
		captions = append(captions, fmt.Sprintf("sample %d, r = 0.%d", i, i))
	}
	title := "Samples of the image model (N = 6, twisted SMC)"
	both(t, dir, "image_grid", 1, 1, func(p string) error { return ImageGrid(p, imgs, 8, 8, 0, captions, title) })
	s := checkSVG(t, filepath.Join(dir, "image_grid.svg"))
	for _, want := range append(captions, "Samples of the image model") {
		if !strings.Contains(s, want) {
			t.Fatalf("SVG lacks the text %q", want)
		}
	}
	// A single image, no captions, no title, and a long caption that wraps.
	if err := ImageGrid(filepath.Join(dir, "one.svg"), imgs[4:5], 8, 8, 0, nil, ""); err != nil {
		t.Fatal(err)
	}
	long := []string{"a rather long caption that has to wrap under the image", ""}
	both(t, dir, "long_caption", 1, 1, func(p string) error { return ImageGrid(p, imgs[3:5], 8, 8, 2, long, "") })
}

func TestImageGridErrors(t *testing.T) {
	dir := t.TempDir()
	imgs := patternImages()
	bad := filepath.Join(dir, "bad.png")
	wantErr(t, "no images", ImageGrid(bad, nil, 8, 8, 0, nil, ""), "no images")
	wantErr(t, "h = 0", ImageGrid(bad, imgs, 0, 8, 0, nil, ""), "0×8", "positive")
	wantErr(t, "w < 0", ImageGrid(bad, imgs, 8, -1, 0, nil, ""), "8×-1", "positive")
	wantErr(t, "cols < 0", ImageGrid(bad, imgs, 8, 8, -2, nil, ""), "cols = -2", "negative")
	wantErr(t, "captions", ImageGrid(bad, imgs, 8, 8, 0, []string{"a", "b"}, ""), "2 captions for 6 images")
	short := append([][]float64{}, imgs...)
	short[3] = short[3][:63]
	wantErr(t, "image length", ImageGrid(bad, short, 8, 8, 0, nil, ""), "image 3", "63 pixels", "64")
	for _, v := range []float64{math.NaN(), -0.1, 1.5, math.Inf(1)} {
		vals := append([][]float64{}, imgs...)
		vals[2] = append([]float64{}, imgs[2]...)
		vals[2][13] = v
		wantErr(t, fmt.Sprint("pixel ", v), ImageGrid(bad, vals, 8, 8, 0, nil, ""), "image 2", "pixel 13", "row 1, column 5", fmt.Sprint(v), "[0, 1]")
	}
	wantErr(t, "extension", ImageGrid(filepath.Join(dir, "grid.jpg"), imgs, 8, 8, 0, nil, ""), `".jpg"`, "extension")
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Fatalf("a failed call left %s behind", bad)
	}
}
